"""Search filter evaluation (RFC 4511 4.5.1.7), compiled to closures.

``compile_filter(f, schema)`` turns a filter AST (``vmdir.proto.messages``)
into ``match(attrs, dn="") -> bool``. ``attrs`` maps canonical attribute keys
(``schema.canonical_attr``; options allowed, e.g. ``cn;lang-en``) to values;
``dn`` is the entry's DN, used only by extensible filters with dnAttributes.

Semantics (slapd's where RFC 4511 leaves room):

- Three-valued logic; ``match`` is True only for TRUE. Undefined comes from
  unknown attribute types (in every filter item, Present included, as in
  slapd 2.4+), unknown matching rules, assertion values the rule cannot
  normalise, missing matching rules (no EQUALITY/ORDERING/SUBSTR) and stored
  values that do not normalise (when no other value matches).
- A filter on a type also matches its subtypes (``(name=x)`` matches ``cn``,
  ``sn``...) and descriptions with options (``(cn=x)`` matches ``cn;lang-en``);
  a filter with options matches only descriptions carrying those options.
- ``(objectClass=*)`` is always TRUE. objectClass and structuralObjectClass
  equality matches subclasses (``(objectClass=person)`` matches an
  inetOrgPerson that does not list person), like slapd's objectSubClassMatch;
  an unknown class asserted by name is Undefined, by OID FALSE.
- Approximate match uses the equality rule (slapd without phonetics).
- ``>=``/``<=`` use the ORDERING rule; none means Undefined.
- Extensible match: rule by name or OID (``caseExactMatch``,
  ``integerBitAndMatch``/``1.2.840.113556.1.4.803``, ...), type and/or rule,
  ``dnAttributes``; an ordering rule is TRUE when the value is less than the
  assertion; a substrings rule takes a SubstringAssertion (``*`` separated);
  a rule that does not apply to the given type is Undefined.

Assertion values are normalised once, at compile time; stored values lazily
(normalisers memoise short values).

Layer 1: pure, no I/O.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

from vmdir.model.schema import Schema
from vmdir.model.schema._rules import substrings_match
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

__all__ = ["compile_filter", "compile_filter3", "filter_attrs", "TRUE", "FALSE", "UNDEFINED", "DEFAULT_MAX_DEPTH"]

FALSE, TRUE, UNDEFINED = 0, 1, 2
DEFAULT_MAX_DEPTH = 64
"""Deepest And/Or/Not nesting ``compile_filter`` accepts."""

Attrs = Mapping[str, Sequence[bytes]]
Node = Callable[[Any, str], int]
Matcher = Callable[..., bool]


class _OptionView:
    """An entry whose keys carry options: lookups by base type merge all
    descriptions of the type; :meth:`with_options` selects by options."""

    __slots__ = ("merged", "described")

    def __init__(self, attrs: Attrs) -> None:
        merged: dict[str, list[bytes]] = {}
        described: list[tuple[str, frozenset[str], Sequence[bytes]]] = []
        for k, vals in attrs.items():
            base, sep, rest = k.partition(";")
            lst = merged.get(base)
            if lst is None:
                merged[base] = list(vals)
            else:
                lst.extend(vals)
            described.append((base, frozenset(rest.lower().split(";")) if sep else frozenset(), vals))
        self.merged = merged
        self.described = described

    def get(self, key: str) -> list[bytes] | None:
        return self.merged.get(key)

    def items(self) -> Iterable[tuple[str, list[bytes]]]:
        return self.merged.items()

    def with_options(self, key: str, options: frozenset[str]) -> list[bytes]:
        out: list[bytes] = []
        for base, opts, vals in self.described:
            if base == key and options <= opts:
                out.extend(vals)
        return out


def _view(attrs: Attrs) -> Any:
    for k in attrs:
        if ";" in k:
            return _OptionView(attrs)
    return attrs


def compile_filter3(f: Filter, schema: Schema, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Callable[..., int]:
    """Like :func:`compile_filter` but the matcher returns TRUE, FALSE or
    UNDEFINED (the assertion control, RFC 4528, needs the distinction only
    for its diagnostics; search needs only TRUE).

    Raises LDAPError(adminLimitExceeded) if the filter nests deeper than
    ``max_depth``.
    """
    node = _Compiler(schema, max_depth).compile(f, 0)

    def match3(attrs: Attrs, dn: str = "") -> int:
        return node(_view(attrs), dn)

    return match3


def compile_filter(f: Filter, schema: Schema, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Matcher:
    """Compile ``f`` into ``match(attrs, dn="") -> bool`` (True only for TRUE).

    Raises LDAPError(adminLimitExceeded) if the filter nests deeper than
    ``max_depth``; never raises while matching.
    """
    node = _Compiler(schema, max_depth).compile(f, 0)
    const = _CONSTS.get(node)
    if const is not None:
        result = const == TRUE

        def match_const(attrs: Attrs, dn: str = "") -> bool:
            return result

        return match_const

    def match(attrs: Attrs, dn: str = "") -> bool:
        view: Any = attrs
        for k in attrs:
            if ";" in k:
                view = _OptionView(attrs)
                break
        return node(view, dn) == TRUE

    return match


def _junction(nodes: list[Node], dominant: int, identity: int) -> Node:
    """AND (dominant FALSE, identity TRUE) or OR (dominant TRUE, identity FALSE) in
    three-valued logic: any dominant child decides; else any Undefined child makes the
    result Undefined; else the identity. Constant children are folded at compile time."""
    const = {TRUE: _const_true, FALSE: _const_false}
    kept = []
    undefined = False
    for n in nodes:
        c = _CONSTS.get(n)
        if c == dominant:
            return const[dominant]
        if c == UNDEFINED:
            undefined = True
        elif c != identity:
            kept.append(n)
    if not kept:
        return _const_undefined if undefined else const[identity]
    if len(kept) == 1 and not undefined:
        return kept[0]
    nodes_t = tuple(kept)
    start = UNDEFINED if undefined else identity

    def junction(view: Any, dn: str) -> int:
        r = start
        for n in nodes_t:
            x = n(view, dn)
            if x == dominant:
                return dominant
            if x == UNDEFINED:
                r = UNDEFINED
        return r

    return junction


def _const_true(view: Any, dn: str) -> int:
    return TRUE


def _const_false(view: Any, dn: str) -> int:
    return FALSE


def _const_undefined(view: Any, dn: str) -> int:
    return UNDEFINED


_CONSTS: dict[Any, int] = {_const_true: TRUE, _const_false: FALSE, _const_undefined: UNDEFINED}
_CONST_NODE = {TRUE: _const_true, FALSE: _const_false, UNDEFINED: _const_undefined}


def _values_getter(types: Sequence[str], options: tuple[str, ...]) -> Callable[[Any], Sequence[bytes]]:
    """A function returning the values of ``types`` (a type and its subtypes) in an entry view."""
    if options:
        opts = frozenset(options)

        def get_with_options(view: Any) -> Sequence[bytes]:
            if type(view) is not _OptionView:
                return ()
            out: list[bytes] = []
            for t in types:
                out += view.with_options(t, opts)
            return out

        return get_with_options
    if len(types) == 1:
        t = types[0]

        def get_one(view: Any) -> Sequence[bytes]:
            return view.get(t) or ()

        return get_one
    tt = tuple(types)

    def get_many(view: Any) -> Sequence[bytes]:
        out: Sequence[bytes] | None = None
        for t in tt:
            v = view.get(t)
            if v:
                out = v if out is None else [*out, *v]
        return out or ()

    return get_many


class _Compiler:
    def __init__(self, schema: Schema, max_depth: int) -> None:
        self.schema = schema
        self.max_depth = max_depth

    def compile(self, f: Filter, depth: int) -> Node:
        if depth > self.max_depth:
            raise LDAPError(ResultCode.adminLimitExceeded, "filter nested too deeply")
        if isinstance(f, And):
            return self._and([self.compile(c, depth + 1) for c in f.filters])
        if isinstance(f, Or):
            return self._or([self.compile(c, depth + 1) for c in f.filters])
        if isinstance(f, Not):
            return self._not(self.compile(f.filter, depth + 1))
        if isinstance(f, Equality):
            return self._equality(f.attr, f.value)
        if isinstance(f, Substrings):
            return self._substrings(f)
        if isinstance(f, GreaterOrEqual):
            return self._ordering(f.attr, f.value, greater=True)
        if isinstance(f, LessOrEqual):
            return self._ordering(f.attr, f.value, greater=False)
        if isinstance(f, Present):
            return self._present(f.attr)
        if isinstance(f, Approx):
            return self._equality(f.attr, f.value)
        if isinstance(f, Extensible):
            return self._extensible(f)
        raise TypeError(f"not a filter: {f!r}")

    # ---------------------------------------------------------------- boolean

    @staticmethod
    def _and(nodes: list[Node]) -> Node:
        return _junction(nodes, dominant=FALSE, identity=TRUE)  # (&) is absolute true (RFC 4526)

    @staticmethod
    def _or(nodes: list[Node]) -> Node:
        return _junction(nodes, dominant=TRUE, identity=FALSE)  # (|) is absolute false (RFC 4526)

    @staticmethod
    def _not(node: Node) -> Node:
        c = _CONSTS.get(node)
        if c is not None:
            return _CONST_NODE[c if c == UNDEFINED else 1 - c]

        def not_(view: Any, dn: str) -> int:
            x = node(view, dn)
            return x if x == UNDEFINED else 1 - x

        return not_

    # ---------------------------------------------------------------- items

    def _resolve(self, desc: str) -> tuple[Any, tuple[str, ...]] | None:
        try:
            return self.schema.parse_attr(desc)
        except LDAPError:
            return None

    def _equality(self, desc: str, value: bytes) -> Node:
        got = self._resolve(desc)
        if got is None:
            return _const_undefined
        at, options = got
        if at.key in ("objectclass", "structuralobjectclass"):
            return self._objectclass_equality(at.key, options, value)
        rule = at.equality
        if rule is None or rule.kind != "equality":
            return _const_undefined
        try:
            akey = rule.assertion_key(value)
        except ValueError:
            return _const_undefined
        values = _values_getter(sorted(self.schema.subtypes(at.key)), options)
        vk = rule.value_key

        def equality(view: Any, dn: str) -> int:
            undefined = False
            for v in values(view):
                try:
                    if vk(v) == akey:
                        return TRUE
                except ValueError:
                    undefined = True
            return UNDEFINED if undefined else FALSE

        return equality

    def _objectclass_equality(self, key: str, options: tuple[str, ...], value: bytes) -> Node:
        schema = self.schema
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            return _const_undefined
        target = schema.object_class(text)
        if target is None:
            if text[:1].isdigit():
                return _const_false  # unknown OID: FALSE (slapd objectSubClassMatch)
            return _const_undefined
        tkey = target.key
        values = _values_getter((key,), options)
        cache: dict[bytes, frozenset[str] | None] = {}

        def supers(v: bytes) -> frozenset[str] | None:
            if v in cache:
                return cache[v]
            oc = schema.object_class(v.decode("utf-8", "replace"))
            s = oc.superclasses if oc is not None else None
            if len(cache) < 1024:
                cache[v] = s
            return s

        def objectclass(view: Any, dn: str) -> int:
            undefined = False
            for v in values(view):
                s = supers(v)
                if s is None:
                    undefined = True
                elif tkey in s:
                    return TRUE
            return UNDEFINED if undefined else FALSE

        return objectclass

    def _substrings(self, f: Substrings) -> Node:
        got = self._resolve(f.attr)
        if got is None:
            return _const_undefined
        at, options = got
        rule = at.substr
        if rule is None:
            return _const_undefined
        if f.initial is None and f.final is None and not f.any:
            return _const_undefined
        try:
            initial, anys, final = rule.substrings_key(f.initial, f.any, f.final)
        except ValueError:
            return _const_undefined
        values = _values_getter(sorted(self.schema.subtypes(at.key)), options)
        vk = rule.value_key

        def substrings(view: Any, dn: str) -> int:
            undefined = False
            for v in values(view):
                try:
                    s = vk(v)
                except ValueError:
                    undefined = True
                    continue
                if substrings_match(s, initial, anys, final):
                    return TRUE
            return UNDEFINED if undefined else FALSE

        return substrings

    def _ordering(self, desc: str, value: bytes, greater: bool) -> Node:
        got = self._resolve(desc)
        if got is None:
            return _const_undefined
        at, options = got
        rule = at.ordering
        if rule is None:
            return _const_undefined
        try:
            akey = rule.assertion_key(value)
        except ValueError:
            return _const_undefined
        values = _values_getter(sorted(self.schema.subtypes(at.key)), options)
        vk = rule.value_key

        if greater:
            def ordering(view: Any, dn: str) -> int:
                undefined = False
                for v in values(view):
                    try:
                        if vk(v) >= akey:
                            return TRUE
                    except ValueError:
                        undefined = True
                return UNDEFINED if undefined else FALSE
        else:
            def ordering(view: Any, dn: str) -> int:
                undefined = False
                for v in values(view):
                    try:
                        if vk(v) <= akey:
                            return TRUE
                    except ValueError:
                        undefined = True
                return UNDEFINED if undefined else FALSE

        return ordering

    def _present(self, desc: str) -> Node:
        got = self._resolve(desc)
        if got is None:
            return _const_undefined
        at, options = got
        if at.key == "objectclass" and not options:
            return _const_true
        values = _values_getter(sorted(self.schema.subtypes(at.key)), options)

        def present(view: Any, dn: str) -> int:
            return TRUE if values(view) else FALSE

        return present

    def _extensible(self, f: Extensible) -> Node:
        schema = self.schema
        at = None
        options: tuple[str, ...] = ()
        if f.attr:
            got = self._resolve(f.attr)
            if got is None:
                return _const_undefined
            at, options = got
        if f.rule:
            rule = schema.matching_rule(f.rule)
            if rule is None:
                return _const_undefined
            applicable = schema.rule_applies_to(rule)
            if at is not None and at.key not in applicable:
                return _const_undefined
        elif at is not None:
            rule = at.equality
            if rule is None:
                return _const_undefined
            applicable = schema.rule_applies_to(rule)
        else:
            return _const_undefined
        try:
            akey = rule.assertion_key(f.value)
        except ValueError:
            return _const_undefined
        match_value = rule.match_value
        if at is not None:
            types = schema.subtypes(at.key)
            values = _values_getter(sorted(types), options)
        else:
            types = applicable
            values = None
        dn_attrs = f.dn_attrs

        def extensible(view: Any, dn: str) -> int:
            undefined = False
            if values is not None:
                candidates: Iterable[Sequence[bytes]] = (values(view),)
            else:
                candidates = (vals for k, vals in view.items() if k.partition(";")[0] in types)
            for vals in candidates:
                for v in vals:
                    try:
                        if match_value(v, akey):
                            return TRUE
                    except ValueError:
                        undefined = True
            if dn_attrs and dn:
                try:
                    avas = schema.dn_attribute_values(dn)
                except LDAPError:
                    avas = []
                for atype, v in avas:
                    a2 = schema.attribute(atype)
                    if a2 is None or a2.key not in types:
                        continue
                    try:
                        if match_value(v, akey):
                            return TRUE
                    except ValueError:
                        undefined = True
            return UNDEFINED if undefined else FALSE

        return extensible


def filter_attrs(f: Filter, schema: Schema | None = None) -> set[str]:
    """The attribute types a filter mentions.

    With a schema: canonical type keys (options dropped; unknown types as
    their lower-cased names). Without: lower-cased descriptions without
    options. Iterative (no recursion limit).
    """
    out: set[str] = set()
    stack: list[Filter] = [f]
    while stack:
        g = stack.pop()
        if isinstance(g, (And, Or)):
            stack.extend(g.filters)
            continue
        if isinstance(g, Not):
            stack.append(g.filter)
            continue
        desc = g.attr
        if not desc:
            continue
        base = desc.partition(";")[0]
        if schema is not None:
            at = schema.attribute(base)
            out.add(at.key if at is not None else base.lower())
        else:
            out.add(base.lower())
    return out
