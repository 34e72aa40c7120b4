"""Composition root for a directory node: opens the store, builds the Directory,
and runs one LDAP worker process (several share the ports with SO_REUSEPORT)."""
from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import time
from typing import Any

from lightwave.cli import CLIError
from lightwave.config import WILDCARDS, NodeConfig
from vmdir.directory import (
    Directory, admin_dn, admins_group_dn, domain_dn, exists, initialise, is_initialised, node_identity, write_secret,
)
from vmdir.model.password import generate_password
from vmdir.model.schema import Schema
from vmdir.store import Store

ADMIN_PASSWORD_FILE = "admin-password"



def say(msg: str) -> None:
    """A line for the operator on standard error, as the CLI's other messages."""
    print(f"lightwave: {msg}", file=sys.stderr, flush=True)

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
    d.refresh_schema()  # with the definitions added over LDAP, for whoever reads without an operation
    return d


def ensure_indexes(d: Directory) -> None:
    """Make the built indexes match the configuration: build those newly configured, and
    forget those no longer configured, so that adding one back later rebuilds it (entries
    written in between were not indexed)."""
    with d.store.read() as r:
        have = {k.removeprefix("indexed/") for k, _ in r.meta_prefix("indexed/")}
        empty = r.meta_int("next_id") == 0
        uuids = r.meta("uuids") is not None
    want = set(d.config.indexes)
    if have == want and uuids:
        return
    with d.store.write() as w:
        if not uuids:  # a database made before the UUID table
            if not empty:
                w.rebuild_uuids()
            w.set_meta("uuids", b"1")
        for attr in sorted(want - have):
            if not empty:
                w.rebuild_index(attr, d.dit.index_keys)
            w.set_meta(f"indexed/{attr}", b"1")
        for attr in have - want:
            w.del_meta(f"indexed/{attr}")


def cert_names(cfg: NodeConfig) -> list[str]:
    """What the self-signed certificate names: this machine (localhost, both loopback
    addresses, its host name) and the address it listens on, when that is a specific one."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname()]
    if cfg.listen not in WILDCARDS and cfg.listen not in names:
        names.append(cfg.listen)
    return names


def prepare(cfg: NodeConfig) -> tuple[NodeConfig, str | None]:
    """First-start work: data directory, identity, default tenant, TLS files.

    Returns the configuration with the node's settled name (``settle_node_name``) and the
    administrator's password if it was generated now (to be shown once).
    """
    from vmdir.server.tls import ensure_self_signed

    os.makedirs(cfg.data_dir, exist_ok=True)
    os.chmod(cfg.data_dir, 0o700)
    if not cfg.tls_cert:  # first: the node entry publishes the certificate
        ensure_self_signed(cfg.cert_file, cfg.key_file, cert_names(cfg))
    store = open_store(cfg)
    generated = None
    try:
        cfg = settle_node_name(cfg, store)
        d = build_directory(cfg, store)
        if not is_initialised(store) and (cfg.join or _joining(store)):
            _join(cfg, d)
        elif not is_initialised(store):
            password = os.environ.get("LIGHTWAVE_ADMIN_PASSWORD")
            if not password and exists(d, admin_dn(cfg.domain)):
                password = "unused: the administrator was imported"
            elif not password:
                password = generated = generate_password()
                write_secret(os.path.join(cfg.data_dir, ADMIN_PASSWORD_FILE), password)
            initialise(d, cfg.domain, password)
        elif cfg.join:
            say(f"this node is already initialised; --join {cfg.join} ignored")
        _ensure_node_account(cfg, d)
        from replication.maintenance import pause_if_out_of_touch, tend_local_node

        pause_if_out_of_touch(d, cfg.effective_node_name, cfg.tombstone_lifetime, time.time(), say)
        tend_local_node(d, cfg.effective_node_name, cfg.effective_url, say, certificate=own_certificate(cfg))
    finally:
        store.close()
    return cfg, generated


def own_certificate(cfg: NodeConfig) -> bytes | None:
    """The node's TLS certificate (DER, the first of its file), or None if it has none
    readable yet."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    try:
        with open(cfg.cert_file, "rb") as f:
            return x509.load_pem_x509_certificates(f.read())[0].public_bytes(Encoding.DER)
    except (OSError, ValueError, IndexError):
        return None


