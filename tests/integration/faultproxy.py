"""A fault-injecting TCP proxy for multi-node tests (standard library only, threads).

``FaultProxy(target_port)`` listens on a free port of 127.0.0.1 and forwards every
connection to ``127.0.0.1:target_port``. What it does to the traffic can be switched while
connections are open:

- ``pass_through()``: forward everything (the initial mode).
- ``delay(ms)``: forward each chunk read from either side ``ms`` milliseconds late.
- ``drop()``: a blackhole. Connections are still accepted, but every byte read from either
  side is swallowed and nothing is forwarded; no connection is closed.
- ``refuse()``: new connections are closed as soon as they are accepted; open ones keep
  their current behaviour.
- ``cut(after_bytes=0)``: close both sides of every open connection, at once or once
  ``after_bytes`` more bytes have been forwarded (in any connection and direction), so that
  the cut lands in the middle of a stream. A one-shot action: the mode stays as it is.
- ``heal()``: forward everything again, and close the connections that lost bytes in a
  blackhole (their streams cannot resume: a real network would have kept those bytes or
  reset the connection, never silently lost them).

Counters (read them to wait for a fault to have happened): ``accepted``, ``refused``,
``forwarded`` and ``swallowed`` (bytes), ``delayed`` (chunks), ``cuts`` (connections cut).
"""
from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any

MODES = ("pass", "delay", "drop", "refuse")
CHUNK = 65536


class _Conn:
    __slots__ = ("client", "upstream", "closed", "lost_bytes")

    def __init__(self, client: socket.socket, upstream: socket.socket | None) -> None:
        self.client = client
        self.upstream = upstream
        self.closed = False
        self.lost_bytes = upstream is None  # accepted in a blackhole: never forwards


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1", *, connect_timeout: float = 5.0) -> None:
        self.target = (target_host, target_port)
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._mode = "pass"
        self._delay = 0.0
        self._cut_budget: int | None = None
        self._conns: set[_Conn] = set()
        self._stopped = threading.Event()
        self.accepted = self.refused = self.forwarded = self.swallowed = self.delayed = self.cuts = 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.1)  # the accept loop looks at _stopped this often
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"faultproxy-{self.port}", daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def mode(self) -> str:
        return self._mode

    def __repr__(self) -> str:
        return f"FaultProxy(:{self.port} -> :{self.target[1]}, {self._mode})"

    # ------------------------------------------------------------------ switching

    def pass_through(self) -> None:
        with self._lock:
            self._mode, self._delay = "pass", 0.0

    def delay(self, ms: float) -> None:
        with self._lock:
            self._mode, self._delay = "delay", ms / 1000.0

    def drop(self) -> None:
        with self._lock:
            self._mode = "drop"

    def refuse(self) -> None:
        with self._lock:
            self._mode = "refuse"

    def cut(self, after_bytes: int = 0) -> int:
        """Close every open connection now (returns how many), or arm a cut that happens once
        ``after_bytes`` more bytes have been forwarded (returns 0)."""
        with self._lock:
            if after_bytes > 0:
                self._cut_budget = after_bytes
                return 0
            self._cut_budget = None
            victims = [c for c in self._conns if not c.closed]
        for c in victims:
            self._close(c, cut=True)
        return len(victims)

    def heal(self) -> None:
        """Forward everything; connections that lost bytes in a blackhole are closed."""
        with self._lock:
            self._mode, self._delay, self._cut_budget = "pass", 0.0, None
            lost = [c for c in self._conns if c.lost_bytes and not c.closed]
        for c in lost:
            self._close(c, cut=True)

    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for c in self._conns if not c.closed)

    def close(self) -> None:
        """Stop listening and close every connection (idempotent)."""
        self._stopped.set()
        self._acceptor.join(timeout=5)
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            self._close(c)

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the work

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stopped.is_set():
                    return
                time.sleep(0.01)
                continue
            client.settimeout(None)
            with self._lock:
                mode = self._mode
            if mode == "refuse":
                self.refused += 1
                _abort(client)
                continue
            upstream = None
            if mode != "drop":
                try:
                    upstream = socket.create_connection(self.target, timeout=self.connect_timeout)
                    upstream.settimeout(None)
                except OSError:  # the target is down: so is the link
                    self.refused += 1
                    _abort(client)
                    continue
            conn = _Conn(client, upstream)
            with self._lock:
                self.accepted += 1
                self._conns.add(conn)
            threading.Thread(target=self._pump, args=(conn, client, upstream), daemon=True,
                             name=f"faultproxy-{self.port}-up").start()
            if upstream is not None:
                threading.Thread(target=self._pump, args=(conn, upstream, client), daemon=True,
                                 name=f"faultproxy-{self.port}-down").start()

    def _pump(self, conn: _Conn, src: socket.socket, dst: socket.socket | None) -> None:
        try:
            while not conn.closed:
                data = src.recv(CHUNK)
                if not data:
                    break
                with self._lock:
                    mode, delay = self._mode, self._delay
                if mode == "drop" or dst is None:
                    with self._lock:
                        self.swallowed += len(data)
                        conn.lost_bytes = True
                    continue
                if mode == "delay" and delay > 0:
                    time.sleep(delay)
                    with self._lock:
                        self.delayed += 1
                if conn.closed:
                    break
                cut_now = False
                with self._lock:
                    if self._cut_budget is not None:
                        if len(data) >= self._cut_budget:
                            data, cut_now, self._cut_budget = data[:self._cut_budget], True, None
                        else:
                            self._cut_budget -= len(data)
                    self.forwarded += len(data)
                dst.sendall(data)
                if cut_now:
                    self.cut()
                    break
        except OSError:
            pass
        finally:
            self._close(conn)

    def _close(self, conn: _Conn, cut: bool = False) -> None:
        with self._lock:
            if conn.closed:
                return
            conn.closed = True
            self._conns.discard(conn)
            if cut:
                self.cuts += 1
        for s in (conn.client, conn.upstream):
            if s is not None:
                _quietly(s.shutdown, socket.SHUT_RDWR)  # wakes the other pump, blocked in recv
                _quietly(s.close)


def _quietly(fn: Any, *args: Any) -> None:
    """``fn(*args)``, ignoring OSError (the socket may be closed or reset already)."""
    try:
        fn(*args)
    except OSError:
        pass


def _abort(s: socket.socket) -> None:
    """Close at once with a reset (SO_LINGER 0): the peer sees the connection refused."""
    _quietly(s.setsockopt, socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _quietly(s.close)


__all__ = ["FaultProxy", "MODES"]
