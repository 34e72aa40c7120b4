"""The LMDB store (layer 2). The only package that imports lmdb."""
from __future__ import annotations

from vmdir.store._entrycodec import (
    FLAG_DELETED,
    AttrMeta,
    StoredEntry,
    ValueMeta,
    decode_body,
    decode_wire,
    encode_body,
    decode_entry,
    decode_some,
    encode_entry,
)
from vmdir.store._store import (
    KIND_EQ,
    MAX_KEY,
    KIND_PRES,
    KIND_SUB,
    KIND_SUBFINAL,
    KIND_SUBINIT,
    SUB_N,
    IndexKeys,
    ReadTxn,
    Store,
    StoreError,
    WriteTxn,
    cap_key,
    entry_uuid,
    pack_u64,
    unpack_u64,
)

__all__ = [
    "FLAG_DELETED", "AttrMeta", "StoredEntry", "ValueMeta", "decode_body", "decode_wire", "encode_body", "decode_entry", "decode_some",
    "encode_entry", "KIND_EQ", "MAX_KEY", "KIND_PRES", "KIND_SUB", "KIND_SUBFINAL", "KIND_SUBINIT", "SUB_N",
    "IndexKeys", "ReadTxn", "Store", "StoreError", "WriteTxn", "cap_key", "entry_uuid", "pack_u64", "unpack_u64",
]
