"""The workers' reactor: Twisted's epoll reactor, without a log context per event.

``EPollReactor.doPoll`` hands every ready descriptor to ``log.callWithLogger``, which asks
the transport for its ``logPrefix()`` and pushes and pops a context dict around the call:
that prefix only reaches lines written through the legacy ``twisted.python.log`` API, which
Lightwave does not use (its lines carry conn= themselves), and it cost about 6% of a
worker's time under a bind load (py-spy). ``WorkerReactor`` dispatches the same events the
same way (``_doReadOrWrite``, which deals with each descriptor's own errors and losses) and
logs whatever escapes it, as ``callWithLogger`` would, so one failure never stops the loop.
"""
from __future__ import annotations

import errno
from typing import Any

from twisted.internet.epollreactor import EPollReactor
from twisted.logger import Logger

log = Logger(namespace="vmdir")


class WorkerReactor(EPollReactor):
    def doPoll(self, timeout: float | None) -> None:  # noqa: N802 - Twisted's name
        if timeout is None:
            timeout = -1  # block until something happens
        try:
            ready = self._poller.poll(timeout, len(self._selectables))
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        selectables = self._selectables
        dispatch = self._doReadOrWrite
        for fd, event in ready:
            selectable: Any = selectables.get(fd)
            if selectable is None:
                continue
            try:
                dispatch(selectable, fd, event)
            except KeyboardInterrupt:
                raise
            except BaseException:  # noqa: BLE001 - logged; the loop goes on
                log.failure("handling an event of {selectable!r}", selectable=selectable)

    doIteration = doPoll


def install() -> WorkerReactor:
    """Install a WorkerReactor as ``twisted.internet.reactor`` (before anything imports it)."""
    from twisted.internet.main import installReactor

    r = WorkerReactor()
    installReactor(r)
    return r
