"""vmdir.proto.connection: the sans-I/O LDAP server connection."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmdir.ber import decode_response, encode_request
from vmdir.proto.connection import STARTTLS_OID, ConnState, LDAPServerConnection
from vmdir.proto.events import NEED_DATA, PAUSED, Abandoned, Closed, RequestReceived
from vmdir.proto.messages import (
    NOTICE_OF_DISCONNECTION_OID, AbandonRequest, BindRequest, BindResponse, Control, DelRequest, DelResponse,
    Equality, ExtendedRequest, ExtendedResponse, IntermediateResponse, ModifyRequest, ModifyResponse,
    Present, SearchRequest, SearchResultDone, SearchResultEntry, SearchResultReference, UnbindRequest,
)
from vmdir.proto.results import LocalProtocolError, RemoteProtocolError, ResultCode

OK = ResultCode.success
SEARCH = SearchRequest("dc=x", 2, 0, 0, 0, False, Equality("uid", b"u1"), ("cn",))
ENTRY = SearchResultEntry("uid=u1,dc=x", (("cn", (b"User 1",)),))
DONE = SearchResultDone(OK)
BIND = BindRequest(3, "cn=admin", b"pw")
STARTTLS = ExtendedRequest(STARTTLS_OID)


def pdu(msgid, op, controls=()):
    return encode_request(msgid, op, controls)


def drain(conn):
    """All events up to and including the first NEED_DATA / PAUSED / Closed."""
    out = []
    while True:
        ev = conn.next_event()
        out.append(ev)
        if ev is NEED_DATA or ev is PAUSED or isinstance(ev, Closed):
            return out


def feed(conn, *pdus):
    conn.receive_data(b"".join(pdus))
    return drain(conn)


def test_simple_search():
    conn = LDAPServerConnection()
    assert conn.next_event() is NEED_DATA
    ctl = (Control("1.2.840.113556.1.4.319", False, b"0\x05\x02\x01\x05\x04\x00"),)
    assert feed(conn, pdu(1, SEARCH, ctl)) == [RequestReceived(1, SEARCH, ctl), NEED_DATA]
    assert conn.in_flight == {1}
    out = conn.send(1, ENTRY)
    assert decode_response(out) == (1, ENTRY, ())
    assert conn.in_flight == {1}
    out = conn.send(1, DONE, (Control("1.2.3"),))
    assert decode_response(out) == (1, DONE, (Control("1.2.3"),))
    assert conn.in_flight == frozenset()
    assert conn.state is ConnState.OPEN


def test_pipelining_and_out_of_order_answers():
    conn = LDAPServerConnection()
    ops = [(1, SEARCH), (2, ModifyRequest("cn=a", ())), (3, DelRequest("cn=b"))]
    evs = feed(conn, *(pdu(m, op) for m, op in ops))
    assert evs == [RequestReceived(m, op) for m, op in ops] + [NEED_DATA]
    assert conn.in_flight == {1, 2, 3}
    assert decode_response(conn.send(3, DelResponse(OK)))[0] == 3
    assert decode_response(conn.send(1, ENTRY))[0] == 1
    assert decode_response(conn.send(2, ModifyResponse(OK)))[0] == 2
    assert decode_response(conn.send(1, DONE))[0] == 1
    assert conn.in_flight == frozenset()


def test_byte_at_a_time():
    conn = LDAPServerConnection()
    data = pdu(1, SEARCH) + pdu(2, SEARCH)
    events = []
    for b in data:
        conn.receive_data(bytes([b]))
        events += [e for e in drain(conn) if e is not NEED_DATA]
    assert events == [RequestReceived(1, SEARCH), RequestReceived(2, SEARCH)]
    assert conn.buffered == 0


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 40), max_size=30))
def test_any_chunking_gives_the_same_events(cuts):
    ops = [(i, SEARCH if i % 2 else BindRequest(3, "cn=%d" % i, b"x" * i)) for i in range(1, 8)]
    data = b"".join(pdu(m, op) for m, op in ops)
    conn = LDAPServerConnection()
    got = []
    pos = 0
    chunks = []
    for c in cuts:
        chunks.append(data[pos:pos + c])
        pos += c
    chunks.append(data[pos:])
    for chunk in chunks:
        if chunk:
            conn.receive_data(chunk)
        while True:
            ev = conn.next_event()
            if ev is NEED_DATA:
                break
            if ev is PAUSED:  # answer the bind that pauses us
                (m,) = conn.in_flight
                conn.send(m, BindResponse(OK))
                continue
            got.append(ev)
            if isinstance(ev.op, SearchRequest):
                conn.send(ev.msgid, DONE)
    assert got == [RequestReceived(m, op) for m, op in ops]


# ---------------------------------------------------------------- abandon


def test_abandon_in_flight_drops_later_responses():
    conn = LDAPServerConnection()
    feed(conn, pdu(1, SEARCH))
    assert feed(conn, pdu(2, AbandonRequest(1))) == [Abandoned(1), NEED_DATA]
    assert conn.abandoned == {1} and conn.in_flight == frozenset()
    assert conn.send(1, ENTRY) == b""
    assert conn.send(1, SearchResultReference(("ldap://x",))) == b""
    assert conn.send(1, DONE) == b""
    assert conn.abandoned == frozenset()
    with pytest.raises(LocalProtocolError):
        conn.send(1, DONE)  # forgotten after its final response


def test_abandoned_late_send_is_still_type_checked():
    conn = LDAPServerConnection()
    feed(conn, pdu(1, DelRequest("cn=x")), pdu(2, AbandonRequest(1)))
    with pytest.raises(LocalProtocolError):
        conn.send(1, ENTRY)


def test_abandon_unknown_or_repeated_is_ignored():
    conn = LDAPServerConnection()
    feed(conn, pdu(1, SEARCH))
    evs = feed(conn, pdu(2, AbandonRequest(99)), pdu(3, AbandonRequest(1)), pdu(4, AbandonRequest(1)))
    assert evs == [Abandoned(1), NEED_DATA]
    conn.send(1, DONE)
    assert feed(conn, pdu(5, AbandonRequest(1))) == [NEED_DATA]  # already finished


def test_unanswered_abandoned_search_does_not_block_bind_or_limits():
    # A driver may simply stop an abandoned search and never answer it.
    conn = LDAPServerConnection(max_outstanding=1)
    feed(conn, pdu(1, SEARCH), pdu(2, AbandonRequest(1)))
    assert feed(conn, pdu(3, SEARCH)) == [RequestReceived(3, SEARCH), NEED_DATA]
    conn.send(3, DONE)
    assert feed(conn, pdu(4, BIND)) == [RequestReceived(4, BIND), PAUSED]


def test_reusing_an_abandoned_msgid_names_the_new_request():
    conn = LDAPServerConnection()
    feed(conn, pdu(1, SEARCH), pdu(2, AbandonRequest(1)))
    assert feed(conn, pdu(1, DelRequest("cn=x"))) == [RequestReceived(1, DelRequest("cn=x")), NEED_DATA]
    assert conn.abandoned == frozenset() and conn.in_flight == {1}
    assert decode_response(conn.send(1, DelResponse(OK)))[1] == DelResponse(OK)


def test_abandoned_memory_is_bounded():
    conn = LDAPServerConnection(max_outstanding=4)
    for i in range(1, 3000):
        feed(conn, pdu(2 * i, SEARCH), pdu(2 * i + 1, AbandonRequest(2 * i)))
    assert len(conn.abandoned) == 1024 and conn.in_flight == frozenset()
    assert conn.send(2 * 2999, DONE) == b""  # recent ones are still dropped quietly


# ---------------------------------------------------------------- bind and StartTLS pauses


def test_bind_pauses_until_answered():
    conn = LDAPServerConnection()
    evs = feed(conn, pdu(1, BIND), pdu(2, SEARCH))
    assert evs == [RequestReceived(1, BIND), PAUSED]
    assert conn.state is ConnState.BINDING
    assert conn.next_event() is PAUSED
    out = conn.send(1, BindResponse(OK))
    assert decode_response(out) == (1, BindResponse(OK), ())
    assert drain(conn) == [RequestReceived(2, SEARCH), NEED_DATA]


def test_bind_waits_for_outstanding_operations():
    conn = LDAPServerConnection()
    assert feed(conn, pdu(1, SEARCH), pdu(2, BIND)) == [RequestReceived(1, SEARCH), PAUSED]
    assert conn.state is ConnState.OPEN
    conn.send(1, ENTRY)
    assert conn.next_event() is PAUSED
    conn.send(1, DONE)
    assert drain(conn) == [RequestReceived(2, BIND), PAUSED]


def test_sasl_multi_step_bind():
    conn = LDAPServerConnection()
    step1 = BindRequest(3, "", None, "DIGEST-MD5", None)
    step2 = BindRequest(3, "", None, "DIGEST-MD5", b"resp")
    assert feed(conn, pdu(1, step1)) == [RequestReceived(1, step1), PAUSED]
    conn.send(1, BindResponse(ResultCode.saslBindInProgress, sasl_credentials=b"chal"))
    assert feed(conn, pdu(2, step2)) == [RequestReceived(2, step2), PAUSED]
    conn.send(2, BindResponse(OK))
    assert conn.state is ConnState.OPEN


def test_non_v3_bind_is_yielded():
    conn = LDAPServerConnection()
    b2 = BindRequest(2, "cn=x", b"pw")
    assert feed(conn, pdu(1, b2)) == [RequestReceived(1, b2), PAUSED]
    conn.send(1, BindResponse(ResultCode.protocolError, message="LDAPv3 only"))
    assert conn.next_event() is NEED_DATA


def test_starttls_success():
    conn = LDAPServerConnection()
    assert feed(conn, pdu(1, STARTTLS)) == [RequestReceived(1, STARTTLS), PAUSED]
    assert conn.state is ConnState.STARTTLS
    out = conn.send(1, ExtendedResponse(OK, name=STARTTLS_OID))
    assert decode_response(out)[1].code == OK
    assert conn.state is ConnState.TLS_PENDING
    assert conn.next_event() is PAUSED
    conn.tls_started()
    assert conn.state is ConnState.OPEN
    assert feed(conn, pdu(2, SEARCH)) == [RequestReceived(2, SEARCH), NEED_DATA]


def test_starttls_refused_unpauses():
    conn = LDAPServerConnection()
    feed(conn, pdu(1, STARTTLS))
    conn.send(1, ExtendedResponse(ResultCode.operationsError, message="TLS already active"))
    assert conn.state is ConnState.OPEN
    assert feed(conn, pdu(2, SEARCH)) == [RequestReceived(2, SEARCH), NEED_DATA]
    with pytest.raises(LocalProtocolError):
        conn.tls_started()
    assert conn.state is ConnState.ERROR


def test_starttls_waits_for_outstanding_operations():
    conn = LDAPServerConnection()
    assert feed(conn, pdu(1, SEARCH), pdu(2, STARTTLS)) == [RequestReceived(1, SEARCH), PAUSED]
    conn.send(1, DONE)
    assert drain(conn) == [RequestReceived(2, STARTTLS), PAUSED]


def test_plaintext_after_starttls_is_refused():
    conn = LDAPServerConnection()
    feed(conn, pdu(1, STARTTLS), pdu(2, SEARCH))  # injected behind the StartTLS request
    conn.send(1, ExtendedResponse(OK, name=STARTTLS_OID))
    conn.tls_started()
    with pytest.raises(RemoteProtocolError, match="plaintext"):
        conn.next_event()
    assert conn.state is ConnState.ERROR


def test_other_extended_operations_do_not_pause():
    conn = LDAPServerConnection()
    who = ExtendedRequest("1.3.6.1.4.1.4203.1.11.3")
    assert feed(conn, pdu(1, who), pdu(2, SEARCH)) == [RequestReceived(1, who), RequestReceived(2, SEARCH),
                                                        NEED_DATA]
    assert conn.send(1, IntermediateResponse("1.2", b"x"))
    conn.send(1, ExtendedResponse(OK, value=b"dn:cn=x"))


# ---------------------------------------------------------------- backpressure


def test_max_outstanding_pauses_until_an_answer():
    conn = LDAPServerConnection(max_outstanding=2)
    evs = feed(conn, pdu(1, SEARCH), pdu(2, SEARCH), pdu(3, SEARCH), pdu(4, AbandonRequest(1)),
               pdu(5, SEARCH))
    assert evs == [RequestReceived(1, SEARCH), RequestReceived(2, SEARCH), PAUSED]
    conn.send(2, ENTRY)
    assert conn.next_event() is PAUSED  # an entry is not a final answer
    conn.send(2, DONE)
    assert drain(conn) == [RequestReceived(3, SEARCH), Abandoned(1), RequestReceived(5, SEARCH), NEED_DATA]


def test_buffer_limit_while_paused():
    conn = LDAPServerConnection(max_pdu_size=1000, max_buffer_size=1000)
    feed(conn, pdu(1, BIND))
    filler = pdu(2, SEARCH) * 40
    conn.receive_data(filler)  # the driver ignored PAUSED and kept reading
    with pytest.raises(RemoteProtocolError, match="unprocessed"):
        conn.next_event()
    assert conn.state is ConnState.ERROR


def test_buffer_is_compacted():
    conn = LDAPServerConnection()
    one = len(pdu(1, SEARCH))
    stream = b"".join(pdu(i + 1, SEARCH) for i in range(2000))
    seen = 0
    for k in range(0, len(stream), 7):
        conn.receive_data(stream[k:k + 7])
        for ev in drain(conn):
            if isinstance(ev, RequestReceived):
                conn.send(ev.msgid, DONE)
                seen += 1
        assert len(conn._buf) <= 2 * (one + 7)  # noqa: SLF001 - compaction keeps the buffer small
    assert seen == 2000 and conn.buffered == 0


def test_large_stream_in_one_chunk():
    conn = LDAPServerConnection(max_outstanding=10**6)
    conn.receive_data(b"".join(pdu(i + 1, SEARCH) for i in range(20000)))
    evs = drain(conn)
    assert len(evs) == 20001 and evs[-1] is NEED_DATA and conn.buffered == 0


# ---------------------------------------------------------------- close


def test_unbind_closes():
    conn = LDAPServerConnection()
    feed(conn, pdu(1, SEARCH))
    assert feed(conn, pdu(2, UnbindRequest()), pdu(3, SEARCH)) == [Closed("unbind")]
    assert conn.next_event() == Closed("unbind")
    assert conn.state is ConnState.CLOSED
    conn.receive_data(pdu(4, SEARCH))  # ignored
    assert conn.next_event() == Closed("unbind")
    assert conn.send(1, DONE)  # in-flight answers may still be written


def test_eof():
    conn = LDAPServerConnection()
    conn.receive_data(pdu(1, SEARCH) + pdu(2, SEARCH)[:4])
    conn.receive_data(b"")
    assert drain(conn) == [RequestReceived(1, SEARCH), Closed("eof")]
    assert conn.next_event() == Closed("eof")
    conn.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"more")


# ---------------------------------------------------------------- peer errors


@pytest.mark.parametrize("data", [
    pdu(1, SEARCH) + pdu(1, SEARCH),  # duplicate in-flight msgid
    pdu(0, SEARCH),  # msgid 0
    pdu(0, UnbindRequest()),
    b"\x31\x00",  # not a SEQUENCE
    b"\x30\x80",  # indefinite length
    b"\x30\x84\x00\x10\x00\x01",  # over max_pdu_size, decided from the header
    b"\x30\x03\x02\x01\x01",  # no protocolOp
    b"\x30\x05\x02\x01\x01\x61\x00",  # a response sent to the server
])
def test_remote_errors_move_to_error(data):
    conn = LDAPServerConnection(max_pdu_size=4096)
    conn.receive_data(data)
    with pytest.raises(RemoteProtocolError) as info:
        drain(conn)
    assert info.value.code == ResultCode.protocolError
    assert conn.state is ConnState.ERROR
    with pytest.raises(LocalProtocolError):
        conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"x")
    notice = conn.notice_of_disconnection(info.value.code, "bye")
    msgid, resp, _ = decode_response(notice)
    assert msgid == 0 and resp.name == NOTICE_OF_DISCONNECTION_OID and resp.code == ResultCode.protocolError


def test_msgid_reuse_after_completion_is_fine():
    conn = LDAPServerConnection()
    feed(conn, pdu(1, SEARCH))
    conn.send(1, DONE)
    assert feed(conn, pdu(1, SEARCH)) == [RequestReceived(1, SEARCH), NEED_DATA]


def test_deep_filter_is_a_remote_error():
    conn = LDAPServerConnection(max_filter_depth=3)
    from vmdir.proto.messages import Not
    deep = SearchRequest("", 0, 0, 0, 0, False, Not(Not(Not(Present("a")))), ())
    conn.receive_data(pdu(1, deep))
    with pytest.raises(RemoteProtocolError, match="deeply"):
        conn.next_event()


# ---------------------------------------------------------------- local errors


@pytest.mark.parametrize("msgid, response", [
    (7, DONE),  # not in flight
    (1, ModifyResponse(OK)),  # wrong final response for a search
    (2, ENTRY),  # entries only answer searches
    (2, SearchResultReference(("ldap://x",))),
    (1, SearchResultReference(())),  # cannot be encoded
])
def test_local_errors_move_to_error(msgid, response):
    conn = LDAPServerConnection()
    feed(conn, pdu(1, SEARCH), pdu(2, DelRequest("cn=x")))
    with pytest.raises(LocalProtocolError):
        conn.send(msgid, response)
    assert conn.state is ConnState.ERROR
    with pytest.raises(LocalProtocolError):
        conn.send(1, DONE)
    assert decode_response(conn.notice_of_disconnection(ResultCode.other, ""))[0] == 0


@pytest.mark.parametrize("kwargs", [
    dict(max_pdu_size=0), dict(max_outstanding=-1), dict(max_filter_depth=1000),
    dict(max_pdu_size=100, max_buffer_size=50),
])
def test_bad_limits(kwargs):
    with pytest.raises(ValueError):
        LDAPServerConnection(**kwargs)


def test_limits_must_be_ints():
    with pytest.raises(TypeError):
        LDAPServerConnection(max_filter_terms=1.5)  # type: ignore[arg-type]
