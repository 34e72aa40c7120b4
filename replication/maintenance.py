"""A node's replication housekeeping (layer 3, synchronous): purging tombstones past their
lifetime, marking a restored database, and keeping the node's own entry current.

Tombstones: a deleted entry stays as a tombstone, and a value removed from a per-value
attribute (``member``) as a value tombstone, so that the delete reaches every node and
beats concurrent changes. Once the delete is older than the tombstone lifetime (by its
originating time, so every node purges the same tombstones at about the same moment) the
tombstone is forgotten. The highest originating USN purged per originator is kept
(``replication._state``): a node whose vector is below it was out of touch for longer than
the lifetime and is refused (``Puller._check_stale``), because it may still hold entries
whose deletes can no longer reach it.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vmdir.directory import Directory, Outcome, writes_paused
from vmdir.store import Store, StoredEntry, StoreError, WriteTxn

from replication._partner import fingerprint
from replication._merge import DELETED_ATTR, LOCAL
from replication._state import (
    CATCHING_UP, OUT_OF_TOUCH, last_contact, mark_restored, pause_writes, raise_purged, resume_writes,
)
from replication._wire import Vector
from replication.topology import Setting, agreements, live_children, node_dn, published_changes, set_values

DEFAULT_TOMBSTONE_LIFETIME = 60 * 86400  # seconds (60 days); configurable per node
PURGE_BATCH = 200  # tombstones per write transaction
SERVER_ID_ATTR = "lightwaveserverid"


@dataclass(slots=True)
class Purged:
    entries: int = 0
    values: int = 0


def _delete_time_ms(e: StoredEntry) -> int:
    """When ``e`` (a tombstone) was deleted, by the originating time of its deletion."""
    meta = e.meta.get(DELETED_ATTR)
    return meta[3] if meta is not None else max((x[3] for x in e.meta.values()), default=0)


def _expired_values(e: StoredEntry, cutoff_ms: int) -> bool:
    return any(v.deleted and v.time_ms < cutoff_ms for vs in e.vmeta.values() for v in vs)


def _raise(into: Vector, states: Iterable[tuple[bytes, int]]) -> None:
    """Raise ``into`` to the (originating invocation, originating USN) of ``states``."""
    for inv, usn in states:
        if usn > into.get(inv, 0):
            into[inv] = usn


def _states(e: StoredEntry) -> Iterator[tuple[bytes, int]]:
    """(originating invocation, originating USN) of every attribute and value state of ``e``."""
    yield from ((meta[2], meta[4]) for a, meta in e.meta.items() if a not in LOCAL)
    yield from ((v.invocation, v.orig_usn) for vs in e.vmeta.values() for v in vs)


def purge_tombstones(d: Directory, lifetime: float, *, now: float | None = None, lock: Any = None) -> Purged:
    """Forget entry and value tombstones whose delete is older than ``lifetime`` seconds.

    Reads the change log once, then purges in write transactions of PURGE_BATCH entries
    (each re-checked there, since it may have changed in between). ``lock`` is held around
    each write (the replication process's pullers share one). Raises StoreError.
    """
    cutoff_ms = int(((d.clock() if now is None else now) - lifetime) * 1000)
    candidates = []
    with d.store.read() as r:
        for _, eid in r.changes_since(0):
            e = r.get(eid)
            if e is not None and ((e.deleted and _delete_time_ms(e) < cutoff_ms) or _expired_values(e, cutoff_ms)):
                candidates.append(eid)
    done = Purged()
    for i in range(0, len(candidates), PURGE_BATCH):
        chunk = candidates[i:i + PURGE_BATCH]

        def op(w: WriteTxn, chunk: list[int] = chunk) -> Outcome:
            origins: Vector = {}
            for eid in chunk:
                e = w.get(eid)
                if e is None:
                    continue
                if e.deleted and _delete_time_ms(e) < cutoff_ms:
                    _raise(origins, _states(e))
                    w.remove(e, usn=int(e.attrs.get("usnchanged", [b"0"])[0]))
                    done.entries += 1
                elif _expired_values(e, cutoff_ms):
                    kept = e.copy()
                    for a, vs in e.vmeta.items():
                        gone = [v for v in vs if v.deleted and v.time_ms < cutoff_ms]
                        if gone:
                            _raise(origins, ((v.invocation, v.orig_usn) for v in gone))
                            done.values += len(gone)
                            kept.vmeta[a] = [v for v in kept.vmeta[a] if not (v.deleted and v.time_ms < cutoff_ms)]
                            if not kept.vmeta[a]:
                                del kept.vmeta[a]
                    d.store_housekeeping(w, kept, e)
            raise_purged(w, origins)
            return Outcome()

        if lock is not None:
            with lock:
                out = d.run_writes([op])[0]
        else:
            out = d.run_writes([op])[0]
        if isinstance(out, BaseException):
            raise StoreError(f"purging tombstones failed: {out}") from out
    return done


def mark_restored_store(store: Store, old_invocation: bytes, highest_usn: int) -> None:
    """After ``lightwave restore`` gave the database a new invocation id: see
    ``replication._state.mark_restored``."""
    with store.write() as w:
        mark_restored(w, old_invocation, highest_usn)


def pause_if_out_of_touch(d: Directory, name: str, lifetime: float, now: float,
                          log: Callable[[str], None] = lambda msg: None) -> bool:
    """At start, before serving: a node whose last successful pull is older than the
    tombstone lifetime may have missed deletes its partners have purged since. It takes no
    local writes until a pass from a partner catches up (and that pass finds it stale if it
    is: ``Puller._check_stale``), so that no write is acknowledged that the forest would
    refuse. Returns whether it paused writes."""
    with d.store.read() as r:
        if writes_paused(r) is not None:
            return False
        last = last_contact(r)
    if last is None or now - last <= lifetime or not agreements(d, name):
        return False
    with d.store.write() as w:
        pause_writes(w, OUT_OF_TOUCH)
    log(f"last replicated {now - last:,.0f} s ago, longer than the tombstone lifetime ({lifetime:g} s): "
        "local writes wait until a partner confirms this node is not stale")
    return True


def tend_local_node(d: Directory, name: str, url: str, log: Callable[[str], None] = lambda msg: None, *,
                    certificate: bytes | None = None) -> None:
    """What the replication process keeps true of this node at every look:

    - a restored node with no agreement to pull from takes writes again at once (there is
      no partner to catch up with);
    - once it may write, the node's entry gives its current invocation id (a restore
      changes it) and URL, and so do the agreements that pull from it (a start on other
      ports or with another --advertise-url changes it). Partners learn a new URL by
      replication, and from this node's pulls, which announce it (``replication._wire``);
    - the entry publishes ``certificate`` (the one this node serves with), which partners
      check it by (a partner that cannot pull from this node any more learns a new key when
      this node pulls from it: ``replication._wire``, the pull's ``certificate``).
    Raises StoreError or the LDAPError of a write that failed."""
    with d.store.read() as r:
        paused = writes_paused(r)
    if paused in CATCHING_UP and not agreements(d, name):
        paused = None
        with d.store.write() as w:
            resume_writes(w)
        log("no replication partner to catch up with: taking writes again")
    if paused is not None:
        return
    inv = str(uuid.UUID(bytes=d.invocation)).encode()
    want: list[Setting] = []
    with d.store.read() as r:
        d.dit.begin(r)
        nid = d.dit.id_of(r, node_dn(name))
        e = r.get(nid) if nid is not None else None
        if e is None:
            return
        renumber = _server_id_to_take(r, e)
        if renumber is None:
            want = _entry_changes(r, d, e, name, url, inv, certificate)
    if renumber is not None:
        _renumber(d, name, _server_id_of(e), renumber, log)
        return  # the rest at the next look
    if not want:
        return
    (out,) = d.run_writes([set_values(d, name, want)])
    if isinstance(out, BaseException):
        raise out
    for dn, attr, value in want:
        log(f"{dn} now gives {attr} " + (f"(SHA-256 fingerprint {fingerprint(value)})" if attr == "userCertificate"
                                          else value.decode()))


def _entry_changes(r: Any, d: Directory, e: StoredEntry, name: str, url: str, inv: bytes,
                   certificate: bytes | None) -> list[Setting]:
    """What to set so that the node's entry (and the agreements pulling from it) give its
    invocation id, URL and certificate."""
    want: list[Setting] = []
    if (e.attrs.get("lightwaveinvocationid") or [b""])[0].lower() != inv:
        want.append((node_dn(name), "lightwaveInvocationId", inv))
    return want + published_changes(r, d, e, url, certificate)


def _claim(e: StoredEntry) -> tuple[int, bytes]:
    """When and where a node's server id was set (originating time, then invocation id):
    the same on every node once the entries have replicated."""
    meta = e.meta.get(SERVER_ID_ATTR)
    return (meta[3], meta[2]) if meta is not None else (0, b"")


def _server_id_of(e: StoredEntry) -> int:
    try:
        return int((e.attrs.get(SERVER_ID_ATTR) or [b"0"])[0])
    except ValueError:
        return 0


def _server_id_to_take(r: Any, me: StoredEntry) -> int | None:
    """The server id this node must move to, or None. Two nodes that joined at the same time
    through different partners can be given the same id (each partner knew only the nodes
    it had replicated). Once each sees the other's entry, the later claim (``_claim``) gives
    its id up for the highest known plus one; a renumbering that collides again is settled
    the same way at a later look."""
    mine = _server_id_of(me)
    sids = []
    twin_first = False
    for other in live_children(r, me.parent_id):
        if other.id == me.id or SERVER_ID_ATTR not in other.attrs:
            continue
        sid = _server_id_of(other)
        sids.append(sid)
        if sid == mine and _claim(other) < _claim(me):
            twin_first = True
    return max(sids + [mine]) + 1 if twin_first else None


def _renumber(d: Directory, name: str, old: int, sid: int, log: Callable[[str], None]) -> None:
    """Give this node server id ``sid`` instead of ``old``: its entry and the store's meta in
    one transaction (the workers allocate POSIX numbers from the store's; see
    Directory._allocate_posix)."""
    entry = set_values(d, name, [(node_dn(name), "lightwaveServerId", str(sid).encode())])

    def op(w: WriteTxn) -> Outcome:
        out = entry(w)
        w.set_meta_int("server_id", sid)
        return out

    out = d.run_writes([op])[0]
    if isinstance(out, BaseException):
        raise out
    d.server_id = sid
    log(f"server id {old} was also given to a node that joined at the same time and claimed it first; "
        f"this node is now server id {sid} (its POSIX ids come from that id's range)")


__all__ = ["DEFAULT_TOMBSTONE_LIFETIME", "Purged", "purge_tombstones", "mark_restored_store", "tend_local_node",
           "pause_if_out_of_touch"]
