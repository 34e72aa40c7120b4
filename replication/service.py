"""The supplier in the LDAP front end (layer 4, Twisted): answers pull searches, holding
those that would bring nothing until a change commits.

``lightwave.nodes`` registers ``search_handlers()`` and ``extended_handlers()`` with each
LDAP worker. A page is read in the thread pool (a bounded read of the store). Holds are
woken by this process's commits at once, by the node's other processes' commits when
their bell rings (``wake``; ``vmdir.server.bell``), and otherwise within ``poll`` seconds
(a read of one meta key, only while something is held).
"""
from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import defer, threads
from twisted.internet.task import LoopingCall

from vmdir.directory import Directory, Outcome, Session, writes_paused
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError, ResultCode
from vmdir.store import ReadTxn, StoredEntry

from replication._supplier import MAX_PAGE_SCAN, may_pull, pull_page
from replication._state import full_utdv, read_status
from replication._partner import key_digest
from replication.topology import NODES_DN, is_a, node_dn, published_changes, set_values, text
from replication._wire import PULL_OID, STATUS_OID, PullRequest, PullResponse, decode_pull_request, encode_pull_response, vector_sum

SearchHandler = Callable[[Session, m.SearchRequest, Sequence[m.Control]], "defer.Deferred[Any]"]
ExtendedHandler = Callable[[Session, bytes | None], "defer.Deferred[Outcome]"]


INLINE_ENTRIES = 20  # entries a woken hold reads on the reactor thread at most
INLINE_SCAN = 200  # ... and changes it looks at (those the consumer has are skipped)
NEWS_QUIET = 0.05  # seconds without a commit before a held pull is answered with news alone
NEWS_MAX = 1.0  # ... or this long after the news came, at most


_LDAP_URL = re.compile(r"ldaps?://[^\s/?#]+/?", re.IGNORECASE)

