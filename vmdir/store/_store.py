"""The LMDB store: one environment, named databases (DESIGN section 3, STYLE section 5).

| db         | key                                   | value                          |
|------------|---------------------------------------|--------------------------------|
| entries    | u64 id                                | entry record (_entrycodec)     |
| dn2id      | u64 parent id + normalised RDN        | u64 id                         |
| children   | u64 parent id                         | u64 child id (dupsort/dupfixed)|
| idx.<attr> | kind byte + normalised value          | u64 ids (dupsort/dupfixed)     |
| usn        | u64 local USN                         | u64 id (latest change per id)  |
| meta       | ascii name                            | value                          |

Naming contexts (entries with no parent in the DIT) have parent id 0 and their
whole normalised DN as "RDN". Ids and USNs are allocated inside the write
transaction, so USN order is commit order whatever the number of processes.

This is the only module that imports lmdb (with its sibling codec).
"""
from __future__ import annotations

import hashlib
import os
import struct
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import lmdb

from vmdir.store._entrycodec import FLAG_DELETED, StoredEntry, decode_entry, decode_some, encode_entry

_U64 = struct.Struct(">Q")
pack_u64 = _U64.pack


def unpack_u64(b: bytes | memoryview) -> int:
    return _U64.unpack(b)[0]


MAX_KEY = 480  # below LMDB's 511-byte limit, with room for the prefix
KIND_EQ = b"="
KIND_PRES = b"*"
KIND_SUB = b"s"  # trigram of the substring-normalised value
KIND_SUBINIT = b"^"  # first characters
KIND_SUBFINAL = b"$"  # last characters
SUB_N = 3

# IndexKeys(attr_key, values) -> set of index keys (kind byte + normalised value) for that attribute
IndexKeys = Callable[[str, list[bytes]], set[bytes]]


def cap_key(key: bytes) -> bytes:
    """An index key as stored: over-long keys are replaced by a hash."""
    if len(key) > MAX_KEY:
        return key[:1] + b"#" + hashlib.sha256(key).digest()
    return key


def dn2id_key(parent_id: int, nrdn: str) -> bytes:
    raw = nrdn.encode("utf-8")
    if len(raw) > MAX_KEY:
        raw = b"#" + hashlib.sha256(raw).digest()
    return pack_u64(parent_id) + raw


class StoreError(Exception):
    """The store could not do what was asked (corruption, full disk, misuse)."""