def settle_node_name(cfg: NodeConfig, store: Store) -> NodeConfig:
    """The node's name is chosen once (``--node-name``, default ``<host>:<ldap port>``) and
    kept in the store: a later start on other ports is the same node, not a new one.
    Raises CLIError if ``--node-name`` asks for another name than the one it has."""
    with store.read() as r:
        kept = r.meta("node_name")
    if kept is None:
        name = cfg.effective_node_name
        with store.write() as w:
            w.set_meta("node_name", name.encode())
        return cfg.with_overrides(node_name=name)
    name = bytes(kept).decode()
    if cfg.node_name and cfg.node_name != name:
        raise CLIError(f"this data directory is node {name!r}; it cannot become {cfg.node_name!r} "
                       f"(leave out --node-name, or join a new data directory under the new name)")
    return cfg.with_overrides(node_name=name)


NODE_PASSWORD_FILE = "node-password"


def node_password(cfg: NodeConfig) -> str | None:
    """The password of this node's own account (its replication identity), if it has one."""
    try:
        with open(os.path.join(cfg.data_dir, NODE_PASSWORD_FILE)) as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def _ensure_node_account(cfg: NodeConfig, d: Directory) -> None:
    """A forest's first node (or one made before replication existed) gets its node entry."""
    from replication.topology import node_dn, register_local_node

    password = node_password(cfg)
    if password is not None and exists(d, node_dn(cfg.effective_node_name)):
        return
    if password is None:
        password = generate_password()
        write_secret(os.path.join(cfg.data_dir, NODE_PASSWORD_FILE), password)
    if exists(d, node_dn(cfg.effective_node_name)):
        raise CLIError(f"this node's entry {node_dn(cfg.effective_node_name)} exists but "
                       f"{os.path.join(cfg.data_dir, NODE_PASSWORD_FILE)} does not: restore that file")
    register_local_node(d, cfg.domain, cfg.effective_node_name, cfg.effective_url, password, own_certificate(cfg))


def _joining(store: Store) -> bool:
    with store.read() as r:
        return r.meta("join/partner") is not None


def _join(cfg: NodeConfig, d: Directory) -> None:
    """First start with --join (or an interrupted join): register at the partner, copy its data."""
    import getpass

    from replication.join import JoinError, Registration, full_copy, join_trust, register

    with d.store.read() as r:
        partner = r.meta("join/partner")
        reg = Registration(partner.decode(), (r.meta("join/url") or b"").decode(), r.meta_int("server_id"),
                           bytes(r.meta("join/fingerprint") or b"")) if partner is not None else None
    name = cfg.effective_node_name
    if reg is None:
        password = node_password(cfg) or generate_password()
        write_secret(os.path.join(cfg.data_dir, NODE_PASSWORD_FILE), password)
        admin_pw = os.environ.get("LIGHTWAVE_ADMIN_PASSWORD")
        if not admin_pw:
            if not sys.stdin.isatty():
                raise CLIError("joining needs the forest administrator's password: set LIGHTWAVE_ADMIN_PASSWORD")
            admin_pw = getpass.getpass(f"Password of {cfg.join_user or admin_dn(cfg.domain)} at {cfg.join}: ")
        say(f"joining the forest of {cfg.join} as node {name!r}")
        try:
            reg = register(cfg.join, cfg.join_user or admin_dn(cfg.domain), admin_pw, name=name,
                           my_url=cfg.effective_url, invocation=d.invocation, node_password=password,
                           domain=cfg.domain, certificate=own_certificate(cfg),
                           trust=join_trust(cfg.join, cfg.join_fingerprint),
                           log=say)
        except JoinError as exc:
            raise CLIError(str(exc)) from None
        with d.store.write() as w:
            w.set_meta("join/partner", reg.partner.encode())
            w.set_meta("join/url", reg.partner_url.encode())
            w.set_meta("join/fingerprint", reg.fingerprint)
            w.set_meta_int("server_id", reg.server_id)
    else:
        from replication._state import read_status
        with d.store.read() as r:
            done = read_status(r).get(reg.partner, {})
        say(f"resuming the interrupted copy from {reg.partner} after its USN "
            f"{done.get('watermark') or 0} ({done.get('applied') or 0} entries copied before)")
    d.server_id = reg.server_id
    password = node_password(cfg)
    if password is None:
        raise CLIError(f"{os.path.join(cfg.data_dir, NODE_PASSWORD_FILE)} is missing: this interrupted join "
                       "cannot resume; remove the data directory and join again")
    bar = _progress_bar(f"copying from {reg.partner}")
    try:
        n = full_copy(d, reg, name, password, progress=bar.update_to)
    except JoinError as exc:
        raise CLIError(str(exc)) from None
    finally:
        bar.close()
    if not exists(d, domain_dn(cfg.domain)):
        raise CLIError(f"the forest of {cfg.join} has no tenant {cfg.domain}: start again with its "
                       "--domain (the data copied so far is kept)")
    from vmdir.directory._bootstrap import LAYOUT
    with d.store.write() as w:
        w.set_meta("initialised", cfg.domain.encode())
        w.set_meta_int("layout", LAYOUT)
        w.del_meta("join/partner")
        w.del_meta("join/fingerprint")
    say(f"joined; {n} entries copied from {reg.partner} (server id {reg.server_id})")


