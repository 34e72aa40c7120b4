"""RFC 4515 string filters <-> the filter AST of :mod:`vmdir.proto.messages`.

The server never parses string filters off the wire (searches carry the BER
form); the CLI and the tests do. Errors are :class:`FilterSyntaxError`, a
``ValueError``, never an ``LDAPError``.

What :func:`parse_filter` accepts, beyond the RFC 4515 grammar:

- a filter without outer parentheses (``uid=x``), which it wraps, as ldapsearch
  does;
- white space around the whole filter, between the members of ``&``/``|`` and
  after ``!`` (``(& (a=1) (b=2))``), never inside an item (spaces in values are
  significant);
- ``(&)`` and ``(|)``, the absolute true and false filters of RFC 4526;
- the RFC 2254 escapes ``\\*``, ``\\(``, ``\\)`` and ``\\\\`` besides ``\\XX``.

Values become bytes: literal characters are encoded as UTF-8, ``\\XX`` escapes
give the raw byte (so ``\\c3\\a9`` is ``é`` in UTF-8, and ``\\ff`` is a byte
that is not UTF-8 at all). Empty pieces of a substring filter are absent
(``(cn=a**b)`` is ``initial=a, final=b``); ``(cn=*)`` and ``(cn=**)`` are
presence filters. Unescaped ``*`` in an approx, ordering or extensible value is
an error, as is a literal NUL anywhere.

Attribute descriptions are checked (descr or numeric OID, then ``;options``) and
kept as written; matching rule ids likewise (descr or numeric OID).

Layer 1: pure, no I/O.
"""
from __future__ import annotations

import re

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

__all__ = [
    "FilterSyntaxError",
    "MAX_FILTER_DEPTH",
    "MAX_FILTER_LENGTH",
    "parse_filter",
    "format_filter",
    "escape_filter_value",
]

#: Default nesting limit (an item inside ``(&(|(!...)))`` counts each level).
MAX_FILTER_DEPTH = 64
#: Default length limit of a filter string, in characters.
MAX_FILTER_LENGTH = 64 * 1024


