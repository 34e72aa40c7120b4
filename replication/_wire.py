"""What replication sends over LDAP: the pull control and the entry records (layer 1: pure encode/decode, no I/O).

Pull (a search request carrying the critical control ``PULL_OID``)
--------------------------------------------------------------------
A consumer asks a supplier for its changes with a search of base ``""``, scope base,
filter ``(objectClass=*)``, and this control::

    PullRequest ::= SEQUENCE {
        consumer    OCTET STRING,   -- the consumer's invocation id (16 bytes)
        watermark   INTEGER,        -- the supplier USN up to which the consumer has applied
        maxEntries  INTEGER,        -- page size wanted (the supplier caps it)
        utdv        Vector,         -- the consumer's up-to-dateness vector
        hold        [0] INTEGER OPTIONAL,       -- milliseconds the supplier may hold an
                                                -- answer that would bring nothing
        certificate [1] OCTET STRING OPTIONAL,  -- the consumer's TLS certificate (DER)
        url         [2] OCTET STRING OPTIONAL } -- the URL the consumer is reached at (UTF-8)
    Vector ::= SEQUENCE OF SEQUENCE { invocation OCTET STRING, usn INTEGER }

``hold`` is the notification: a consumer that has caught up pulls with a hold, and the
supplier answers it as soon as a change commits that the consumer lacks (or when the hold
or the supplier's own limit passes, with an empty page), so latency is not a polling
interval and a change costs one round trip. A change the consumer originated itself (under
its ``consumer`` invocation) is never sent back to it, whatever its vector says. News that
brings no entry (the supplier's vector or watermark moved, typically as it applied the
consumer's own changes) is answered once the supplier has been quiet for a moment, or at
most a second later, so the consumer records it once per burst, not once per change.
``certificate`` announces the certificate
this node now serves with: the supplier records it in the consumer's node entry (its
bound identity), where its partners find the key to check it by (``replication._partner``).
``url`` announces where this node is reached now (a restart on other ports or with another
``--advertise-url``): the supplier records it in the consumer's node entry and in every
agreement that pulls from the consumer, so a partner that could only have learnt it by
pulling from the consumer (at the old URL) learns it all the same.

(USNs and watermarks are INTEGER (0..2^63-1), not limited to LDAP's maxInt.)

The supplier answers with one SearchResultEntry per entry the consumer lacks something of,
in the order of the supplier's change log (an entry whose parent comes later in the log is
preceded by that parent). Its objectName is the entry's DN (for people reading traces);
its one attribute ``REPL_ATTR`` holds the record (msgpack)::

    [uuid (16 bytes), parent uuid (16 bytes, nil for a naming context), rdn,
     position (the supplier USN of the change that made it be sent),
     body (vmdir.store.encode_body: every attribute with values and metadata)]

SearchResultDone carries the control ``PULL_OID`` back::

    PullResponse ::= SEQUENCE {
        supplier    OCTET STRING,   -- the supplier's invocation id
        watermark   INTEGER,        -- the consumer's watermark once this page is applied
        highestUsn  INTEGER,        -- the supplier's highest USN when the page was read
        more        BOOLEAN,        -- whether changes above watermark remain
        utdv        Vector,         -- the supplier's vector at that moment, itself included
        purged      Vector }        -- per originator, the highest USN among the tombstones
                                    -- the supplier has purged (replication._state)

A consumer whose vector does not cover the supplier's ``purged`` (or a supplier whose
vector does not cover the consumer's own) was out of touch for longer than the tombstone
lifetime: the consumer refuses that pull (see ``replication._state.stale_against``).

Status (the extended operation ``STATUS_OID``)
----------------------------------------------
No request value. The response value is UTF-8 JSON: ``{"node", "server_id",
"invocation" (hex), "highest_usn", "utdv": {invocation hex: usn}, "partners": {name:
{"url", "last_success", "last_error", "last_error_time", "changes_behind",
"seconds_behind", "watermark", "partner_highest_usn", "applied"}}, "writes_paused": why
the node refuses local writes, or null}``. For the forest administrator and the
replication role.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import msgpack

from vmdir.ber import (
    T_INTEGER, T_SEQUENCE, boolean, end_of, expect, integer, integer_content, octets, read_bool, read_octets,
    read_uint, tlv,
)
from vmdir.proto.results import LDAPError, RemoteProtocolError, ResultCode

PULL_OID = "1.3.6.1.4.1.6876.40.10.4.1"
STATUS_OID = "1.3.6.1.4.1.6876.40.10.4.3"
REPL_ATTR = "lightwaveReplEntry"

Vector = dict[bytes, int]  # invocation id -> highest originating USN
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PullRequest:
    consumer: bytes
    watermark: int
    max_entries: int
    utdv: Vector
    hold: int = 0  # milliseconds; 0 answers at once
    certificate: bytes | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class PullResponse:
    supplier: bytes
    watermark: int
    highest_usn: int
    more: bool
    utdv: Vector
    purged: Vector = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Record:
    """One entry as replication carries it."""

    uuid: bytes
    parent_uuid: bytes | None
    rdn: str
    position: int
    body: bytes  # vmdir.store.encode_body


def _bad(what: str, detail: str = "") -> LDAPError:
    return LDAPError(ResultCode.protocolError, f"malformed {what}" + (f": {detail}" if detail else ""))


MAX_USN = (1 << 63) - 1


def _usn(n: int) -> bytes:
    """An INTEGER (0..2^63-1): USNs outgrow LDAP's maxInt."""
    if not 0 <= n <= MAX_USN:
        raise ValueError(f"USN {n} out of range")
    return tlv(T_INTEGER, integer_content(n))


