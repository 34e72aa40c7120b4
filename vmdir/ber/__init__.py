"""Hand-written BER codec for LDAPv3 (RFC 4511), definite lengths only.

Public API::

    peek_frame(buf, offset, max_pdu_size) -> int | None
    decode_message(pdu, max_filter_depth=64, max_filter_terms=1024) -> (msgid, request, controls)
    encode_response(msgid, response, controls=()) -> bytes
    notice_of_disconnection(code, message) -> bytes
    encode_request(msgid, request, controls=()) -> bytes          # client side
    decode_response(pdu) -> (msgid, response, controls)            # client side
    encode_filter(filter) -> bytes
    decode_filter_value(value, max_depth=64, max_terms=1024) -> Filter
    encode_entry(dn, attributes) -> bytes                          # SearchResultEntry TLV
    decode_entry(value) -> SearchResultEntry
    encode_controls(controls) -> bytes / decode_controls(d, start, stop) -> tuple[Control, ...]

Peer faults raise ``RemoteProtocolError``; misuse on our side raises
``LocalProtocolError`` (both from :mod:`vmdir.proto.results`).

Low-level primitives (for control, extended-operation and replication values;
readers take ``(d, i, end)`` and return ``(value, next_index)``): ``header``,
``expect``, ``end_of``, ``read_uint``, ``read_bool``, ``read_octets``,
``read_string``, ``read_string_seq``, ``tlv``, ``integer``, ``octets``,
``string``, ``boolean``, ``encode_length`` and the ``T_*`` tag constants.

Layer 1: pure, no I/O.
"""
from __future__ import annotations

from vmdir.ber._codec import (
    DEFAULT_MAX_FILTER_DEPTH, DEFAULT_MAX_FILTER_TERMS, decode_controls, decode_entry, decode_message,
    decode_response, encode_attribute_list, encode_controls, encode_entry, encode_entry_raw, encode_request,
    encode_response,
    notice_of_disconnection,
)
from vmdir.ber._filter import decode_filter, encode_filter
from vmdir.ber._frame import peek_frame
from vmdir.ber._prim import (
    MAX_INT, T_BOOLEAN, T_ENUM, T_INTEGER, T_OCTETS, T_SEQUENCE, T_SET, boolean, encode_length, end_of,
    expect, header, integer, integer_content, octets, read_bool, read_octets, read_string, read_string_seq,
    read_uint, string, tlv,
)
from vmdir.proto.messages import Filter
from vmdir.proto.results import RemoteProtocolError


def decode_filter_value(
    value: bytes,
    max_depth: int = DEFAULT_MAX_FILTER_DEPTH,
    max_terms: int = DEFAULT_MAX_FILTER_TERMS,
) -> Filter:
    """Decode a standalone BER Filter (e.g. the assertion control value).

    Raises:
        RemoteProtocolError: malformed filter, trailing data, or limits exceeded.
    """
    value = bytes(value)
    try:
        f, j = decode_filter(value, 0, len(value), max_depth, max_terms)
    except RemoteProtocolError:
        raise
    except (IndexError, ValueError, TypeError, OverflowError, RecursionError):
        raise RemoteProtocolError("malformed filter") from None
    if j != len(value):
        raise RemoteProtocolError("trailing data after filter")
    return f


__all__ = [
    "peek_frame", "decode_message", "encode_response", "notice_of_disconnection",
    "encode_request", "decode_response", "encode_filter", "decode_filter_value", "encode_entry",
    "decode_entry", "encode_entry_raw", "encode_attribute_list", "encode_controls", "decode_controls",
    "DEFAULT_MAX_FILTER_DEPTH",
    "DEFAULT_MAX_FILTER_TERMS",
    # primitives
    "MAX_INT", "T_BOOLEAN", "T_ENUM", "T_INTEGER", "T_OCTETS", "T_SEQUENCE", "T_SET", "boolean",
    "encode_length", "end_of", "expect", "header", "integer", "integer_content", "octets", "read_bool", "read_octets",
    "read_string", "read_string_seq", "read_uint", "string", "tlv",
    # helpers
]
