"""The `lightwave` command line. Thin: parse, call the layers below, print."""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from lightwave.config import DEFAULT_LDAPI, ConfigError, NodeConfig, load

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf", "lightwave.toml")


class CLIError(Exception):
    """A user-facing failure: printed as 'lightwave: <message>', exit status 1."""


# ---------------------------------------------------------------------- config

def _node_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML configuration file (default: conf/lightwave.toml if present)")
    p.add_argument("--data-dir", metavar="DIR", help="where the database and keys live (default ./var)")


def node_config(args: argparse.Namespace) -> NodeConfig:
    path = args.config
    if path is None and os.path.exists(DEFAULT_CONFIG):
        path = DEFAULT_CONFIG
    cfg = load(path)
    over: dict[str, Any] = {"data_dir": getattr(args, "data_dir", None)}
    for name in ("domain", "listen", "ldap_port", "ldaps_port", "https_port", "ldapi_path", "workers", "log_level",
                 "node_name", "advertise_url", "join", "join_user", "join_fingerprint", "tombstone_lifetime"):
        over[name] = getattr(args, name, None)
    if getattr(args, "no_sync", False):
        over["sync"] = False
    if getattr(args, "quiet_ops", False):
        over["log_ops"] = False
    explicit = over["domain"] is not None or cfg.domain != NodeConfig().domain  # --domain, or the file's
    cfg = cfg.with_overrides(**over)
    from lightwave.nodes import stored_domain
    stored = stored_domain(cfg)
    if stored is not None and stored != cfg.domain:
        if explicit:
            raise CLIError(f"{cfg.data_dir} holds the forest of domain {stored}, not {cfg.domain}: leave --domain "
                           f"(or the configuration's domain) out, or give a new --data-dir for another forest")
        cfg = cfg.with_overrides(domain=stored)  # the default domain: the data directory's own is meant
    return cfg


# ---------------------------------------------------------------------- up

def cmd_up(args: argparse.Namespace) -> int:
    from lightwave.nodes import claim_port, ensure_free, lock_data_dir, open_ldapi, prepare
    from vmdir.server.ldapi import ListenerError, PathTooLong

    cfg = node_config(args)
    ports = [p for p in (cfg.ldap_port, cfg.ldaps_port, cfg.https_port) if p]
    # before a first start initialises anything (or a join copies a forest); held until the end
    claims = [claim_port(cfg.listen, port) for port in ports]
    for port in ports:
        ensure_free(cfg.listen, port)
    held = lock_data_dir(cfg.data_dir, "lightwave up", "starting another node on it")  # held until the end
    cfg, generated = prepare(cfg)
    pidfile = os.path.join(cfg.data_dir, "lightwave.pid")
    with open(pidfile, "w") as f:
        f.write(f"{os.getpid()}\n")
    try:
        # made once here and shared by every worker (a unix socket has no SO_REUSEPORT)
        unix = open_ldapi(cfg)
    except PathTooLong as exc:
        if cfg.ldapi_path != DEFAULT_LDAPI:
            raise CLIError(str(exc)) from None
        # the default place, under a data directory with a long path: serve without ldapi
        print(f"lightwave: ldapi is off: {exc} (e.g. --ldapi-path /run/lightwave-ldapi)", file=sys.stderr, flush=True)
        cfg, unix = cfg.with_overrides(ldapi_path=""), None
    except ListenerError as exc:
        raise CLIError(str(exc)) from None
    try:
        return _serve(cfg, generated, unix.fileno() if unix is not None else None)
    finally:
        if unix is not None:
            unix.close()  # a clean stop leaves no socket file behind
        _remove_pidfile(pidfile)  # nor a pid file (one left names a node that was killed)
        for claim in claims:
            claim.close()
        os.close(held)


def _remove_pidfile(path: str) -> None:
    """Remove ``path`` if it still names this process (not one a later start wrote)."""
    try:
        with open(path) as f:
            mine = f.read().strip() == str(os.getpid())
        if mine:
            os.unlink(path)
    except OSError:
        pass


