"""Multi-master replication between real nodes on localhost: join, writes through every
node, restarts, concurrent conflicting writes, and byte-for-byte comparison of what every
node stores (data and replication metadata).

Convergence is waited for with `lightwave repl wait` (every node's vector covers every
other node's highest USN), never with fixed sleeps. Concurrent writes are made while the
nodes' replication processes are stopped (SIGSTOP), so neither node has seen the other's
change when it makes its own.
"""
from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import ldap3
import pytest

from tests.conftest import ADMIN, ADMIN_PW, BASE, LIGHTWAVE, Server, _descendants, make_server, run_tool

USERS = f"cn=Users,{BASE}"


def conn(s: Server) -> ldap3.Connection:
    c = ldap3.Connection(ldap3.Server(s.url, get_info=ldap3.NONE), ADMIN, ADMIN_PW, auto_bind=True,
                         raise_exceptions=True)
    return c


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LIGHTWAVE_ADMIN_PASSWORD=ADMIN_PW)
    return subprocess.run([LIGHTWAVE, *args], capture_output=True, text=True, env=env, timeout=timeout)


def converge(s: Server, timeout: float = 60) -> None:
    r = cli("repl", "wait", "--server", s.url, "--timeout", str(timeout), timeout=timeout + 30)
    assert r.returncode == 0, r.stdout + r.stderr


def status(s: Server) -> dict:
    """`lightwave repl status --json` of node ``s``."""
    import json
    r = cli("repl", "status", "--server", s.url, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def read(s: Server, dn: str, *attrs: str) -> dict[str, list[bytes]] | None:
    c = conn(s)
    try:
        c.raise_exceptions = False
        c.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(attrs) or ["*"])
        if c.result["result"] == 32:
            return None
        assert c.result["result"] == 0, c.result
        return {k.lower(): sorted(v) for k, v in c.response[0]["raw_attributes"].items()}
    finally:
        c.unbind()


def node_name(s: Server) -> str:
    import socket
    return f"{socket.gethostname()}:{s.ldap_port}"


def replicators(s: Server) -> list[int]:
    out = []
    for pid in _descendants(s.proc.pid):  # type: ignore[union-attr]
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"lightwave.replicator" in f.read():
                    out.append(pid)
        except OSError:
            pass
    assert out, "no replication process found"
    return out


@contextmanager
def partitioned(*nodes: Server) -> Iterator[None]:
    """The nodes' replication stopped meanwhile (their LDAP service keeps running)."""
    pids = [p for n in nodes for p in replicators(n)]
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        yield
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)


def dump(s: Server) -> list[tuple]:
    """Everything a node stores about its entries that replication must make equal: per
    entry (by UUID) its name (parent UUID and RDN), deletion flag, attribute values and
    metadata, per-value metadata; node-local USNs left out. The node must be stopped."""
    from vmdir.store import Store, entry_uuid

    store = Store(os.path.join(s.data_dir, "db"))
    try:
        out = []
        with store.read() as r:
            cur = r.txn.cursor(db=store.db_entries)
            rows = {}
            for k, v in cur:
                from vmdir.store import decode_entry, unpack_u64
                e = decode_entry(unpack_u64(k), v)
                rows[e.id] = e
            for e in rows.values():
                parent = rows.get(e.parent_id)
                attrs = {a: sorted(v) for a, v in e.attrs.items() if a not in ("usncreated", "usnchanged")}
                meta = {a: m[1:] for a, m in e.meta.items() if a not in ("usncreated", "usnchanged")}
                vmeta = {a: sorted((x.value, x.version, x.invocation, x.time_ms, x.orig_usn, x.deleted) for x in vs)
                         for a, vs in e.vmeta.items()}
                out.append((entry_uuid(e), entry_uuid(parent) if parent else None, e.rdn, e.flags,
                            sorted(attrs.items()), sorted(meta.items()), sorted(vmeta.items())))
        return sorted(out)
    finally:
        store.close()


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    a = make_server(tmp_path_factory, "repl-a", workers=2)
    a.start()
    b = make_server(tmp_path_factory, "repl-b", workers=1, extra=["--quiet-ops", "--join", a.url])
    b.start(timeout=90)
    c = make_server(tmp_path_factory, "repl-c", workers=2, extra=["--quiet-ops", "--join", b.url])
    c.start(timeout=90)
    nodes = [a, b, c]
    yield nodes
    for n in nodes:
        n.stop()


