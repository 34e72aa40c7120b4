"""Group commit: one writer thread per process runs queued write operations in
batches, each batch one LMDB write transaction (one fsync), and fires the callers'
Deferreds on the reactor thread, then its ``committed`` callbacks: one hand-over to the
reactor per batch (each wakes the reactor thread and contends for the GIL)."""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from vmdir.directory import Directory, Outcome
from vmdir.store import WriteTxn

MAX_BATCH = 256


class WriteQueue:
    def __init__(self, reactor: Any, directory: Directory, max_batch: int = MAX_BATCH) -> None:
        self.reactor = reactor
        self.directory = directory
        self.max_batch = max_batch
        self._q: queue.Queue[tuple[Callable[[WriteTxn], Outcome], defer.Deferred[Outcome]] | None] = queue.Queue()
        self.committed: list[Callable[[], None]] = []  # run on the reactor after each batch's answers
        self._thread = threading.Thread(target=self._run, name="vmdir-writer", daemon=True)
        self._thread.start()
        self.batches = 0
        self.ops = 0

    def on_writer_thread(self) -> bool:
        """Whether the caller is this queue's writer thread (running a batch)."""
        return threading.get_ident() == self._thread.ident

    def submit(self, op: Callable[[WriteTxn], Outcome]) -> "defer.Deferred[Outcome]":
        """Queue ``op``; the Deferred fires (on the reactor) after its batch commits."""
        d: defer.Deferred[Outcome] = defer.Deferred()
        self._q.put((op, d))
        return d

    def stop(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            results = self.directory.run_writes([op for op, _ in batch])
            self.batches += 1
            self.ops += len(batch)
            self.reactor.callFromThread(_fire, [d for _, d in batch], results, self.committed)
            if stop:
                return


def _fire(ds: list["defer.Deferred[Outcome]"], results: list[Any], then: list[Callable[[], None]]) -> None:
    for d, res in zip(ds, results):
        if isinstance(res, BaseException):
            d.errback(res)
        else:
            d.callback(res)
    for fn in then:
        fn()