def _serve(cfg: NodeConfig, generated: str | None, ldapi_fd: int | None) -> int:
    n = cfg.effective_workers
    _setup_logging(cfg.log_level)
    if n == 1:
        _banner(cfg, generated, pending=True)
        from lightwave.nodes import run_worker
        keeper = _ReplicatorKeeper(cfg)
        try:
            return run_worker(cfg, 0, 1, ldapi_fd)
        finally:
            keeper.stop()
    sup = Supervisor(cfg, n, ldapi_fd)
    sup.start()
    why = sup.wait_ready(30)
    if why is not None:
        asked = sup.stopping  # SIGTERM or SIGINT while starting: a clean stop
        sup.stop()
        if asked:
            print(f"lightwave: {why}", file=sys.stderr, flush=True)
            return 0
        raise CLIError(why)
    _banner(cfg, generated)
    return sup.run()


def _banner(cfg: NodeConfig, generated: str | None, pending: bool = False) -> None:
    from lightwave.nodes import ldapi_url
    from vmdir.directory import admin_dn, domain_dn

    base = domain_dn(cfg.domain)
    adm = admin_dn(cfg.domain)
    pwfile = os.path.join(cfg.data_dir, "admin-password")
    lines = ["", f"Lightwave directory {'starting' if pending else 'ready'}: domain {cfg.domain} ({base}), data in {cfg.data_dir}"]
    if cfg.ldap_port:
        lines.append(f"  LDAP      {cfg.url('ldap', cfg.ldap_port)}  (StartTLS available)")
    if cfg.ldaps_port:
        lines.append(f"  LDAPS     {cfg.url('ldaps', cfg.ldaps_port)}  (self-signed certificate: {cfg.cert_file})")
    if cfg.ldapi_socket:
        lines.append(f"  LDAPI     {ldapi_url(cfg.ldapi_socket)}  (SASL EXTERNAL: root and this user bind as the administrator)")
    if cfg.https_port:
        lines.append(f"  Health    {cfg.url('https', cfg.https_port, '/health')}  (Prometheus metrics: /metrics)")
    lines.append(f"  Admin     {adm}  (also administrator@{cfg.domain})")
    if cfg.ldap_port or cfg.ldaps_port or cfg.advertise_url:
        lines.append(f"  Node      {cfg.effective_node_name} at {cfg.effective_url}  (another node joins with "
                     f"--join {cfg.effective_url}; lightwave repl status --server {cfg.effective_url})")
    else:
        lines.append(f"  Node      {cfg.effective_node_name}  (no LDAP port: no other node can replicate with it)")
    if generated:
        lines.append(f"  Password  {generated}   <- generated now, shown once; also saved in {pwfile} (mode 0600)")
    elif os.path.exists(pwfile):
        lines.append(f"  Password  in {pwfile}")
    else:
        lines.append("  Password  the LIGHTWAVE_ADMIN_PASSWORD given at first start")
    pw_expr = f'"$(cat {pwfile})"' if os.path.exists(pwfile) else '"$LIGHTWAVE_ADMIN_PASSWORD"'
    lines.append("Try:")
    if cfg.ldap_port:
        lines.append(f'  ldapsearch -H {cfg.url("ldap", cfg.ldap_port, local=True)} -x -D "{adm}" -w {pw_expr} -b {base} "(objectClass=*)"')
        lines.append(f"  ldapwhoami -H {cfg.url('ldap', cfg.ldap_port, local=True)} -x -D administrator@{cfg.domain} -w {pw_expr}")
    if cfg.ldapi_socket:
        lines.append(f"  ldapwhoami -H {ldapi_url(cfg.ldapi_socket)} -Y EXTERNAL -Q")
    if cfg.ldaps_port:
        lines.append(f"  LDAPTLS_REQCERT=never ldapsearch -H {cfg.url('ldaps', cfg.ldaps_port, local=True)} -x -D \"{adm}\" -w {pw_expr} -b {base} -E pr=500/noprompt \"(uid=*)\"")
    if cfg.https_port:
        lines.append(f"  curl --cacert {cfg.cert_file} {cfg.url('https', cfg.https_port, '/health', local=True)}")
    lines.append("The CA (vmca) and token service (sts) are not part of this release yet.")
    lines.append("Stop with Ctrl-C (or SIGTERM).")
    print("\n".join(lines), flush=True)


def _setup_logging(level: str) -> None:
    from twisted.logger import (
        FilteringLogObserver, LogLevel, LogLevelFilterPredicate, globalLogBeginner, textFileLogObserver,
    )

    pred = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))
    globalLogBeginner.beginLoggingTo([FilteringLogObserver(textFileLogObserver(sys.stderr), [pred])],
                                     redirectStandardIO=False)


