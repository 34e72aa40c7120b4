"""ldapi:// (LDAP over the server's unix socket) with SASL EXTERNAL by peer credentials:
the forest administrator's way in from the local machine, even when locked out.

Real server (two workers sharing one inherited socket), OpenLDAP's tools, ldap3 and the
admin CLI. The tests that switch to another uid need root (setpriv)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from urllib.parse import quote

import ldap3
import pytest

from tests.conftest import ADMIN, ADMIN_PW, BASE, LIGHTWAVE, ROOT, Server, free_port, make_server, run_tool, wait_for

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
needs_root = pytest.mark.skipif(os.getuid() != 0 or shutil.which("setpriv") is None,
                                reason="switching to another uid needs root and setpriv")


def url_of(path: str) -> str:
    return "ldapi://" + quote(path, safe="")


@pytest.fixture(scope="module")
def sock_dir() -> Iterator[str]:
    # outside the data directory (mode 0700), so that another uid can reach the socket file
    # and only its mode keeps that uid out
    d = tempfile.mkdtemp(prefix="lw-ldapi-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, sock_dir: str) -> Iterator[Server]:
    s = make_server(tmp_path_factory, "ldapi", workers=2,
                    extra=["--quiet-ops", "--ldapi-path", os.path.join(sock_dir, "ldapi")])
    s.start()
    yield s
    s.stop()


def sock(srv: Server) -> str:
    return srv.extra[srv.extra.index("--ldapi-path") + 1]


def whoami(url: str, *prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, "ldapwhoami", "-H", url, "-Y", "EXTERNAL", "-Q"],
                          capture_output=True, text=True, timeout=30)


def cli(*args: str, prefix: tuple[str, ...] = (), cwd: str = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTWAVE_")}
    return subprocess.run([*prefix, LIGHTWAVE, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_default_socket_is_in_the_data_dir_for_the_server_user_only(server: Server) -> None:
    path = os.path.join(server.data_dir, "ldapi")
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()
    r = whoami(url_of(path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().lower() == f"dn:{ADMIN}".lower()


def test_admin_cli_default_ldapi_url_is_the_default_configurations_socket(server: Server) -> None:
    # `ldapi:///` = conf/lightwave.toml's socket: ./var/ldapi from the current directory
    r = cli("dir", "user", "list", "--json", "--server", "ldapi:///", cwd=os.path.dirname(server.data_dir))
    assert r.returncode == 0, r.stderr
    assert "Administrator" in [u["name"] for u in json.loads(r.stdout)]


def test_locked_out_administrator_gets_in_and_unlocks_over_ldapi(srv: Server) -> None:
    for _ in range(5):
        assert run_tool("ldapwhoami", "-H", srv.url, "-x", "-D", ADMIN, "-w", "guess-Pw-1").returncode == 49
    r = run_tool("ldapwhoami", "-H", srv.url, "-x", "-e", "ppolicy", "-D", ADMIN, "-w", ADMIN_PW)
    assert r.returncode == 49 and "Account locked" in r.stdout + r.stderr
    r = whoami(url_of(sock(srv)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().lower() == f"dn:{ADMIN}".lower()
    r = run_tool("ldapmodify", "-H", url_of(sock(srv)), "-Y", "EXTERNAL", "-Q",
                 input=f"dn: {ADMIN}\nchangetype: modify\ndelete: pwdAccountLockedTime\n")
    assert r.returncode == 0, r.stderr
    assert run_tool("ldapwhoami", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW).returncode == 0
    # the audit log says how: EXTERNAL over ldapi, and the peer's uid (successful binds are
    # written within a second: vmdir.server.audit)
    ext = wait_for("the ldapi bind is in the audit log",
                   lambda: [b for b in audit_events(srv) if b["event"] == "bind" and b.get("via") == "ldapi"], timeout=10)
    assert ext[0]["method"] == "EXTERNAL" and ext[0]["uid"] == os.getuid() and ext[0]["dn"] == ADMIN
    assert ext[0]["peer"].startswith("ldapi pid=")


def test_admin_cli_over_ldapi_binds_without_a_password(srv: Server) -> None:
    r = cli("dir", "user", "unlock", "administrator", "--server", url_of(sock(srv)))
    assert r.returncode == 0, r.stderr
    r = cli("dir", "user", "list", "--json", "--server", "ldapi://" + sock(srv))  # ldapi:///path works too
    assert r.returncode == 0, r.stderr
    assert "Administrator" in [u["name"] for u in json.loads(r.stdout)]
    r = cli("dir", "user", "list", "--server", url_of(sock(srv)), "--user", ADMIN)
    assert r.returncode == 1 and "do not apply to ldapi" in r.stderr
    r = cli("dir", "user", "list", "--server", url_of(sock(srv) + ".missing"))
    assert r.returncode == 1 and "no such socket (is the server running?)" in r.stderr


def test_two_workers_serve_the_one_socket_on_repeated_connections(srv: Server) -> None:
    log = srv.log()
    assert "worker 0 serving" in log and "worker 1 serving" in log
    assert log.count(url_of(sock(srv))) >= 2  # both workers adopted the inherited socket
    for _ in range(12):
        r = whoami(url_of(sock(srv)))
        assert r.returncode == 0 and r.stdout.strip().lower() == f"dn:{ADMIN}".lower(), r.stderr
    # ldap3 over ldapi: EXTERNAL, and SASL PLAIN, which a unix socket allows without TLS
    c = ldap3.Connection(ldap3.Server("ldapi://" + sock(srv), get_info=ldap3.NONE),
                         authentication=ldap3.SASL, sasl_mechanism=ldap3.EXTERNAL)
    assert c.bind(), c.result
    assert c.extend.standard.who_am_i().lower() == f"dn:{ADMIN}".lower()
    c.unbind()
    c = ldap3.Connection(ldap3.Server("ldapi://" + sock(srv), get_info=ldap3.NONE),
                         authentication=ldap3.SASL, sasl_mechanism=ldap3.PLAIN,
                         sasl_credentials=(None, ADMIN, ADMIN_PW))
    assert c.bind(), c.result
    c.unbind()


@needs_root
def test_another_uid_is_kept_out_by_the_mode_and_is_not_mapped(srv: Server) -> None:
    url = url_of(sock(srv))
    # mode 0600: uid 65534 cannot even connect
    r = whoami(url, *NOBODY)
    assert r.returncode == 255 and "Can't contact LDAP server" in r.stderr
    r = cli("dir", "user", "list", "--server", url, prefix=tuple(NOBODY))
    assert r.returncode == 1 and "permission denied" in r.stderr
    # with the socket opened to everyone, EXTERNAL still maps only root and the server's user
    os.chmod(sock(srv), 0o666)
    try:
        r = whoami(url, *NOBODY)
        assert r.returncode == 49, r.stdout + r.stderr
        assert "only root and the server's own user are mapped" in r.stderr
        r = subprocess.run([*NOBODY, "ldapwhoami", "-H", url, "-x"], capture_output=True, text=True, timeout=30)
        assert (r.returncode, r.stdout.strip()) == (0, "anonymous")
        r = cli("dir", "user", "list", "--server", url, prefix=tuple(NOBODY))
        assert r.returncode == 1 and "uid 65534 is not mapped" in r.stderr
    finally:
        os.chmod(sock(srv), 0o600)
    assert '"reason": "local user not mapped"' in srv.log() and '"uid": 65534' in srv.log()


def test_clean_stop_removes_the_socket_and_a_restart_replaces_a_stale_one(srv: Server) -> None:
    path = sock(srv)
    assert srv.stop() == 0
    assert not os.path.exists(path)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)  # a socket file nobody listens on, as a killed server leaves it
    dead.close()
    logged = os.path.getsize(srv.log_path)
    srv.start()
    r = whoami(url_of(path))
    assert r.returncode == 0, r.stderr
    # a SIGTERM before the supervisor has seen its workers up counts as a failed start: wait for it
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(srv.log_path, "rb") as f:
            f.seek(logged)
            if b"Lightwave directory ready" in f.read():
                break
        time.sleep(0.05)
    assert srv.stop() == 0
    assert not os.path.exists(path)


def test_online_ldif_import_and_export_over_ldapi_without_a_password(srv: Server, tmp_path) -> None:
    if srv.proc is None or srv.proc.poll() is not None:
        srv.start()
    f = tmp_path / "in.ldif"
    f.write_text(f"dn: ou=viaipc,{BASE}\nobjectClass: organizationalUnit\nou: viaipc\n\n"
                 f"dn: uid=ipc1,ou=viaipc,{BASE}\nobjectClass: account\nuid: ipc1\n\n")
    r = cli("ldif", "import", str(f), "--server", url_of(sock(srv)))
    assert r.returncode == 0 and "imported 2 entries" in r.stderr, r.stderr
    r = cli("ldif", "export", "--server", url_of(sock(srv)), "--base", f"ou=viaipc,{BASE}")
    assert r.returncode == 0, r.stderr
    assert f"dn: uid=ipc1,ou=viaipc,{BASE}" in r.stdout and "entryUUID:" in r.stdout
    # the audit log shows who did it: the administrator, by SASL EXTERNAL over ldapi
    wait_for("the ldapi bind is in the audit log", lambda: any(
        b["event"] == "bind" and b.get("method") == "EXTERNAL" and b.get("via") == "ldapi" for b in audit_events(srv)),
        timeout=10)
    r = cli("ldif", "export", "--server", url_of(sock(srv)), "--user", ADMIN)
    assert r.returncode == 1 and "do not apply to ldapi" in r.stderr


def audit_events(srv: Server) -> list[dict]:
    return [json.loads(line.split(" audit ", 1)[1]) for line in srv.log().splitlines() if "[audit]" in line]

def _start(data_dir: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, LIGHTWAVE_ADMIN_PASSWORD=ADMIN_PW)
    return subprocess.Popen([LIGHTWAVE, "up", "--data-dir", data_dir, "--listen", "127.0.0.1", "--https-port", "0",
                             "--quiet-ops", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=ROOT)


def _until_ready(p: subprocess.Popen[str]) -> str:
    """The server's output up to its banner's last line (it prints it once it serves)."""
    seen = []
    assert p.stdout is not None
    for line in p.stdout:
        seen.append(line)
        if line.startswith("Stop with Ctrl-C") or "did not start" in line:
            break
    return "".join(seen)


def _stop(p: subprocess.Popen[str]) -> str:
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out
    return out


def test_several_workers_on_ldapi_alone(tmp_path) -> None:
    """Both TCP ports off: the supervisor says "ready" once every worker serves the socket."""
    d = tempfile.mkdtemp(prefix="lw-ipc-")  # short: /tmp/... fits in a socket address
    try:
        p = _start(os.path.join(d, "var"), "--ldap-port", "0", "--ldaps-port", "0", "--workers", "2")
        banner = ""
        try:
            banner = _until_ready(p)
            assert "Lightwave directory ready" in banner, banner
            before = banner.split("Lightwave directory ready")[0]
            assert "worker 0 serving ldapi://" in before and "worker 1 serving ldapi://" in before, banner
            assert "ldap://" not in banner and "ldaps://" not in banner, banner
            assert "no LDAP port: no other node can replicate with it" in banner
            for _ in range(6):
                r = whoami(url_of(os.path.join(d, "var", "ldapi")))
                assert r.returncode == 0 and r.stdout.strip().lower() == f"dn:{ADMIN}".lower(), r.stderr
            with open(os.path.join(d, "var", "lightwave.pid")) as f:
                assert f.read() == f"{p.pid}\n"  # the supervisor's: the process to signal
        finally:
            _stop(p)
        # a clean stop leaves neither the socket nor the pid file
        assert not os.path.exists(os.path.join(d, "var", "ldapi"))
        assert not os.path.exists(os.path.join(d, "var", "lightwave.pid"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_taken_by_another_program_is_a_clear_error(tmp_path, workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([LIGHTWAVE, "up", "--data-dir", str(tmp_path / "var"), "--listen", "127.0.0.1",
                            "--ldap-port", str(port), "--ldaps-port", "0", "--https-port", "0", "--workers", workers],
                           capture_output=True, text=True, env=dict(os.environ, LIGHTWAVE_ADMIN_PASSWORD=ADMIN_PW),
                           cwd=ROOT, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"cannot listen on 127.0.0.1 port {port}: Address already in use" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "Lightwave directory ready" not in r.stdout, r.stdout + r.stderr


def test_a_data_dir_too_long_for_the_default_socket_serves_without_it(tmp_path) -> None:
    deep = tmp_path / ("d" * 120)
    port = free_port()
    p = _start(str(deep), "--ldap-port", str(port), "--ldaps-port", "0")
    try:
        banner = _until_ready(p)
        assert "Lightwave directory ready" in banner, banner
        assert "ldapi is off" in banner and "is longer than 107 bytes; set a shorter ldapi_path" in banner
        assert "LDAPI" not in banner.split("ldapi is off", 1)[1]
        r = run_tool("ldapwhoami", "-H", f"ldap://127.0.0.1:{port}", "-x", "-D", ADMIN, "-w", ADMIN_PW)
        assert r.returncode == 0, r.stderr
    finally:
        _stop(p)
    # a socket path asked for explicitly is not given up on: the server refuses to start
    r = subprocess.run([LIGHTWAVE, "up", "--data-dir", str(deep), "--ldap-port", str(port), "--ldaps-port", "0",
                        "--https-port", "0", "--ldapi-path", str(deep / "sock")], capture_output=True, text=True,
                       env=dict(os.environ, LIGHTWAVE_ADMIN_PASSWORD=ADMIN_PW), timeout=60)
    assert r.returncode == 1 and "is longer than 107 bytes; set a shorter ldapi_path" in r.stderr, r.stderr
