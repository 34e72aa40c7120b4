"""Replication, Lightwave vs OpenLDAP slapd, side by side: two nodes on this machine, the
same data and the same client code measuring both.

    python -m bench.repl_bench                        # 1,000 writes, 50,000 adds, 100,000-entry join
    python -m bench.repl_bench --writes 100 --adds 2000 --join-entries 5000     # quick
    python -m bench.repl_bench --only latency,throughput --skip-slapd

Three measurements (see bench/README.md, "Replication benchmark"):

- latency: one write at a time on node A (replace ``description`` of one entry); after A
  acknowledges it, node B is polled (base search with an equality filter on the new
  value, one kept-open connection, tight loop) until the value is there. Recorded: from
  sending the write to seeing it on B. p50/p99 over ``--writes`` writes, after
  ``--warmup`` unmeasured ones on each pair.
- throughput: ``--adds`` pipelined adds on A, timed until B has them all (entries/s),
  and the same adds on a single node with no partner; the ratio replicated/single.
- join: a node with ``--join-entries`` people (bench/data.py) imported offline, then a
  second, empty node copies everything: ``lightwave up --join`` until ``lightwave repl
  wait`` returns 0, and for slapd a fresh syncrepl consumer until its contextCSN equals
  the provider's.

Lightwave's pair: ``lightwave up`` for A, ``lightwave up --join <A>`` for B (each pulls from
the other). slapd's pair: two ``multiprovider on`` nodes (serverID 1 and 2), each with a
refreshAndPersist syncrepl from the other and the syncprov overlay (bench/slapd_repl.py).
A benchmark never fails a build: problems are printed and the exit status is 0.
"""
from __future__ import annotations

import argparse
import atexit
import os
import re
import selectors
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field, replace

if __package__ in (None, ""):  # run as a file: python bench/repl_bench.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import data as D  # noqa: E402
from bench.loadgen import add_request  # noqa: E402
from bench.procinfo import (  # noqa: E402
    cpu_delta, cpu_snapshot, free_port, machine_busy_seconds, machine_summary, tree_pids, wait_ldap,
)
from bench.servers import REPO, LightwaveServer, remove  # noqa: E402
from bench.slapd import Slapd  # noqa: E402
from bench.slapd_repl import SlapdNode, url  # noqa: E402
from vmdir.ber import decode_response, encode_request  # noqa: E402
from vmdir.client import ClientError, Connection  # noqa: E402
from vmdir.proto.messages import (  # noqa: E402
    MOD_REPLACE, SCOPE_BASE, SCOPE_ONE, SCOPE_SUB, AddRequest, Change, Equality,
    ModifyRequest, Present, SearchRequest, SearchResultEntry,
)

PHASES = ("latency", "throughput", "join")
NO_ATTRS = ("1.1",)  # RFC 4511: return no attributes (we only count entries)


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# ================================================================ a small blocking LDAP client


class LdapError(Exception):
    """A request answered with a non-success result (or not answered)."""


