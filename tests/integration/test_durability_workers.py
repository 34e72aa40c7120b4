"""Durability (acknowledged writes survive kill -9) and several worker processes
(USN order = commit order, no lost update), driven with ldap3 over real sockets."""
from __future__ import annotations

import threading

import ldap3
import pytest
from ldap3 import MODIFY_INCREMENT, MODIFY_REPLACE

from tests.conftest import ADMIN, ADMIN_PW, BASE, make_server


def conn(url: str) -> ldap3.Connection:
    c = ldap3.Connection(ldap3.Server(url, get_info=ldap3.NONE), ADMIN, ADMIN_PW, auto_bind=True,
                         client_strategy=ldap3.SYNC, raise_exceptions=False)
    return c


def test_acknowledged_adds_survive_kill9(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = make_server(tmp_path_factory, "durable", workers=2)
    srv.start()
    try:
        c = conn(srv.url)
        acked = []
        for i in range(60):
            ok = c.add(f"cn=d{i},cn=Users,{BASE}", ["top", "person"], {"cn": f"d{i}", "sn": f"s{i}"})
            assert ok, c.result
            acked.append(f"d{i}")
        srv.kill9()
        srv.start()
        c = conn(srv.url)
        c.search(f"cn=Users,{BASE}", "(cn=d*)", attributes=["cn"])
        found = {e.cn.value for e in c.entries}
        assert set(acked) <= found
    finally:
        srv.stop()


def test_concurrent_increments_lose_nothing_with_workers(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = make_server(tmp_path_factory, "workers", workers=2)
    srv.start()
    try:
        c = conn(srv.url)
        dn = f"cn=counter,cn=Users,{BASE}"
        assert c.add(dn, ["top", "posixGroup"], {"cn": "counter", "gidNumber": "0"}), c.result
        threads, per, errors = 8, 40, []

        def worker() -> None:
            cc = conn(srv.url)  # new connections spread across the worker processes
            for _ in range(per):
                if not cc.modify(dn, {"gidNumber": [(MODIFY_INCREMENT, [1])]}):
                    errors.append(cc.result)
            cc.unbind()

        ts = [threading.Thread(target=worker) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert errors == []
        c.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["gidNumber", "uSNChanged"])
        assert int(c.entries[0].gidNumber.value) == threads * per
        # both worker processes served connections
        assert len(srv.pids()) >= 3
    finally:
        srv.stop()


def test_usn_order_is_commit_order(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = make_server(tmp_path_factory, "usn", workers=2)
    srv.start()
    try:
        results: list[tuple[int, str]] = []
        lock = threading.Lock()

        def writer(k: int) -> None:
            cc = conn(srv.url)
            for i in range(15):
                dn = f"cn=u{k}-{i},cn=Users,{BASE}"
                assert cc.add(dn, ["top", "person"], {"cn": f"u{k}-{i}", "sn": "x"}), cc.result
                cc.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["uSNCreated"])
                with lock:
                    results.append((int(cc.entries[0].uSNCreated.value), dn))
            cc.unbind()

        ts = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        usns = [u for u, _ in results]
        assert len(set(usns)) == len(usns) == 60  # never reused across processes
        # within one client (sequential writes), USNs increase
        for k in range(4):
            mine = [u for u, dn in results if f"cn=u{k}-" in dn]
            assert mine == sorted(mine)
    finally:
        srv.stop()


def test_modify_replace_survives_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = make_server(tmp_path_factory, "restart", workers=1)
    srv.start()
    try:
        c = conn(srv.url)
        assert c.modify(f"cn=Users,{BASE}", {"description": [(MODIFY_REPLACE, ["kept"])]}), c.result
        srv.stop()
        srv.start()
        c = conn(srv.url)
        c.search(f"cn=Users,{BASE}", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["description"])
        assert c.entries[0].description.value == "kept"
    finally:
        srv.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_as_soon_as_the_port_answers_is_a_clean_stop(tmp_path_factory: pytest.TempPathFactory,
                                                             workers: int) -> None:
    """What a service manager or an impatient operator does: stop a node that has just come
    up. Its ports answer before its last start-up steps; the stop must still be clean (exit
    0, shutdown run), not death by the signal (it was: -15 with one worker)."""
    for round_ in range(3):
        srv = make_server(tmp_path_factory, f"term{workers}", workers=workers)
        srv.start()  # returns as soon as every port accepts a connection
        assert srv.stop() == 0, srv.log()
        srv.start()  # and the data directory serves again
        c = conn(srv.url)
        assert c.add(f"cn=t{round_},cn=Users,{BASE}", ["top", "person"], {"cn": f"t{round_}", "sn": "t"}), c.result
        c.unbind()
        assert srv.stop() == 0, srv.log()


@pytest.mark.parametrize("wait_for_banner", [False, True])
def test_ctrl_c_stops_the_whole_node_cleanly(tmp_path, wait_for_banner: bool) -> None:
    """A Ctrl-C in the terminal is SIGINT to every process in the foreground process group.
    The node stops cleanly, with no traceback from a worker or the replication process
    caught mid-start (they run in their own process group; `lightwave up` stops them)."""
    import os
    import signal
    import socket
    import subprocess
    import time

    from tests.conftest import ADMIN_PW, LIGHTWAVE, free_port

    ports = [free_port() for _ in range(3)]
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        p = subprocess.Popen([LIGHTWAVE, "up", "--data-dir", str(tmp_path / "v"), "--workers", "2",
                              "--listen", "127.0.0.1", "--ldap-port", str(ports[0]), "--ldaps-port", str(ports[1]),
                              "--https-port", str(ports[2])], stdout=out, stderr=subprocess.STDOUT,
                             env=dict(os.environ, LIGHTWAVE_ADMIN_PASSWORD=ADMIN_PW), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if wait_for_banner and "directory ready" in log.read_text(errors="replace"):
                break
            if not wait_for_banner:
                try:
                    socket.create_connection(("127.0.0.1", ports[0]), timeout=1).close()
                    break
                except OSError:
                    pass
            time.sleep(0.02)
        else:
            raise AssertionError("the node did not come up:\n" + log.read_text(errors="replace"))
        os.killpg(p.pid, signal.SIGINT)
        assert p.wait(30) == 0, log.read_text(errors="replace")
    finally:
        if p.poll() is None:
            p.kill()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "lightwave: stopped" in text, text