def _progress_bar(desc: str) -> Any:
    from tqdm import tqdm

    class Bar(tqdm):  # type: ignore[misc]
        def update_to(self, done: int, total: int) -> None:
            self.total = max(total, 1)
            self.update(max(0, done - self.n))

    return Bar(desc=desc, unit="usn", disable=None, file=sys.stderr)


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
    """Listen on (host, port) with SO_REUSEPORT so several worker processes share it.
    Raises CLIError when the address cannot be had (in use by another program, not local)."""
    sock = _bound(host, port, reuseport=True)
    try:
        sock.listen(1024)
        sock.setblocking(False)
        return reactor.adoptStreamPort(sock.fileno(), sock.family, factory)
    finally:
        sock.close()


LOCK_FILE = "lightwave.lock"


def stored_domain(cfg: NodeConfig) -> str | None:
    """The domain the data directory's forest was initialised with (None: no forest there
    yet, or a join not finished)."""
    if not os.path.exists(os.path.join(cfg.store_dir, "data.mdb")):
        return None
    store = open_store(cfg)
    try:
        with store.read() as r:
            v = r.meta("initialised")
    finally:
        store.close()
    return bytes(v).decode() if v else None


def lock_data_dir(data_dir: str, holder: str, doing: str) -> int:
    """Hold ``data_dir`` for this process (``lightwave up``, a restore) until the returned
    descriptor is closed or the process ends, however it ends (an flock). Raises CLIError if
    another process holds it: a second node on one data directory would rewrite the first
    one's node entry and run a second replication process over its store; a restore would
    replace the store under a running node. (An offline import may run beside the node:
    LMDB serialises their writes.) ``holder`` names the caller's command (written in the
    lock file, for the next one's message); ``doing``, what it is about to do. Creates the
    directory if needed."""
    import fcntl

    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
        finally:
            os.close(fd)
        raise CLIError(f"{data_dir} is in use by {holder}: stop it before {doing}") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{holder} (pid {os.getpid()})\n".encode())
    return fd


