"""Filter evaluation: examples, RFC 4511 three-valued logic, and a property
comparing compiled filters with a brute-force reference evaluator."""
from __future__ import annotations

import re
import time
from typing import Any, Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmdir.model.match import FALSE, TRUE, UNDEFINED, compile_filter, compile_filter3, filter_attrs
from vmdir.model.schema import Schema
from vmdir.proto.messages import (
    And,
    Approx,
    Equality,
    Extensible,
    Filter,
    GreaterOrEqual,
    LessOrEqual,
    Not,
    Or,
    Present,
    Substrings,
)
from vmdir.proto.results import LDAPError, ResultCode

SCHEMA = Schema.default()
DN = "uid=bjensen,ou=People,dc=example,dc=com"
ENTRY = {
    "objectclass": [b"top", b"inetOrgPerson", b"posixAccount"],
    "cn": [b"Barbara Jensen", b"Babs Jensen"],
    "cn;lang-de": [b"Barbara Jensen-Deutsch"],
    "sn": [b"Jensen"],
    "uid": [b"bjensen"],
    "uidnumber": [b"1000"],
    "gidnumber": [b"100"],
    "mail": [b"BJensen@Example.COM"],
    "telephonenumber": [b"+1 408 555 1862"],
    "description": [b"  A   big   description  "],
    "createtimestamp": [b"20240101120000Z"],
    "member": [b"CN=Someone, DC=Example,DC=com"],
    "homedirectory": [b"/home/bjensen"],
}


def m(f: Filter, entry: Mapping[str, Sequence[bytes]] = ENTRY, dn: str = DN) -> bool:
    return compile_filter(f, SCHEMA)(entry, dn)


def m3(f: Filter, entry: Mapping[str, Sequence[bytes]] = ENTRY, dn: str = DN) -> int:
    return compile_filter3(f, SCHEMA)(entry, dn)


