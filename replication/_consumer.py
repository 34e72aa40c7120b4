"""The consumer side of the pull: apply a page of a supplier's changes (layer 3, synchronous).

One LMDB transaction per page: each entry is merged in a nested transaction; the first
one that fails stops the page, and the watermark for that supplier advances only to just
before it (the next pass retries it; nothing is skipped). The up-to-dateness vector
advances only when a pass has reached the supplier's highest USN as of the start of that
pass, and then to the supplier's vector of that moment (DESIGN section 4).

Names: an entry goes where its winning name says. Its parent missing (deleted meanwhile):
it moves to ``cn=LostAndFound,cn=System``. Two entries with one name (added on two nodes
at once): the one whose name state wins keeps it, the other is renamed ``<rdn> CNF:<uuid>``
(a change of its own, so every node ends with the same names).
"""
from __future__ import annotations

import uuid as uuidmod
from collections.abc import Callable
from dataclasses import dataclass

from vmdir.directory import Directory, Outcome, writes_paused
from vmdir.model import dn as dnmod
from vmdir.store import FLAG_DELETED, StoredEntry, StoreError, WriteTxn, decode_body, entry_uuid

from replication._merge import DELETED_ATTR, NAME, State, merge, wins
from replication._state import CATCHING_UP, raise_utdv, resume_writes, set_watermark
from replication._wire import PullResponse, Record

LOST_AND_FOUND_DN = "cn=LostAndFound,cn=System"
CONFLICT_MARK = " CNF:"
CONFLICT_ATTR = "lightwaveconflict"


class ApplyError(Exception):
    """A replicated change could not be applied (the message says which and why)."""


@dataclass(frozen=True, slots=True)
class PageResult:
    applied: int  # entries that changed something here
    seen: int  # entries processed (changed or already up to date)
    watermark: int  # the watermark for the supplier after this page
    error: str | None  # why the page stopped early (None: it was applied whole)
    caught_up: bool  # this page completed the pass: the vector advanced


def apply_page(d: Directory, records: list[Record], resp: PullResponse, pass_start: PullResponse,
               then: Callable[[PageResult, WriteTxn], None] | None = None) -> PageResult:
    """Apply ``records`` (one page, answered with ``resp``) in one transaction.

    ``pass_start`` is the response to the first page of this pass (its highest USN and
    vector are the ones the pass may advance the vector to). ``then`` is called with the
    outcome in the same transaction (to record it). Raises StoreError if the transaction
    itself fails (nothing of the page is then applied).
    """
    result: list[PageResult] = []

    def op(w: WriteTxn) -> Outcome:
        applied = seen = 0
        error = None
        wm = resp.watermark
        for rec in records:
            try:
                with w.nested() as child:
                    changed = apply_record(d, child, rec)
            except (ApplyError, StoreError, ValueError, KeyError, TypeError) as exc:
                d.dit.forget()  # names it cached may be of ids its undone transaction allocated
                error = f"entry {uuidmod.UUID(bytes=rec.uuid)} ({rec.rdn}): {exc}"
                wm = rec.position - 1
                break
            seen += 1
            applied += changed
        set_watermark(w, resp.supplier, wm)
        caught_up = error is None and wm >= pass_start.highest_usn
        if caught_up:
            raise_utdv(w, pass_start.utdv, d.invocation)
            if writes_paused(w) in CATCHING_UP:  # up to date again (restored, long offline): it may take writes
                resume_writes(w)
        result.append(PageResult(applied, seen, wm, error, caught_up))
        if then is not None:
            then(result[-1], w)
        return Outcome()

    out = d.run_writes([op])[0]
    if isinstance(out, BaseException):
        raise StoreError(f"applying a page of changes failed: {out}") from out
    return result[0]


def apply_record(d: Directory, w: WriteTxn, rec: Record) -> bool:
    """Merge one replicated entry into the store. Returns whether anything changed.

    Raises ApplyError (or StoreError) if it cannot be applied; the caller's nested
    transaction then leaves nothing of it.
    """
    attrs, meta, vmeta = decode_body(rec.body)
    eid = w.uuid_id(rec.uuid)
    local = w.get(eid) if eid is not None else None
    m = merge(local, State(attrs, meta, vmeta, rec.parent_uuid, rec.rdn), d.value_key)
    if not m.changed:
        return False
    usn = w.alloc_usn()
    e = m.entry
    e.id = eid if eid is not None else w.alloc_id()
    for a in m.attrs:
        e.meta[a] = (usn,) + e.meta[a][1:]  # type: ignore[assignment]
    for v in m.values:
        v.local_usn = usn
    e.flags = FLAG_DELETED if e.attrs.get(DELETED_ATTR) else 0
    if m.name:
        _place(d, w, e, rec, usn)
    if not e.deleted:
        _settle_name(d, w, e, rec.uuid, usn)
    d.store_replica(w, e, local, usn)
    if e.deleted and (local is None or not local.deleted):
        _rescue_children(d, w, e)
    return True


