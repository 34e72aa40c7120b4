"""BER primitives for LDAP (X.690 subset used by RFC 4511 section 5.1).

Encoding builds ``bytes`` with precomputed headers for short elements and
``bytes.join``. Decoding walks a ``bytes`` object by index: every reader takes
``(d, i, end)`` (the buffer, the start of an element, the end of the enclosing
value) and never reads past ``end``.

Decoders raise :class:`RemoteProtocolError` (the peer sent it); encoders raise
:class:`LocalProtocolError` (we asked for something that cannot be encoded).

Layer 1: pure, no I/O.
"""
from __future__ import annotations

from vmdir.proto.results import LocalProtocolError, RemoteProtocolError

MAX_INT = 0x7FFFFFFF  # RFC 4511 maxInt


# ---------------------------------------------------------------- universal / LDAP tags

T_BOOLEAN = 0x01
T_INTEGER = 0x02
T_OCTETS = 0x04
T_ENUM = 0x0A
T_SEQUENCE = 0x30
T_SET = 0x31

# ---------------------------------------------------------------- encoding

_TABLE = 1024  # header tables cover element lengths below this


def encode_length(n: int) -> bytes:
    """Return the minimal definite-length octets for ``n``.

    Raises:
        LocalProtocolError: ``n`` does not fit in 4 length octets.
    """
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return bytes((0x82, n >> 8, n & 0xFF))
    if n < 0x1000000:
        return b"\x83" + n.to_bytes(3, "big")
    if n < 0x100000000:
        return b"\x84" + n.to_bytes(4, "big")
    raise LocalProtocolError("BER element of %d bytes is too long to encode" % n)


class HeaderTable(dict[int, bytes]):
    """``table[n]`` is the tag octet followed by the length octets for ``n``.

    Lengths below 1024 are precomputed; longer ones are built on demand and
    not stored (so the table never grows).
    """

    __slots__ = ("_tag",)

    def __init__(self, tag: int) -> None:
        t = bytes((tag,))
        super().__init__((n, t + encode_length(n)) for n in range(_TABLE))
        self._tag = t

    def __missing__(self, n: int) -> bytes:
        return self._tag + encode_length(n)


OCTETS = HeaderTable(T_OCTETS)
SEQ = HeaderTable(T_SEQUENCE)
SET = HeaderTable(T_SET)

_HEADER_TABLES: dict[int, HeaderTable] = {T_OCTETS: OCTETS, T_SEQUENCE: SEQ, T_SET: SET}


def tlv(tag: int, value: bytes) -> bytes:
    """Return the TLV encoding of ``value`` under the single-octet ``tag``."""
    table = _HEADER_TABLES.get(tag)
    if table is not None:
        return table[len(value)] + value
    return bytes((tag,)) + encode_length(len(value)) + value


def octets(value: bytes) -> bytes:
    """Return an OCTET STRING TLV."""
    return OCTETS[len(value)] + value


def string(value: str) -> bytes:
    """Return an LDAPString (UTF-8 OCTET STRING) TLV."""
    b = value.encode()
    return OCTETS[len(b)] + b


