"""LDAPv3 protocol messages (RFC 4511) as frozen values.

This module is the contract between the BER codec (``vmdir.ber``), the sans-I/O
connection (``vmdir.proto.connection``), the filter engine (``vmdir.model.filter``)
and the directory. Conventions:

- DNs, attribute descriptions, OIDs and SASL mechanism names are ``str``
  (decoded as UTF-8; invalid UTF-8 is a protocol error).
- Attribute values, passwords and control/extended values are ``bytes``.
- Attribute lists are tuples of ``(description, values)`` pairs, in the order the
  peer sent them (descriptions are kept as sent; the directory normalises).

The module is compiled (mypyc, ``vmdir/_accel.py``), so the fields' types are enforced when
a value is made. The values every operation makes (a bind's or search's request and answer,
controls, the filters but extensible match; RequestReceived in ``events``) have their
constructor written out (``init=False``): compiled, it costs a tenth of the one ``dataclass``
generates for a frozen class, which sets each field through ``object.__setattr__`` in
interpreted code (7.8k instructions for a BindRequest). Every message pickles and copies by
its fields (``copyreg``, at the end).

Layer 1: pure, no I/O.
"""
from __future__ import annotations

import copyreg
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Union

from vmdir.proto.results import ResultCode

Attributes = tuple[tuple[str, tuple[bytes, ...]], ...]

# ---------------------------------------------------------------- controls


@dataclass(frozen=True, slots=True, init=False)
class Control:
    oid: str
    critical: bool
    value: bytes | None

    def __init__(self, oid: str, critical: bool = False, value: bytes | None = None) -> None:
        object.__setattr__(self, "oid", oid)
        object.__setattr__(self, "critical", critical)
        object.__setattr__(self, "value", value)


# ---------------------------------------------------------------- filters (RFC 4511 4.5.1.7)


@dataclass(frozen=True, slots=True, init=False)
class And:
    filters: tuple["Filter", ...]

    def __init__(self, filters: tuple["Filter", ...]) -> None:
        object.__setattr__(self, "filters", filters)


@dataclass(frozen=True, slots=True, init=False)
class Or:
    filters: tuple["Filter", ...]

    def __init__(self, filters: tuple["Filter", ...]) -> None:
        object.__setattr__(self, "filters", filters)


@dataclass(frozen=True, slots=True, init=False)
class Not:
    filter: "Filter"

    def __init__(self, filter: "Filter") -> None:
        object.__setattr__(self, "filter", filter)


@dataclass(frozen=True, slots=True, init=False)
class Equality:
    attr: str
    value: bytes

    def __init__(self, attr: str, value: bytes) -> None:
        object.__setattr__(self, "attr", attr)
        object.__setattr__(self, "value", value)


@dataclass(frozen=True, slots=True, init=False)
class Substrings:
    attr: str
    initial: bytes | None
    any: tuple[bytes, ...]
    final: bytes | None

    def __init__(self, attr: str, initial: bytes | None, any: tuple[bytes, ...], final: bytes | None) -> None:
        object.__setattr__(self, "attr", attr)
        object.__setattr__(self, "initial", initial)
        object.__setattr__(self, "any", any)
        object.__setattr__(self, "final", final)


@dataclass(frozen=True, slots=True, init=False)
class GreaterOrEqual:
    attr: str
    value: bytes

    def __init__(self, attr: str, value: bytes) -> None:
        object.__setattr__(self, "attr", attr)
        object.__setattr__(self, "value", value)


@dataclass(frozen=True, slots=True, init=False)
class LessOrEqual:
    attr: str
    value: bytes

    def __init__(self, attr: str, value: bytes) -> None:
        object.__setattr__(self, "attr", attr)
        object.__setattr__(self, "value", value)


@dataclass(frozen=True, slots=True, init=False)
class Present:
    attr: str

    def __init__(self, attr: str) -> None:
        object.__setattr__(self, "attr", attr)


@dataclass(frozen=True, slots=True, init=False)
class Approx:
    attr: str
    value: bytes

    def __init__(self, attr: str, value: bytes) -> None:
        object.__setattr__(self, "attr", attr)
        object.__setattr__(self, "value", value)


@dataclass(frozen=True, slots=True)
class Extensible:
    rule: str | None
    attr: str | None
    value: bytes
    dn_attrs: bool = False


Filter = Union[And, Or, Not, Equality, Substrings, GreaterOrEqual, LessOrEqual, Present, Approx, Extensible]

# ---------------------------------------------------------------- requests

SCOPE_BASE, SCOPE_ONE, SCOPE_SUB, SCOPE_CHILDREN = 0, 1, 2, 3  # 3 = subordinate (draft, OpenLDAP)
MOD_ADD, MOD_DELETE, MOD_REPLACE, MOD_INCREMENT = 0, 1, 2, 3


@dataclass(frozen=True, slots=True, init=False)
class BindRequest:
    version: int
    name: str
    password: bytes | None  # simple bind (b"" for anonymous)
    sasl_mechanism: str | None  # SASL bind when not None
    sasl_credentials: bytes | None

    def __init__(self, version: int, name: str, password: bytes | None = None, sasl_mechanism: str | None = None,
                 sasl_credentials: bytes | None = None) -> None:
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "password", password)
        object.__setattr__(self, "sasl_mechanism", sasl_mechanism)
        object.__setattr__(self, "sasl_credentials", sasl_credentials)


@dataclass(frozen=True, slots=True)
class UnbindRequest:
    """Unbind: no fields."""


