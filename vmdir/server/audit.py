"""The audit log: one JSON object per line, prefixed by a timestamp and ``[audit]``, on the
same stream as the server log. Cheap enough to record every bind.

Successful binds, the bulk of the log (one per authentication), are held in memory and
written together: when ``hold`` seconds have passed since the first one held, when 64 KiB
are held, when any other event comes (so the order is kept), or at ``flush()`` (the
server calls it every ``hold`` seconds and when it stops). A write and flush per bind was
a sixth of a bind's cost. Everything else (failures, lockouts, changes) is written at once:
a crash loses at most ``hold`` seconds of successful binds, never a security event. Like
the access-log buffering of 389-ds and Oracle DS; ``hold=0`` writes every line at once.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Final, TextIO

_ENCODE: Final = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode  # json.dumps builds one per call
_STRING: Final = json.encoder.encode_basestring  # the JSON string form, as _ENCODE writes strings


_KEYS: Final[dict[str, str]] = {}  # '"key": ' by key (the events use a few dozen keys)


def encode(rec: dict[str, Any]) -> str:
    """``rec`` as one line of JSON, keys sorted. A record of strings only (a bind's: event,
    who, peer, dn) is written directly: the same text for two thirds of the encoder's time."""
    parts = []
    for k in sorted(rec):
        v = rec[k]
        if type(v) is not str:
            return _ENCODE(rec)
        key = _KEYS.get(k)
        if key is None:
            key = _STRING(k) + ": "
            if len(_KEYS) < 256:
                _KEYS[k] = key
        parts.append(key + _STRING(v))
    return "{" + ", ".join(parts) + "}"

HELD_EVENTS = frozenset({"bind"})
HOLD_SECONDS = 1.0
HOLD_BYTES = 64 * 1024


class AuditLog:
    def __init__(self, out: TextIO, hold: float = HOLD_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self._out = out
        self.hold = hold
        self._clock = clock
        self._lock = threading.Lock()  # writer thread, pool threads and the reactor all report events
        self._stamp: tuple[int, str] = (-1, "")  # (second, its text): one tuple, read and replaced whole
        self._held: list[str] = []
        self._held_bytes = 0
        self._held_since = 0.0

    def __call__(self, rec: dict[str, Any]) -> None:
        now = self._clock()
        second = int(now)
        line = f"{self._stamp_of(second)} [audit] audit {encode(rec)}\n"
        with self._lock:
            if self.hold > 0 and rec.get("event") in HELD_EVENTS:
                if not self._held:
                    self._held_since = now
                self._held.append(line)
                self._held_bytes += len(line)
                if now - self._held_since < self.hold and self._held_bytes < HOLD_BYTES:
                    return
                line = ""
            self._write(line)

    def flush(self) -> None:
        """Write what is held (the server calls this every ``hold`` seconds and at its end)."""
        with self._lock:
            if self._held:
                self._write("")

    def _stamp_of(self, second: int) -> str:
        cached, text = self._stamp
        if cached != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(second))
            self._stamp = (second, text)
        return text

    def _write(self, line: str) -> None:
        """Write the held lines, then ``line``; the caller holds the lock."""
        if self._held:
            self._held.append(line)
            line = "".join(self._held)
            self._held.clear()
            self._held_bytes = 0
        self._out.write(line)
        self._out.flush()
