"""The audit log of a running node as an operator reads it: security events are in the
log as soon as the client has its answer; successful binds within a second (they are
held and written together), and all of them by the time the node has stopped."""
from __future__ import annotations

import json

import pytest

from tests.conftest import ADMIN, ADMIN_PW, Server, make_server, run_tool, wait_for


def audit(srv: Server) -> list[dict]:
    return [json.loads(ln.split(" audit ", 1)[1]) for ln in srv.log().splitlines() if " [audit] audit {" in ln]


def test_failures_at_once_binds_within_a_second_and_everything_by_the_stop(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = make_server(tmp_path_factory, "audit", workers=2).start()
    try:
        r = run_tool("ldapwhoami", "-H", srv.url, "-x", "-D", ADMIN, "-w", "not-the-Password-1")
        assert r.returncode == 49, r.stderr
        # written before the answer was sent: nothing to wait for
        assert [e for e in audit(srv) if e["event"] == "bind_failure" and e["dn"] == ADMIN], srv.log()
        for _ in range(3):
            assert run_tool("ldapwhoami", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW).returncode == 0
        wait_for("the successful binds are in the audit log",
                 lambda: len([e for e in audit(srv) if e["event"] == "bind" and e["dn"] == ADMIN]) == 3, timeout=5)
        for _ in range(4):
            assert run_tool("ldapwhoami", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW).returncode == 0
    finally:
        assert srv.stop() == 0
    binds = [e for e in audit(srv) if e["event"] == "bind" and e["dn"] == ADMIN]
    assert len(binds) == 7, binds  # none held back at the stop
    assert all(e["peer"].startswith("127.0.0.1:") for e in binds), binds
    assert "not-the-Password-1" not in srv.log() and ADMIN_PW not in srv.log()