@pytest.mark.parametrize(
    "f,expected",
    [
        (Equality("cn", b"babs  JENSEN"), True),
        (Equality("CN", b"babs jensen"), True),
        (Equality("2.5.4.3", b"Barbara Jensen"), True),
        (Equality("commonName", b"Nobody"), False),
        (Equality("name", b"jensen"), True),  # supertype matches sn
        (Equality("cn", b"barbara jensen-deutsch"), True),  # options are subtypes
        (Equality("cn;lang-de", b"barbara jensen-deutsch"), True),
        (Equality("cn;LANG-DE", b"barbara jensen-deutsch"), True),
        (Equality("cn;lang-de", b"barbara jensen"), False),
        (Equality("cn;lang-fr", b"barbara jensen-deutsch"), False),
        (Equality("mail", b"bjensen@example.com"), True),
        (Equality("homeDirectory", b"/HOME/bjensen"), False),  # caseExactIA5
        (Equality("uidNumber", b"1000"), True),
        (Equality("telephoneNumber", b"+14085551862"), True),
        (Equality("description", b"a big description"), True),
        (Equality("createTimestamp", b"20240101130000+0100"), True),
        (Equality("member", b"cn=someone,dc=example,dc=com"), True),
        (Equality("objectClass", b"inetOrgPerson"), True),
        (Equality("objectClass", b"person"), True),  # subclass semantics
        (Equality("objectClass", b"2.5.6.6"), True),
        (Equality("objectClass", b"TOP"), True),
        (Equality("objectClass", b"posixGroup"), False),
        (Equality("objectClass", b"1.2.3.4"), False),  # unknown OID: FALSE
        (Not(Equality("objectClass", b"1.2.3.4")), True),
        (Not(Equality("objectClass", b"nosuchclass")), False),  # unknown name: Undefined
        (Approx("cn", b"BABS jensen"), True),
        (Substrings("cn", b"bab", (), None), True),
        (Substrings("cn", None, (b"s  j",), b"SEN"), True),
        (Substrings("cn", b"bar", (b"jen",), b"sen"), True),
        (Substrings("cn", b"barbara", (b"barbara",), None), False),
        (Substrings("cn", b"jensen", (), b"jensen"), False),
        (Substrings("mail", None, (b"@example.",), None), True),
        (Substrings("telephoneNumber", None, (b"5551",), None), True),
        (Substrings("description", b" a big", (), b"description "), True),
        (GreaterOrEqual("uidNumber", b"999"), True),
        (GreaterOrEqual("uidNumber", b"1001"), False),
        (LessOrEqual("uidNumber", b"1000"), True),
        (LessOrEqual("uidNumber", b"-3"), False),
        (GreaterOrEqual("createTimestamp", b"20240101120000.1Z"), False),
        (LessOrEqual("createTimestamp", b"20240101120000.1Z"), True),
        (GreaterOrEqual("cn", b"a"), False),  # no ORDERING rule: Undefined
        (Present("cn"), True),
        (Present("name"), True),
        (Present("cn;lang-de"), True),
        (Present("cn;lang-fr"), False),
        (Present("objectClass"), True),
        (Present("seeAlso"), False),
        (Present("nosuchattr"), False),
        (Not(Present("nosuchattr")), False),  # Undefined (slapd 2.4+)
        (Not(Present("seeAlso")), True),
        (Not(GreaterOrEqual("cn", b"a")), False),
        (And(()), True),  # RFC 4526 absolute true
        (Or(()), False),  # absolute false
        (And((Equality("uid", b"BJENSEN"), Present("mail"))), True),
        (Or((Equality("uid", b"x"), Equality("sn", b"jensen"))), True),
        (Or((Equality("nosuch", b"x"), Equality("sn", b"jensen"))), True),
        (And((Equality("nosuch", b"x"), Equality("sn", b"nobody"))), False),
        (Not(And((Equality("nosuch", b"x"), Equality("sn", b"jensen")))), False),
        (Not(Or((Equality("nosuch", b"x"), Equality("sn", b"nobody")))), False),
        (Equality("uidNumber", b"abc"), False),  # invalid assertion value: Undefined
        (Not(Equality("uidNumber", b"abc")), False),
        (Extensible("caseExactMatch", "cn", b"Babs Jensen"), True),
        (Extensible("caseExactMatch", "cn", b"babs jensen"), False),
        (Extensible("2.5.13.5", "cn", b"Babs Jensen"), True),
        (Extensible(None, "cn", b"BABS JENSEN"), True),
        (Extensible("caseIgnoreMatch", None, b"JENSEN"), True),  # any applicable attribute
        (Extensible("integerMatch", None, b"100"), True),
        (Extensible("integerBitAndMatch", "uidNumber", b"8"), True),  # 1000 & 8
        (Extensible("1.2.840.113556.1.4.803", "uidNumber", b"3"), False),
        (Extensible("1.2.840.113556.1.4.804", "uidNumber", b"12"), True),
        (Extensible("bitOrMatch", "uidNumber", b"7"), False),  # 1000 = 0b1111101000
        (Extensible("integerOrderingMatch", "uidNumber", b"1001"), True),  # value < assertion
        (Extensible("caseIgnoreSubstringsMatch", "cn", b"ba*jen*"), True),
        (Extensible("wordMatch", "cn", b"BABS"), True),
        (Extensible("caseIgnoreMatch", "ou", b"people"), False),
        (Extensible("caseIgnoreMatch", "ou", b"people", True), True),  # dnAttributes
        (Extensible(None, "dc", b"EXAMPLE", True), True),
        (Extensible("caseExactMatch", None, b"People", True), True),
        (Extensible("caseExactMatch", None, b"people", True), False),
        (Extensible("integerMatch", "cn", b"5"), False),  # rule not applicable: Undefined
        (Extensible("nosuchMatch", "cn", b"x"), False),
        (Not(Extensible("nosuchMatch", "cn", b"x")), False),
    ],
)
def test_examples(f: Filter, expected: bool) -> None:
    assert m(f) is expected