class Client(Connection):
    """One LDAP connection bound as the administrator (slapd's rootdn), driven with the
    project's BER codec (``vmdir.client``). Every measurement talks to both servers through
    this class, so the client's own cost is the same on both sides."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        try:
            super().__init__(f"ldap://127.0.0.1:{port}", timeout=timeout)
            self.bind(D.ADMIN_DN, D.ADMIN_PASSWORD)
        except ClientError as exc:
            raise LdapError(str(exc)) from None

    def call(self, request) -> list:
        """Send ``request``; return its responses (search entries, then the result)."""
        try:
            return self.request(request)[0]
        except ClientError as exc:
            raise LdapError(str(exc)) from None

    def search(self, base: str, scope: int, flt, attrs: tuple[str, ...] = NO_ATTRS) -> tuple[int, list]:
        """(result code, entries)."""
        got = self.call(SearchRequest(base, scope, 0, 0, 0, False, flt, attrs))
        return int(got[-1].code), [r for r in got if isinstance(r, SearchResultEntry)]

    def count(self, base: str, scope: int = SCOPE_SUB) -> int:
        """Entries in scope (0 when the base does not exist yet)."""
        code, entries = self.search(base, scope, Present("objectClass"))
        if code not in (0, 32):  # 32 noSuchObject: not replicated yet
            raise LdapError(f"count under {base}: result {code}")
        return len(entries)

    def has_value(self, dn: str, attr: str, value: bytes) -> bool:
        """Whether ``dn`` exists with ``attr`` holding ``value`` (a base search with an
        equality filter: the answer is one entry or none, nothing to decode)."""
        code, entries = self.search(dn, SCOPE_BASE, Equality(attr, value))
        return code == 0 and bool(entries)

    def values(self, dn: str, attr: str) -> set[bytes]:
        code, entries = self.search(dn, SCOPE_BASE, Present("objectClass"), (attr,))
        if code != 0 or not entries:
            return set()
        return {v for a, vs in entries[0].attributes if a.lower() == attr.lower() for v in vs}

    def modify(self, dn: str, attr: str, value: bytes) -> None:
        done = self.call(ModifyRequest(dn, (Change(MOD_REPLACE, attr, (value,)),)))[-1]
        if done.code != 0:
            raise LdapError(f"modify {dn}: result {int(done.code)} {done.message}")

    def add(self, request: AddRequest) -> None:
        done = self.call(request)[-1]
        if done.code != 0:
            raise LdapError(f"add {request.dn}: result {int(done.code)} {done.message}")


def wait_for(check, timeout: float, interval: float = 0.0) -> bool:
    """Call ``check()`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        if interval:
            time.sleep(interval)


# ================================================================ the nodes


class LightwaveNode(LightwaveServer):
    """A Lightwave node for this benchmark: ``LightwaveServer`` (first start, offline
    import, stop) whose ``start`` may join a partner, keeps its ports across restarts and
    records when the node first answers LDAP. Unlike ``LightwaveServer.start`` it does not
    settle for half a second after that: the join is timed from the moment the process
    starts."""

    def __init__(self, workdir: str, args: argparse.Namespace, *, join: str | None = None) -> None:
        super().__init__(workdir, nosync=args.nosync, workers=args.workers, log=log)
        self.join = join
        self.up_seconds: float | None = None  # process start -> answering LDAP

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        # The ports are chosen once and kept across restarts: the node's default name is
        # <host>:<ldap port>, and a restart on another port would register a second node
        # in the topology (which `lightwave repl wait` then waits for forever).
        if self.ports is None:
            self.ports = (free_port(), free_port(), free_port())
        ldap, ldaps, https = self.ports
        cmd = self.cmd + [
            "up", "--data-dir", self.data_dir, "--domain", D.DOMAIN, "--listen", "127.0.0.1",
            "--ldap-port", str(ldap), "--ldaps-port", str(ldaps), "--https-port", str(https),
            "--quiet-ops",
        ]
        if self.workers:
            cmd += ["--workers", str(self.workers)]
        if self.nosync:
            cmd.append("--no-sync")
        if self.join and not os.path.exists(os.path.join(self.data_dir, "db")):
            cmd += ["--join", self.join]  # first start only
        atexit.register(self.stop)  # never leave a server behind if the benchmark dies
        self._logf = open(os.path.join(self.workdir, "server.log"), "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=subprocess.STDOUT)
        try:
            wait_ldap(ldap, timeout, self.proc, "lightwave")
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"lightwave did not start ({exc}); log tail:\n{self.log_tail()}") from None
        self.up_seconds = time.perf_counter() - t0
        self._descendants = tree_pids(self.proc.pid)

    def repl_wait(self, timeout: float) -> tuple[bool, str]:
        """``lightwave repl wait --server <this node>``: (converged, its output)."""
        r = subprocess.run(self.cmd + ["repl", "wait", "--server", self.url, "--timeout", str(int(timeout))],
                           cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout + 60)
        return r.returncode == 0, (r.stdout + r.stderr).strip()


class SlapdAlone(Slapd):
    """A plain single slapd (bench/slapd.py), with the interface the phases use."""

    def alive(self) -> str | None:
        return None if self.proc is not None and self.proc.poll() is None else "slapd exited"


@dataclass
class Pair:
    """Two nodes that replicate both ways: writes go to ``a``, reads come from ``b``."""
    name: str
    a: object
    b: object
    setup_seconds: float = 0.0

    @property
    def nodes(self) -> list:
        return [self.a, self.b]

    def stop(self) -> None:
        for n in self.nodes:
            try:
                n.stop()
            except Exception as exc:
                log(f"[{self.name}] stop failed: {exc}")

    def pids(self) -> list[int]:
        return [p for n in self.nodes if n.proc is not None for p in tree_pids(n.proc.pid)]

    def alive(self) -> str | None:
        for label, n in (("A", self.a), ("B", self.b)):
            if n.proc is None or n.proc.poll() is not None:
                return f"node {label} exited (status {n.proc.returncode if n.proc else '?'})"
        return None


def node_log_tail(node, lines: int = 15) -> str:
    if isinstance(node, LightwaveServer):
        return node.log_tail(lines)
    try:
        with open(os.path.join(node.workdir, "slapd.log"), "rb") as f:
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def check_both_ways(pair: Pair, args, tag: str, timeout: float) -> None:
    """A write on each node must reach the other before measuring (slapd's consumers
    connect on a 1-second retry, Lightwave's replication process starts beside the
    workers): raises if it does not within ``timeout``."""
    dn = D.person_dn(1, D.uid_width(args.pair_entries))
    for src, dst, label in ((pair.a, pair.b, "A -> B"), (pair.b, pair.a, "B -> A")):
        cs, cd = Client(src.port), Client(dst.port)
        try:
            value = f"ready {tag} {label}".encode()
            cs.modify(dn, "description", value)
            if not wait_for(lambda: cd.has_value(dn, "description", value), timeout, 0.01):
                raise RuntimeError(f"[{pair.name}] a write did not replicate {label} within {timeout:.0f}s")
        finally:
            cs.close()
            cd.close()


def lightwave_pair(work: str, args, ldif_nobase: str) -> Pair:
    """A imported offline and started; B joined to it (full copy, then both ways)."""
    t0 = time.perf_counter()
    a = LightwaveNode(os.path.join(work, "lw-a"), args)
    a.prepare()
    a.import_ldif(ldif_nobase)
    a.start()
    b = LightwaveNode(os.path.join(work, "lw-b"), args, join=a.url)
    pair = Pair("lightwave", a, b)
    try:
        b.start(timeout=args.join_timeout)
        ok, out = b.repl_wait(args.join_timeout)
        if not ok:
            raise RuntimeError(f"lightwave repl wait after the join did not return 0: {out[-500:]}")
        check_both_ways(pair, args, "lightwave", 60)
    except Exception:
        pair.stop()
        raise
    pair.setup_seconds = time.perf_counter() - t0
    return pair


def slapd_pair(work: str, args, ldif_full: str) -> Pair:
    """Two multi-provider slapds with identical data: A loaded with slapadd, B from
    slapcat of A (same entryUUIDs and entryCSNs, so neither has anything to send)."""
    t0 = time.perf_counter()
    pa, pb = free_port(), free_port()
    common = dict(multiprovider=True, nosync=args.nosync, threads=args.slapd_threads, log=log)
    a = SlapdNode(os.path.join(work, "sl-a"), server_id=1, port=pa, providers=[url(pb)], **common)
    b = SlapdNode(os.path.join(work, "sl-b"), server_id=2, port=pb, providers=[url(pa)], **common)
    a.slapadd(ldif_full, quick=True, context_csn=True)
    copy = os.path.join(work, "sl-a.slapcat.ldif")
    a.slapcat(copy)
    b.slapadd(copy, quick=True)
    pair = Pair("slapd", a, b)
    try:
        a.start()
        b.start()
        check_both_ways(pair, args, "slapd", 60)
    except Exception:
        pair.stop()
        raise
    pair.setup_seconds = time.perf_counter() - t0
    return pair


# ================================================================ latency


@dataclass
class Latency:
    ack_ns: list[int] = field(default_factory=list)  # send -> A's ModifyResponse
    conv_ns: list[int] = field(default_factory=list)  # send -> value seen on B
    polls: int = 0  # searches sent to B
    timeouts: int = 0
    errors: Counter = field(default_factory=Counter)


def latency_block(conns: tuple[Client, Client], res: Latency, start: int, count: int, args, tag: str) -> None:
    """``count`` writes, one at a time, numbered from ``start``, over ``conns`` (a
    connection to A, one to B)."""
    dn = D.person_dn(0, D.uid_width(args.pair_entries))
    ca, cb = conns
    pc = time.perf_counter_ns
    for i in range(start, start + count):
        value = f"latency {tag} {i}".encode()
        write = ModifyRequest(dn, (Change(MOD_REPLACE, "description", (value,)),))
        t0 = pc()
        done = ca.call(write)[-1]
        t_ack = pc()
        if done.code != 0:
            res.errors[f"modify on A: result {int(done.code)} {done.message}"] += 1
            continue
        deadline = t_ack + int(args.write_timeout * 1e9)
        while True:
            res.polls += 1
            seen = cb.has_value(dn, "description", value)
            now = pc()
            if seen:
                res.ack_ns.append(t_ack - t0)
                res.conv_ns.append(now - t0)
                break
            if now > deadline:
                res.timeouts += 1
                break
            if args.poll_interval:
                time.sleep(args.poll_interval)


def measure_latency(pairs: list[Pair], args, tag: str) -> dict[str, Latency]:
    """Interleave blocks of writes between the pairs, so a slow spell of the machine hits
    both alike. Each pair keeps its two connections (bound once) from its warm-up to its
    last write: what is timed is a change travelling, not a connection being set up and
    authenticated (the first writes after a new bind run on caches the bind's password
    hash has cooled, Lightwave's argon2 most of all). A block that fails drops them; the
    next one connects again."""
    out = {p.name: Latency() for p in pairs}
    conns: dict[str, tuple[Client, Client]] = {}

    def run(p: Pair, res: Latency, start: int, n: int, label: str) -> None:
        if p.name not in conns:
            ca = Client(p.a.port)
            try:
                conns[p.name] = (ca, Client(p.b.port))
            except Exception:
                ca.close()
                raise
        try:
            latency_block(conns[p.name], res, start, n, args, label)
        except Exception:
            for c in conns.pop(p.name):
                c.close()
            raise

    try:
        for p in pairs:  # unmeasured: both pairs start measuring at their steady state
            if args.warmup and not p.alive():
                try:
                    run(p, Latency(), -args.warmup, args.warmup, tag + " warm-up")
                except Exception as exc:
                    log(f"[{p.name}] warm-up failed: {exc}")
        block = max(1, min(50, args.writes // 10 or 1))
        done = 0
        while done < args.writes:
            n = min(block, args.writes - done)
            for p in pairs:
                why = p.alive()
                if why:
                    out[p.name].errors[f"not run: {why}"] += n
                    continue
                try:
                    run(p, out[p.name], done, n, tag)
                except Exception as exc:
                    out[p.name].errors[f"{type(exc).__name__}: {exc}"] += 1
            done += n
            log(f"latency: {done:,}/{args.writes:,} writes")
    finally:
        for pair_conns in conns.values():
            for c in pair_conns:
                c.close()
    return out


# ================================================================ throughput


@dataclass
class AddRun:
    """The outcome of a batch of pipelined adds."""
    sent: int = 0
    ok: int = 0
    errors: Counter = field(default_factory=Counter)
    t_first: int = 0  # perf_counter_ns when the first add was handed to the kernel
    t_last: int = 0  # perf_counter_ns when the last result arrived

    @property
    def seconds(self) -> float:
        return (self.t_last - self.t_first) / 1e9


def add_requests(ou: str, n: int, tag: str) -> list[AddRequest]:
    """``n`` entries as the LDAP benchmark's add workload makes them (bench/loadgen.py),
    under ``ou`` so that they are easy to count."""
    out = []
    for i in range(n):
        digits = f"{i:09d}"
        req = add_request(f"r{tag}n{digits}", digits)
        out.append(replace(req, dn=req.dn.replace(D.PEOPLE, ou)))
    return out


def run_adds(port: int, requests: list[AddRequest], conns: int, window: int,
             stall: float = 60.0) -> AddRun:
    """Send ``requests`` over ``conns`` bound connections, keeping ``window`` outstanding
    on each (pipelining): a new add goes out whenever a result comes back. Requests are
    encoded before the clock starts."""
    clients = [Client(port) for _ in range(conns)]
    todo: list[list[bytes]] = [[] for _ in clients]
    mine = [[] for _ in clients]
    for k, req in enumerate(requests):  # round robin; each connection numbers its own
        mine[k % conns].append(req)
    for c, cl in enumerate(clients):
        first = cl.reserve_ids(len(mine[c]))
        todo[c] = [encode_request(first + i, req) for i, req in enumerate(mine[c])]
    run = AddRun()
    sel = selectors.DefaultSelector()
    state = []  # per connection: [next index, outstanding]
    for c, cl in enumerate(clients):
        cl.sock.setblocking(False)
        sel.register(cl.sock, selectors.EVENT_READ, c)
        state.append([0, 0])

    def send(c: int, count: int) -> None:
        st, q = state[c], todo[c]
        batch = q[st[0]:st[0] + count]
        if not batch:
            return
        st[0] += len(batch)
        st[1] += len(batch)
        run.sent += len(batch)
        sock = clients[c].sock
        sock.setblocking(True)  # a few KB: never blocks for long
        try:
            sock.sendall(b"".join(batch))
        finally:
            sock.setblocking(False)

    pc = time.perf_counter_ns
    try:
        run.t_first = pc()
        for c in range(conns):
            send(c, window)
        while any(st[1] for st in state):
            events = sel.select(stall)
            if not events:
                run.errors[f"no result for {stall:.0f}s: gave up"] += sum(st[1] for st in state)
                break
            for key, _ in events:
                c = key.data
                try:
                    chunk = clients[c].sock.recv(1 << 18)
                except BlockingIOError:
                    continue
                now = pc()
                if not chunk:
                    run.errors["connection closed by the server"] += state[c][1]
                    state[c][1] = 0
                    sel.unregister(clients[c].sock)
                    continue
                done = 0
                for frame in clients[c].frames(chunk):
                    _, resp, _ = decode_response(frame)
                    if not hasattr(resp, "code"):
                        continue
                    done += 1
                    if resp.code == 0:
                        run.ok += 1
                    else:
                        run.errors[f"add: result {int(resp.code)} {resp.message}"[:160]] += 1
                if done:
                    run.t_last = now
                    state[c][1] -= done
                    send(c, done)
    finally:
        sel.close()
        for cl in clients:
            try:
                cl.sock.setblocking(True)
                cl.close()
            except OSError:
                pass
    return run


@dataclass
class Throughput:
    adds: int = 0
    run: AddRun | None = None
    all_on_b: float | None = None  # seconds from the first add until B had every one
    b_count: int = 0
    cpu: float | None = None  # CPU seconds of both nodes over that interval
    other_cpu: float = 0.0  # CPU seconds of everything else on the machine, meanwhile
    single: AddRun | None = None  # the same adds on one node without a partner
    single_cpu: float | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        return self.run.ok / self.all_on_b if self.run and self.all_on_b else None

    @property
    def single_rate(self) -> float | None:
        return self.single.ok / self.single.seconds if self.single and self.single.seconds else None


def make_ou(client: Client, tag: str) -> str:
    ou = f"ou=repl{tag},{D.SUFFIX}"
    client.add(AddRequest(ou, (("objectClass", (b"top", b"organizationalUnit")), ("ou", (f"repl{tag}".encode(),)))))
    return ou


def replicated_adds(pair: Pair, args, tag: str, res: Throughput) -> None:
    """``args.adds`` adds on A; then a marker write on A (after the last add was
    acknowledged) is polled on B every 5 ms: both servers replicate in commit order, so
    once the marker is there so is every add. A count on B checks that, and if it falls
    short the count is polled until it is complete (that time is then what counts)."""
    ca, cb = Client(pair.a.port), Client(pair.b.port)
    try:
        ou = make_ou(ca, tag)
        if not wait_for(lambda: cb.count(ou, SCOPE_BASE) == 1, 60, 0.01):
            raise RuntimeError(f"{ou} did not reach B within 60 s")
        requests = add_requests(ou, args.adds, tag)
        res.adds = len(requests)
        pids = pair.pids()
        cpu0, busy0, own0 = cpu_snapshot(pids), machine_busy_seconds(), _own_cpu()
        run = run_adds(pair.a.port, requests, args.add_conns, args.window)
        res.run = run
        marker = f"all {tag} sent".encode()
        ca.modify(ou, "description", marker)
        deadline = time.monotonic() + args.catchup_timeout
        last_log = time.monotonic()
        while not cb.has_value(ou, "description", marker):
            if time.monotonic() > deadline:
                res.errors.append(f"B did not get the marker within {args.catchup_timeout:.0f}s after the "
                                  f"last add; B has {cb.count(ou, SCOPE_ONE):,} of {run.ok:,}")
                return
            if time.monotonic() - last_log > 15:
                last_log = time.monotonic()
                log(f"[{pair.name}] B has {cb.count(ou, SCOPE_ONE):,} of {run.ok:,} adds")
            time.sleep(0.005)
        t_marker = time.perf_counter_ns()
        cpu1, busy1, own1 = cpu_snapshot(pair.pids()), machine_busy_seconds(), _own_cpu()
        res.b_count = cb.count(ou, SCOPE_ONE)
        t_all = t_marker
        if res.b_count < run.ok:
            res.errors.append(f"B had only {res.b_count:,} of {run.ok:,} adds when A's later marker "
                              "write arrived (not in commit order?): counting until complete")
            while res.b_count < run.ok and time.monotonic() < deadline:
                time.sleep(0.25)
                res.b_count = cb.count(ou, SCOPE_ONE)
            t_all = time.perf_counter_ns()
        res.all_on_b = (t_all - run.t_first) / 1e9
        res.cpu = cpu_delta(cpu0, cpu1)[0]
        res.other_cpu = max(0.0, (busy1 - busy0) - res.cpu - (own1 - own0))
    finally:
        ca.close()
        cb.close()


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def single_node_adds(node, args, tag: str, res: Throughput) -> None:
    """The same adds on one node that has no partner: the rate A acknowledges them."""
    c = Client(node.port)
    try:
        ou = make_ou(c, tag)
    finally:
        c.close()
    pids = tree_pids(node.proc.pid)
    cpu0 = cpu_snapshot(pids)
    res.single = run_adds(node.port, add_requests(ou, args.adds, tag), args.add_conns, args.window)
    res.single_cpu = cpu_delta(cpu0, cpu_snapshot(tree_pids(node.proc.pid)))[0]


def single_lightwave(work: str, args, ldif_nobase: str) -> LightwaveNode:
    n = LightwaveNode(os.path.join(work, "lw-single"), args)
    n.prepare()
    n.import_ldif(ldif_nobase)
    n.start()
    return n


def single_slapd(work: str, args, ldif_full: str) -> SlapdAlone:
    s = SlapdAlone(os.path.join(work, "sl-single"), nosync=args.nosync, threads=args.slapd_threads, log=log)
    s.slapadd(ldif_full, quick=True)
    s.start()
    return s


# ================================================================ join


@dataclass
class Join:
    entries: int = 0  # entries under the suffix on the loaded node
    copied: int = 0  # entries under the suffix on the new node, once converged
    up: float | None = None  # new node answering LDAP (Lightwave: its full copy is done by then)
    done: float | None = None  # new node has everything
    cpu_new: float | None = None  # CPU seconds of the new node until then
    cpu_old: float | None = None  # CPU seconds of the loaded node until then
    note: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        return self.copied / self.done if self.done and self.copied else None


def join_lightwave(work: str, args, ldif_nobase: str) -> Join:
    """A with the data imported offline; then time ``lightwave up --join A`` for B until
    ``lightwave repl wait`` returns 0."""
    res = Join()
    a = LightwaveNode(os.path.join(work, "join-lw-a"), args)
    b = LightwaveNode(os.path.join(work, "join-lw-b"), args)
    try:
        a.prepare()
        log(f"[lightwave join] importing {args.join_entries:,} people into A")
        a.import_ldif(ldif_nobase)
        a.start()
        c = Client(a.port)
        res.entries = c.count(D.SUFFIX)
        c.close()
        b.join = a.url
        a_cpu0 = cpu_snapshot(tree_pids(a.pid))
        log(f"[lightwave join] B joins A ({res.entries:,} entries under {D.SUFFIX})")
        t0 = time.perf_counter()
        b.start(timeout=args.join_timeout)
        res.up = b.up_seconds
        ok, out = b.repl_wait(args.join_timeout)
        t1 = time.perf_counter()
        b_cpu = cpu_snapshot(tree_pids(b.pid))  # B's processes all started after t0
        res.cpu_new = sum(b_cpu.values()) / os.sysconf("SC_CLK_TCK")
        res.cpu_old = cpu_delta(a_cpu0, cpu_snapshot(tree_pids(a.pid)))[0]
        if not ok:
            res.errors.append(f"lightwave repl wait did not return 0: {out[-400:]}")
            return res
        res.done = t1 - t0
        c = Client(b.port)
        res.copied = c.count(D.SUFFIX)
        c.close()
        m = re.search(r"joined; (\d+) entries copied", b.log_tail(200))
        if m:
            res.note = f"B's log: {m.group(1)} entries copied (its count includes system entries)"
        if res.copied != res.entries:
            res.errors.append(f"B has {res.copied:,} entries under {D.SUFFIX}, A has {res.entries:,}")
    finally:
        for n in (b, a):
            try:
                n.stop()
            except Exception as exc:
                log(f"[lightwave join] stop failed: {exc}")
    return res


def context_csn(client: Client) -> set[bytes]:
    return client.values(D.SUFFIX, "contextCSN")


def join_slapd(work: str, args, ldif_full: str) -> Join:
    """A provider loaded with slapadd; then time a fresh consumer with an empty database
    until its contextCSN (written when the initial refresh completes) equals A's."""
    res = Join()
    pa, pb = free_port(), free_port()
    a = SlapdNode(os.path.join(work, "join-sl-a"), server_id=1, port=pa, nosync=args.nosync,
                  threads=args.slapd_threads, log=log)
    b = SlapdNode(os.path.join(work, "join-sl-b"), server_id=2, port=pb, providers=[url(pa)],
                  nosync=args.nosync, threads=args.slapd_threads, log=log)
    try:
        log(f"[slapd join] slapadd {args.join_entries:,} people into A")
        a.slapadd(ldif_full, quick=True, context_csn=True)
        a.start()
        ca = Client(pa)
        res.entries = ca.count(D.SUFFIX)
        want = context_csn(ca)
        ca.close()
        if not want:
            res.errors.append("the provider has no contextCSN")
            return res
        a_cpu0 = cpu_snapshot(tree_pids(a.pid))
        log(f"[slapd join] consumer B refreshes from A ({res.entries:,} entries)")
        t0 = time.perf_counter()
        b.start(timeout=args.join_timeout)
        res.up = time.perf_counter() - t0
        cb = Client(pb)
        try:
            ok = wait_for(lambda: context_csn(cb) == want, args.join_timeout, 0.05)
            t1 = time.perf_counter()
            res.cpu_new = sum(cpu_snapshot(tree_pids(b.pid)).values()) / os.sysconf("SC_CLK_TCK")
            res.cpu_old = cpu_delta(a_cpu0, cpu_snapshot(tree_pids(a.pid)))[0]
            res.copied = cb.count(D.SUFFIX)
        finally:
            cb.close()
        if not ok:
            res.errors.append(f"B's contextCSN did not match A's within {args.join_timeout:.0f}s "
                              f"(B has {res.copied:,} of {res.entries:,} entries)")
            return res
        res.done = t1 - t0
        if res.copied != res.entries:
            res.errors.append(f"B has {res.copied:,} entries, A has {res.entries:,}")
    finally:
        for n in (b, a):
            n.stop()
    return res


# ================================================================ printing


def fmt(x, spec: str = ",.0f", none: str = "-") -> str:
    return none if x is None else format(x, spec)


def ratio(a, b) -> str:
    return "-" if a is None or b is None or not b else f"{a / b:.2f}x"


def pct_ms(ns: list[int], q: float) -> float | None:
    if not ns:
        return None
    s = sorted(ns)
    return s[min(len(s) - 1, int(q * len(s)))] / 1e6


def print_latency(lat: dict[str, Latency], args) -> None:
    print()
    print(f"== Convergence latency: {args.writes:,} writes (after {args.warmup:,} unmeasured), one at a time, "
          f"on A (replace 'description' of "
          f"{D.person_dn(0, D.uid_width(args.pair_entries))});")
    print("   after A's result, B is polled (base search, equality filter on the new value, one open")
    print(f"   connection, {'tight loop' if not args.poll_interval else f'{args.poll_interval * 1000:g} ms apart'});"
          " time from sending the write to seeing it on B")
    hdr = (f"{'server':<10} {'seen':>6} {'ack p50':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} "
           f"{'polls/w':>7} {'timeouts':>8}   {'vs slapd: p50':>13} {'p99':>6}")
    print(hdr)
    print("-" * len(hdr))
    ref = lat.get("slapd")
    for name, r in lat.items():
        is_ref = r is ref
        p50, p99 = pct_ms(r.conv_ns, 0.5), pct_ms(r.conv_ns, 0.99)
        print(f"{name:<10} {len(r.conv_ns):>6,} {fmt(pct_ms(r.ack_ns, 0.5), '.2f'):>8} {fmt(p50, '.2f'):>8} "
              f"{fmt(pct_ms(r.conv_ns, 0.9), '.2f'):>8} {fmt(p99, '.2f'):>8} {fmt(pct_ms(r.conv_ns, 1.0), '.2f'):>8} "
              f"{r.polls / max(1, len(r.conv_ns) + r.timeouts):>7.1f} {r.timeouts:>8}   "
              f"{'' if is_ref else ratio(p50, pct_ms(ref.conv_ns, 0.5) if ref else None):>13} "
              f"{'' if is_ref else ratio(p99, pct_ms(ref.conv_ns, 0.99) if ref else None):>6}")
    print("   ack p50: A's own write latency. vs slapd: Lightwave's latency / slapd's (below 1.00x is better)")
    for name, r in lat.items():
        for msg, n in r.errors.items():
            print(f"   ! {name}: {n:,} x {msg}")
        if r.timeouts:
            print(f"   ! {name}: {r.timeouts} write(s) not seen on B within {args.write_timeout:g}s")


def print_throughput(tp: dict[str, Throughput], args) -> None:
    print()
    print(f"== Replication throughput: {args.adds:,} adds on A ({args.add_conns} connections x {args.window} "
          "outstanding), timed from the first add")
    print("   until B has them all; single node: the same adds on a node with no partner, until the last result")
    hdr = (f"{'server':<10} {'adds ok':>8} {'A acked s':>9} {'A adds/s':>9} {'B has all s':>11} {'repl /s':>8} "
           f"{'/CPU-s':>7} {'single /s':>9} {'/CPU-s':>7} {'repl/single':>11}   {'vs slapd: repl':>14} {'single':>7}")
    print(hdr)
    print("-" * len(hdr))
    ref = tp.get("slapd")
    for name, r in tp.items():
        is_ref = r is ref
        run = r.run
        per_cpu = r.run.ok / r.cpu if r.run and r.cpu else None
        s_per_cpu = r.single.ok / r.single_cpu if r.single and r.single_cpu else None
        print(f"{name:<10} {fmt(run.ok if run else None):>8} {fmt(run.seconds if run else None, '.1f'):>9} "
              f"{fmt(run.ok / run.seconds if run and run.seconds else None):>9} {fmt(r.all_on_b, '.1f'):>11} "
              f"{fmt(r.rate):>8} {fmt(per_cpu):>7} {fmt(r.single_rate):>9} {fmt(s_per_cpu):>7} "
              f"{ratio(r.rate, r.single_rate):>11}   "
              f"{'' if is_ref else ratio(r.rate, ref.rate if ref else None):>14} "
              f"{'' if is_ref else ratio(r.single_rate, ref.single_rate if ref else None):>7}")
    print("   repl /s: adds / (B has all s). /CPU-s: the same adds per CPU second of the servers (both nodes for")
    print("   repl). repl/single: replicated rate / single-node rate. vs slapd: Lightwave / slapd (above 1.00x is better)")
    lw = tp.get("lightwave")
    if lw and lw.rate and lw.single_rate:
        x = lw.rate / lw.single_rate
        print(f"   lightwave replication / single node: {x:.2f}x (target >= 0.50x: {'met' if x >= 0.5 else 'NOT met'})")
    for name, r in tp.items():
        for run, what in ((r.run, "replicated"), (r.single, "single node")):
            if run:
                for msg, n in run.errors.items():
                    print(f"   ! {name} {what}: {n:,} x {msg}")
        for msg in r.errors:
            print(f"   ! {name}: {msg}")
        if r.all_on_b and r.other_cpu / r.all_on_b > 0.15:
            print(f"   ! {name}: other processes used {r.other_cpu / r.all_on_b:.2f} cores meanwhile; "
                  "figures may be low")


def print_join(js: dict[str, Join], args) -> None:
    print()
    print(f"== Join: an empty node copies {args.join_entries:,} people (+ groups, containers) from a loaded node")
    print("   lightwave: 'lightwave up --join A' until 'lightwave repl wait' returns 0; slapd: a fresh syncrepl")
    print("   consumer (refreshAndPersist) until its contextCSN equals the provider's")
    hdr = (f"{'server':<10} {'entries':>8} {'up s':>7} {'done s':>7} {'entries/s':>9} {'new CPU s':>9} "
           f"{'old CPU s':>9}   {'vs slapd: entries/s':>19}")
    print(hdr)
    print("-" * len(hdr))
    ref = js.get("slapd")
    for name, r in js.items():
        print(f"{name:<10} {fmt(r.copied or None):>8} {fmt(r.up, '.1f'):>7} {fmt(r.done, '.1f'):>7} "
              f"{fmt(r.rate):>9} {fmt(r.cpu_new, '.1f'):>9} {fmt(r.cpu_old, '.1f'):>9}   "
              f"{'' if r is ref else ratio(r.rate, ref.rate if ref else None):>19}")
    print("   up: process start to answering LDAP (Lightwave copies before it listens). entries: under "
          f"{D.SUFFIX} on the new node.")
    print("   CPU: seconds used by the new node (all of it) and by the loaded node, from the start to done")
    for name, r in js.items():
        if r.note:
            print(f"   {name}: {r.note}")
        for msg in r.errors:
            print(f"   ! {name}: {msg}")


# ================================================================ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.repl_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--writes", type=int, default=1000, help="latency: writes, one at a time (default 1000)")
    p.add_argument("--warmup", type=int, default=200,
                   help="latency: unmeasured writes on each pair first (default 200)")
    p.add_argument("--adds", type=int, default=50_000, help="throughput: adds on A (default 50000)")
    p.add_argument("--join-entries", type=int, default=100_000,
                   help="join: people on the loaded node (default 100000; groups and containers added)")
    p.add_argument("--pair-entries", type=int, default=10_000,
                   help="people the latency/throughput pairs start with (default 10000)")
    p.add_argument("--only", default=",".join(PHASES), help=f"what to run (default {','.join(PHASES)})")
    p.add_argument("--skip-slapd", action="store_true", help="do not run OpenLDAP")
    p.add_argument("--skip-ours", action="store_true", help="do not run Lightwave")
    p.add_argument("--add-conns", type=int, default=4, help="throughput: connections the adds use (default 4)")
    p.add_argument("--window", type=int, default=8, help="throughput: adds outstanding per connection (default 8)")
    p.add_argument("--poll-interval", type=float, default=0.0,
                   help="latency: seconds between polls of B (default 0: tight loop)")
    p.add_argument("--write-timeout", type=float, default=10.0,
                   help="latency: give up on one write after this many seconds (default 10)")
    p.add_argument("--catchup-timeout", type=float, default=900.0,
                   help="throughput: how long B may take after the last add (default 900 s)")
    p.add_argument("--join-timeout", type=float, default=1800.0, help="join: how long it may take (default 1800 s)")
    p.add_argument("--workers", type=int, default=1, help="lightwave worker processes per node (default 1)")
    p.add_argument("--slapd-threads", type=int, default=None, help="slapd 'threads' (default: slapd's, 16)")
    p.add_argument("--nosync", action="store_true", help="neither server fsyncs a commit")
    p.add_argument("--workdir", default=None, help="parent of the temporary directory (default $TMPDIR)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data)")
    a = p.parse_args(argv)
    a.only = [x.strip() for x in a.only.split(",") if x.strip()]
    bad = [x for x in a.only if x not in PHASES]
    if a.pair_entries < 2:
        p.error("--pair-entries must be at least 2")
    if bad:
        p.error(f"unknown phase(s) {bad}; choose from {','.join(PHASES)}")
    return a


def slapd_version() -> str:
    try:
        r = subprocess.run(["/usr/sbin/slapd", "-VV"], capture_output=True, text=True, timeout=10)
        m = re.search(r"slapd (\S+)", r.stdout + r.stderr)
        return m.group(1) if m else "?"
    except (OSError, subprocess.SubprocessError):
        return "not installed yet"


def guarded(problems: list[str], what: str, fn, *a):
    """Run one step; on failure, note it (with the traceback on stderr) and return None."""
    try:
        return fn(*a)
    except Exception as exc:
        problems.append(f"{what}: {type(exc).__name__}: {exc}")
        log(f"{what} FAILED:\n{traceback.format_exc()}")
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_begin = time.monotonic()
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="lwrepl-", dir=args.workdir)
    problems: list[str] = []
    tag = "%x" % (int(time.time()) & 0xFFFFFF)
    try:
        sides = []
        if not args.skip_ours:
            why = LightwaveServer.available()
            if why:
                problems.append(f"lightwave is not runnable, skipped: {why}")
            else:
                sides.append("lightwave")
        if not args.skip_slapd:
            sides.append("slapd")
        print(f"Lightwave replication benchmark  {time.strftime('%Y-%m-%d %H:%M:%S')}  on {machine_summary()}")
        print(f"lightwave: 2 nodes, 'lightwave up --workers {args.workers} --quiet-ops', B joined to A; "
              f"slapd {slapd_version()}: 2 nodes, multiprovider on, syncrepl refreshAndPersist each way, "
              f"syncprov, threads {args.slapd_threads or 'default (16)'}")
        print(f"commits: {'NOT synced (--nosync) on either server' if args.nosync else 'durable (fsync) on both'}; "
              f"all traffic on 127.0.0.1; client: one Python process, bound as {D.ADMIN_DN}")
        print(f"pairs start with {args.pair_entries:,} people (bench/data.py)")

        pairs: list[Pair] = []
        lat: dict[str, Latency] = {}
        tp: dict[str, Throughput] = {}
        js: dict[str, Join] = {}
        if {"latency", "throughput"} & set(args.only) and sides:
            full = os.path.join(work, "pair.ldif")
            nobase = os.path.join(work, "pair-nobase.ldif")
            D.write_ldif(full, args.pair_entries)
            D.write_ldif(nobase, args.pair_entries, include_base=False)
            for side in sides:
                log(f"[{side}] setting up the pair")
                make = lightwave_pair if side == "lightwave" else slapd_pair
                p = guarded(problems, f"{side} pair setup", make, work, args, nobase if side == "lightwave" else full)
                if p:
                    log(f"[{side}] pair ready in {p.setup_seconds:.1f}s")
                    pairs.append(p)
            try:
                if "latency" in args.only and pairs:
                    lat = measure_latency(pairs, args, tag)
                if "throughput" in args.only:
                    for p in pairs:
                        res = tp.setdefault(p.name, Throughput())
                        why = p.alive()
                        if why:
                            res.errors.append(f"not run: {why}\n{node_log_tail(p.a)}\n{node_log_tail(p.b)}")
                            continue
                        log(f"[{p.name}] {args.adds:,} replicated adds")
                        try:
                            replicated_adds(p, args, tag, res)
                        except Exception as exc:
                            res.errors.append(f"{type(exc).__name__}: {exc}")
                            log(traceback.format_exc())
                        log(f"[{p.name}] replicated: {fmt(res.rate)} adds/s")
            finally:
                for p in pairs:
                    why = p.alive()
                    if why:
                        problems.append(f"{p.name} pair: {why}; log tails:\nA: {node_log_tail(p.a)}\n"
                                        f"B: {node_log_tail(p.b)}")
                    p.stop()
            if "throughput" in args.only:
                for side in sides:
                    res = tp.setdefault(side, Throughput())
                    log(f"[{side}] {args.adds:,} adds on a single node")
                    make = single_lightwave if side == "lightwave" else single_slapd
                    node = guarded(problems, f"{side} single node", make, work, args,
                                   nobase if side == "lightwave" else full)
                    if node is None:
                        continue
                    try:
                        single_node_adds(node, args, tag, res)
                    except Exception as exc:
                        res.errors.append(f"single node: {type(exc).__name__}: {exc}")
                        log(traceback.format_exc())
                    finally:
                        node.stop()
                    log(f"[{side}] single node: {fmt(res.single_rate)} adds/s")
        if "join" in args.only and sides:
            full = os.path.join(work, "join.ldif")
            nobase = os.path.join(work, "join-nobase.ldif")
            log(f"generating {args.join_entries:,} people for the join")
            D.write_ldif(full, args.join_entries)
            D.write_ldif(nobase, args.join_entries, include_base=False)
            for side in sides:
                r = guarded(problems, f"{side} join", join_lightwave if side == "lightwave" else join_slapd,
                            work, args, nobase if side == "lightwave" else full)
                if r:
                    js[side] = r
                    log(f"[{side}] join: {fmt(r.done, '.1f')} s, {fmt(r.rate)} entries/s")

        if lat:
            print_latency(lat, args)
        if tp:
            print_throughput(tp, args)
        if js:
            print_join(js, args)
        if problems:
            print()
            for msg in problems:
                print(f"! {msg[-3000:]}")
        print()
        print(f"(total {time.monotonic() - t_begin:.0f}s; work directory {work if args.keep else 'removed'})")
    except KeyboardInterrupt:
        print("interrupted")
    except Exception:
        print("benchmark error (ignored, benchmarks never fail a build):")
        traceback.print_exc(file=sys.stdout)
    finally:
        if not args.keep:
            remove(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
