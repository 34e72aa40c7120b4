"""A node's replication agent (layer 3 loop, blocking, in its own process): one puller
thread per agreement under this node's entry, started and stopped as agreements appear
and disappear (they replicate like any entry); between looks, the node's housekeeping
(``replication.maintenance``: tombstone purge, the restore mark, its own entry)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from vmdir.directory import Directory

from replication._partner import Partner, fingerprint, published_elsewhere
from replication._puller import Puller
from replication._state import forget_status
from replication.maintenance import DEFAULT_TOMBSTONE_LIFETIME, purge_tombstones, tend_local_node
from replication.topology import Agreement, agreements, node_dn, node_trust, witnesses

RESCAN = 1.0  # seconds between looks at the agreements


def purge_interval(lifetime: float) -> float:
    """Seconds between tombstone purges: a tenth of the lifetime, between 0.5 s and an hour."""
    return min(3600.0, max(0.5, lifetime / 10))


def run_agent(d: Directory, name: str, url: str, password: str, stop: threading.Event,
              log: Callable[[str], None] = lambda msg: None,
              tombstone_lifetime: float = DEFAULT_TOMBSTONE_LIFETIME, certificate: bytes | None = None) -> None:
    """Replicate until ``stop`` is set. ``certificate``: the TLS certificate (DER) this node
    serves with; it publishes it in its entry and announces it, and ``url``, to the partners it
    pulls from."""
    running: dict[Agreement, tuple[threading.Thread, threading.Event]] = {}
    lock = threading.Lock()  # one writer at a time in this process (the Directory's caches)
    # the first purge a while after start (it reads every entry; nothing is urgent then)
    next_purge = time.monotonic() + min(60.0, purge_interval(tombstone_lifetime))
    try:
        while not stop.is_set():
            try:
                with lock:
                    tend_local_node(d, name, url, log, certificate=certificate)
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + purge_interval(tombstone_lifetime)
                    n = purge_tombstones(d, tombstone_lifetime, lock=lock)
                    if n.entries or n.values:
                        log(f"purged {n.entries} tombstones and {n.values} value tombstones older than "
                            f"{tombstone_lifetime:g} s")
            except Exception as exc:  # noqa: BLE001 - housekeeping failed: say so, replicate anyway
                log(f"housekeeping: {exc}")
            want = set(agreements(d, name))
            for a in [a for a in running if a not in want]:
                log(f"agreement with {a.supplier} removed; stopping")
                running.pop(a)[1].set()
                if not any(x.supplier == a.supplier for x in want):  # its status no longer means anything
                    with lock, d.store.write() as w:
                        forget_status(w, a.supplier)
            for a in want - set(running):
                log(f"pulling from {a.supplier} at {a.url}")
                ev = threading.Event()
                partner = Partner(a.url, node_dn(name), password, certificate=certificate, own_url=url,
                                  trust=lambda supplier=a.supplier: node_trust(d, supplier),
                                  vouch=lambda der, a=a: _vouch(d, name, password, a, der, log))
                p = Puller(d, a.supplier, partner, stop=ev, log=log, write_lock=lock)
                t = threading.Thread(target=p.run, name=f"pull-{a.supplier}", daemon=True)
                t.start()
                running[a] = (t, ev)
            stop.wait(RESCAN)
    finally:
        for t, ev in running.values():
            ev.set()
        for t, _ in running.values():  # a puller blocked in a wait is a daemon thread: not waited for long
            t.join(timeout=0.5)


def _vouch(d: Directory, name: str, password: str, a: Agreement, der: bytes, log: Callable[[str], None]) -> str | None:
    """Whether another node publishes the key ``a``'s supplier presented (it has a new one,
    announced to the nodes it pulls from, not yet replicated here): who, or None."""
    who = published_elsewhere(der, node_dn(a.supplier), witnesses(d, name, a.supplier), node_dn(name), password)
    if who is not None:
        log(f"{a.supplier} at {a.url} presented a certificate with a key not published here yet "
            f"(SHA-256 fingerprint {fingerprint(der)}); accepted: node {who} publishes it for {a.supplier}")
    return who