def _spawn_replicator(cfg: NodeConfig) -> "subprocess.Popen[bytes]":
    """The node's replication process (pulls from its partners; see replication.agent)."""
    payload = json.dumps({"config": _cfg_json(cfg)})
    env = dict(os.environ, LIGHTWAVE_SUPERVISOR_PID=str(os.getpid()))
    # children run in their own process group (here and in Supervisor): a Ctrl-C in the
    # terminal reaches `lightwave up` alone, which stops them with SIGTERM (the interrupt
    # reaching a child still importing ended it with a KeyboardInterrupt traceback)
    return subprocess.Popen([sys.executable, "-m", "lightwave.replicator", payload], env=env, process_group=0)


class _ReplicatorKeeper:
    """With one worker (run in this process): the replication process beside it, restarted
    by a watching thread if it dies, as the Supervisor does with more workers."""

    def __init__(self, cfg: NodeConfig) -> None:
        import threading

        self.cfg = cfg
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.proc = _spawn_replicator(cfg)
        threading.Thread(target=self._watch, name="replicator-keeper", daemon=True).start()

    def _watch(self) -> None:
        restarts = 0
        while not self.stopping.wait(0.5):
            if self.proc.poll() is None:
                continue
            print(f"lightwave: replication exited with status {self.proc.returncode}; restarting",
                  file=sys.stderr, flush=True)
            restarts += 1
            self.stopping.wait(min(5, 0.2 * restarts))
            with self.lock:
                if not self.stopping.is_set():
                    self.proc = _spawn_replicator(self.cfg)

    def stop(self) -> None:
        with self.lock:
            self.stopping.set()
            p = self.proc
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


class Supervisor:
    """Runs N worker processes and the replication process, restarts crashed ones, stops
    them all on SIGTERM/SIGINT."""

    def __init__(self, cfg: NodeConfig, n: int, ldapi_fd: int | None = None) -> None:
        self.cfg = cfg
        self.n = n
        self.ldapi_fd = ldapi_fd  # the listening ldapi socket, inherited by every worker
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * (n + 1)  # the last: replication
        self.stopping = False
        self.restarts = 0
        # each worker writes one byte here once its listeners are open (run_worker): the
        # banner waits for all of them, so "ready" means every worker serves
        self.ready_r, self.ready_w = os.pipe()
        os.set_blocking(self.ready_r, False)

    def _spawn(self, slot: int) -> None:
        if slot == self.n:
            self.procs[slot] = _spawn_replicator(self.cfg)
            return
        payload = json.dumps({"config": _cfg_json(self.cfg), "slot": slot, "slots": self.n, "ldapi_fd": self.ldapi_fd,
                              "ready_fd": self.ready_w})
        env = dict(os.environ, LIGHTWAVE_SUPERVISOR_PID=str(os.getpid()))
        fds = (self.ready_w,) if self.ldapi_fd is None else (self.ready_w, self.ldapi_fd)
        self.procs[slot] = subprocess.Popen([sys.executable, "-m", "lightwave.worker", payload], env=env, pass_fds=fds,
                                            process_group=0)

    def start(self) -> None:
        # handlers first: a SIGTERM during start-up must still stop the workers
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        for i in range(self.n + 1):
            self._spawn(i)

    def wait_ready(self, timeout: float) -> str | None:
        """None once every worker says it serves; otherwise why not (a worker exited, SIGTERM,
        or ``timeout`` seconds passed)."""
        import select

        ready: set[int] = set()
        pending = b""
        deadline = time.monotonic() + timeout
        while len(ready) < self.n:
            left = deadline - time.monotonic()
            if self.stopping:  # first: once asked to stop, a worker that exits is no failure
                return "stopped while starting"
            dead = [(i, p.returncode) for i, p in enumerate(self.procs[:self.n]) if p is not None and p.poll() is not None]
            if dead:
                return f"worker {dead[0][0]} exited with status {dead[0][1]} while starting; see the log lines above"
            if left <= 0:
                return (f"{self.n - len(ready)} of {self.n} LDAP workers did not start within {timeout:g} s; "
                        "see the log lines above")
            if select.select([self.ready_r], [], [], min(left, 0.1))[0]:
                pending += self._readiness()
                whole = len(pending) - len(pending) % 2  # a slot is two bytes, big-endian
                ready.update(int.from_bytes(pending[i:i + 2], "big") for i in range(0, whole, 2))
                pending = pending[whole:]
        return None

    def _readiness(self) -> bytes:
        """What workers wrote on the readiness pipe since the last call."""
        try:
            return os.read(self.ready_r, 4096)
        except BlockingIOError:
            return b""

    def stop(self) -> None:
        self.stopping = True
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for p in self.procs:
            if p is None:
                continue
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def run(self) -> int:
        while not self.stopping:
            time.sleep(0.2)
            self._readiness()  # a restarted worker's byte: nobody waits for it now
            for i, p in enumerate(self.procs):
                if p is not None and p.poll() is not None and not self.stopping:
                    what = "replication" if i == self.n else f"worker {i}"
                    print(f"lightwave: {what} exited with status {p.returncode}; restarting", file=sys.stderr, flush=True)
                    self.restarts += 1
                    time.sleep(min(5, 0.2 * self.restarts))
                    self._spawn(i)
        self.stop()
        os.close(self.ready_r)
        os.close(self.ready_w)
        print("lightwave: stopped", file=sys.stderr, flush=True)
        return 0


