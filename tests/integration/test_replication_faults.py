"""Replication under faults, between real nodes on localhost over real sockets.

Every node advertises the URL of its own fault-injecting proxy (``faultproxy.FaultProxy``)
with ``--advertise-url``; that URL is its node entry's labeledURI and the labeledURI of
every agreement that pulls from it, so all replication from a node (and `lightwave repl
wait`, which asks each node at its advertised URL) passes through that node's proxy, while
the tests' own reads and writes go to the nodes directly.

- Link faults: delay, blackhole, refused and cut connections (one cut in the middle of a
  page of a 2,000-entry batch), then healing: the nodes converge, stores are identical and
  every acknowledged write is there; `lightwave repl status` shows the broken link.
- A consumer node killed with SIGKILL while it applies a batch: after its restart nothing
  is lost, duplicated or half written.
- A seeded random run on three nodes (the seed is printed; set LIGHTWAVE_REPL_SEED to
  replay its operations and fault schedule; thread timing is not replayed) checked against
  a model of the conflict rule.

Convergence is waited for with `lightwave repl wait` and other conditions by polling with
a deadline, never with fixed sleeps.
"""
from __future__ import annotations

import os
import random
import signal
import ssl
import threading
import time
import uuid as uuidmod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import ldap3
import pytest
from ldap3.core.exceptions import LDAPException

from replication import PULL_OID
from replication._consumer import CONFLICT_MARK
from replication._wire import REPL_ATTR, PullRequest, decode_pull_response, decode_record, encode_pull_request
from tests.conftest import ADMIN, ADMIN_PW, BASE, Server, make_server, wait_for
from tests.integration.faultproxy import FaultProxy
from tests.integration.test_replication import converge, dump, node_name, replicators, status
from vmdir.store import decode_body



# ====================================================================== forests behind proxies

@dataclass
class Forest:
    nodes: list[Server]
    proxies: list[FaultProxy]  # proxies[i] is in front of nodes[i] (its advertised URL)
    stopped: dict[int, list[int]] = field(default_factory=dict)  # node index -> SIGSTOPped pids

    def proxy(self, n: Server) -> FaultProxy:
        return self.proxies[self.nodes.index(n)]

    def stop_replication(self, i: int) -> None:
        """SIGSTOP node i's replication process (its LDAP service keeps running)."""
        if i in self.stopped:
            return
        pids = replicators(self.nodes[i])
        for p in pids:
            os.kill(p, signal.SIGSTOP)
        self.stopped[i] = pids

    def resume_replication(self, i: int) -> None:
        for p in self.stopped.pop(i, []):
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def heal(self) -> None:
        for i in list(self.stopped):
            self.resume_replication(i)
        for p in self.proxies:
            p.heal()


@pytest.fixture()
def forests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Forest]]:
    """``make(n)``: n nodes, each behind its own proxy; node i > 0 joins node 0 (so node 0
    and node i pull from each other); ``mesh=True`` adds the agreements between the others."""
    made: list[Forest] = []

    def make(n: int, *, mesh: bool = False) -> Forest:
        f = Forest([], [])
        made.append(f)
        for i in range(n):
            s = make_server(tmp_path_factory, f"faults-{chr(97 + i)}", workers=1)
            p = FaultProxy(s.ldap_port)
            s.extra += ["--advertise-url", p.url]
            if i:
                s.extra += ["--join", f.proxies[0].url]
            f.nodes.append(s)
            f.proxies.append(p)
            s.start(timeout=90)
        if mesh:
            c = conn(f.nodes[0])
            for i in range(1, n):
                for j in range(1, n):
                    if i != j:
                        sup, con = node_name(f.nodes[i]), node_name(f.nodes[j])
                        ok = c.add(f"cn={sup},cn={con},cn=Nodes,cn=System", ["lightwaveReplicationAgreement"],
                                   {"cn": sup, "labeledURI": f.proxies[i].url})
                        assert ok, c.result
            c.unbind()
        converge(f.nodes[0])
        return f

    yield make
    for f in made:
        for i in list(f.stopped):
            f.resume_replication(i)
        for s in f.nodes:
            if s.proc is not None:
                s.stop()
        for p in f.proxies:
            p.close()


# ====================================================================== helpers

def conn(s: Server, *, timeout: int = 30) -> ldap3.Connection:
    """An administrator's connection straight to ``s`` (not through its proxy)."""
    return ldap3.Connection(ldap3.Server(s.url, get_info=ldap3.NONE, connect_timeout=5), ADMIN, ADMIN_PW,
                            auto_bind=True, raise_exceptions=False, receive_timeout=timeout)


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def person(uid: str, description: str) -> dict[str, Any]:
    return {"sn": "S", "uid": uid, "description": description}


WATCHED = ("sn", "uid", "description", "displayName")


def subtree(s: Server, base: str) -> dict[str, dict[str, list[bytes]]]:
    """The entries below ``base`` on ``s``: lowercased DN -> the WATCHED attributes."""
    c = conn(s)
    try:
        c.search(base, "(objectClass=*)", ldap3.SUBTREE, attributes=list(WATCHED))
        assert c.result["result"] == 0, c.result
        return {e["dn"].lower(): {k.lower(): sorted(v) for k, v in e["raw_attributes"].items() if v}
                for e in c.response if e.get("type") == "searchResEntry" and e["dn"].lower() != base.lower()}
    finally:
        c.unbind()


