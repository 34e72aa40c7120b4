"""The node's HTTPS front end as a load balancer, Prometheus and an operator's curl use it:
/health and /metrics on a node with two workers (the figures are the node's whichever
worker answers). Replication's side (a restored node's 503, partner gauges) is checked in
test_replication_lifecycle.py."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import (
    ADMIN, ADMIN_PW, BASE, LIGHTWAVE, ROOT, Server, free_port, health, https_get, make_server, run_tool, scrape,
    wait_for,
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory, "http", workers=2)
    srv.start()
    yield srv
    srv.stop()


def test_health_is_ok_and_gives_the_node_state(node: Server) -> None:
    code, doc = health(node)
    assert code == 200 and doc["status"] == "ok" and doc["writes_paused"] is None, doc
    assert doc["replication"] == {}  # a single node: no partner
    r = run_tool("ldapsearch", "-LLL", "-H", node.url, "-x", "-D", ADMIN, "-w", ADMIN_PW,
                 "-b", f"cn={doc['node']},cn=Nodes,cn=System", "-s", "base", "lightwaveHighestUSN")
    assert r.returncode == 0, r.stderr
    assert f"lightwaveHighestUsn: {doc['highest_usn']}" in r.stdout, (r.stdout, doc)
    # what an operator types (the banner prints it): curl, checking the node's certificate
    c = subprocess.run(["curl", "-sS", "--cacert", os.path.join(node.data_dir, "tls", "server.crt"),
                        f"https://localhost:{node.https_port}/health"], capture_output=True, text=True, timeout=30)
    assert c.returncode == 0 and '"status": "ok"' in c.stdout, c.stdout + c.stderr


def test_metrics_count_the_operations_of_every_worker(node: Server) -> None:
    before = scrape(node)
    ldif = "".join(f"dn: cn=metric{i},{BASE}\nobjectClass: person\ncn: metric{i}\nsn: m\n\n" for i in range(5))
    r = run_tool("ldapadd", "-H", node.url, "-x", "-D", ADMIN, "-w", ADMIN_PW, input=ldif)
    assert r.returncode == 0, r.stderr
    for _ in range(3):
        r = run_tool("ldapwhoami", "-H", node.url, "-x", "-D", ADMIN, "-w", ADMIN_PW)
        assert r.returncode == 0, r.stderr
    adds = ("lightwave_ldap_operations_total", (("operation", "add"),))
    binds = ("lightwave_ldap_operations_total", (("operation", "bind"),))
    # each scrape is a new connection, taken by either worker: every one sees the same node-wide counts
    scrapes = [scrape(node) for _ in range(6)]
    for after in scrapes:
        assert after[adds] - before[adds] == 5, (before[adds], after[adds])
        assert after[binds] - before[binds] == 4, (before[binds], after[binds])  # ldapadd's and 3 whoamis
        assert after[("lightwave_directory_records", ())] - before[("lightwave_directory_records", ())] == 5
        assert after[("lightwave_directory_highest_usn", ())] >= before[("lightwave_directory_highest_usn", ())] + 5
        assert after[("lightwave_ldap_connections_total", ())] >= before[("lightwave_ldap_connections_total", ())] + 4
        assert after[("lightwave_writes_paused", ())] == 0
        assert after[("lightwave_store_used_bytes", ())] > 0


def test_other_paths_and_methods_are_refused_and_nothing_secret_is_shown(node: Server) -> None:
    assert https_get(node, "/nope")[0] == 404
    assert https_get(node, "/health", method="POST")[0] == 405
    assert https_get(node, "/metrics", method="DELETE")[0] == 501  # a method this server has nowhere
    for path in ("/health", "/metrics"):
        body = https_get(node, path)[2]
        assert b"Administrator" not in body and ADMIN_PW.encode() not in body and b"metric0" not in body


def test_a_second_node_on_a_port_in_use_is_refused_before_it_writes_anything(node: Server, tmp_path) -> None:
    """SO_REUSEPORT would let it share the port and silently take half the connections."""
    env = dict(os.environ, LIGHTWAVE_ADMIN_PASSWORD=ADMIN_PW)
    for flag, taken in (("--ldap-port", node.ldap_port), ("--https-port", node.https_port)):
        ports = {"--ldap-port": free_port(), "--ldaps-port": free_port(), "--https-port": free_port(), flag: taken}
        data = tmp_path / flag.strip("-")
        r = subprocess.run([LIGHTWAVE, "up", "--data-dir", str(data), "--listen", "127.0.0.1",
                            *(x for kv in ports.items() for x in (kv[0], str(kv[1])))],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
        assert r.returncode == 1, r.stdout + r.stderr
        assert (f"another Lightwave node on this machine is starting or serving on 127.0.0.1 port {taken} "
                in r.stderr), r.stderr
        assert not data.exists()  # refused before the first start initialised anything
    assert health(node)[0] == 200  # the running node never noticed


def test_two_nodes_started_at_the_same_instant_on_one_port_one_is_refused(tmp_path) -> None:
    """Both would find the port free; the first to claim it serves, the other is refused
    before it writes anything, whichever wins the race."""
    env = dict(os.environ, LIGHTWAVE_ADMIN_PASSWORD=ADMIN_PW)
    ports = [free_port(), free_port(), free_port()]
    procs = []
    for name in ("one", "two"):
        cmd = [LIGHTWAVE, "up", "--data-dir", str(tmp_path / name), "--listen", "127.0.0.1", "--workers", "1",
               "--ldap-port", str(ports[0]), "--ldaps-port", str(ports[1]), "--https-port", str(ports[2])]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT))
    try:
        loser = wait_for("one of the two exits", lambda: next((p for p in procs if p.poll() is not None), None),
                         timeout=60)
        winner = procs[1 - procs.index(loser)]
        out, err = loser.communicate(timeout=10)
        assert loser.returncode == 1, out + err
        assert "another Lightwave node on this machine is starting or serving on 127.0.0.1 port" in err, err
        assert not (tmp_path / ("one", "two")[procs.index(loser)]).exists()  # refused before writing anything
        srv = Server(str(tmp_path / ("one", "two")[procs.index(winner)]), *ports)
        wait_for("the other one serves", lambda: winner.poll() is None and health(srv)[0] == 200
                 if _answers(ports[2]) else None, timeout=60)
        r = run_tool("ldapwhoami", "-H", f"ldap://127.0.0.1:{ports[0]}", "-x", "-D", ADMIN, "-w", ADMIN_PW)
        assert r.returncode == 0, r.stderr
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.communicate(timeout=30)
    assert all(p.returncode in (0, 1) for p in procs), [p.returncode for p in procs]


def _answers(port: int) -> bool:
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