def _place(d: Directory, w: WriteTxn, e: StoredEntry, rec: Record, usn: int) -> None:
    """Put ``e`` where its (winning, incoming) name says."""
    e.rdn = rec.rdn
    if rec.parent_uuid is None:
        e.parent_id = 0
        return
    pid = w.uuid_id(rec.parent_uuid)
    parent = w.get_some(pid, frozenset()) if pid is not None else None  # its id and flags: nothing decoded
    if parent is None:
        raise ApplyError(f"its parent {uuidmod.UUID(bytes=rec.parent_uuid)} has not been replicated here")
    if parent.deleted and not e.deleted:
        # added or moved under an entry deleted meanwhile: keep it, in lost and found
        e.parent_id = _lost_and_found(d, w)
        d.stamp(e, name_keys(d, e), usn)
        return
    e.parent_id = parent.id


def _lost_and_found(d: Directory, w: WriteTxn) -> int:
    d.dit.begin(w)
    lf = d.dit.id_of(w, LOST_AND_FOUND_DN)
    if lf is None:
        raise ApplyError(f"{LOST_AND_FOUND_DN} is missing")
    return lf


def _settle_name(d: Directory, w: WriteTxn, e: StoredEntry, e_uuid: bytes, usn: int) -> None:
    """If another live entry holds ``e``'s name, the one whose name state loses gets a
    conflict name and ``lightwaveConflict`` (the DN both had), so that ``lightwave repl
    conflicts`` lists it. ``usn`` is the local USN ``e`` is being written at."""
    other_id = w.lookup(e.parent_id, d.nrdn(e))
    if other_id is None or other_id == e.id:
        return
    other = w.get(other_id)
    if other is None:
        return
    pdn = d.dit.dn_of(w, e.parent_id)[0] if e.parent_id else ""
    both = f"{e.rdn},{pdn}".encode() if pdn else e.rdn.encode()
    if wins(e.meta.get(NAME) or (0, 0, b"", 0, 0), other.meta.get(NAME)):
        renamed = other.copy()
        renamed.rdn = conflict_rdn(other.rdn, entry_uuid(other))
        renamed.attrs[CONFLICT_ATTR] = [both]
        other_usn = w.alloc_usn()
        d.stamp(renamed, name_keys(d, renamed) | {CONFLICT_ATTR}, other_usn)
        d.store_replica(w, renamed, other, other_usn)
    else:
        e.rdn = conflict_rdn(e.rdn, e_uuid)
        e.attrs[CONFLICT_ATTR] = [both]
        d.stamp(e, name_keys(d, e) | {CONFLICT_ATTR}, usn)  # a rename made here: stamped, so it replicates


def _rescue_children(d: Directory, w: WriteTxn, parent: StoredEntry) -> None:
    """Live children of a just-deleted entry (added elsewhere meanwhile) move to lost and found."""
    for cid in w.children(parent.id):
        child = w.get(cid)
        if child is None or child.deleted:
            continue
        moved = child.copy()
        moved.parent_id = _lost_and_found(d, w)
        usn = w.alloc_usn()
        d.stamp(moved, name_keys(d, moved), usn)
        _settle_name(d, w, moved, entry_uuid(moved), usn)
        d.store_replica(w, moved, child, usn)


def name_keys(d: Directory, e: StoredEntry) -> set[str]:
    """The metadata keys a change of ``e``'s name stamps: the name and its naming
    attributes, as one unit (stamped apart, the name could come from one write and the
    values it names from another)."""
    return {NAME} | {t for t, _ in d.dit.rdn_avas(e.rdn)}


def conflict_rdn(rdn: str, entry_uuid_bytes: bytes) -> str:
    """``rdn`` with its first value marked as a naming conflict: ``cn=x`` -> ``cn=x CNF:<uuid>``."""
    avas = list(dnmod.parse_dn(rdn)[0])
    t, v = avas[0]
    avas[0] = (t, f"{v}{CONFLICT_MARK}{uuidmod.UUID(bytes=entry_uuid_bytes)}")
    return dnmod.format_rdn(avas)


__all__ = ["LOST_AND_FOUND_DN", "CONFLICT_MARK", "CONFLICT_ATTR", "ApplyError", "PageResult", "apply_page", "apply_record",
           "conflict_rdn"]
