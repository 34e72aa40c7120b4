"""Commit bells: a node's processes (the LDAP workers and the replication process share one
store) tell each other that they committed, so work waiting for a change in one process
(a held replication pull) goes on at once when another commits.

Each listening process binds a Unix datagram socket in the abstract namespace (nothing to
clean up on disk but a marker) and leaves a file named by its pid in ``<data-dir>/bell``;
a commit sends one byte to every other listener found there. A listener that is gone is
forgotten (its file removed). A full socket buffer drops the byte: that listener has
wake-ups pending anyway.
"""
from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

RELIST = 1.0  # seconds between looks for listeners that started since


class Bell:
    def __init__(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self._prefix = b"\0lightwave-bell-" + hashlib.sha256(os.path.realpath(directory).encode()).hexdigest()[:20].encode()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.pid = os.getpid()
        self.listening = False
        self._peers: list[int] = []
        self._listed = float("-inf")
        self._lock = threading.Lock()

    def _address(self, pid: int) -> bytes:
        return self._prefix + b"-" + str(pid).encode()

    def listen(self) -> None:
        """Be rung by the other processes (then read ``sock``; ``drain`` it)."""
        self.sock.bind(self._address(self.pid))
        with open(os.path.join(self.directory, str(self.pid)), "w"):
            pass
        self.listening = True

    def ring(self) -> None:
        """Tell every other listener that this process committed. Never raises."""
        with self._lock:
            now = time.monotonic()
            if now - self._listed > RELIST:
                self._listed = now
                try:
                    self._peers = [int(n) for n in os.listdir(self.directory) if n.isdigit() and int(n) != self.pid]
                except OSError:
                    self._peers = []
            gone = []
            for pid in self._peers:
                try:
                    self.sock.sendto(b"!", self._address(pid))
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:  # refused or absent: that process is gone
                    gone.append(pid)
            for pid in gone:
                self._peers.remove(pid)
                try:
                    os.unlink(os.path.join(self.directory, str(pid)))
                except OSError:
                    pass

    def drain(self) -> None:
        """Read every pending ring."""
        while True:
            try:
                self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return

    def close(self) -> None:
        if self.listening:
            try:
                os.unlink(os.path.join(self.directory, str(self.pid)))
            except OSError:
                pass
        self.sock.close()


class BellReader:
    """A Twisted read descriptor: ``on_ring()`` runs (on the reactor thread) when rung.
    ``reactor.addReader(BellReader(bell, f))``."""

    def __init__(self, bell: Bell, on_ring: Callable[[], None]) -> None:
        self.bell = bell
        self.on_ring = on_ring

    def fileno(self) -> int:
        return self.bell.sock.fileno()

    def doRead(self) -> None:
        self.bell.drain()
        self.on_ring()

    def connectionLost(self, reason: Any) -> None:
        pass

    def logPrefix(self) -> str:
        return "bell"
