"""LDAP syntax validators (RFC 4517 and friends): ``bytes -> bool``.

Validators that need the schema (DN, Name and Optional UID, the schema
description syntaxes, objectClass values) are built by the Schema; this
module holds the context-free ones, keyed by syntax OID. A syntax OID with no
validator accepts any value, as slapd does for syntaxes it does not know.

Layer 1: pure, no I/O.
"""
from __future__ import annotations

import re
from typing import Callable

from vmdir.model.schema._time import parse_generalized_time, parse_utc_time

__all__ = ["VALIDATORS", "ber_well_formed", "S", "is_integer", "parse_integer"]

S = "1.3.6.1.4.1.1466.115.121.1."  # the RFC 4517 syntax arc

_PRINTABLE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'()+,-./:? ="
_INTEGER = re.compile(rb"-?(?:0|[1-9][0-9]*)\Z")
_NUMERICOID = re.compile(rb"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+\Z")
_DESCR = re.compile(rb"[A-Za-z][A-Za-z0-9-]*\Z")
_BITSTRING = re.compile(rb"'[01]*'B\Z")
_UUID = re.compile(rb"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\Z")
_FAX_PARAMS = frozenset(
    [b"twoDimensional", b"fineResolution", b"unlimitedLength", b"b4Length", b"a3Width", b"b4Width", b"uncompressed"]
)
_DELIVERY = frozenset(
    [b"any", b"mhs", b"physical", b"telex", b"teletex", b"g3fax", b"g4fax", b"ia5", b"videotex", b"telephone"]
)
MAX_BER_DEPTH = 64


def _utf8(v: bytes) -> bool:
    try:
        v.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def directory_string(v: bytes) -> bool:
    return bool(v) and (v.isascii() or _utf8(v))


def ia5_string(v: bytes) -> bool:
    return v.isascii()


def printable_string(v: bytes) -> bool:
    return bool(v) and not v.translate(None, _PRINTABLE)


def numeric_string(v: bytes) -> bool:
    return bool(v) and not v.translate(None, b"0123456789 ")


def is_integer(v: bytes) -> bool:
    return _INTEGER.match(v) is not None and v != b"-0"


def parse_integer(v: bytes) -> int:
    """Parse an RFC 4517 INTEGER. Raises ValueError."""
    if _INTEGER.match(v) is None or v == b"-0":
        raise ValueError("not an INTEGER")
    if len(v) > 4096:
        raise ValueError("INTEGER too long")
    return int(v)


def boolean(v: bytes) -> bool:
    return v == b"TRUE" or v == b"FALSE"


def generalized_time(v: bytes) -> bool:
    try:
        parse_generalized_time(v)
    except ValueError:
        return False
    return True


def utc_time(v: bytes) -> bool:
    try:
        parse_utc_time(v)
    except ValueError:
        return False
    return True


def oid(v: bytes) -> bool:
    return _NUMERICOID.match(v) is not None or _DESCR.match(v) is not None


def anything(v: bytes) -> bool:
    return True


def postal_address(v: bytes) -> bool:
    # PostalAddress = line *( DOLLAR line ); line = 1*line-char; escapes \24 and \5C only
    if not _utf8(v):
        return False
    for line in v.split(b"$"):
        if not line:
            return False
        i = line.find(b"\\")
        while i >= 0:
            if line[i + 1 : i + 3].upper() not in (b"24", b"5C"):
                return False
            i = line.find(b"\\", i + 3)
    return True


def country_string(v: bytes) -> bool:
    return len(v) == 2 and printable_string(v)


def bit_string(v: bytes) -> bool:
    return _BITSTRING.match(v) is not None


def uuid(v: bytes) -> bool:
    return _UUID.match(v) is not None


def facsimile(v: bytes) -> bool:
    number, *params = v.split(b"$")
    return printable_string(number) and all(p in _FAX_PARAMS for p in params)


def delivery_method(v: bytes) -> bool:
    parts = [p.strip(b" ") for p in v.split(b"$")]
    return bool(parts) and all(p in _DELIVERY for p in parts)


def substring_assertion(v: bytes) -> bool:
    return b"*" in v and _utf8(v)


