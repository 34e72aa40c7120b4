"""The node's HTTPS front end (DESIGN section 8): ``/health`` and ``/metrics``.

Every worker serves them on the HTTPS port (SO_REUSEPORT, the node's TLS certificate), so
whichever worker answers, the figures are the node's: the operation counters are the
ones all workers share (``monitor.Counters``), the rest is read from the store.

- ``GET /health``: JSON. 200 with ``"status": "ok"`` when this node serves reads and takes
  writes; 503 with ``"status": "writes paused"`` (a restored node still catching up: its
  data may be stale, send clients elsewhere) or ``"unavailable"`` (the store cannot be
  read). The body also gives the node, its highest USN and each replication partner's
  last pull outcome.
- ``GET /metrics``: Prometheus text exposition, or OpenMetrics when the scraper asks for it
  (prometheus_client).

Neither needs authentication (a load balancer and a scraper use them) and neither shows
a secret or a user's name. The services to come (CA, token service) add their resources
to the same tree.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from vmdir.directory import Directory, writes_paused
from vmdir.server.monitor import Counters
from vmdir.store import ReadTxn

log = Logger()

# partner name -> its last pull outcome (replication's status record: last_success,
# last_error, last_error_time, changes_behind, seconds_behind..., and the two times as
# Unix seconds, last_success_at and last_error_at); given by the node's composition root,
# as vmdir does not know replication
PartnerStatus = Callable[[ReadTxn], dict[str, dict[str, Any]]]

OPERATIONS = ("bind", "search", "compare", "add", "modify", "delete", "modrdn", "extended", "abandon")


class NodeState:
    """What both resources read: the directory, the shared counters, replication's status."""

    def __init__(self, directory: Directory, node: str, counters: Counters | None = None,
                 partners: PartnerStatus | None = None) -> None:
        self.directory = directory
        self.node = node
        self.counters = counters
        self.partners = partners

    def read(self, figures: bool = False) -> dict[str, Any]:
        """The node's state, with (``figures``) the store's size and the counters for
        /metrics; raises what the store raises when it cannot be read."""
        d = self.directory
        with d.store.read() as r:
            state = {
                "node": self.node,
                "highest_usn": r.meta_int("next_usn"),
                "writes_paused": writes_paused(r),
                "replication": self.partners(r) if self.partners is not None else {},
            }
        if figures:
            state["store"] = d.store.stat()
            state["counters"] = self.counters.snapshot() if self.counters is not None else {}
        return state


class Health(Resource):
    isLeaf = True

    def __init__(self, state: NodeState) -> None:
        super().__init__()
        self.state = state

    def render_GET(self, request: Request) -> bytes:
        try:
            st = self.state.read()
        except Exception as exc:  # the store itself failed: say so, never a traceback
            return _json(request, 503, {"status": "unavailable", "node": self.state.node,
                                        "error": _incident(request, exc)})
        body = {
            "status": "ok" if st["writes_paused"] is None else "writes paused",
            "node": st["node"],
            "highest_usn": st["highest_usn"],
            "writes_paused": st["writes_paused"],
            "replication": {name: {k: p.get(k) for k in ("last_success", "last_error", "last_error_time",
                                                          "changes_behind", "seconds_behind")}
                            for name, p in sorted(st["replication"].items())},
        }
        return _json(request, 200 if st["writes_paused"] is None else 503, body)


class Metrics(Resource):
    isLeaf = True

    def __init__(self, state: NodeState) -> None:
        super().__init__()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(state))

    def render_GET(self, request: Request) -> bytes:
        # the format the scraper asks for (Prometheus text, or OpenMetrics)
        encode, ctype = choose_encoder((request.getHeader(b"accept") or b"").decode("latin-1"))
        request.setHeader(b"content-type", ctype.encode())
        request.setHeader(b"cache-control", b"no-store")
        try:
            return encode(self.registry)
        except Exception as exc:  # the store failed (the collector reads it): no traceback page
            request.setResponseCode(503)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return (_incident(request, exc) + "\n").encode()


