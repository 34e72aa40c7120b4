"""BER codec for the LDAP search Filter (RFC 4511 section 4.5.1.7).

Decoding is bounded: nesting deeper than ``max_depth`` or more than
``max_terms`` filter nodes (every and/or/not and every leaf counts) is refused
before any further work is done. Empty and/or sets are accepted: they are the
absolute true/false filters of RFC 4526.

Layer 1: pure, no I/O.
"""
from __future__ import annotations

from typing import Any, Callable

from vmdir.ber._prim import (
    OCTETS, T_OCTETS, T_SEQUENCE, bool_value, encode_length, expect, header, string, utf8,
)
from vmdir.proto.messages import (
    And, Approx, Equality, Extensible, Filter, GreaterOrEqual, LessOrEqual, Not, Or, Present,
    Substrings,
)
from vmdir.proto.results import LocalProtocolError, RemoteProtocolError

F_AND = 0xA0
F_OR = 0xA1
F_NOT = 0xA2
F_EQ = 0xA3
F_SUB = 0xA4
F_GE = 0xA5
F_LE = 0xA6
F_PRESENT = 0x87
F_APPROX = 0xA8
F_EXT = 0xA9

_AVA: dict[int, Callable[[str, bytes], Filter]] = {
    F_EQ: Equality, F_GE: GreaterOrEqual, F_LE: LessOrEqual, F_APPROX: Approx,
}


# ---------------------------------------------------------------- decoding


def decode_filter(d: bytes, i: int, end: int, max_depth: int, max_terms: int) -> tuple[Filter, int]:
    """Decode the Filter TLV at ``d[i]``; return ``(filter, next_index)``.

    Raises:
        RemoteProtocolError: malformed filter, unknown choice, nesting deeper
            than ``max_depth`` or more than ``max_terms`` nodes.
        UnicodeDecodeError: an attribute description is not UTF-8 (the
            message-level decoders turn it into RemoteProtocolError).
    """
    budget = [max_terms]
    return _filter(d, i, end, max_depth, budget)


def _filter(d: bytes, i: int, end: int, depth: int, budget: list[int]) -> tuple[Filter, int]:
    if depth <= 0:
        raise RemoteProtocolError("filter nested too deeply")
    budget[0] -= 1
    if budget[0] < 0:
        raise RemoteProtocolError("filter has too many terms")
    if i + 2 <= end and d[i + 1] < 0x80:
        tag = d[i]
        s = i + 2
        e = s + d[i + 1]
        if e > end:
            raise RemoteProtocolError("BER element overruns its container")
    else:
        tag, s, e = header(d, i, end)
    cls = _AVA.get(tag)
    if cls is not None:
        # Fast path: both OCTET STRINGs in short form, nothing trailing.
        if s + 2 <= e and d[s] == 0x04 and d[s + 1] < 0x80:
            te = s + 2 + d[s + 1]
            if te + 2 <= e and d[te] == 0x04 and d[te + 1] < 0x80 and te + 2 + d[te + 1] == e:
                return cls(d[s + 2:te].decode(), d[te + 2:e]), e
        ts, te = expect(d, s, e, T_OCTETS, "attributeDesc")
        vs, ve = expect(d, te, e, T_OCTETS, "assertionValue")
        if ve != e:
            raise RemoteProtocolError("trailing data in AttributeValueAssertion")
        return cls(utf8(d, ts, te, "attributeDesc"), d[vs:ve]), e
    if tag == F_AND or tag == F_OR:
        items = []
        j = s
        depth -= 1
        while j < e:
            f, j = _filter(d, j, e, depth, budget)
            items.append(f)
        return (And(tuple(items)) if tag == F_AND else Or(tuple(items))), e
    if tag == F_PRESENT:
        return Present(utf8(d, s, e, "present")), e
    if tag == F_NOT:
        f, j = _filter(d, s, e, depth - 1, budget)
        if j != e:
            raise RemoteProtocolError("'not' filter must hold exactly one filter")
        return Not(f), e
    if tag == F_SUB:
        return _substrings(d, s, e), e
    if tag == F_EXT:
        return _extensible(d, s, e), e
    raise RemoteProtocolError("unknown filter choice (tag 0x%02x)" % tag)