def test_three_valued_results() -> None:
    assert m3(Equality("nosuch", b"x")) == UNDEFINED
    assert m3(Present("nosuch")) == UNDEFINED
    assert m3(GreaterOrEqual("cn", b"x")) == UNDEFINED
    assert m3(Substrings("facsimileTelephoneNumber", b"x", (), None)) == UNDEFINED
    assert m3(Equality("sn", b"nobody")) == FALSE
    assert m3(Not(Equality("sn", b"nobody"))) == TRUE
    # a stored value that does not normalise makes a non-match Undefined
    bad = {"objectclass": [b"person"], "uidnumber": [b"oops"]}
    assert m3(Equality("uidNumber", b"5"), bad) == UNDEFINED
    assert m3(Equality("uidNumber", b"5"), {**bad, "uidnumber": [b"oops", b"5"]}) == TRUE
    assert m3(Equality("objectClass", b"person"), {"objectclass": [b"bogus"]}) == UNDEFINED


def test_entries_with_only_option_keys_and_extensible_without_type() -> None:
    e = {"objectclass": [b"person"], "cn;lang-en": [b"Alice"], "sn": [b"Smith"]}
    assert m(Equality("cn", b"alice"), e)
    assert m(Present("cn"), e)
    assert m(Extensible("caseIgnoreMatch", None, b"alice"), e)
    assert not m(Present("cn;lang-fr"), e)
    assert m(Substrings("cn;lang-en", b"al", (), None), e)


def test_depth_limit() -> None:
    f: Filter = Present("cn")
    for _ in range(100):
        f = Not(f)
    with pytest.raises(LDAPError) as ei:
        compile_filter(f, SCHEMA)
    assert ei.value.code == ResultCode.adminLimitExceeded
    assert compile_filter(f, SCHEMA, max_depth=200)(ENTRY) is True


def test_filter_attrs() -> None:
    f = And((
        Equality("CN", b"x"),
        Not(Or((Present("2.5.4.4;lang-en"), Substrings("mail", b"a", (), None)))),
        Extensible("caseIgnoreMatch", None, b"x"),
        Extensible(None, "uidNumber", b"1"),
        Present("nosuch"),
    ))
    assert filter_attrs(f, SCHEMA) == {"cn", "sn", "mail", "uidnumber", "nosuch"}
    assert filter_attrs(f) == {"cn", "2.5.4.4", "mail", "uidnumber", "nosuch"}


def test_compiled_filter_is_fast() -> None:
    f = And((Equality("objectClass", b"person"), Or((Equality("uid", b"user5000"), Substrings("cn", b"user 50", (), None)))))
    match = compile_filter(f, SCHEMA)
    entries = [
        {"objectclass": [b"top", b"inetOrgPerson"], "cn": [f"User {i}".encode()], "sn": [b"X"], "uid": [f"user{i}".encode()]}
        for i in range(10000)
    ]
    t = time.perf_counter()
    hits = sum(1 for e in entries if match(e, ""))
    elapsed = time.perf_counter() - t
    assert hits == 111  # "User 50", "User 500".."User 509", "User 5000".."User 5099" (uid=user5000 among them)
    assert elapsed < 2.0  # ~50 ms in practice


# ---------------------------------------------------------------- reference evaluator

STRING_TYPES = {"cn": ["cn"], "sn": ["sn"], "name": ["cn", "sn"], "description": ["description"], "mail": ["mail"]}
CLASSES = ["top", "person", "organizationalPerson", "inetOrgPerson", "account", "bogusClass"]


def _squeeze(s: str) -> str:
    return " ".join(s.split(" ")).strip(" ") if s.strip(" ") else " "


def ref_norm(attr: str, v: bytes) -> Any:
    """caseIgnore/caseIgnoreIA5 on ASCII, integer for uidNumber; None when invalid."""
    if attr == "uidnumber":
        return int(v) if re.fullmatch(rb"-?(0|[1-9][0-9]*)", v) and v != b"-0" else None
    s = v.decode("ascii").lower()
    return " ".join(p for p in s.split(" ") if p) or " "