def count(s: Server, base: str) -> int:
    c = conn(s)
    try:
        c.search(base, "(objectClass=*)", ldap3.LEVEL, attributes=["1.1"])
        if c.result["result"] == 32:  # not replicated here yet
            return 0
        assert c.result["result"] == 0, c.result
        return sum(1 for e in c.response if e.get("type") == "searchResEntry")
    finally:
        c.unbind()


class Acked:
    """Acknowledged writes (adds and replaces, no two nodes writing the same entry), and
    the state they must leave: lowercased DN -> WATCHED attributes."""

    def __init__(self) -> None:
        self.want: dict[str, dict[str, list[bytes]]] = {}
        self._lock = threading.Lock()

    def add(self, c: ldap3.Connection, dn: str, attrs: dict[str, Any], oc: str = "inetOrgPerson") -> None:
        ok = c.add(dn, [oc], attrs)
        assert ok, (dn, c.result)
        with self._lock:
            self.want[dn.lower()] = {k.lower(): sorted([str(v).encode()]) for k, v in attrs.items() if k in WATCHED}

    def replace(self, c: ldap3.Connection, dn: str, attr: str, value: str) -> None:
        ok = c.modify(dn, {attr: [(ldap3.MODIFY_REPLACE, [value])]})
        assert ok, (dn, c.result)
        with self._lock:
            self.want[dn.lower()][attr.lower()] = [value.encode()]

    def bulk(self, s: Server, items: list[tuple[str, dict[str, Any]]], threads: int = 8) -> None:
        """Add ``items`` through ``threads`` connections at once (the server commits them in groups)."""
        errors: list[Exception] = []

        def run(part: list[tuple[str, dict[str, Any]]]) -> None:
            try:
                c = conn(s)
                try:
                    for dn, attrs in part:
                        self.add(c, dn, attrs)
                finally:
                    c.unbind()
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        ts = [threading.Thread(target=run, args=(items[k::threads],)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors[:3]

    def check(self, s: Server, base: str) -> None:
        got = subtree(s, base)
        missing = sorted(set(self.want) - set(got))
        extra = sorted(set(got) - set(self.want))
        wrong = sorted(dn for dn in set(got) & set(self.want) if got[dn] != self.want[dn])
        assert not (missing or extra or wrong), (
            f"{s.url}: {len(missing)} acknowledged entries missing {missing[:5]}, {len(extra)} unexpected "
            f"{extra[:5]}, {len(wrong)} with other values " + "; ".join(f"{d}: {got[d]} != {self.want[d]}"
                                                                          for d in wrong[:3]))


def identical_stores(f: Forest) -> list[list[tuple]]:
    """Stop every node and compare what they store (data and replication metadata).
    Returns the dumps."""
    for s in f.nodes:
        s.stop()
    dumps = [dump(s) for s in f.nodes]
    assert all(d == dumps[0] for d in dumps[1:]), "stores differ:\n" + dump_diff(f.nodes, dumps)
    return dumps


def dump_diff(nodes: list[Server], dumps: list[list[tuple]], limit: int = 4) -> str:
    """The entries (by uuid) stored differently, node by node, field by field."""
    by = [{e[0]: e for e in d} for d in dumps]
    names = ("uuid", "parent", "rdn", "flags", "attrs", "meta", "vmeta")
    out = []
    for u in sorted(set().union(*by)):
        rows = [b.get(u) for b in by]
        if all(r == rows[0] for r in rows):
            continue
        out.append(f"entry {uuidmod.UUID(bytes=u)}:")
        for k, name in enumerate(names[1:], 1):
            vals = [r[k] if r is not None else "<missing>" for r in rows]
            if all(v == vals[0] for v in vals):
                continue
            if name in ("attrs", "meta", "vmeta") and all(isinstance(v, list) for v in vals):
                keys = sorted({a for v in vals for a, _ in v})
                for a in keys:
                    per = [dict(v).get(a) for v in vals]
                    if any(p != per[0] for p in per):
                        out.append(f"  {name}[{a}]: " + " | ".join(f"{n.url}: {p}" for n, p in zip(nodes, per)))
            else:
                out.append(f"  {name}: " + " | ".join(f"{n.url}: {v}" for n, v in zip(nodes, vals)))
        if len(out) > limit * 12:
            break
    return "\n".join(out)


# ====================================================================== a. link faults

def test_link_faults_delay_blackhole_cut_then_heal(forests: Callable[..., Forest]) -> None:
    f = forests(2)
    a, b = f.nodes
    pa, pb = f.proxies
    base = f"ou=links,{BASE}"
    ca, cb = conn(a), conn(b)
    assert ca.add(base, ["organizationalUnit"], {}), ca.result
    converge(a)
    acked = Acked()

    def writes(phase: str, n: int) -> None:
        for i in range(n):
            for tag, c in (("a", ca), ("b", cb)):
                acked.add(c, f"cn={phase}{tag}{i},{base}", person(f"{phase}{tag}{i}", f"{phase} {tag} {i}"))

    def modifies(phase: str, of: str) -> None:  # each node changes entries it added itself
        for tag, c in (("a", ca), ("b", cb)):
            for i in range(5):
                acked.replace(c, f"cn={of}{tag}{i},{base}", "displayName", f"{phase} changed {tag}{i}")

    # 1. delay: replication still flows, only slower
    pa.delay(15)
    pb.delay(15)
    writes("d", 25)
    converge(a, timeout=60)
    assert pa.delayed and pb.delayed, (pa.delayed, pb.delayed)

    # 2. blackhole: connections accepted, every byte swallowed; writes go on on both sides
    pa.drop()
    pb.drop()
    writes("h", 20)
    modifies("h", "d")
    wait_for("both proxies swallow the notifications of the new changes",
             lambda: pa.swallowed > 0 and pb.swallowed > 0, 20)
    assert subtree(b, base).get(f"cn=ha0,{base}") is None  # nothing crossed the blackhole
    assert subtree(a, base).get(f"cn=hb0,{base}") is None

    # 3. the link broken: open connections cut, new ones refused; status shows the error
    broke = time.time()
    for p in (pa, pb):
        p.refuse()
        p.cut()
    writes("x", 20)

    def error_since_break(s: Server, partner: Server) -> dict[str, Any] | None:
        st = status(s)["partners"][node_name(partner)]
        fresh = st["last_error"] and (st["last_error_time"] or "") >= iso(broke) \
            and (st["last_error_time"] or "") >= (st["last_success"] or "")
        return st if fresh else None
    for s, partner in ((b, a), (a, b)):
        st = wait_for(f"repl status of {s.url} shows an error pulling from {partner.url}",
                      lambda s=s, partner=partner: error_since_break(s, partner), 30, interval=0.2)
        assert st["url"] == f.proxy(partner).url and f.proxy(partner).url in st["last_error"], st
        print(f"{node_name(s)} pulling from {node_name(partner)}: {st['last_error']}")

    # 4. a 2,000-entry batch on A while B cannot pull, then the link back with a cut in the
    # middle of the first page B pulls (500 entries, about half a megabyte; cut after 150 kB)
    bulk = f"ou=bulk,{base}"
    acked.add(ca, bulk, {}, "organizationalUnit")
    acked.bulk(a, [(f"cn=k{i},{bulk}", person(f"k{i}", f"bulk {i}")) for i in range(2000)])
    writes("k", 10)
    modifies("k", "h")
    cuts = pa.cuts
    pa.cut(after_bytes=150_000)
    pa.pass_through()
    pb.pass_through()
    wait_for("the page in flight is cut", lambda: pa.cuts > cuts, 30)
    n = count(b, bulk)
    assert n < 2000  # the cut page was not applied
    print(f"B had {n} of the batch when the page in flight was cut")

    # 5. healed: converged, every acknowledged write everywhere, identical stores
    pa.heal()
    pb.heal()
    converge(a, timeout=90)
    ca.unbind()
    cb.unbind()
    for s in (a, b):
        acked.check(s, base)
    identical_stores(f)


# ====================================================================== b. consumer killed

def test_consumer_killed_while_applying_a_batch(forests: Callable[..., Forest]) -> None:
    f = forests(2)
    a, b = f.nodes
    base = f"ou=crash,{BASE}"
    ca = conn(a)
    assert ca.add(base, ["organizationalUnit"], {}), ca.result
    converge(a)
    acked = Acked()
    total = 3000
    f.stop_replication(1)  # B pulls nothing meanwhile
    acked.bulk(a, [(f"cn=c{i},{base}", person(f"c{i}", f"crash {i}")) for i in range(total)])
    cb = conn(b)
    for i in range(20):  # B's own acknowledged writes must survive its crash too
        acked.add(cb, f"cn=own{i},{base}", person(f"own{i}", f"written on B {i}"))
    cb.unbind()
    f.resume_replication(1)
    # B is killed as soon as it has applied part of the batch, then again, after its
    # restart, once it has applied more; each time after a random pause shorter than a
    # page's pull and apply, so that the kills land anywhere in them
    jitter = random.Random()
    kills: list[int] = []  # how much of the batch B had applied when each kill was decided
    n = 20
    while len(kills) < 3:
        last = n
        n = wait_for("B has applied more of the batch",
                     lambda: (lambda k: k if k > last else 0)(count(b, base)), 60, interval=0.02)
        if n >= total + 20:
            break  # it applied the rest before another kill could land
        time.sleep(jitter.uniform(0, 0.3))  # fault timing, not a wait for anything
        b.kill9()
        kills.append(n - 20)
        b.start(timeout=60)
    assert kills, "B applied the whole batch before it could be killed"
    converge(a, timeout=90)
    ca.unbind()
    for s in (a, b):
        acked.check(s, base)  # nothing lost, no duplicate (a second copy would be an extra entry)
        c = conn(s)
        c.search(base, "(objectClass=*)", ldap3.LEVEL, attributes=["entryUUID"])
        uuids = [e["raw_attributes"]["entryUUID"][0] for e in c.response if e.get("type") == "searchResEntry"]
        c.unbind()
        assert len(uuids) == len(set(uuids)) == total + 20, (s.url, len(uuids), len(set(uuids)))
    print(f"B was killed with {kills} of {total} entries applied")
    identical_stores(f)


# ====================================================================== c. seeded random run

Rank = tuple[int, int, bytes, int]  # (version, originating time ms, originating invocation, originating USN)
NAME = "_name"  # the metadata key of an entry's name
PER_VALUE = {"member", "uniquemember", "memberuid"}


def rank_of(version: int, invocation: bytes, time_ms: int, orig_usn: int) -> Rank:
    """The conflict rule (DESIGN section 4) as a sort key: the greater write wins. Higher
    version; then later originating time; then higher invocation id; then higher USN."""
    return (version, time_ms, invocation, orig_usn)


class Tap:
    """Reads one node's change log with the metadata of every attribute and value, as a
    consumer does (the pull control, as the administrator over StartTLS), each time from
    where it stopped the last time."""

    def __init__(self, node: Server) -> None:
        self.node = node
        self.c: ldap3.Connection | None = None
        self.watermark = 0
        self.invocation = b""

    def _connect(self) -> ldap3.Connection:
        c = ldap3.Connection(ldap3.Server(self.node.url, get_info=ldap3.NONE, connect_timeout=5,
                                          tls=ldap3.Tls(validate=ssl.CERT_NONE)),
                             ADMIN, ADMIN_PW, raise_exceptions=False, receive_timeout=30)
        c.open()
        assert c.start_tls() and c.bind(), c.result
        return c

    def pull(self) -> list[tuple[bytes, bytes | None, str, dict[str, list[bytes]], dict[str, Any], dict[str, Any]]]:
        """(uuid, parent uuid, rdn, attrs, meta, vmeta) of every entry changed since the last pull."""
        out = []
        for attempt in (1, 2):
            try:
                if self.c is None:
                    self.c = self._connect()
                while True:
                    req = PullRequest(b"fault-test-tap..", self.watermark, 500, {})
                    self.c.search("", "(objectClass=*)", ldap3.BASE, attributes=[REPL_ATTR],
                                  controls=[(PULL_OID, True, encode_pull_request(req))])
                    assert self.c.result.get("result") == 0, self.c.result
                    resp = decode_pull_response(self.c.result["controls"][PULL_OID]["value"])
                    self.invocation = resp.supplier
                    for e in self.c.response:
                        if e.get("type") == "searchResEntry":
                            r = decode_record(e["raw_attributes"][REPL_ATTR][0])
                            out.append((r.uuid, r.parent_uuid, r.rdn, *decode_body(r.body)))
                    self.watermark = resp.watermark
                    if not resp.more:
                        return out
            except LDAPException:  # the node restarted: read on from the same watermark
                self.close()
                if attempt == 2:
                    raise
        return out

    def close(self) -> None:
        if self.c is not None:
            try:
                self.c.unbind()
            except LDAPException:
                pass
            self.c = None


Key = tuple  # (uuid, attr) or (uuid, attr, lowercased value)


class Stamps:
    """Every originating write any node's change log has shown: key -> rank -> value(s).
    The value of an attribute key is its sorted values (None for per-value attributes,
    whose values have keys of their own), of a value key whether it is deleted, of a name
    key (parent uuid, rdn)."""

    def __init__(self) -> None:
        self.seen: dict[Key, dict[Rank, set[Any]]] = {}
        self.node: list[dict[Key, tuple[Rank, Any]]] = []  # per node: its state at its last pull

    def ingest(self, i: int, records: list[tuple[Any, ...]]) -> None:
        while len(self.node) <= i:
            self.node.append({})
        for u, parent, rdn, attrs, meta, vmeta in records:
            for a, m in meta.items():
                if a in ("usncreated", "usnchanged"):
                    continue
                value = (parent, rdn.lower()) if a == NAME else None if a in PER_VALUE \
                    else tuple(sorted(attrs.get(a, [])))
                self._add(i, (u, a), rank_of(m[1], m[2], m[3], m[4]), value)
            for a, vs in vmeta.items():
                for v in vs:
                    r = rank_of(v.version, v.invocation, v.time_ms, v.orig_usn)
                    self._add(i, (u, a, bytes(v.value).lower()), r, bool(v.deleted))

    def _add(self, i: int, key: Key, r: Rank, value: Any) -> None:
        self.seen.setdefault(key, {}).setdefault(r, set()).add(value)
        self.node[i][key] = (r, value)

    def clashes(self) -> list[str]:
        """One write (one stamp) seen with two values: only a name may (a node that finds
        two entries with one name marks the losing one's RDN without a stamp of its own)."""
        return [f"{key}: {r} with {vals}" for key, by in self.seen.items() if key[1] != NAME
                for r, vals in by.items() if len(vals) > 1]


@dataclass
class Write:
    """An acknowledged write as the model knows it: which key it set to which value, on
    which node, between which two clock readings."""
    op: str
    node: int
    key: Key
    value: Any
    t0: float
    t1: float
    rank: Rank | None = None  # its stamp, as the node's change log showed it right after
    superseded_at_once: Rank | None = None  # or: the stamp that had already replaced it there


class RandomRun:
    """Random writes on random nodes of a forest, and the model they are checked against.

    The conflict rule orders two writes of one attribute (or value, or name) by version,
    then originating time, invocation and USN. A node gives a write the version of the
    state it holds plus one, which depends on what it had received by then, so the test
    cannot predict versions while replication runs. It reads each acknowledged write's
    stamp from the node's change log right after the write (``Tap``) and checks it: made by
    that node, between the clock readings around the write, with the value written, and a
    version above the one the node held just before. Every stamp any change log showed is
    kept (``Stamps``). At the end the stores must be identical; every key must hold its
    highest stamp under the rule, with that stamp's value; every acknowledged write must be
    that stamp or beaten by a higher one; a member value is present exactly when its
    highest stamp is an add; and every live entry's RDN value is one of its cn values.
    """

    GROUPS = 3
    MEMBERS = 8
    OK_REFUSALS = {16, 20, 32, 64, 66, 68}  # noSuchAttribute, attributeOrValueExists, noSuchObject,
    # namingViolation, notAllowedOnNonLeaf, entryAlreadyExists: the node's state says no

    def __init__(self, f: Forest, rng: random.Random, seed: int) -> None:
        self.f = f
        self.rng = rng
        self.seed = seed
        self.root = f"ou=rand,{BASE}"
        self.ous = [f"ou=p1,{self.root}", f"ou=p2,{self.root}"]
        self.groups = [f"cn=g{i},{self.root}" for i in range(self.GROUPS)]
        self.members = [f"cn=m{i},ou=stable,{self.root}" for i in range(self.MEMBERS)]
        self.taps = [Tap(s) for s in f.nodes]
        self.stamps = Stamps()
        self.conns: list[ldap3.Connection | None] = [None] * len(f.nodes)
        self.uuid_of: dict[str, bytes] = {}  # the DNs of the fixed entries (containers, groups) -> uuid
        self.names: list[str] = []  # DNs of entries the acknowledged writes say exist (targets)
        self.writes: list[Write] = []
        self.problems: list[str] = []
        self.log: list[str] = []
        self.seq = 0
        self.indeterminate = 0
        self.refused = 0

    # ------------------------------------------------------------------ plumbing

    def conn(self, i: int) -> ldap3.Connection:
        if self.conns[i] is None:
            self.conns[i] = conn(self.f.nodes[i], timeout=3)
        c = self.conns[i]
        assert c is not None
        return c

    def drop_conn(self, i: int) -> None:
        c, self.conns[i] = self.conns[i], None
        if c is not None:
            try:
                c.unbind()
            except LDAPException:
                pass

    def tap(self, i: int) -> dict[Key, tuple[Rank, Any]]:
        self.stamps.ingest(i, self.taps[i].pull())
        return dict(self.stamps.node[i])

    def setup(self) -> None:
        c = self.conn(0)
        for dn, oc, attrs in ([(x, "organizationalUnit", {}) for x in (self.root, f"ou=stable,{self.root}", *self.ous)]
                              + [(m, "inetOrgPerson", {"sn": "M", "uid": m[3:5]}) for m in self.members]
                              + [(g, "lightwaveGroup", {}) for g in self.groups]
                              + [(f"cn=n{k},{self.ous[k % 2]}", "inetOrgPerson", person(f"seed{k}", "seed"))
                                 for k in range(12)]):
            assert c.add(dn, [oc], attrs), (dn, c.result)
            self.names.append(dn)
        converge(self.f.nodes[0])
        for i in range(len(self.f.nodes)):
            self.tap(i)
        c.search(self.root, "(objectClass=*)", ldap3.SUBTREE, attributes=["entryUUID"])
        for e in c.response:
            if e.get("type") == "searchResEntry":
                self.uuid_of[e["dn"].lower()] = uuidmod.UUID(e["raw_attributes"]["entryUUID"][0].decode()).bytes
        self.names = [dn for dn in self.names if dn.startswith("cn=n")]

    def resolve(self, state: dict[Key, tuple[Rank, Any]], dn: str,
                newly_deleted_since: dict[Key, tuple[Rank, Any]] | None = None) -> bytes | None:
        """The live entry named ``dn`` in a node's state (as its change log showed it); or
        the one of that name deleted since the state ``newly_deleted_since``."""
        rdn, parent = dn.split(",", 1)
        want = (self.uuid_of[parent.lower()], rdn.lower())
        for k, (_, v) in state.items():
            if len(k) != 2 or k[1] != NAME or v != want:
                continue
            gone = state.get((k[0], "isdeleted"))
            if newly_deleted_since is None:
                match = gone is None
            else:
                match = gone is not None and gone != newly_deleted_since.get((k[0], "isdeleted"))
            if match:
                return k[0]  # type: ignore[no-any-return]
        return None

    # ------------------------------------------------------------------ operations

    def random_op(self) -> None:
        i = self.rng.randrange(len(self.f.nodes))
        self.seq += 1
        r = self.rng.random()
        if r < 0.2 or not self.names:
            self.add(i)
        elif r < 0.45:
            self.replace(i, self.rng.choice(self.names))
        elif r < 0.7:
            self.member(i)
        elif r < 0.82:
            self.delete(i, self.rng.choice(self.names))
        else:
            self.rename(i, self.rng.choice(self.names))

    def _run(self, i: int, what: str, call: Callable[[ldap3.Connection], Any]) -> tuple[bool, float, float]:
        """Run one write on node i. Returns (acknowledged, t0, t1): clock readings around it."""
        t0 = time.time()
        try:
            c = self.conn(i)
            call(c)
            code = c.result.get("result")
        except LDAPException as exc:
            # no answer: its outcome is unknown (a node whose replication process was stopped
            # while it held the store's write lock cannot commit until it runs again)
            self.indeterminate += 1
            self.log.append(f"{what} on node {i}: no answer ({exc!r}); outcome unknown")
            self.drop_conn(i)
            self.f.resume_replication(i)
            return False, t0, time.time()
        t1 = time.time()
        if code == 0:
            self.log.append(f"{what} on node {i}: ok")
            return True, t0, t1
        if code not in self.OK_REFUSALS:
            self.problems.append(f"{what} on node {i}: unexpected result {c.result}")
        self.refused += 1
        self.log.append(f"{what} on node {i}: refused ({code})")
        return False, t0, t1

    def _acked(self, i: int, op: str, writes: list[tuple[Key, Any]], t0: float, t1: float,
               pre: dict[Key, tuple[Rank, Any]], now: dict[Key, tuple[Rank, Any]]) -> None:
        """After an acknowledged op: its stamps, as node i's change log showed them before
        (``pre``) and right after (``now``) the op."""
        for key, value in writes:
            w = Write(op, i, key, value, t0, t1)
            self.writes.append(w)
            got = now.get(key)
            before = pre.get(key)
            if got is not None and self._ours(i, got, t0, t1):
                w.rank = got[0]  # the stamp of this write
                if not _same_value(key, got[1], value, key[0]):
                    self.problems.append(f"{op} on node {i}: {key} stamped {got[0]} with {got[1]!r}, "
                                         f"not the value written {value!r}\n" + self.history(key[0]))
                if before is not None and got[0][0] <= before[0][0]:
                    self.problems.append(f"{op} on node {i}: {key} stamped version {got[0][0]}, not above the "
                                         f"{before[0]} the node held before")
            elif got is not None and got != before:
                w.superseded_at_once = got[0]  # a replicated write applied meanwhile already beat it
            else:
                self.problems.append(f"{op} on node {i} was acknowledged but its change log shows "
                                     f"{key} unchanged: {got}\n" + self.history(key[0]))

    def add(self, i: int) -> None:
        dn = f"cn=n{self.rng.randrange(20)},{self.rng.choice(self.ous)}"
        uid, desc = f"u{self.seq}", f"added {self.seq}"
        pre = self.tap(i)
        ok, t0, t1 = self._run(i, f"add {dn}", lambda c: c.add(dn, ["inetOrgPerson"], person(uid, desc)))
        if not ok:
            return
        now = self.tap(i)
        us = [k[0] for k, (_, v) in now.items() if len(k) == 2 and k[1] == "uid" and v == (uid.encode(),)]
        if len(us) != 1:
            self.problems.append(f"add {dn} on node {i} acknowledged, but its change log has {len(us)} "
                                 f"entries with uid {uid}")
            return
        rdn, parent = dn.split(",", 1)
        self.names.append(dn)
        self._acked(i, f"add {dn}", [((us[0], NAME), (self.uuid_of[parent], rdn)),
                                     ((us[0], "uid"), (uid.encode(),)),
                                     ((us[0], "description"), (desc.encode(),))], t0, t1, pre, now)

    def _on_entry(self, i: int, dn: str, what: str, call: Callable[[ldap3.Connection], Any],
                  writes: Callable[[bytes], list[tuple[Key, Any]]], after: str | None) -> bool:
        """An op on the entry named ``dn`` (named ``after`` after it, None: deleted): which
        entry that was on node i, its state before and after. Returns whether it was
        acknowledged."""
        pre = self.tap(i)
        ok, t0, t1 = self._run(i, what, call)
        if not ok:
            return False
        now = self.tap(i)
        # the entry of that name before the op; or, if replication renamed entries between
        # that read and the op, the one of the name after it (or the one just deleted)
        cands = [self.resolve(pre, dn), self.resolve(now, after) if after else None,
                 self.resolve(now, dn, newly_deleted_since=pre)]
        found = [u for u in cands if u is not None]
        if not found:
            self.problems.append(f"{what} on node {i} acknowledged, but no entry of that name in its change log")
            return True
        u = next((u for u in found if self._ours(i, now.get(writes(u)[0][0]), t0, t1)
                  and _same_value(writes(u)[0][0], now[writes(u)[0][0]][1], writes(u)[0][1], u)), found[0])
        self._acked(i, what, writes(u), t0, t1, pre, now)
        return True

    def history(self, u: bytes) -> str:
        """For a failure message: the acknowledged writes of entry ``u`` and every stamp of
        its name and cn seen, oldest first."""
        invs = {t.invocation: f"node {k}" for k, t in enumerate(self.taps)}
        lines = [f"    history of {uuidmod.UUID(bytes=u)}:"]
        lines += [f"      {w.op} on node {w.node}: {w.key[1:]} -> {w.value!r} stamp {_fmt(w.rank, invs)}"
                  for w in self.writes if w.key[0] == u]
        for a in (NAME, "cn"):
            for r, vals in sorted(self.stamps.seen.get((u, a), {}).items()):
                lines.append(f"      stamp {a} {_fmt(r, invs)}: {sorted(vals, key=repr)}")
        return "\n".join(lines)

    def _ours(self, i: int, got: tuple[Rank, Any] | None, t0: float, t1: float) -> bool:
        """Whether stamp ``got`` is one node i made between the clock readings t0 and t1."""
        return got is not None and got[0][2] == self.taps[i].invocation \
            and int(t0 * 1000) - 1 <= got[0][1] <= int(t1 * 1000) + 1

    def replace(self, i: int, dn: str) -> None:
        attr = self.rng.choice(("description", "displayName"))
        value = f"{attr} {self.seq}"
        self._on_entry(i, dn, f"replace {attr} of {dn}",
                       lambda c: c.modify(dn, {attr: [(ldap3.MODIFY_REPLACE, [value])]}),
                       lambda u: [((u, attr.lower()), (value.encode(),))], dn)

    def member(self, i: int) -> None:
        g = self.rng.choice(self.groups)
        m = self.rng.choice(self.members)
        kind = self.rng.choice((ldap3.MODIFY_ADD, ldap3.MODIFY_DELETE))
        what = f"{'add' if kind == ldap3.MODIFY_ADD else 'delete'} member {m.split(',')[0]} of {g.split(',')[0]}"
        pre = self.tap(i)
        ok, t0, t1 = self._run(i, what, lambda c: c.modify(g, {"member": [(kind, [m])]}))
        if ok:
            self._acked(i, what, [((self.uuid_of[g.lower()], "member", m.lower().encode()),
                                   kind == ldap3.MODIFY_DELETE)], t0, t1, pre, self.tap(i))

    def delete(self, i: int, dn: str) -> None:
        if self._on_entry(i, dn, f"delete {dn}", lambda c: c.delete(dn), lambda u: [((u, "isdeleted"), (b"TRUE",))],
                          None):
            self.names.remove(dn)

    def rename(self, i: int, dn: str) -> None:
        rdn, parent = dn.split(",", 1)
        new_parent = parent
        if self.rng.random() < 0.3:
            new_parent = self.ous[1 - self.ous.index(parent)]
        new_rdn = f"cn=r{self.rng.randrange(10)}"
        new = f"{new_rdn},{new_parent}"
        sup = new_parent if new_parent != parent else None
        if self._on_entry(i, dn, f"rename {dn} to {new}",
                          lambda c: c.modify_dn(dn, new_rdn, delete_old_dn=True, new_superior=sup),
                          lambda u: [((u, NAME), (self.uuid_of[new_parent], new_rdn))]
                          + ([((u, "cn"), (new_rdn[3:].encode(),))] if new_rdn != rdn else []), new):
            self.names.remove(dn)
            self.names.append(new)

    # ------------------------------------------------------------------ faults

    def fault(self, active: list[tuple[str, int]]) -> None:
        """Start a partition (a blackholed proxy, or a node's replication stopped) or end one."""
        n = len(self.f.nodes)
        if active and (len(active) >= 2 or self.rng.random() < 0.4):
            kind, i = active.pop(self.rng.randrange(len(active)))
            if kind == "blackhole":
                self.f.proxies[i].heal()
            else:
                self.f.resume_replication(i)
            self.log.append(f"-- end {kind} of node {i}")
            return
        kind = self.rng.choice(("blackhole", "stop"))
        i = self.rng.randrange(n)
        if (kind, i) in active:
            return
        if kind == "blackhole":
            self.f.proxies[i].drop()
        else:
            self.f.stop_replication(i)
        active.append((kind, i))
        self.log.append(f"-- {kind} node {i}")

    def restart(self, i: int, active: list[tuple[str, int]]) -> None:
        if ("stop", i) in active:
            active.remove(("stop", i))
        self.f.resume_replication(i)
        s = self.f.nodes[i]
        self.drop_conn(i)
        self.taps[i].close()
        if self.rng.random() < 0.5:
            self.log.append(f"-- restart node {i} (SIGTERM)")
            s.stop()
        else:
            self.log.append(f"-- restart node {i} (SIGKILL)")
            s.kill9()
        s.start(timeout=60)

    # ------------------------------------------------------------------ the check

    def check(self, dumps: list[list[tuple]]) -> None:
        """Every key's final state (node 0's store; the stores are equal) is its highest
        stamp under the conflict rule, with that stamp's value; every acknowledged write
        is that stamp or was beaten by a higher one."""
        final: dict[bytes, Any] = {}
        for u, parent, rdn, _, attrs, meta, vmeta in dumps[0]:
            final[u] = (parent, rdn, dict(attrs), dict(meta),
                        {a: {bytes(x[0]).lower(): x for x in vs} for a, vs in vmeta})
        lf = [u for u, v in final.items() if v[1].lower() == "cn=lostandfound"]
        out = self.problems + [f"a stamp with two values: {c}" for c in self.stamps.clashes()]
        for key, by in self.stamps.seen.items():
            best = max(by)
            u = key[0]
            if u not in final:
                out.append(f"{uuidmod.UUID(bytes=u)}: stamps seen ({key[1]} {best}) but the entry is gone")
                continue
            parent, rdn, attrs, meta, vmeta = final[u]
            if len(key) == 3:
                x = vmeta.get(key[1], {}).get(key[2])
                have = (x[1], x[3], x[2], x[4]) if x else None
                if have != best or bool(x[5]) not in by[best]:
                    out.append(f"{uuidmod.UUID(bytes=u)} {key[1]} value {key[2]!r}: final {x}, highest stamp "
                               f"{best} deleted={by[best]}")
                continue
            m = meta.get(key[1])
            have = (m[0], m[2], m[1], m[3]) if m else None
            if have != best:
                out.append(f"{uuidmod.UUID(bytes=u)} {key[1]}: final stamp {have}, highest stamp seen {best} "
                           f"(values {by[best]})")
                continue
            if key[1] == NAME:
                ok = any(_name_matches(parent, rdn, p, r, u, lf) for p, r in by[best])
                if not ok:
                    out.append(f"{uuidmod.UUID(bytes=u)} name: final {rdn!r} under {parent}, highest stamp names "
                               f"{by[best]}")
            elif key[1] not in PER_VALUE and tuple(sorted(attrs.get(key[1], []))) not in by[best]:
                out.append(f"{uuidmod.UUID(bytes=u)} {key[1]}: final {attrs.get(key[1])}, highest stamp {best} "
                           f"wrote {by[best]}")
        ous = {self.uuid_of[ou] for ou in self.ous}
        for u, (parent, rdn, attrs, meta, vmeta) in final.items():
            # an entry's RDN is one of its values (RFC 4512 section 2.3.1; a conflict mark aside)
            value = rdn.split("=", 1)[1].split(CONFLICT_MARK)[0].lower().encode()
            if parent in ous and "isdeleted" not in attrs and value not in [v.lower() for v in attrs.get("cn", [])]:
                out.append(f"{uuidmod.UUID(bytes=u)} is named {rdn!r} but its cn is {attrs.get('cn')}\n"
                           + self.history(u))
            for a, vals in vmeta.items():
                live = sorted(bytes(x[0]) for x in vals.values() if not x[5])
                if a in attrs and sorted(attrs[a]) != live or a not in attrs and live:
                    out.append(f"{uuidmod.UUID(bytes=u)} {a}: values {attrs.get(a)} but live value states {live}")
        # the acknowledged writes: each one is the final state of its key, or a higher stamp beat it
        kept = beaten = 0
        for w in self.writes:
            r = w.rank or w.superseded_at_once
            if r is None:
                continue
            best = max(self.stamps.seen[w.key])
            if w.rank is not None and best == w.rank:
                kept += 1
            elif best > r:
                beaten += 1
            else:
                out.append(f"acknowledged {w.op} on node {w.node} ({w.key}, {r}) is neither kept nor beaten: {best}")
        # how much the run exercised: keys written on several nodes, where the last write
        # acknowledged did not win (the node that made it had seen fewer writes of that key)
        by_key: dict[Key, list[Write]] = {}
        for w in self.writes:
            by_key.setdefault(w.key, []).append(w)
        multi = [ws for ws in by_key.values() if len({w.node for w in ws}) > 1]
        not_last = sum(1 for ws in multi if max(ws, key=lambda w: w.t1).rank != max(self.stamps.seen[ws[0].key]))
        conflicts = sum(1 for v in final.values() if CONFLICT_MARK.lower() in v[1].lower())
        print(f"{len(self.writes)} acknowledged writes: {kept} kept, {beaten} beaten under the rule "
              f"({sum(1 for w in self.writes if w.superseded_at_once)} at once); {self.refused} refused, "
              f"{self.indeterminate} unanswered; {len(multi)} keys written on several nodes, {not_last} of them "
              f"not won by the last write; {conflicts} naming conflicts; {len(self.stamps.seen)} keys checked")
        assert not out, f"LIGHTWAVE_REPL_SEED={self.seed}: {len(out)} problems:\n" + "\n".join(out[:25]) + \
            "\nlast operations:\n" + "\n".join(self.log[-30:])


def _fmt(r: Rank | None, invs: dict[bytes, str]) -> str:
    return "-" if r is None else f"(v{r[0]}, t{r[1] % 100000}, {invs.get(r[2], r[2].hex()[:8])}, usn {r[3]})"


def _same_value(key: Key, got: Any, want: Any, u: bytes) -> bool:
    if key[1] == NAME:  # (a name conflict found at once may have marked it)
        return _name_matches(got[0], got[1], want[0], want[1].lower(), u, [])
    return bool(got == want)


def _name_matches(parent: bytes | None, rdn: str, p: bytes | None, r: str, u: bytes,
                  lost_and_found: list[bytes]) -> bool:
    """The final name of entry ``u`` against the name its highest stamp gave it: the same,
    or marked as a naming conflict (``<rdn> CNF:<uuid>``), or moved to lost and found."""
    marked = f"{r}{CONFLICT_MARK}{uuidmod.UUID(bytes=u)}".lower()
    return rdn.lower() in (r, marked) and (parent == p or parent in lost_and_found)


def test_random_operations_partitions_and_a_restart(forests: Callable[..., Forest]) -> None:
    seed = int(os.environ.get("LIGHTWAVE_REPL_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"LIGHTWAVE_REPL_SEED={seed}")
    rng = random.Random(seed)
    f = forests(3, mesh=True)
    run = RandomRun(f, rng, seed)
    run.setup()
    n_ops = 500
    restart_at = rng.randrange(n_ops // 3, 2 * n_ops // 3)
    active: list[tuple[str, int]] = []
    for k in range(n_ops):
        if rng.random() < 0.07:
            run.fault(active)
        if k == restart_at:
            run.restart(rng.randrange(len(f.nodes)), active)
        run.random_op()
    f.heal()
    converge(f.nodes[0], timeout=90)
    for i in range(len(f.nodes)):
        run.tap(i)
        run.taps[i].close()
        run.drop_conn(i)
    try:
        dumps = identical_stores(f)
    except AssertionError as exc:
        raise AssertionError(f"LIGHTWAVE_REPL_SEED={seed}: {exc}\nlast operations:\n"
                             + "\n".join(run.log[-40:])) from None
    run.check(dumps)
