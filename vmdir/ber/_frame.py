"""Framing: find the end of one LDAPMessage in a byte stream from its header alone.

RFC 4511 section 5.1: only definite lengths are used. The frame check reads the
outer SEQUENCE tag and its length octets and refuses oversized PDUs before the
body has arrived, so a peer cannot make us buffer more than ``max_pdu_size``.

Layer 1: pure, no I/O.
"""
from __future__ import annotations

from vmdir.proto.results import RemoteProtocolError

Buffer = bytes | bytearray | memoryview


def peek_frame(buf: Buffer, offset: int, max_pdu_size: int) -> int | None:
    """Return the total length (header + body) of the LDAPMessage starting at
    ``buf[offset]``, or ``None`` if ``buf`` does not yet hold all of it.

    Only the header is inspected; the body is not validated (``decode_message``
    does that).

    Long-form lengths of 1 to 4 octets are accepted even when not minimal
    (``84 00 00 00 05``, as sent by Windows clients, is valid BER).

    Raises:
        RemoteProtocolError: the tag is not SEQUENCE (0x30), the length is
            indefinite (0x80), uses more than 4 length octets, or declares a PDU
            longer than ``max_pdu_size``. These are decided as soon as the
            header bytes are present, before the body arrives.
    """
    avail = len(buf) - offset
    if avail <= 0:
        return None
    if buf[offset] != 0x30:
        raise RemoteProtocolError("LDAPMessage is not a SEQUENCE (tag 0x%02x)" % buf[offset])
    if avail < 2:
        return None
    n = buf[offset + 1]
    if n < 0x80:
        total = 2 + n
    else:
        k = n & 0x7F
        if k == 0:
            raise RemoteProtocolError("indefinite length is not allowed in LDAP")
        if k > 4:
            raise RemoteProtocolError("length uses %d octets (at most 4 allowed)" % k)
        if avail < 2 + k:
            return None
        n = int.from_bytes(buf[offset + 2:offset + 2 + k], "big")
        total = 2 + k + n
    if total > max_pdu_size:
        raise RemoteProtocolError(
            "PDU of %d bytes exceeds the limit of %d" % (total, max_pdu_size),
        )
    if avail < total:
        return None
    return total