def integer_content(n: int) -> bytes:
    """Return the minimal two's-complement content octets of a non-negative integer."""
    return n.to_bytes(n.bit_length() // 8 + 1, "big")


def _small_ints(tag: int) -> list[bytes]:
    return [bytes((tag, 1, n)) for n in range(128)]


INT_SMALL = _small_ints(T_INTEGER)
ENUM_SMALL = _small_ints(T_ENUM)


def integer(n: int, tag: int = T_INTEGER) -> bytes:
    """Return an INTEGER (or ENUMERATED / implicitly tagged) TLV for ``0 <= n <= maxInt``.

    Raises:
        LocalProtocolError: ``n`` is negative or above maxInt.
    """
    if not 0 <= n <= MAX_INT:
        raise LocalProtocolError("integer %r outside 0..maxInt" % (n,))
    if n < 0x80:
        if tag == T_INTEGER:
            return INT_SMALL[n]
        if tag == T_ENUM:
            return ENUM_SMALL[n]
        return bytes((tag, 1, n))
    c = integer_content(n)
    return bytes((tag, len(c))) + c


TRUE = b"\x01\x01\xff"
FALSE = b"\x01\x01\x00"


def boolean(v: bool) -> bytes:
    """Return a BOOLEAN TLV (TRUE is 0xFF, RFC 4511 section 5.1)."""
    return TRUE if v else FALSE


# ---------------------------------------------------------------- decoding


def header(d: bytes, i: int, end: int) -> tuple[int, int, int]:
    """Parse the TLV starting at ``d[i]`` inside a value ending at ``end``.

    Returns ``(tag, start, stop)``: the tag octet and the bounds of the value.

    Raises:
        RemoteProtocolError: truncated header, multi-octet tag, indefinite or
            over-long length, or a value running past ``end``.
    """
    if i + 2 > end:
        raise RemoteProtocolError("truncated BER element")
    tag = d[i]
    n = d[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4:
            raise RemoteProtocolError("bad BER length octet 0x%02x" % n)
        if i + k > end:
            raise RemoteProtocolError("truncated BER length")
        n = int.from_bytes(d[i:i + k], "big")
        i += k
    stop = i + n
    if stop > end:
        raise RemoteProtocolError("BER element overruns its container")
    if tag & 0x1F == 0x1F:
        raise RemoteProtocolError("multi-octet BER tags are not used by LDAP")
    return tag, i, stop


def expect(d: bytes, i: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """Parse a TLV that must carry ``tag``; return ``(start, stop)`` of its value.

    Raises:
        RemoteProtocolError: malformed header or a different tag.
    """
    if i + 2 <= end and d[i] == tag:
        n = d[i + 1]
        if n < 0x80 and i + 2 + n <= end:  # fast path: short form
            return i + 2, i + 2 + n
    t, s, e = header(d, i, end)
    if t != tag:
        raise RemoteProtocolError("expected %s (tag 0x%02x), got tag 0x%02x" % (what, tag, t))
    return s, e


def uint_value(d: bytes, s: int, e: int, what: str) -> int:
    """Decode INTEGER/ENUMERATED content octets ``d[s:e]`` constrained to 0..maxInt.

    Non-minimal (zero-padded) encodings are accepted.

    Raises:
        RemoteProtocolError: empty, longer than 8 octets, negative or above maxInt.
    """
    n = e - s
    if n == 1:
        v = d[s]
        if v & 0x80:
            raise RemoteProtocolError("%s is negative" % what)
        return v
    if n == 0 or n > 8:
        raise RemoteProtocolError("%s has a bad length (%d octets)" % (what, n))
    v = int.from_bytes(d[s:e], "big", signed=True)
    if v < 0 or v > MAX_INT:
        raise RemoteProtocolError("%s %d outside 0..maxInt" % (what, v))
    return v


def read_uint(d: bytes, i: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """Read an INTEGER-like TLV with ``tag`` in 0..maxInt; return ``(value, next_index)``."""
    if i + 3 <= end and d[i] == tag and d[i + 1] == 1 and d[i + 2] < 0x80:
        return d[i + 2], i + 3  # fast path: one content octet
    s, e = expect(d, i, end, tag, what)
    return uint_value(d, s, e, what), e


def bool_value(d: bytes, s: int, e: int, what: str) -> bool:
    """Decode BOOLEAN content; any non-zero octet is TRUE (RFC 4511 asks senders for 0xFF).

    Raises:
        RemoteProtocolError: the content is not exactly one octet.
    """
    if e - s != 1:
        raise RemoteProtocolError("%s: BOOLEAN must be one octet" % what)
    return d[s] != 0


def read_bool(d: bytes, i: int, end: int, what: str) -> tuple[bool, int]:
    """Read a BOOLEAN TLV; return ``(value, next_index)``."""
    if i + 3 <= end and d[i] == T_BOOLEAN and d[i + 1] == 1:
        return d[i + 2] != 0, i + 3
    s, e = expect(d, i, end, T_BOOLEAN, what)
    return bool_value(d, s, e, what), e


def utf8(d: bytes, s: int, e: int, what: str) -> str:
    """Decode ``d[s:e]`` as an LDAPString.

    Raises:
        RemoteProtocolError: the octets are not valid UTF-8.
    """
    try:
        return d[s:e].decode()
    except UnicodeDecodeError:
        raise RemoteProtocolError("%s is not valid UTF-8" % what) from None


def read_string(d: bytes, i: int, end: int, what: str, tag: int = T_OCTETS) -> tuple[str, int]:
    """Read an LDAPString TLV (default tag OCTET STRING); return ``(text, next_index)``."""
    if i + 2 <= end and d[i] == tag and d[i + 1] < 0x80:
        s = i + 2
        e = s + d[i + 1]
        if e > end:
            raise RemoteProtocolError("BER element overruns its container")
    else:
        s, e = expect(d, i, end, tag, what)
    try:
        return d[s:e].decode(), e
    except UnicodeDecodeError:
        raise RemoteProtocolError("%s is not valid UTF-8" % what) from None


def read_octets(d: bytes, i: int, end: int, what: str, tag: int = T_OCTETS) -> tuple[bytes, int]:
    """Read an OCTET STRING TLV (primitive form only); return ``(value, next_index)``."""
    if i + 2 <= end and d[i] == tag and d[i + 1] < 0x80:
        s = i + 2
        e = s + d[i + 1]
        if e > end:
            raise RemoteProtocolError("BER element overruns its container")
        return d[s:e], e
    s, e = expect(d, i, end, tag, what)
    return d[s:e], e


def read_string_seq(d: bytes, s: int, e: int, what: str) -> tuple[str, ...]:
    """Decode the content ``d[s:e]`` of a SEQUENCE/SET OF LDAPString."""
    out: list[str] = []
    append = out.append
    i = s
    try:
        while i < e:
            if i + 2 <= e and d[i] == T_OCTETS and d[i + 1] < 0x80:
                vs = i + 2
                ve = vs + d[i + 1]
                if ve > e:
                    raise RemoteProtocolError("BER element overruns its container")
            else:
                vs, ve = expect(d, i, e, T_OCTETS, what)
            append(d[vs:ve].decode())
            i = ve
    except UnicodeDecodeError:
        raise RemoteProtocolError("%s is not valid UTF-8" % what) from None
    return tuple(out)


def read_octets_set(d: bytes, s: int, e: int, what: str) -> tuple[bytes, ...]:
    """Decode the content ``d[s:e]`` of a SET OF OCTET STRING (attribute values)."""
    out: list[bytes] = []
    append = out.append
    i = s
    while i < e:
        if i + 2 <= e and d[i] == T_OCTETS and d[i + 1] < 0x80:
            vs = i + 2
            ve = vs + d[i + 1]
            if ve > e:
                raise RemoteProtocolError("BER element overruns its container")
        else:
            vs, ve = expect(d, i, e, T_OCTETS, what)
        append(d[vs:ve])
        i = ve
    return tuple(out)


def end_of(i: int, end: int, what: str) -> None:
    """Raise RemoteProtocolError unless ``i == end`` (no trailing elements)."""
    if i != end:
        raise RemoteProtocolError("trailing data in %s" % what)