def test_join_copies_everything_and_changes_flow_both_ways(forest: list[Server]) -> None:
    a, b, c = forest
    converge(a)
    # the joined nodes hold the forest: the administrator binds there with the same password
    r = run_tool("ldapwhoami", "-x", "-H", c.url, "-D", ADMIN, "-w", ADMIN_PW)
    assert r.returncode == 0 and r.stdout.strip() == f"dn:{ADMIN}", r.stderr
    # topology: three nodes with distinct server ids, agreements both ways along the chain
    ids = {}
    for n in forest:
        e = read(a, f"cn={node_name(n)},cn=Nodes,cn=System", "lightwaveServerId", "labeledURI")
        assert e is not None and e["labeleduri"] == [n.url.encode()]
        ids[n.ldap_port] = int(e["lightwaveserverid"][0])
    assert sorted(ids.values()) == [1, 2, 3]
    # a write through A reaches C (two hops), one through C reaches A
    dn = f"cn=hop,{USERS}"
    run_tool("ldapadd", "-x", "-H", a.url, "-D", ADMIN, "-w", ADMIN_PW,
             input=f"dn: {dn}\nobjectClass: inetOrgPerson\ncn: hop\nsn: One\nuid: hop\n").check_returncode()
    converge(a)
    assert read(c, dn, "sn")["sn"] == [b"One"]
    r = run_tool("ldapmodify", "-x", "-H", c.url, "-D", ADMIN, "-w", ADMIN_PW,
                 input=f"dn: {dn}\nchangetype: modify\nreplace: sn\nsn: Two\n")
    assert r.returncode == 0, r.stderr
    converge(c)
    assert read(a, dn, "sn")["sn"] == [b"Two"]
    # the same entry (same entryUUID) everywhere
    assert len({tuple(read(n, dn, "entryUUID")["entryuuid"]) for n in forest}) == 1
    # a tenant is data too: created through C, its administrator binds on A
    pw = os.path.join(os.path.dirname(c.data_dir), "tenant-pw")
    with open(pw, "w") as f:
        f.write("Tenant-admin-pw1\n")
    r = cli("tenant", "create", "acme.example", "--admin-password-file", pw, "--server", c.url)
    assert r.returncode == 0, r.stderr
    converge(c)
    r = run_tool("ldapwhoami", "-x", "-H", a.url, "-D", "administrator@acme.example", "-w", "Tenant-admin-pw1")
    assert r.returncode == 0 and r.stdout.strip() == "dn:cn=Administrator,cn=Users,dc=acme,dc=example", r.stderr
    r = cli("tenant", "list", "--server", a.url, "--json")
    assert "acme.example" in r.stdout, r.stdout + r.stderr
    st = cli("repl", "status", "--server", b.url, "--json")
    assert st.returncode == 0, st.stderr
    import json
    doc = json.loads(st.stdout)
    assert set(doc["partners"]) == {node_name(a), node_name(c)}
    assert all(p["last_success"] and p["changes_behind"] == 0 for p in doc["partners"].values()), doc


