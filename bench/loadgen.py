"""LDAP load generator: pipelined, pre-encoded requests over raw sockets.

Design (so that the client is not the bottleneck):

- Every request PDU is encoded once, before timing, with ``vmdir.ber.encode_request``
  under message id ``MSGID_BASE`` (0x01000000). Any message id from 0x00800000 to
  0x7fffffff has a minimal 4-byte INTEGER encoding (``02 04 xx xx xx xx``), so sending
  a request is two slices around a 4-byte id: no encoding in the loop. Requests that
  target a random entry come from a pool of ``POOL`` PDUs built from a template whose
  uid digits are patched (fixed width, so lengths never change). Adds patch a unique
  counter into the template the same way.
- Responses are framed with ``vmdir.ber.peek_frame``; from each frame only the message
  id, the protocolOp tag and the result code are read. Only non-success results are
  fully decoded (to report their diagnostic message).
- Each connection keeps ``window`` requests outstanding (pipelining); binds use a window
  of 1 because RFC 4511 section 4.2.1 forbids sending anything while a bind is in
  progress.
- Connections are spread over several client processes (``procs``) driven by epoll.
  The parent process reads server and client CPU from /proc at the edges of the
  measured interval.

Latency is measured from the moment a batch of requests is handed to the kernel to
the moment the ``recv`` holding the result returns, with ``time.perf_counter_ns``
(CLOCK_MONOTONIC on Linux, comparable across processes). With a window W > 1 it
includes queueing behind the other W-1 requests of the connection.

Usage against any server::

    python -m bench.loadgen --port 10389 --workload search --conns 8 --duration 5
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import selectors
import socket
import sys
import time
import traceback
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from vmdir.ber import decode_response, encode_request, peek_frame
from vmdir.proto.messages import (
    MOD_REPLACE, SCOPE_SUB, AddRequest, BindRequest, Change, Equality, ModifyRequest,
    SearchRequest, UnbindRequest,
)

from vmdir.proto.results import ResultCode

from bench import data as D
from bench.procinfo import cpu_delta, cpu_seconds, cpu_snapshot, machine_busy_seconds, tree_pids

MSGID_BASE = 0x01000000
_MSGID_BYTES = MSGID_BASE.to_bytes(4, "big")
POOL = 1 << 15  # distinct pre-encoded requests per client process (random targets)
MAX_PDU = 16 << 20
WORKLOADS = ("search", "bind", "modify", "add", "mix")
MARK = b"#"  # template placeholder byte (never appears in the generated DNs/values)

# protocolOp tags of the responses we read
T_BIND, T_ENTRY, T_DONE, T_REF, T_MOD, T_ADD = 0x61, 0x64, 0x65, 0x73, 0x67, 0x69
KIND_OF_TAG = {T_BIND: "bind", T_DONE: "search", T_MOD: "modify", T_ADD: "add"}


# ================================================================ request templates


def _split_msgid(pdu: bytes) -> tuple[bytes, bytes]:
    """Split an LDAPMessage encoded under MSGID_BASE into (head, tail) around the id."""
    i = 2 if pdu[1] < 0x80 else 2 + (pdu[1] & 0x7F)
    if pdu[i:i + 6] != b"\x02\x04" + _MSGID_BYTES:
        raise AssertionError("unexpected message id encoding: %s" % pdu[:i + 6].hex())
    return pdu[:i + 2], pdu[i + 6:]


def _template(make, width: int) -> list[bytes]:
    """Encode ``make(placeholder)`` once and split it where the placeholder (a run of
    ``width`` MARK bytes) occurs: the result, filled by :func:`_fill` with ``width``
    digits, equals ``encode_request(MSGID_BASE, make(digits))`` (checked here)."""
    marker = MARK * width
    pdu = encode_request(MSGID_BASE, make(marker.decode()))
    pieces = pdu.split(marker)
    parts: list[bytes] = []
    for k, piece in enumerate(pieces):
        if k:
            parts.append(b"")  # slot
        parts.append(piece)
    probe = b"%0*d" % (width, 10 ** width // 7)
    if _fill(parts, probe) != encode_request(MSGID_BASE, make(probe.decode())):
        raise AssertionError("request template does not round-trip")
    return parts


def _fill(parts: list[bytes], digits: bytes) -> bytes:
    """Put ``digits`` in every slot of a template (the odd positions)."""
    return b"".join([digits if (k & 1) else p for k, p in enumerate(parts)])


@dataclass(frozen=True)
class Spec:
    """What one client process does."""
    workload: str
    host: str
    port: int
    conns: int
    window: int
    people: int  # entries user000000.. exist
    width: int  # uid digits
    bind_dn: str
    bind_password: str
    seed: int
    tag: str  # unique per run: keeps added DNs unique
    worker: int
    mix_search_pct: int = 90


def _search_template(width: int) -> list[bytes]:
    return _template(lambda d: SearchRequest(
        D.SUFFIX, SCOPE_SUB, 0, 0, 0, False, Equality("uid", f"user{d}".encode()), (),
    ), width)


def _modify_template(width: int) -> list[bytes]:
    return _template(lambda d: ModifyRequest(
        f"uid=user{d},{D.PEOPLE}",
        (Change(MOD_REPLACE, "description", (f"modified by bench {d}".encode(),)),),
    ), width)


def _bind_template(width: int) -> list[bytes]:
    return _template(lambda d: BindRequest(3, f"uid=user{d},{D.PEOPLE}", D.PASSWORD), width)


ADD_DIGITS = 9


def add_request(uid: str, d: str) -> AddRequest:
    """The entry the add workload creates (``d``: its unique digits)."""
    pw = D.ssha(D.PASSWORD, b"addsalt1")
    return AddRequest(f"uid={uid},{D.PEOPLE}", (
        ("objectClass", (b"top", b"person", b"organizationalPerson", b"inetOrgPerson", b"posixAccount")),
        ("uid", (uid.encode(),)),
        ("cn", (f"Added Person {d}".encode(),)),
        ("sn", (b"Person",)),
        ("givenName", (b"Added",)),
        ("mail", (f"{uid}@{D.DOMAIN}".encode(),)),
        ("uidNumber", (f"5{d}".encode(),)),
        ("gidNumber", (b"100000",)),
        ("homeDirectory", (f"/home/{uid}".encode(),)),
        ("loginShell", (b"/bin/bash",)),
        ("description", (b"Added by bench",)),
        ("userPassword", (pw.encode(),)),
    ))


def _add_template(spec: Spec, conn: int) -> list[bytes]:
    prefix = f"add{spec.tag}w{spec.worker:02d}c{conn:03d}n"
    return _template(lambda d: add_request(prefix + d, d), ADD_DIGITS)


def build_pool(spec: Spec) -> list[tuple[bytes, bytes]]:
    """Pre-encoded (head, tail) requests for the random-target workloads."""
    rng = random.Random(spec.seed * 1000 + spec.worker)
    n, w = spec.people, spec.width
    templates = {
        "search": _search_template(w), "modify": _modify_template(w), "bind": _bind_template(w),
    }
    pool = []
    for _ in range(POOL):
        if spec.workload == "mix":
            kind = "search" if rng.randrange(100) < spec.mix_search_pct else "modify"
        else:
            kind = spec.workload
        digits = b"%0*d" % (w, rng.randrange(n))
        pool.append(_split_msgid(_fill(templates[kind], digits)))
    return pool


# ================================================================ one client process


class _Conn:
    __slots__ = ("sock", "pending", "inflight", "next_id", "entries", "add_parts", "add_n", "out")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pending = b""
        self.inflight: dict[int, int] = {}  # msgid -> send time (ns)
        self.next_id = MSGID_BASE + 1
        self.entries: dict[int, int] = {}  # search msgid -> entries received
        self.add_parts: list[bytes] | None = None
        self.add_n = 0
        self.out: list[bytes] = []


def _blocking_call(sock: socket.socket, pdu: bytes) -> tuple[int, Any]:
    """Send one request and read its single response (setup only)."""
    sock.sendall(pdu)
    buf = b""
    while True:
        n = peek_frame(buf, 0, MAX_PDU)
        if n is not None:
            msgid, resp, _ = decode_response(buf[:n])
            return msgid, resp
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection during setup")
        buf += chunk


def _connect(spec: Spec) -> socket.socket:
    s = socket.create_connection((spec.host, spec.port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if spec.workload != "bind":
        _, resp = _blocking_call(s, encode_request(1, BindRequest(3, spec.bind_dn, spec.bind_password.encode())))
        if int(resp.code) != 0:
            raise RuntimeError(f"bind as {spec.bind_dn} failed: {resp.code!r} {resp.message}")
    s.setblocking(False)
    return s


@dataclass
class WorkerResult:
    ops: Counter = field(default_factory=Counter)  # kind -> successful ops in the window
    errors: Counter = field(default_factory=Counter)  # "kind:code" -> count in the window
    samples: dict = field(default_factory=dict)  # "kind:code" -> diagnostic message
    lat: dict = field(default_factory=dict)  # kind -> array('q') of ns, successful ops in window
    total_sent: int = 0
    total_done: int = 0
    closed: int = 0  # connections the server closed
    drained: bool = True


def _code_name(code: int) -> str:
    try:
        return ResultCode(code).name
    except ValueError:
        return "unknown"


def _record_error(res: WorkerResult, key: str, frame: bytes | None) -> None:
    res.errors[key] += 1
    if key not in res.samples:
        msg = ""
        if frame is not None:
            try:
                msg = getattr(decode_response(frame)[1], "message", "") or ""
            except Exception as exc:  # a malformed response is itself worth reporting
                msg = f"(undecodable response: {exc})"
        res.samples[key] = msg[:200]


def run_worker(spec: Spec, t_start: int, t_end: int, conns: list[socket.socket],
               pool: list[tuple[bytes, bytes]]) -> WorkerResult:
    """Drive ``conns`` from now until ``t_end`` (perf_counter_ns); count what completes
    after ``t_start``."""
    res = WorkerResult()
    lat: dict[int, array] = {t: array("q") for t in (T_BIND, T_DONE, T_MOD, T_ADD)}
    errors = res.errors
    pool_mask = len(pool) - 1 if pool else 0
    assert not pool or len(pool) & pool_mask == 0
    is_add = spec.workload == "add"
    window = 1 if spec.workload == "bind" else spec.window
    want_entries = 1
    pc = time.perf_counter_ns
    sel = selectors.DefaultSelector()
    cs = []
    rng = random.Random(spec.seed * 7919 + spec.worker)
    for k, s in enumerate(conns):
        c = _Conn(s)
        if is_add:
            c.add_parts = _add_template(spec, k)
        cs.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    pidx = rng.randrange(len(pool)) if pool else 0

    def fill(c: _Conn, count: int, now: int) -> None:
        nonlocal pidx
        out = c.out
        inflight = c.inflight
        for _ in range(count):
            mid = c.next_id
            c.next_id = mid + 1
            if is_add:
                c.add_n += 1
                head, tail = _split_msgid(_fill(c.add_parts, b"%09d" % c.add_n))  # ADD_DIGITS
            else:
                head, tail = pool[pidx]
                pidx = (pidx + 1) & pool_mask
            out.append(head)
            out.append(mid.to_bytes(4, "big"))
            out.append(tail)
            inflight[mid] = now

    def flush(c: _Conn) -> None:
        if c.out:
            data = b"".join(c.out)
            c.out.clear()
            try:
                sent = c.sock.send(data)
            except BlockingIOError:
                sent = 0
            if sent < len(data):  # rare: socket buffer full; finish with a blocking send
                c.sock.setblocking(True)
                try:
                    c.sock.sendall(data[sent:])
                finally:
                    c.sock.setblocking(False)

    now = pc()
    for c in cs:
        fill(c, window, now)
        flush(c)
        res.total_sent += window

    sending = True
    drain_deadline = t_end + 10_000_000_000
    live = len(cs)
    while live:
        now = pc()
        if sending and now >= t_end:
            sending = False
        if not sending:
            if now >= drain_deadline or not any(c.inflight for c in cs):
                res.drained = not any(c.inflight for c in cs)
                break
            timeout = min((drain_deadline - now) / 1e9, 0.5)
        else:
            timeout = (t_end - now) / 1e9
        for key, _ in sel.select(timeout):
            c = key.data
            try:
                chunk = c.sock.recv(1 << 18)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            now = pc()
            in_window = t_start <= now < t_end
            if not chunk:
                sel.unregister(c.sock)
                c.sock.close()
                live -= 1
                res.closed += 1
                if sending:
                    errors["connections closed by the server during the run"] += 1
                if c.inflight:
                    errors["requests unanswered when the server closed the connection"] += len(c.inflight)
                    c.inflight.clear()
                continue
            buf = c.pending + chunk if c.pending else chunk
            pos, end = 0, len(buf)
            inflight = c.inflight
            done = 0
            while pos < end:
                n = peek_frame(buf, pos, MAX_PDU)
                if n is None:
                    break
                # 30 L [L..] 02 04 id id id id <op tag> ...
                h = pos + (2 if buf[pos + 1] < 0x80 else 2 + (buf[pos + 1] & 0x7F))
                ml = buf[h + 1]
                msgid = int.from_bytes(buf[h + 2:h + 2 + ml], "big")
                o = h + 2 + ml
                tag = buf[o]
                if tag == T_ENTRY:
                    c.entries[msgid] = c.entries.get(msgid, 0) + 1
                    pos += n
                    continue
                if tag == T_REF:
                    pos += n
                    continue
                b = o + 2 if buf[o + 1] < 0x80 else o + 2 + (buf[o + 1] & 0x7F)
                code = buf[b + 2] if buf[b] == 0x0A and buf[b + 1] == 1 else -1
                t0 = inflight.pop(msgid, None)
                if t0 is None:
                    if msgid == 0:  # Notice of Disconnection (or other unsolicited)
                        _record_error(res, "unsolicited notification", bytes(buf[pos:pos + n]))
                    else:
                        _record_error(res, f"response for unknown msgid {msgid}", None)
                    pos += n
                    continue
                done += 1
                if in_window:
                    kind = KIND_OF_TAG.get(tag, "tag%02x" % tag)
                    ok = code == 0
                    if tag == T_DONE:
                        got = c.entries.pop(msgid, 0)
                        if ok and got != want_entries:
                            ok = False
                            _record_error(res, f"search: {got} entries (want {want_entries})", None)
                    if ok:
                        lat[tag].append(now - t0)
                        res.ops[kind] += 1
                    elif code != 0:
                        _record_error(res, f"{kind}: result {code} ({_code_name(code)})",
                                      bytes(buf[pos:pos + n]))
                elif tag == T_DONE:
                    c.entries.pop(msgid, None)
                pos += n
            c.pending = buf[pos:] if pos < end else b""
            res.total_done += done
            if done and sending:
                fill(c, done, now)
                flush(c)
                res.total_sent += done
    for c in cs:
        try:
            if c.sock.fileno() >= 0:
                c.sock.setblocking(True)
                c.sock.sendall(encode_request(c.next_id, UnbindRequest()))
                c.sock.close()
        except OSError:
            pass
    sel.close()
    res.lat = {KIND_OF_TAG[t]: a for t, a in lat.items() if len(a)}
    return res


def _worker_main(spec: Spec, pipe) -> None:
    try:
        conns = [_connect(spec) for _ in range(spec.conns)]
        pool = [] if spec.workload == "add" else build_pool(spec)
        pipe.send(("ready", os.getpid()))
        msg = pipe.recv()
        if msg[0] != "go":
            return
        _, t_start, t_end = msg
        res = run_worker(spec, t_start, t_end, conns, pool)
        pipe.send(("done", res))
    except BaseException:
        pipe.send(("error", traceback.format_exc()))
    finally:
        pipe.close()


# ================================================================ parent: orchestrate a run


@dataclass
class LoadResult:
    workload: str
    conns: int
    window: int
    procs: int
    seconds: float
    ops: int
    ops_by_kind: dict
    errors: Counter
    samples: dict
    lat_ns: dict  # kind -> sorted array (all kinds merged under "all")
    server_cpu: float | None
    client_cpu: float
    sent: int
    drained: bool
    other_cpu: float  # CPU seconds used by everything else on the machine during the run
    server_exited: int = 0  # server processes that exited during the run (their CPU is lost)
    server_started: int = 0  # server processes that appeared during the run

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def ops_per_cpu(self) -> float | None:
        return self.ops / self.server_cpu if self.server_cpu else None

    def pct_ms(self, q: float, kind: str = "all") -> float | None:
        a = self.lat_ns.get(kind)
        if not a:
            return None
        return a[min(len(a) - 1, int(q * len(a)))] / 1e6

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def _recv(p, a):
    try:
        return a.recv()
    except EOFError:
        p.join(5)
        raise RuntimeError(f"client process {p.pid} died (exit code {p.exitcode})") from None


def _sleep_until(t_ns: int) -> None:
    while True:
        d = t_ns - time.perf_counter_ns()
        if d <= 0:
            return
        time.sleep(min(d / 1e9, 0.05))


def run_load(*, host: str, port: int, workload: str, conns: int, procs: int, window: int,
             duration: float, warmup: float, people: int, width: int, bind_dn: str,
             bind_password: str, server_pid: int | None, seed: int = 1, tag: str | None = None,
             mix_search_pct: int = 90) -> LoadResult:
    """Run one measured load and return its figures. ``server_pid``: CPU of that process
    and its descendants is measured over the timed interval."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}")
    procs = max(1, min(procs, conns))
    tag = tag or "%x" % (int(time.time() * 1000) & 0xFFFFFFF)
    window = 1 if workload == "bind" else window
    ctx = mp.get_context("spawn")
    workers = []
    per = [conns // procs + (1 if i < conns % procs else 0) for i in range(procs)]
    for i, nc in enumerate(per):
        spec = Spec(workload, host, port, nc, window, people, width, bind_dn, bind_password,
                    seed, tag, i, mix_search_pct)
        a, b = ctx.Pipe()
        p = ctx.Process(target=_worker_main, args=(spec, b), daemon=True)
        p.start()
        b.close()
        workers.append((p, a))
    try:
        pids = []
        for p, a in workers:
            if not a.poll(120):
                raise TimeoutError("client process did not get ready")
            msg = _recv(p, a)
            if msg[0] == "error":
                raise RuntimeError("client process failed during setup:\n" + msg[1])
            pids.append(msg[1])
        server_pids = tree_pids(server_pid) if server_pid else []
        t_go = time.perf_counter_ns() + 20_000_000
        t_start = t_go + int(warmup * 1e9)
        t_end = t_start + int(duration * 1e9)
        for _, a in workers:
            a.send(("go", t_start, t_end))
        _sleep_until(t_start)
        m0 = machine_busy_seconds()
        s0 = cpu_snapshot(server_pids)
        c0 = cpu_seconds(pids)
        _sleep_until(t_end)
        s1 = cpu_snapshot(sorted(set(server_pids) | set(tree_pids(server_pid)))) if server_pid else {}
        c1 = cpu_seconds(pids)
        m1 = machine_busy_seconds()
        server_cpu, gone, new = cpu_delta(s0, s1)
        results: list[WorkerResult] = []
        for p, a in workers:
            if not a.poll(duration + 60):
                raise TimeoutError("client process did not report")
            msg = _recv(p, a)
            if msg[0] == "error":
                raise RuntimeError("client process failed:\n" + msg[1])
            results.append(msg[1])
    finally:
        for p, a in workers:
            a.close()
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join()
    ops_by_kind: Counter = Counter()
    errors: Counter = Counter()
    samples: dict = {}
    lat: dict[str, list[int]] = {}
    for r in results:
        ops_by_kind.update(r.ops)
        errors.update(r.errors)
        for k, v in r.samples.items():
            samples.setdefault(k, v)
        for k, a in r.lat.items():
            lat.setdefault(k, []).extend(a)
    merged = [x for a in lat.values() for x in a]
    lat_sorted = {k: sorted(v) for k, v in lat.items()}
    lat_sorted["all"] = sorted(merged)
    return LoadResult(
        workload, conns, window, procs, duration, sum(ops_by_kind.values()), dict(ops_by_kind),
        errors, samples, lat_sorted,
        server_cpu if server_pid else None, c1 - c0,
        sum(r.total_sent for r in results), all(r.drained for r in results),
        max(0.0, (m1 - m0) - (c1 - c0) - (server_cpu if server_pid else 0.0)),
        gone, new,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Pipelined LDAP load generator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workload", choices=WORKLOADS, default="search")
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--procs", type=int, default=1, help="client processes")
    p.add_argument("--window", type=int, default=8, help="outstanding requests per connection")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--entries", type=int, default=100_000, help="people in the data set")
    p.add_argument("--server-pid", type=int, help="measure this process tree's CPU")
    p.add_argument("--bind-dn", default=D.ADMIN_DN)
    p.add_argument("--bind-password", default=D.ADMIN_PASSWORD)
    a = p.parse_args(argv)
    r = run_load(host=a.host, port=a.port, workload=a.workload, conns=a.conns, procs=a.procs,
                 window=a.window, duration=a.duration, warmup=a.warmup, people=a.entries,
                 width=D.uid_width(a.entries), bind_dn=a.bind_dn, bind_password=a.bind_password,
                 server_pid=a.server_pid)
    cpu = f"{r.ops_per_cpu:,.0f} ops/server-CPU-s" if r.ops_per_cpu else "server CPU n/a"
    print(f"{r.workload} conns={r.conns} W={r.window} procs={r.procs}: {r.ops_per_s:,.0f} ops/s "
          f"p50={r.pct_ms(0.5)} ms p99={r.pct_ms(0.99)} ms, {cpu}, "
          f"client CPU {r.client_cpu / r.seconds:.0%} of a core, errors={dict(r.errors)}")
    for k, v in r.samples.items():
        print(f"  {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
