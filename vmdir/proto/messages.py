"""LDAPv3 protocol messages (RFC 4511) as frozen values.

This module is the contract between the BER codec (``vmdir.ber``), the sans-I/O
connection (``vmdir.proto.connection``), the filter engine (``vmdir.model.filter``)
and the directory. Conventions:

- DNs, attribute descriptions, OIDs and SASL mechanism names are ``str``
  (decoded as UTF-8; invalid UTF-8 is a protocol error).
- Attribute values, passwords and control/extended values are ``bytes``.
- Attribute lists are tuples of ``(description, values)`` pairs, in the order the
  peer sent them (descriptions are kept as sent; the directory normalises).

Layer 1: pure, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Union

from vmdir.proto.results import ResultCode

Attributes = tuple[tuple[str, tuple[bytes, ...]], ...]

# ---------------------------------------------------------------- controls


@dataclass(frozen=True, slots=True)
class Control:
    oid: str
    critical: bool = False
    value: bytes | None = None


# ---------------------------------------------------------------- filters (RFC 4511 4.5.1.7)


@dataclass(frozen=True, slots=True)
class And:
    filters: tuple["Filter", ...]


@dataclass(frozen=True, slots=True)
class Or:
    filters: tuple["Filter", ...]


@dataclass(frozen=True, slots=True)
class Not:
    filter: "Filter"


@dataclass(frozen=True, slots=True)
class Equality:
    attr: str
    value: bytes


@dataclass(frozen=True, slots=True)
class Substrings:
    attr: str
    initial: bytes | None
    any: tuple[bytes, ...]
    final: bytes | None


@dataclass(frozen=True, slots=True)
class GreaterOrEqual:
    attr: str
    value: bytes


@dataclass(frozen=True, slots=True)
class LessOrEqual:
    attr: str
    value: bytes


@dataclass(frozen=True, slots=True)
class Present:
    attr: str


@dataclass(frozen=True, slots=True)
class Approx:
    attr: str
    value: bytes


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


@dataclass(frozen=True, slots=True)
class BindRequest:
    TAG: ClassVar[int] = 0x60
    version: int
    name: str
    password: bytes | None = None  # simple bind (b"" for anonymous)
    sasl_mechanism: str | None = None  # SASL bind when not None
    sasl_credentials: bytes | None = None


@dataclass(frozen=True, slots=True)
class UnbindRequest:
    TAG: ClassVar[int] = 0x42


@dataclass(frozen=True, slots=True)
class SearchRequest:
    TAG: ClassVar[int] = 0x63
    base: str
    scope: int
    deref: int
    size_limit: int
    time_limit: int
    types_only: bool
    filter: Filter
    attributes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Change:
    op: int  # MOD_*
    attr: str
    values: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ModifyRequest:
    TAG: ClassVar[int] = 0x66
    dn: str
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class AddRequest:
    TAG: ClassVar[int] = 0x68
    dn: str
    attributes: Attributes


@dataclass(frozen=True, slots=True)
class DelRequest:
    TAG: ClassVar[int] = 0x4A
    dn: str


@dataclass(frozen=True, slots=True)
class ModifyDNRequest:
    TAG: ClassVar[int] = 0x6C
    dn: str
    new_rdn: str
    delete_old_rdn: bool
    new_superior: str | None = None


@dataclass(frozen=True, slots=True)
class CompareRequest:
    TAG: ClassVar[int] = 0x6E
    dn: str
    attr: str
    value: bytes


@dataclass(frozen=True, slots=True)
class AbandonRequest:
    TAG: ClassVar[int] = 0x50
    msgid: int


@dataclass(frozen=True, slots=True)
class ExtendedRequest:
    TAG: ClassVar[int] = 0x77
    oid: str
    value: bytes | None = None


Request = Union[
    BindRequest, UnbindRequest, SearchRequest, ModifyRequest, AddRequest, DelRequest,
    ModifyDNRequest, CompareRequest, AbandonRequest, ExtendedRequest,
]

# ---------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True)
class BindResponse:
    TAG: ClassVar[int] = 0x61
    code: ResultCode
    matched_dn: str = ""
    message: str = ""
    sasl_credentials: bytes | None = None


@dataclass(frozen=True, slots=True)
class SearchResultEntry:
    TAG: ClassVar[int] = 0x64
    dn: str
    attributes: Attributes


@dataclass(frozen=True, slots=True)
class EncodedSearchResultEntry:
    """A SearchResultEntry whose PartialAttributeList content is already BER
    (the concatenated PartialAttribute SEQUENCEs, see ``vmdir.ber.encode_attribute_list``):
    the directory keeps entries in that form so reads need not re-encode them."""

    TAG: ClassVar[int] = 0x64
    dn: str
    attributes_ber: bytes


@dataclass(frozen=True, slots=True)
class SearchResultReference:
    TAG: ClassVar[int] = 0x73
    uris: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SearchResultDone:
    TAG: ClassVar[int] = 0x65
    code: ResultCode
    matched_dn: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class ModifyResponse:
    TAG: ClassVar[int] = 0x67
    code: ResultCode
    matched_dn: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class AddResponse:
    TAG: ClassVar[int] = 0x69
    code: ResultCode
    matched_dn: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class DelResponse:
    TAG: ClassVar[int] = 0x6B
    code: ResultCode
    matched_dn: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class ModifyDNResponse:
    TAG: ClassVar[int] = 0x6D
    code: ResultCode
    matched_dn: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class CompareResponse:
    TAG: ClassVar[int] = 0x6F
    code: ResultCode
    matched_dn: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class ExtendedResponse:
    TAG: ClassVar[int] = 0x78
    code: ResultCode
    matched_dn: str = ""
    message: str = ""
    name: str | None = None  # responseName [10]
    value: bytes | None = None  # responseValue [11]


@dataclass(frozen=True, slots=True)
class IntermediateResponse:
    TAG: ClassVar[int] = 0x79
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
