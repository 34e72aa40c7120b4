"""Matching rules: normalisers and match functions, bound by rule OID.

A :class:`MatchingRule` has a ``kind``:

- ``"equality"``: ``value_key(v) -> bytes`` (an index key; equal keys <=> the
  rule says the values match) and ``assertion_key(a) -> bytes``.
- ``"ordering"``: keys are comparable values (``bytes``, ``int``, ``tuple``);
  as an extensible-match rule it is TRUE when the value is *less than* the
  assertion (RFC 4517).
- ``"substr"``: ``value_key(v) -> str`` (the prepared string searched with
  ``in``/``startswith``), ``substrings_key(initial, any, final)`` prepares a
  Substrings filter and ``assertion_key`` parses a SubstringAssertion for
  extensible matching.
- ``"other"``: extensible-only rules (``wordMatch``, ``integerBitAndMatch``...)
  with a custom ``match``.

Every function raises ``ValueError`` when a value cannot be normalised; the
filter engine turns that into Undefined. Rules that need the schema (OIDs,
DNs) are built through :class:`RuleHooks`.

Layer 1: pure, no I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from vmdir.model.schema._prep import (
    prep_equality,
    prep_ia5,
    prep_numeric,
    prep_substring_component,
    prep_substring_value,
    prep_telephone,
)
from vmdir.model.schema._syntax import S, ber_well_formed, parse_integer
from vmdir.model.schema._time import format_time_key, parse_generalized_time, parse_utc_time

__all__ = ["MatchingRule", "RuleHooks", "RuleImpl", "rule_impl", "substrings_match", "parse_substring_assertion"]

KeyFn = Callable[[bytes], Any]
CACHE_MAX_ENTRIES = 8192
# DN-valued rules: a group's members are normalised at each change of the group (to tell
# its values apart); a cache smaller than the group is cleared over and over while doing so
DN_CACHE_MAX_ENTRIES = 1 << 16
CACHE_MAX_VALUE_LEN = 256


def _cached(fn: KeyFn, size: int) -> KeyFn:
    """Memoise a normaliser for short values (at most ``size`` of them; cleared when full);
    ``fn`` itself when ``size`` is 0."""
    if not size:
        return fn
    cache: dict[bytes, Any] = {}

    def wrapper(v: bytes) -> Any:
        r = cache.get(v)
        if r is None:
            r = fn(v)
            if len(v) <= CACHE_MAX_VALUE_LEN:
                if len(cache) >= size:
                    cache.clear()
                cache[v] = r
        return r

    return wrapper


def substrings_match(s: str | bytes, initial: Any, anys: tuple[Any, ...], final: Any) -> bool:
    """True if prepared value ``s`` matches the prepared substring components."""
    pos = 0
    end = len(s)
    if initial:
        if not s.startswith(initial):
            return False
        pos = len(initial)
    if final:
        if end - pos < len(final) or not s.endswith(final):
            return False
        end -= len(final)
    for a in anys:
        if not a:
            continue
        i = s.find(a, pos, end)
        if i < 0:
            return False
        pos = i + len(a)
    return True


_SA_ESCAPE = re.compile(rb"\\([0-9A-Fa-f]{2})")


def parse_substring_assertion(v: bytes) -> tuple[bytes | None, tuple[bytes, ...], bytes | None]:
    """Split a SubstringAssertion (RFC 4517 3.3.30) into initial/any/final."""
    if b"*" not in v:
        raise ValueError("not a substring assertion")
    parts = [_SA_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), p) for p in v.split(b"*")]
    initial = parts[0] or None
    final = parts[-1] or None
    anys = tuple(p for p in parts[1:-1] if p)
    if initial is None and final is None and not anys:
        raise ValueError("empty substring assertion")
    return initial, anys, final


@dataclass(frozen=True, slots=True)
class RuleImpl:
    kind: str
    value_key: KeyFn
    assertion_key: KeyFn | None = None  # default: value_key
    match: Callable[[Any, Any], bool] | None = None  # default by kind
    syntaxes: frozenset[str] = frozenset()  # attribute syntaxes the rule applies to
    # substr only: component preparation (component bytes, position) -> prepared
    component: Callable[[bytes, str], Any] | None = None
    cache: int = CACHE_MAX_ENTRIES  # values whose keys are kept (0: none)


@dataclass(frozen=True, slots=True)
class RuleHooks:
    """Schema services some rules need."""

    oid_key: Callable[[bytes], bytes]  # objectIdentifierMatch value -> key bytes
    dn_key: Callable[[bytes], bytes]  # distinguishedNameMatch value -> key bytes


class MatchingRule:
    """A matching rule as the schema resolved it (see module docs)."""

    __slots__ = (
        "oid", "names", "name", "key", "desc", "obsolete", "syntax", "kind", "definition",
        "syntaxes", "implemented", "_value_key", "_assertion_key", "_match", "_component",
    )

    def __init__(self, oid: str, names: tuple[str, ...], desc: str | None, obsolete: bool, syntax: str,
                 definition: str, impl: RuleImpl | None) -> None:
        self.oid = oid
        self.names = names
        self.name = names[0] if names else oid
        self.key = self.name.lower()
        self.desc = desc
        self.obsolete = obsolete
        self.syntax = syntax
        self.definition = definition
        self.implemented = impl is not None
        if impl is None:  # defined but not implemented: exact octet matching
            impl = _guess_impl(self.name)
        self.kind = impl.kind
        self.syntaxes = impl.syntaxes | {syntax}
        vk = _cached(impl.value_key, impl.cache)
        self._value_key = vk
        ak = impl.assertion_key
        self._assertion_key = vk if ak is None else _cached(ak, impl.cache)
        self._component = impl.component
        m = impl.match
        if m is None:
            if impl.kind == "equality":
                m = _eq
            elif impl.kind == "ordering":
                m = _lt
            elif impl.kind == "substr":
                m = _sub
            else:  # pragma: no cover - every "other" rule has a match
                raise ValueError(f"rule {self.name} has no match function")
        self._match = m

    def __repr__(self) -> str:
        return f"<MatchingRule {self.name} ({self.oid}) {self.kind}>"

    def value_key(self, value: bytes) -> Any:
        """Normalised form of an attribute value. Raises ValueError."""
        return self._value_key(value)

    def assertion_key(self, value: bytes) -> Any:
        """Normalised form of an assertion value. Raises ValueError."""
        return self._assertion_key(value)

    def substrings_key(self, initial: bytes | None, any_: tuple[bytes, ...], final: bytes | None) -> tuple[Any, tuple[Any, ...], Any]:
        """Prepared Substrings filter components (substr rules only). Raises ValueError."""
        comp = self._component
        if comp is None:
            raise ValueError(f"{self.name} is not a substrings rule")
        return (
            comp(initial, "initial") if initial else None,
            tuple(comp(a, "any") for a in any_ if a),
            comp(final, "final") if final else None,
        )

    def matches(self, value_key: Any, assertion_key: Any) -> bool:
        """Apply the rule to a normalised value and a normalised assertion."""
        return self._match(value_key, assertion_key)

    def match_value(self, value: bytes, assertion_key: Any) -> bool:
        """Apply the rule to a raw attribute value. Raises ValueError."""
        return self._match(self._value_key(value), assertion_key)


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


def _lt(a: Any, b: Any) -> bool:
    return bool(a < b)


def _sub(s: Any, parts: Any) -> bool:
    return substrings_match(s, parts[0], parts[1], parts[2])


# ---------------------------------------------------------------- implementations

_STRING = frozenset({S + "15", S + "26", S + "44", S + "11", S + "36", S + "50"})
_IA5ISH = frozenset({S + "26", S + "44", S + "11", S + "36"})
_DESCRIPTIONS = frozenset({S + n for n in ("3", "16", "17", "30", "31", "35", "37", "54")})


def _substr_impl(prep_value: Callable[[bytes], Any], prep_component: Callable[[bytes, str], Any],
                 syntaxes: frozenset[str]) -> RuleImpl:
    def assertion(v: bytes) -> Any:
        initial, anys, final = parse_substring_assertion(v)
        return (
            prep_component(initial, "initial") if initial else None,
            tuple(prep_component(a, "any") for a in anys),
            prep_component(final, "final") if final else None,
        )

    return RuleImpl("substr", prep_value, assertion, None, syntaxes, prep_component)


def _case_ignore(v: bytes) -> bytes:
    return prep_equality(v, True)


def _case_exact(v: bytes) -> bytes:
    return prep_equality(v, False)


def _ia5_ignore(v: bytes) -> bytes:
    return prep_ia5(v, True)


def _ia5_exact(v: bytes) -> bytes:
    return prep_ia5(v, False)


def _ia5_substr_value(fold: bool) -> Callable[[bytes], str]:
    def f(v: bytes) -> str:
        return prep_ia5(v, fold).decode("ascii")
    return f


def _ia5_component(fold: bool) -> Callable[[bytes, str], str]:
    def f(v: bytes, where: str) -> str:
        if not v.isascii():
            raise ValueError("not IA5")
        return prep_substring_component(v, fold, where)
    return f


def _numeric_component(v: bytes, where: str) -> str:
    return prep_substring_component(v, False, where).replace(" ", "")


def _tel_component(v: bytes, where: str) -> str:
    return prep_telephone(v).decode("utf-8") if v.strip(b" -") else ""


def _integer_key(v: bytes) -> bytes:
    return str(parse_integer(v)).encode("ascii")


def _boolean_key(v: bytes) -> bytes:
    if v == b"TRUE" or v == b"FALSE":
        return v
    raise ValueError("not a BOOLEAN")


def _octet(v: bytes) -> bytes:
    return v


def _bitstring_key(v: bytes) -> bytes:
    if re.fullmatch(rb"'[01]*'B", v) is None:
        raise ValueError("not a BIT STRING")
    return v


def _gt_key(v: bytes) -> bytes:
    return format_time_key(parse_generalized_time(v))


def _utc_key(v: bytes) -> bytes:
    return format_time_key(parse_utc_time(v))


_UUID_RE = re.compile(rb"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\Z")


def _uuid_key(v: bytes) -> bytes:
    if _UUID_RE.match(v) is None:
        raise ValueError("not a UUID")
    return bytes.fromhex(v.replace(b"-", b"").decode("ascii"))


def _list_lines(v: bytes) -> list[bytes]:
    lines = []
    for line in v.split(b"$"):
        line = line.replace(b"\\24", b"$").replace(b"\\5C", b"\\").replace(b"\\5c", b"\\")
        lines.append(line)
    return lines


def _case_ignore_list(v: bytes) -> bytes:
    return b"$".join(prep_equality(line, True) for line in _list_lines(v))


def _case_ignore_list_substr(v: bytes) -> str:
    return "$".join(prep_substring_value(line, True) for line in _list_lines(v))


def _first_component(v: bytes) -> bytes:
    """First component of a "( x ... )" value (schema descriptions)."""
    s = v.strip()
    if not s.startswith(b"("):
        raise ValueError("not a description")
    s = s[1:].lstrip()
    if s.startswith(b"'"):
        end = s.find(b"'", 1)
        if end < 0:
            raise ValueError("unterminated")
        return s[1:end]
    m = re.match(rb"[^\s()]+", s)
    if m is None:
        raise ValueError("empty description")
    return m.group(0)


def _int_first_component(v: bytes) -> bytes:
    return _integer_key(_first_component(v))


def _dstring_first_component(v: bytes) -> bytes:
    return prep_equality(_first_component(v), True)


def _word_match(value_key: str, assertion_key: str) -> bool:
    return assertion_key in value_key.split(" ")


def _words_value(v: bytes) -> str:
    return prep_equality(v, True).decode("utf-8")


def _bit_and(value: int, assertion: int) -> bool:
    return value & assertion == assertion


def _bit_or(value: int, assertion: int) -> bool:
    return value & assertion != 0


def _ber_octet(v: bytes) -> bytes:
    if not ber_well_formed(v):
        raise ValueError("not BER")
    return v


_IMPLS: dict[str, RuleImpl] = {
    # RFC 4517 string rules
    "2.5.13.2": RuleImpl("equality", _case_ignore, syntaxes=_STRING),
    "2.5.13.3": RuleImpl("ordering", _case_ignore, syntaxes=_STRING),
    "2.5.13.4": _substr_impl(lambda v: prep_substring_value(v, True),
                             lambda v, w: prep_substring_component(v, True, w), _STRING),
    "2.5.13.5": RuleImpl("equality", _case_exact, syntaxes=_STRING),
    "2.5.13.6": RuleImpl("ordering", _case_exact, syntaxes=_STRING),
    "2.5.13.7": _substr_impl(lambda v: prep_substring_value(v, False),
                             lambda v, w: prep_substring_component(v, False, w), _STRING),
    "2.5.13.8": RuleImpl("equality", prep_numeric, syntaxes=frozenset({S + "36"})),
    "2.5.13.9": RuleImpl("ordering", prep_numeric, syntaxes=frozenset({S + "36"})),
    "2.5.13.10": _substr_impl(lambda v: prep_numeric(v).decode("utf-8"), _numeric_component,
                              frozenset({S + "36"})),
    "2.5.13.11": RuleImpl("equality", _case_ignore_list, syntaxes=frozenset({S + "41"})),
    "2.5.13.12": _substr_impl(_case_ignore_list_substr, lambda v, w: prep_substring_component(v, True, w),
                              frozenset({S + "41"})),
    "2.5.13.13": RuleImpl("equality", _boolean_key, syntaxes=frozenset({S + "7"})),
    "2.5.13.14": RuleImpl("equality", _integer_key, syntaxes=frozenset({S + "27"})),
    "2.5.13.15": RuleImpl("ordering", parse_integer, syntaxes=frozenset({S + "27"})),
    "2.5.13.16": RuleImpl("equality", _bitstring_key, syntaxes=frozenset({S + "6"})),
    "2.5.13.17": RuleImpl("equality", _octet, syntaxes=frozenset({S + "40"}), cache=0),
    "2.5.13.18": RuleImpl("ordering", _octet, syntaxes=frozenset({S + "40"}), cache=0),
    "2.5.13.19": _substr_impl(lambda v: v, lambda v, w: v, frozenset({S + "40"})),
    "2.5.13.20": RuleImpl("equality", prep_telephone, syntaxes=frozenset({S + "50"})),
    "2.5.13.21": _substr_impl(lambda v: prep_telephone(v).decode("utf-8"), _tel_component,
                              frozenset({S + "50"})),
    "2.5.13.22": RuleImpl("equality", _case_ignore, syntaxes=frozenset({S + "43"})),
    "2.5.13.24": RuleImpl("equality", _case_ignore, syntaxes=frozenset({S + "42"})),
    "2.5.13.25": RuleImpl("equality", _utc_key, syntaxes=frozenset({S + "53"})),
    "2.5.13.26": RuleImpl("ordering", parse_utc_time, syntaxes=frozenset({S + "53"})),
    "2.5.13.27": RuleImpl("equality", _gt_key, syntaxes=frozenset({S + "24"})),
    "2.5.13.28": RuleImpl("ordering", parse_generalized_time, syntaxes=frozenset({S + "24"})),
    "2.5.13.29": RuleImpl("equality", _int_first_component, _integer_key, syntaxes=frozenset({S + "17"})),
    "2.5.13.31": RuleImpl("equality", _dstring_first_component, _case_ignore, syntaxes=frozenset()),
    "2.5.13.32": RuleImpl("other", _words_value, _words_value, _word_match, _STRING),
    "2.5.13.33": RuleImpl("other", _words_value, _words_value, _word_match, _STRING),
    # X.509 exact rules: DER-exact comparison (GSER assertions are not supported)
    "2.5.13.34": RuleImpl("equality", _octet, _ber_octet, syntaxes=frozenset({S + "8"}), cache=0),
    "2.5.13.36": RuleImpl("equality", _octet, _ber_octet, syntaxes=frozenset({S + "10"}), cache=0),
    "2.5.13.38": RuleImpl("equality", _octet, _ber_octet, syntaxes=frozenset({S + "9"}), cache=0),
    # IA5 rules
    "1.3.6.1.4.1.1466.109.114.1": RuleImpl("equality", _ia5_exact, syntaxes=_IA5ISH),
    "1.3.6.1.4.1.1466.109.114.2": RuleImpl("equality", _ia5_ignore, syntaxes=_IA5ISH),
    "1.3.6.1.4.1.1466.109.114.3": _substr_impl(_ia5_substr_value(True), _ia5_component(True), _IA5ISH),
    "1.3.6.1.4.1.4203.1.2.1": _substr_impl(_ia5_substr_value(False), _ia5_component(False), _IA5ISH),
    # Active Directory bitwise rules
    "1.2.840.113556.1.4.803": RuleImpl("other", parse_integer, parse_integer, _bit_and, frozenset({S + "27"})),
    "1.2.840.113556.1.4.804": RuleImpl("other", parse_integer, parse_integer, _bit_or, frozenset({S + "27"})),
    # RFC 4530
    "1.3.6.1.1.16.2": RuleImpl("equality", _uuid_key, syntaxes=frozenset({"1.3.6.1.1.16.1"})),
    "1.3.6.1.1.16.3": RuleImpl("ordering", _uuid_key, syntaxes=frozenset({"1.3.6.1.1.16.1"})),
}


def rule_impl(oid: str, hooks: RuleHooks) -> RuleImpl | None:
    """The implementation of rule ``oid`` (None if the rule is not implemented)."""
    if oid == "2.5.13.0":  # objectIdentifierMatch
        return RuleImpl("equality", hooks.oid_key, syntaxes=frozenset({S + "38"}))
    if oid == "2.5.13.1":  # distinguishedNameMatch
        return RuleImpl("equality", hooks.dn_key, syntaxes=frozenset({S + "12"}), cache=DN_CACHE_MAX_ENTRIES)
    if oid == "2.5.13.23":  # uniqueMemberMatch: DN [ "#" BitString ]
        def unique_member(v: bytes) -> bytes:
            dn, sharp, uid = v.rpartition(b"#")
            if sharp and uid.startswith(b"'") and uid.endswith(b"'B"):
                return hooks.dn_key(dn) + b"#" + _bitstring_key(uid)
            return hooks.dn_key(v)
        return RuleImpl("equality", unique_member, syntaxes=frozenset({S + "34"}), cache=DN_CACHE_MAX_ENTRIES)
    if oid == "2.5.13.30":  # objectIdentifierFirstComponentMatch
        def oid_first(v: bytes) -> bytes:
            return hooks.oid_key(_first_component(v))
        return RuleImpl("equality", oid_first, hooks.oid_key, syntaxes=_DESCRIPTIONS)
    return _IMPLS.get(oid)


def _guess_impl(name: str) -> RuleImpl:
    low = name.lower()
    if "substring" in low:
        return _substr_impl(lambda v: v, lambda v, w: v, frozenset())
    if "ordering" in low:
        return RuleImpl("ordering", _octet, cache=0)
    return RuleImpl("equality", _octet, cache=0)
