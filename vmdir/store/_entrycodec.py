"""The on-disk encoding of one entry (the value of the ``entries`` database).

A msgpack array, versioned by its first element so the format can evolve:

    [FORMAT, parent_id, rdn, flags, body, wire_user, wire_secret]

(FORMAT 3; 2 is read too: the same but for the shared metadata described below.)

where ``body`` is itself msgpack (decoded only when needed):
``[[attr, [values], meta, vmeta], ...]``, and ``wire_user`` / ``wire_secret`` are the
entry's user attributes (without / only the secret ones) already encoded as the content
of an LDAP PartialAttributeList, or nil. The directory fills them in before writing, so
a search returning all user attributes can send stored bytes without decoding.

- ``attr`` is the schema's canonical key (lower-case primary name, options appended).
- ``values`` are the live values; an attribute whose values are all gone keeps its
  metadata with an empty list (an attribute tombstone, so replication can tell a
  deletion from "never had it").
- ``meta`` is ``[local_usn, version, orig_invocation (16 bytes), orig_time_ms, orig_usn]``,
  or, in a stored record, the position (0 for the body's first attribute) of an earlier
  attribute with the same metadata: an add stamps one for all of an entry's two dozen
  attributes, which written out each time made a person 2.2 KB, past what LMDB keeps in a
  page (about 2 KB): each took a 4 KiB overflow page of its own. ``encode_body`` (what
  replication sends) writes every attribute's out.
- ``vmeta`` is ``None`` or, for attributes with per-value metadata (``member``...),
  ``[[value, local_usn, version, orig_invocation, orig_time_ms, orig_usn, deleted], ...]``
  including deleted values (value tombstones).

Layer 2 helper: pure functions, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgpack

if TYPE_CHECKING:  # mypyc's unboxed integer (no import at run time: it is only an annotation)
    from mypy_extensions import i64

FORMAT = 3
_FORMATS: Final = frozenset({2, 3})  # read
FLAG_DELETED = 1  # entry tombstone

# (local_usn, version, orig_invocation, orig_time_ms, orig_usn)
AttrMeta = tuple[int, int, bytes, int, int]


@dataclass(slots=True, init=False)
class ValueMeta:
    """One value's state. The constructor is written out, as ``StoredEntry``'s: a group's
    record holds one per member, each built when the record is read."""

    value: bytes
    local_usn: int
    version: int
    invocation: bytes
    time_ms: int
    orig_usn: int
    deleted: bool

    def __init__(self, value: bytes, local_usn: int, version: int, invocation: bytes, time_ms: int,
                 orig_usn: int, deleted: bool = False) -> None:
        self.value = value
        self.local_usn = local_usn
        self.version = version
        self.invocation = invocation
        self.time_ms = time_ms
        self.orig_usn = orig_usn
        self.deleted = deleted

    def meta(self) -> AttrMeta:
        return (self.local_usn, self.version, self.invocation, self.time_ms, self.orig_usn)


@dataclass(slots=True, init=False, eq=False)
class StoredEntry:
    """An entry as the store holds it. ``dn``/``ndn`` are filled in by whoever read it.

    The constructor is written out: compiled, it costs a fraction of the one ``dataclass``
    generates, which runs interpreted (3.8k instructions, once per entry read).

    ``vmeta`` is built when first asked for: an entry read from the store keeps its values'
    states as msgpack gave them (``_vm_raw``) until then. A search never asks, and a group of
    many thousand members would otherwise build as many ValueMeta at each read; written
    back unasked (a change to another attribute), the states are written from those lists."""

    id: int
    parent_id: int
    rdn: str
    attrs: dict[str, list[bytes]]
    meta: dict[str, AttrMeta]
    _vmeta: dict[str, list[ValueMeta]] | None  # None: not built yet from _vm_raw
    _vm_raw: dict[str, list[Any]]  # attribute -> its values' states, each a 7-element list
    flags: int
    dn: str
    ndn: str
    wire_user: bytes | None
    wire_secret: bytes | None

    def __init__(self, id: int, parent_id: int, rdn: str, attrs: dict[str, list[bytes]],
                 meta: dict[str, AttrMeta] | None = None, vmeta: dict[str, list[ValueMeta]] | None = None,
                 flags: int = 0, dn: str = "", ndn: str = "", wire_user: bytes | None = None,
                 wire_secret: bytes | None = None, vm_raw: dict[str, list[Any]] | None = None) -> None:
        self.id = id
        self.parent_id = parent_id
        self.rdn = rdn
        self.attrs = attrs
        self.meta = {} if meta is None else meta
        if vm_raw:
            self._vmeta, self._vm_raw = None, vm_raw
        else:
            self._vmeta, self._vm_raw = ({} if vmeta is None else vmeta), {}
        self.flags = flags
        self.dn = dn
        self.ndn = ndn
        self.wire_user = wire_user
        self.wire_secret = wire_secret

    @property
    def vmeta(self) -> dict[str, list[ValueMeta]]:
        """Attribute -> its values' states (value tombstones included). Raises ValueError
        if the record held a state of another shape or type."""
        vm = self._vmeta
        if vm is None:
            vm = _built(self._vm_raw)
            self._vmeta, self._vm_raw = vm, {}
        return vm

    @vmeta.setter
    def vmeta(self, value: dict[str, list[ValueMeta]]) -> None:
        self._vmeta, self._vm_raw = value, {}

    @property
    def deleted(self) -> bool:
        return bool(self.flags & FLAG_DELETED)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredEntry):
            return NotImplemented
        return (self.id, self.parent_id, self.rdn, self.attrs, self.meta, self.vmeta, self.flags, self.dn,
                self.ndn, self.wire_user, self.wire_secret) == (
                other.id, other.parent_id, other.rdn, other.attrs, other.meta, other.vmeta, other.flags, other.dn,
                other.ndn, other.wire_user, other.wire_secret)

    def copy(self) -> "StoredEntry":
        """A copy whose lists and dicts can be changed without changing this entry. The
        ``ValueMeta`` objects are shared: whoever changes a value's metadata replaces the
        object in its list (a group of many thousand members is not copied value by value);
        states not built yet stay unbuilt in both (the lists are only ever read)."""
        vmeta = self._vmeta
        return StoredEntry(
            self.id, self.parent_id, self.rdn,
            {k: list(v) for k, v in self.attrs.items()},
            dict(self.meta),
            {k: list(v) for k, v in vmeta.items()} if vmeta is not None else None,
            self.flags, self.dn, self.ndn, self.wire_user, self.wire_secret,
            self._vm_raw if vmeta is None else None,
        )


def _vm_fields(v: ValueMeta) -> tuple[Any, ...]:
    return (v.value, v.local_usn, v.version, v.invocation, v.time_ms, v.orig_usn, v.deleted)


def encode_body(e: StoredEntry, skip: frozenset[str] = frozenset()) -> bytes:
    """The attributes of ``e`` with their metadata (``[[attr, values, meta, vmeta], ...]``,
    msgpack), leaving out the attributes in ``skip``. Replication sends this too."""
    return _encode_body(e, skip, False)


def _encode_body(e: StoredEntry, skip: frozenset[str], share: bool) -> bytes:
    """``encode_body``; ``share``: an attribute whose metadata an earlier one has refers to it.
    Values' states not built yet are written from the lists they were read as."""
    meta, values = e.meta, e.attrs
    vmeta: dict[str, list[Any]] = e._vm_raw if e._vmeta is None else e._vmeta  # type: ignore[assignment]
    names = sorted(values.keys() | meta.keys())
    try:
        return _pack_body(names, skip, values, meta, vmeta, share)
    except (_NotPlain, TypeError, ValueError):  # a value of another type: msgpack's own packer
        attrs = []
        for name in names:
            if name in skip:
                continue
            vm = vmeta.get(name)
            attrs.append((name, values.get(name, []), meta.get(name),
                          [_vm_fields(v) if isinstance(v, ValueMeta) else v for v in vm] if vm else None))
        return msgpack.packb(attrs, use_bin_type=True)