def test_concurrent_changes_resolve_the_same_everywhere(forest: list[Server]) -> None:
    a, b, c = forest
    group = f"cn=crew,cn=Groups,{BASE}"
    m0, m1, m2 = (f"cn={x},{USERS}" for x in ("m0", "m1", "m2"))
    ca = conn(a)
    for x in ("m0", "m1", "m2", "victim", "mover", "r1", "r2"):
        ca.add(f"cn={x},{USERS}", ["inetOrgPerson"], {"sn": x, "uid": x})
    ca.add(group, ["groupOfNames"], {"member": [m0]})
    ca.add(f"ou=doomed,{BASE}", ["organizationalUnit"], {})
    converge(a)
    with partitioned(a, b, c):
        cb = conn(b)
        ca.modify(f"cn=m0,{USERS}", {"displayName": [(ldap3.MODIFY_REPLACE, ["first"])]})
        cb.modify(f"cn=m0,{USERS}", {"displayName": [(ldap3.MODIFY_REPLACE, ["second"])]})  # later: wins
        ca.modify(group, {"member": [(ldap3.MODIFY_ADD, [m1]), (ldap3.MODIFY_DELETE, [m0])]})
        cb.modify(group, {"member": [(ldap3.MODIFY_ADD, [m2])]})
        ca.add(f"cn=twin,{USERS}", ["inetOrgPerson"], {"sn": "onA", "uid": "twinA"})
        cb.add(f"cn=twin,{USERS}", ["inetOrgPerson"], {"sn": "onB", "uid": "twinB"})
        ca.delete(f"cn=victim,{USERS}")
        cb.modify(f"cn=victim,{USERS}", {"description": [(ldap3.MODIFY_REPLACE, ["edited"])]})
        ca.delete(f"ou=doomed,{BASE}")
        cb.add(f"cn=orphan,ou=doomed,{BASE}", ["inetOrgPerson"], {"sn": "orphan", "uid": "orphan"})
        ca.modify_dn(f"cn=mover,{USERS}", "cn=moved-a")  # concurrent renames of one entry: B's, later, wins
        cb.modify_dn(f"cn=mover,{USERS}", "cn=moved-b")
        ca.modify_dn(f"cn=r1,{USERS}", "cn=taken")  # two entries renamed to one name: both kept
        cb.modify_dn(f"cn=r2,{USERS}", "cn=taken")
        cb.unbind()
    ca.unbind()
    converge(a)
    for n in forest:
        assert read(n, f"cn=m0,{USERS}", "displayName")["displayname"] == [b"second"]
        assert read(n, group, "member")["member"] == sorted([m1.encode(), m2.encode()])
        assert read(n, f"cn=victim,{USERS}") is None  # a delete racing a modify: deleted everywhere
        assert read(n, "cn=orphan,cn=LostAndFound,cn=System", "sn")["sn"] == [b"orphan"]
        assert read(n, f"cn=moved-b,{USERS}", "sn")["sn"] == [b"mover"]
        assert read(n, f"cn=moved-a,{USERS}") is None and read(n, f"cn=mover,{USERS}") is None
        assert read(n, f"cn=taken,{USERS}", "sn")["sn"] == [b"r2"]  # the later rename keeps the name
        c_ = conn(n)
        c_.search(USERS, "(cn=twin*)", ldap3.LEVEL, attributes=["sn"])
        names = sorted(e["dn"] for e in c_.response)
        c_.search(USERS, "(sn=r1)", ldap3.LEVEL, attributes=["lightwaveConflict"])
        (r1,) = c_.response
        c_.unbind()
        assert r1["dn"].lower().startswith("cn=taken cnf:"), r1["dn"]
        assert len(names) == 2 and f"cn=twin,{USERS}" in names, names
        other = [x for x in names if x != f"cn=twin,{USERS}"][0]
        assert other.startswith("cn=twin CNF:") and other.endswith(USERS), other
        uuid.UUID(other.split("CNF:", 1)[1].split(",", 1)[0])
        assert read(n, other, "lightwaveConflict")["lightwaveconflict"] == [f"cn=twin,{USERS}".encode()]
        # what an operator sees: the conflict entry and the entry in lost and found
        r = cli("repl", "conflicts", "--server", n.url, "--json")
        assert r.returncode == 0, r.stderr
        import json
        found = sorted((x["kind"], x["dn"].lower(), x["name"].lower()) for x in json.loads(r.stdout))
        assert found == sorted([("lost and found", "cn=orphan,cn=lostandfound,cn=system", ""),
                                ("naming conflict", other.lower(), f"cn=twin,{USERS}".lower()),
                                ("naming conflict", r1["dn"].lower(), f"cn=taken,{USERS}".lower())]), found