def _cfg_json(cfg: NodeConfig) -> dict[str, Any]:
    import dataclasses
    d = dataclasses.asdict(cfg)
    dc = d.pop("directory")
    dc["indexes"] = {k: sorted(v) for k, v in dc["indexes"].items()}
    dc["password_params"] = [list(x) for x in dc["password_params"]]
    d["directory"] = dc
    return d


def cfg_from_json(d: dict[str, Any]) -> NodeConfig:
    from vmdir.directory import DirectoryConfig
    dc = dict(d.pop("directory"))
    dc["indexes"] = {k: frozenset(v) for k, v in dc["indexes"].items()}
    dc["password_params"] = tuple(tuple(x) for x in dc["password_params"])
    return NodeConfig(directory=DirectoryConfig(**dc), **d)


# ---------------------------------------------------------------------- ldif

def cmd_ldif_import(args: argparse.Namespace) -> int:
    if args.server:
        from lightwave.ldifonline import import_online
        return import_online(args)
    from lightwave.ldifimport import import_ldif
    cfg = node_config(args)
    return import_ldif(cfg, args.file, keep_going=args.keep_going, quiet=args.quiet, jobs=args.jobs)


def cmd_ldif_export(args: argparse.Namespace) -> int:
    if args.server:
        from lightwave.ldifonline import export_online
        return export_online(args)
    from lightwave.offline import export_ldif
    cfg = node_config(args)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        return export_ldif(cfg, out, base=args.base)
    finally:
        if args.output:
            out.close()


def cmd_backup(args: argparse.Namespace) -> int:
    from lightwave.offline import backup
    cfg = node_config(args)
    return backup(cfg, args.dir)


def cmd_restore(args: argparse.Namespace) -> int:
    from lightwave.offline import restore
    cfg = node_config(args)
    return restore(cfg, args.dir, force=args.force)