def other_mailbox(v: bytes) -> bool:
    kind, sep, box = v.partition(b"$")
    return bool(sep) and printable_string(kind) and box.isascii() and bool(box)


def nonempty_utf8(v: bytes) -> bool:
    return bool(v) and _utf8(v)


def nonempty_ia5(v: bytes) -> bool:
    return bool(v) and v.isascii()


def _ber_tlv(v: bytes, i: int, depth: int) -> int:
    """Return the index after one BER TLV starting at v[i]; raise ValueError."""
    if depth > MAX_BER_DEPTH:
        raise ValueError("BER nesting too deep")
    n = len(v)
    if i >= n:
        raise ValueError("truncated")
    tag = v[i]
    i += 1
    if tag & 0x1F == 0x1F:
        while True:
            if i >= n:
                raise ValueError("truncated tag")
            b = v[i]
            i += 1
            if not b & 0x80:
                break
    if i >= n:
        raise ValueError("truncated length")
    ln = v[i]
    i += 1
    if ln == 0x80:  # indefinite length: constructed only, ends with 00 00
        if not tag & 0x20:
            raise ValueError("indefinite primitive")
        while True:
            if v[i : i + 2] == b"\x00\x00":
                return i + 2
            i = _ber_tlv(v, i, depth + 1)
    if ln & 0x80:
        k = ln & 0x7F
        if k > 8 or i + k > n:
            raise ValueError("bad length")
        ln = int.from_bytes(v[i : i + k], "big")
        i += k
    end = i + ln
    if end > n:
        raise ValueError("truncated value")
    if tag & 0x20:  # constructed: contents are TLVs
        while i < end:
            i = _ber_tlv(v, i, depth + 1)
        if i != end:
            raise ValueError("bad constructed length")
    return end


def ber_well_formed(v: bytes) -> bool:
    """True if ``v`` is exactly one well-formed BER TLV."""
    try:
        return _ber_tlv(v, 0, 0) == len(v)
    except (ValueError, IndexError):
        return False


VALIDATORS: dict[str, Callable[[bytes], bool]] = {
    S + "4": anything,  # Audio
    S + "5": anything,  # Binary
    S + "6": bit_string,
    S + "7": boolean,
    S + "8": ber_well_formed,  # Certificate
    S + "9": ber_well_formed,  # Certificate List
    S + "10": ber_well_formed,  # Certificate Pair
    S + "11": country_string,
    S + "13": nonempty_utf8,  # Data Quality
    S + "14": delivery_method,
    S + "15": directory_string,
    S + "19": nonempty_utf8,  # DSA Quality
    S + "21": nonempty_utf8,  # Enhanced Guide
    S + "22": facsimile,
    S + "23": anything,  # Fax
    S + "24": generalized_time,
    S + "25": nonempty_utf8,  # Guide
    S + "26": ia5_string,
    S + "27": is_integer,
    S + "28": anything,  # JPEG
    S + "36": numeric_string,
    S + "38": oid,
    S + "39": other_mailbox,
    S + "40": anything,  # Octet String
    S + "41": postal_address,
    S + "42": nonempty_utf8,  # Protocol Information
    S + "43": nonempty_utf8,  # Presentation Address
    S + "44": printable_string,
    S + "45": nonempty_utf8,  # Subtree Specification
    S + "49": anything,  # Supported Algorithm
    S + "50": printable_string,  # Telephone Number
    S + "51": printable_string,  # Teletex Terminal Identifier
    S + "52": printable_string,  # Telex Number
    S + "53": utc_time,
    S + "58": substring_assertion,
    "1.3.6.1.1.16.1": uuid,
    "1.3.6.1.1.1.0.0": nonempty_ia5,  # NIS netgroup triple
    "1.3.6.1.1.1.0.1": nonempty_ia5,  # boot parameter
    "1.3.6.1.1.15.1": ber_well_formed,  # Certificate Exact Assertion (DER form only)
    "1.3.6.1.1.15.3": ber_well_formed,  # Certificate Pair Exact Assertion
    "1.3.6.1.1.15.5": ber_well_formed,  # Certificate List Exact Assertion
}
