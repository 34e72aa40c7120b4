"""The on-disk encoding of one entry (the value of the ``entries`` database).

A msgpack array, versioned by its first element so the format can evolve:

    [FORMAT, parent_id, rdn, flags, body, wire_user, wire_secret]

where ``body`` is itself msgpack (decoded only when needed):
``[[attr, [values], meta, vmeta], ...]``, and ``wire_user`` / ``wire_secret`` are the
entry's user attributes (without / only the secret ones) already encoded as the content
of an LDAP PartialAttributeList, or nil. The directory fills them in before writing, so
a search returning all user attributes can send stored bytes without decoding.

- ``attr`` is the schema's canonical key (lower-case primary name, options appended).
- ``values`` are the live values; an attribute whose values are all gone keeps its
  metadata with an empty list (an attribute tombstone, so replication can tell a
  deletion from "never had it").
- ``meta`` is ``[local_usn, version, orig_invocation (16 bytes), orig_time_ms, orig_usn]``.
- ``vmeta`` is ``None`` or, for attributes with per-value metadata (``member``...),
  ``[[value, local_usn, version, orig_invocation, orig_time_ms, orig_usn, deleted], ...]``
  including deleted values (value tombstones).

Layer 2 helper: pure functions, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

FORMAT = 2
FLAG_DELETED = 1  # entry tombstone

# (local_usn, version, orig_invocation, orig_time_ms, orig_usn)
AttrMeta = tuple[int, int, bytes, int, int]


@dataclass(slots=True)
class ValueMeta:
    value: bytes
    local_usn: int
    version: int
    invocation: bytes
    time_ms: int
    orig_usn: int
    deleted: bool = False

    def meta(self) -> AttrMeta:
        return (self.local_usn, self.version, self.invocation, self.time_ms, self.orig_usn)


@dataclass(slots=True)
class StoredEntry:
    """An entry as the store holds it. ``dn``/``ndn`` are filled in by whoever read it."""

    id: int
    parent_id: int
    rdn: str
    attrs: dict[str, list[bytes]]
    meta: dict[str, AttrMeta] = field(default_factory=dict)
    vmeta: dict[str, list[ValueMeta]] = field(default_factory=dict)
    flags: int = 0
    dn: str = ""
    ndn: str = ""
    wire_user: bytes | None = None
    wire_secret: bytes | None = None

    @property
    def deleted(self) -> bool:
        return bool(self.flags & FLAG_DELETED)

    def copy(self) -> "StoredEntry":
        return StoredEntry(
            self.id, self.parent_id, self.rdn,
            {k: list(v) for k, v in self.attrs.items()},
            dict(self.meta),
            {k: [ValueMeta(*_vm_fields(x)) for x in v] for k, v in self.vmeta.items()},
            self.flags, self.dn, self.ndn, self.wire_user, self.wire_secret,
        )


def _vm_fields(v: ValueMeta) -> tuple[Any, ...]:
    return (v.value, v.local_usn, v.version, v.invocation, v.time_ms, v.orig_usn, v.deleted)


def encode_body(e: StoredEntry, skip: frozenset[str] = frozenset()) -> bytes:
    """The attributes of ``e`` with their metadata (``[[attr, values, meta, vmeta], ...]``,
    msgpack), leaving out the attributes in ``skip``. Replication sends this too."""
    attrs = []
    meta, vmeta, values = e.meta, e.vmeta, e.attrs
    for name in sorted(values.keys() | meta.keys()):
        if name in skip:
            continue
        vm = vmeta.get(name)
        # tuples pack as msgpack arrays too: no list copies
        attrs.append((name, values.get(name, []), meta.get(name), [_vm_fields(v) for v in vm] if vm else None))
    return msgpack.packb(attrs, use_bin_type=True)


def decode_body(body: bytes) -> tuple[dict[str, list[bytes]], dict[str, AttrMeta], dict[str, list[ValueMeta]]]:
    """(attrs, meta, vmeta) of an ``encode_body`` value. Raises ValueError (or a msgpack
    error, a subclass) if it is malformed."""
    attrs: dict[str, list[bytes]] = {}
    meta: dict[str, AttrMeta] = {}
    vmeta: dict[str, list[ValueMeta]] = {}
    for name, values, m, vm in msgpack.unpackb(body, raw=False, use_list=True):
        if values:
            attrs[name] = values
        if m is not None:
            meta[name] = tuple(m)  # type: ignore[assignment]
        if vm:
            vmeta[name] = [ValueMeta(*x) for x in vm]
    return attrs, meta, vmeta


def encode_entry(e: StoredEntry) -> bytes:
    """Return the record bytes for ``e``."""
    return msgpack.packb([FORMAT, e.parent_id, e.rdn, e.flags, encode_body(e), e.wire_user, e.wire_secret],
                         use_bin_type=True)


def _record(data: bytes) -> list[Any]:
    """The outer record, body still encoded. Raises ValueError on an unknown format."""
    rec = msgpack.unpackb(data, raw=False, use_list=True)
    if rec[0] != FORMAT:
        raise ValueError(f"unknown entry record format {rec[0]!r}")
    return rec


def decode_entry(entry_id: int, data: bytes) -> StoredEntry:
    """Return the entry encoded in ``data``. Raises ValueError on an unknown format."""
    rec = _record(data)
    attrs, meta, vmeta = decode_body(rec[4])
    return StoredEntry(entry_id, rec[1], rec[2], attrs, meta, vmeta, rec[3], "", "", rec[5], rec[6])


def decode_wire(data: bytes) -> tuple[int, str, int, bytes | None, bytes | None]:
    """The cheapest read: (parent_id, rdn, flags, wire_user, wire_secret); the body stays encoded."""
    rec = _record(data)
    return rec[1], rec[2], rec[3], rec[5], rec[6]