class Store:
    """An open LMDB environment with the directory's databases.

    ``indexes`` maps attribute keys to the index kinds configured for them
    (``{"uid": {"eq"}, "cn": {"eq", "sub"}}``). ``index_keys`` computes index keys for
    an attribute's values; the directory supplies it (it knows the matching rules).
    Open one Store per process, after any fork.
    """

    def __init__(
        self,
        path: str,
        *,
        map_size: int = 64 << 30,
        sync: bool = True,
        max_readers: int = 512,
        indexes: dict[str, set[str]] | None = None,
        readonly: bool = False,
    ) -> None:
        os.makedirs(path, exist_ok=True)
        self.path = path
        self.env = lmdb.open(
            path,
            map_size=map_size,
            max_dbs=256,
            max_readers=max_readers,
            sync=sync,
            metasync=sync,
            readonly=readonly,
            subdir=True,
            lock=True,
            max_spare_txns=16,
        )
        self.env.reader_check()
        self.readonly = readonly
        # called (with no argument, in the committing thread) after each write transaction commits
        self.after_commit: list[Callable[[], None]] = []
        self.indexes = {k: set(v) for k, v in (indexes or {}).items()}
        self.db_entries = self._db(b"entries")
        self.db_dn2id = self._db(b"dn2id")
        self.db_children = self._db(b"children", dupsort=True, dupfixed=True)
        self.db_usn = self._db(b"usn")
        self.db_meta = self._db(b"meta")
        # entryUUID (16 bytes) -> id, tombstones included: replication names entries by UUID
        self.db_uuid = self._db(b"uuid")
        # (LMDB transaction id, meta values read in that snapshot): every read transaction
        # reads the generations (schema, names, rules, policies), and a snapshot's never change
        self._meta_memo: tuple[int, dict[str, bytes | None], dict[str, int]] = (-1, {}, {})
        self.db_idx: dict[str, Any] = {}
        for attr in self.indexes:
            self.db_idx[attr] = self._db(b"idx." + attr.encode(), dupsort=True, dupfixed=True)

    def _db(self, name: bytes, **kw: Any) -> Any:
        if self.readonly:
            with self.env.begin() as txn:
                return self.env.open_db(name, txn=txn, create=False, **kw)
        return self.env.open_db(name, **kw)

    def close(self) -> None:
        self.env.close()

    # ------------------------------------------------------------ transactions

    def read(self) -> "Reading":
        """A read transaction (a consistent snapshot) for a ``with`` block; ended when the block ends."""
        return Reading(self)

    @contextmanager
    def write(self) -> Iterator["WriteTxn"]:
        """The write transaction: commits when the block ends normally, aborts on error.

        Only one exists at a time across all processes (LMDB's writer lock).
        """
        try:
            txn = self.env.begin(write=True)
        except lmdb.MapFullError as exc:  # pragma: no cover - resize path
            raise StoreError("database map is full; raise vmdir.map_size") from exc
        try:
            w = WriteTxn(self, txn)
            yield w
        except BaseException:
            txn.abort()
            raise
        else:
            txn.commit()
            for hook in self.after_commit:
                hook()

    def copy_to(self, path: str) -> None:
        """Write a consistent, compacted copy of the environment to directory ``path``."""
        os.makedirs(path, exist_ok=True)
        self.env.copy(path, compact=True)

    def stat(self) -> dict[str, int]:
        """map_size, last_txnid, records (entry records, tombstones included), used_bytes
        (the pages of the database file in use)."""
        info = self.env.info()
        with self.env.begin() as txn:
            entries = txn.stat(self.db_entries)["entries"]
        return {"map_size": info["map_size"], "last_txnid": info["last_txnid"], "records": entries,
                "used_bytes": (info["last_pgno"] + 1) * self.env.stat()["psize"]}


class Reading:
    """``with store.read() as r``: a read transaction. A class rather than a generator with
    contextlib, whose entering and leaving run Python-level code on every operation."""

    __slots__ = ("store", "txn")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.txn: Any = None

    def __enter__(self) -> "ReadTxn":
        store = self.store
        txn = self.txn = store.env.begin(buffers=False)
        # the meta values of this snapshot, shared by the reads of it (in this process)
        tid = txn.id()
        memo_id, memo, ints = store._meta_memo
        got: dict[str, bytes | None] | None = memo
        got_ints: dict[str, int] | None = ints
        if tid > memo_id:
            got, got_ints = {}, {}
            store._meta_memo = (tid, got, got_ints)
        elif tid < memo_id:  # an older snapshot than the one remembered
            got = got_ints = None
        return ReadTxn(store, txn, got, got_ints)

    def __exit__(self, *exc: object) -> None:
        self.txn.abort()  # a read transaction changes nothing: ending it is all


