"""The supplier's held pulls over a real LMDB store, on a simulated clock (no sockets): a
change the consumer lacks is answered at once; news of this node's vector alone waits for
a quiet moment (or NEWS_MAX), so a stream of writes costs the consumer one transaction per
NEWS_MAX rather than one per write."""
from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock

from replication._state import full_utdv, raise_utdv
from replication._wire import PULL_OID, PullRequest, decode_pull_response, encode_pull_request
from replication._supplier import pull_page
from replication.service import NEWS_MAX, NEWS_QUIET, SupplierService
from tests.unit.vmdir.test_directory_meta import ADMIN, d, run  # noqa: F401 - d: fixture
from vmdir.directory import Directory, Session
from vmdir.proto import messages as m

CONSUMER, OTHER = bytes([7]) * 16, bytes([9]) * 16


class Reactor(Clock):
    """A simulated clock that also takes calls "from threads" (run at once)."""

    def callFromThread(self, f: Any, *a: Any, **kw: Any) -> None:
        f(*a, **kw)


class Pool:
    """A thread pool that runs the work at once, on the caller's thread."""

    def callInThreadWithCallback(self, on_result: Any, f: Any, *a: Any, **kw: Any) -> None:
        try:
            res = f(*a, **kw)
        except BaseException as exc:  # noqa: BLE001 - handed over, as the real pool does
            on_result(False, exc)
        else:
            on_result(True, res)


def session(d: Directory, tls: bool = True) -> Session:
    return Session(dn=ADMIN, ndn=d.dit.ndn(ADMIN), is_admin=True, forest_admin_dn=True, tls=tls)


def pull(svc: SupplierService, d: Directory, req: PullRequest) -> list:
    """Send ``req`` as the administrator over TLS; where its answer lands."""
    got: list = []
    svc.pull(session(d), m.SearchRequest("", m.SCOPE_BASE, 0, 0, 0, False, m.Present("objectClass"), ()),
             (m.Control(PULL_OID, True, encode_pull_request(req)),)).addCallback(got.append)
    return got


def highest(d: Directory) -> int:
    with d.store.read() as r:
        return r.meta_int("next_usn")


def held_pull(svc: SupplierService, d: Directory) -> list:
    """A caught-up consumer's pull, held up to 20 s; where its answer lands."""
    with d.store.read() as r:
        vector = full_utdv(r, d.invocation)
    return pull(svc, d, PullRequest(CONSUMER, highest(d), 100, vector, hold=20_000))


def news_then_wait(reactor: "Reactor", svc: SupplierService, d: Directory, usn: int, wait: float) -> None:
    news(d, usn)
    svc.wake()
    reactor.advance(wait)


def news(d: Directory, usn: int) -> None:
    """A commit that brings the consumer nothing but a raised vector (as when this node
    applies changes the consumer already has)."""
    with d.store.write() as w:
        raise_utdv(w, {OTHER: usn}, d.invocation)


def response(answer: tuple) -> Any:
    entries, outcome = answer
    (ctrl,) = [c for c in outcome.controls if c.oid == PULL_OID]
    return entries, decode_pull_response(ctrl.value)


def make(d: Directory) -> tuple[Reactor, SupplierService]:
    reactor = Reactor()
    return reactor, SupplierService(reactor, d, Pool(), poll=0.05)


def test_a_held_pull_with_nothing_new_waits(d: Directory) -> None:
    reactor, svc = make(d)
    got = held_pull(svc, d)
    reactor.advance(5)
    assert got == []
    reactor.advance(15.1)  # the hold's end: the empty page is the answer
    assert len(got) == 1 and response(got[0])[0] == []


def test_news_alone_is_answered_once_the_node_is_quiet(d: Directory) -> None:
    reactor, svc = make(d)
    got = held_pull(svc, d)
    news_then_wait(reactor, svc, d, 5, NEWS_QUIET / 2)
    assert got == []  # not at once: more may follow
    reactor.advance(NEWS_QUIET)
    assert len(got) == 1
    entries, resp = response(got[0])
    assert entries == [] and resp.utdv[OTHER] == 5


