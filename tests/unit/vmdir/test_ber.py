"""vmdir.ber: framing, request/response codec, robustness, cross-check with ldap3/pyasn1."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmdir.ber import (
    MAX_INT, decode_entry, decode_filter_value, decode_message, decode_response, encode_entry,
    encode_filter, encode_length, encode_request, encode_response, notice_of_disconnection, peek_frame,
)
from vmdir.proto.messages import (
    NOTICE_OF_DISCONNECTION_OID, AbandonRequest, AddRequest, AddResponse, And, Approx, BindRequest,
    BindResponse, Change, CompareRequest, CompareResponse, Control, DelRequest, DelResponse, Equality,
    ExtendedRequest, ExtendedResponse, Extensible, GreaterOrEqual, IntermediateResponse, LessOrEqual,
    ModifyDNRequest, ModifyDNResponse, ModifyRequest, ModifyResponse, Not, Or, Present, SearchRequest,
    SearchResultDone, SearchResultEntry, SearchResultReference, Substrings, UnbindRequest,
)
from vmdir.proto.results import LocalProtocolError, RemoteProtocolError, ResultCode

# LW_HYPOTHESIS_EXAMPLES=20000 for a deeper fuzzing run.
hyp = settings(deadline=None, max_examples=int(os.environ.get("LW_HYPOTHESIS_EXAMPLES", "150")),
               suppress_health_check=[HealthCheck.too_slow])
BIG = dict(max_filter_depth=100_000, max_filter_terms=1_000_000)


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


# ================================================================ strategies

texts = st.text(max_size=12)
blobs = st.binary(max_size=40)
msgids = st.integers(1, MAX_INT)
uints = st.integers(0, MAX_INT)


def _substrings(attr: str, initial: bytes | None, any_: tuple[bytes, ...], final: bytes | None) -> Substrings:
    if initial is None and not any_ and final is None:
        any_ = (b"x",)
    return Substrings(attr, initial, any_, final)


leaf_filters = st.one_of(
    st.builds(Equality, texts, blobs),
    st.builds(GreaterOrEqual, texts, blobs),
    st.builds(LessOrEqual, texts, blobs),
    st.builds(Approx, texts, blobs),
    st.builds(Present, texts),
    st.builds(_substrings, texts, st.none() | blobs, st.lists(blobs, max_size=3).map(tuple), st.none() | blobs),
    st.builds(Extensible, st.none() | texts, st.none() | texts, blobs, st.booleans()),
)
filters = st.recursive(
    leaf_filters,
    lambda kids: st.one_of(
        st.builds(And, st.lists(kids, max_size=4).map(tuple)),
        st.builds(Or, st.lists(kids, max_size=4).map(tuple)),
        st.builds(Not, kids),
    ),
    max_leaves=25,
)
value_tuples = st.lists(blobs, max_size=4).map(tuple)
attribute_lists = st.lists(st.tuples(texts, value_tuples), max_size=5).map(tuple)
controls = st.lists(st.builds(Control, texts, st.booleans(), st.none() | blobs), max_size=3).map(tuple)

requests = st.one_of(
    st.builds(BindRequest, st.integers(0, 127), texts, blobs),
    st.builds(lambda v, n, m, c: BindRequest(v, n, None, m, c),
              st.integers(1, 127), texts, texts, st.none() | blobs),
    st.just(UnbindRequest()),
    st.builds(
        SearchRequest, texts, st.integers(0, 3), st.integers(0, 3), uints, uints, st.booleans(), filters,
        st.lists(texts, max_size=5).map(tuple),
    ),
    st.builds(
        ModifyRequest, texts,
        st.lists(st.builds(Change, st.integers(0, 3), texts, value_tuples), max_size=4).map(tuple),
    ),
    st.builds(AddRequest, texts, attribute_lists),
    st.builds(DelRequest, texts),
    st.builds(ModifyDNRequest, texts, texts, st.booleans(), st.none() | texts),
    st.builds(CompareRequest, texts, texts, blobs),
    st.builds(AbandonRequest, uints),
    st.builds(ExtendedRequest, texts, st.none() | blobs),
)

codes = st.sampled_from(list(ResultCode))
responses = st.one_of(
    *[st.builds(cls, codes, texts, texts) for cls in (
        SearchResultDone, ModifyResponse, AddResponse, DelResponse, ModifyDNResponse, CompareResponse,
    )],
    st.builds(BindResponse, codes, texts, texts, st.none() | blobs),
    st.builds(ExtendedResponse, codes, texts, texts, st.none() | texts, st.none() | blobs),
    st.builds(IntermediateResponse, st.none() | texts, st.none() | blobs),
    st.builds(SearchResultEntry, texts, attribute_lists),
    st.builds(SearchResultReference, st.lists(texts, min_size=1, max_size=3).map(tuple)),
)


# ================================================================ round trips


@hyp
@given(msgids, requests, controls)
def test_request_round_trip(msgid, request, ctls):
    pdu = encode_request(msgid, request, ctls)
    assert peek_frame(pdu, 0, len(pdu)) == len(pdu)
    assert decode_message(pdu, **BIG) == (msgid, request, ctls)


@hyp
@given(st.integers(0, MAX_INT), responses, controls)
def test_response_round_trip(msgid, response, ctls):
    pdu = encode_response(msgid, response, ctls)
    assert peek_frame(pdu, 0, len(pdu)) == len(pdu)
    assert decode_response(pdu) == (msgid, response, ctls)


@hyp
@given(filters)
def test_filter_round_trip(f):
    assert decode_filter_value(encode_filter(f), 100_000, 1_000_000) == f


@hyp
@given(texts, attribute_lists)
def test_entry_round_trip(dn, attrs):
    assert decode_entry(encode_entry(dn, attrs)) == SearchResultEntry(dn, attrs)


def test_long_values_use_long_form_lengths():
    big = b"v" * 70000
    e = SearchResultEntry("cn=big", (("data", (big, b"x" * 300)), ("cn", (b"big",))))
    pdu = encode_response(1, e)
    assert pdu[:2] == b"\x30\x83"  # 3 length octets
    assert decode_response(pdu) == (1, e, ())
    req = AddRequest("cn=big", (("data", (big,)),))
    assert decode_message(encode_request(2, req)) == (2, req, ())


# ================================================================ known answers (hand-made per RFC 4511)


def test_known_anonymous_bind():
    assert decode_message(h("300c 020101 6007 020103 0400 8000")) == (1, BindRequest(3, "", b""), ())
    assert encode_request(1, BindRequest(3, "", b"")) == h("300c 020101 6007 020103 0400 8000")


def test_known_simple_responses():
    assert encode_response(1, BindResponse(ResultCode.success)) == h("300c 020101 6107 0a0100 0400 0400")
    assert encode_response(2, SearchResultDone(ResultCode.success)) == h("300c 020102 6507 0a0100 0400 0400")
    assert encode_response(200, ModifyResponse(ResultCode.noSuchObject, "dc=x", "no")) == h(
        "3013 020200c8 670d 0a0120 0404 64633d78 0402 6e6f",
    )


def test_known_unbind_abandon_delete():
    assert decode_message(h("3005 020103 4200")) == (3, UnbindRequest(), ())
    assert decode_message(h("3006 020106 500105")) == (6, AbandonRequest(5), ())
    assert decode_message(h("3009 020107 4a04 63 3d 78 79")) == (7, DelRequest("c=xy"), ())


def test_windows_style_four_octet_lengths_are_accepted():
    body = h("020101") + h("6084 00000007 020103 0400 8000")
    pdu = h("3084") + len(body).to_bytes(4, "big") + body
    assert peek_frame(pdu, 0, 1 << 20) == len(pdu)
    assert decode_message(pdu) == (1, BindRequest(3, "", b""), ())


def test_known_search_with_controls():
    # (&(objectClass=*)(cn=ab*)) base "", scope sub, attrs "1.1", paged results critical
    f = And((Present("objectClass"), Substrings("cn", b"ab", (), None)))
    req = SearchRequest("", 2, 0, 0, 0, False, f, ("1.1",))
    ctl = (Control("1.2.840.113556.1.4.319", True, h("3005 020164 0400")),)
    pdu = encode_request(2, req, ctl)
    flt = h("a019 870b") + b"objectClass" + h("a40a 0402") + b"cn" + h("3004 8002") + b"ab"
    op = h("0400 0a0102 0a0100 020100 020100 010100") + flt + h("3005 0403") + b"1.1"
    ctls = h("a026 3024 0416") + b"1.2.840.113556.1.4.319" + h("0101ff 0407 3005 020164 0400")
    body = h("020102 63") + encode_length(len(op)) + op + ctls
    assert pdu == h("30") + encode_length(len(body)) + body
    assert decode_message(pdu) == (2, req, ctl)


def test_known_notice_of_disconnection():
    oid = NOTICE_OF_DISCONNECTION_OID.encode()
    op = h("0a0102 0400 0403") + b"bye" + h("8a16") + oid
    assert notice_of_disconnection(ResultCode.protocolError, "bye") == h("3027 020100 7822") + op
    msgid, resp, _ = decode_response(notice_of_disconnection(ResultCode.unavailable, ""))
    assert msgid == 0 and resp == ExtendedResponse(ResultCode.unavailable, "", "", NOTICE_OF_DISCONNECTION_OID)


def test_explicit_false_criticality_and_nonff_true_are_accepted():
    ctl_false = h("300c 0403 312e32 010100 0402 6869")
    ctl_true7 = h("3008 0403 312e33 010107")
    ctls = h("a0") + encode_length(len(ctl_false + ctl_true7)) + ctl_false + ctl_true7
    body = h("020109 4200") + ctls
    pdu = h("30") + encode_length(len(body)) + body
    assert decode_message(pdu)[2] == (Control("1.2", False, b"hi"), Control("1.3", True, None))


def test_unknown_bind_method_decodes_with_no_credentials():
    # Microsoft Sicily package discovery [9]: the directory answers authMethodNotSupported.
    assert decode_message(h("300c 020101 6007 020103 0400 8900")) == (1, BindRequest(3, "", None, None, None), ())


def test_non_v3_bind_is_not_a_framing_error():
    assert decode_message(encode_request(1, BindRequest(2, "cn=x", b"pw")))[1].version == 2


def test_rfc4526_absolute_true_and_false():
    for f in (And(()), Or(())):
        req = SearchRequest("", 0, 0, 0, 0, False, f, ())
        assert decode_message(encode_request(1, req))[1] == req


# ================================================================ peek_frame


@hyp
@given(msgids, requests, st.binary(max_size=10))
def test_peek_frame_needs_the_whole_pdu(msgid, request, tail):
    pdu = encode_request(msgid, request)
    for cut in range(len(pdu)):
        assert peek_frame(pdu[:cut], 0, 1 << 20) is None
    assert peek_frame(pdu + tail, 0, 1 << 20) == len(pdu)
    assert peek_frame(b"junk" + pdu + tail, 4, 1 << 20) == len(pdu)


def test_peek_frame_rejects_bad_headers_early():
    with pytest.raises(RemoteProtocolError):
        peek_frame(b"\x31", 0, 100)  # not a SEQUENCE, one byte is enough
    with pytest.raises(RemoteProtocolError):
        peek_frame(b"\x30\x80", 0, 100)  # indefinite
    with pytest.raises(RemoteProtocolError):
        peek_frame(b"\x30\x85\x00\x00\x00\x00\x05", 0, 100)  # 5 length octets
    with pytest.raises(RemoteProtocolError):
        peek_frame(b"\x30\xff", 0, 100)
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        peek_frame(b"\x30\x84\x7f\xff\xff\xff", 0, 1 << 20)  # decided from the header alone
    with pytest.raises(RemoteProtocolError):
        peek_frame(b"\x30\x64", 0, 100)  # 102 > 100
    assert peek_frame(b"\x30\x62", 0, 100) is None  # 100 fits, body not there yet
    assert peek_frame(b"\x30\x84\x00", 0, 100) is None
    assert peek_frame(b"", 0, 100) is None
    assert peek_frame(bytearray(b"\x30\x03\x02\x01\x01"), 0, 100) == 5
    assert peek_frame(memoryview(b"\x30\x03\x02\x01\x01"), 0, 100) == 5


@hyp
@given(st.binary(max_size=12), st.integers(0, 3))
def test_peek_frame_on_garbage(data, offset):
    try:
        n = peek_frame(data, offset, 1000)
    except RemoteProtocolError:
        return
    assert n is None or (2 <= n <= 1000 and offset + n <= len(data))


# ================================================================ malformed input


def _msg(body_hex: str) -> bytes:
    body = h(body_hex)
    return h("30") + encode_length(len(body)) + body


@pytest.mark.parametrize("pdu, why", [
    (_msg("020101 6007 020103 0400 8000") + b"\x00", "trailing after message"),
    (_msg("020101 6007 020103 0400 8000 00"), "trailing inside message"),
    (_msg("020101 6008 020103 0400 8000 00"), "trailing inside op"),
    (_msg("020101 6007 020103 0400 8001"), "overrun"),
    (_msg("0201ff 4200"), "negative msgid"),
    (_msg("020580000000 00 4200"), "msgid too long"),
    (_msg("02050080000000 4200"), "msgid over maxInt"),
    (_msg("0200 4200"), "empty integer"),
    (_msg("020101 4201 00"), "unbind with content"),
    (_msg("020101 6100"), "response sent to server"),
    (_msg("020101 7f00"), "multi-octet tag"),
    (_msg("020101 4a02 c328"), "invalid utf-8 dn"),
    (_msg("020101 6007 020103 0400 a000"), "constructed simple"),
    (_msg("020101 4200 3000"), "controls with wrong tag"),
    (_msg("020101 4200 a005 3003 0401ff"), "control oid not utf-8"),
    (_msg("020101 4200 a003 3001 04"), "control truncated"),
    (_msg("020101 4200 a007 3005 0401 31 0100"), "empty boolean"),
    (_msg("020101 4200 a008 3006 0401 31 010201"), "boolean too long"),
    (_msg("020101 4200 a00a 3008 0401 31 0400 0101ff"), "control fields out of order"),
    (_msg("020101 6609 0400 3005 3003 0a0104"), "modify op 4"),
    (_msg("020101 6c08 0400 0400 0101ff 81 00"), "bad newSuperior tag"),
    (_msg("020101 5000"), "empty abandon"),
    (_msg("020101 7700"), "extended without name"),
    (_msg("020101 7705 8000 8200 00"), "extended extra"),
    (_msg("020101 6e07 0400 3003 0401 41"), "compare without value"),
    (_msg("020101 6e0b 0400 3007 0401 41 0400 0400"), "compare extra"),
    (_msg("020101 6809 0400 3005 3003 040141"), "add attribute without vals"),
])
def test_malformed_requests(pdu, why):
    with pytest.raises(RemoteProtocolError):
        decode_message(pdu)


def _search(filter_hex: str, scope: str = "02", deref: str = "00", limits: str = "020100 020100",
            types_only: str = "010100", attrs: str = "3000") -> bytes:
    op = h("0400 0a01" + scope + "0a01" + deref + limits + types_only + filter_hex + attrs)
    return _msg("020101 63" + encode_length(len(op)).hex() + op.hex())


def test_search_helper_is_valid():
    assert decode_message(_search("8701 61"))[1] == SearchRequest("", 2, 0, 0, 0, False, Present("a"), ())


@pytest.mark.parametrize("pdu, why", [
    (_search("8701 61", scope="04"), "scope 4"),
    (_search("8701 61", deref="04"), "deref 4"),
    (_search("8701 61", limits="0201ff 020100"), "negative size limit"),
    (_search("8701 61", types_only="0100"), "empty boolean"),
    (_search("8a01 61"), "unknown filter choice"),
    (_search("a200"), "empty not"),
    (_search("a206 870161 870162"), "not with two filters"),
    (_search("a405 0401 61 3000"), "empty substrings"),
    (_search("a40a 0401 61 3005 810162 800163"), "initial not first"),
    (_search("a40a 0401 61 3005 820162 810163"), "final not last"),
    (_search("a40a 0401 61 3005 800162 800163"), "two initials"),
    (_search("a40a 0401 61 3005 820162 820163"), "two finals"),
    (_search("a408 0401 61 3003 830162"), "unknown substring choice"),
    (_search("a902 8200"), "extensible without matchValue"),
    (_search("a906 830161 810162"), "extensible out of order"),
    (_search("a905 830161 8400"), "bad dnAttributes"),
    (_search("a306 040161 04026263"), "ava overruns"),
    (_search("a308 0401 61 0401 62 00"), "ava trailing"),
    (_search("a303 040161"), "ava without value"),
    (_search("8702 c328"), "invalid utf-8 in present"),
    (_search("8701 61", attrs="3003 0201 00"), "attribute selection not a string"),
    (_search("8701 61", attrs="3002 0402"), "attribute selection overrun"),
    (_search("8701 61", attrs="3000 00"), "trailing after attributes"),
])
def test_malformed_searches(pdu, why):
    with pytest.raises(RemoteProtocolError):
        decode_message(pdu)


def _nested_not(depth: int) -> bytes:
    inner = b"\x87\x01a"
    for _ in range(depth - 1):
        inner = b"\xa2" + encode_length(len(inner)) + inner
    return inner


def test_filter_depth_limit():
    assert decode_message(_search(_nested_not(64).hex()))[0] == 1
    with pytest.raises(RemoteProtocolError, match="deeply"):
        decode_message(_search(_nested_not(65).hex()))
    assert decode_message(_search(_nested_not(10).hex()), max_filter_depth=10)[0] == 1
    with pytest.raises(RemoteProtocolError, match="deeply"):
        decode_message(_search(_nested_not(11).hex()), max_filter_depth=10)


def test_very_deep_filter_is_refused_without_recursion_error():
    with pytest.raises(RemoteProtocolError):
        decode_message(_search(_nested_not(3000).hex()))


def test_filter_term_limit():
    def and_of(n: int) -> str:
        kids = b"\x87\x01a" * n
        return (b"\xa0" + encode_length(len(kids)) + kids).hex()

    assert len(decode_message(_search(and_of(1023)))[1].filter.filters) == 1023  # 1023 + the And
    with pytest.raises(RemoteProtocolError, match="terms"):
        decode_message(_search(and_of(1024)))
    with pytest.raises(RemoteProtocolError, match="terms"):
        decode_message(_search(and_of(10)), max_filter_terms=10)


# ================================================================ fuzzing: only RemoteProtocolError


def _only_remote_errors(fn, data):
    try:
        fn(data)
    except RemoteProtocolError:
        pass


@hyp
@given(st.binary(max_size=200))
def test_garbage_never_raises_anything_else(data):
    _only_remote_errors(decode_message, data)
    _only_remote_errors(decode_response, data)
    _only_remote_errors(decode_message, b"\x30" + encode_length(len(data)) + data)
    _only_remote_errors(decode_response, b"\x30" + encode_length(len(data)) + data)
    _only_remote_errors(decode_filter_value, data)
    _only_remote_errors(decode_entry, data)


@hyp
@given(msgids, requests, st.data())
def test_mutated_requests_never_raise_anything_else(msgid, request, data):
    pdu = bytearray(encode_request(msgid, request))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        i = data.draw(st.integers(0, max(len(pdu) - 1, 0)))
        if op == "flip" and pdu:
            pdu[i] = data.draw(st.integers(0, 255))
        elif op == "insert":
            pdu[i:i] = bytes([data.draw(st.integers(0, 255))])
        elif op == "delete" and pdu:
            del pdu[i]
        else:
            del pdu[i:]
    _only_remote_errors(decode_message, bytes(pdu))


@hyp
@given(st.integers(0, MAX_INT), responses, st.data())
def test_mutated_responses_never_raise_anything_else(msgid, response, data):
    pdu = bytearray(encode_response(msgid, response))
    i = data.draw(st.integers(0, len(pdu) - 1))
    pdu[i] = data.draw(st.integers(0, 255))
    _only_remote_errors(decode_response, bytes(pdu))


# ================================================================ encoder misuse


@pytest.mark.parametrize("call", [
    lambda: encode_response(-1, SearchResultDone(ResultCode.success)),
    lambda: encode_response(MAX_INT + 1, SearchResultDone(ResultCode.success)),
    lambda: encode_response(1, SearchRequest("", 0, 0, 0, 0, False, Present("a"), ())),
    lambda: encode_response(1, SearchResultReference(())),
    lambda: encode_request(1, SearchResultDone(ResultCode.success)),
    lambda: encode_request(1, SearchRequest("", 5, 0, 0, 0, False, Present("a"), ())),
    lambda: encode_request(1, SearchRequest("", 0, 0, -1, 0, False, Present("a"), ())),
    lambda: encode_request(1, SearchRequest("", 0, 0, 0, 0, False, Substrings("a", None, (), None), ())),
    lambda: encode_request(1, BindRequest(3, "")),
    lambda: encode_request(1, ModifyRequest("", (Change(7, "a", ()),))),
    lambda: encode_filter("(cn=x)"),  # type: ignore[arg-type]
])
def test_encoder_misuse_is_local(call):
    with pytest.raises(LocalProtocolError):
        call()


# ================================================================ cross-check with ldap3 (pyasn1)

ldap3 = pytest.importorskip("ldap3")
from ldap3.operation.add import add_operation  # noqa: E402
from ldap3.operation.bind import bind_operation  # noqa: E402
from ldap3.operation.compare import compare_operation  # noqa: E402
from ldap3.operation.delete import delete_operation  # noqa: E402
from ldap3.operation.extended import extended_operation  # noqa: E402
from ldap3.operation.modify import modify_operation  # noqa: E402
from ldap3.operation.modifyDn import modify_dn_operation  # noqa: E402
from ldap3.operation.search import search_operation  # noqa: E402
from ldap3.protocol.convert import build_controls_list  # noqa: E402
from ldap3.protocol.rfc2696 import paged_search_control  # noqa: E402
from ldap3.protocol.rfc4511 import (  # noqa: E402
    AbandonRequest as L3Abandon, LDAPMessage, MessageID, ProtocolOp, UnbindRequest as L3Unbind,
)
from ldap3.protocol.rfc4527 import pre_read_control  # noqa: E402
from ldap3.utils.asn1 import decode_message_fast, decoder, encode  # noqa: E402


def ldap3_pdu(msgid: int, op_name: str, request, ctls=None) -> bytes:
    m = LDAPMessage()
    m["messageID"] = MessageID(msgid)
    m["protocolOp"] = ProtocolOp().setComponentByName(op_name, request)
    built = build_controls_list(ctls)
    if built is not None:
        m["controls"] = built
    return bytes(encode(m))


def ldap3_search(flt: str, attrs=("cn", "mail"), scope=2, size=10, time=5, types_only=False, ctls=None):
    req = search_operation("ou=People,dc=example,dc=com", flt, scope, 0, list(attrs), size, time,
                           types_only, True, False)
    return ldap3_pdu(9, "searchRequest", req, ctls)


@pytest.mark.parametrize("flt, expected", [
    ("(objectClass=*)", Present("objectClass")),
    ("(uid=jdoe)", Equality("uid", b"jdoe")),
    ("(cn=J*o*n*)", Substrings("cn", b"J", (b"o", b"n"), None)),
    ("(cn=*doe)", Substrings("cn", None, (), b"doe")),
    ("(cn=a*b*c)", Substrings("cn", b"a", (b"b",), b"c")),
    ("(age>=21)", GreaterOrEqual("age", b"21")),
    ("(age<=65)", LessOrEqual("age", b"65")),
    ("(sn~=smith)", Approx("sn", b"smith")),
    ("(!(cn=x))", Not(Equality("cn", b"x"))),
    ("(cn=a\\2ab\\00)", Equality("cn", b"a*b\x00")),
    ("(cn:caseExactMatch:=Fred)", Extensible("caseExactMatch", "cn", b"Fred", False)),
    ("(cn:dn:2.5.13.5:=Fred)", Extensible("2.5.13.5", "cn", b"Fred", True)),
    ("(:1.2.3:=x)", Extensible("1.2.3", None, b"x", False)),
    (
        "(&(objectClass=person)(|(uid=a)(uid=b)(!(mail=*)))(cn=\u00e9l\u00e8ve))",
        And((Equality("objectClass", b"person"),
             Or((Equality("uid", b"a"), Equality("uid", b"b"), Not(Present("mail")))),
             Equality("cn", "\u00e9l\u00e8ve".encode()))),
    ),
])
def test_decode_ldap3_search_filters(flt, expected):
    msgid, op, ctls = decode_message(ldap3_search(flt))
    assert msgid == 9 and ctls == ()
    assert op == SearchRequest("ou=People,dc=example,dc=com", 2, 0, 10, 5, False, expected, ("cn", "mail"))
    # and we encode it to exactly the bytes ldap3 (pyasn1) produces
    assert encode_request(9, op) == ldap3_search(flt)


def test_decode_ldap3_search_with_controls():
    ctls = [paged_search_control(True, 50, b"ck"), pre_read_control(["cn"]), ("1.2.3.4", False, None)]
    msgid, op, got = decode_message(ldap3_search("(uid=x)", attrs=("*", "+"), scope=1, types_only=True,
                                                 ctls=ctls))
    assert op.scope == 1 and op.types_only is True and op.attributes == ("*", "+")
    assert got[0] == Control("1.2.840.113556.1.4.319", True, h("3007 020132 0402636b"))
    assert got[1].oid == "1.3.6.1.1.13.1" and got[1].value == h("3004 0402636e")
    assert got[2] == Control("1.2.3.4", False, None)


def test_decode_ldap3_binds():
    pdu = ldap3_pdu(1, "bindRequest", bind_operation(3, "SIMPLE", "cn=admin,dc=x", "s3cret"))
    assert decode_message(pdu) == (1, BindRequest(3, "cn=admin,dc=x", b"s3cret"), ())
    pdu = ldap3_pdu(2, "bindRequest", bind_operation(3, "ANONYMOUS"))
    assert decode_message(pdu) == (2, BindRequest(3, "", b""), ())
    pdu = ldap3_pdu(3, "bindRequest", bind_operation(3, "SASL", "", None, "EXTERNAL", b""))
    assert decode_message(pdu) == (3, BindRequest(3, "", None, "EXTERNAL", b""), ())
    pdu = ldap3_pdu(4, "bindRequest", bind_operation(3, "SASL", "", None, "PLAIN", None))
    assert decode_message(pdu) == (4, BindRequest(3, "", None, "PLAIN", None), ())


def test_decode_ldap3_updates():
    pdu = ldap3_pdu(5, "addRequest", add_operation(
        "cn=x,dc=y", {"objectClass": ["top", "person"], "cn": "x", "sn": ["y"]}, False))
    assert decode_message(pdu) == (5, AddRequest("cn=x,dc=y", (
        ("objectClass", (b"top", b"person")), ("cn", (b"x",)), ("sn", (b"y",)))), ())
    pdu = ldap3_pdu(6, "modifyRequest", modify_operation(
        "cn=x,dc=y", {"mail": [(0, [b"a@b"]), (1, [])], "sn": [(2, ["z"])], "n": [(3, ["1"])]}, False))
    assert decode_message(pdu) == (6, ModifyRequest("cn=x,dc=y", (
        Change(0, "mail", (b"a@b",)), Change(1, "mail", ()), Change(2, "sn", (b"z",)),
        Change(3, "n", (b"1",)))), ())
    assert decode_message(ldap3_pdu(7, "delRequest", delete_operation("cn=x,dc=y"))) == (
        7, DelRequest("cn=x,dc=y"), ())
    pdu = ldap3_pdu(8, "modDNRequest", modify_dn_operation("cn=x,dc=y", "cn=z", True, "ou=n,dc=y"))
    assert decode_message(pdu) == (8, ModifyDNRequest("cn=x,dc=y", "cn=z", True, "ou=n,dc=y"), ())
    pdu = ldap3_pdu(9, "compareRequest", compare_operation("cn=x,dc=y", "sn", "v", False))
    assert decode_message(pdu) == (9, CompareRequest("cn=x,dc=y", "sn", b"v"), ())
    pdu = ldap3_pdu(10, "extendedReq", extended_operation("1.3.6.1.4.1.4203.1.11.3"))
    assert decode_message(pdu) == (10, ExtendedRequest("1.3.6.1.4.1.4203.1.11.3"), ())
    pdu = ldap3_pdu(11, "abandonRequest", L3Abandon(4))
    assert decode_message(pdu) == (11, AbandonRequest(4), ())
    pdu = ldap3_pdu(12, "unbindRequest", L3Unbind())
    assert decode_message(pdu) == (12, UnbindRequest(), ())


def _asn1(pdu: bytes):
    msg, rest = decoder.decode(pdu, asn1Spec=LDAPMessage())
    assert rest == b""
    return msg


def test_ldap3_decodes_our_responses():
    entry = SearchResultEntry("uid=\u00e9,dc=x", (
        ("objectClass", (b"top", b"person")), ("cn", (b"x",)), ("jpegPhoto", (bytes(range(256)) * 2,)),
        ("empty", ()),
    ))
    pdu = encode_response(300, entry, (Control("1.2.3", True, b"v"),))
    msg = _asn1(pdu)
    assert int(msg["messageID"]) == 300
    e = msg["protocolOp"].getComponent()
    assert str(e["object"]) == "uid=\u00e9,dc=x"
    got = [(str(a["type"]), [bytes(v) for v in a["vals"]]) for a in e["attributes"]]
    assert got == [(a, list(v)) for a, v in entry.attributes]
    c = msg["controls"][0]
    assert (str(c["controlType"]), bool(c["criticality"]), bytes(c["controlValue"])) == ("1.2.3", True, b"v")

    fast = decode_message_fast(pdu)
    assert fast["messageID"] == 300 and fast["protocolOp"] == 4

    done = _asn1(encode_response(7, SearchResultDone(ResultCode.noSuchObject, "dc=x", "gone")))
    r = done["protocolOp"].getComponent()
    assert (int(r["resultCode"]), str(r["matchedDN"]), str(r["diagnosticMessage"])) == (32, "dc=x", "gone")

    b = _asn1(encode_response(1, BindResponse(ResultCode.saslBindInProgress, "", "", b"chal")))
    br = b["protocolOp"].getComponent()
    assert int(br["resultCode"]) == 14 and bytes(br["serverSaslCreds"]) == b"chal"

    x = _asn1(encode_response(2, ExtendedResponse(ResultCode.success, "", "", "1.3.6.1.4.1.4203.1.11.3",
                                                  b"dn:cn=x")))
    xr = x["protocolOp"].getComponent()
    assert str(xr["responseName"]) == "1.3.6.1.4.1.4203.1.11.3" and bytes(xr["responseValue"]) == b"dn:cn=x"

    for cls, name in [(ModifyResponse, "modifyResponse"), (AddResponse, "addResponse"),
                      (DelResponse, "delResponse"), (ModifyDNResponse, "modDNResponse"),
                      (CompareResponse, "compareResponse")]:
        m = _asn1(encode_response(3, cls(ResultCode.compareTrue)))
        assert m["protocolOp"].getName() == name
        assert int(m["protocolOp"].getComponent()["resultCode"]) == 6

    ref = _asn1(encode_response(4, SearchResultReference(("ldap://a/dc=x", "ldap://b/dc=x"))))
    assert [str(u) for u in ref["protocolOp"].getComponent()] == ["ldap://a/dc=x", "ldap://b/dc=x"]

    im = _asn1(encode_response(5, IntermediateResponse("1.2.3", b"val")))
    imr = im["protocolOp"].getComponent()
    assert str(imr["responseName"]) == "1.2.3" and bytes(imr["responseValue"]) == b"val"

    n = _asn1(notice_of_disconnection(ResultCode.protocolError, "bad PDU"))
    assert int(n["messageID"]) == 0
    assert str(n["protocolOp"].getComponent()["responseName"]) == NOTICE_OF_DISCONNECTION_OID


def test_our_requests_match_ldap3_bytes():
    assert encode_request(1, BindRequest(3, "cn=admin,dc=x", b"s3cret")) == ldap3_pdu(
        1, "bindRequest", bind_operation(3, "SIMPLE", "cn=admin,dc=x", "s3cret"))
    assert encode_request(3, BindRequest(3, "", None, "EXTERNAL", b"")) == ldap3_pdu(
        3, "bindRequest", bind_operation(3, "SASL", "", None, "EXTERNAL", b""))
    assert encode_request(5, AddRequest("cn=x,dc=y", (("objectClass", (b"top", b"person")), ("cn", (b"x",))))) \
        == ldap3_pdu(5, "addRequest", add_operation("cn=x,dc=y", {"objectClass": ["top", "person"], "cn": "x"},
                                                    False))
    assert encode_request(6, ModifyRequest("cn=x", (Change(0, "mail", (b"a@b",)), Change(3, "n", (b"1",))))) \
        == ldap3_pdu(6, "modifyRequest", modify_operation("cn=x", {"mail": [(0, [b"a@b"])], "n": [(3, ["1"])]},
                                                          False))
    assert encode_request(8, ModifyDNRequest("cn=x,dc=y", "cn=z", False, "ou=n")) == ldap3_pdu(
        8, "modDNRequest", modify_dn_operation("cn=x,dc=y", "cn=z", False, "ou=n"))
    assert encode_request(10, ExtendedRequest("1.3.6.1.4.1.4203.1.11.3")) == ldap3_pdu(
        10, "extendedReq", extended_operation("1.3.6.1.4.1.4203.1.11.3"))
    assert encode_request(11, AbandonRequest(4)) == ldap3_pdu(11, "abandonRequest", L3Abandon(4))
    ctl = paged_search_control(True, 50, b"ck")
    ours = encode_request(9, SearchRequest("ou=People,dc=example,dc=com", 2, 0, 10, 5, False,
                                           Equality("uid", b"x"), ("cn", "mail")),
                          (Control("1.2.840.113556.1.4.319", True, h("3007 020132 0402636b")),))
    assert ours == ldap3_search("(uid=x)", ctls=[ctl])
