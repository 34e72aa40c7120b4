"""Distinguished names: RFC 4514 strings <-> tuples, and the canonical key form.

A DN is held as ``tuple[RDN, ...]`` (most specific RDN first, as written), an RDN
as ``tuple[AVA, ...]`` and an AVA as ``(attribute type, value)`` with both ``str``:
the type as written (options such as ``;lang-en`` dropped, as slapd does) and the
value decoded (escapes resolved). The empty string is the root DSE, ``()``.

Parsing is lenient in the way OpenLDAP's ``ldap_str2dn(LDAP_DN_FORMAT_LDAP)`` is,
so whatever slapd accepts from a client we accept too:

- spaces (and TAB, CR, LF) around ``,``, ``+`` and ``=`` and before the first
  RDN are ignored; unescaped trailing spaces of a value are dropped;
- ``;`` separates RDNs like ``,`` (RFC 1779);
- a value may be quoted, ``cn="Doe, John"`` (RFC 1779), ``\\`` inside the
  quotes takes the next character literally;
- ``=`` may appear unescaped inside a value;
- escapes: ``\\`` followed by one of ``\\ , + " < > ; = # SPACE`` (and TAB, CR,
  LF), or by two hex digits; consecutive hex escapes are joined and decoded as
  UTF-8 (``\\C3\\A9`` is ``é``). Anything else after ``\\`` is an error.

``#hex`` values (RFC 4514 2.4, a BER-encoded value): slapd refuses them outright
(invalidDNSyntax). We decode them when they are a single BER string (UTF8String,
PrintableString, IA5String, NumericString, VisibleString, TeletexString taken as
Latin-1, BMPString, UniversalString, or an OCTET STRING holding UTF-8 as in
RFC 4514's example ``1.3.6.1.4.1.1466.0=#04024869``) and then treat the result exactly like the
same value written as a string (``cn=#0C03466F6F`` is ``cn=Foo``): there is no
separate "raw" form, so equality, normalisation and re-formatting need no special
case. Any other ``#hex`` (non-string tag, malformed BER, odd digit count) is
invalidDNSyntax, as in slapd.

Every syntax error raises ``LDAPError(invalidDNSyntax, "invalid DN")``.

Limits (module constants, applied before any work): :data:`MAX_DN_LENGTH`
characters, :data:`MAX_RDNS` RDNs and :data:`MAX_AVAS` AVAs per RDN. The scanner
uses only possessive regular expressions and single left-to-right passes, so
time is linear in the input whatever it contains.

Results of :func:`parse_dn` and :func:`normalize_dn` are memoised in bounded LRU
caches (they are called on every request with the same few DNs). The normaliser
callables are part of the cache key, so they must be pure; when the schema
changes, pass new callables or call :func:`clear_caches`.

Layer 1: pure, no I/O.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Callable, Iterable, Sequence, Union

from vmdir.proto.results import LDAPError, ResultCode

__all__ = [
    "AVA",
    "RDN",
    "DNTuple",
    "MAX_DN_LENGTH",
    "MAX_RDNS",
    "MAX_AVAS",
    "parse_dn",
    "format_dn",
    "format_rdn",
    "escape_value",
    "normalize_dn",
    "normalize_rdn",
    "normalize_value",
    "parent_dn",
    "rdn_of",
    "split_rdn",
    "plain_rdns",
    "is_descendant",
    "clear_caches",
]

AVA = tuple[str, str]
RDN = tuple[AVA, ...]
DNTuple = tuple[RDN, ...]

ValueNorm = Callable[[str, str], str]
TypeNorm = Callable[[str], str]

#: Longest DN string accepted, in characters (slapd has no limit below the PDU
#: size; 8 KiB is far beyond any real DN and bounds the work per request).
MAX_DN_LENGTH = 8192
#: Most RDNs in one DN (tree depth).
MAX_RDNS = 256
#: Most AVAs in one (multi-valued) RDN.
MAX_AVAS = 64

_CACHE_SIZE = 8192

_WS = " \t\r\n"

# attributeType [; options]: descr or numericoid (leading zeros tolerated).
_TYPE_RE = re.compile(r"([A-Za-z][A-Za-z0-9-]*+|[0-9]++(?:\.[0-9]++)*+)(?:;[A-Za-z0-9-]++)*+")
_TYPE_ONLY_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*")
# An unquoted value: runs of ordinary characters and valid escapes. Stops at a
# separator or at anything that would need escaping (the caller decides).
_VALUE_RE = re.compile(
    r"(?:[^\\,+;\"<>\x00]++|\\(?:[0-9A-Fa-f]{2}|[\\,;+\"<>=# \t\r\n]))*+"
)
_QUOTED_RE = re.compile(r"(?:[^\"\\\x00]++|\\[^\x00])*+", re.S)
_HEX_RE = re.compile(r"(?:[0-9A-Fa-f]{2})++")
_ESCAPE_RE = re.compile(r"\\(?:([0-9A-Fa-f]{2})|(.))", re.S)
_QUOTED_ESCAPE_RE = re.compile(r"\\(.)", re.S)
# Characters that send a DN down the general (slow) path.
_SLOW_RE = re.compile(r"[\\\"+;#<>\x00\t\r\n]")
_SPACE_WS = " "

_INVALID = "invalid DN"


def _invalid() -> LDAPError:
    return LDAPError(ResultCode.invalidDNSyntax, _INVALID)


def clear_caches() -> None:
    """Forget memoised parse and normalise results (e.g. after a schema change)."""
    _parse_cached.cache_clear()
    _normalize_cached.cache_clear()


# ---------------------------------------------------------------- parsing


def parse_dn(s: str) -> DNTuple:
    """Parse an RFC 4514 DN string (leniently, see the module docstring).

    Returns a tuple of RDNs, most specific first; ``""`` gives ``()``.
    Raises ``LDAPError(invalidDNSyntax)`` on any syntax error or limit breach.
    """
    if not s:
        return ()
    if len(s) > MAX_DN_LENGTH:
        raise _invalid()
    return _parse_cached(s)


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_cached(s: str) -> DNTuple:
    if not s.isascii():
        try:
            s.encode("utf-8")  # lone surrogates cannot be in a DN
        except UnicodeEncodeError:
            raise _invalid() from None
    if _SLOW_RE.search(s) is None:
        return _parse_simple(s)
    return _parse_general(s)


def plain_rdns(s: str) -> list[str] | None:
    """The RDNs of ``s`` as written, when it is a plain DN: ASCII, within the limits, and
    without escapes, quotes, ``+``, ``;``, ``#``, ``<``, ``>``, NUL or TAB/CR/LF, so that
    every ``,`` separates RDNs (as ``_parse_simple`` takes it). None otherwise, and for the
    root (``""``). Each string is one RDN for ``parse_dn``, or invalid."""
    if not s or len(s) > MAX_DN_LENGTH or not s.isascii() or _SLOW_RE.search(s) is not None:
        return None
    parts = s.split(",")
    return parts if len(parts) <= MAX_RDNS else None


def _parse_simple(s: str) -> DNTuple:
    # No escapes, quotes, '+', ';', '#', '<', '>', NUL or TAB/CR/LF: every ','
    # separates RDNs, the first '=' of each splits type from value.
    parts = s.split(",")
    if len(parts) > MAX_RDNS:
        raise _invalid()
    rdns = []
    fullmatch = _TYPE_ONLY_RE.fullmatch
    for part in parts:
        atype, eq, value = part.partition("=")
        if not eq:
            raise _invalid()
        atype = atype.strip(_SPACE_WS)
        if fullmatch(atype) is None:
            raise _invalid()
        rdns.append(((atype, value.strip(_SPACE_WS)),))
    return tuple(rdns)


def _skip_ws(s: str, pos: int, n: int) -> int:
    while pos < n and s[pos] in _WS:
        pos += 1
    return pos


def _parse_general(s: str) -> DNTuple:
    n = len(s)
    pos = 0
    rdns: list[RDN] = []
    type_match = _TYPE_RE.match
    while True:
        if len(rdns) >= MAX_RDNS:
            raise _invalid()
        avas: list[AVA] = []
        while True:
            if len(avas) >= MAX_AVAS:
                raise _invalid()
            pos = _skip_ws(s, pos, n)
            m = type_match(s, pos)
            if m is None or m.end() == pos:
                raise _invalid()
            atype = m.group(1)
            pos = _skip_ws(s, m.end(), n)
            if pos >= n or s[pos] != "=":
                raise _invalid()
            pos = _skip_ws(s, pos + 1, n)
            c = s[pos] if pos < n else ""
            if c == "#":
                m = _HEX_RE.match(s, pos + 1)
                if m is None:
                    raise _invalid()
                value = _decode_ber_string(bytes.fromhex(m.group()))
                pos = _skip_ws(s, m.end(), n)
            elif c == '"':
                m = _QUOTED_RE.match(s, pos + 1)
                assert m is not None  # matches the empty string at worst
                end = m.end()
                if end >= n or s[end] != '"':
                    raise _invalid()
                raw = m.group()
                value = _QUOTED_ESCAPE_RE.sub(r"\1", raw) if "\\" in raw else raw
                pos = _skip_ws(s, end + 1, n)
            else:
                m = _VALUE_RE.match(s, pos)
                assert m is not None
                raw = m.group()
                pos = m.end()
                value = _unescape(_rstrip_unescaped(raw))
            avas.append((atype, value))
            if pos < n and s[pos] == "+":
                pos += 1
                continue
            break
        rdns.append(tuple(avas))
        if pos >= n:
            return tuple(rdns)
        if s[pos] not in ",;":
            raise _invalid()
        pos += 1


def _rstrip_unescaped(raw: str) -> str:
    """Drop trailing unescaped whitespace, keeping an escaped final space."""
    stripped = raw.rstrip(_WS)
    k = len(stripped)
    if k == len(raw):
        return raw
    # Is the first stripped character escaped (odd run of backslashes before it)?
    j = k - 1
    while j >= 0 and raw[j] == "\\":
        j -= 1
    if (k - 1 - j) % 2 == 1:
        k += 1
    return raw[:k]


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    out = bytearray()
    last = 0
    for m in _ESCAPE_RE.finditer(raw):
        out += raw[last:m.start()].encode("utf-8")
        hexpair = m.group(1)
        if hexpair is not None:
            out.append(int(hexpair, 16))
        else:
            out += m.group(2).encode("utf-8")
        last = m.end()
    out += raw[last:].encode("utf-8")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid() from None


_BER_STRING_CODECS = {
    0x04: "utf-8",  # OCTET STRING holding UTF-8 (RFC 4514's own example)
    0x0C: "utf-8",  # UTF8String
    0x12: "ascii",  # NumericString
    0x13: "ascii",  # PrintableString
    0x14: "latin-1",  # TeletexString (T.61), approximated as Latin-1 like most DSAs
    0x16: "ascii",  # IA5String
    0x1A: "ascii",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}


def _decode_ber_string(data: bytes) -> str:
    """Decode a single primitive BER string TLV (the ``#hex`` form)."""
    if len(data) < 2:
        raise _invalid()
    codec = _BER_STRING_CODECS.get(data[0])
    if codec is None:
        raise _invalid()
    first = data[1]
    if first < 0x80:
        length, off = first, 2
    else:
        nlen = first & 0x7F
        if nlen == 0 or nlen > 4 or len(data) < 2 + nlen:
            raise _invalid()
        length, off = int.from_bytes(data[2:2 + nlen], "big"), 2 + nlen
    if off + length != len(data):
        raise _invalid()
    try:
        return data[off:].decode(codec)
    except UnicodeDecodeError:
        raise _invalid() from None


def split_rdn(rdn_str: str) -> list[AVA]:
    """Parse one RDN string (``cn=a+sn=b``) into its AVAs.

    Raises ``LDAPError(invalidDNSyntax)`` if it is empty or holds more than one RDN.
    """
    rdns = parse_dn(rdn_str)
    if len(rdns) != 1:
        raise _invalid()
    return list(rdns[0])


# ---------------------------------------------------------------- formatting

# Characters escaped with a backslash anywhere in a value. '=' is not required by
# RFC 4514 but older parsers (slapd 2.2, python-ldap's escape_dn_chars) expect it.
_ESCAPED_CHARS = frozenset('\\,+"<>;=')
_NEEDS_ESCAPE_RE = re.compile(r'[\\,+"<>;=\x00-\x1f\x7f]')


def escape_value(value: str) -> str:
    """Return ``value`` escaped for use in an RFC 4514 string.

    Escapes ``\\ , + " < > ; =`` with a backslash, a leading ``#`` or space and a
    trailing space with a backslash, and control characters (incl. NUL) as
    ``\\XX``. Other characters, non-ASCII included, are kept as they are.
    """
    if not value:
        return value
    if _NEEDS_ESCAPE_RE.search(value) is None and value[0] not in " #" and value[-1] != " ":
        return value
    out = []
    for c in value:
        if c in _ESCAPED_CHARS:
            out.append("\\" + c)
        elif c < " " or c == "\x7f":
            out.append("\\%02X" % ord(c))
        else:
            out.append(c)
    if value[0] in " #":
        out[0] = "\\" + value[0]
    if value[-1] == " ":
        out[-1] = "\\ "
    return "".join(out)


def _check_type(atype: str) -> str:
    if _TYPE_ONLY_RE.fullmatch(atype) is None:
        raise ValueError(f"invalid attribute type in DN: {atype!r}")
    return atype


def format_rdn(rdn: Iterable[AVA]) -> str:
    """Format one RDN (AVAs in the given order, joined by ``+``).

    Raises ``ValueError`` if an attribute type is not a descr or numeric OID
    (that would be our misuse, not the peer's).
    """
    return "+".join(_check_type(t) + "=" + escape_value(v) for t, v in rdn)


def format_dn(rdns: Iterable[Iterable[AVA]]) -> str:
    """Format a DN as an RFC 4514 string: no spaces, AVAs in the given order.

    ``format_dn(parse_dn(s))`` is a tidy equivalent of ``s``; ``parse_dn`` of the
    result gives back the same tuples. Raises ``ValueError`` on a bad type.
    """
    return ",".join(format_rdn(rdn) for rdn in rdns)


# ---------------------------------------------------------------- normalising

# RFC 4518 2.2: controls (other than TAB..CR and NEL, which become spaces) and
# format characters are mapped to nothing.
_KEEP_CONTROLS = frozenset("\t\n\x0b\x0c\r\x85")
_ASCII_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def normalize_value(value: str) -> str:
    """The default value normaliser: RFC 4518-style caseIgnore.

    Maps controls and format characters to nothing, NFKC, case-folds, NFKC again,
    drops leading and trailing white space and collapses inner runs to one space.
    Idempotent.
    """
    if value.isascii() and _ASCII_CONTROL_RE.search(value) is None:
        return " ".join(value.lower().split())
    v = "".join(
        c for c in value
        if c in _KEEP_CONTROLS or unicodedata.category(c) not in ("Cc", "Cf")
    )
    v = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", v).casefold())
    return " ".join(v.split())


def _default_value_norm(atype: str, value: str) -> str:
    return normalize_value(value)


def _normalize_rdn(rdn: RDN, value_norm: ValueNorm | None, type_norm: TypeNorm | None) -> str:
    parts = []
    for atype, value in rdn:
        ntype = type_norm(atype) if type_norm is not None else atype.lower()
        nvalue = value_norm(ntype, value) if value_norm is not None else normalize_value(value)
        parts.append(ntype + "=" + escape_value(nvalue))
    if len(parts) > 1:
        parts.sort()
        for a, b in zip(parts, parts[1:]):
            if a == b:  # the same AVA twice in one RDN (RFC 4512 2.3.1)
                raise _invalid()
    return "+".join(parts)


DNInput = Union[str, Sequence[Sequence[AVA]]]


def normalize_dn(
    dn: DNInput,
    value_norm: ValueNorm | None = None,
    type_norm: TypeNorm | None = None,
) -> str:
    """Return the canonical form of a DN, for use as a key.

    ``dn`` is a string or the tuple form. Types go through ``type_norm`` (default
    ``str.lower``); values through ``value_norm(normalised_type, value)`` (default
    :func:`normalize_value`). Values are re-escaped with :func:`escape_value`, the
    AVAs of a multi-valued RDN are sorted, there are no spaces. Equivalent DNs give
    equal strings and the function is idempotent (given idempotent normalisers).
    ``parse_dn``/``format_dn`` of the result give the result back.

    Raises ``LDAPError(invalidDNSyntax)`` on a syntax error or a repeated AVA;
    whatever the normalisers raise propagates.
    """
    if isinstance(dn, str):
        if not dn:
            return ""
        if len(dn) > MAX_DN_LENGTH:
            raise _invalid()
        key: str | DNTuple = dn
    else:
        key = tuple(tuple((t, v) for t, v in rdn) for rdn in dn)
    return _normalize_cached(key, value_norm, type_norm)


@lru_cache(maxsize=_CACHE_SIZE)
def _normalize_cached(
    dn: str | DNTuple, value_norm: ValueNorm | None, type_norm: TypeNorm | None
) -> str:
    rdns = parse_dn(dn) if isinstance(dn, str) else dn
    return ",".join(_normalize_rdn(rdn, value_norm, type_norm) for rdn in rdns)


def normalize_rdn(
    rdn: str | Sequence[AVA],
    value_norm: ValueNorm | None = None,
    type_norm: TypeNorm | None = None,
) -> str:
    """Canonical form of one RDN (as in :func:`normalize_dn`), e.g. for dn2id keys."""
    avas = split_rdn(rdn) if isinstance(rdn, str) else rdn
    return _normalize_rdn(tuple(avas), value_norm, type_norm)


# ---------------------------------------------------------------- tree helpers


def parent_dn(s: str) -> str:
    """The DN of the parent of ``s``, formatted with :func:`format_dn`.

    The root (``""``) and a single-RDN DN both give ``""``. For a normalised DN the
    result is the normalised parent. Raises ``LDAPError(invalidDNSyntax)``.
    """
    rdns = parse_dn(s)
    return format_dn(rdns[1:]) if len(rdns) > 1 else ""


def rdn_of(s: str) -> str:
    """The first (most specific) RDN of ``s`` as a string; ``""`` for the root."""
    rdns = parse_dn(s)
    return format_rdn(rdns[0]) if rdns else ""


def is_descendant(child_norm: str, ancestor_norm: str, *, or_self: bool = False) -> bool:
    """Whether normalised DN ``child_norm`` lies below normalised ``ancestor_norm``.

    Both must come from :func:`normalize_dn` (same normalisers). Strict unless
    ``or_self``; everything but the root is below the root. Pure string work: an
    escaped comma (``\\,``) in a value is not taken for a separator.
    """
    if child_norm == ancestor_norm:
        return or_self
    if not ancestor_norm:
        return True
    cut = len(child_norm) - len(ancestor_norm) - 1
    if cut < 1 or child_norm[cut] != "," or not child_norm.endswith(ancestor_norm):
        return False
    # The ',' separates RDNs only if preceded by an even run of backslashes.
    j = cut - 1
    while j >= 0 and child_norm[j] == "\\":
        j -= 1
    return (cut - 1 - j) % 2 == 0
