"""/health and /metrics when the store cannot be read: 503 with an incident id that is in
the log, never a traceback page (the success paths are tested against a real node in
tests/integration/test_http.py)."""
from __future__ import annotations

import json
from typing import Any

from twisted.logger import globalLogPublisher
from twisted.web.test.requesthelper import DummyRequest

from vmdir.server.http import Health, Metrics, NodeState


class _BrokenStore(NodeState):
    def __init__(self) -> None:
        super().__init__(directory=None, node="vm:1")  # type: ignore[arg-type]

    def read(self, figures: bool = False) -> dict[str, Any]:
        raise OSError(5, "Input/output error: /var/lib/lightwave/data.mdb")


def _render(resource: Any) -> tuple[int, bytes, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        req = DummyRequest([b""])
        req.path = b"/x"
        body = resource.render_GET(req)
    finally:
        globalLogPublisher.removeObserver(events.append)
    return req.responseCode, body, events


def test_health_says_unavailable_with_an_incident_in_the_log() -> None:
    code, body, events = _render(Health(_BrokenStore()))
    doc = json.loads(body)
    assert code == 503 and doc["status"] == "unavailable" and doc["node"] == "vm:1", doc
    incident = doc["error"].split("incident ")[1].split()[0]
    assert "OSError" in doc["error"] and "Traceback" not in doc["error"] and "/var/lib" not in doc["error"]
    assert any(e.get("incident") == incident and "log_failure" in e for e in events), events


def test_metrics_say_503_with_an_incident_in_the_log() -> None:
    code, body, events = _render(Metrics(_BrokenStore()))
    assert code == 503 and body.startswith(b"the store cannot be read (OSError); incident "), body
    incident = body.decode().split("incident ")[1].split()[0]
    assert any(e.get("incident") == incident and "log_failure" in e for e in events), events