# ------------------------------------------------------------------ writing msgpack
# The body is written out here rather than by msgpack's packer, which examines the type of
# each of an entry's few hundred objects in turn: this knows them (str names, bytes values,
# the metadata's unsigned integers), writes an add's metadata once for all its attributes
# (it is one tuple), and a name once per process. The same bytes as
# ``msgpack.packb(..., use_bin_type=True)`` (tests/unit/vmdir/test_entrycodec.py), in half
# the time (encode_entry of a new person: 7.2 against 14.5 us).

class _NotPlain(Exception):
    """A value outside what the writer below handles: the caller falls back to msgpack."""


_BYTE: Final = [bytes([n]) for n in range(0x100)]
_UINT8: Final = [b"\xcc" + b for b in _BYTE]
_FIXSTR: Final = [bytes([0xA0 | n]) for n in range(32)]
_BIN8: Final = [b"\xc4" + b for b in _BYTE]
_FIXARRAY: Final = [bytes([0x90 | n]) for n in range(16)]
_NAMES: dict[str, bytes] = {}  # attribute name -> b"\x94" (its 4-element array) + the packed name
_NAMES_MAX: Final = 4096  # names carry options a client chooses: the cache stops growing there


def _uint(n: int) -> bytes:
    if n < 0x80:
        if n < 0:
            raise _NotPlain
        return _BYTE[n]
    if n < 0x100:
        return _UINT8[n]
    if n < 0x10000:
        return b"\xcd" + n.to_bytes(2, "big")
    if n < 0x100000000:
        return b"\xce" + n.to_bytes(4, "big")
    if n < 0x10000000000000000:
        return b"\xcf" + n.to_bytes(8, "big")
    raise _NotPlain


