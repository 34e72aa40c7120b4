"""A fourth node joins a forest of three that holds 100,000 entries (issue 4's test), through
the replication protocol, on real nodes. About three minutes: the longest test of the suite.

A is loaded offline (`lightwave ldif import`, the benchmark's data set), B and C join it at
the same time, D joins through B. Every node then holds every entry, the same values, and a
write on the new node reaches the first one.
"""
from __future__ import annotations

import os
import random
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import ldap3
import pytest

from bench.data import PEOPLE, person_dn, uid_width, write_ldif
from tests.conftest import ADMIN, ADMIN_PW, LIGHTWAVE, Server, make_server, wait_for
from tests.integration.test_replication import converge

PEOPLE_N = 100_000


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    a = make_server(tmp_path_factory, "big-a", workers=2)
    ldif = str(tmp_path_factory.mktemp("big-data") / "people.ldif")
    write_ldif(ldif, PEOPLE_N)
    r = subprocess.run([LIGHTWAVE, "ldif", "import", ldif, "--data-dir", a.data_dir, "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    os.remove(ldif)
    nodes = [a]
    try:
        a.start(timeout=60)
        b = make_server(tmp_path_factory, "big-b", workers=1, extra=["--quiet-ops", "--join", a.url])
        c = make_server(tmp_path_factory, "big-c", workers=1, extra=["--quiet-ops", "--join", a.url])
        nodes += [b, c]
        with ThreadPoolExecutor(2) as pool:  # two full copies from A at once
            for started in [pool.submit(n.start, 600) for n in (b, c)]:
                started.result()
        yield nodes
    finally:
        for n in nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.stop()


def people(s: Server) -> int:
    c = ldap3.Connection(ldap3.Server(s.url, get_info=ldap3.NONE), ADMIN, ADMIN_PW, auto_bind=True)
    try:
        c.search(PEOPLE, "(objectClass=*)", ldap3.BASE, attributes=["numSubordinates"])
        return int(c.entries[0]["numSubordinates"].value)
    finally:
        c.unbind()


def user_attrs(s: Server, dns: list[str]) -> dict[str, dict[str, list[bytes]]]:
    c = ldap3.Connection(ldap3.Server(s.url, get_info=ldap3.NONE), ADMIN, ADMIN_PW, auto_bind=True)
    try:
        out = {}
        for dn in dns:
            c.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["*", "entryUUID"])
            out[dn] = {k.lower(): sorted(v) for k, v in c.response[0]["raw_attributes"].items()}
        return out
    finally:
        c.unbind()


def test_a_fourth_node_joins_a_100k_forest(forest: list[Server], tmp_path_factory: pytest.TempPathFactory) -> None:
    a, b, c = forest
    for n in (a, b, c):
        converge(n, timeout=300)
        assert people(n) == PEOPLE_N
    d = make_server(tmp_path_factory, "big-d", workers=2, extra=["--quiet-ops", "--join", b.url])
    forest.append(d)  # stopped by the fixture
    d.start(timeout=600)
    copied = re.search(r"joined; (\d+) entries copied from", d.log())
    assert copied and int(copied.group(1)) > PEOPLE_N, d.log()[-2000:]  # a full copy, not a file copy
    converge(d, timeout=300)
    assert people(d) == PEOPLE_N
    width = uid_width(PEOPLE_N)
    sample = [person_dn(i, width) for i in random.Random(4).sample(range(PEOPLE_N), 40)]
    sample += [person_dn(0, width), person_dn(PEOPLE_N - 1, width)]
    assert user_attrs(d, sample) == user_attrs(a, sample)
    # the new node is a master like the others: its write reaches the first node
    w = ldap3.Connection(ldap3.Server(d.url, get_info=ldap3.NONE), ADMIN, ADMIN_PW, auto_bind=True)
    assert w.modify(sample[0], {"description": [(ldap3.MODIFY_REPLACE, ["written on the fourth node"])]}), w.result
    w.unbind()
    converge(d, timeout=120)
    converge(a, timeout=120)
    assert user_attrs(a, sample[:1])[sample[0]]["description"] == [b"written on the fourth node"]


def test_a_join_killed_during_the_copy_resumes_where_it_stopped(
        forest: list[Server], tmp_path_factory: pytest.TempPathFactory) -> None:
    """kill -9 of a joining node part way through its full copy; the same command again
    resumes from the last page it applied (not from the start) and ends with every entry."""
    a = forest[0]
    e = make_server(tmp_path_factory, "big-e", workers=1, extra=["--quiet-ops", "--join", a.url])
    db = os.path.join(e.data_dir, "db", "data.mdb")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(e.start, 600)
        wait_for("the copy to be under way", lambda: os.path.exists(db) and os.path.getsize(db) > 50 << 20,
                 timeout=300, interval=0.02)
        e.kill9()
        with pytest.raises(RuntimeError, match="server exited"):
            first.result()
    assert "joined;" not in e.log()  # killed during the copy, not after it
    forest.append(e)  # stopped by the fixture
    e.start(timeout=600)
    resumed = re.search(r"resuming the interrupted copy from \S+ after its USN (\d+) \((\d+) entries copied before\)",
                        e.log())
    assert resumed and int(resumed.group(1)) > 0 and int(resumed.group(2)) > 1000, e.log()[-2000:]
    assert re.search(r"joined; \d+ entries copied from", e.log())
    converge(e, timeout=300)
    assert people(e) == PEOPLE_N
    width = uid_width(PEOPLE_N)
    sample = [person_dn(i, width) for i in random.Random(5).sample(range(PEOPLE_N), 40)]
    assert user_attrs(e, sample) == user_attrs(a, sample)