def test_news_under_a_stream_of_commits_is_answered_after_news_max(d: Directory) -> None:
    reactor, svc = make(d)
    got = held_pull(svc, d)
    step = NEWS_QUIET / 2
    n = 0
    while not got:
        n += 1
        news_then_wait(reactor, svc, d, n, step)
    assert NEWS_MAX - step <= n * step <= NEWS_MAX + step  # not one answer per commit, nor later than NEWS_MAX
    assert response(got[0])[1].utdv[OTHER] >= n - 1


def test_a_change_the_consumer_lacks_is_answered_at_once_even_during_news(d: Directory) -> None:
    reactor, svc = make(d)
    got = held_pull(svc, d)
    news_then_wait(reactor, svc, d, 3, NEWS_QUIET / 4)
    assert got == []
    modify(d, b"changed")
    # the directory's own commit hook wakes the holds, on the reactor's next turn: after the
    # replies the commit completes are written (no time passes)
    assert got == []
    reactor.advance(0)
    assert len(got) == 1
    entries, resp = response(got[0])
    assert [e.dn.lower() for e in entries] == [ADMIN.lower()]
    assert resp.utdv[OTHER] == 3


def test_a_pull_without_a_hold_is_answered_at_once_with_news(d: Directory) -> None:
    reactor, svc = make(d)
    news(d, 4)
    got = pull(svc, d, PullRequest(CONSUMER, highest(d), 100, {}, hold=0))
    assert len(got) == 1 and response(got[0])[1].utdv[OTHER] == 4


def modify(d: Directory, value: bytes) -> None:
    run(d, d.modify(session(d, tls=False), m.ModifyRequest(ADMIN, (m.Change(m.MOD_REPLACE, "description", (value,)),))))


def test_a_page_looks_at_max_scan_changes_at_most(d: Directory) -> None:
    for i in range(5):  # five entries changed: five rows of the change log
        run(d, d.add(session(d, tls=False), m.AddRequest(f"cn=p{i},cn=Users,dc=lightwave,dc=local",
                                     (("objectClass", (b"person",)), ("sn", (b"x",))))))
    s = session(d)
    with d.store.read() as r:
        rows = [usn for usn, _ in r.changes_since(0)]
    start = rows[-6]
    # the node's own changes, asked for by itself: nothing to send, but only 3 looked at
    entries, resp = pull_page(d, s, PullRequest(d.invocation, start, 100, {}), max_scan=3)
    assert entries == [] and resp.more and resp.watermark == rows[-3]
    # another consumer lacks them: sent, within the same bound
    entries, resp = pull_page(d, s, PullRequest(CONSUMER, start, 100, {}), max_scan=3)
    assert len(entries) == 3 and resp.more and resp.watermark == rows[-3]
    entries, resp = pull_page(d, s, PullRequest(CONSUMER, resp.watermark, 100, {}))
    assert len(entries) == 2 and not resp.more


def test_a_woken_hold_reads_only_what_changed_since_its_last_read(d: Directory, monkeypatch) -> None:
    """Changes the consumer has (here: its own, the supplier being itself) wake the hold
    as news; every read after the first starts where the one before ended, so a long
    stream of them is not read again and again."""
    import replication.service as service

    reads: list[tuple[int, int]] = []

    def recording(d: Directory, s: Session, req: PullRequest, max_scan: int = 10_000) -> Any:
        entries, resp = pull_page(d, s, req, max_scan)
        reads.append((req.watermark, resp.watermark))
        return entries, resp

    monkeypatch.setattr(service, "pull_page", recording)
    reactor, svc = make(d)
    got = pull(svc, d, PullRequest(d.invocation, highest(d), 100, {}, hold=20_000))
    for i in range(10):
        modify(d, f"v{i}".encode())
        reactor.advance(0)  # the commit wakes the hold
        reactor.advance(NEWS_QUIET / 4)
    assert got == []  # news only, and no quiet moment yet
    reactor.advance(NEWS_QUIET)
    assert len(got) == 1
    assert len(reads) == 12  # the first read, one per commit, one when the quiet moment came
    for (_, ended), (began, _) in zip(reads, reads[1:]):
        assert began == ended
    assert response(got[0])[1].watermark == highest(d)
