"""Hostile bytes over raw sockets: the server answers with a Notice of Disconnection
(or just closes), never crashes, writes nothing, and keeps serving the next client."""
from __future__ import annotations

import socket
import struct

import pytest

from tests.conftest import ADMIN, ADMIN_PW, BASE, Server, make_server, run_tool
from vmdir.ber import decode_response, encode_request, peek_frame
from vmdir.proto import messages as m

NOTICE = "1.3.6.1.4.1.1466.20036"


def exchange(srv: Server, data: bytes, timeout: float = 5.0) -> list[tuple[int, object]]:
    """Send raw bytes, read until the server closes; return decoded responses."""
    s = socket.create_connection(("127.0.0.1", srv.ldap_port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    out = []
    off = 0
    while off < len(buf):
        n = peek_frame(buf, off, 1 << 24)
        if n is None:
            break
        msgid, resp, _ = decode_response(bytes(buf[off:off + n]))
        out.append((msgid, resp))
        off += n
    return out


def assert_notice(responses: list[tuple[int, object]], code: int = 2) -> None:
    assert responses, "expected a Notice of Disconnection"
    msgid, resp = responses[-1]
    assert msgid == 0
    assert isinstance(resp, m.ExtendedResponse) and resp.name == NOTICE
    assert int(resp.code) == code


def still_serving(srv: Server) -> None:
    r = run_tool("ldapwhoami", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW)
    assert r.returncode == 0, r.stderr


def count_entries(srv: Server) -> int:
    r = run_tool("ldapsearch", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW, "-LLL", "-b", BASE,
                 "(objectClass=*)", "1.1")
    assert r.returncode == 0
    return r.stdout.count("dn:")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Server:
    s = make_server(tmp_path_factory, "robust", workers=1, extra=["--quiet-ops"])
    s.start()
    yield s
    s.stop()


CASES = {
    "not a sequence": b"\x04\x03abc",
    "garbage": b"\xff\xfe\xfd\xfc" * 8,
    "indefinite length": b"\x30\x80\x02\x01\x01\x42\x00\x00\x00",
    "absurd length": b"\x30\x84\x7f\xff\xff\xff\x02\x01\x01",
    "length of length too big": b"\x30\x89\x01\x02\x03\x04\x05\x06\x07\x08\x09",
    "bad op tag": b"\x30\x05\x02\x01\x01\x5f\x00",
    "msgid zero": b"\x30\x05\x02\x01\x00\x42\x00",
    "truncated inner": b"\x30\x06\x02\x01\x01\x63\x10\x04",
    "trailing junk in op": b"\x30\x08\x02\x01\x01\x42\x00\x01\x01\x00",
    "bad bool": b"\x30\x0c\x02\x01\x01\x60\x07\x02\x01\x03\x04\x00\x80\x00" + b"",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_frames_get_notice(srv: Server, name: str) -> None:
    before = count_entries(srv)
    resp = exchange(srv, CASES[name])
    if name == "bad bool":  # a well-formed anonymous bind: answered normally
        assert resp and isinstance(resp[0][1], m.BindResponse)
    else:
        assert_notice(resp)
    still_serving(srv)
    assert count_entries(srv) == before


def test_oversized_pdu_closed_before_body(srv: Server) -> None:
    # declares 64 MiB; we never send the body: the server must not wait for it
    resp = exchange(srv, b"\x30\x84\x04\x00\x00\x00\x02\x01\x01", timeout=5)
    assert_notice(resp)
    still_serving(srv)


def test_deep_filter_refused(srv: Server) -> None:
    f: m.Filter = m.Present("objectClass")
    for _ in range(200):
        f = m.Not(f)
    req = m.SearchRequest(BASE, 2, 0, 0, 0, False, f, ())
    resp = exchange(srv, encode_request(1, req))
    assert_notice(resp)
    still_serving(srv)


def test_truncated_frame_then_eof(srv: Server) -> None:
    pdu = encode_request(1, m.BindRequest(3, ADMIN, ADMIN_PW.encode()))
    resp = exchange(srv, pdu[: len(pdu) // 2])
    assert resp == []  # nothing to answer; the server just sees EOF
    still_serving(srv)


def test_non_v3_bind_is_protocol_error(srv: Server) -> None:
    pdu = encode_request(1, m.BindRequest(2, "", b""))
    s = socket.create_connection(("127.0.0.1", srv.ldap_port), timeout=5)
    s.sendall(pdu)
    data = s.recv(65536)
    s.close()
    n = peek_frame(data, 0, 1 << 20)
    assert n is not None
    msgid, resp, _ = decode_response(data[:n])
    assert msgid == 1 and isinstance(resp, m.BindResponse) and int(resp.code) == 2


def test_pipelined_requests_all_answered(srv: Server) -> None:
    reqs = [encode_request(1, m.BindRequest(3, ADMIN, ADMIN_PW.encode()))]
    for i in range(2, 40):
        reqs.append(encode_request(i, m.SearchRequest(BASE, 0, 0, 0, 0, False, m.Present("objectClass"), ("1.1",))))
    reqs.append(encode_request(40, m.UnbindRequest()))
    resp = exchange(srv, b"".join(reqs))
    done = {msgid for msgid, r in resp if isinstance(r, m.SearchResultDone)}
    assert done == set(range(2, 40))
    assert all(int(r.code) == 0 for _, r in resp if isinstance(r, m.SearchResultDone))


def test_many_garbage_connections_do_not_hurt(srv: Server) -> None:
    for i in range(50):
        exchange(srv, struct.pack(">I", i) * 3, timeout=2)
    still_serving(srv)
