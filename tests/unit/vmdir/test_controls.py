"""vmdir.proto.controls: control and extended-operation values."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmdir.ber import MAX_INT, encode_filter
from vmdir.proto import controls as C
from vmdir.proto.messages import And, Control, Equality, Not, Present, SearchResultEntry, Substrings
from vmdir.proto.results import LDAPError, LocalProtocolError, RemoteProtocolError, ResultCode

# LW_HYPOTHESIS_EXAMPLES=20000 for a deeper fuzzing run.
hyp = settings(deadline=None, max_examples=int(os.environ.get("LW_HYPOTHESIS_EXAMPLES", "100")),
               suppress_health_check=[HealthCheck.too_slow])
texts = st.text(max_size=10)
blobs = st.binary(max_size=30)
uints = st.integers(0, MAX_INT)


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


def protocol_error(fn, *args):
    """Assert fn(*args) raises a plain LDAPError(protocolError), not a disconnect."""
    with pytest.raises(LDAPError) as info:
        fn(*args)
    assert type(info.value) is LDAPError
    assert info.value.code == ResultCode.protocolError
    return info.value


def test_oids():
    assert C.PAGED_RESULTS_OID == "1.2.840.113556.1.4.319"
    assert C.SORT_REQUEST_OID == "1.2.840.113556.1.4.473"
    assert C.SORT_RESPONSE_OID == "1.2.840.113556.1.4.474"
    assert C.ASSERTION_OID == "1.3.6.1.1.12"
    assert (C.PRE_READ_OID, C.POST_READ_OID) == ("1.3.6.1.1.13.1", "1.3.6.1.1.13.2")
    assert C.SUBTREE_DELETE_OID == "1.2.840.113556.1.4.805"
    assert C.MANAGE_DSA_IT_OID == "2.16.840.1.113730.3.4.2"
    assert C.PERMISSIVE_MODIFY_OID == "1.2.840.113556.1.4.1413"
    assert C.PPOLICY_OID == "1.3.6.1.4.1.42.2.27.8.5.1"
    assert C.PASSWD_MODIFY_OID == "1.3.6.1.4.1.4203.1.11.1"
    assert C.WHOAMI_OID == "1.3.6.1.4.1.4203.1.11.3"


# ---------------------------------------------------------------- paged results


def test_paged_results_known():
    assert C.encode_paged_results(C.PagedResults(100, b"")) == h("3005 020164 0400")
    assert C.decode_paged_results(h("3007 020132 0402636b")) == C.PagedResults(50, b"ck")


@hyp
@given(st.builds(C.PagedResults, uints, blobs))
def test_paged_results_round_trip(v):
    assert C.decode_paged_results(C.encode_paged_results(v)) == v


@pytest.mark.parametrize("value", [
    None, b"", h("3003 020164"), h("3005 0201ff 0400"), h("3005 020164 0400 00"), h("3006 020164 0400 00"),
    h("3005 040164 0400"),
])
def test_paged_results_bad(value):
    protocol_error(C.decode_paged_results, value)


# ---------------------------------------------------------------- sort


def test_sort_request_known():
    assert C.decode_sort_request(h("3009 3007 0402636e 8101ff")) == (C.SortKey("cn", None, True),)
    # orderingRule "2.5.13" on the second key
    v = h("3015 3004 0402736e 300d 0403756964 8006322e352e3133")
    assert C.decode_sort_request(v) == (C.SortKey("sn"), C.SortKey("uid", "2.5.13"))
    assert C.encode_sort_request((C.SortKey("sn"), C.SortKey("uid", "2.5.13"))) == v
    # an explicit FALSE reverseOrder is accepted
    assert C.decode_sort_request(h("3009 3007 0402636e 810100")) == (C.SortKey("cn"),)


@hyp
@given(st.lists(st.builds(C.SortKey, texts, st.none() | texts, st.booleans()), min_size=1, max_size=4))
def test_sort_request_round_trip(keys):
    assert C.decode_sort_request(C.encode_sort_request(tuple(keys))) == tuple(keys)


@pytest.mark.parametrize("value", [
    None, h("3000"), h("3002 3000"), h("3006 3004 0402 c328"), h("3007 3005 0401 61 8100"),
    h("300a 3008 040161 8101ff 8000"),  # out of order
    h("3008 3006 040161 820100"),
])
def test_sort_request_bad(value):
    protocol_error(C.decode_sort_request, value)


def test_sort_response():
    assert C.encode_sort_response(C.SortResult(ResultCode.success)) == h("3003 0a0100")
    v = C.SortResult(ResultCode.noSuchAttribute, "cn")
    assert C.encode_sort_response(v) == h("3007 0a0110 8002636e")
    assert C.decode_sort_response(C.encode_sort_response(v)) == v
    protocol_error(C.decode_sort_response, h("3003 020100"))


# ---------------------------------------------------------------- assertion


def test_assertion_round_trip_and_limits():
    f = And((Equality("cn", b"x"), Not(Present("mail")), Substrings("sn", b"a", (), None)))
    assert C.decode_assertion(C.encode_assertion(f)) == f
    assert C.encode_assertion(f) == encode_filter(f)
    deep = Present("a")
    for _ in range(10):
        deep = Not(deep)
    err = protocol_error(C.decode_assertion, C.encode_assertion(deep), 5)
    assert "deeply" in err.message
    protocol_error(C.decode_assertion, C.encode_assertion(f) + b"\x00")
    protocol_error(C.decode_assertion, None)
    protocol_error(C.decode_assertion, h("8a0161"))


def test_assertion_matches_ldap3_filter_encoding():
    ldap3_search = pytest.importorskip("ldap3.operation.search")
    from ldap3.utils.asn1 import encode

    flt = ldap3_search.compile_filter(
        ldap3_search.parse_filter("(&(cn=x)(!(mail=*))(sn=a*))", None, True, False, None, False).elements[0])
    assert C.decode_assertion(bytes(encode(flt))) == And(
        (Equality("cn", b"x"), Not(Present("mail")), Substrings("sn", b"a", (), None)))


# ---------------------------------------------------------------- pre/post read


def test_read_entry_request():
    assert C.decode_read_entry_request(h("3008 0402636e 04022a2b")) == ("cn", "*+")
    assert C.encode_read_entry_request(("cn", "*+")) == h("3008 0402636e 04022a2b")
    assert C.decode_read_entry_request(h("3000")) == ()
    protocol_error(C.decode_read_entry_request, None)
    protocol_error(C.decode_read_entry_request, h("3003 020101"))


def test_read_entry_request_from_ldap3():
    rfc4527 = pytest.importorskip("ldap3.protocol.rfc4527")
    ctl = rfc4527.post_read_control(["cn", "mail"])
    assert C.decode_read_entry_request(bytes(ctl["controlValue"])) == ("cn", "mail")


@hyp
@given(texts, st.lists(st.tuples(texts, st.lists(blobs, max_size=3).map(tuple)), max_size=4).map(tuple))
def test_read_entry_response_round_trip(dn, attrs):
    e = SearchResultEntry(dn, attrs)
    assert C.decode_read_entry_response(C.encode_read_entry_response(e)) == e


def test_read_entry_response_is_accepted_by_ldap3():
    pytest.importorskip("ldap3")
    from ldap3.protocol.rfc4511 import SearchResultEntry as L3Entry
    from ldap3.utils.asn1 import decoder

    e = SearchResultEntry("cn=x,dc=y", (("cn", (b"x",)), ("member", (b"a", b"b"))))
    got, rest = decoder.decode(C.encode_read_entry_response(e), asn1Spec=L3Entry())
    assert rest == b"" and str(got["object"]) == "cn=x,dc=y"
    assert [(str(a["type"]), [bytes(v) for v in a["vals"]]) for a in got["attributes"]] == [
        ("cn", [b"x"]), ("member", [b"a", b"b"])]


# ---------------------------------------------------------------- ppolicy


def test_ppolicy_response():
    assert C.encode_ppolicy_response(C.PasswordPolicyResponse()) == h("3000")
    v = C.PasswordPolicyResponse(time_before_expiration=100)
    assert C.encode_ppolicy_response(v) == h("3005 a003 800164")
    v = C.PasswordPolicyResponse(grace_authns_remaining=2, error=1)
    assert C.encode_ppolicy_response(v) == h("3008 a003 810102 810101")
    for v in (C.PasswordPolicyResponse(), C.PasswordPolicyResponse(5, None, 0),
              C.PasswordPolicyResponse(None, 3, 8), C.PasswordPolicyResponse(error=2)):
        assert C.decode_ppolicy_response(C.encode_ppolicy_response(v)) == v
    with pytest.raises(LocalProtocolError):
        C.encode_ppolicy_response(C.PasswordPolicyResponse(1, 1))
    protocol_error(C.decode_ppolicy_response, h("3005 a003 820164"))


def test_no_value_controls():
    C.require_no_value(Control(C.MANAGE_DSA_IT_OID, True))
    C.require_no_value(Control(C.SUBTREE_DELETE_OID))
    protocol_error(C.require_no_value, Control(C.PERMISSIVE_MODIFY_OID, False, b""))


# ---------------------------------------------------------------- Password Modify


def test_passwd_modify_request_known():
    assert C.decode_passwd_modify_request(None) == C.PasswdModifyRequest()
    assert C.decode_passwd_modify_request(h("3000")) == C.PasswdModifyRequest()
    v = h("300f 8004 753a6a64 8101 61 8204 6e657721")
    assert C.decode_passwd_modify_request(v) == C.PasswdModifyRequest("u:jd", b"a", b"new!")
    assert C.encode_passwd_modify_request(C.PasswdModifyRequest("u:jd", b"a", b"new!")) == v
    assert C.decode_passwd_modify_request(h("3003 820161")) == C.PasswdModifyRequest(None, None, b"a")


@hyp
@given(st.builds(C.PasswdModifyRequest, st.none() | texts, st.none() | blobs, st.none() | blobs))
def test_passwd_modify_request_round_trip(v):
    assert C.decode_passwd_modify_request(C.encode_passwd_modify_request(v)) == v


@pytest.mark.parametrize("value", [
    b"", h("3003 830161"), h("3006 820161 800161"), h("3006 800161 800161"), h("3003 8001ff"),
    h("3003 a00161"), h("3001 80"),
])
def test_passwd_modify_request_bad(value):
    protocol_error(C.decode_passwd_modify_request, value)


def test_passwd_modify_with_ldap3():
    pytest.importorskip("ldap3")
    from ldap3.protocol.rfc3062 import PasswdModifyRequestValue, PasswdModifyResponseValue
    from ldap3.utils.asn1 import decoder, encode

    req = PasswdModifyRequestValue()
    req["userIdentity"] = "cn=x,dc=y"
    req["newPasswd"] = "s3cret"
    assert C.decode_passwd_modify_request(bytes(encode(req))) == C.PasswdModifyRequest(
        "cn=x,dc=y", None, b"s3cret")
    got, _ = decoder.decode(C.encode_passwd_modify_response(b"gen"), asn1Spec=PasswdModifyResponseValue())
    assert bytes(got["genPasswd"]) == b"gen"


def test_passwd_modify_response():
    assert C.encode_passwd_modify_response(None) is None
    assert C.encode_passwd_modify_response(b"pw") == h("3004 80027077")
    assert C.decode_passwd_modify_response(h("3004 80027077")) == b"pw"
    assert C.decode_passwd_modify_response(h("3000")) is None
    assert C.decode_passwd_modify_response(None) is None
    protocol_error(C.decode_passwd_modify_response, h("3004 81027077"))


# ---------------------------------------------------------------- Who am I?


def test_whoami():
    C.check_whoami_request(None)
    protocol_error(C.check_whoami_request, b"")
    assert C.encode_whoami_response("dn:cn=\u00e9,dc=x") == "dn:cn=\u00e9,dc=x".encode()
    assert C.decode_whoami_response(b"u:jd") == "u:jd"
    assert C.decode_whoami_response(None) == ""
    protocol_error(C.decode_whoami_response, b"\xff")


# ---------------------------------------------------------------- fuzz: only LDAPError(protocolError)

DECODERS = [
    C.decode_paged_results, C.decode_sort_request, C.decode_sort_response, C.decode_assertion,
    C.decode_read_entry_request, C.decode_read_entry_response, C.decode_ppolicy_response,
    C.decode_passwd_modify_request, C.decode_passwd_modify_response, C.decode_whoami_response,
]


@hyp
@given(st.binary(max_size=60), st.sampled_from([b"", b"\x30", b"\x64", b"\xa0"]))
def test_garbage_values_only_raise_protocol_error(data, prefix):
    for dec in DECODERS:
        for value in (data, prefix + bytes([len(data) & 0x7F]) + data):
            try:
                dec(value)
            except RemoteProtocolError:  # pragma: no cover - would be a disconnect
                raise AssertionError("%s raised RemoteProtocolError" % dec.__name__) from None
            except LDAPError as exc:
                assert exc.code == ResultCode.protocolError
