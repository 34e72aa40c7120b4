"""DIT.norm_rdns normalises a plain DN an RDN at a time, from a cache of RDNs as written:
it must give exactly what normalising the whole DN gives, refuse exactly what that refuses,
and forget what it knew when the schema changes."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vmdir.directory._dit import DIT
from vmdir.model.schema import Schema
from vmdir.proto.results import LDAPError, ResultCode

# pieces of DNs, plain and not: escapes, quotes, '+', spaces, case, empty RDNs, hex values
_PIECES = ["uid=", "cn=", "ou=", "dc=", "UID=", "Cn = ", "o=", "2.5.4.3=", "x=", "user", "People",
           "lightwave", " ", ",", ",,", "=", "+sn=b", "\\,", "\\2C", '"q,r"', "#0403616263", "é", "A", "1", ";"]


def _whole(dit: DIT, dn: str) -> tuple[str, ...] | ResultCode:
    try:
        return dit._norm_rdns(dn)
    except LDAPError as exc:
        return exc.code


def _by_rdn(dit: DIT, dn: str) -> tuple[str, ...] | ResultCode:
    try:
        return dit.norm_rdns(dn)
    except LDAPError as exc:
        return exc.code


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join))
def test_rdn_at_a_time_is_whole_dn_normalising(dn: str) -> None:
    dit = DIT(Schema.default(), {})
    first, again = _by_rdn(dit, dn), _by_rdn(dit, dn)  # the second from the cache
    assert first == again == _whole(dit, dn)


def test_shared_rdns_and_the_root() -> None:
    dit = DIT(Schema.default(), {})
    assert dit.norm_rdns("") == ()
    a = dit.norm_rdns("UID=Jane ,ou=People,dc=Lightwave,dc=local")
    b = dit.norm_rdns("uid=john,OU=people,dc=lightwave,DC=local")
    assert a == ("uid=jane", "ou=people", "dc=lightwave", "dc=local")
    assert b[1:] == a[1:]
    assert dit.norm_rdns("cn=a\\,b,dc=x") == ("cn=a\\,b", "dc=x")  # not plain: the whole-DN path


def test_forget_names_after_a_schema_change() -> None:
    dit = DIT(Schema.default(), {})
    assert dit.norm_rdns("cn=A,dc=x") == ("cn=a", "dc=x")
    assert dit._rdn_norms
    dit.forget_names()
    assert not dit._rdn_norms
