"""The supplier side of the pull: one page of changes for a consumer (layer 3, synchronous).

Reads the change log (the ``usn`` database: the latest change of each entry, in USN
order) above the consumer's watermark, leaves out entries the consumer's up-to-dateness
vector says it already has, and sends each remaining entry with its metadata: every
attribute's, and of values with their own states only those the consumer lacks (the
consumer merges attribute by attribute and value by value, so sending more than it lacks
is safe).
An entry whose parent changed later than it (so comes later in the log) is preceded by
that parent, so a consumer never receives a child before its parent exists there.
"""
from __future__ import annotations

from vmdir.directory import Directory, Session
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError, ResultCode
from vmdir.store import ReadTxn, StoredEntry, ValueMeta, encode_body, entry_uuid

from replication._merge import LOCAL
from replication._state import read_purged, read_utdv
from replication._wire import REPL_ATTR, PullRequest, PullResponse, Record, Vector, encode_record

MAX_PAGE_ENTRIES = 500
MAX_PAGE_BYTES = 4 << 20
MAX_PAGE_SCAN = 10_000  # changes one page looks at, at most (those the consumer has are skipped)
_ANCESTOR = frozenset({"usnchanged", "entryuuid"})  # what a page reads of an entry's ancestors


def may_pull(s: Session) -> bool:
    """Whether the session may read changes: the replication role or a forest administrator."""
    return s.is_admin or "replication" in s.roles


def pull_page(d: Directory, s: Session, req: PullRequest,
              max_scan: int = MAX_PAGE_SCAN) -> tuple[list[m.SearchResultEntry], PullResponse]:
    """The entries of one page and the response control value for ``req``: at most
    ``max_scan`` changes looked at (the page then says ``more``, possibly with no entry).

    Raises LDAPError: insufficientAccessRights unless ``may_pull(s)``; confidentialityRequired
    on a connection that is not encrypted (pages hold password hashes).
    """
    if not may_pull(s):
        raise LDAPError(ResultCode.insufficientAccessRights, "replication needs the replication role")
    if not s.secure:
        raise LDAPError(ResultCode.confidentialityRequired, "replication needs TLS (StartTLS or LDAPS)")
    limit = max(1, min(req.max_entries or MAX_PAGE_ENTRIES, MAX_PAGE_ENTRIES))
    out: list[m.SearchResultEntry] = []
    sent: set[int] = set()
    ancestors: dict[int, StoredEntry | None] = {}  # those read for this page (usnChanged and entryUUID only)
    current: set[int] = set()  # ancestors that changed later but the consumer has (not decoded again)
    size = 0
    with d.store.read() as r:
        d.dit.begin(r)
        highest = r.meta_int("next_usn")
        utdv = read_utdv(r)
        utdv[d.invocation] = highest
        purged = read_purged(r)
        wm = req.watermark
        more = False
        # the consumer has every change it originated itself (in its current invocation),
        # however old the vector it sent: changes it made after sending it are not echoed back
        have = dict(req.utdv)
        have[req.consumer] = 1 << 63
        scanned = 0
        for usn, eid in r.changes_since(req.watermark):
            if len(out) >= limit or size >= MAX_PAGE_BYTES or scanned >= max_scan:
                more = True
                break
            scanned += 1
            wm = usn
            e = r.get(eid)
            if e is None or eid in sent or not _lacks(e, have):
                continue
            for x in _unsent_ancestors(r, e, usn, have, sent, ancestors, current) + [e]:
                entry = _entry(d, r, x, usn, ancestors, have)
                size += len(entry.attributes[0][1][0])
                out.append(entry)
                sent.add(x.id)
        if not more:
            wm = max(wm, highest)
    return out, PullResponse(d.invocation, wm, highest, more, utdv, purged)


def _unseen(invocation: bytes, orig_usn: int, utdv: Vector) -> bool:
    """Whether a state made at ``orig_usn`` by ``invocation`` is newer than ``utdv`` covers."""
    return orig_usn > utdv.get(invocation, 0)


def _lacks(e: StoredEntry, utdv: Vector) -> bool:
    """Whether some attribute or value state of ``e`` is newer than ``utdv`` covers."""
    for a, meta in e.meta.items():
        if a not in LOCAL and _unseen(meta[2], meta[4], utdv):
            return True
    return any(_unseen(v.invocation, v.orig_usn, utdv) for vals in e.vmeta.values() for v in vals)


def _ancestor(r: ReadTxn, ancestors: dict[int, StoredEntry | None], pid: int) -> StoredEntry | None:
    """Entry ``pid`` with its usnChanged and entryUUID only, read once per page."""
    if pid not in ancestors:
        ancestors[pid] = r.get_some(pid, _ANCESTOR)
    return ancestors[pid]


def _unsent_ancestors(r: ReadTxn, e: StoredEntry, usn: int, have: Vector, sent: set[int],
                      ancestors: dict[int, StoredEntry | None], current: set[int]) -> list[StoredEntry]:
    """Ancestors of ``e`` that come later in the change log and are not sent yet, top first.
    Each ancestor is read partly (``_ancestor``), and decoded whole only if it changed
    later, once: one the consumer has goes into ``current``."""
    chain: list[StoredEntry] = []
    pid = e.parent_id
    while pid and pid not in sent:
        p = _ancestor(r, ancestors, pid)
        if p is None:
            break
        if pid not in current and int((p.attrs.get("usnchanged") or [b"0"])[0]) > usn:
            whole = r.get(pid)
            if whole is not None and _lacks(whole, have):
                chain.append(whole)
            else:
                current.add(pid)
        pid = p.parent_id
    return chain[::-1]


def _body(e: StoredEntry, have: Vector) -> bytes:
    """``e``'s attributes and their states for a consumer with vector ``have``. Of an
    attribute with per-value states (``member``...) only the values' states it lacks go, and
    no value list (the consumer makes it from the states): a member added to a group of
    thousands sends that member, not the group. Every attribute-level state goes, so an
    entry the consumer lacks arrives whole (all its values' states are newer than its vector
    covers then)."""
    vmeta = e.vmeta
    if not vmeta:
        return encode_body(e, LOCAL)
    attrs = {a: vs for a, vs in e.attrs.items() if a not in vmeta}
    lacking: dict[str, list[ValueMeta]] = {}
    for a, states in vmeta.items():
        new = [v for v in states if _unseen(v.invocation, v.orig_usn, have)]
        if new:
            lacking[a] = new
        vals = e.attrs.get(a)  # kept when its live values are not all stood for by their states
        if vals and sum(1 for v in states if not v.deleted) != len(vals):
            attrs[a] = vals
    return encode_body(StoredEntry(e.id, e.parent_id, e.rdn, attrs, e.meta, lacking), LOCAL)


def _entry(d: Directory, r: ReadTxn, e: StoredEntry, position: int,
           ancestors: dict[int, StoredEntry | None], have: Vector) -> m.SearchResultEntry:
    """The page's record of ``e``, for a consumer with vector ``have``."""
    parent = _ancestor(r, ancestors, e.parent_id) if e.parent_id else None
    rec = Record(entry_uuid(e), entry_uuid(parent) if parent is not None else None, e.rdn, position,
                 _body(e, have))
    dn = d.dit.dn_of(r, e.id, e.parent_id, e.rdn)[0]
    return m.SearchResultEntry(dn, ((REPL_ATTR, (encode_record(rec),)),))
