"""Group membership, nested groups included, computed from the ``member`` / ``uniqueMember``
equality indexes (memberOf is never stored, so a big group costs no write amplification)."""
from __future__ import annotations

from vmdir.directory._dit import DIT
from vmdir.store import KIND_EQ, FLAG_DELETED, ReadTxn, decode_wire

MEMBER_ATTRS = ("member", "uniquemember")
MAX_GROUPS = 10_000  # a bound on the walk, so a pathological nesting cannot run away


def groups_of(r: ReadTxn, dit: DIT, ndn: str) -> dict[str, int]:
    """Normalised DN -> id of every group ``ndn`` belongs to, directly or through nesting."""
    out: dict[str, int] = {}
    frontier = [ndn]
    while frontier and len(out) < MAX_GROUPS:
        nxt = []
        for dn in frontier:
            key = KIND_EQ + dn.encode()
            for attr in MEMBER_ATTRS:
                for gid in r.index_ids(attr, key) or ():
                    raw = r.raw(gid)
                    if raw is None:
                        continue
                    parent, rdn, flags, _, _ = decode_wire(raw)
                    if flags & FLAG_DELETED:
                        continue
                    gndn = dit.dn_of(r, gid, parent, rdn)[1]
                    if gndn not in out and gndn != ndn:
                        out[gndn] = gid
                        nxt.append(gndn)
        frontier = nxt
    return out


def member_ids(r: ReadTxn, dit: DIT, group_ndn: str) -> set[int]:
    """Ids of every entry that is a member of ``group_ndn``, through nested groups too."""
    out: set[int] = set()
    seen: set[str] = {group_ndn}
    frontier = [group_ndn]
    while frontier and len(seen) < MAX_GROUPS:
        nxt = []
        for g in frontier:
            gid = dit.id_of(r, g)
            if gid is None:
                continue
            ge = r.get(gid)
            if ge is None or ge.deleted:
                continue
            for v in (v for a in MEMBER_ATTRS for v in ge.attrs.get(a, ())):
                mdn = dit.ndn_or_none(v)
                if mdn is None:
                    continue
                mid = dit.id_of(r, mdn)
                if mid is None:
                    continue
                out.add(mid)
                if mdn not in seen:
                    seen.add(mdn)
                    nxt.append(mdn)
        frontier = nxt
    return out
