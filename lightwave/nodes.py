"""Composition root for a directory node: opens the store, builds the Directory,
and runs one LDAP worker process (several share the ports with SO_REUSEPORT)."""
from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Any

from lightwave.config import NodeConfig
from vmdir.directory import (
    Directory, admin_dn, admins_group_dn, domain_dn, exists, initialise, is_initialised, node_identity, write_secret,
)
from vmdir.model.password import generate_password
from vmdir.model.schema import Schema
from vmdir.store import Store

ADMIN_PASSWORD_FILE = "admin-password"


def open_store(cfg: NodeConfig, *, sync: bool | None = None) -> Store:
    return Store(
        cfg.store_dir,
        map_size=cfg.map_size_gb << 30,
        sync=cfg.sync if sync is None else sync,
        indexes={k: set(v) for k, v in cfg.directory.indexes.items()},
    )


def build_directory(cfg: NodeConfig, store: Store, counters: Any = None) -> Directory:
    inv, sid, _ = node_identity(store, cfg.server_id)
    admin = admin_dn(cfg.domain)
    d = Directory(store, Schema.default(), cfg.directory, invocation=inv, server_id=sid,
                  admin_dns=[admin], system_admins=admins_group_dn(cfg.domain),
                  system_tenant=domain_dn(cfg.domain), counters=counters,
                  # SASL EXTERNAL over ldapi: root and the server's own user are the forest administrator
                  local_admins={0: admin, os.getuid(): admin})
    ensure_indexes(d)
    return d


def ensure_indexes(d: Directory) -> None:
    """Make the built indexes match the configuration: build those newly configured, and
    forget those no longer configured, so that adding one back later rebuilds it (entries
    written in between were not indexed)."""
    with d.store.read() as r:
        have = {k.removeprefix("indexed/") for k, _ in r.meta_prefix("indexed/")}
        empty = r.meta_int("next_id") == 0
    want = set(d.config.indexes)
    if have == want:
        return
    with d.store.write() as w:
        for attr in sorted(want - have):
            if not empty:
                w.rebuild_index(attr, d.dit.index_keys)
            w.set_meta(f"indexed/{attr}", b"1")
        for attr in have - want:
            w.del_meta(f"indexed/{attr}")


def prepare(cfg: NodeConfig) -> str | None:
    """First-start work: data directory, identity, default tenant, TLS files.

    Returns the administrator's password if it was generated now (to be shown once).
    """
    from vmdir.server.tls import ensure_self_signed

    os.makedirs(cfg.data_dir, exist_ok=True)
    os.chmod(cfg.data_dir, 0o700)
    store = open_store(cfg)
    generated = None
    try:
        d = build_directory(cfg, store)
        if not is_initialised(store):
            password = os.environ.get("LIGHTWAVE_ADMIN_PASSWORD")
            if not password and exists(d, admin_dn(cfg.domain)):
                password = "unused: the administrator was imported"
            elif not password:
                password = generated = generate_password()
                write_secret(os.path.join(cfg.data_dir, ADMIN_PASSWORD_FILE), password)
            initialise(d, cfg.domain, password)
    finally:
        store.close()
    if not cfg.tls_cert:
        ensure_self_signed(cfg.cert_file, cfg.key_file, ["localhost", "127.0.0.1", socket.gethostname()])
    return generated


def open_ldapi(cfg: NodeConfig) -> Any:
    """The ldapi listening socket (``vmdir.server.ldapi.Listener``), or None when it is off.
    Made once by the supervisor before it starts the workers. Raises ListenerError."""
    if not cfg.ldapi_socket:
        return None
    from vmdir.server.ldapi import open_listener
    return open_listener(cfg.ldapi_socket)


def ldapi_url(path: str) -> str:
    """The ldapi:// URL of a socket path, as OpenLDAP's tools want it (the path URL-encoded)."""
    from urllib.parse import quote
    return "ldapi://" + quote(path, safe="")


def listen_reuseport(reactor: Any, host: str, port: int, factory: Any) -> Any:
    """Listen on (host, port) with SO_REUSEPORT so several worker processes share it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
        return reactor.adoptStreamPort(sock.fileno(), family, factory)
    finally:
        sock.close()


def run_worker(cfg: NodeConfig, slot: int, slots: int, ldapi_fd: int | None = None) -> int:
    """Serve LDAP and LDAPS in this process until SIGTERM/SIGINT. Returns an exit code.

    ``ldapi_fd`` is the listening unix socket the supervisor made (``open_ldapi``), shared by
    every worker; the supervisor removes its file when it stops."""
    from twisted.internet import reactor
    from twisted.logger import Logger
    from twisted.protocols.tls import TLSMemoryBIOFactory

    from vmdir.server import ldapi
    from vmdir.server.audit import AuditLog
    from vmdir.server.monitor import Counters
    from vmdir.server.protocol import LDAPFactory, Limits, ServerContext
    from vmdir.server.tls import server_options
    from vmdir.server.writer import WriteQueue

    log = Logger(namespace="lightwave")
    counters = Counters(os.path.join(cfg.data_dir, "counters"), slot, slots)
    store = open_store(cfg)
    d = build_directory(cfg, store, counters)
    d.audit_sink = AuditLog(sys.stderr)
    writer = WriteQueue(reactor, d)
    reactor.suggestThreadPoolSize(8)
    tls = server_options(cfg.cert_file, cfg.key_file, cfg.tls_client_ca or None)
    limits = Limits(cfg.max_pdu_size, cfg.max_outstanding, cfg.max_filter_depth, cfg.max_filter_terms,
                    cfg.idle_timeout, cfg.max_connections)
    ctx = ServerContext(reactor, d, writer, limits, tls_options=tls, counters=counters,
                        threadpool=reactor.getThreadPool(), log_ops=cfg.log_ops)
    ports = []
    if cfg.ldap_port:
        ports.append(listen_reuseport(reactor, cfg.listen, cfg.ldap_port, LDAPFactory(ctx, tls=False)))
    if cfg.ldaps_port:
        ports.append(listen_reuseport(reactor, cfg.listen, cfg.ldaps_port,
                                      TLSMemoryBIOFactory(tls, False, LDAPFactory(ctx, tls=True))))
    if ldapi_fd is not None:
        ports.append(ldapi.adopt(reactor, ldapi_fd, LDAPFactory(ctx, tls=False, ldapi=True)))

    def shutdown() -> None:
        for p in ports:
            p.stopListening()

    def stop_writer() -> None:
        writer.stop()
        store.close()

    reactor.addSystemEventTrigger("before", "shutdown", shutdown)
    reactor.addSystemEventTrigger("after", "shutdown", stop_writer)
    log.info("worker {slot} serving ldap://{host}:{port} ldaps://{host}:{sport}{unix} (pid {pid})",
             slot=slot, host=cfg.listen, port=cfg.ldap_port, sport=cfg.ldaps_port, pid=os.getpid(),
             unix=f" {ldapi_url(cfg.ldapi_socket)}" if ldapi_fd is not None else "")
    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    signal.signal(signal.SIGINT, lambda *_: reactor.callFromThread(reactor.stop))
    reactor.run(installSignalHandlers=False)
    return 0
