"""Tests for vmdir.model.filterstr (RFC 4515 string filters)."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmdir.model.filterstr import (
    MAX_FILTER_DEPTH,
    FilterSyntaxError,
    escape_filter_value,
    format_filter,
    parse_filter,
)
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

# ---------------------------------------------------------------- RFC 4515 section 4 examples


def test_rfc4515_examples() -> None:
    assert parse_filter("(cn=Babs Jensen)") == Equality("cn", b"Babs Jensen")
    assert parse_filter("(!(cn=Tim Howes))") == Not(Equality("cn", b"Tim Howes"))
    assert parse_filter("(&(objectClass=Person)(|(sn=Jensen)(cn=Babs J*)))") == And((
        Equality("objectClass", b"Person"),
        Or((Equality("sn", b"Jensen"), Substrings("cn", b"Babs J", (), None))),
    ))
    assert parse_filter("(o=univ*of*mich*)") == Substrings("o", b"univ", (b"of", b"mich"), None)
    assert parse_filter("(seeAlso=)") == Equality("seeAlso", b"")
    assert parse_filter("(cn:caseExactMatch:=Fred Flintstone)") == Extensible(
        "caseExactMatch", "cn", b"Fred Flintstone", False)
    assert parse_filter("(cn:=Betty Rubble)") == Extensible(None, "cn", b"Betty Rubble", False)
    assert parse_filter("(sn:dn:2.4.6.8.10:=Barney Rubble)") == Extensible(
        "2.4.6.8.10", "sn", b"Barney Rubble", True)
    assert parse_filter("(o:dn:=Ace Industry)") == Extensible(None, "o", b"Ace Industry", True)
    assert parse_filter("(:1.2.3:=Wilma Flintstone)") == Extensible(
        "1.2.3", None, b"Wilma Flintstone", False)
    assert parse_filter("(:DN:2.4.6.8.10:=Dino)") == Extensible("2.4.6.8.10", None, b"Dino", True)
    assert parse_filter("(o=Parens R Us \\28for all your parenthetical needs\\29)") == Equality(
        "o", b"Parens R Us (for all your parenthetical needs)")
    assert parse_filter("(cn=*\\2A*)") == Substrings("cn", None, (b"*",), None)
    assert parse_filter("(filename=C:\\5cMyFile)") == Equality("filename", b"C:\\MyFile")
    assert parse_filter("(bin=\\00\\00\\00\\04)") == Equality("bin", b"\x00\x00\x00\x04")
    assert parse_filter("(sn=Lu\\c4\\8di\\c4\\87)") == Equality("sn", "Lu\u010di\u0107".encode())
    assert parse_filter("(1.3.6.1.4.1.1466.0=\\04\\02\\48\\69)") == Equality(
        "1.3.6.1.4.1.1466.0", b"\x04\x02Hi")


def test_item_kinds() -> None:
    assert parse_filter("(x=*)") == Present("x")
    assert parse_filter("(x=**)") == Present("x")
    assert parse_filter("(x~=abc)") == Approx("x", b"abc")
    assert parse_filter("(x>=5)") == GreaterOrEqual("x", b"5")
    assert parse_filter("(x<=5)") == LessOrEqual("x", b"5")
    assert parse_filter("(x=a*)") == Substrings("x", b"a", (), None)
    assert parse_filter("(x=*a)") == Substrings("x", None, (), b"a")
    assert parse_filter("(x=*a*)") == Substrings("x", None, (b"a",), None)
    assert parse_filter("(x=a*b*c)") == Substrings("x", b"a", (b"b",), b"c")
    assert parse_filter("(x=a**b)") == Substrings("x", b"a", (), b"b")
    assert parse_filter("(x=a=b)") == Equality("x", b"a=b")
    assert parse_filter("(x= a )") == Equality("x", b" a ")
    assert parse_filter("(cn;lang-en=x)") == Equality("cn;lang-en", b"x")
    assert parse_filter("(2.5.4.3=x)") == Equality("2.5.4.3", b"x")
    assert parse_filter("(ou:dn:=x)") == Extensible(None, "ou", b"x", True)
    assert parse_filter("(cn:dn:caseIgnoreMatch:=x)") == Extensible("caseIgnoreMatch", "cn", b"x", True)
    assert parse_filter("(x=caf\u00e9)") == Equality("x", "caf\u00e9".encode())
    assert parse_filter("(x=\\ff\\FE)") == Equality("x", b"\xff\xfe")


def test_absolute_true_false_and_whitespace() -> None:
    assert parse_filter("(&)") == And(())
    assert parse_filter("(|)") == Or(())
    assert parse_filter("  (& (a=1) (b=2) )  ") == And((Equality("a", b"1"), Equality("b", b"2")))
    assert parse_filter("(! (a=1))") == Not(Equality("a", b"1"))


def test_without_outer_parentheses() -> None:
    assert parse_filter("uid=x") == Equality("uid", b"x")
    assert parse_filter(" uid=x* ") == Substrings("uid", b"x", (), None)
    assert parse_filter("objectClass=*") == Present("objectClass")
    assert parse_filter("&(a=1)(b=2)") == And((Equality("a", b"1"), Equality("b", b"2")))


def test_legacy_escapes() -> None:
    assert parse_filter("(x=a\\*b)") == Equality("x", b"a*b")
    assert parse_filter("(x=\\(\\)\\\\)") == Equality("x", b"()\\")
    assert parse_filter("(x=a\\**)") == Substrings("x", b"a*", (), None)


@pytest.mark.parametrize(
    "text",
    [
        "", "   ", "()", "(", ")", "(a=b", "a=b)", "(a=b))", "((a=b))", "(a=b)(c=d)",
        "(=b)", "(a)", "(a b=c)", "(a=b(c)", "(a=b\\)", "(a=b\\x)", "(a=b\\4)", "(a=b\\4g)",
        "(a~=b*)", "(a>=*)", "(a<=b*c)", "(a:=b*)", "(:=x)", "(:dn:=x)", "(a:b:c:=x)",
        "(a:x y:=z)", "(-a=b)", "(a;=b)", "(a_b=c)", "(!(a=b)(c=d))", "(!)", "(&(a=b)x)",
        "(|(a=b)", "(a=\x00)", "(a=\ud800)", "(a~b=c)", "(a>b)", "(:dn:1.2:3=x)",
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(FilterSyntaxError):
        parse_filter(text)


def test_error_is_value_error_with_position() -> None:
    with pytest.raises(ValueError) as ei:
        parse_filter("(a=b)junk")
    assert isinstance(ei.value, FilterSyntaxError)
    assert ei.value.position == 5


def test_limits() -> None:
    deep = "(!" * (MAX_FILTER_DEPTH - 1) + "(a=b)" + ")" * (MAX_FILTER_DEPTH - 1)
    f = parse_filter(deep)
    for _ in range(MAX_FILTER_DEPTH - 1):
        assert isinstance(f, Not)
        f = f.filter
    assert f == Equality("a", b"b")
    with pytest.raises(FilterSyntaxError):
        parse_filter("(!" + deep + ")")
    with pytest.raises(FilterSyntaxError):
        parse_filter("(&" * 2000 + ")" * 2000)  # no RecursionError
    with pytest.raises(FilterSyntaxError):
        parse_filter("(a=b)", max_length=4)
    with pytest.raises(FilterSyntaxError):
        parse_filter("(&(a=b))", max_depth=1)
    assert parse_filter("(&(a=b))", max_depth=2) == And((Equality("a", b"b"),))


def test_hostile_input_is_fast() -> None:
    n = 60000
    start = time.perf_counter()
    for s in ["(a=" + "\\" * n + ")", "(a=" + "*" * n + ")", "(a=" + "\\2" * (n // 2),
              "(&" + "(a=b)" * (n // 5) + ")", "(a=" + "x" * n, "(" * n]:
        try:
            parse_filter(s, max_length=10**6)
        except FilterSyntaxError:
            pass
    assert time.perf_counter() - start < 2.0


# ---------------------------------------------------------------- formatting


def test_escape_filter_value() -> None:
    assert escape_filter_value(b"plain text") == "plain text"
    assert escape_filter_value(b"a*b(c)d\\e\x00") == "a\\2ab\\28c\\29d\\5ce\\00"
    assert escape_filter_value("caf\u00e9".encode()) == "caf\u00e9"
    assert escape_filter_value(b"\xff\x01x") == "\\ff\\01x"
    assert escape_filter_value(b"tab\there\x7f") == "tab\\09here\\7f"
    assert escape_filter_value("\u2028".encode()) == "\\e2\\80\\a8"


def test_format_filter_examples() -> None:
    f = And((Equality("objectClass", b"Person"),
             Or((Equality("sn", b"Jensen"), Substrings("cn", b"Babs J", (), None)))))
    assert format_filter(f) == "(&(objectClass=Person)(|(sn=Jensen)(cn=Babs J*)))"
    assert format_filter(Not(Present("x"))) == "(!(x=*))"
    assert format_filter(Substrings("o", b"univ", (b"of", b"mich"), None)) == "(o=univ*of*mich*)"
    assert format_filter(Substrings("o", None, (), b"x")) == "(o=*x)"
    assert format_filter(Extensible("2.4.6.8.10", None, b"Dino", True)) == "(:dn:2.4.6.8.10:=Dino)"
    assert format_filter(Extensible(None, "ou", b"x", True)) == "(ou:dn:=x)"
    assert format_filter(Extensible("caseExactMatch", "cn", b"Fred", False)) == (
        "(cn:caseExactMatch:=Fred)")
    assert format_filter(GreaterOrEqual("n", b"1")) == "(n>=1)"
    assert format_filter(LessOrEqual("n", b"1")) == "(n<=1)"
    assert format_filter(Approx("n", b"*")) == "(n~=\\2a)"
    assert format_filter(And(())) == "(&)"
    assert format_filter(Or(())) == "(|)"
    with pytest.raises(TypeError):
        format_filter("(a=b)")  # type: ignore[arg-type]


# ---------------------------------------------------------------- properties

_DESCR = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,8}", fullmatch=True)
_OID = st.lists(st.integers(0, 9999), min_size=1, max_size=5).map(lambda xs: ".".join(map(str, xs)))
_OPTIONS = st.lists(st.from_regex(r"[A-Za-z0-9-]{1,6}", fullmatch=True), max_size=2)
_ATTRS = st.builds(lambda t, o: ";".join([t, *o]), st.one_of(_DESCR, _OID), _OPTIONS)
_RULES = st.one_of(_DESCR, _OID).filter(lambda r: r.lower() != "dn")
_VALUES = st.binary(max_size=10) | st.text(max_size=8).map(
    lambda t: t.encode("utf-8", "surrogatepass")) | st.sampled_from(
    [b"*", b"(", b")", b"\\", b"\x00", b"a b", b" ", "\u00e9".encode()])
_PIECES = _VALUES.filter(bool)

_ITEMS = st.one_of(
    st.builds(Equality, _ATTRS, _VALUES),
    st.builds(Approx, _ATTRS, _VALUES),
    st.builds(GreaterOrEqual, _ATTRS, _VALUES),
    st.builds(LessOrEqual, _ATTRS, _VALUES),
    st.builds(Present, _ATTRS),
    st.builds(
        Substrings, _ATTRS, st.none() | _PIECES, st.lists(_PIECES, max_size=3).map(tuple),
        st.none() | _PIECES,
    ).filter(lambda f: f.initial or f.any or f.final),
    st.builds(Extensible, _RULES, st.none() | _ATTRS, _VALUES, st.booleans()),
    st.builds(Extensible, st.none(), _ATTRS, _VALUES, st.booleans()),
)

_FILTERS = st.recursive(
    _ITEMS,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda fs: And(tuple(fs))),
        st.lists(children, max_size=4).map(lambda fs: Or(tuple(fs))),
        children.map(Not),
    ),
    max_leaves=12,
)


@settings(max_examples=400)
@given(_FILTERS)
def test_format_parse_round_trip(f: Filter) -> None:
    text = format_filter(f)
    assert parse_filter(text) == f, text
    assert format_filter(parse_filter(text)) == text


@given(st.text(st.sampled_from("()&|!=*~<>:\\a1bdn;-. 2f\u00e9"), max_size=24))
def test_parse_raises_only_filter_syntax_error(text: str) -> None:
    try:
        f = parse_filter(text)
    except FilterSyntaxError:
        return
    assert parse_filter(format_filter(f)) == f
