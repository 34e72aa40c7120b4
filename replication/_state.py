"""A node's replication bookkeeping in the store's ``meta`` database (layer 2 helpers).

- ``utdv/<invocation hex>``: the highest originating USN of that invocation this node has
  applied (its up-to-dateness vector). The node's own current invocation is implicit: its
  highest local USN. Invocations it had before a restore keep an entry here.
- ``wm/<supplier invocation hex>``: the supplier USN up to which this node has applied the
  supplier's change log (the watermark of that pull).
- ``repl/status/<partner>``: JSON, the last outcome of pulling from that partner (local
  state, not replicated).

Each is written in the same transaction as the changes it accounts for.
"""
from __future__ import annotations

import json
from typing import Any

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