def test_ring_restart_and_identical_stores(forest: list[Server]) -> None:
    a, b, c = forest
    # close the ring: C also pulls from A (an agreement is an entry, written through A: it replicates to C)
    r = cli("repl", "agreement", "add", "--from", a.url, "--to", node_name(c), "--server", a.url)
    assert r.returncode == 0 and f"{node_name(c)} now pulls changes from {node_name(a)}" in r.stdout, r.stderr
    for i, n in enumerate(forest):
        cn = conn(n)
        cn.add(f"cn=ring{i},{USERS}", ["inetOrgPerson"], {"sn": f"s{i}", "uid": f"ring{i}"})
        cn.modify(f"cn=hop,{USERS}", {"description": [(ldap3.MODIFY_ADD, [f"from {i}"])]})
        cn.unbind()
        # in turn: description is replicated as a whole attribute, so an add made before the
        # previous node's add arrived would replace it (last writer wins; see the conflict test)
        converge(n)
    for n in forest:
        n.stop()
    for n in forest:
        n.start(timeout=60)
    for i, n in enumerate(forest):
        cn = conn(n)
        cn.modify_dn(f"cn=ring{i},{USERS}", f"cn=ringed{i}")
        cn.unbind()
    converge(c)
    for n in forest:
        assert read(n, f"cn=hop,{USERS}", "description")["description"] == [b"from 0", b"from 1", b"from 2"]
        for i in range(3):
            assert read(n, f"cn=ringed{i},{USERS}", "sn")["sn"] == [f"s{i}".encode()]
    for n in forest:
        n.stop()
    try:
        dumps = [dump(n) for n in forest]
        assert len(dumps[0]) > 30
        assert dumps[0] == dumps[1] == dumps[2]
    finally:
        for n in forest:
            n.start(timeout=60)


def test_a_supplier_does_not_send_a_consumer_its_own_changes_back(forest: list[Server]) -> None:
    """B has applied A's new entry; A's pull from B, whatever vector it sends, does not get
    it back (an echo would cost A a merge and a transaction per change it made). Another
    consumer with the same vector does get it."""
    import ssl

    from replication import PULL_OID
    from replication._wire import PullRequest, encode_pull_request

    a, b = forest[0], forest[1]
    since = status(b)["highest_usn"]
    dn = f"cn=echo-{uuid.uuid4().hex[:8]},{USERS}"
    c = conn(a)
    c.add(dn, ["inetOrgPerson"], {"sn": "echo"})
    c.unbind()
    converge(a)
    a_inv = bytes.fromhex(status(a)["invocation"])

    def pulled(consumer: bytes) -> set[str]:
        ctrl = [(PULL_OID, True, encode_pull_request(PullRequest(consumer, since, 500, {})))]
        tls = ldap3.Connection(ldap3.Server(b.url, get_info=ldap3.NONE, tls=ldap3.Tls(validate=ssl.CERT_NONE)),
                               ADMIN, ADMIN_PW)
        tls.open()
        assert tls.start_tls() and tls.bind()
        tls.search("", "(objectClass=*)", ldap3.BASE, controls=ctrl, attributes=["lightwaveReplEntry"])
        assert tls.result["result"] == 0, tls.result
        got = {r["dn"].lower() for r in tls.response if r["type"] == "searchResEntry"}
        tls.unbind()
        return got

    assert dn.lower() in pulled(uuid.uuid4().bytes)
    assert dn.lower() not in pulled(a_inv)


def test_pull_needs_tls_and_the_replication_role(forest: list[Server]) -> None:
    from replication import PULL_OID
    from replication._wire import PullRequest, encode_pull_request

    a = forest[0]
    ctrl = [(PULL_OID, True, encode_pull_request(PullRequest(b"\x01" * 16, 0, 10, {})))]
    plain = conn(a)
    plain.raise_exceptions = False
    plain.search("", "(objectClass=*)", ldap3.BASE, controls=ctrl)
    assert plain.result["result"] == 13 and not plain.response  # hashes never cross in the clear
    plain.add(f"cn=nobody,{USERS}", ["inetOrgPerson"], {"sn": "n", "uid": "nobody", "userPassword": "Nobody-pw-123"})
    plain.unbind()
    import ssl
    user = ldap3.Connection(ldap3.Server(a.url, get_info=ldap3.NONE, tls=ldap3.Tls(validate=ssl.CERT_NONE)),
                            f"cn=nobody,{USERS}", "Nobody-pw-123")
    user.open()
    assert user.start_tls() and user.bind()
    user.search("", "(objectClass=*)", ldap3.BASE, controls=ctrl)
    assert user.result["result"] == 50 and not user.response
    user.unbind()
