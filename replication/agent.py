"""A node's replication agent (layer 3 loop, blocking, in its own process): one puller
thread per agreement under this node's entry, started and stopped as agreements appear
and disappear (they replicate like any entry)."""
from __future__ import annotations

import threading
from collections.abc import Callable

from vmdir.directory import Directory

from replication._partner import Partner
from replication._puller import Puller
from replication.topology import Agreement, agreements, node_dn

RESCAN = 1.0  # seconds between looks at the agreements


def run_agent(d: Directory, name: str, password: str, stop: threading.Event,
              log: Callable[[str], None] = lambda msg: None) -> None:
    """Replicate until ``stop`` is set."""
    running: dict[Agreement, tuple[threading.Thread, threading.Event]] = {}
    lock = threading.Lock()  # one writer at a time in this process (the Directory's caches)
    try:
        while not stop.is_set():
            want = set(agreements(d, name))
            for a in [a for a in running if a not in want]:
                log(f"agreement with {a.supplier} removed; stopping")
                running.pop(a)[1].set()
            for a in want - set(running):
                log(f"pulling from {a.supplier} at {a.url}")
                ev = threading.Event()
                p = Puller(d, a.supplier, Partner(a.url, node_dn(name), password), stop=ev, log=log, write_lock=lock)
                t = threading.Thread(target=p.run, name=f"pull-{a.supplier}", daemon=True)
                t.start()
                running[a] = (t, ev)
            stop.wait(RESCAN)
    finally:
        for t, ev in running.values():
            ev.set()
        for t, _ in running.values():  # a puller blocked in a wait is a daemon thread: not waited for long
            t.join(timeout=0.5)