def _read_usn(d: bytes, i: int, end: int, what: str) -> tuple[int, int]:
    s, e = expect(d, i, end, T_INTEGER, what)
    if not 0 < e - s <= 9:
        raise RemoteProtocolError(f"{what} has a bad length ({e - s} octets)")
    v = int.from_bytes(d[s:e], "big", signed=True)
    if not 0 <= v <= MAX_USN:
        raise RemoteProtocolError(f"{what} {v} out of range")
    return v, e


def _vector(v: Vector) -> bytes:
    return tlv(T_SEQUENCE, b"".join(tlv(T_SEQUENCE, octets(inv) + _usn(usn)) for inv, usn in sorted(v.items())))


def _read_vector(d: bytes, i: int, end: int) -> tuple[Vector, int]:
    s, e = expect(d, i, end, T_SEQUENCE, "utdv")
    out: Vector = {}
    j = s
    while j < e:
        ps, pe = expect(d, j, e, T_SEQUENCE, "utdv item")
        inv, k = read_octets(d, ps, pe, "invocation")
        usn, k = _read_usn(d, k, pe, "usn")
        end_of(k, pe, "utdv item")
        out[inv] = max(usn, out.get(inv, 0))
        j = pe
    return out, e


HOLD_TAG, CERTIFICATE_TAG, URL_TAG = 0x80, 0x81, 0x82
MAX_URL = 1024
MAX_HOLD_MS = 3_600_000


def encode_pull_request(r: PullRequest) -> bytes:
    if not 0 <= r.hold <= MAX_HOLD_MS:
        raise ValueError(f"hold {r.hold} ms out of range")
    return tlv(T_SEQUENCE, octets(r.consumer) + _usn(r.watermark) + integer(r.max_entries) + _vector(r.utdv)
               + (tlv(HOLD_TAG, integer_content(r.hold)) if r.hold else b"")
               + (tlv(CERTIFICATE_TAG, r.certificate) if r.certificate is not None else b"")
               + (tlv(URL_TAG, r.url.encode()) if r.url is not None else b""))


