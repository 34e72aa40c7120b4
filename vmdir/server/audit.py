"""The audit log: one JSON object per line, prefixed by a timestamp and ``[audit]``, on the
same stream as the server log. Cheap enough to record every bind."""
from __future__ import annotations

import json
import threading
import time
from typing import Any, TextIO

_ENCODE = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode  # json.dumps builds one per call


class AuditLog:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._second = -1
        self._stamp = ""

    def __call__(self, rec: dict[str, Any]) -> None:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(now))
        line = f"{self._stamp} [audit] audit {_ENCODE(rec)}\n"
        with self._lock:  # writer thread, pool threads and the reactor all report events
            self._out.write(line)
            self._out.flush()
