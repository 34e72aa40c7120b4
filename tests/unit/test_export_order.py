"""The online export writes each entry after its parent (lightwave.ldifonline.parents_first),
whatever order the server returned them in, so that its LDIF imports."""
from __future__ import annotations

from lightwave.ldifonline import parents_first

B = "dc=x"


def order(dns: list[str], base: str = B) -> list[str]:
    return [dn for dn, _ in parents_first(((dn, i) for i, dn in enumerate(dns)), base)]


def test_an_entry_moved_under_a_newer_parent_follows_it() -> None:
    got = order([B, "ou=a,dc=x", "cn=moved,ou=z,dc=x", "cn=kid,cn=moved,ou=z,dc=x", "ou=z,dc=x"])
    assert got == [B, "ou=a,dc=x", "ou=z,dc=x", "cn=moved,ou=z,dc=x", "cn=kid,cn=moved,ou=z,dc=x"]


def test_order_is_kept_where_it_already_holds() -> None:
    dns = [B, "ou=a,dc=x", "cn=1,ou=a,dc=x", "ou=b,dc=x", "cn=2,ou=a,dc=x", "cn=3,ou=b,dc=x"]
    assert order(dns) == dns


def test_a_chain_returned_leaf_first() -> None:
    dns = ["cn=d,cn=c,cn=b,ou=a,dc=x", "cn=c,cn=b,ou=a,dc=x", "cn=b,ou=a,dc=x", "ou=a,dc=x", B]
    assert order(dns) == list(reversed(dns))


def test_dns_compare_as_names_not_text() -> None:
    got = order(["CN=Kid,OU=Z,DC=X", "uid=x,sn=B+CN=a,ou=z,dc=x", "ou=z,dc=x", "cn=a+sn=b,ou=z,dc=x", B])
    assert got == [B, "ou=z,dc=x", "CN=Kid,OU=Z,DC=X", "cn=a+sn=b,ou=z,dc=x", "uid=x,sn=B+CN=a,ou=z,dc=x"]


def test_entries_whose_parent_never_comes_are_not_lost() -> None:
    got = order(["cn=hidden-kid,ou=secret,dc=x", B, "ou=a,dc=x", "not a dn"])
    assert got[:2] == [B, "ou=a,dc=x"]
    assert sorted(got[2:]) == ["cn=hidden-kid,ou=secret,dc=x", "not a dn"]


def test_a_base_below_the_suffix() -> None:
    assert order(["cn=k,ou=a,dc=x", "ou=a,dc=x"], base="ou=a,dc=x") == ["ou=a,dc=x", "cn=k,ou=a,dc=x"]
