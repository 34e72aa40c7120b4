"""Configured limits, seen from real sockets: idle timeout, maximum connections, and
a client that stops reading a large search while others keep being served."""
from __future__ import annotations

import socket
import time

import ldap3
import pytest

from tests.conftest import ADMIN, ADMIN_PW, BASE, Server, make_server, run_tool
from vmdir.ber import decode_response, encode_request, peek_frame
from vmdir.proto import messages as m

NOTICE = "1.3.6.1.4.1.1466.20036"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Server:
    conf = tmp_path_factory.mktemp("limits") / "lw.toml"
    conf.write_text("[ldap]\nidle_timeout = 2\nmax_connections = 20\n")
    srv = make_server(tmp_path_factory, "limited", workers=1, extra=["--config", str(conf), "--quiet-ops"])
    srv.start()
    yield srv
    srv.stop()


def read_all(s: socket.socket, timeout: float) -> list[object]:
    s.settimeout(timeout)
    buf = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    out, off = [], 0
    while (n := peek_frame(buf, off, 1 << 24)) is not None:
        out.append(decode_response(buf[off:off + n])[1])
        off += n
    return out


def test_idle_connection_gets_notice_and_is_closed(limited: Server) -> None:
    s = socket.create_connection(("127.0.0.1", limited.ldap_port))
    t0 = time.monotonic()
    got = read_all(s, timeout=10)
    waited = time.monotonic() - t0
    s.close()
    assert got and isinstance(got[-1], m.ExtendedResponse) and got[-1].name == NOTICE
    assert 1.5 <= waited < 9


def test_connections_over_the_limit_are_refused_politely(limited: Server) -> None:
    held = [socket.create_connection(("127.0.0.1", limited.ldap_port)) for _ in range(20)]
    try:
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", limited.ldap_port))
        got = read_all(extra, timeout=5)
        extra.close()
        assert got and isinstance(got[-1], m.ExtendedResponse) and got[-1].name == NOTICE
        assert int(got[-1].code) == 52  # unavailable
    finally:
        for h in held:
            h.close()
    time.sleep(0.3)
    r = run_tool("ldapwhoami", "-H", limited.url, "-x", "-D", ADMIN, "-w", ADMIN_PW)
    assert r.returncode == 0, r.stderr  # slots are given back


def test_a_client_that_stops_reading_does_not_stall_others(server: Server) -> None:
    c = ldap3.Connection(ldap3.Server(server.url), ADMIN, ADMIN_PW, auto_bind=True)
    c.add(f"ou=bulk,{BASE}", ["organizationalUnit"], {"ou": "bulk"})
    big = "x" * 4000
    for i in range(300):
        c.add(f"cn=b{i},ou=bulk,{BASE}", ["person"], {"cn": f"b{i}", "sn": "b", "description": big})
    # ~1.2 MB of results, requested many times over, never read
    slow = socket.create_connection(("127.0.0.1", server.ldap_port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(encode_request(1, m.BindRequest(3, ADMIN, ADMIN_PW.encode())))
    req = m.SearchRequest(f"ou=bulk,{BASE}", 2, 0, 0, 0, False, m.Present("objectClass"), ())
    slow.sendall(b"".join(encode_request(i, req) for i in range(2, 12)))
    try:
        t0 = time.monotonic()
        for _ in range(20):
            r = run_tool("ldapsearch", "-H", server.url, "-x", "-D", ADMIN, "-w", ADMIN_PW, "-LLL",
                         "-b", f"cn=b7,ou=bulk,{BASE}", "-s", "base", "(objectClass=*)", "cn")
            assert r.returncode == 0 and "cn: b7" in r.stdout
        assert time.monotonic() - t0 < 20
    finally:
        slow.close()
    c.delete(f"ou=bulk,{BASE}", controls=[("1.2.840.113556.1.4.805", True, None)])