def _str(s: str) -> bytes:
    b = s.encode()
    n = len(b)
    if n < 32:
        return _FIXSTR[n] + b
    if n < 0x100:
        return b"\xd9" + _BYTE[n] + b
    if n < 0x10000:
        return b"\xda" + n.to_bytes(2, "big") + b
    return b"\xdb" + n.to_bytes(4, "big") + b


def _head(n: int, short: list[bytes], code16: bytes, code32: bytes) -> bytes:
    """The header of a bin or array of ``n`` bytes or elements: ``short[n]`` (bin 8, fixarray)
    while there is one, else a 16- or 32-bit length after ``code16`` / ``code32``."""
    if n < len(short):
        return short[n]
    if n < 0x10000:
        return code16 + n.to_bytes(2, "big")
    return code32 + n.to_bytes(4, "big")


def _bin_head(n: int) -> bytes:
    return _head(n, _BIN8, b"\xc5", b"\xc6")


def _array_head(n: int) -> bytes:
    return _head(n, _FIXARRAY, b"\xdc", b"\xdd")


def _pack_meta(m: Any) -> bytes:
    if len(m) != 5:
        raise _NotPlain
    inv: bytes = m[2]
    return b"".join([b"\x95", _uint(m[0]), _uint(m[1]), _bin_head(len(inv)), inv, _uint(m[3]), _uint(m[4])])


def _pack_state(value: bytes, local_usn: int, version: int, invocation: bytes, time_ms: int, orig_usn: int,
                deleted: bool) -> bytes:
    """A value's state (the fields of ValueMeta, in order)."""
    return b"".join([b"\x97", _bin_head(len(value)), value, _uint(local_usn), _uint(version),
                     _bin_head(len(invocation)), invocation, _uint(time_ms), _uint(orig_usn),
                     b"\xc3" if deleted else b"\xc2"])


def _pack_value_meta(x: Any) -> bytes:
    """A ValueMeta, or a state as read and not built yet (``StoredEntry._vm_raw``): the same
    bytes as the ValueMeta built from it. Raises _NotPlain (or TypeError: compiled, the
    fields' types are checked) for anything else."""
    if isinstance(x, ValueMeta):
        return _pack_state(x.value, x.local_usn, x.version, x.invocation, x.time_ms, x.orig_usn, x.deleted)
    if len(x) != 7:
        raise _NotPlain
    return _pack_state(x[0], x[1], x[2], x[3], x[4], x[5], x[6])