# ---------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lightwave", description="Lightwave: directory, CA and identity server.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser("up", help="run a server node in the foreground",
                        description="Run a single node in the foreground until SIGTERM/SIGINT. "
                                    "The first start initialises the data directory.")
    _node_args(up)
    up.add_argument("--domain", help="default tenant's domain (default lightwave.local)")
    up.add_argument("--listen", metavar="ADDR", help="address every listener binds to (default 127.0.0.1)")
    up.add_argument("--ldap-port", type=int, metavar="PORT", help="LDAP port (default 10389; 0 = off)")
    up.add_argument("--ldaps-port", type=int, metavar="PORT", help="LDAPS port (default 10636; 0 = off)")
    up.add_argument("--https-port", type=int, metavar="PORT", help="HTTPS port (default 8443)")
    up.add_argument("--ldapi-path", metavar="PATH",
                    help="unix socket for ldapi:// (default <data-dir>/ldapi; relative to the data "
                         "directory; '' = off)")
    up.add_argument("--workers", type=int, metavar="N", help="LDAP worker processes (default: one per core)")
    up.add_argument("--log-level", choices=("debug", "info", "warn", "error"))
    up.add_argument("--node-name", metavar="NAME",
                    help="this node's name in the forest's topology (default <host>:<ldap port>)")
    up.add_argument("--advertise-url", metavar="URL",
                    help="URL other nodes reach this one at (default ldap://<listen>:<ldap port>; with a "
                         "wildcard --listen, this machine's host name)")
    up.add_argument("--join", metavar="URL",
                    help="first start only: join the forest of the node at URL (get a server id, copy "
                         "its data over replication, then replicate both ways). The forest "
                         "administrator's password comes from LIGHTWAVE_ADMIN_PASSWORD or a prompt")
    up.add_argument("--join-user", metavar="DN",
                    help="who registers this node at --join (default the forest administrator, "
                         "cn=Administrator,cn=Users,<domain DN>)")
    up.add_argument("--join-fingerprint", metavar="SHA256",
                    help="the SHA-256 fingerprint of the --join partner's TLS certificate (on the partner: "
                         "openssl x509 -noout -fingerprint -sha256 -in <data-dir>/tls/server.crt); without "
                         "it the first certificate seen is trusted and its fingerprint printed")
    up.add_argument("--tombstone-lifetime", type=float, metavar="SECONDS",
                    help="how long deletes are remembered for replication before they are purged "
                         "(default 5184000, 60 days); a node out of touch for longer must join again")
    up.add_argument("--quiet-ops", action="store_true", help="do not log one line per operation")
    up.add_argument("--no-sync", action="store_true",
                    help="do not fsync each commit (faster; a crash may lose the last writes)")
    up.set_defaults(func=cmd_up)

    ldif = sub.add_parser("ldif", help="import or export LDIF").add_subparsers(dest="ldif_cmd", metavar="ACTION")
    imp = ldif.add_parser("import", help="import entries from an LDIF file",
                          description="Import LDIF content records. Offline on a data directory by default "
                                      "(fast: batched transactions; the server may be running), or online "
                                      "through a server with --server.")
    imp.add_argument("file", metavar="FILE", help="LDIF file ('-' for standard input)")
    _node_args(imp)
    _online_args(imp)
    imp.add_argument("--keep-going", action="store_true", help="report bad records and continue")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.add_argument("--jobs", type=int, metavar="N",
                     help="offline: processes that parse and check entries (default: one per CPU; 0: none, "
                          "all work in this process)")
    imp.set_defaults(func=cmd_ldif_import)
    exp = ldif.add_parser("export", help="export entries as LDIF",
                          description="Write every entry (or the subtree under --base) as LDIF, parents first.")
    _node_args(exp)
    _online_args(exp)
    exp.add_argument("--base", metavar="DN", help="export only this subtree")
    exp.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    exp.set_defaults(func=cmd_ldif_export)

    bk = sub.add_parser("backup", help="write a consistent copy of the database (while serving)")
    bk.add_argument("dir", metavar="DIR", help="backup directory (created)")
    _node_args(bk)
    bk.set_defaults(func=cmd_backup)
    rs = sub.add_parser("restore", help="restore a backup into the data directory (server stopped)",
                        description="Replace the database with a backup. The restored database gets a new "
                                    "invocation id, so its USNs are never confused with the old ones.")
    rs.add_argument("dir", metavar="DIR", help="backup directory made by 'lightwave backup'")
    rs.add_argument("--force", action="store_true", help="replace an existing database")
    _node_args(rs)
    rs.set_defaults(func=cmd_restore)
    from lightwave.admin import register as register_admin
    register_admin(sub)  # `lightwave tenant ...` and `lightwave dir ...` (over LDAP)
    return p


def _online_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", metavar="URL",
                   help="work through a running server: ldap:// or ldaps:// (binding with --user and a password), "
                        "or ldapi://%%2Fpath%%2Fto%%2Fsocket (ldapi:/// for the default configuration's socket) "
                        "with SASL EXTERNAL as root or the server's user, no password")
    p.add_argument("--user", metavar="DN", help="bind DN or UPN (default the administrator)")
    p.add_argument("--password-file", metavar="FILE", help="file holding the password (default: "
                   "$LIGHTWAVE_PASSWORD, then $LIGHTWAVE_ADMIN_PASSWORD, then a prompt)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (CLIError, ConfigError) as exc:
        print(f"lightwave: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
