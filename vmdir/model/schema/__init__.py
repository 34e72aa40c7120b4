"""LDAP schema (RFC 4512): definitions, syntaxes, matching rules, entry checks.

The public surface is small::

    from vmdir.model.schema import Schema

    schema = Schema.default()                 # the packaged standard schema
    schema.canonical_attr("CN;Lang-EN")       # 'cn;lang-en'
    schema.eq_key("cn", b"  John   SMITH ")   # b'john smith'
    schema.check_entry({"objectclass": [b"person"], "cn": [b"x"]})
    # LDAPError(objectClassViolation, "object class 'person' requires attribute 'sn'")

Attribute keys: every entry attribute is keyed by its type's *key*, the
primary NAME lower-cased (``cn``, ``uidnumber``), plus options if any
(``cn;lang-en``, options lower-cased and sorted). :meth:`Schema.canonical_attr`
maps any description (name, alias, OID, any case) to that key.

Schema changes are made by building a new Schema
(:meth:`Schema.with_definitions`); a Schema never changes after construction,
so it can be shared between threads and compiled filters stay valid.

Shipped definitions live in ``defs/*.schema`` (slapd schema-file layout):
system (RFC 4512/4530/3045/3296 operational and subschema attributes, root DSE
attributes, numSubordinates, memberOf), core (RFC 4519, PKI), cosine (RFC
4524), inetOrgPerson (RFC 2798), nis (RFC 2307), ppolicy
(draft-behera-ldap-password-policy), monitor (slapd's cn=Monitor) and
Lightwave (arc 1.3.6.1.4.1.6876.40.10: ``.1.N`` attribute types, ``.2.N``
object classes; AD-derived attributes keep their AD OIDs).

Layer 1: pure. The packaged files are read once per process.
"""
from __future__ import annotations

from vmdir.model.schema._parse import (
    AttributeTypeDef,
    MatchingRuleDef,
    MatchingRuleUseDef,
    ObjectClassDef,
    SchemaSyntaxError,
    SyntaxDef,
    parse_attribute_type,
    parse_matching_rule,
    parse_matching_rule_use,
    parse_object_class,
    parse_schema_text,
    parse_syntax,
)
from vmdir.model.schema._rules import MatchingRule
from vmdir.model.schema._schema import AttributeType, ObjectClass, Schema, SchemaError, Syntax

LIGHTWAVE_OID_ARC = "1.3.6.1.4.1.6876.40.10"
"""Lightwave's OID arc: ``.1.N`` attribute types, ``.2.N`` object classes."""

__all__ = [
    "Schema",
    "SchemaError",
    "SchemaSyntaxError",
    "AttributeType",
    "ObjectClass",
    "MatchingRule",
    "Syntax",
    "AttributeTypeDef",
    "ObjectClassDef",
    "SyntaxDef",
    "MatchingRuleDef",
    "MatchingRuleUseDef",
    "parse_attribute_type",
    "parse_object_class",
    "parse_syntax",
    "parse_matching_rule",
    "parse_matching_rule_use",
    "parse_schema_text",
    "LIGHTWAVE_OID_ARC",
]