@dataclass(frozen=True, slots=True, init=False)
class SearchRequest:
    base: str
    scope: int
    deref: int
    size_limit: int
    time_limit: int
    types_only: bool
    filter: Filter
    attributes: tuple[str, ...]

    def __init__(self, base: str, scope: int, deref: int, size_limit: int, time_limit: int, types_only: bool,
                 filter: Filter, attributes: tuple[str, ...]) -> None:
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "scope", scope)
        object.__setattr__(self, "deref", deref)
        object.__setattr__(self, "size_limit", size_limit)
        object.__setattr__(self, "time_limit", time_limit)
        object.__setattr__(self, "types_only", types_only)
        object.__setattr__(self, "filter", filter)
        object.__setattr__(self, "attributes", attributes)


@dataclass(frozen=True, slots=True)
class Change:
    op: int  # MOD_*
    attr: str
    values: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ModifyRequest:
    dn: str
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class AddRequest:
    dn: str
    attributes: Attributes


@dataclass(frozen=True, slots=True)
class DelRequest:
    dn: str


@dataclass(frozen=True, slots=True)
class ModifyDNRequest:
    dn: str
    new_rdn: str
    delete_old_rdn: bool
    new_superior: str | None = None


@dataclass(frozen=True, slots=True)
class CompareRequest:
    dn: str
    attr: str
    value: bytes


@dataclass(frozen=True, slots=True)
class AbandonRequest:
    msgid: int


@dataclass(frozen=True, slots=True)
class ExtendedRequest:
    oid: str
    value: bytes | None = None


Request = Union[
    BindRequest, UnbindRequest, SearchRequest, ModifyRequest, AddRequest, DelRequest,
    ModifyDNRequest, CompareRequest, AbandonRequest, ExtendedRequest,
]

# ---------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True, init=False)
class BindResponse:
    code: ResultCode
    matched_dn: str
    message: str
    sasl_credentials: bytes | None

    def __init__(self, code: ResultCode, matched_dn: str = "", message: str = "",
                 sasl_credentials: bytes | None = None) -> None:
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "matched_dn", matched_dn)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "sasl_credentials", sasl_credentials)


@dataclass(frozen=True, slots=True, init=False)
class SearchResultEntry:
    dn: str
    attributes: Attributes

    def __init__(self, dn: str, attributes: Attributes) -> None:
        object.__setattr__(self, "dn", dn)
        object.__setattr__(self, "attributes", attributes)


@dataclass(frozen=True, slots=True, init=False)
class EncodedSearchResultEntry:
    """A SearchResultEntry whose PartialAttributeList content is already BER
    (the concatenated PartialAttribute SEQUENCEs, see ``vmdir.ber.encode_attribute_list``):
    the directory keeps entries in that form so reads need not re-encode them."""

    dn: str
    attributes_ber: bytes

    def __init__(self, dn: str, attributes_ber: bytes) -> None:
        object.__setattr__(self, "dn", dn)
        object.__setattr__(self, "attributes_ber", attributes_ber)


@dataclass(frozen=True, slots=True)
class SearchResultReference:
    uris: tuple[str, ...]


@dataclass(frozen=True, slots=True, init=False)
class SearchResultDone:
    code: ResultCode
    matched_dn: str
    message: str

    def __init__(self, code: ResultCode, matched_dn: str = "", message: str = "") -> None:
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "matched_dn", matched_dn)
        object.__setattr__(self, "message", message)


@dataclass(frozen=True, slots=True)
class ModifyResponse:
    code: ResultCode
    matched_dn: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class AddResponse:
    code: ResultCode
    matched_dn: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class DelResponse:
    code: ResultCode
    matched_dn: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class ModifyDNResponse:
    code: ResultCode
    matched_dn: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class CompareResponse:
    code: ResultCode
    matched_dn: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class ExtendedResponse:
    code: ResultCode
    matched_dn: str = ""
    message: str = ""
    name: str | None = None  # responseName [10]
    value: bytes | None = None  # responseValue [11]


@dataclass(frozen=True, slots=True)
class IntermediateResponse:
    name: str | None = None
    value: bytes | None = None


Response = Union[
    BindResponse, SearchResultEntry, EncodedSearchResultEntry, SearchResultReference, SearchResultDone, ModifyResponse,
    AddResponse, DelResponse, ModifyDNResponse, CompareResponse, ExtendedResponse,
    IntermediateResponse,
]

# The response type that answers each request type (for errors found before dispatch).
RESPONSE_FOR: dict[type, type] = {
    BindRequest: BindResponse,
    SearchRequest: SearchResultDone,
    ModifyRequest: ModifyResponse,
    AddRequest: AddResponse,
    DelRequest: DelResponse,
    ModifyDNRequest: ModifyDNResponse,
    CompareRequest: CompareResponse,
    ExtendedRequest: ExtendedResponse,
}

NOTICE_OF_DISCONNECTION_OID = "1.3.6.1.4.1.1466.20036"


def _by_fields(v: Any) -> tuple[Any, ...]:
    """Pickle and copy a message as its constructor's arguments (a compiled frozen class has
    no other way: the default state restore would go through the frozen ``__setattr__``)."""
    return (type(v), tuple(getattr(v, f.name) for f in fields(v)))


def pickle_by_fields(classes: list[type]) -> None:
    """Register ``classes`` (frozen dataclasses of a compiled module) with ``copyreg``."""
    for cls in classes:
        copyreg.pickle(cls, _by_fields)


pickle_by_fields([c for c in list(globals().values())
                   if isinstance(c, type) and is_dataclass(c) and c.__module__ == __name__])
