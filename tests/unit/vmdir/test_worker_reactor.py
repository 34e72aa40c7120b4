"""The workers' reactor (vmdir.server.reactor) dispatches ready descriptors like Twisted's
epoll reactor, and an error that escapes one descriptor's handling is logged without stopping
the loop or the other descriptors. Real sockets, a real (not installed) reactor."""
from __future__ import annotations

import socket

from twisted.internet.abstract import FileDescriptor
from twisted.logger import globalLogPublisher

from vmdir.server.reactor import WorkerReactor


class Reader(FileDescriptor):
    def __init__(self, reactor: WorkerReactor, sock: socket.socket, fail_on_loss: bool = False) -> None:
        super().__init__(reactor)
        self.sock = sock
        self.got = b""
        self.fail_on_loss = fail_on_loss
        self.lost = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def doRead(self) -> None:  # noqa: N802
        data = self.sock.recv(4096)
        if data == b"boom":
            raise RuntimeError("a handler failed")
        self.got += data

    def connectionLost(self, reason: object) -> None:  # noqa: N802
        self.lost = True
        super().connectionLost(reason)
        if self.fail_on_loss:
            raise RuntimeError("and so did its clean-up")


def test_events_reach_their_readers_and_a_failure_stays_local() -> None:
    r = WorkerReactor()
    logged: list[dict] = []
    globalLogPublisher.addObserver(logged.append)
    a_ours, a_peer = socket.socketpair()
    b_ours, b_peer = socket.socketpair()
    try:
        bad = Reader(r, a_ours, fail_on_loss=True)
        good = Reader(r, b_ours)
        r.addReader(bad)
        r.addReader(good)
        a_peer.send(b"boom")
        b_peer.send(b"hello")
        for _ in range(20):
            r.doPoll(0.05)
            if bad.lost and good.got == b"hello":
                break
        assert good.got == b"hello"
        assert bad.lost  # its doRead failed: disconnected, as Twisted's reactor does
        assert bad not in r.getReaders() and good in r.getReaders()
        # the clean-up's own error escaped the dispatch: logged, and the loop went on
        assert any("handling an event" in str(e.get("log_format", "")) for e in logged)
        b_peer.send(b" again")
        r.doPoll(0.5)
        assert good.got == b"hello again"
    finally:
        globalLogPublisher.removeObserver(logged.append)
        r.removeAll()
        for s in (a_ours, a_peer, b_ours, b_peer):
            s.close()
