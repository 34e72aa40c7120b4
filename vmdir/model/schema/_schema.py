"""The resolved schema: lookups, value checks, entry checks, subschema text.

See the package docstring (``vmdir.model.schema``) for the public contract.

Layer 1: pure. The only I/O is reading the packaged definition files, once
per process, the first time a Schema is built.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Iterable, Mapping, Sequence

from vmdir.model.schema._dn import escape_value, parse_dn
from vmdir.model.schema._parse import (
    AttributeTypeDef,
    Definition,
    Extension,
    MatchingRuleDef,
    MatchingRuleUseDef,
    ObjectClassDef,
    SchemaSyntaxError,
    SyntaxDef,
    is_descr,
    is_numericoid,
    parse_attribute_type,
    parse_matching_rule,
    parse_object_class,
    parse_schema_text,
    parse_syntax,
)
from vmdir.model.schema._rules import MatchingRule, RuleHooks, rule_impl
from vmdir.model.schema._syntax import S, VALIDATORS
from vmdir.proto.results import LDAPError, ResultCode

__all__ = ["Schema", "AttributeType", "ObjectClass", "Syntax", "SchemaError"]

USER_APPLICATIONS = "userApplications"
MAX_DN_NESTING = 4
_NAME_CACHE_MAX = 4096
_DN_CACHE_MAX = 16384

# Extra names accepted for rules (lookups only; never published).
_RULE_ALIASES = {"bitandmatch": "1.2.840.113556.1.4.803", "bitormatch": "1.2.840.113556.1.4.804"}


class SchemaError(ValueError):
    """Definitions are malformed or inconsistent (unknown SUP, duplicate OID...)."""


@dataclass(frozen=True, slots=True, eq=False)
class Syntax:
    oid: str
    desc: str | None
    human_readable: bool
    binary_transfer: bool
    extensions: tuple[Extension, ...]
    definition: str
    validate: Callable[[bytes], bool] = field(repr=False)


@dataclass(frozen=True, slots=True, eq=False)
class AttributeType:
    oid: str
    names: tuple[str, ...]
    name: str
    key: str
    desc: str | None
    obsolete: bool
    sup: str | None  # key of the supertype
    syntax: str  # OID (inherited from SUP if not given)
    syntax_len: int | None
    single_value: bool
    collective: bool
    no_user_modification: bool
    usage: str
    operational: bool
    equality: MatchingRule | None  # inherited from SUP if not given
    ordering: MatchingRule | None
    substr: MatchingRule | None
    extensions: tuple[Extension, ...]
    definition: str

    def __repr__(self) -> str:
        return f"<AttributeType {self.name} ({self.oid})>"


@dataclass(frozen=True, slots=True, eq=False)
class ObjectClass:
    oid: str
    names: tuple[str, ...]
    name: str
    key: str
    desc: str | None
    obsolete: bool
    sup: tuple[str, ...]  # keys of the direct superclasses
    kind: str  # 'STRUCTURAL' | 'AUXILIARY' | 'ABSTRACT'
    must: frozenset[str]  # attribute keys, inherited included
    may: frozenset[str]
    superclasses: frozenset[str]  # keys of this class and all its superclasses
    extensions: tuple[Extension, ...]
    definition: str

    def __repr__(self) -> str:
        return f"<ObjectClass {self.name} ({self.oid}) {self.kind}>"


# ---------------------------------------------------------------- packaged definitions

_STANDARD: list[Definition] | None = None
_STANDARD_LOCK = threading.RLock()
_DEFAULT: "Schema | None" = None


def _standard_definitions() -> list[Definition]:
    global _STANDARD
    if _STANDARD is None:
        with _STANDARD_LOCK:
            if _STANDARD is None:
                defs: list[Definition] = []
                root = resources.files("vmdir.model.schema").joinpath("defs")
                for entry in sorted(root.iterdir(), key=lambda p: p.name):
                    if entry.name.endswith(".schema"):
                        defs += parse_schema_text(entry.read_text("utf-8"), entry.name)
                _STANDARD = defs
    return _STANDARD


def _err(code: ResultCode, message: str) -> LDAPError:
    return LDAPError(code, message)


def _show(v: bytes) -> str:
    return v.decode("utf-8", "replace")


_KEYCHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


class Schema:
    """A resolved, immutable schema.

    ``Schema()`` is the packaged standard schema; ``Schema(extra)`` adds
    definition texts (schema-file layout, see ``_parse``). Construction raises
    :class:`SchemaError` if the definitions are malformed or inconsistent.
    Schemas never change: :meth:`with_definitions` returns a new one.
    """

    def __init__(self, extra: str | Iterable[str] = (), *, standard: bool = True) -> None:
        if isinstance(extra, str):
            extra = (extra,)
        self._extra = tuple(extra)
        self._standard = standard
        defs: list[Definition] = list(_standard_definitions()) if standard else []
        for i, text in enumerate(self._extra):
            try:
                defs += parse_schema_text(text, f"<extra {i}>")
            except SchemaSyntaxError as e:
                raise SchemaError(str(e)) from None
        self._attr_cache: dict[str, Any] = {}
        self._oc_keys: dict[tuple[bytes, ...], frozenset[bytes]] = {}  # objectclass_index_keys
        self._dn_cache: dict[str, str] = {}
        self._subschema: dict[str, list[bytes]] | None = None
        self._applicable: dict[str, frozenset[str]] = {}
        self._build(defs)

    # ------------------------------------------------------------ construction

    @classmethod
    def default(cls) -> "Schema":
        """The standard schema, built once per process."""
        global _DEFAULT
        if _DEFAULT is None:
            with _STANDARD_LOCK:
                if _DEFAULT is None:
                    _DEFAULT = cls()
        return _DEFAULT

    def with_definitions(self, text: str) -> "Schema":
        """A new Schema with ``text`` added. Raises SchemaError."""
        return Schema((*self._extra, text), standard=self._standard)

    def _build(self, defs: list[Definition]) -> None:
        syn_defs: dict[str, SyntaxDef] = {}
        mr_defs: dict[str, MatchingRuleDef] = {}
        at_defs: dict[str, AttributeTypeDef] = {}
        oc_defs: dict[str, ObjectClassDef] = {}
        tables: dict[type, dict[str, Any]] = {
            SyntaxDef: syn_defs, MatchingRuleDef: mr_defs, AttributeTypeDef: at_defs, ObjectClassDef: oc_defs,
        }
        for d in defs:
            if isinstance(d, MatchingRuleUseDef):
                continue  # published matchingRuleUse is computed, not stored
            table = tables[type(d)]
            if d.oid in table:
                raise SchemaError(f"duplicate OID {d.oid}")
            table[d.oid] = d
        self._syn_defs = syn_defs
        self._mr_defs = mr_defs
        self._at_defs = at_defs
        self._oc_defs = oc_defs

        # syntaxes
        self._syntaxes: dict[str, Syntax] = {}
        for oid, sd in syn_defs.items():
            exts = dict(sd.extensions)
            self._syntaxes[oid] = Syntax(
                oid=oid,
                desc=sd.desc,
                human_readable=exts.get("X-NOT-HUMAN-READABLE", ("FALSE",))[0].upper() != "TRUE",
                binary_transfer=exts.get("X-BINARY-TRANSFER-REQUIRED", ("FALSE",))[0].upper() == "TRUE",
                extensions=sd.extensions,
                definition=sd.to_text(),
                validate=self._make_validator(oid),
            )

        # matching rules
        hooks = RuleHooks(oid_key=self._oid_key, dn_key=self._dn_key)
        self._rules: dict[str, MatchingRule] = {}
        for oid, md in mr_defs.items():
            rule = MatchingRule(oid, md.names, md.desc, md.obsolete, md.syntax, md.to_text(), rule_impl(oid, hooks))
            self._index(self._rules, rule, "matching rule")
        for alias, oid in _RULE_ALIASES.items():
            if oid in self._rules and alias not in self._rules:
                self._rules[alias] = self._rules[oid]

        # attribute types (resolve SUP chains first)
        self._attrs: dict[str, AttributeType] = {}
        by_name: dict[str, AttributeTypeDef] = {}
        for ad in at_defs.values():
            for n in (ad.oid, *ad.names):
                if n.lower() in by_name:
                    raise SchemaError(f"attribute type name {n!r} defined twice")
                by_name[n.lower()] = ad
        resolving: set[str] = set()

        def resolve_at(ad: AttributeTypeDef) -> AttributeType:
            done = self._attrs.get(ad.oid)
            if done is not None:
                return done
            if ad.oid in resolving:
                raise SchemaError(f"attribute type {ad.oid}: SUP cycle")
            resolving.add(ad.oid)
            sup = None
            if ad.sup:
                sd = by_name.get(ad.sup.lower())
                if sd is None:
                    raise SchemaError(f"attribute type {ad.oid}: unknown SUP {ad.sup!r}")
                sup = resolve_at(sd)
                if sup.usage != ad.usage:
                    raise SchemaError(f"attribute type {ad.oid}: USAGE differs from SUP {ad.sup!r}")
            name = ad.names[0] if ad.names else ad.oid
            syntax = ad.syntax or (sup.syntax if sup else None)
            if syntax is None:
                raise SchemaError(f"attribute type {ad.oid}: no SYNTAX")
            at = AttributeType(
                oid=ad.oid,
                names=ad.names,
                name=name,
                key=name.lower(),
                desc=ad.desc,
                obsolete=ad.obsolete,
                sup=sup.key if sup else None,
                syntax=syntax,
                syntax_len=ad.syntax_len if ad.syntax else (sup.syntax_len if sup else None),
                single_value=ad.single_value,
                collective=ad.collective,
                no_user_modification=ad.no_user_modification,
                usage=ad.usage,
                operational=ad.usage != USER_APPLICATIONS,
                equality=self._rule_ref(ad, ad.equality, "equality", sup.equality if sup else None),
                ordering=self._rule_ref(ad, ad.ordering, "ordering", sup.ordering if sup else None),
                substr=self._rule_ref(ad, ad.substr, "substr", sup.substr if sup else None),
                extensions=ad.extensions,
                definition=ad.to_text(),
            )
            resolving.discard(ad.oid)
            self._attrs[ad.oid] = at
            return at

        for ad in at_defs.values():
            resolve_at(ad)
        attrs_by_oid = dict(self._attrs)
        self._attrs = {}
        for at in attrs_by_oid.values():
            self._index(self._attrs, at, "attribute type")
        self._attr_list: tuple[AttributeType, ...] = tuple(attrs_by_oid.values())

        # subtypes: key -> keys of the type and all its subtypes
        children: dict[str, list[str]] = {}
        for at in self._attr_list:
            if at.sup:
                children.setdefault(at.sup, []).append(at.key)
        self._subtypes: dict[str, frozenset[str]] = {}

        def subtypes(key: str) -> frozenset[str]:
            got = self._subtypes.get(key)
            if got is None:
                acc = {key}
                for c in children.get(key, ()):
                    acc |= subtypes(c)
                got = self._subtypes[key] = frozenset(acc)
            return got

        for at in self._attr_list:
            subtypes(at.key)

        # object classes
        self._classes: dict[str, ObjectClass] = {}
        oc_by_name: dict[str, ObjectClassDef] = {}
        for od in oc_defs.values():
            for n in (od.oid, *od.names):
                if n.lower() in oc_by_name:
                    raise SchemaError(f"object class name {n!r} defined twice")
                oc_by_name[n.lower()] = od
        resolved: dict[str, ObjectClass] = {}
        oc_resolving: set[str] = set()

        def attr_key(od: ObjectClassDef, n: str) -> str:
            at = self._attrs.get(n.lower())
            if at is None:
                raise SchemaError(f"object class {od.oid}: unknown attribute type {n!r}")
            return at.key

        def resolve_oc(od: ObjectClassDef) -> ObjectClass:
            done = resolved.get(od.oid)
            if done is not None:
                return done
            if od.oid in oc_resolving:
                raise SchemaError(f"object class {od.oid}: SUP cycle")
            oc_resolving.add(od.oid)
            sups = []
            for s in od.sup:
                sd = oc_by_name.get(s.lower())
                if sd is None:
                    raise SchemaError(f"object class {od.oid}: unknown SUP {s!r}")
                sups.append(resolve_oc(sd))
            for sup in sups:
                ok = (
                    sup.kind == "ABSTRACT"
                    or (od.kind == "STRUCTURAL" and sup.kind == "STRUCTURAL")
                    or (od.kind == "AUXILIARY" and sup.kind == "AUXILIARY")
                )
                if not ok:
                    raise SchemaError(f"object class {od.oid}: {od.kind} class cannot have {sup.kind} SUP {sup.name!r}")
            must = {attr_key(od, n) for n in od.must}
            may = {attr_key(od, n) for n in od.may}
            supers: set[str] = set()
            for sup in sups:
                must |= sup.must
                may |= sup.may
                supers |= sup.superclasses
            name = od.names[0] if od.names else od.oid
            supers.add(name.lower())
            oc = ObjectClass(
                oid=od.oid,
                names=od.names,
                name=name,
                key=name.lower(),
                desc=od.desc,
                obsolete=od.obsolete,
                sup=tuple(s.key for s in sups),
                kind=od.kind,
                must=frozenset(must),
                may=frozenset(may - must),
                superclasses=frozenset(supers),
                extensions=od.extensions,
                definition=od.to_text(),
            )
            oc_resolving.discard(od.oid)
            resolved[od.oid] = oc
            return oc

        for od in oc_defs.values():
            resolve_oc(od)
        for oc in resolved.values():
            self._index(self._classes, oc, "object class")
        self._class_list: tuple[ObjectClass, ...] = tuple(resolved.values())
        self._extensible = self._classes.get("extensibleobject")

        # objectIdentifierMatch: any known name or OID -> its element's key
        self._oid_keys: dict[str, str] = {}
        for table in (self._rules, self._attrs, self._classes):  # later tables win
            for n, el in table.items():
                self._oid_keys[n] = el.key
        for oid in self._syntaxes:
            self._oid_keys.setdefault(oid, oid)

    @staticmethod
    def _index(table: dict[str, Any], el: Any, what: str) -> None:
        for n in (el.oid, *el.names):
            k = n.lower()
            if k in table:
                raise SchemaError(f"{what} name {n!r} defined twice")
            table[k] = el

    def _rule_ref(self, ad: AttributeTypeDef, ref: str | None, kind: str,
                  inherited: MatchingRule | None) -> MatchingRule | None:
        if ref is None:
            return inherited
        rule = self._rules.get(ref.lower())
        if rule is None:
            raise SchemaError(f"attribute type {ad.oid}: unknown matching rule {ref!r}")
        if rule.kind != kind and not (kind == "equality" and rule.kind == "other"):
            raise SchemaError(f"attribute type {ad.oid}: {rule.name} is not an {kind} rule")
        return rule

    def _make_validator(self, oid: str) -> Callable[[bytes], bool]:
        if oid == S + "12":
            return self._valid_dn
        if oid == S + "34":
            return self._valid_name_and_uid
        parsers: dict[str, Callable[[str], Any]] = {
            S + "3": parse_attribute_type,
            S + "37": parse_object_class,
            S + "54": parse_syntax,
            S + "30": parse_matching_rule,
        }
        parser = parsers.get(oid)
        if parser is not None:
            def valid_description(v: bytes, _p: Callable[[str], Any] = parser) -> bool:
                try:
                    _p(v.decode("utf-8"))
                except (ValueError, SchemaSyntaxError):
                    return False
                return True
            return valid_description
        return VALIDATORS.get(oid, _accept)

    # ------------------------------------------------------------ lookups

    def attribute(self, name_or_oid: str) -> AttributeType | None:
        """The attribute type named ``name_or_oid`` (any case, options ignored), or None."""
        at = self._attrs.get(name_or_oid)
        if at is None:
            at = self._attrs.get(name_or_oid.partition(";")[0].lower())
        return at

    def object_class(self, name_or_oid: str) -> ObjectClass | None:
        """The object class named ``name_or_oid`` (any case), or None."""
        oc = self._classes.get(name_or_oid)
        if oc is None:
            oc = self._classes.get(name_or_oid.lower())
        return oc

    def matching_rule(self, name_or_oid: str) -> MatchingRule | None:
        """The matching rule named ``name_or_oid`` (any case), or None."""
        return self._rules.get(name_or_oid.lower())

    def syntax(self, oid: str) -> Syntax | None:
        return self._syntaxes.get(oid)

    @property
    def attribute_types(self) -> tuple[AttributeType, ...]:
        return self._attr_list

    @property
    def object_classes(self) -> tuple[ObjectClass, ...]:
        return self._class_list

    @property
    def matching_rules(self) -> tuple[MatchingRule, ...]:
        seen: dict[str, MatchingRule] = {}
        for r in self._rules.values():
            seen.setdefault(r.oid, r)
        return tuple(seen.values())

    @property
    def syntaxes(self) -> tuple[Syntax, ...]:
        return tuple(self._syntaxes.values())

    def subtypes(self, attr: str) -> frozenset[str]:
        """Keys of ``attr`` and all its subtypes (empty if ``attr`` is unknown)."""
        at = self.attribute(attr)
        return self._subtypes[at.key] if at is not None else frozenset()

    def parse_attr(self, description: str) -> tuple[AttributeType, tuple[str, ...]]:
        """Split an attribute description into its type and sorted, lower-cased options.

        The ``binary`` transfer option is dropped (RFC 4522: it is not part of
        the stored attribute). Raises LDAPError(undefinedAttributeType,
        ``"<description>: attribute type undefined"``).
        """
        got = self._attr_cache.get(description)
        if got is not None:
            return got  # type: ignore[no-any-return]
        base, sep, opts = description.partition(";")
        at = self._attrs.get(base) or self._attrs.get(base.lower())
        if at is None or not (is_descr(base) or is_numericoid(base)):
            raise _err(ResultCode.undefinedAttributeType, f"{description}: attribute type undefined")
        options: tuple[str, ...] = ()
        if sep:
            parts = set()
            for o in opts.split(";"):
                if not o or not set(o) <= _KEYCHARS:
                    raise _err(ResultCode.undefinedAttributeType, f"{description}: attribute type undefined")
                o = o.lower()
                if o != "binary":
                    parts.add(o)
            options = tuple(sorted(parts))
        got = (at, options)
        if len(self._attr_cache) >= _NAME_CACHE_MAX:
            self._attr_cache.clear()
        self._attr_cache[description] = got
        return got

    def canonical_attr(self, description: str) -> str:
        """The canonical key of an attribute description.

        ``'CN'`` and ``'2.5.4.3'`` give ``'cn'``; ``'cn;Lang-EN'`` gives
        ``'cn;lang-en'`` (options lower-cased, sorted, ``binary`` dropped).
        Raises LDAPError(undefinedAttributeType) for an unknown type.
        """
        at, options = self.parse_attr(description)
        return at.key + "".join(";" + o for o in options) if options else at.key

    def display_attr(self, key: str) -> str:
        """The schema's spelling of a canonical key (``'uidnumber'`` -> ``'uidNumber'``)."""
        at, options = self.parse_attr(key)
        return at.name + "".join(";" + o for o in options)

    # ------------------------------------------------------------ values

    def _attr_or_raise(self, attr: str) -> AttributeType:
        at = self.attribute(attr)
        if at is None:
            raise _err(ResultCode.undefinedAttributeType, f"{attr}: attribute type undefined")
        return at

    def validate(self, attr: str, value: bytes, *, index: int = 0) -> None:
        """Check ``value`` against the syntax of ``attr``.

        Raises LDAPError(invalidAttributeSyntax, ``"<name>: value #<index>
        invalid per syntax"``) or LDAPError(undefinedAttributeType).
        objectClass values must name a known object class (as in slapd).
        """
        at = self._attr_or_raise(attr)
        if not self._valid(at, value):
            raise _err(ResultCode.invalidAttributeSyntax, f"{at.name}: value #{index} invalid per syntax")

    def _valid(self, at: AttributeType, value: bytes) -> bool:
        if at.key == "objectclass" or at.key == "structuralobjectclass":
            try:
                return self.object_class(value.decode("ascii")) is not None
            except UnicodeDecodeError:
                return False
        syn = self._syntaxes.get(at.syntax)
        return syn is None or syn.validate(value)

    def eq_key(self, attr: str, value: bytes, *, index: int = 0) -> bytes:
        """The equality index key of ``value`` under ``attr``'s EQUALITY rule.

        Equal keys <=> the values are equal for the rule. Keys are non-empty
        except for an empty Octet String value and the empty (root) DN.
        Raises LDAPError(inappropriateMatching) if ``attr`` has no equality
        rule, LDAPError(invalidAttributeSyntax) if the value cannot be
        normalised, LDAPError(undefinedAttributeType) for an unknown type.
        """
        at = self._attr_or_raise(attr)
        rule = at.equality
        if rule is None or rule.kind != "equality":
            raise _err(ResultCode.inappropriateMatching, f"{at.name}: no equality matching rule")
        try:
            return rule.value_key(value)  # type: ignore[no-any-return]
        except ValueError:
            raise _err(ResultCode.invalidAttributeSyntax, f"{at.name}: value #{index} invalid per syntax") from None

    def ordering_key(self, attr: str, value: bytes) -> Any:
        """The ordering key of ``value`` (comparable). Raises LDAPError like eq_key."""
        at = self._attr_or_raise(attr)
        if at.ordering is None:
            raise _err(ResultCode.inappropriateMatching, f"{at.name}: no ordering matching rule")
        try:
            return at.ordering.value_key(value)
        except ValueError:
            raise _err(ResultCode.invalidAttributeSyntax, f"{at.name}: value #0 invalid per syntax") from None

    def substr_prep(self, attr: str, value: bytes) -> Any:
        """The prepared form of ``value`` for substring matching (str, or bytes
        for octet rules). Raises LDAPError like eq_key."""
        at = self._attr_or_raise(attr)
        if at.substr is None:
            raise _err(ResultCode.inappropriateMatching, f"{at.name}: no substrings matching rule")
        try:
            return at.substr.value_key(value)
        except ValueError:
            raise _err(ResultCode.invalidAttributeSyntax, f"{at.name}: value #0 invalid per syntax") from None

    def objectclass_index_keys(self, values: Iterable[bytes]) -> frozenset[bytes]:
        """Index keys for objectClass values, superclasses included (like slapd's
        objectSubClassIndexer), so that an equality lookup of ``person`` finds
        ``inetOrgPerson`` entries. Unknown values index under their lower-cased text."""
        given = tuple(values)
        got = self._oc_keys.get(given)  # entries mostly share a few objectClass lists
        if got is not None:
            return got
        out: set[bytes] = set()
        for v in given:
            oc = self.object_class(v.decode("utf-8", "replace"))
            if oc is None:
                out.add(v.lower())
            else:
                out.update(k.encode("ascii") for k in oc.superclasses)
        if len(self._oc_keys) >= 1024:
            self._oc_keys.clear()
        self._oc_keys[given] = frozen = frozenset(out)
        return frozen

    # --------------------------------------------------- rule hooks (OIDs, DNs)

    def _oid_key(self, value: bytes) -> bytes:
        try:
            s = value.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("not an OID") from None
        if not (is_numericoid(s) or is_descr(s)):
            raise ValueError("not an OID")
        low = s.lower()
        return self._oid_keys.get(low, low).encode("ascii")

    def _dn_key(self, value: bytes) -> bytes:
        return self._normalize_dn(value.decode("utf-8"), 0).encode("utf-8")

    def _valid_dn(self, value: bytes) -> bool:
        try:
            self._dn_key(value)
        except (ValueError, UnicodeDecodeError):
            return False
        return True

    def _valid_name_and_uid(self, value: bytes) -> bool:
        dn, sharp, uid = value.rpartition(b"#")
        if sharp and uid.startswith(b"'") and uid.endswith(b"'B") and not uid[1:-2].translate(None, b"01"):
            return self._valid_dn(dn)
        return self._valid_dn(value)

    def dn_attribute_values(self, dn: str) -> list[tuple[str, bytes]]:
        """The (attribute type as written, value) pairs of every RDN of ``dn``,
        leftmost first (``#hex`` values decoded to their bytes). Raises
        LDAPError(invalidDNSyntax, "invalid DN")."""
        try:
            return [(t, v) for rdn in parse_dn(dn) for t, v, _hex in rdn]
        except ValueError:
            raise _err(ResultCode.invalidDNSyntax, "invalid DN") from None

    def normalize_dn(self, dn: str) -> str:
        """Normalised form of a DN (distinguishedNameMatch): attribute types
        mapped to their keys, values normalised by each type's equality rule
        and canonically escaped, multi-valued RDNs sorted, no spaces around
        separators. Raises LDAPError(invalidDNSyntax, "invalid DN")."""
        try:
            return self._normalize_dn(dn, 0)
        except (ValueError, UnicodeDecodeError):
            raise _err(ResultCode.invalidDNSyntax, "invalid DN") from None

    def _normalize_dn(self, dn: str, depth: int) -> str:
        got = self._dn_cache.get(dn)
        if got is not None:
            return got
        if depth > MAX_DN_NESTING:
            raise ValueError("DN nested too deeply")
        rdns = []
        for rdn in parse_dn(dn):
            avas = []
            for atype, value, is_hex in rdn:
                at = self._attrs.get(atype.lower())
                if at is None:
                    if not is_numericoid(atype):
                        raise ValueError(f"unknown attribute type {atype!r}")
                    key = atype
                    text = "#" + value.hex() if is_hex else escape_value(value.decode("utf-8"))
                else:
                    key = at.key
                    if is_hex:
                        text = "#" + value.hex()
                    else:
                        if not self._valid(at, value):
                            raise ValueError(f"invalid value for {atype!r}")
                        rule = at.equality
                        if rule is not None and rule.kind == "equality":
                            if rule.oid == "2.5.13.1":
                                norm = self._normalize_dn(value.decode("utf-8"), depth + 1).encode("utf-8")
                            else:
                                norm = rule.value_key(value)
                        else:
                            norm = value
                        try:
                            text = escape_value(norm.decode("utf-8"))
                        except UnicodeDecodeError:
                            text = "#" + norm.hex()
                avas.append(f"{key}={text}")
            avas.sort()
            rdns.append("+".join(avas))
        out = ",".join(rdns)
        if len(self._dn_cache) >= _DN_CACHE_MAX:
            self._dn_cache.clear()
        self._dn_cache[dn] = out
        return out

    # ------------------------------------------------------------ entries

    def check_values(self, description: str, values: Sequence[bytes], *, check_nousermod: bool = False) -> str:
        """Check the values of one attribute as a client supplied them (slapd's
        ``slap_mods_check``); returns the canonical key.

        In order: undefined type (undefinedAttributeType, ``"x: attribute type
        undefined"``), NO-USER-MODIFICATION when ``check_nousermod``
        (constraintViolation, ``"x: no user modification allowed"``), no values
        (protocolError), syntax (invalidAttributeSyntax, ``"x: value #i invalid
        per syntax"``), several values of a SINGLE-VALUE type
        (constraintViolation, ``"x: multiple values provided"``), values that do
        not normalise (invalidAttributeSyntax, ``"x: value #i normalization
        failed"``), duplicates (attributeOrValueExists, ``"x: value #i provided
        more than once"``). ``x`` is ``description`` as given.
        """
        at, options = self.parse_attr(description)
        self._check_values(at, description, values, check_nousermod)
        return at.key + "".join(";" + o for o in options) if options else at.key

    def _check_values(self, at: AttributeType, shown: str, values: Sequence[bytes], check_nousermod: bool) -> None:
        if check_nousermod and at.no_user_modification:
            raise _err(ResultCode.constraintViolation, f"{shown}: no user modification allowed")
        if not values:
            raise _err(ResultCode.protocolError, f"{shown}: no values for attribute type")
        for i, v in enumerate(values):
            if not self._valid(at, v):
                raise _err(ResultCode.invalidAttributeSyntax, f"{shown}: value #{i} invalid per syntax")
        if at.single_value and len(values) > 1:
            raise _err(ResultCode.constraintViolation, f"{shown}: multiple values provided")
        if len(values) > 1:
            rule = at.equality if at.equality is not None and at.equality.kind == "equality" else None
            seen: set[Any] = set()
            for i, v in enumerate(values):
                if rule is not None:
                    try:
                        k = rule.value_key(v)
                    except ValueError:
                        raise _err(ResultCode.invalidAttributeSyntax, f"{shown}: value #{i} normalization failed") from None
                else:
                    k = v
                if k in seen:
                    raise _err(ResultCode.attributeOrValueExists, f"{shown}: value #{i} provided more than once")
                seen.add(k)

    def structural_class(self, objectclass_values: Sequence[bytes | str]) -> str:
        """The structural object class of an entry with these objectClass values
        (slapd's ``structural_class``): its name as defined (the value of
        structuralObjectClass).

        Raises LDAPError(objectClassViolation) with ``"unrecognized objectClass
        'x'"``, ``"invalid structural object class chain (a/b)"`` or ``"no
        structural object class provided"``.
        """
        return self._structural(objectclass_values)[0].name

    def _structural(self, values: Sequence[bytes | str]) -> tuple[ObjectClass, list[ObjectClass], list[str]]:
        shown = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
        socs: list[ObjectClass] = []
        for s in shown:
            oc = self.object_class(s)
            if oc is None:
                raise _err(ResultCode.objectClassViolation, f"unrecognized objectClass '{s}'")
            socs.append(oc)
        sc: ObjectClass | None = None
        scn = -1
        for i, oc in enumerate(socs):
            if oc.kind != "STRUCTURAL":
                continue
            if sc is None or sc.key in oc.superclasses:  # oc is a subclass of sc
                sc, scn = oc, i
            elif oc.key not in sc.superclasses:  # unrelated: need a common subclass later
                for xc in socs[i + 1 :]:
                    if xc.kind == "STRUCTURAL" and sc.key in xc.superclasses and oc.key in xc.superclasses:
                        break
                else:
                    raise _err(ResultCode.objectClassViolation,
                               f"invalid structural object class chain ({shown[scn]}/{shown[i]})")
        if sc is None:
            raise _err(ResultCode.objectClassViolation, "no structural object class provided")
        return sc, socs, shown

    def check_entry(
        self,
        attrs: Mapping[str, Sequence[bytes]],
        *,
        check_nousermod: bool = False,
        validate: bool = True,
        rdn: Sequence[tuple[str, bytes]] | None = None,
    ) -> str:
        """Check a whole entry against the schema, as slapd does on add; return its
        structural object class (as :meth:`structural_class` does).

        ``attrs`` maps attribute descriptions (canonical keys, possibly with
        options; other spellings are accepted) to values. With ``validate``
        each attribute first goes through :meth:`check_values` (messages name
        the type as the schema spells it, e.g. ``uidNumber``). Then, in slapd's
        order (``entry_schema_check``):

        - collective attribute outside a subentry (objectClassViolation);
        - SINGLE-VALUE type with several values: constraintViolation
          ``"attribute 'x' cannot have multiple values"``;
        - no objectClass: objectClassViolation ``"no objectClass attribute"``;
        - structural class errors (see :meth:`structural_class`); a stored
          structuralObjectClass that differs: objectClassModsProhibited
          ``"structural object class modification from 'a' to 'b' not allowed"``;
        - obsolete classes: objectClassViolation;
        - the naming check when ``rdn`` (``[(type as written, value)]``) is given:
          namingViolation ``"naming attribute 'x' is not present in entry"``,
          ``"value of naming attribute 'x' is not present in entry"``, ... (the
          caller adds missing RDN values first, as slapd does on add);
        - abstract class not a superclass of the structural or an auxiliary
          class: ``"instantiation of abstract objectClass 'x' not allowed"``;
        - MUST: objectClassViolation ``"object class 'x' requires attribute 'y'"``;
        - MAY: objectClassViolation ``"attribute 'x' not allowed"`` (operational
          attributes are always allowed; extensibleObject allows everything).

        Raises LDAPError.
        """
        entries: list[tuple[AttributeType, str, Sequence[bytes]]] = []
        seen_desc: set[str] = set()
        for desc, values in attrs.items():
            at, options = self.parse_attr(desc)
            shown = at.name + "".join(";" + o for o in options)
            if shown in seen_desc:
                raise _err(ResultCode.attributeOrValueExists, f"attribute '{shown}' provided more than once")
            seen_desc.add(shown)
            if validate:
                self._check_values(at, shown, values, check_nousermod)
            elif check_nousermod and at.no_user_modification:
                raise _err(ResultCode.constraintViolation, f"{shown}: no user modification allowed")
            entries.append((at, shown, values))

        present: set[str] = set()
        oc_values: Sequence[bytes] | None = None
        soc_values: Sequence[bytes] | None = None
        for at, shown, values in entries:
            if at.collective:
                raise _err(ResultCode.objectClassViolation, f"'{shown}' can only appear in collectiveAttributeSubentry")
            if at.single_value and len(values) > 1:
                raise _err(ResultCode.constraintViolation, f"attribute '{shown}' cannot have multiple values")
            present.add(at.key)
            if at.key == "objectclass":
                oc_values = values
            elif at.key == "structuralobjectclass":
                soc_values = values
        if not oc_values:
            raise _err(ResultCode.objectClassViolation, "no objectClass attribute")

        sc, socs, oc_shown = self._structural(oc_values)
        if soc_values:
            stored = self.object_class(_show(soc_values[0]))
            if stored is None:
                raise _err(ResultCode.objectClassViolation,
                           f"unrecognized structuralObjectClass '{_show(soc_values[0])}'")
            if stored is not sc:
                raise _err(ResultCode.objectClassModsProhibited,
                           f"structural object class modification from '{_show(soc_values[0])}' to '{sc.name}' not allowed")
        if sc.obsolete:
            raise _err(ResultCode.objectClassViolation, f"structuralObjectClass '{sc.name}' is OBSOLETE")

        if rdn is not None:
            self._naming_check(attrs, entries, rdn)

        extensible = False
        auxiliaries = [oc for oc in socs if oc.kind == "AUXILIARY"]
        for oc, shown in zip(socs, oc_shown):
            if oc.obsolete:
                raise _err(ResultCode.objectClassViolation, f"objectClass '{shown}' is OBSOLETE")
            if oc.kind == "ABSTRACT":
                if oc.key != "top" and oc.key not in sc.superclasses and not any(
                    oc.key in aux.superclasses for aux in auxiliaries
                ):
                    raise _err(ResultCode.objectClassViolation,
                               f"instantiation of abstract objectClass '{shown}' not allowed")
            elif oc.kind != "STRUCTURAL" or oc is sc:
                if not present.issuperset(oc.must):  # the first missing in definition order, as slapd
                    for req in sorted(oc.must, key=self._must_order(oc)):
                        if req not in present:
                            raise _err(ResultCode.objectClassViolation,
                                       f"object class '{shown}' requires attribute '{self._attrs[req].name}'")
                if oc is self._extensible:
                    extensible = True
        if extensible:
            return sc.name

        for at, shown, _values in entries:
            k = at.key
            if at.operational or k == "objectclass":
                continue
            if k in sc.must or k in sc.may:
                continue
            if any(k in aux.must or k in aux.may for aux in auxiliaries):
                continue
            raise _err(ResultCode.objectClassViolation, f"attribute '{shown}' not allowed")
        return sc.name

    def _must_order(self, oc: ObjectClass) -> Callable[[str], tuple[int, str]]:
        """Report a missing MUST attribute in definition order (most specific
        class first, then its superclasses), as slapd does."""
        order: dict[str, int] = {}
        stack = [oc]
        while stack:
            c = stack.pop(0)
            od = self._oc_defs.get(c.oid)
            if od is not None:
                for n in od.must:
                    at = self._attrs.get(n.lower())
                    if at is not None:
                        order.setdefault(at.key, len(order))
            stack.extend(self._classes[s] for s in c.sup)
        return lambda k: (order.get(k, len(order)), k)

    def _naming_check(self, attrs: Mapping[str, Sequence[bytes]],
                      entries: list[tuple[AttributeType, str, Sequence[bytes]]],
                      rdn: Sequence[tuple[str, bytes]]) -> None:
        by_type: dict[str, list[bytes]] = {}
        for at, _shown, values in entries:
            by_type.setdefault(at.key, []).extend(values)
        for atype, value in rdn:
            rat = self.attribute(atype)
            if rat is None:
                raise _err(ResultCode.undefinedAttributeType, "attribute type undefined (in RDN)")
            if rat.operational:
                raise _err(ResultCode.namingViolation, f"naming attribute '{atype}' is operational")
            if rat.collective:
                raise _err(ResultCode.namingViolation, f"naming attribute '{atype}' is collective")
            if rat.obsolete:
                raise _err(ResultCode.namingViolation, f"naming attribute '{atype}' is obsolete")
            rule = rat.equality
            if rule is None or rule.kind != "equality":
                raise _err(ResultCode.namingViolation, f"naming attribute '{atype}' has no equality matching rule")
            rvalues = by_type.get(rat.key)
            if not rvalues:
                raise _err(ResultCode.namingViolation, f"naming attribute '{atype}' is not present in entry")
            try:
                want = rule.value_key(value)
            except ValueError:
                raise _err(ResultCode.namingViolation, f"value of naming attribute '{atype}' is invalid") from None
            for v in rvalues:
                try:
                    if rule.value_key(v) == want:
                        break
                except ValueError:
                    continue
            else:
                raise _err(ResultCode.namingViolation,
                           f"value of naming attribute '{atype}' is not present in entry")

    # ------------------------------------------------------------ rules and subschema

    def rule_applies_to(self, rule: MatchingRule) -> frozenset[str]:
        """Keys of the attribute types ``rule`` can be applied to (its
        matchingRuleUse): the type's own rules, or a compatible syntax."""
        got = self._applicable.get(rule.oid)
        if got is None:
            keys = set()
            for at in self._attr_list:
                if rule is at.equality or rule is at.ordering or rule is at.substr or at.syntax in rule.syntaxes:
                    keys.add(at.key)
            got = self._applicable[rule.oid] = frozenset(keys)
        return got

    def subschema_attributes(self) -> dict[str, list[bytes]]:
        """Values for the subschema subentry (``cn=Subschema``), keyed by
        canonical key: ``ldapsyntaxes``, ``matchingrules``, ``matchingruleuse``,
        ``attributetypes``, ``objectclasses``; each value is an RFC 4512
        description. The dict is shared: do not mutate it."""
        if self._subschema is None:
            mru = []
            for rule in self.matching_rules:
                applies = self.rule_applies_to(rule)
                if applies:
                    names = [self._attrs[k].name for k in sorted(applies)]
                    mru.append(MatchingRuleUseDef(oid=rule.oid, names=rule.names, applies=tuple(names)).to_text())
            self._subschema = {
                "ldapsyntaxes": [s.definition.encode("utf-8") for s in self._syntaxes.values()],
                "matchingrules": [r.definition.encode("utf-8") for r in self.matching_rules],
                "matchingruleuse": [t.encode("utf-8") for t in mru],
                "attributetypes": [a.definition.encode("utf-8") for a in self._attr_list],
                "objectclasses": [o.definition.encode("utf-8") for o in self._class_list],
            }
        return self._subschema


def _accept(value: bytes) -> bool:
    return True
