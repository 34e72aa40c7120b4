"""The supplier in the LDAP front end (layer 4, Twisted): answers pull searches and holds
wait operations until a change commits.

``lightwave.nodes`` registers ``search_handlers()`` and ``extended_handlers()`` with each
LDAP worker. A page is read in the thread pool (a bounded read of the store). Waiters are
woken by this process's commits at once and by other workers' commits within ``poll``
seconds (a read of one meta key, only while someone waits).
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import defer, threads
from twisted.internet.task import LoopingCall

from vmdir.directory import Directory, Outcome, Session
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError, ResultCode
from vmdir.store import ReadTxn, StoredEntry

from replication._supplier import may_pull, pull_page
from replication._state import full_utdv, read_status, writes_paused
from replication.topology import node_dn
from replication._wire import (
    PULL_OID, STATUS_OID, WAIT_OID, decode_pull_request, decode_wait_request, encode_pull_response, encode_usn,
    vector_sum,
)

SearchHandler = Callable[[Session, m.SearchRequest, Sequence[m.Control]], "defer.Deferred[Any]"]
ExtendedHandler = Callable[[Session, bytes | None], "defer.Deferred[Outcome]"]


class SupplierService:
    def __init__(self, reactor: Any, directory: Directory, threadpool: Any, *, node_name: str = "",
                 poll: float = 0.005, max_wait: float = 20.0) -> None:
        self.node_name = node_name
        self.reactor = reactor
        self.directory = directory
        self.threadpool = threadpool
        self.poll = poll
        self.max_wait = max_wait
        self._waiters: list[tuple[tuple[int, int], defer.Deferred[Outcome], Any]] = []
        self._loop: LoopingCall | None = None
        directory.on_commit.append(lambda usn: reactor.callFromThread(self._wake))
        if node_name:
            self._node_ndn = directory.dit.ndn(node_dn(node_name))
            directory.constructed.update({
                "lightwaveuptodatevector": self._vector_values, "lightwavehighestusn": self._highest_values,
                "lightwavereplicationstatus": self._status_values, "lightwavelastusnprocessed": self._watermark_values,
            })

    # ------------------------------------------------------------------ status as attributes

    def _agreement_partner(self, e: StoredEntry) -> str | None:
        """The supplier's name if ``e`` is one of this node's agreements."""
        if not e.ndn.endswith("," + self._node_ndn):
            return None
        if b"lightwavereplicationagreement" not in {v.lower() for v in e.attrs.get("objectclass", [])}:
            return None
        return (e.attrs.get("cn") or [b""])[0].decode("utf-8", "replace")

    def _vector_values(self, r: ReadTxn, e: StoredEntry) -> list[bytes]:
        if e.ndn != self._node_ndn:
            return []
        utdv = full_utdv(r, self.directory.invocation)
        return [f"{uuid.UUID(bytes=inv)}:{usn}".encode() for inv, usn in sorted(utdv.items())]

    def _highest_values(self, r: ReadTxn, e: StoredEntry) -> list[bytes]:
        return [str(r.meta_int("next_usn")).encode()] if e.ndn == self._node_ndn else []

    def _status_values(self, r: ReadTxn, e: StoredEntry) -> list[bytes]:
        # which entry first: a search asking for "+" calls this for every entry it returns
        p = None if e.ndn == self._node_ndn else self._agreement_partner(e)
        if e.ndn != self._node_ndn and p is None:
            return []
        partners = read_status(r)
        chosen = sorted(partners) if p is None else [p] if p in partners else []
        return [json.dumps(dict(partners[x], partner=x), sort_keys=True).encode() for x in chosen]

    def _watermark_values(self, r: ReadTxn, e: StoredEntry) -> list[bytes]:
        p = self._agreement_partner(e)
        st = read_status(r).get(p or "") if p else None
        return [str(st["watermark"]).encode()] if st and st.get("watermark") is not None else []

    def search_handlers(self) -> dict[str, SearchHandler]:
        return {PULL_OID: self.pull}

    def extended_handlers(self) -> dict[str, ExtendedHandler]:
        return {WAIT_OID: self.wait, STATUS_OID: self.status}

    # ------------------------------------------------------------------ status

    def status(self, s: Session, value: bytes | None) -> "defer.Deferred[Outcome]":
        """This node's replication state as JSON (see replication._wire)."""
        if not may_pull(s):
            raise LDAPError(ResultCode.insufficientAccessRights, "replication status needs the replication role")
        if value:
            raise LDAPError(ResultCode.protocolError, "the replication status request takes no value")
        d = self.directory
        with d.store.read() as r:
            doc = {
                "node": self.node_name, "server_id": d.server_id, "invocation": d.invocation.hex(),
                "highest_usn": r.meta_int("next_usn"),
                "utdv": {inv.hex(): usn for inv, usn in full_utdv(r, d.invocation).items()},
                "partners": read_status(r),
                "writes_paused": writes_paused(r),
            }
        return defer.succeed(Outcome(extra=(STATUS_OID, json.dumps(doc, sort_keys=True).encode())))

    # ------------------------------------------------------------------ pull

    def pull(self, s: Session, op: m.SearchRequest, controls: Sequence[m.Control]) -> "defer.Deferred[Any]":
        """Deferred (entries, Outcome with the response control). Errors: LDAPError."""
        c = next(c for c in controls if c.oid == PULL_OID)
        req = decode_pull_request(c.value)

        def page() -> tuple[list[m.SearchResultEntry], Outcome]:
            entries, resp = pull_page(self.directory, s, req)
            return entries, Outcome(controls=(m.Control(PULL_OID, False, encode_pull_response(resp)),))

        return threads.deferToThreadPool(self.reactor, self.threadpool, page)

    # ------------------------------------------------------------------ wait

    def wait(self, s: Session, value: bytes | None) -> "defer.Deferred[Outcome]":
        """Answer once the highest USN or the vector has grown past what ``value`` says the
        consumer saw (or after max_wait)."""
        if not may_pull(s):
            raise LDAPError(ResultCode.insufficientAccessRights, "replication needs the replication role")
        seen = decode_wait_request(value)
        usn, vsum = self._state()
        if usn > seen[0] or vsum > seen[1]:
            return defer.succeed(self._answer(usn))
        d: defer.Deferred[Outcome] = defer.Deferred()
        timer = self.reactor.callLater(self.max_wait, self._expire, d)
        self._waiters.append((seen, d, timer))
        if self._loop is None:
            self._loop = LoopingCall(self._wake)
            self._loop.clock = self.reactor
            self._loop.start(self.poll, now=False)
        return d

    def _state(self) -> tuple[int, int]:
        """(highest USN, sum of the vector without this node)."""
        d = self.directory
        with d.store.read() as r:
            return r.meta_int("next_usn"), vector_sum(full_utdv(r, d.invocation), d.invocation)

    @staticmethod
    def _answer(usn: int) -> Outcome:
        return Outcome(extra=(WAIT_OID, encode_usn(usn)))

    def _wake(self) -> None:
        if not self._waiters:
            return
        usn, vsum = self._state()
        keep = []
        for seen, d, timer in self._waiters:
            if d.called:
                continue
            if usn > seen[0] or vsum > seen[1]:
                timer.cancel()
                d.callback(self._answer(usn))
            else:
                keep.append((seen, d, timer))
        self._waiters = keep
        if not keep and self._loop is not None and self._loop.running:
            self._loop.stop()
            self._loop = None

    def _expire(self, d: "defer.Deferred[Outcome]") -> None:
        if not d.called:
            d.callback(self._answer(self._state()[0]))
        self._waiters = [w for w in self._waiters if w[1] is not d]