def claim_port(host: str, port: int) -> socket.socket:
    """Hold (host, port) for this node while the returned socket stays open, or raise
    CLIError if another Lightwave node on this machine holds it (starting or serving).

    ``ensure_free`` cannot tell two nodes started at the same instant apart: both find the
    port free, then both listen with SO_REUSEPORT and share it. The claim is an abstract
    unix socket named by the address: binding it is atomic, and the kernel frees it when
    the process ends however it ends (no file left behind). Abstract names are per network
    namespace, like TCP ports."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(f"\0lightwave-port-{host}-{port}".encode())
    except OSError:
        sock.close()
        raise CLIError(f"another Lightwave node on this machine is starting or serving on {host} port {port} "
                       "(choose other ports with --ldap-port / --ldaps-port / --https-port)") from None
    return sock


def ensure_free(host: str, port: int) -> None:
    """Raise CLIError when something listens on (host, port) already. Workers listen with
    SO_REUSEPORT, which lets any process of the same user share the port without a word: a
    second node started on the same port would silently take half the connections. A socket
    bound without it fails on such a port, so this asks once, before the workers start."""
    _bound(host, port, reuseport=False).close()


def _bound(host: str, port: int, reuseport: bool) -> socket.socket:
    """A TCP socket bound to (host, port) (SO_REUSEADDR: a port in TIME_WAIT is free), or CLIError."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            raise CLIError(f"cannot listen on {host}: {exc.strerror} (--listen takes an address of this machine, "
                           "or a name for one; 0.0.0.0 or :: for all of them)") from None
        raise CLIError(f"cannot listen on {host} port {port}: {exc.strerror} (another program or Lightwave node "
                       "on that port? choose others with --ldap-port / --ldaps-port / --https-port, or --listen)") from None
    return sock


def run_replicator(cfg: NodeConfig) -> int:
    """Pull from this node's replication partners until SIGTERM/SIGINT (its own process)."""
    import threading

    from replication.agent import run_agent

    from vmdir.server.bell import Bell

    store = open_store(cfg)
    bell = Bell(os.path.join(cfg.data_dir, BELL_DIR))  # its commits wake pulls held in the workers
    store.after_commit.append(bell.ring)
    d = build_directory(cfg, store)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    password = node_password(cfg)
    if password is None:
        print("lightwave: replication off: no node password file", file=sys.stderr, flush=True)
        stop.wait()
        return 0
    settle_gc()
    try:
        run_agent(d, cfg.effective_node_name, cfg.effective_url, password, stop,
                  log=lambda msg: print(f"lightwave replication: {msg}", file=sys.stderr, flush=True),
                  tombstone_lifetime=cfg.tombstone_lifetime, certificate=own_certificate(cfg))
    finally:
        store.close()
        bell.close()
    return 0


BELL_DIR = "bell"

GC_YOUNG = 20_000  # container allocations between two young-generation collections (Python's default: 700)


