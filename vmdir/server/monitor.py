"""Operation counters shared by all worker processes of a node (for cn=monitor).

A small file mapped into every worker: one row of 64-bit counters per worker; each
worker only writes its own row (from its reactor thread), readers sum the rows.
"""
from __future__ import annotations

import mmap
import os

NAMES = (
    "connections_total", "connections_current", "ops_bind", "ops_search", "ops_compare", "ops_add",
    "ops_modify", "ops_delete", "ops_modrdn", "ops_extended", "ops_abandon", "entries_sent",
    "errors_protocol", "errors_internal",
)
INDEX = {n: i for i, n in enumerate(NAMES)}
ROW = 8 * len(NAMES)


class Counters:
    def __init__(self, path: str, slot: int, slots: int) -> None:
        size = ROW * slots
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.slots = slots
        self.base = ROW * slot
        # a fresh row for this worker (its old values belong to a previous run)
        self._mm[self.base:self.base + ROW] = bytes(ROW)
        self._all = memoryview(self._mm).cast("q")  # native 64-bit integers (one host's processes)
        self._row = self._all[slot * len(NAMES):(slot + 1) * len(NAMES)]

    def add(self, name: str, n: int = 1) -> None:
        self._row[INDEX[name]] += n

    def snapshot(self) -> dict[str, int]:
        out = dict.fromkeys(NAMES, 0)
        width = len(NAMES)
        for s in range(self.slots):
            for i, n in enumerate(NAMES):
                out[n] += self._all[s * width + i]
        return out