def ref_sub_component(v: bytes, where: str) -> str:
    s = re.sub(" +", " ", v.decode("ascii").lower())
    return s.lstrip(" ") if where == "initial" else s.rstrip(" ") if where == "final" else s


def _combine_or(results: list[int]) -> int:
    if TRUE in results:
        return TRUE
    return UNDEFINED if UNDEFINED in results else FALSE


def _values(entry: Mapping[str, Sequence[bytes]], types: list[str], options: str | None) -> list[bytes]:
    out: list[bytes] = []
    for key, vals in entry.items():
        base, _, opts = key.partition(";")
        if base in types and (options is None or options in opts.split(";")):
            out.extend(vals)
    return out


def _split(attr: str) -> tuple[str, str | None]:
    base, _, opt = attr.partition(";")
    base = {"commonname": "cn"}.get(base.lower(), base.lower())
    return base, (opt.lower() or None)


def _superclasses(name: str) -> set[str]:
    oc = SCHEMA.object_class(name)
    if oc is None:
        return set()
    out = {oc.key}
    for s in oc.sup:
        out |= _superclasses(s)
    return out


def ref_eval(f: Filter, entry: Mapping[str, Sequence[bytes]]) -> int:
    if isinstance(f, And):
        rs = [ref_eval(g, entry) for g in f.filters]
        return FALSE if FALSE in rs else (UNDEFINED if UNDEFINED in rs else TRUE)
    if isinstance(f, Or):
        return _combine_or([ref_eval(g, entry) for g in f.filters])
    if isinstance(f, Not):
        r = ref_eval(f.filter, entry)
        return UNDEFINED if r == UNDEFINED else 1 - r
    if isinstance(f, Extensible):
        # only "caseExactMatch"/"caseIgnoreMatch" on string types are generated
        base, opt = _split(f.attr or "")
        if base not in STRING_TYPES:
            return UNDEFINED
        exact = f.rule == "caseExactMatch"
        want = " ".join(p for p in f.value.decode().split(" ") if p) or " "
        results = []
        for v in _values(entry, STRING_TYPES[base], opt):
            got = " ".join(p for p in v.decode().split(" ") if p) or " "
            results.append(TRUE if (got == want if exact else got.lower() == want.lower()) else FALSE)
        return _combine_or(results)
    base, opt = _split(f.attr)
    if base == "objectclass":
        if isinstance(f, Present):
            return TRUE
        if not isinstance(f, (Equality, Approx)):
            return UNDEFINED  # no ORDERING/SUBSTR rule for objectClass
        target = SCHEMA.object_class(f.value.decode())
        if target is None:
            return FALSE if f.value[:1].isdigit() else UNDEFINED
        results = []
        for v in _values(entry, ["objectclass"], opt):
            sup = _superclasses(v.decode())
            results.append(UNDEFINED if not sup else TRUE if target.key in sup else FALSE)
        return _combine_or(results)
    if base == "uidnumber":
        types = ["uidnumber"]
    elif base in STRING_TYPES:
        types = STRING_TYPES[base]
    else:
        return UNDEFINED
    if isinstance(f, Present):
        return TRUE if _values(entry, types, opt) else FALSE
    values = _values(entry, types, opt)
    if isinstance(f, Substrings):
        if base == "uidnumber" or (f.initial is None and f.final is None and not f.any):
            return UNDEFINED
        init = ref_sub_component(f.initial, "initial") if f.initial else ""
        fin = ref_sub_component(f.final, "final") if f.final else ""
        anys = [ref_sub_component(a, "any") for a in f.any]
        pattern = "^" + re.escape(init) + "".join(".*?" + re.escape(a) for a in anys) + ".*" + re.escape(fin) + "$"
        return _combine_or([TRUE if re.match(pattern, ref_norm(base, v), re.S) else FALSE for v in values])
    assertion = ref_norm(base, f.value)
    if assertion is None:
        return UNDEFINED
    if isinstance(f, (GreaterOrEqual, LessOrEqual)) and base != "uidnumber" and base != "mail":
        return UNDEFINED  # no ORDERING rule on cn/sn/name/description (nor mail)
    if isinstance(f, (GreaterOrEqual, LessOrEqual)) and base == "mail":
        return UNDEFINED
    results = []
    for v in values:
        got = ref_norm(base, v)
        if got is None:
            results.append(UNDEFINED)
        elif isinstance(f, GreaterOrEqual):
            results.append(TRUE if got >= assertion else FALSE)
        elif isinstance(f, LessOrEqual):
            results.append(TRUE if got <= assertion else FALSE)
        else:
            results.append(TRUE if got == assertion else FALSE)
    return _combine_or(results)