def _pack_body(names: list[str], skip: frozenset[str], values: dict[str, list[bytes]],
               meta: dict[str, Any], vmeta: dict[str, list[Any]], share: bool) -> bytes:
    """``[[attr, values, meta, vmeta], ...]`` as msgpack. Raises _NotPlain (or TypeError) for
    a value it does not write. ``share``: a metadata tuple an earlier attribute has is written
    as that attribute's position. (``meta`` is typed loosely: compiled, a typed tuple would be
    unpacked and built again at each use, and ``is`` would never hold.)"""
    out: list[bytes] = []
    count = 0
    last: Any = None
    last_packed = b""
    first_at: dict[Any, int] = {}  # metadata tuple -> position of the first attribute with it
    for name in names:
        if name in skip:
            continue
        count += 1
        head = _NAMES.get(name)
        if head is None:
            head = b"\x94" + _str(name)
            if len(_NAMES) < _NAMES_MAX:
                _NAMES[name] = head
        out.append(head)
        vals = values.get(name)
        if vals is None:
            out.append(b"\x90")
        else:
            out.append(_array_head(len(vals)))
            for v in vals:
                out.append(_bin_head(len(v)))
                out.append(v)
        m = meta.get(name)
        if m is None:
            out.append(b"\xc0")
        elif share:
            if m is last:  # (an add's attributes share one tuple: no lookup)
                out.append(last_packed)
            else:
                at = first_at.get(m)
                if at is None:
                    at = first_at[m] = count - 1
                    out.append(_pack_meta(m))
                else:
                    out.append(_uint(at))
                last, last_packed = m, _uint(at)
        else:
            if m is not last and m != last:  # an add's attributes share one
                last, last_packed = m, _pack_meta(m)
            out.append(last_packed)
        vm = vmeta.get(name) if vmeta else None
        if not vm:
            out.append(b"\xc0")
        else:
            out.append(_array_head(len(vm)))
            for x in vm:
                out.append(_pack_value_meta(x))
    return _array_head(count) + b"".join(out)


def decode_body(body: bytes) -> tuple[dict[str, list[bytes]], dict[str, AttrMeta], dict[str, list[ValueMeta]]]:
    """(attrs, meta, vmeta) of an ``encode_body`` value, or of a stored record's body (whose
    shared metadata it resolves: those attributes share one tuple). Raises ValueError (or a
    msgpack error, a subclass) if it is malformed."""
    attrs, meta, raw = _decode_body(body)
    return attrs, meta, _built(raw)


def _decode_body(body: bytes) -> tuple[dict[str, list[bytes]], dict[str, AttrMeta], dict[str, list[Any]]]:
    """``decode_body`` with the values' states as msgpack gave them (lists, not checked)."""
    attrs: dict[str, list[bytes]] = {}
    meta: dict[str, AttrMeta] = {}
    vmeta: dict[str, list[Any]] = {}
    seen: list[Any] = []  # each attribute's metadata in turn (None: it has none)
    for name, values, m, vm in msgpack.unpackb(body, raw=False, use_list=True):
        if values:
            attrs[name] = values
        t: Any = None
        if type(m) is int:
            if not 0 <= m < len(seen) or seen[m] is None:
                raise ValueError("malformed entry body: metadata refers to no earlier attribute's")
            t = seen[m]
        elif m is not None:
            t = tuple(m)
        if t is not None:
            meta[name] = t
        seen.append(t)
        if vm:
            if not isinstance(vm, list):
                raise ValueError("malformed entry body: values' metadata is not a list")
            vmeta[name] = vm
    return attrs, meta, vmeta


def _built(raw: dict[str, list[Any]]) -> dict[str, list[ValueMeta]]:
    """The values' states read as lists, as ValueMeta. Raises ValueError for one of another
    shape or type."""
    return {k: [_value_meta(x) for x in xs] for k, xs in raw.items()}


def _value_meta(x: Any) -> ValueMeta:
    if not isinstance(x, list) or len(x) != 7:
        raise ValueError("malformed entry body: value metadata of another shape")
    try:
        return ValueMeta(x[0], x[1], x[2], x[3], x[4], x[5], x[6])
    except TypeError:  # a field of another type (compiled, the constructor checks them)
        raise ValueError("malformed entry body: value metadata of another type") from None


def encode_entry(e: StoredEntry) -> bytes:
    """Return the record bytes for ``e``."""
    body = _encode_body(e, frozenset(), True)
    try:
        return b"".join([b"\x97", _uint(FORMAT), _uint(e.parent_id), _str(e.rdn), _uint(e.flags),
                         _bin_head(len(body)), body, _bin_or_nil(e.wire_user), _bin_or_nil(e.wire_secret)])
    except (_NotPlain, TypeError):
        return msgpack.packb([FORMAT, e.parent_id, e.rdn, e.flags, body, e.wire_user, e.wire_secret],
                             use_bin_type=True)