class _Collector:
    def __init__(self, state: NodeState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        st = self.state.read(figures=True)
        c = st["counters"]
        if c:
            yield _counter("lightwave_ldap_connections", "LDAP connections accepted", c["connections_total"])
            yield _gauge("lightwave_ldap_connections_open", "LDAP connections open now", c["connections_current"])
            ops = CounterMetricFamily("lightwave_ldap_operations", "LDAP operations received, by operation",
                                      labels=["operation"])
            for op in OPERATIONS:
                ops.add_metric([op], c[f"ops_{op}"])
            yield ops
            yield _counter("lightwave_ldap_entries_returned", "Search result entries sent", c["entries_sent"])
            errs = CounterMetricFamily("lightwave_ldap_errors", "Requests refused as malformed (protocol) and "
                                       "internal errors (each with an incident id in the log)", labels=["kind"])
            errs.add_metric(["protocol"], c["errors_protocol"])
            errs.add_metric(["internal"], c["errors_internal"])
            yield errs
        yield _gauge("lightwave_directory_highest_usn", "The highest update sequence number used on this node",
                     st["highest_usn"])
        yield _gauge("lightwave_directory_records", "Entry records in the store (tombstones included)",
                     st["store"]["records"])
        yield _gauge("lightwave_store_used_bytes", "Bytes of the database file in use", st["store"]["used_bytes"])
        yield _gauge("lightwave_store_map_bytes", "The store's maximum size (LMDB map size)", st["store"]["map_size"])
        yield _gauge("lightwave_writes_paused", "1 while this node refuses local writes (a restored node "
                     "catching up)", 0 if st["writes_paused"] is None else 1)
        partners = st["replication"]
        behind = GaugeMetricFamily("lightwave_replication_changes_behind",
                                   "Changes the partner had that this node had not pulled, at the last pull",
                                   labels=["partner"])
        seconds = GaugeMetricFamily("lightwave_replication_seconds_behind",
                                    "How long this node has been behind the partner", labels=["partner"])
        success = GaugeMetricFamily("lightwave_replication_last_success_timestamp_seconds",
                                    "When the last pull from the partner succeeded (Unix time)", labels=["partner"])
        failing = GaugeMetricFamily("lightwave_replication_failing",
                                    "1 when the partner's last pull failed", labels=["partner"])
        for name, p in sorted(partners.items()):
            if p.get("changes_behind") is not None:
                behind.add_metric([name], p["changes_behind"])
            if p.get("seconds_behind") is not None:
                seconds.add_metric([name], p["seconds_behind"])
            ok_at, err_at = p.get("last_success_at"), p.get("last_error_at")
            if ok_at is not None:
                success.add_metric([name], ok_at)
            failing.add_metric([name], 1 if err_at is not None and (ok_at is None or err_at >= ok_at) else 0)
        yield from (behind, seconds, success, failing)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _incident(request: Request, exc: BaseException) -> str:
    """Log ``exc`` (being handled) under a new incident id; the sentence for the client."""
    incident = os.urandom(4).hex()
    log.failure("incident {incident}: {path} could not read the store", incident=incident,
                path=request.path.decode("latin-1"))
    return f"the store cannot be read ({type(exc).__name__}); incident {incident} in the server log"


def _json(request: Request, code: int, body: dict[str, Any]) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(body, indent=1, sort_keys=True).encode() + b"\n"


class _Site(Site):
    noisy = False  # no "Starting factory" line per worker

    def __init__(self, root: Resource, log_requests: bool) -> None:
        super().__init__(root)
        self.log_requests = log_requests

    def log(self, request: Request) -> None:
        if self.log_requests:
            super().log(request)


def site(state: NodeState, log_requests: bool = False) -> Site:
    """The HTTP site of a worker: ``/health`` and ``/metrics`` (anything else: 404)."""
    root = Resource()
    root.putChild(b"health", Health(state))
    root.putChild(b"metrics", Metrics(state))
    return _Site(root, log_requests)
