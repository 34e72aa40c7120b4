"""Shared fixtures: real servers on free ports in temporary data directories."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from bench.procinfo import free_port  # one definition for the tests and the benchmarks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN_PW = "Secret-admin-pw1"
BASE = "dc=lightwave,dc=local"
ADMIN = f"cn=Administrator,cn=Users,{BASE}"
LIGHTWAVE = os.path.join(os.path.dirname(sys.executable), "lightwave")


@dataclass
class Server:
    data_dir: str
    ldap_port: int
    ldaps_port: int
    https_port: int
    workers: int = 1
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    log_path: str = ""
    listen: str = "127.0.0.1"

    @property
    def host(self) -> str:
        """The listen address as a URL has it (an IPv6 address in brackets)."""
        return f"[{self.listen}]" if ":" in self.listen else self.listen

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:{self.ldaps_port}"

    def args(self) -> list[str]:
        return [LIGHTWAVE, "up", "--data-dir", self.data_dir, "--ldap-port", str(self.ldap_port),
                "--ldaps-port", str(self.ldaps_port), "--https-port", str(self.https_port),
                "--workers", str(self.workers), "--listen", self.listen, *self.extra]

    def start(self, timeout: float = 30) -> "Server":
        env = dict(os.environ, LIGHTWAVE_ADMIN_PASSWORD=ADMIN_PW)
        self.log_path = os.path.join(self.data_dir + ".log")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _STARTED.append(self.proc)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                for port in self.ports():
                    with socket.create_connection((self.listen, port), timeout=1):
                        pass
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc is not None
        # the supervisor and its workers; then wait until every one is gone (and its sockets closed)
        pids = _descendants(self.proc.pid) + [self.proc.pid]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        # a zombie's other threads (e.g. one inside fsync) can keep the listening sockets open:
        # wait until every thread is gone and the ports refuse connections
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (any(_alive(p) for p in pids) or self._accepting()):
            time.sleep(0.02)

    def ports(self) -> list[int]:
        """The TCP ports it listens on (0: that listener is off)."""
        return [p for p in (self.ldap_port, self.ldaps_port, self.https_port) if p]

    def _accepting(self) -> bool:
        for port in self.ports():
            try:
                with socket.create_connection((self.listen, port), timeout=0.5):
                    return True
            except OSError:
                pass
        return False

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-20000:]
        except OSError:
            return ""

    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid] + _descendants(self.proc.pid)


_STARTED: list[subprocess.Popen[bytes]] = []  # every server process a test started


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop servers a test or fixture left running (a fixture whose setup failed half way
    never reaches its teardown): no server outlives the test run."""
    for proc in _STARTED:
        if proc.poll() is None:
            proc.terminate()
    for proc in _STARTED:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _alive(pid: int) -> bool:
    """True while any thread of ``pid`` still runs (a zombie leader may have live threads)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z" or len(tasks) > 1


def _descendants(pid: int) -> list[int]:
    out = []
    try:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        return out
    for k in kids:
        out.append(int(k))
        out.extend(_descendants(int(k)))
    return out


def make_server(tmp_path_factory: pytest.TempPathFactory, name: str, workers: int = 1, extra: list[str] | None = None) -> Server:
    d = tmp_path_factory.mktemp(name)
    return Server(str(d / "var"), free_port(), free_port(), free_port(), workers, extra or ["--quiet-ops"])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One shared single-worker server for tests that do not need their own."""
    srv = make_server(tmp_path_factory, "shared", workers=1, extra=[])
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture()
def ldap_env() -> dict[str, str]:
    """Environment for OpenLDAP client tools: trust our self-signed certificate."""
    return dict(os.environ, LDAPTLS_REQCERT="never")


def run_tool(tool: str, *args: str, env: dict[str, str] | None = None, input: str | None = None,
             timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run an ldap-utils tool; its exit status is the LDAP result code."""
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} not installed (Debian ldap-utils); `make test` installs it")
    e = dict(os.environ, LDAPTLS_REQCERT="never") if env is None else env
    return subprocess.run([tool, *args], capture_output=True, text=True, env=e, input=input, timeout=timeout)


T = TypeVar("T")


def wait_for(what: str, cond: Callable[[], T], timeout: float = 30, interval: float = 0.05) -> T:
    """Poll ``cond`` until it returns something true (returned); fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting until {what}")
        time.sleep(interval)


def https_get(srv: Server, path: str, method: str = "GET") -> tuple[int, str, bytes]:
    """(status, content type, body) of a request to the node's HTTPS front end, its
    certificate checked against the one the node made (for localhost)."""
    import http.client
    import ssl

    ctx = ssl.create_default_context(cafile=os.path.join(srv.data_dir, "tls", "server.crt"))
    conn = http.client.HTTPSConnection("localhost", srv.https_port, context=ctx, timeout=10)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.getheader("content-type") or "", r.read()
    finally:
        conn.close()


def health(srv: Server) -> tuple[int, dict]:
    import json

    code, ctype, body = https_get(srv, "/health")
    assert ctype == "application/json", (code, ctype, body)
    return code, json.loads(body)


def scrape(srv: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The node's /metrics, parsed by Prometheus' own parser: (sample name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    code, ctype, body = https_get(srv, "/metrics")
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4"), (code, ctype)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}