def _bin_or_nil(b: bytes | None) -> bytes:
    return b"\xc0" if b is None else _bin_head(len(b)) + b


def _record(data: bytes) -> list[Any]:
    """The outer record, body still encoded. Raises ValueError on an unknown format."""
    rec = msgpack.unpackb(data, raw=False, use_list=True)
    if rec[0] not in _FORMATS:
        raise ValueError(f"unknown entry record format {rec[0]!r}")
    return rec


def decode_entry(entry_id: int, data: bytes) -> StoredEntry:
    """Return the entry encoded in ``data``. Raises ValueError on an unknown format."""
    rec = _record(data)
    attrs, meta, raw = _decode_body(rec[4])
    return StoredEntry(entry_id, rec[1], rec[2], attrs, meta, None, rec[3], "", "", rec[5], rec[6], raw)


def decode_some(entry_id: int, data: bytes, names: frozenset[str]) -> StoredEntry:
    """The entry encoded in ``data`` with only the attributes in ``names`` and no metadata:
    a partial view to read (a bind's password and policy state), never to write back.

    The other attributes are stepped over, not built (``_skip``): for a person that costs a
    quarter of ``decode_entry`` and freeing what it built (callgrind: 39k against 150k
    instructions). msgpack's own ``Unpacker.skip``, one call per object, cost more than
    decoding everything. Raises ValueError on an unknown format or a malformed body."""
    rec = _record(data)
    body: bytes = rec[4]
    attrs: dict[str, list[bytes]] = {}
    wanted, lengths = _encoded_names(names)
    try:
        _pick(body, wanted, lengths, attrs)
    except IndexError:  # cut short
        raise ValueError("malformed entry body") from None
    return StoredEntry(entry_id, rec[1], rec[2], attrs, {}, {}, rec[3], "", "", rec[5], rec[6])


def _pick(body: bytes, wanted: dict[bytes, str], lengths: int, attrs: dict[str, list[bytes]]) -> None:
    """Put into ``attrs`` the values of the attributes of ``body`` named in ``wanted`` (bit n
    of ``lengths`` set: a wanted name has n characters)."""
    pos: i64
    count: i64
    fields: i64
    b: i64
    value_at: i64
    mask: i64 = lengths
    count, pos = _array_header(body, 0)
    for _ in range(count):
        fields, pos = _array_header(body, pos)
        if fields != 4:  # [attr, values, meta, vmeta]
            raise ValueError("malformed entry body")
        b = body[pos]
        if 0xA0 <= b <= 0xBF:  # a short str, as nearly every name is
            if not (mask >> (b & 0x1F)) & 1:  # no wanted name is that long: not one of them
                pos = _skip(body, pos + 1 + (b & 0x1F), 3)
                continue
            value_at = pos + 1 + (b & 0x1F)
        else:
            value_at = _skip(body, pos, 1)
        name = wanted.get(body[pos:value_at])
        if name is None:
            pos = _skip(body, value_at, 3)
            continue
        pos = _skip(body, value_at, 1)
        values = msgpack.unpackb(body[value_at:pos], raw=False, use_list=True)
        if values:
            attrs[name] = values
        pos = _skip(body, pos, 2)


_ENCODED: dict[frozenset[str], tuple[dict[bytes, str], int]] = {}


def _encoded_names(names: frozenset[str]) -> tuple[dict[bytes, str], int]:
    """(msgpack encoding of each name -> the name, a bit mask of the short names' lengths);
    the callers pass a few constant sets."""
    hit = _ENCODED.get(names)
    if hit is None:
        lengths = 0
        for n in names:
            size = len(n.encode())  # a fixstr's length is in bytes
            if size < 32:
                lengths |= 1 << size
        hit = _ENCODED[names] = ({msgpack.packb(n): n for n in names}, lengths)
    return hit


def _array_header(data: bytes, pos: i64) -> tuple[i64, i64]:
    """(length, position after the header) of the msgpack array at ``pos``."""
    b: i64 = data[pos]
    if 0x90 <= b <= 0x9F:
        return b & 0x0F, pos + 1
    if b == 0xDC:
        return int.from_bytes(data[pos + 1:pos + 3], "big"), pos + 3
    if b == 0xDD:
        return int.from_bytes(data[pos + 1:pos + 5], "big"), pos + 5
    raise ValueError("malformed entry body")