class ReadTxn:
    """Reads over one LMDB transaction. Methods return plain values."""

    __slots__ = ("store", "txn", "memo", "memo_ints")

    def __init__(self, store: Store, txn: Any, memo: dict[str, bytes | None] | None = None,
                 memo_ints: dict[str, int] | None = None) -> None:
        self.store = store
        self.txn = txn
        self.memo = memo  # meta values of this snapshot (Store.read); None in a write transaction
        self.memo_ints = memo_ints  # and those read as integers (the generation counters, every operation)

    # meta
    def meta(self, name: str) -> bytes | None:
        memo = self.memo
        if memo is None:
            return self.txn.get(name.encode(), db=self.store.db_meta)
        if name in memo:
            return memo[name]
        v = memo[name] = self.txn.get(name.encode(), db=self.store.db_meta)
        return v

    def meta_int(self, name: str, default: int = 0) -> int:
        ints = self.memo_ints
        if ints is not None:
            n = ints.get(name)
            if n is not None:
                return n
        v = self.meta(name)
        n = unpack_u64(v) if v is not None else default
        if ints is not None and v is not None:  # (a default is the caller's, not the snapshot's)
            ints[name] = n
        return n

    def meta_prefix(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        p = prefix.encode()
        cur = self.txn.cursor(db=self.store.db_meta)
        if not cur.set_range(p):
            return
        for k, v in cur:
            if not k.startswith(p):
                break
            yield k.decode(), v

    # entries
    def get(self, entry_id: int) -> StoredEntry | None:
        data = self.txn.get(pack_u64(entry_id), db=self.store.db_entries)
        if data is None:
            return None
        return decode_entry(entry_id, data)

    def get_some(self, entry_id: int, names: frozenset[str]) -> StoredEntry | None:
        """The entry with only the attributes ``names`` and no metadata (``decode_some``): to
        read, never to write back."""
        data = self.txn.get(pack_u64(entry_id), db=self.store.db_entries)
        if data is None:
            return None
        return decode_some(entry_id, data, names)

    def uuid_id(self, entry_uuid: bytes) -> int | None:
        """The id of the entry (live or tombstone) whose entryUUID is ``entry_uuid`` (16 bytes)."""
        v = self.txn.get(entry_uuid, db=self.store.db_uuid)
        return unpack_u64(v) if v is not None else None

    def raw(self, entry_id: int) -> bytes | None:
        return self.txn.get(pack_u64(entry_id), db=self.store.db_entries)

    def lookup(self, parent_id: int, nrdn: str) -> int | None:
        v = self.txn.get(dn2id_key(parent_id, nrdn), db=self.store.db_dn2id)
        return unpack_u64(v) if v is not None else None

    def roots(self) -> list[tuple[str, int]]:
        """Naming contexts: (normalised DN, id)."""
        out = []
        cur = self.txn.cursor(db=self.store.db_dn2id)
        prefix = pack_u64(0)
        if cur.set_range(prefix):
            for k, v in cur:
                if not k.startswith(prefix):
                    break
                out.append((bytes(k[8:]).decode("utf-8"), unpack_u64(v)))
        return out

    def children(self, parent_id: int) -> list[int]:
        cur = self.txn.cursor(db=self.store.db_children)
        if not cur.set_key(pack_u64(parent_id)):
            return []
        return [unpack_u64(v) for v in cur.iternext_dup()]

    def count_children(self, parent_id: int) -> int:
        cur = self.txn.cursor(db=self.store.db_children)
        if not cur.set_key(pack_u64(parent_id)):
            return 0
        return cur.count()

    def index_ids(self, attr: str, key: bytes) -> list[int] | None:
        """Ids under one index key; None when ``attr`` has no index."""
        db = self.store.db_idx.get(attr)
        if db is None:
            return None
        cur = self.txn.cursor(db=db)
        if not cur.set_key(cap_key(key)):
            return []
        return [unpack_u64(v) for v in cur.iternext_dup()]

    def index_count(self, attr: str, key: bytes) -> int:
        db = self.store.db_idx.get(attr)
        if db is None:
            return -1
        cur = self.txn.cursor(db=db)
        if not cur.set_key(cap_key(key)):
            return 0
        return cur.count()

    def changes_since(self, usn: int) -> Iterator[tuple[int, int]]:
        """(local usn, entry id) of the latest change of each entry, above ``usn``, in order."""
        cur = self.txn.cursor(db=self.store.db_usn)
        if not cur.set_range(pack_u64(usn + 1)):
            return
        for k, v in cur:
            yield unpack_u64(k), unpack_u64(v)


class WriteTxn(ReadTxn):
    """The one write transaction. Every mutation of the DIT goes through ``put``/``remove``."""

    __slots__ = ()

    def set_meta(self, name: str, value: bytes) -> None:
        self.txn.put(name.encode(), value, db=self.store.db_meta)

    def set_meta_int(self, name: str, value: int) -> None:
        self.txn.put(name.encode(), pack_u64(value), db=self.store.db_meta)

    def del_meta(self, name: str) -> None:
        self.txn.delete(name.encode(), db=self.store.db_meta)

    def next_counter(self, name: str) -> int:
        """Allocate the next value of counter ``name`` (starting at 1)."""
        v = self.meta_int(name, 0) + 1
        self.set_meta_int(name, v)
        return v

    def current_usn(self) -> int:
        return self.meta_int("next_usn", 0)

    def alloc_usn(self) -> int:
        return self.next_counter("next_usn")

    def alloc_id(self) -> int:
        return self.next_counter("next_id")

    def reserve_ids(self, n: int) -> int:
        """Reserve ``n`` entry ids for later adds; returns the first (they are consecutive)."""
        first = self.meta_int("next_id", 0) + 1
        self.set_meta_int("next_id", first + n - 1)
        return first

    def add_index_rows(self, attr: str, keys: list[bytes], ids: list[bytes]) -> None:
        """Add the rows (``keys[i]``: stored index key, ``ids[i]``: u64 id) to index ``attr``,
        sorted by key then id (the bulk path: much faster than one put per row)."""
        cur = self.txn.cursor(db=self.store.db_idx[attr])
        consumed, added = cur.putmulti(zip(keys, ids), dupdata=True, append=True)
        if added < consumed:
            cur.putmulti(zip(keys, ids), dupdata=True)

    def nested(self) -> Any:
        """A child transaction (``with w.nested() as child:``): commits into this one."""
        return _Nested(self)

    def put(
        self,
        new: StoredEntry,
        old: StoredEntry | None,
        *,
        nrdn: str,
        old_nrdn: str | None,
        usn: int,
        old_usn: int | None,
        index_keys: IndexKeys,
    ) -> None:
        """Write ``new`` (replacing ``old`` if given) with its dn2id, children, index and usn rows.

        ``nrdn`` is the normalised RDN under ``new.parent_id`` (the normalised DN for a
        naming context). A tombstone (FLAG_DELETED) is kept in ``entries`` and the usn
        log but removed from dn2id, children and the indexes.
        """
        s = self.store
        t = self.txn
        key = pack_u64(new.id)
        live_new = not (new.flags & FLAG_DELETED)
        live_old = old is not None and not (old.flags & FLAG_DELETED)
        old_parent = old.parent_id if old is not None else 0
        old_attrs = old.attrs if old is not None else {}
        # dn2id / children
        if live_old and (not live_new or old_parent != new.parent_id or old_nrdn != nrdn):
            t.delete(dn2id_key(old_parent, old_nrdn or ""), db=s.db_dn2id)
            t.delete(pack_u64(old_parent), key, db=s.db_children)
        if live_new and (not live_old or old_parent != new.parent_id or old_nrdn != nrdn):
            if not t.put(dn2id_key(new.parent_id, nrdn), key, db=s.db_dn2id, overwrite=False):
                raise StoreError("dn2id key already present")
            if old is None:  # a new entry's id is the highest so far among its parent's children
                _put_last(t, pack_u64(new.parent_id), key, s.db_children)
            else:
                t.put(pack_u64(new.parent_id), key, db=s.db_children, dupdata=True)
        # indexes
        old_opts = live_old and any(";" in k for k in old_attrs)
        new_opts = live_new and any(";" in k for k in new.attrs)
        for attr, idb in s.db_idx.items():
            old_vals = _values(old_attrs, attr, old_opts) if live_old else []
            new_vals = _values(new.attrs, attr, new_opts) if live_new else []
            if old_vals == new_vals:
                continue  # unchanged values keep their index keys (most attributes of a modify)
            before = index_keys(attr, old_vals) if old_vals else set()
            after = index_keys(attr, new_vals) if new_vals else set()
            if before == after:
                continue
            for k in before - after:
                t.delete(cap_key(k), key, db=idb)
            for k in after - before:
                t.put(cap_key(k), key, db=idb, dupdata=True)
        if old is None:
            t.put(entry_uuid(new), key, db=s.db_uuid)
        # usn log
        if old_usn is not None:
            t.delete(pack_u64(old_usn), db=s.db_usn)
        _put_last(t, pack_u64(usn), key, s.db_usn)  # a new USN: the highest so far
        if old is None:  # a new entry's id: the highest so far
            _put_last(t, key, encode_entry(new), s.db_entries)
        else:
            t.put(key, encode_entry(new), db=s.db_entries)

    def remove(self, e: StoredEntry, *, usn: int) -> None:
        """Forget the tombstone ``e`` entirely (purge): its record, usn row and UUID row."""
        if not e.deleted:
            raise StoreError("only a tombstone can be purged")
        t, s = self.txn, self.store
        t.delete(pack_u64(usn), db=s.db_usn)
        t.delete(entry_uuid(e), db=s.db_uuid)
        t.delete(pack_u64(e.id), db=s.db_entries)

    def rebuild_uuids(self) -> int:
        """(Re)build the UUID table from the entries (databases made before it existed)."""
        s = self.store
        self.txn.drop(s.db_uuid, delete=False)
        n = 0
        for k, v in self.txn.cursor(db=s.db_entries):
            self.txn.put(entry_uuid(decode_entry(unpack_u64(k), v)), bytes(k), db=s.db_uuid)
            n += 1
        return n

    def rebuild_index(self, attr: str, index_keys: IndexKeys) -> int:
        """(Re)build index ``attr`` from the entries; returns the number of entries indexed."""
        s = self.store
        idb = s.db_idx[attr]
        self.txn.drop(idb, delete=False)
        n = 0
        cur = self.txn.cursor(db=s.db_entries)
        for k, v in cur:
            e = decode_entry(unpack_u64(k), v)
            if e.flags & FLAG_DELETED:
                continue
            vals = _values(e.attrs, attr, any(";" in k for k in e.attrs))
            if vals:
                for ik in index_keys(attr, vals):
                    self.txn.put(cap_key(ik), bytes(k), db=idb, dupdata=True)
                n += 1
        return n


def _put_last(t: Any, key: bytes, value: bytes, db: Any) -> None:
    """Put a row that sorts last (a new id, a new USN) as an append: LMDB then needs no
    search and fills pages instead of splitting them in half. Append refuses a row that
    does not sort last (an id an import reserved before a server added one beside it):
    that one is put the ordinary way."""
    if not t.put(key, value, db=db, append=True):
        t.put(key, value, db=db)


def entry_uuid(e: StoredEntry) -> bytes:
    """The 16 bytes of ``e``'s entryUUID. Raises StoreError if it has none."""
    try:
        v = e.attrs["entryuuid"][0].decode("ascii")
        if len(v) == 36:  # the usual 8-4-4-4-12 form: about 3x faster than uuid.UUID
            b = bytes.fromhex(v.replace("-", ""))
            if len(b) == 16 and v[8] == v[13] == v[18] == v[23] == "-":
                return b
        return uuid.UUID(v).bytes
    except (KeyError, IndexError, ValueError, UnicodeDecodeError):
        raise StoreError(f"entry {e.id} has no valid entryUUID") from None


def _values(attrs: dict[str, list[bytes]], attr: str, with_options: bool) -> list[bytes]:
    """Values of ``attr``, plus those stored with options (``cn;lang-en``) when there are any."""
    vals = attrs.get(attr) or []
    if not with_options:
        return vals
    prefix = attr + ";"
    return vals + [v for k, vv in attrs.items() if k.startswith(prefix) for v in vv]


class _Nested:
    def __init__(self, parent: WriteTxn) -> None:
        self.parent = parent
        self.txn: Any = None

    def __enter__(self) -> WriteTxn:
        self.txn = self.parent.store.env.begin(write=True, parent=self.parent.txn)
        return WriteTxn(self.parent.store, self.txn)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.txn.commit()
        else:
            self.txn.abort()