def _substrings(d: bytes, s: int, e: int) -> Substrings:
    ts, te = expect(d, s, e, T_OCTETS, "substrings type")
    attr = utf8(d, ts, te, "substrings type")
    qs, qe = expect(d, te, e, T_SEQUENCE, "substrings")
    if qe != e:
        raise RemoteProtocolError("trailing data in SubstringFilter")
    if qs == qe:
        raise RemoteProtocolError("SubstringFilter needs at least one substring")
    initial: bytes | None = None
    final: bytes | None = None
    anys: list[bytes] = []
    j = qs
    first = True
    while j < qe:
        if final is not None:
            raise RemoteProtocolError("substring 'final' must be last")
        tag, vs, ve = header(d, j, qe)
        if tag == 0x81:
            anys.append(d[vs:ve])
        elif tag == 0x80:
            if not first:
                raise RemoteProtocolError("substring 'initial' must be first")
            initial = d[vs:ve]
        elif tag == 0x82:
            final = d[vs:ve]
        else:
            raise RemoteProtocolError("unknown substring choice (tag 0x%02x)" % tag)
        first = False
        j = ve
    return Substrings(attr, initial, tuple(anys), final)


def _extensible(d: bytes, s: int, e: int) -> Extensible:
    rule: str | None = None
    attr: str | None = None
    value: bytes | None = None
    dn_attrs = False
    last = 0
    j = s
    while j < e:
        tag, vs, ve = header(d, j, e)
        n = tag & 0x1F
        if tag & 0xE0 != 0x80 or not 1 <= n <= 4 or n <= last:
            raise RemoteProtocolError("bad or out-of-order MatchingRuleAssertion element 0x%02x" % tag)
        last = n
        if n == 1:
            rule = utf8(d, vs, ve, "matchingRule")
        elif n == 2:
            attr = utf8(d, vs, ve, "type")
        elif n == 3:
            value = d[vs:ve]
        else:
            dn_attrs = bool_value(d, vs, ve, "dnAttributes")
        j = ve
    if value is None:
        raise RemoteProtocolError("MatchingRuleAssertion without matchValue")
    return Extensible(rule, attr, value, dn_attrs)


# ---------------------------------------------------------------- encoding


def _ctx(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(value)) + value


def encode_filter(f: object) -> bytes:
    """Return the BER encoding of filter ``f`` (typed ``object``: see ``encode_response``).

    Raises:
        LocalProtocolError: ``f`` is not a filter value, or is a Substrings
            filter without any substring.
    """
    enc = _ENCODERS.get(type(f))
    if enc is None:
        raise LocalProtocolError("not a filter: %r" % (f,))
    return enc(f)


def _enc_ava(f: Equality | GreaterOrEqual | LessOrEqual | Approx) -> bytes:
    a = f.attr.encode()
    v = f.value
    return _ctx(_TAG_OF[type(f)], OCTETS[len(a)] + a + OCTETS[len(v)] + v)


def _enc_and(f: And) -> bytes:
    return _ctx(F_AND, b"".join([encode_filter(x) for x in f.filters]))


def _enc_or(f: Or) -> bytes:
    return _ctx(F_OR, b"".join([encode_filter(x) for x in f.filters]))


def _enc_not(f: Not) -> bytes:
    return _ctx(F_NOT, encode_filter(f.filter))


def _enc_present(f: Present) -> bytes:
    return _ctx(F_PRESENT, f.attr.encode())


def _enc_substrings(f: Substrings) -> bytes:
    parts = []
    if f.initial is not None:
        parts.append(_ctx(0x80, f.initial))
    for x in f.any:
        parts.append(_ctx(0x81, x))
    if f.final is not None:
        parts.append(_ctx(0x82, f.final))
    if not parts:
        raise LocalProtocolError("Substrings filter needs at least one substring")
    return _ctx(F_SUB, string(f.attr) + _ctx(T_SEQUENCE, b"".join(parts)))


def _enc_extensible(f: Extensible) -> bytes:
    parts = []
    if f.rule is not None:
        parts.append(_ctx(0x81, f.rule.encode()))
    if f.attr is not None:
        parts.append(_ctx(0x82, f.attr.encode()))
    parts.append(_ctx(0x83, f.value))
    if f.dn_attrs:
        parts.append(b"\x84\x01\xff")
    return _ctx(F_EXT, b"".join(parts))


_TAG_OF: dict[type, int] = {Equality: F_EQ, GreaterOrEqual: F_GE, LessOrEqual: F_LE, Approx: F_APPROX}
_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    Equality: _enc_ava, GreaterOrEqual: _enc_ava, LessOrEqual: _enc_ava, Approx: _enc_ava,
    And: _enc_and, Or: _enc_or, Not: _enc_not, Present: _enc_present,
    Substrings: _enc_substrings, Extensible: _enc_extensible,
}