words = st.sampled_from([b"alice", b"Alice", b" ALICE ", b"bob smith", b"Bob   Smith", b"x", b"a b", b"smith"])
numbers = st.sampled_from([b"1", b"10", b"-5", b"0", b"007", b"abc", b"100"])
fragments = st.sampled_from([b"a", b"Al", b"ice", b" ", b"b s", b"bob  ", b"  smith", b"x", b"i"])

entries = st.fixed_dictionaries(
    {"objectclass": st.lists(st.sampled_from([c.encode() for c in CLASSES]), min_size=1, max_size=3, unique=True)},
    optional={
        "cn": st.lists(words, min_size=1, max_size=3),
        "cn;lang-en": st.lists(words, min_size=1, max_size=2),
        "sn": st.lists(words, min_size=1, max_size=2),
        "description": st.lists(words, min_size=1, max_size=2),
        "mail": st.lists(words, min_size=1, max_size=2),
        "uidnumber": st.lists(numbers, min_size=1, max_size=2),
    },
)

string_attrs = st.sampled_from(["cn", "CN", "commonName", "sn", "name", "description", "mail", "cn;lang-en", "cn;LANG-EN", "name;lang-en"])
any_attrs = st.one_of(string_attrs, st.sampled_from(["uidNumber", "fooBar", "objectClass"]))


def _leaf_for(attr: str) -> st.SearchStrategy[Filter]:
    base = attr.partition(";")[0].lower()
    if base == "uidnumber":
        vals = numbers
    elif base == "objectclass":
        vals = st.sampled_from([b"person", b"TOP", b"inetOrgPerson", b"account", b"bogus", b"1.2.3.4", b"2.5.6.6"])
    else:
        vals = words
    return st.one_of(
        st.builds(Equality, st.just(attr), vals),
        st.builds(Approx, st.just(attr), vals),
        st.builds(GreaterOrEqual, st.just(attr), vals),
        st.builds(LessOrEqual, st.just(attr), vals),
        st.builds(Present, st.just(attr)),
        st.builds(Substrings, st.just(attr), st.none() | fragments, st.lists(fragments, max_size=2).map(tuple),
                  st.none() | fragments),
    )


leaves = st.one_of(
    any_attrs.flatmap(_leaf_for),
    st.builds(Extensible, st.sampled_from(["caseExactMatch", "caseIgnoreMatch"]), string_attrs, words),
)
filters = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda fs: And(tuple(fs))),
        st.lists(children, max_size=3).map(lambda fs: Or(tuple(fs))),
        children.map(Not),
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(filters, st.lists(entries, min_size=1, max_size=4))
def test_compiled_filter_agrees_with_reference(f: Filter, es: list[dict[str, list[bytes]]]) -> None:
    match = compile_filter(f, SCHEMA)
    match3 = compile_filter3(f, SCHEMA)
    for e in es:
        expected = ref_eval(f, e)
        assert match3(e) == expected, (f, e)
        assert match(e) is (expected == TRUE)
