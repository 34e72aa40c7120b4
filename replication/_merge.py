"""The conflict rule, and the merge of a replicated entry state into the local one
(layer 1: pure functions on values, no I/O).

Every attribute (and every value of a per-value attribute such as ``member``) carries
``(local_usn, version, originating invocation, originating time, originating usn)``. Of two
states of the same attribute, the one with the higher ``version`` wins; then the later
originating time; then the higher originating invocation id; then the higher originating
USN (two changes of one node in the same millisecond). The winner of each attribute is
taken independently, so merging is commutative, associative and idempotent: every node
that has seen the same changes holds the same state, whatever order they came in.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vmdir.store import AttrMeta, StoredEntry, ValueMeta

NAME = "_name"  # the metadata key of the entry's name (vmdir.directory NAME_META)
LOCAL = frozenset({"usncreated", "usnchanged"})  # one node's own USNs: never replicated
DELETED_ATTR = "isdeleted"


def rank(m: AttrMeta) -> tuple[int, int, bytes, int]:
    """The conflict rule as a sort key: the greater state wins."""
    return (m[1], m[3], m[2], m[4])


def wins(a: AttrMeta, b: AttrMeta | None) -> bool:
    """Whether state ``a`` beats ``b`` (anything beats nothing)."""
    return b is None or rank(a) > rank(b)


@dataclass(slots=True)
class State:
    """A replicated entry state: its attributes with metadata, and its name."""

    attrs: dict[str, list[bytes]]
    meta: dict[str, AttrMeta]
    vmeta: dict[str, list[ValueMeta]]
    parent_uuid: bytes | None
    rdn: str


@dataclass(slots=True)
class Merged:
    """The result of ``merge``: the new local entry (``entry``, id and parent left to the
    caller) and what came from the incoming state."""

    entry: StoredEntry
    attrs: set[str] = field(default_factory=set)  # attributes whose incoming state won
    values: list[ValueMeta] = field(default_factory=list)  # incoming values that won
    name: bool = False  # the incoming name won: place the entry under parent_uuid / rdn

    @property
    def changed(self) -> bool:
        return bool(self.attrs or self.values)


def merge(local: StoredEntry | None, inc: State, value_key: Callable[[str, bytes], bytes]) -> Merged:
    """Merge ``inc`` into ``local`` (None: a new entry). ``local`` is not modified.

    Returns the merged entry; its metadata keeps the incoming states' local USNs, which the
    caller replaces by the USN it writes at (``Merged.attrs`` / ``Merged.values`` say which).
    """
    e = local.copy() if local is not None else StoredEntry(0, 0, inc.rdn, {})
    out = Merged(e, name=local is None)
    for a, im in inc.meta.items():
        if a in LOCAL or not wins(im, e.meta.get(a)):
            continue
        e.meta[a] = im
        out.attrs.add(a)
        if a == NAME:
            out.name = True
        elif a not in inc.vmeta and a not in e.vmeta:
            vals = inc.attrs.get(a)
            if vals:
                e.attrs[a] = list(vals)
            else:
                e.attrs.pop(a, None)
    for a, incoming in inc.vmeta.items():
        have = e.vmeta.setdefault(a, [])
        index = {value_key(a, v.value): i for i, v in enumerate(have)}
        for iv in incoming:
            k = value_key(a, iv.value)
            i = index.get(k)
            if i is not None and not wins(iv.meta(), have[i].meta()):
                continue
            nv = ValueMeta(iv.value, iv.local_usn, iv.version, iv.invocation, iv.time_ms, iv.orig_usn, iv.deleted)
            if i is None:
                index[k] = len(have)
                have.append(nv)
            else:
                have[i] = nv
            out.values.append(nv)
    for a in inc.vmeta:
        live = [v.value for v in e.vmeta[a] if not v.deleted]
        if live:
            e.attrs[a] = live
        else:
            e.attrs.pop(a, None)
    if local is None:
        out.name = True
    return out


__all__ = ["NAME", "LOCAL", "DELETED_ATTR", "rank", "wins", "State", "Merged", "merge"]