def _decode_sequence(value: bytes | None, what: str, fields: Callable[[bytes, int, int], tuple[T, int]]) -> T:
    """Decode ``value``, one SEQUENCE whose content ``fields`` reads (returning the value and
    where it stopped). Raises LDAPError(protocolError) if absent or malformed."""
    if value is None:
        raise _bad(what, "value is missing")
    d = bytes(value)
    try:
        s, e = expect(d, 0, len(d), T_SEQUENCE, what)
        end_of(e, len(d), what)
        out, j = fields(d, s, e)
        end_of(j, e, what)
    except RemoteProtocolError as exc:
        raise _bad(what, exc.message) from None
    return out


def _pull_request_fields(d: bytes, s: int, e: int) -> tuple[PullRequest, int]:
    consumer, j = read_octets(d, s, e, "consumer")
    wm, j = _read_usn(d, j, e, "watermark")
    n, j = read_uint(d, j, e, T_INTEGER, "maxEntries")
    utdv, j = _read_vector(d, j, e)
    hold, cert = 0, None
    if j < e and d[j] == HOLD_TAG:
        hold, j = read_uint(d, j, e, HOLD_TAG, "hold")
        if hold > MAX_HOLD_MS:
            raise RemoteProtocolError(f"hold {hold} ms out of range")
    if j < e and d[j] == CERTIFICATE_TAG:
        cert, j = read_octets(d, j, e, "certificate", CERTIFICATE_TAG)
    url = None
    if j < e and d[j] == URL_TAG:
        raw, j = read_octets(d, j, e, "url", URL_TAG)
        if len(raw) > MAX_URL:
            raise RemoteProtocolError(f"url longer than {MAX_URL} bytes")
        try:
            url = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError("url is not UTF-8") from None
    return PullRequest(consumer, wm, n, utdv, hold, cert, url), j


def decode_pull_request(value: bytes | None) -> PullRequest:
    """Raises LDAPError(protocolError) if ``value`` is absent or malformed."""
    return _decode_sequence(value, "replication pull control", _pull_request_fields)


def encode_pull_response(r: PullResponse) -> bytes:
    return tlv(T_SEQUENCE, octets(r.supplier) + _usn(r.watermark) + _usn(r.highest_usn)
               + boolean(r.more) + _vector(r.utdv) + _vector(r.purged))


def _pull_response_fields(d: bytes, s: int, e: int) -> tuple[PullResponse, int]:
    supplier, j = read_octets(d, s, e, "supplier")
    wm, j = _read_usn(d, j, e, "watermark")
    high, j = _read_usn(d, j, e, "highestUsn")
    more, j = read_bool(d, j, e, "more")
    utdv, j = _read_vector(d, j, e)
    purged, j = _read_vector(d, j, e)
    return PullResponse(supplier, wm, high, more, utdv, purged), j


def decode_pull_response(value: bytes | None) -> PullResponse:
    """Raises LDAPError(protocolError) if ``value`` is absent or malformed."""
    return _decode_sequence(value, "replication pull response", _pull_response_fields)


def vector_sum(v: Vector, without: bytes = b"") -> int:
    """The sum of a vector's USNs (less ``without``'s): it grows whenever the vector does."""
    return sum(u for inv, u in v.items() if inv != without)


def encode_record(r: Record) -> bytes:
    return msgpack.packb([r.uuid, r.parent_uuid, r.rdn, r.position, r.body], use_bin_type=True)


def decode_record(data: bytes) -> Record:
    """Raises LDAPError(protocolError) if ``data`` is not a record."""
    try:
        u, p, rdn, pos, body = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise _bad("replication record", str(exc)) from None
    if not (isinstance(u, bytes) and len(u) == 16 and (p is None or (isinstance(p, bytes) and len(p) == 16))
            and isinstance(rdn, str) and isinstance(pos, int) and pos >= 0 and isinstance(body, bytes)):
        raise _bad("replication record", "unexpected field types")
    return Record(u, p, rdn, pos, body)


__all__ = [
    "PULL_OID", "STATUS_OID", "REPL_ATTR", "Vector", "PullRequest", "PullResponse", "Record",
    "encode_pull_request", "decode_pull_request", "encode_pull_response", "decode_pull_response",
    "vector_sum", "encode_record", "decode_record"
]
