"""Pulling from one supplier, for one replication agreement (layer 3, synchronous).

``Puller.sync()`` pulls pages until this node has everything the supplier had when the
pass began; ``Puller.run()`` does that forever, each pass after the first starting with a
pull the supplier holds until it has something (the notification), and backs off after
errors. The supplier transport is injected (``Partner`` in
production), so tests can drive it in process too.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from vmdir.directory import Directory
from vmdir.store import StoreError, WriteTxn

from replication._consumer import PageResult, apply_page
from replication._state import (
    full_utdv, pause_writes, read_purged, read_status, stale_against, status_time, watermark, write_status,
)
from replication._wire import PullRequest, PullResponse, Record

PAGE_ENTRIES = 500
MAX_BACKOFF = 2.0  # seconds between attempts at most, once a partner keeps failing (or is down)
HOLD_MS = 20_000  # how long a caught-up consumer lets the supplier hold its next pull


class Supplier(Protocol):
    url: str

    def connect(self) -> None: ...
    def close(self) -> None: ...
    def pull(self, req: PullRequest) -> tuple[list[Record], PullResponse]: ...
    def prefetch(self, req: PullRequest) -> None: ...


class Stuck(Exception):
    """A change could not be applied; the watermark stays before it."""


class Stale(Exception):
    """This node or the supplier was out of touch for longer than the tombstone lifetime."""


class Puller:
    def __init__(self, d: Directory, partner: str, supplier: Supplier, *, stop: threading.Event | None = None,
                 log: Callable[[str], None] = lambda msg: None, page_entries: int = PAGE_ENTRIES,
                 progress: Callable[[int, int], None] | None = None, clock: Callable[[], float] = time.time,
                 write_lock: Any = None, initial: bool = False) -> None:
        self.d = d
        self.partner = partner
        self.supplier = supplier
        self.stop = stop or threading.Event()
        self.log = log
        self.page_entries = page_entries
        self.progress = progress  # (watermark, supplier's highest USN) after each page
        self.clock = clock
        self.write_lock = write_lock or threading.Lock()  # pullers of one process share theirs
        self.initial = initial  # a join's full copy: this node holds nothing a purge could concern
        self.status: dict[str, Any] = {"partner": partner, "url": supplier.url, "last_success": None,
                                       "last_error": None, "last_error_time": None, "changes_behind": None,
                                       "seconds_behind": None, "applied": 0}
        self._behind_since: float | None = None
        with d.store.read() as r:  # what the last run knew (the supplier's invocation above all)
            self.status.update(read_status(r).get(partner, {}))

    # ------------------------------------------------------------------ one pass

    def sync(self, hold: int = 0) -> PullResponse:
        """Pull until caught up with the supplier as of the start of this pass (the first
        pull held up to ``hold`` ms while the supplier has nothing). Returns the last page's
        response. Raises Stuck, PartnerError or StoreError."""
        start: PullResponse | None = None
        ahead: PullRequest | None = None  # the request sent ahead for the next page
        sup = bytes.fromhex(self.status["supplier"]) if self.status.get("supplier") else None
        while True:
            with self.d.store.read() as r:
                wm = watermark(r, sup) if sup is not None else 0
                utdv = full_utdv(r, self.d.invocation)
            # the page asked for ahead is the right one if the last page was applied whole
            # (its vector may be older than now: the supplier then sends a little more)
            req = ahead if ahead is not None and ahead.watermark == wm else \
                PullRequest(self.d.invocation, wm, self.page_entries, utdv, hold if start is None else 0)
            ahead = None
            records, resp = self.supplier.pull(req)
            if self.stop.is_set():  # stopped meanwhile (its agreement removed, say): apply nothing more
                return resp
            if resp.supplier != sup:
                # first contact, or the partner was restored (a new invocation): watermarks
                # are per supplier invocation, so ask again from the right one
                sup = resp.supplier
                self.status["supplier"] = sup.hex()
                with self.d.store.read() as r:
                    if watermark(r, sup) != wm:
                        start = None
                        continue
            if start is None:
                start = resp
                self._check_stale(resp, req.utdv)
            if resp.more:  # the supplier reads the next page while this one is applied
                ahead = PullRequest(self.d.invocation, resp.watermark, self.page_entries, utdv)
                self.supplier.prefetch(ahead)
            with self.write_lock:  # the status is written in the page's own transaction (one sync)
                res = apply_page(self.d, records, resp, start,
                                 then=lambda res, w: self._keep(w, self._record(res, resp)))
            if self.progress is not None:
                self.progress(res.watermark, max(resp.highest_usn, start.highest_usn))
            if res.error is not None:
                raise Stuck(res.error)
            if res.caught_up or not resp.more:
                return resp

    def _check_stale(self, resp: PullResponse, utdv: dict[bytes, int]) -> None:
        """Raise Stale if either side has purged tombstones the other may not have seen.

        This node behind the supplier's purges: it may hold entries deleted meanwhile whose
        tombstones are gone, so it can neither learn of those deletes nor be trusted as a
        supplier; it stops taking writes. The supplier behind this node's purges: pulling
        from it could bring deleted entries back here."""
        with self.d.store.read() as r:
            mine = read_purged(r)
        # this node has every change it originated itself, whenever the request was made (a
        # held pull's vector is as old as the hold: the supplier may have received and purged
        # deletes this node made meanwhile)
        inv = None if self.initial else stale_against(resp.purged, {**utdv, self.d.invocation: 1 << 63})
        if inv is not None:
            why = (f"out of touch with the forest for longer than the tombstone lifetime: {self.partner} has purged "
                   f"deletes (of originator {inv.hex()}) this node never received. Remove this node "
                   f"('lightwave node remove') and join it again with an empty data directory")
            with self.write_lock, self.d.store.write() as w:
                pause_writes(w, why)
            raise Stale(why)
        inv = stale_against(mine, resp.utdv)
        if inv is not None:
            raise Stale(f"{self.partner} was out of touch for longer than the tombstone lifetime (it lacks deletes of "
                        f"originator {inv.hex()} this node has purged); not pulling from it: remove it "
                        f"('lightwave node remove {self.partner}') and join it again")

    def _record(self, res: PageResult, resp: PullResponse) -> dict[str, Any]:
        """Update the status with a page's outcome; returns it (to be stored)."""
        now = self.clock()
        st = self.status
        st["supplier"] = resp.supplier.hex()
        st["watermark"] = res.watermark
        st["partner_highest_usn"] = resp.highest_usn
        st["applied"] += res.applied
        behind = max(0, resp.highest_usn - res.watermark)
        st["changes_behind"] = behind
        if behind and self._behind_since is None:
            self._behind_since = now
        elif not behind:
            self._behind_since = None
        st["seconds_behind"] = round(now - self._behind_since, 3) if self._behind_since else 0
        if res.error is None:
            st["last_success"] = status_time(now)
        else:
            st["last_error"], st["last_error_time"] = res.error, status_time(now)
        return st

    def _keep(self, w: WriteTxn, status: dict[str, Any]) -> None:
        """Store ``status`` in ``w``, unless stopped (its agreement removed, say: its status
        is no longer kept)."""
        if not self.stop.is_set():
            write_status(w, self.partner, status)

    def _save(self) -> None:
        if self.stop.is_set():
            return  # no transaction for nothing
        try:
            with self.write_lock, self.d.store.write() as w:
                self._keep(w, self.status)
        except StoreError:
            pass  # status is advisory; the next page writes it again

    # ------------------------------------------------------------------ forever

    def run(self) -> None:
        """Replicate until ``stop`` is set: sync, then sync again with a held first pull."""
        backoff = 0.5
        logged = None
        while not self.stop.is_set():
            try:
                self.supplier.connect()
                hold = 0
                while not self.stop.is_set():
                    self.sync(hold)
                    backoff, logged, hold = 0.5, None, HOLD_MS
            except Exception as exc:  # noqa: BLE001 - any failure: record it, back off, retry
                if str(exc) != logged:  # a failure that repeats is logged once, not at every retry
                    self.log(f"replication from {self.partner} ({self.supplier.url}): {exc}; retrying")
                    logged = str(exc)
                self.status["last_error"], self.status["last_error_time"] = str(exc), status_time(self.clock())
                self._save()
                self.stop.wait(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
            finally:
                self.supplier.close()