class FilterSyntaxError(ValueError):
    """A string filter is malformed. ``position`` is the offset of the problem
    in the (possibly parenthesis-wrapped) string, when known."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message if position is None else f"{message} at offset {position}")
        self.message = message
        self.position = position


_ATTR_RE = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)(?:;[A-Za-z0-9-]+)*")
_OID_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*")
# An item runs to the first ')' that is not escaped; a '(' stops it (an error).
_ITEM_RE = re.compile(r"(?:[^()\\]++|\\.)*+", re.S)
_VALUE_TOKEN_RE = re.compile(r"\\([0-9A-Fa-f]{2})|\\([*()\\])|(\*)|([^\\*]++)|(\\)", re.S)
_WS = " \t\r\n"


def parse_filter(
    s: str, max_depth: int = MAX_FILTER_DEPTH, max_length: int = MAX_FILTER_LENGTH
) -> Filter:
    """Parse an RFC 4515 filter string into a ``Filter``.

    Raises :class:`FilterSyntaxError` if it is malformed, longer than
    ``max_length`` characters or nested deeper than ``max_depth``.
    """
    if len(s) > max_length:
        raise FilterSyntaxError("filter too long")
    if "\x00" in s:
        raise FilterSyntaxError("NUL in filter", s.index("\x00"))
    text = s.strip(_WS)
    if not text:
        raise FilterSyntaxError("empty filter")
    if text[0] != "(":
        text = "(" + text + ")"
    parser = _Parser(text, max_depth)
    f, pos = parser.filter(0, 1)
    pos = parser.skip_ws(pos)
    if pos != len(text):
        raise FilterSyntaxError("unexpected text after filter", pos)
    return f


class _Parser:
    __slots__ = ("s", "n", "max_depth")

    def __init__(self, s: str, max_depth: int) -> None:
        self.s = s
        self.n = len(s)
        self.max_depth = max_depth

    def skip_ws(self, pos: int) -> int:
        s, n = self.s, self.n
        while pos < n and s[pos] in _WS:
            pos += 1
        return pos

    def expect(self, pos: int, c: str) -> int:
        if pos >= self.n or self.s[pos] != c:
            raise FilterSyntaxError(f"expected {c!r}", pos)
        return pos + 1

    def filter(self, pos: int, depth: int) -> tuple[Filter, int]:
        """Parse ``( filtercomp )`` at ``pos``; return it and the offset after it."""
        if depth > self.max_depth:
            raise FilterSyntaxError("filter nested too deeply", pos)
        s = self.s
        pos = self.expect(pos, "(")
        c = s[pos] if pos < self.n else ""
        if c == "&" or c == "|":
            pos = self.skip_ws(pos + 1)
            members: list[Filter] = []
            while pos < self.n and s[pos] == "(":
                f, pos = self.filter(pos, depth + 1)
                members.append(f)
                pos = self.skip_ws(pos)
            pos = self.expect(pos, ")")
            return (And(tuple(members)) if c == "&" else Or(tuple(members))), pos
        if c == "!":
            pos = self.skip_ws(pos + 1)
            f, pos = self.filter(pos, depth + 1)
            pos = self.expect(self.skip_ws(pos), ")")
            return Not(f), pos
        m = _ITEM_RE.match(s, pos)
        assert m is not None  # matches the empty string at worst
        end = m.end()
        if end >= self.n or s[end] != ")":
            raise FilterSyntaxError("unbalanced parentheses in item", end)
        return _item(m.group(), pos), end + 1


def _item(item: str, pos: int) -> Filter:
    eq = item.find("=")
    if eq < 1:
        raise FilterSyntaxError("missing attribute or '='", pos)
    lhs, value = item[:eq], item[eq + 1:]
    last = lhs[-1]
    if last == ":":
        return _extensible(lhs[:-1], value, pos)
    if last in "~<>":
        attr = _attr(lhs[:-1], pos)
        v = _single_value(value, pos + eq + 1)
        if last == "~":
            return Approx(attr, v)
        return GreaterOrEqual(attr, v) if last == ">" else LessOrEqual(attr, v)
    attr = _attr(lhs, pos)
    if "*" not in value:  # fast path: equality, or an escaped '*' at most
        return Equality(attr, _single_value(value, pos + eq + 1))
    pieces = _value_pieces(value, pos + eq + 1)
    if len(pieces) == 1:
        return Equality(attr, pieces[0])
    initial = pieces[0] or None
    final = pieces[-1] or None
    middle = tuple(p for p in pieces[1:-1] if p)
    if initial is None and final is None and not middle:
        return Present(attr)
    return Substrings(attr, initial, middle, final)


def _attr(text: str, pos: int) -> str:
    if _ATTR_RE.fullmatch(text) is None:
        raise FilterSyntaxError(f"invalid attribute description {text!r}", pos)
    return text


def _extensible(lhs: str, value: str, pos: int) -> Filter:
    # lhs is  attr [":dn"] [":" rule]   or   [":dn"] ":" rule   (final ':' removed)
    parts = lhs.split(":")
    attr: str | None = parts[0] or None
    if attr is not None:
        _attr(attr, pos)
    rest = parts[1:]
    dn_attrs = False
    if rest and rest[0].lower() == "dn":
        dn_attrs = True
        rest = rest[1:]
    if len(rest) > 1:
        raise FilterSyntaxError("malformed extensible match", pos)
    rule: str | None = None
    if rest:
        rule = rest[0]
        if _OID_RE.fullmatch(rule) is None:
            raise FilterSyntaxError(f"invalid matching rule {rule!r}", pos)
    if attr is None and rule is None:
        raise FilterSyntaxError("extensible match needs a type or a matching rule", pos)
    return Extensible(rule, attr, _single_value(value, pos + len(lhs) + 2), dn_attrs)


def _single_value(value: str, pos: int) -> bytes:
    if "\\" not in value:
        if "*" in value:
            raise FilterSyntaxError("unescaped '*' in value", pos + value.index("*"))
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise FilterSyntaxError("value is not valid Unicode", pos) from None
    pieces = _value_pieces(value, pos)
    if len(pieces) != 1:
        raise FilterSyntaxError("unescaped '*' in value", pos)
    return pieces[0]


def _value_pieces(value: str, pos: int) -> list[bytes]:
    """Unescape ``value`` and split it at unescaped ``*``."""
    pieces: list[bytes] = []
    cur = bytearray()
    for m in _VALUE_TOKEN_RE.finditer(value):
        hexpair, legacy, star, text, bad = m.groups()
        if text is not None:
            try:
                cur += text.encode("utf-8")
            except UnicodeEncodeError:
                raise FilterSyntaxError("value is not valid Unicode", pos + m.start()) from None
        elif hexpair is not None:
            cur.append(int(hexpair, 16))
        elif star is not None:
            pieces.append(bytes(cur))
            cur = bytearray()
        elif legacy is not None:
            cur += legacy.encode("ascii")
        else:
            assert bad is not None
            raise FilterSyntaxError("invalid escape in value", pos + m.start())
    pieces.append(bytes(cur))
    return pieces


# ---------------------------------------------------------------- formatting

_SPECIAL = frozenset("*()\\")


def escape_filter_value(value: bytes) -> str:
    """Escape an assertion value for a string filter.

    ``* ( ) \\``, NUL, control and other non-printable characters become ``\\xx``
    (lower-case hex of each UTF-8 byte); bytes that are not UTF-8 are escaped one
    by one; everything else is kept, non-ASCII included.
    """
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(
            chr(b) if 0x20 <= b < 0x7F and chr(b) not in _SPECIAL else "\\%02x" % b
            for b in value
        )
    if text.isprintable() and not any(c in _SPECIAL for c in text):
        return text
    out = []
    for c in text:
        if c in _SPECIAL or not c.isprintable():
            out.append("".join("\\%02x" % b for b in c.encode("utf-8")))
        else:
            out.append(c)
    return "".join(out)


def format_filter(f: Filter) -> str:
    """Format a ``Filter`` as an RFC 4515 string.

    ``parse_filter(format_filter(f)) == f`` for every filter whose substring
    pieces are non-empty (empty pieces have no string form) and whose attribute
    descriptions and rule ids are valid; those are written as they are, unchecked.
    Raises ``TypeError`` for something that is not a filter.
    """
    out: list[str] = []
    _format(f, out)
    return "".join(out)


def _format(f: Filter, out: list[str]) -> None:
    if isinstance(f, Equality):
        out += ("(", f.attr, "=", escape_filter_value(f.value), ")")
    elif isinstance(f, And) or isinstance(f, Or):
        out.append("(&" if isinstance(f, And) else "(|")
        for member in f.filters:
            _format(member, out)
        out.append(")")
    elif isinstance(f, Not):
        out.append("(!")
        _format(f.filter, out)
        out.append(")")
    elif isinstance(f, Present):
        out += ("(", f.attr, "=*)")
    elif isinstance(f, Substrings):
        out += ("(", f.attr, "=")
        if f.initial:
            out.append(escape_filter_value(f.initial))
        out.append("*")
        for piece in f.any:
            if piece:
                out += (escape_filter_value(piece), "*")
        if f.final:
            out.append(escape_filter_value(f.final))
        out.append(")")
    elif isinstance(f, GreaterOrEqual):
        out += ("(", f.attr, ">=", escape_filter_value(f.value), ")")
    elif isinstance(f, LessOrEqual):
        out += ("(", f.attr, "<=", escape_filter_value(f.value), ")")
    elif isinstance(f, Approx):
        out += ("(", f.attr, "~=", escape_filter_value(f.value), ")")
    elif isinstance(f, Extensible):
        out.append("(")
        if f.attr:
            out.append(f.attr)
        if f.dn_attrs:
            out.append(":dn")
        if f.rule:
            out += (":", f.rule)
        out += (":=", escape_filter_value(f.value), ")")
    else:
        raise TypeError(f"not a filter: {type(f).__name__}")
