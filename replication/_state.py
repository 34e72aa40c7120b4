"""A node's replication bookkeeping in the store's ``meta`` database (layer 2 helpers).

- ``utdv/<invocation hex>``: the highest originating USN of that invocation this node has
  applied (its up-to-dateness vector). The node's own current invocation is implicit: its
  highest local USN. Invocations it had before a restore keep an entry here.
- ``wm/<supplier invocation hex>``: the supplier USN up to which this node has applied the
  supplier's change log (the watermark of that pull).
- ``repl/status/<partner>``: JSON, the last outcome of pulling from that partner (local
  state, not replicated).
- ``purged/<invocation hex>``: the highest originating USN of that invocation among the
  tombstones (of entries and of values) this node has purged. A partner whose vector is
  below it may lack a delete this node can no longer send (see ``stale_against``).
- vmdir's WRITES_PAUSED (read with ``vmdir.directory.writes_paused``): why local writes
  are refused. A restore sets it (RESTORED), cleared by the first pass that catches up with
  a partner; a node found out of touch past the tombstone lifetime sets it for good (it
  must join again).

Each is written in the same transaction as the changes it accounts for.
"""
from __future__ import annotations

import calendar
import json
import time
from typing import Any

from vmdir.directory import WRITES_PAUSED
from vmdir.store import ReadTxn, WriteTxn, unpack_u64

from replication._wire import Vector


def read_utdv(r: ReadTxn) -> Vector:
    """This node's vector without its own current invocation (callers add it)."""
    return {bytes.fromhex(k.removeprefix("utdv/")): unpack_u64(v) for k, v in r.meta_prefix("utdv/")}


def full_utdv(r: ReadTxn, invocation: bytes) -> Vector:
    """This node's vector, its own invocation included (at its highest USN)."""
    v = read_utdv(r)
    v[invocation] = r.meta_int("next_usn")
    return v


def raise_utdv(w: WriteTxn, vector: Vector, own: bytes) -> None:
    """Advance this node's vector to at least ``vector`` (never backwards, never its own
    current invocation)."""
    have = read_utdv(w)
    for inv, usn in vector.items():
        if inv != own and usn > have.get(inv, 0):
            w.set_meta_int(f"utdv/{inv.hex()}", usn)


def watermark(r: ReadTxn, supplier: bytes) -> int:
    return r.meta_int(f"wm/{supplier.hex()}")


def set_watermark(w: WriteTxn, supplier: bytes, usn: int) -> None:
    if usn > watermark(w, supplier):
        w.set_meta_int(f"wm/{supplier.hex()}", usn)


def read_status(r: ReadTxn) -> dict[str, dict[str, Any]]:
    """Partner name -> its last pull outcome."""
    return {k.removeprefix("repl/status/"): json.loads(v) for k, v in r.meta_prefix("repl/status/")}


def write_status(w: WriteTxn, partner: str, status: dict[str, Any]) -> None:
    w.set_meta(f"repl/status/{partner}", json.dumps(status, sort_keys=True).encode())


def forget_status(w: WriteTxn, partner: str) -> None:
    w.del_meta(f"repl/status/{partner}")


def mark_restored(w: WriteTxn, old_invocation: bytes, highest_usn: int) -> None:
    """After a restore (the database already has its new invocation): the node holds its old
    invocation's changes up to the backup's highest USN, and takes no writes of its own
    until a pass from a partner has caught up (its old state would otherwise be edited
    with fresh metadata and could win over newer changes made elsewhere)."""
    w.set_meta_int(f"utdv/{old_invocation.hex()}", highest_usn)
    pause_writes(w, RESTORED)


RESTORED = "restored from a backup, and not yet caught up with a replication partner"
OUT_OF_TOUCH = ("started after more than the tombstone lifetime without replicating: local writes wait until "
                "a partner has confirmed this node missed no delete that was purged meanwhile")
CATCHING_UP = (RESTORED, OUT_OF_TOUCH)  # pauses a pass that catches up with a partner lifts


STATUS_TIME = "%Y-%m-%dT%H:%M:%SZ"  # times in a partner's status (UTC)


def status_time(t: float) -> str:
    return time.strftime(STATUS_TIME, time.gmtime(t))


def parse_status_time(text: str | None) -> float | None:
    """A time of a partner's status as seconds since the epoch (None for none)."""
    return float(calendar.timegm(time.strptime(text, STATUS_TIME))) if text else None


def last_contact(r: ReadTxn) -> float | None:
    """When this node last pulled from a partner successfully (seconds since the epoch), or
    None if it never did."""
    times = [t for st in read_status(r).values() if (t := parse_status_time(st.get("last_success"))) is not None]
    return max(times) if times else None


def partner_health(r: ReadTxn) -> dict[str, dict[str, Any]]:
    """``read_status`` with its two times also as seconds since the epoch: ``last_success_at``
    and ``last_error_at`` (None when there was none)."""
    return {name: dict(st, last_success_at=parse_status_time(st.get("last_success")),
                       last_error_at=parse_status_time(st.get("last_error_time")))
            for name, st in read_status(r).items()}


def pause_writes(w: WriteTxn, why: str) -> None:
    """Refuse local writes (vmdir's WRITES_PAUSED) until ``resume_writes``; ``why`` is said to clients."""
    w.set_meta(WRITES_PAUSED, why.encode())


def resume_writes(w: WriteTxn) -> None:
    w.del_meta(WRITES_PAUSED)


def read_purged(r: ReadTxn) -> Vector:
    return {bytes.fromhex(k.removeprefix("purged/")): unpack_u64(v) for k, v in r.meta_prefix("purged/")}


def raise_purged(w: WriteTxn, vector: Vector) -> None:
    have = read_purged(w)
    for inv, usn in vector.items():
        if usn > have.get(inv, 0):
            w.set_meta_int(f"purged/{inv.hex()}", usn)


def stale_against(purged: Vector, utdv: Vector) -> bytes | None:
    """An invocation whose purged tombstones ``utdv`` does not cover, or None.

    A node holding such a vector may still have an entry (or value) that was deleted and
    whose tombstone is gone: it was offline for longer than the tombstone lifetime. Pulling
    from it could bring the deleted entry back, and it can no longer learn of the delete,
    so it is refused until it joins again."""
    for inv, usn in sorted(purged.items()):
        if utdv.get(inv, 0) < usn:
            return inv
    return None
