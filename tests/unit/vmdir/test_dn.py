"""Tests for vmdir.model.dn (RFC 4514 DNs)."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmdir.model import dn as dnmod
from vmdir.model.dn import (
    MAX_AVAS,
    MAX_DN_LENGTH,
    MAX_RDNS,
    escape_value,
    format_dn,
    format_rdn,
    is_descendant,
    normalize_dn,
    normalize_rdn,
    normalize_value,
    parent_dn,
    parse_dn,
    rdn_of,
    split_rdn,
)
from vmdir.proto.results import LDAPError, ResultCode


def invalid(s: str) -> None:
    with pytest.raises(LDAPError) as ei:
        parse_dn(s)
    assert ei.value.code == ResultCode.invalidDNSyntax
    assert ei.value.message == "invalid DN"


# ---------------------------------------------------------------- RFC 4514 section 4 examples


def test_rfc4514_examples() -> None:
    assert parse_dn("UID=jsmith,DC=example,DC=net") == (
        (("UID", "jsmith"),), (("DC", "example"),), (("DC", "net"),))
    assert parse_dn("OU=Sales+CN=J.  Smith,DC=example,DC=net") == (
        (("OU", "Sales"), ("CN", "J.  Smith")), (("DC", "example"),), (("DC", "net"),))
    assert parse_dn('CN=James \\"Jim\\" Smith\\, III,DC=example,DC=net')[0] == (
        ("CN", 'James "Jim" Smith, III'),)
    assert parse_dn("CN=Before\\0dAfter,DC=example,DC=net")[0] == (("CN", "Before\rAfter"),)
    # #hex: an OCTET STRING holding "Hi"
    assert parse_dn("1.3.6.1.4.1.1466.0=#04024869") == ((("1.3.6.1.4.1.1466.0", "Hi"),),)
    # UTF-8 hex escapes: "Lučić"
    assert parse_dn("CN=Lu\\C4\\8Di\\C4\\87") == ((("CN", "Lu\u010di\u0107"),),)


def test_empty_is_root() -> None:
    assert parse_dn("") == ()
    assert format_dn(()) == ""
    assert normalize_dn("") == ""
    assert normalize_dn(()) == ""


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("cn=\\,", ","),
        ("cn=\\+", "+"),
        ('cn=\\"', '"'),
        ("cn=\\\\", "\\"),
        ("cn=\\<", "<"),
        ("cn=\\>", ">"),
        ("cn=\\;", ";"),
        ("cn=\\=", "="),
        ("cn=\\ ", " "),
        ("cn=\\#", "#"),
        ("cn=\\#x", "#x"),
        ("cn=a#b", "a#b"),
        ("cn=a=b", "a=b"),
        ("cn=\\2C", ","),
        ("cn=\\2c", ","),
        ("cn=\\00", "\x00"),
        ("cn=\\c3\\a9t\\C3\\A9", "\u00e9t\u00e9"),
        ("cn=\\e2\\82\\ac", "\u20ac"),
        ("cn=\\f0\\9f\\98\\80", "\U0001F600"),
        ("cn=\u00e9t\u00e9", "\u00e9t\u00e9"),
        ("cn=\\ a\\ ", " a "),
        ("cn=\\  a \\ ", "  a  "),
        ("cn=a\\\\", "a\\"),
        ("cn=", ""),
        ("cn=a\\ ", "a "),
        ("cn=a\\\\ ", "a\\"),  # escaped backslash, then an unescaped (dropped) space
    ],
)
def test_escapes(text: str, value: str) -> None:
    assert parse_dn(text) == ((("cn", value),),)


def test_lenient_legacy_forms() -> None:
    expected = ((("cn", "a b"),), (("dc", "x"),), (("dc", "y"),))
    assert parse_dn(" cn = a b , dc = x ; dc=y") == expected
    assert parse_dn("cn=a b;dc=x;dc=y") == expected
    assert parse_dn("cn=a b,\tdc=x,\r\ndc=y   ") == expected
    assert parse_dn('cn="Doe, John" ,dc=x') == ((("cn", "Doe, John"),), (("dc", "x"),))
    assert parse_dn('cn="a\\"b+c;d"') == ((("cn", 'a"b+c;d'),),)
    assert parse_dn("cn=a + sn=b") == ((("cn", "a"), ("sn", "b")),)
    # attribute options are dropped, as slapd does
    assert parse_dn("cn;lang-en=x,dc=y") == ((("cn", "x"),), (("dc", "y"),))
    assert parse_dn("2.5.4.3=x") == ((("2.5.4.3", "x"),),)


def test_hex_values() -> None:
    assert parse_dn("cn=#0C03466F6F") == ((("cn", "Foo"),),)
    assert parse_dn("cn=#0c03466f6f ,dc=x") == ((("cn", "Foo"),), (("dc", "x"),))
    assert parse_dn("cn=#130141") == ((("cn", "A"),),)  # PrintableString
    assert parse_dn("cn=#1E0400410042") == ((("cn", "AB"),),)  # BMPString
    assert parse_dn("cn=#0C81" + "03" + "414243") == ((("cn", "ABC"),),)  # long form length
    assert normalize_dn("cn=#0C03466F6F") == normalize_dn("CN=foo")
    for bad in ["cn=#", "cn=#0", "cn=#0C0346", "cn=#020101", "cn=#0C03466F6F00", "cn=#zz",
                "cn=#0C02C328", "cn=#0C03466F 6F"]:
        invalid(bad)


@pytest.mark.parametrize(
    "text",
    [
        " ", ",", "cn", "cn=a,", ",cn=a", "cn=a,,dc=b", "=a", "cn=a+", "+cn=a", "c n=a",
        "cn=a\\", "cn=a\\x", "cn=a\\4", "cn=a\\4g", 'cn=a"b', "cn=a<b", "cn=a>b", "cn=a\x00b",
        'cn="abc', 'cn="abc"x', "1cn=a", "-cn=a", "cn_x=a", "2.5..4=a", "cn=\\ff",
        "cn=\\c3", "cn=\\c3(", "cn=a\ud800", "cn:a", "cn=a=b,=c",
    ],
)
def test_invalid(text: str) -> None:
    invalid(text)


def test_limits() -> None:
    invalid("cn=" + "x" * MAX_DN_LENGTH)
    invalid(",".join(["dc=a"] * (MAX_RDNS + 1)))
    invalid(";".join(["dc=a"] * (MAX_RDNS + 1)))
    invalid("+".join(["cn=a"] * (MAX_AVAS + 1)))
    assert len(parse_dn(",".join(["dc=a"] * MAX_RDNS))) == MAX_RDNS
    with pytest.raises(LDAPError):
        normalize_dn("cn=" + "x" * MAX_DN_LENGTH)


def test_hostile_input_is_fast() -> None:
    n = MAX_DN_LENGTH - 10
    hostile = [
        "cn=" + "\\" * n,
        "cn=" + "\\2" * (n // 2),
        "cn=" + "\\ " * (n // 2) + "\\",
        "cn=" + " " * n + "x\\",
        "cn=" + "a+" * (n // 2),
        "cn=\"" + "\\\"" * (n // 2),
        "cn=#" + "0" * n,
        "=" * n,
        "cn=a," * (n // 5),
        "cn=" + "=" * n + "<",
    ]
    start = time.perf_counter()
    for s in hostile:
        try:
            parse_dn(s)
        except LDAPError:
            pass
    assert time.perf_counter() - start < 1.0


# ---------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain", "plain"),
        ("", ""),
        (" lead", "\\ lead"),
        ("trail ", "trail\\ "),
        (" ", "\\ "),
        ("  ", "\\ \\ "),
        ("#x", "\\#x"),
        ("a#", "a#"),
        ('a,b+c"d\\e<f>g;h=i', 'a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h\\=i'),
        ("a\x00b\rc\x7f", "a\\00b\\0Dc\\7F"),
        ("\u00e9t\u00e9", "\u00e9t\u00e9"),
    ],
)
def test_escape_value(value: str, escaped: str) -> None:
    assert escape_value(value) == escaped
    assert parse_dn("cn=" + escaped) == ((("cn", value),),)


def test_format_dn() -> None:
    rdns = ((("OU", "Sales"), ("CN", "J. Smith")), (("DC", "example"),))
    assert format_dn(rdns) == "OU=Sales+CN=J. Smith,DC=example"
    assert format_rdn((("cn", "a,b"),)) == "cn=a\\,b"
    with pytest.raises(ValueError):
        format_dn(((("c n", "x"),),))
    with pytest.raises(ValueError):
        format_dn(((("cn,dc", "x"),),))


# ---------------------------------------------------------------- normalising


def test_normalize_examples() -> None:
    n = normalize_dn("OU=Sales+CN=J.  Smith,DC=Example,DC=NET")
    assert n == "cn=j. smith+ou=sales,dc=example,dc=net"
    assert normalize_dn(n) == n
    assert normalize_dn(" cn = J.\tSmith ; dc=example;dc=net") == "cn=j. smith,dc=example,dc=net"
    assert normalize_dn("cn=\\4A\\2e smith,dc=example,dc=net") == "cn=j. smith,dc=example,dc=net"
    assert normalize_dn('cn="Doe, John"') == normalize_dn("CN=doe\\, JOHN") == "cn=doe\\, john"
    assert normalize_dn(parse_dn("CN=A,DC=B")) == "cn=a,dc=b"
    # NFKC and case folding: full-width letters, ligature, German sharp s
    assert normalize_dn("cn=\uff21\ufb01") == "cn=afi"
    assert normalize_dn("cn=Stra\u00dfe") == normalize_dn("cn=STRASSE")
    # insignificant spaces and controls
    assert normalize_dn("cn=\\20 a \u00a0 b\\20") == "cn=a b"
    assert normalize_dn("cn=a\\00b\u200b") == "cn=ab"


def test_normalize_with_schema_callables() -> None:
    names = {"cn": "cn", "commonname": "cn", "2.5.4.3": "cn", "dc": "dc"}

    def type_norm(t: str) -> str:
        return names[t.lower()]

    def value_norm(t: str, v: str) -> str:
        assert t in ("cn", "dc")
        return v if t == "cn" else v.lower()  # cn made case-exact for the test

    a = normalize_dn("2.5.4.3=Foo,DC=X", value_norm, type_norm)
    b = normalize_dn("commonName=Foo,dc=x", value_norm, type_norm)
    assert a == b == "cn=Foo,dc=x"
    assert normalize_dn("cn=foo,dc=x", value_norm, type_norm) != a
    with pytest.raises(KeyError):
        normalize_dn("sn=x", value_norm, type_norm)


def test_normalize_rejects_repeated_ava() -> None:
    with pytest.raises(LDAPError) as ei:
        normalize_dn("cn=a+CN=A,dc=x")
    assert ei.value.code == ResultCode.invalidDNSyntax
    assert normalize_dn("cn=a+cn=b") == "cn=a+cn=b"


def test_normalize_rdn() -> None:
    assert normalize_rdn("CN=B+ou=A") == "cn=b+ou=a"
    assert normalize_rdn((("OU", "A"), ("CN", "B"))) == "cn=b+ou=a"
    with pytest.raises(LDAPError):
        normalize_rdn("cn=a,dc=b")


def test_normalize_value_idempotent_on_bmp() -> None:
    # Every BMP character, alone and between letters.
    for cp in range(0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        for v in (c, "a" + c + "B"):
            once = normalize_value(v)
            assert normalize_value(once) == once, hex(cp)


def test_clear_caches() -> None:
    parse_dn("cn=cached")
    dnmod.clear_caches()
    assert parse_dn("cn=cached") == ((("cn", "cached"),),)


# ---------------------------------------------------------------- tree helpers


def test_parent_and_rdn() -> None:
    assert parent_dn("cn=a,ou=b,dc=c") == "ou=b,dc=c"
    assert parent_dn(" CN = a ; OU=b\\,c") == "OU=b\\,c"
    assert parent_dn("dc=c") == ""
    assert parent_dn("") == ""
    assert rdn_of("cn=a+sn=b,dc=c") == "cn=a+sn=b"
    assert rdn_of("") == ""
    n = normalize_dn("CN=A\\,B,OU=X+CN=Y,DC=Z")
    assert parent_dn(n) == normalize_dn("OU=X+CN=Y,DC=Z")
    with pytest.raises(LDAPError):
        parent_dn("not a dn")


def test_split_rdn() -> None:
    assert split_rdn("cn=a+sn=b") == [("cn", "a"), ("sn", "b")]
    assert split_rdn("cn=a\\,b") == [("cn", "a,b")]
    for bad in ("", "cn=a,dc=b", "cn"):
        with pytest.raises(LDAPError):
            split_rdn(bad)


def test_is_descendant() -> None:
    base = normalize_dn("dc=example,dc=com")
    assert is_descendant(normalize_dn("cn=a,dc=example,dc=com"), base)
    assert is_descendant(normalize_dn("cn=a,ou=b,dc=example,dc=com"), base)
    assert not is_descendant(base, base)
    assert is_descendant(base, base, or_self=True)
    assert not is_descendant(normalize_dn("dc=com"), base)
    assert not is_descendant(normalize_dn("dc=xexample,dc=com"), base)
    assert not is_descendant(normalize_dn("cn=a\\,dc=example,dc=com"), base)  # escaped comma
    assert is_descendant(normalize_dn("cn=a\\\\,dc=example,dc=com"), base)  # escaped backslash
    assert not is_descendant(normalize_dn("cn=a\\\\\\,dc=example,dc=com"), base)
    assert is_descendant(base, "")
    assert not is_descendant("", "")
    assert is_descendant("", "", or_self=True)
    assert not is_descendant(",dc=example,dc=com", base)


# ---------------------------------------------------------------- properties

_DESCR = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,8}", fullmatch=True)
_OID = st.lists(st.integers(0, 99999), min_size=1, max_size=6).map(
    lambda xs: ".".join(map(str, xs)))
_TYPES = st.one_of(_DESCR, _OID)
_VALUES = st.text(max_size=12) | st.text(st.sampled_from(' ,+"\\<>;=#\x00\t\r\nabcAB\u00e9\u20ac'), max_size=8)
_AVAS = st.tuples(_TYPES, _VALUES)
_RDNS = st.lists(_AVAS, min_size=1, max_size=3).map(tuple)
_DNS = st.lists(_RDNS, min_size=0, max_size=5).map(tuple)


@given(_DNS)
def test_format_parse_round_trip(rdns: tuple) -> None:
    text = format_dn(rdns)
    assert parse_dn(text) == rdns
    assert format_dn(parse_dn(text)) == text


@given(_DNS)
def test_normalize_idempotent(rdns: tuple) -> None:
    try:
        n = normalize_dn(rdns)
    except LDAPError:  # a repeated AVA within an RDN
        return
    assert normalize_dn(n) == n
    assert format_dn(parse_dn(n)) == n
    assert normalize_dn(format_dn(rdns)) == n


def _noisy_value(draw: st.DrawFn, value: str) -> str:
    """Write ``value`` in one of the many equivalent ways a client may use."""
    style = draw(st.sampled_from(["plain", "hex", "mixed", "quoted", "ber"]))
    if style == "ber" and value and len(value.encode()) < 128:
        data = value.encode()
        return "#0C%02X" % len(data) + data.hex()
    if style == "quoted" and "\x00" not in value:
        inner = "".join("\\" + c if c in '"\\' else c for c in value)
        return '"' + inner + '"'
    out = []
    for i, c in enumerate(value):
        hexed = "".join("\\%02x" % b for b in c.encode())
        must = (c in '\\,+"<>;\x00\r\t\n' or (i == 0 and c in " #")
                or (i == len(value) - 1 and c == " "))
        if style == "hex" or (style == "mixed" and draw(st.booleans())):
            out.append(hexed if draw(st.booleans()) else hexed.upper())
        elif must:
            out.append(hexed if c in "\x00\r\t\n" else "\\" + c)
        else:
            out.append(c)
    return "".join(out)


@st.composite
def _equivalent_spellings(draw: st.DrawFn) -> tuple[tuple, str]:
    rdns = draw(_DNS)
    parts = []
    for rdn in rdns:
        avas = list(rdn)
        avas = draw(st.permutations(avas))
        ava_texts = []
        for atype, value in avas:
            t = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in atype)
            sp = draw(st.sampled_from(["", " ", "  "]))
            ava_texts.append(sp + t + sp + "=" + sp + _noisy_value(draw, value) + sp)
        parts.append("+".join(ava_texts))
    seps = [draw(st.sampled_from([",", ";", " , "])) for _ in parts[1:]]
    text = parts[0] if parts else ""
    for sep, part in zip(seps, parts[1:]):
        text += sep + part
    return rdns, text


@settings(max_examples=300)
@given(_equivalent_spellings())
def test_equivalent_spellings_normalize_equal(case: tuple[tuple, str]) -> None:
    rdns, text = case
    try:
        expected = normalize_dn(rdns)
    except LDAPError:
        return
    assert normalize_dn(text) == expected, text


@given(st.text(st.sampled_from('cn=a,+;"\\# <>0fC\t'), max_size=20))
def test_parse_never_raises_anything_but_ldaperror(text: str) -> None:
    try:
        rdns = parse_dn(text)
    except LDAPError as e:
        assert e.code == ResultCode.invalidDNSyntax
        return
    assert parse_dn(format_dn(rdns)) == rdns