def settle_gc() -> None:
    """Tune the cycle collector of a long-running server process, once it has started.

    What start-up made (modules, schema, configuration) lives as long as the process: it is
    frozen out of the collector's reach, so no collection walks it again. Young collections
    are made rarer: with Python's default, one in ten requests paid a pause, and one in a
    hundred a middle-generation one of a millisecond or more, the whole of a write's p99
    budget. Garbage here is nearly all freed by reference counting, so the cycles waiting
    for a rarer collection cost little memory."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 10, 10)


def run_worker(cfg: NodeConfig, slot: int, slots: int, ldapi_fd: int | None = None,
               ready_fd: int | None = None) -> int:
    """Serve LDAP and LDAPS in this process until SIGTERM/SIGINT. Returns an exit code.

    ``ldapi_fd`` is the listening unix socket the supervisor made (``open_ldapi``), shared by
    every worker; the supervisor removes its file when it stops."""
    from vmdir.server import reactor as worker_reactor
    worker_reactor.install()  # before anything imports twisted.internet.reactor (else: ReactorAlreadyInstalledError)
    from twisted.internet import reactor
    from twisted.logger import Logger
    from twisted.protocols.tls import TLSMemoryBIOFactory

    from vmdir.server import ldapi
    from vmdir.server.audit import AuditLog
    from vmdir.server.monitor import Counters
    from vmdir.server.protocol import LDAPFactory, Limits, ServerContext
    from vmdir.server.tls import server_options
    from vmdir.server.writer import WriteQueue

    # first: a stop asked for while this worker starts (its ports may already answer) is a
    # clean stop once the reactor runs, not death by the signal's default action. Asked
    # twice (the supervisor's SIGTERM, then its death's; SIGINT, then SIGTERM, with one
    # worker): the second finds the reactor stopping, which is what it asks for.
    def stop() -> None:
        from twisted.internet.error import ReactorNotRunning
        try:
            reactor.stop()
        except ReactorNotRunning:
            pass

    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(stop))
    signal.signal(signal.SIGINT, lambda *_: reactor.callFromThread(stop))
    log = Logger(namespace="lightwave")
    counters = Counters(os.path.join(cfg.data_dir, "counters"), slot, slots)
    store = open_store(cfg)
    d = build_directory(cfg, store, counters)
    audit = d.audit_sink = AuditLog(sys.stderr)
    writer = WriteQueue(reactor, d)
    reactor.suggestThreadPoolSize(8)
    tls = server_options(cfg.cert_file, cfg.key_file, cfg.tls_client_ca or None)
    limits = Limits(cfg.max_pdu_size, cfg.max_outstanding, cfg.max_filter_depth, cfg.max_filter_terms,
                    cfg.idle_timeout, cfg.max_connections)
    from replication.service import SupplierService
    supplier = SupplierService(reactor, d, reactor.getThreadPool(), node_name=cfg.effective_node_name, writer=writer,
                               log=lambda msg: log.warn("{msg}", msg=msg))
    ctx = ServerContext(reactor, d, writer, limits, tls_options=tls, counters=counters,
                        threadpool=reactor.getThreadPool(), log_ops=cfg.log_ops,
                        search_handlers=supplier.search_handlers(), extended_handlers=supplier.extended_handlers())
    from vmdir.server.bell import Bell, BellReader
    bell = Bell(os.path.join(cfg.data_dir, BELL_DIR))
    bell.listen()
    store.after_commit.append(bell.ring)
    bell_reader = BellReader(bell, supplier.wake)
    reactor.addReader(bell_reader)
    ports = []
    if cfg.ldap_port:
        ports.append(listen_reuseport(reactor, cfg.listen, cfg.ldap_port, LDAPFactory(ctx, tls=False)))
    if cfg.ldaps_port:
        ports.append(listen_reuseport(reactor, cfg.listen, cfg.ldaps_port,
                                      TLSMemoryBIOFactory(tls, False, LDAPFactory(ctx, tls=True))))
    if ldapi_fd is not None:
        ports.append(ldapi.adopt(reactor, ldapi_fd, LDAPFactory(ctx, tls=False, ldapi=True)))
    if cfg.https_port:
        from replication._state import partner_health
        from vmdir.server.http import NodeState, site
        state = NodeState(d, cfg.effective_node_name, counters, partner_health)
        ports.append(listen_reuseport(reactor, cfg.listen, cfg.https_port,
                                      TLSMemoryBIOFactory(tls, False, site(state, log_requests=cfg.log_ops))))

    def shutdown() -> None:
        for p in ports:
            p.stopListening()

    def stop_writer() -> None:
        writer.stop()
        store.close()
        reactor.removeReader(bell_reader)
        bell.close()
        audit.flush()

    from twisted.internet.task import LoopingCall
    audit_flush = LoopingCall(audit.flush)  # held audit lines (successful binds) out within audit.hold seconds
    audit_flush.clock = reactor
    audit_flush.start(audit.hold, now=False)
    reactor.addSystemEventTrigger("before", "shutdown", shutdown)
    reactor.addSystemEventTrigger("after", "shutdown", stop_writer)
    urls = ([cfg.url("ldap", cfg.ldap_port)] if cfg.ldap_port else []) + (
        [cfg.url("ldaps", cfg.ldaps_port)] if cfg.ldaps_port else []) + (
        [ldapi_url(cfg.ldapi_socket)] if ldapi_fd is not None else []) + (
        [cfg.url("https", cfg.https_port, "/health")] if cfg.https_port else [])
    log.info("worker {slot} serving {urls} (pid {pid})", slot=slot, urls=" ".join(urls) or "nothing (every listener is off)",
             pid=os.getpid())
    settle_gc()
    if ready_fd is not None:  # tell the supervisor this worker serves (its banner waits for all)
        os.write(ready_fd, slot.to_bytes(2, "big"))
        os.close(ready_fd)
    reactor.run(installSignalHandlers=False)
    return 0