# codes of _STEP above 32: objects that reach further than their first byte says (a length
# follows it, or elements are inside)
_S_LEN8: Final = 33
_S_LEN16: Final = 34
_S_LEN32: Final = 35
_S_FIXARRAY: Final = 36
_S_FIXMAP: Final = 37
_S_ARRAY16: Final = 38
_S_ARRAY32: Final = 39
_S_MAP16: Final = 40
_S_MAP32: Final = 41


def _step_table() -> bytes:
    """For each first byte of a msgpack object: how far the object reaches when that is fixed
    by the byte alone (1-32: the whole object, a fixstr's characters included), else one of the
    ``_S_*`` codes (0: a byte never written here, the ext types and 0xC1)."""
    t = bytearray(256)
    for b in range(256):
        if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):  # fixint, nil, bool
            t[b] = 1
        elif b <= 0x8F:
            t[b] = _S_FIXMAP
        elif b <= 0x9F:
            t[b] = _S_FIXARRAY
        elif b <= 0xBF:  # fixstr
            t[b] = 1 + (b & 0x1F)
        elif b in (0xCC, 0xD0):
            t[b] = 2
        elif b in (0xCD, 0xD1):
            t[b] = 3
        elif b in (0xCA, 0xCE, 0xD2):
            t[b] = 5
        elif b in (0xCB, 0xCF, 0xD3):
            t[b] = 9
        elif b in (0xC4, 0xD9):  # bin 8, str 8
            t[b] = _S_LEN8
        elif b in (0xC5, 0xDA):
            t[b] = _S_LEN16
        elif b in (0xC6, 0xDB):
            t[b] = _S_LEN32
        elif b == 0xDC:
            t[b] = _S_ARRAY16
        elif b == 0xDD:
            t[b] = _S_ARRAY32
        elif b == 0xDE:
            t[b] = _S_MAP16
        elif b == 0xDF:
            t[b] = _S_MAP32
    return bytes(t)


_STEP: Final = _step_table()  # by a msgpack object's first byte


def _skip(data: bytes, start: int, count: int) -> int:
    """The position after the ``count`` msgpack objects from ``start`` (and everything inside them).

    One table lookup per object (``_STEP``): nearly every object of an entry body (names,
    values, the numbers and invocation id of its metadata) is a size known from its first
    byte, or a length right after it."""
    n: i64 = len(data)
    pos: i64 = start
    left: i64 = count  # objects still to step over
    b: i64
    k: i64
    while left:
        if pos >= n:
            raise ValueError("malformed entry body")
        b = data[pos]
        k = _STEP[b]
        left -= 1
        if k <= 32:
            if k == 0:  # ext types: never written here
                raise ValueError("malformed entry body")
            pos += k
        elif k == _S_LEN8:
            pos += 2 + data[pos + 1]
        elif k == _S_FIXARRAY:
            left += b & 0x0F
            pos += 1
        elif k == _S_LEN16:
            pos += 3 + int.from_bytes(data[pos + 1:pos + 3], "big")
        elif k == _S_LEN32:
            pos += 5 + int.from_bytes(data[pos + 1:pos + 5], "big")
        elif k == _S_FIXMAP:
            left += 2 * (b & 0x0F)
            pos += 1
        elif k == _S_ARRAY16:
            left += int.from_bytes(data[pos + 1:pos + 3], "big")
            pos += 3
        elif k == _S_ARRAY32:
            left += int.from_bytes(data[pos + 1:pos + 5], "big")
            pos += 5
        elif k == _S_MAP16:
            left += 2 * int.from_bytes(data[pos + 1:pos + 3], "big")
            pos += 3
        else:  # _S_MAP32
            left += 2 * int.from_bytes(data[pos + 1:pos + 5], "big")
            pos += 5
    if pos > n:
        raise ValueError("malformed entry body")
    return pos


def decode_wire(data: bytes) -> tuple[int, str, int, bytes | None, bytes | None]:
    """The cheapest read: (parent_id, rdn, flags, wire_user, wire_secret); the body stays encoded."""
    rec = _record(data)
    return rec[1], rec[2], rec[3], rec[5], rec[6]