class SupplierService:
    def __init__(self, reactor: Any, directory: Directory, threadpool: Any, *, node_name: str = "",
                 writer: Any = None, poll: float = 0.05, max_wait: float = 20.0,
                 log: Callable[[str], None] = lambda msg: None) -> None:
        self.node_name = node_name
        self.log = log
        self.writer = writer  # vmdir.server.writer.WriteQueue: records announced certificates
        self.reactor = reactor
        self.directory = directory
        self.threadpool = threadpool
        self.poll = poll
        self.max_wait = max_wait
        self._waiters: list[tuple[tuple[int, int], defer.Deferred[bool], Any]] = []
        self._loop: LoopingCall | None = None
        directory.on_commit.append(self._on_commit)
        if writer is not None:  # its batches: the holds are woken right after the batch's answers went out
            writer.committed.append(self.wake)
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
        return text(e, "cn") if is_a(e, b"lightwavereplicationagreement") else None

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
        return {STATUS_OID: self.status}

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
                "node": self.node_name, "server_id": r.meta_int("server_id") or d.server_id,
                "invocation": d.invocation.hex(),
                "highest_usn": r.meta_int("next_usn"),
                "utdv": {inv.hex(): usn for inv, usn in full_utdv(r, d.invocation).items()},
                "partners": read_status(r),
                "writes_paused": writes_paused(r),
            }
        return defer.succeed(Outcome(extra=(STATUS_OID, json.dumps(doc, sort_keys=True).encode())))

    # ------------------------------------------------------------------ pull

    def pull(self, s: Session, op: m.SearchRequest, controls: Sequence[m.Control]) -> "defer.Deferred[Any]":
        """Deferred (entries, Outcome with the response control). Errors: LDAPError.

        A pull with a hold whose page would bring the consumer nothing is held until a
        change commits (here, in another worker or in the replication process), then read
        again; at the end of the hold (at most ``max_wait``) the empty page is the answer."""
        c = next(c for c in controls if c.oid == PULL_OID)
        req = decode_pull_request(c.value)
        if not may_pull(s):
            raise LDAPError(ResultCode.insufficientAccessRights, "replication needs the replication role")
        if not s.secure:  # (pull_page says so too) before anything the request asks is done
            raise LDAPError(ResultCode.confidentialityRequired, "replication needs TLS (StartTLS or LDAPS)")
        if req.certificate is not None or req.url is not None:
            self._note_announced(s, req)
        deadline = self.reactor.seconds() + min(req.hold / 1000, self.max_wait)
        if req.hold and self._highest() - req.watermark <= INLINE_ENTRIES:
            # a caught-up consumer: a few changes at most to look at, read here (no thread hop)
            return self._page(s, req, _small(req), deadline, inline=True)
        return self._page(s, req, req, deadline)

    def _page(self, s: Session, asked: PullRequest, read: PullRequest, deadline: float, inline: bool = False,
              news_since: float | None = None, quiet: bool = False) -> "defer.Deferred[Any]":
        """The answer to ``asked``, reading the change log as ``read`` says: in the thread
        pool, or, woken from a hold (a few changes, typically one), at most INLINE_ENTRIES
        sent and INLINE_SCAN changes looked at right here (no thread hops: the latency of a
        change; the consumer pulls the rest, if any, at once). A hold reads again from where
        its last read ended (``read``'s watermark): nothing before it is lacked by the
        consumer, so each commit costs a look at its own changes only.

        A held page with no entries but news of this node's watermark or vector (typically
        this node applying changes the consumer itself sent: the consumer records it to
        learn that this node has them) is answered once this node has been quiet for
        NEWS_QUIET seconds, or NEWS_MAX after the first such news: under a stream of
        writes, one answer (and one transaction at the consumer) per NEWS_MAX instead of
        one per write, taking the consumer's write lock and a sync beside its clients'
        writes. ``news_since``: when the news this hold carries was first seen; ``quiet``:
        the hold before this read ended without a commit."""
        def page() -> tuple[tuple[int, int], list[m.SearchResultEntry], PullResponse]:
            state = self._state()  # before the page: a commit after this wakes the hold
            entries, resp = pull_page(self.directory, s, read, max_scan=INLINE_SCAN if inline else MAX_PAGE_SCAN)
            return state, entries, resp

        def answer(got: tuple[tuple[int, int], list[m.SearchResultEntry], PullResponse]) -> Any:
            state, entries, resp = got
            now = self.reactor.seconds()
            reply = entries, Outcome(controls=(m.Control(PULL_OID, False, encode_pull_response(resp)),))
            if entries or resp.more or now >= deadline:
                return reply
            since, until = None, deadline
            if not _brings_nothing(asked, resp):
                since = now if news_since is None else news_since
                if quiet or now >= since + NEWS_MAX:
                    return reply
                until = min(deadline, now + NEWS_QUIET, since + NEWS_MAX)
            held: defer.Deferred[bool] = defer.Deferred()
            self._hold(state, held, until)
            again = dataclasses.replace(_small(read), watermark=resp.watermark)
            held.addCallback(lambda expired: self._page(s, asked, again, deadline, inline=True, news_since=since,
                                                        quiet=expired and since is not None))
            return held

        if inline:
            return defer.maybeDeferred(page).addCallback(answer)
        return threads.deferToThreadPool(self.reactor, self.threadpool, page).addCallback(answer)

    def _note_announced(self, s: Session, req: PullRequest) -> None:
        """Record what a consumer node announced (its certificate, its URL) in its entry and
        the agreements pulling from it: it authenticated as that node. Raises
        LDAPError(protocolError) if the certificate is not one or the URL is not an LDAP URL."""
        if req.certificate is not None:
            try:
                key_digest(req.certificate)
            except ValueError:
                raise LDAPError(ResultCode.protocolError,
                                "the announced certificate is not a DER X.509 certificate") from None
        if req.url is not None and not _LDAP_URL.fullmatch(req.url):
            raise LDAPError(ResultCode.protocolError, "the announced URL is not an ldap:// or ldaps:// URL")
        d = self.directory
        if self.writer is None or not s.ndn.endswith("," + d.dit.ndn(NODES_DN)):
            return
        with d.store.read() as r:
            d.dit.begin(r)
            nid = d.dit.id_of(r, s.dn)
            e = r.get(nid) if nid is not None else None
            if e is None or e.deleted:
                return
            want = published_changes(r, d, e, req.url, req.certificate)
        if not want:
            return
        done = self.writer.submit(set_values(d, text(e, "cn"), want))
        done.addCallback(lambda _: self.log(f"{s.dn} announced " + ", ".join(sorted({a for _, a, _ in want}))
                                            + "; recorded"))
        done.addErrback(lambda f: self.log(f"recording what {s.dn} announced failed: {f.getErrorMessage()}"))

    # ------------------------------------------------------------------ holding

    def _hold(self, seen: tuple[int, int], d: "defer.Deferred[bool]", deadline: float) -> None:
        """Fire ``d`` with False once the highest USN or the vector has grown past ``seen``,
        or with True at ``deadline``."""
        timer = self.reactor.callLater(max(0.0, deadline - self.reactor.seconds()), self._expire, d)
        self._waiters.append((seen, d, timer))
        if self._loop is None:
            self._loop = LoopingCall(self.wake)
            self._loop.clock = self.reactor
            self._loop.start(self.poll, now=False)

    def _highest(self) -> int:
        with self.directory.store.read() as r:
            return r.meta_int("next_usn")

    def _state(self) -> tuple[int, int]:
        """(highest USN, sum of the vector without this node)."""
        d = self.directory
        with d.store.read() as r:
            return r.meta_int("next_usn"), vector_sum(full_utdv(r, d.invocation), d.invocation)

    def _on_commit(self, usn: int) -> None:
        """A commit by this process's Directory (any thread but the reactor's)."""
        if self.writer is None or not self.writer.on_writer_thread():
            self.reactor.callFromThread(self._committed)

    def _committed(self) -> None:
        """This process committed: wake the holds once the replies that commit completes are
        on their way. Those are queued on the reactor just after this call; a woken hold reads
        and encrypts a page, which would otherwise hold the writers' answers back. Twisted
        runs a call scheduled by a timed call on the loop's next turn, after it has written."""
        self.reactor.callLater(0, self.reactor.callLater, 0, self.wake)

    def wake(self) -> None:
        """Something may have committed: fire the holds it concerns."""
        if not self._waiters:
            return
        usn, vsum = self._state()
        keep = []
        for seen, d, timer in self._waiters:
            if d.called:
                continue
            if usn > seen[0] or vsum > seen[1]:
                timer.cancel()
                d.callback(False)
            else:
                keep.append((seen, d, timer))
        self._waiters = keep
        if not keep and self._loop is not None and self._loop.running:
            self._loop.stop()
            self._loop = None

    def _expire(self, d: "defer.Deferred[bool]") -> None:
        self._waiters = [w for w in self._waiters if w[1] is not d]
        if not d.called:
            d.callback(True)


def _small(req: PullRequest) -> PullRequest:
    """``req`` for at most INLINE_ENTRIES entries (a page read on the reactor thread; the
    consumer pulls the rest, if any, at once)."""
    return dataclasses.replace(req, max_entries=min(req.max_entries or INLINE_ENTRIES, INLINE_ENTRIES))


def _brings_nothing(req: PullRequest, resp: PullResponse) -> bool:
    """Whether an empty page would change nothing at the consumer: its watermark stays and
    its vector already covers the supplier's."""
    return (not resp.more and resp.watermark <= req.watermark
            and all(req.utdv.get(inv, 0) >= usn for inv, usn in resp.utdv.items() if inv != req.consumer))
