"""The two servers under test, behind one small interface.

Each server: ``prepare()`` (one-time setup of an empty data directory),
``import_ldif(path)`` (offline bulk load, returns wall seconds), ``start()``,
``stop()``, ``pid`` (root of the process tree whose CPU and memory are measured),
``port``, ``data_dir`` (what ``du`` measures) and ``needs_base`` (whether the LDIF
must contain the suffix entry).
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import time

from bench.data import ADMIN_PASSWORD, DOMAIN
from bench.procinfo import free_port, ldap_ready, stop_process, tree_pids, wait_ldap
from bench.slapd import Slapd

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tail(path: str, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class SlapdServer:
    name = "slapd"
    needs_base = True

    def __init__(self, workdir: str, *, nosync: bool, threads: int | None = None,
                 slapadd_quick: bool = True, log=print) -> None:
        self.s = Slapd(workdir, nosync=nosync, threads=threads, log=log)
        self.quick = slapadd_quick
        self.data_dir = self.db_dir = self.s.db_dir

    def describe(self) -> str:
        threads = self.s.threads or "default (16)"
        return (f"OpenLDAP slapd ({self.s.slapd_bin}), back-mdb, threads {threads}, "
                f"{'dbnosync' if self.s.nosync else 'durable commits'}, loglevel 0")

    def import_tool(self) -> str:
        return "slapadd -q" if self.quick else "slapadd"

    def prepare(self) -> None:
        pass

    def import_ldif(self, path: str) -> float:
        return self.s.slapadd(path, quick=self.quick)

    def start(self) -> None:
        self.s.start()

    def alive(self) -> str | None:
        """None if the server is up and answering, else what is wrong."""
        p = self.s.proc
        if p is None or p.poll() is not None:
            return f"slapd exited (status {p.returncode if p else '?'})"
        return None if ldap_ready(self.port, timeout=5) else "slapd does not answer a bind"

    def log_tail(self, lines: int = 20) -> str:
        return _tail(os.path.join(self.s.workdir, "slapd.log"), lines)

    def stop(self) -> None:
        self.s.stop()

    @property
    def pid(self) -> int:
        return self.s.pid

    @property
    def port(self) -> int:
        assert self.s.port is not None
        return self.s.port


class LightwaveServer:
    """Our server, through its command line (``lightwave up`` / ``lightwave ldif import``)."""
    name = "lightwave"
    needs_base = False  # the first start creates dc=lightwave,dc=local and cn=Users

    def __init__(self, workdir: str, *, nosync: bool, workers: int | None = None,
                 log_ops: bool = False, extra_args: tuple[str, ...] = (), log=print) -> None:
        self.workdir = os.path.abspath(workdir)
        self.data_dir = os.path.join(self.workdir, "data")
        self.nosync = nosync
        self.workers = workers
        self.log_ops = log_ops
        self.extra = tuple(extra_args)
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.ports: tuple[int, int, int] | None = None
        os.makedirs(self.workdir, exist_ok=True)
        exe = os.path.join(os.path.dirname(sys.executable), "lightwave")
        self.cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "lightwave.cli"]
        self.env = dict(os.environ, LIGHTWAVE_ADMIN_PASSWORD=ADMIN_PASSWORD)
        self.env["PYTHONPATH"] = REPO + (os.pathsep + self.env["PYTHONPATH"] if self.env.get("PYTHONPATH") else "")
        self._descendants: list[int] = []

    @staticmethod
    def available() -> str | None:
        """None if our server can be started, else why not."""
        r = subprocess.run([sys.executable, "-c", "import lightwave.cli, lightwave.nodes, lightwave.offline"],
                           cwd=REPO, capture_output=True, text=True)
        if r.returncode != 0:
            return (r.stderr.strip().splitlines() or ["import failed"])[-1]
        return None

    @property
    def db_dir(self) -> str:
        """What ``du`` measures: the LMDB directory (not TLS files and counters)."""
        db = os.path.join(self.data_dir, "db")
        return db if os.path.isdir(db) else self.data_dir

    def describe(self) -> str:
        w = self.workers if self.workers else "default (one per core)"
        return (f"lightwave up ({' '.join(os.path.basename(c) for c in self.cmd)}), workers {w}, "
                f"{'--no-sync' if self.nosync else 'durable commits'}, "
                f"{'per-op log lines' if self.log_ops else '--quiet-ops'}")

    def import_tool(self) -> str:
        return "lightwave ldif import"

    def prepare(self) -> None:
        """First start (creates the tenant dc=lightwave,dc=local, cn=Users, the admin), then stop."""
        self.start()
        self.stop()

    def import_ldif(self, path: str) -> float:
        cmd = self.cmd + ["ldif", "import", path, "--data-dir", self.data_dir, "--quiet"]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        dt = time.perf_counter() - t0
        out = r.stdout.decode(errors="replace")
        with open(os.path.join(self.workdir, "import.log"), "a") as f:
            f.write(out)
        if r.returncode != 0:
            raise RuntimeError(f"lightwave ldif import failed ({r.returncode}): {out[-2000:]}")
        m = re.search(r"imported (\d+) entries", out)
        self.imported = int(m.group(1)) if m else None
        return dt

    def start(self, timeout: float = 120.0) -> None:
        ldap, ldaps, https = free_port(), free_port(), free_port()
        self.ports = (ldap, ldaps, https)
        cmd = self.cmd + [
            "up", "--data-dir", self.data_dir, "--domain", DOMAIN, "--listen", "127.0.0.1",
            "--ldap-port", str(ldap), "--ldaps-port", str(ldaps), "--https-port", str(https),
        ]
        if self.workers:
            cmd += ["--workers", str(self.workers)]
        if self.nosync:
            cmd.append("--no-sync")
        if not self.log_ops:
            cmd.append("--quiet-ops")
        cmd += list(self.extra)
        atexit.register(self.stop)  # never leave a server behind if the caller dies
        self._logf = open(os.path.join(self.workdir, "server.log"), "ab")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=subprocess.STDOUT)
        try:
            wait_ldap(ldap, timeout, self.proc, "lightwave")
            # every worker should be up before we measure: wait until the tree stops growing
            n = self.workers or os.cpu_count() or 1
            want = 1 if n == 1 else n + 1  # supervisor + workers
            deadline = time.monotonic() + 30
            while len(tree_pids(self.proc.pid)) < want and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(0.5)
            self._descendants = tree_pids(self.proc.pid)
        except Exception:
            self.stop()
            tail = open(os.path.join(self.workdir, "server.log"), "rb").read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"lightwave did not start; log tail:\n{tail}")

    def alive(self) -> str | None:
        """None if the server is up and answering, else what is wrong."""
        p = self.proc
        if p is None or p.poll() is not None:
            return f"lightwave up exited (status {p.returncode if p else '?'})"
        return None if ldap_ready(self.port, timeout=5) else "lightwave does not answer a bind"

    def log_tail(self, lines: int = 20) -> str:
        return _tail(os.path.join(self.workdir, "server.log"), lines)

    def stop(self) -> None:
        if self.proc is not None:
            known = set(self._descendants) | set(tree_pids(self.proc.pid))
            stop_process(self.proc, timeout=30)
            self.proc = None
            # Workers we started that outlived the supervisor: stop them by pid.
            for pid in known:
                try:
                    os.kill(pid, 0)
                except OSError:
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if b"lightwave" not in f.read():
                            continue
                    os.kill(pid, 15)
                except OSError:
                    pass
        if getattr(self, "_logf", None):
            self._logf.close()
            self._logf = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def port(self) -> int:
        assert self.ports is not None
        return self.ports[0]


def add_alone_options(p) -> None:
    """The options of a benchmark that runs each server alone, Lightwave then slapd
    (``alone_servers``): ``--workers``, ``--nosync``, ``--skip-slapd``."""
    p.add_argument("--workers", type=int, default=None, help="lightwave worker processes (default: its own)")
    p.add_argument("--nosync", action="store_true", help="neither server fsyncs a commit")
    p.add_argument("--skip-slapd", action="store_true", help="do not run OpenLDAP")


def alone_servers(work: str, a) -> list:
    """Lightwave and (unless ``--skip-slapd``) slapd under ``work``, quiet, as the options of
    ``add_alone_options`` say."""
    quiet = lambda *_: None  # noqa: E731
    servers: list = [LightwaveServer(os.path.join(work, "lw"), nosync=a.nosync, workers=a.workers, log=quiet)]
    if not a.skip_slapd:
        servers.append(SlapdServer(os.path.join(work, "slapd"), nosync=a.nosync, log=quiet))
    return servers


def remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
