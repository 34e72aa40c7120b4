"""Lightwave vs OpenLDAP slapd, side by side: same data, same indexes, same load generator.

    python -m bench.ldap_bench [--entries 100000] [--duration 5] [--only search,bind]
                               [--conns 1,8] [--window 8] [--skip-slapd | --skip-ours]
                               [--nosync] [--million] [--keep]

Prints one table per workload (indexed equality search, simple bind, modify, add, a
90/10 search/modify mix) at each connection count, then the LDIF import comparison
(``lightwave ldif import`` vs ``slapadd``), on-disk size and resident memory. See
bench/README.md for what every column means. A benchmark never fails a build: problems
are printed and the exit status is 0.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

if __package__ in (None, ""):  # run as a file: python bench/ldap_bench.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import data as D
from bench.loadgen import WORKLOADS, LoadResult, run_load
from bench.procinfo import Memory, du, machine_summary, memory, tree_pids
from bench.servers import LightwaveServer, SlapdServer, remove
from bench.slapd import lightwave_indexes

DESCRIPTIONS = {
    "search": "indexed equality search (uid=<random user>, subtree of dc=lightwave,dc=local), "
              "returns 1 entry with all user attributes",
    "bind": "simple bind as a random user ({SSHA} password); window 1 (RFC 4511 forbids pipelining binds)",
    "modify": "replace 'description' of a random user",
    "add": "add a new inetOrgPerson+posixAccount entry under ou=people (unique uid)",
    "mix": "90% indexed search / 10% modify, interleaved on every connection",
}


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:,.0f} MB"


@dataclass
class ServerReport:
    name: str
    description: str = ""
    import_tool: str = ""
    import_records: int = 0
    import_seconds: float | None = None
    disk_after_import: int | None = None
    disk_after_bench: int | None = None
    mem_after_start: Memory | None = None
    mem_after_bench: Memory | None = None
    down: str | None = None  # why the server stopped answering, once it has
    runs: dict = field(default_factory=dict)  # (workload, conns) -> LoadResult
    failures: list = field(default_factory=list)  # (stage, message)


# ================================================================ running the servers


def speed_probe() -> float:
    """A fixed pure-Python loop, in millions of iterations per second (best of 3). Taken
    before every run: if the machine's speed drifts (shared or throttled CPUs), runs made
    at different moments are not comparable, and the output says so."""
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        x = 0
        for i in range(300_000):
            x += i
        best = max(best, 0.3 / (time.perf_counter() - t0))
    return best


def setup_server(srv, ldif_full: str, ldif_nobase: str, records_full: int, rep: ServerReport) -> None:
    """First start and offline import (timed), one server at a time."""
    rep.description = srv.describe()
    rep.import_tool = srv.import_tool()
    ldif = ldif_full if srv.needs_base else ldif_nobase
    rep.import_records = records_full if srv.needs_base else records_full - 1
    log(f"[{srv.name}] preparing")
    srv.prepare()
    log(f"[{srv.name}] importing {rep.import_records:,} records with {rep.import_tool}")
    rep.import_seconds = srv.import_ldif(ldif)
    rep.disk_after_import = du(srv.db_dir)
    log(f"[{srv.name}] imported in {rep.import_seconds:.1f}s; on disk {mb(rep.disk_after_import)}")


def run_workloads(pairs: list, args, people: int, width: int, speeds: list[float]) -> None:
    """Start every server, then run each workload x connection count on each server in
    turn (interleaved, so a slow spell of the machine hits both sides alike)."""
    live = []
    for srv, rep in pairs:
        try:
            log(f"[{srv.name}] starting")
            srv.start()
            live.append((srv, rep))
        except Exception as exc:
            rep.failures.append(("run", f"start: {type(exc).__name__}: {exc}"))
            log(f"[{srv.name}] FAILED to start: {exc}")
    try:
        time.sleep(1.0)
        for srv, rep in live:
            rep.mem_after_start = memory(tree_pids(srv.pid))
        for wl in args.only:
            for conns in args.conns:
                procs = args.client_procs or auto_procs(conns)
                got: dict[int, list[LoadResult]] = {}
                for attempt in range(args.repeat):
                    for k, (srv, rep) in enumerate(live):
                        if rep.down:
                            rep.failures.append((f"{wl} x{conns}", f"not run: {rep.down}"))
                            continue
                        why = srv.alive()
                        if why:
                            rep.down = why
                            rep.failures.append(("down", f"{why} before {wl} x{conns}; last log lines:\n"
                                                 + srv.log_tail()))
                            rep.failures.append((f"{wl} x{conns}", f"not run: {why}"))
                            log(f"[{srv.name}] {why}: skipping its remaining runs")
                            continue
                        speeds.append(speed_probe())
                        try:
                            r = run_load(host="127.0.0.1", port=srv.port, workload=wl, conns=conns,
                                         procs=procs, window=args.window, duration=args.duration,
                                         warmup=args.warmup, people=people, width=width, bind_dn=D.ADMIN_DN,
                                         bind_password=D.ADMIN_PASSWORD, server_pid=srv.pid,
                                         seed=args.seed + attempt)
                        except Exception as exc:
                            rep.failures.append((f"{wl} x{conns}", f"{type(exc).__name__}: {exc}"))
                            log(f"[{srv.name}] {wl} x{conns} FAILED: {exc}")
                            continue
                        got.setdefault(k, []).append(r)
                        p50 = r.pct_ms(0.5)
                        log(f"{'[' + srv.name + ']':<11} {wl:6s} x{conns:<3d} {r.ops_per_s:10,.0f} ops/s  p50 "
                            f"{'-' if p50 is None else round(p50, 3)} ms  errors {r.error_count}")
                for k, rs in got.items():
                    rs.sort(key=lambda x: x.ops_per_s)
                    live[k][1].runs[(wl, conns)] = rs[len(rs) // 2]  # the median run
        for srv, rep in live:
            rep.mem_after_bench = memory(tree_pids(srv.pid))
    finally:
        for srv, rep in live:
            try:
                srv.stop()
            except Exception as exc:
                log(f"[{srv.name}] stop failed: {exc}")
            rep.disk_after_bench = du(srv.db_dir)


# ================================================================ printing


def auto_procs(conns: int) -> int:
    """Client processes for a connection count: 1 for 1 connection, at least 2 otherwise
    (measured on 2 cores: one process driving 8 connections got ~20% less from slapd than
    two, though it was not CPU-bound), one per 8 connections beyond 16."""
    return 1 if conns <= 1 else min(conns, max(2, conns // 8))


def fmt(x, spec: str = ",.0f", none: str = "-") -> str:
    return none if x is None else format(x, spec)


def ratio(a, b) -> str:
    if a is None or b is None or not b:
        return "-"
    return f"{a / b:.2f}x"


def print_workload_tables(reports: list[ServerReport], args) -> None:
    base = next((r for r in reports if r.name == "slapd"), None)
    for wl in args.only:
        if not any((wl, c) in r.runs for r in reports for c in args.conns):
            if not any(f[0].startswith(wl + " ") for r in reports for f in r.failures):
                continue
        window = 1 if wl == "bind" else args.window
        print()
        print(f"== {wl}: {DESCRIPTIONS[wl]}")
        print(f"   window {window} outstanding request(s) per connection")
        hdr = (f"{'conns':>5} {'server':<10} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ops/CPU-s':>10} "
               f"{'srv CPU':>7} {'cli CPU':>7} {'errors':>6}   {'vs slapd: ops/s':>15} {'ops/CPU-s':>9}")
        print(hdr)
        print("-" * len(hdr))
        for conns in args.conns:
            ref = base.runs.get((wl, conns)) if base else None
            for rep in reports:
                r: LoadResult | None = rep.runs.get((wl, conns))
                if r is None:
                    why = next((f[1] for f in rep.failures if f[0] == f"{wl} x{conns}"), None)
                    if why:
                        last = (why.strip().splitlines() or [""])[-1]
                        print(f"{conns:>5} {rep.name:<10} FAILED: {last[:150]}")
                    continue
                is_ref = rep is base
                print(f"{conns:>5} {rep.name:<10} {fmt(r.ops_per_s):>9} {fmt(r.pct_ms(0.5), '.3f'):>8} "
                      f"{fmt(r.pct_ms(0.99), '.3f'):>8} {fmt(r.ops_per_cpu):>10} "
                      f"{fmt(r.server_cpu / r.seconds if r.server_cpu is not None else None, '.2f'):>7} "
                      f"{r.client_cpu / r.seconds:>7.2f} {r.error_count:>6}   "
                      f"{'' if is_ref else ratio(r.ops_per_s, ref.ops_per_s if ref else None):>15} "
                      f"{'' if is_ref else ratio(r.ops_per_cpu, ref.ops_per_cpu if ref else None):>9}")
        # per-kind latency for the mix, error details, client saturation warnings
        noisy = []
        for conns in args.conns:
            for rep in reports:
                r = rep.runs.get((wl, conns))
                if r is None:
                    continue
                if wl == "mix":
                    parts = [f"{k} {r.ops_by_kind.get(k, 0) / r.seconds:,.0f} ops/s, p50 "
                             f"{fmt(r.pct_ms(0.5, k), '.3f')} p99 {fmt(r.pct_ms(0.99, k), '.3f')} ms"
                             for k in ("search", "modify")]
                    print(f"   mix x{conns} {rep.name}: " + "; ".join(parts))
                for key, n in sorted(r.errors.items()):
                    msg = r.samples.get(key, "")
                    print(f"   ! {rep.name} x{conns}: {n:,} x {key}" + (f" ({msg})" if msg else ""))
                if r.server_exited or r.server_started:
                    print(f"   ! {rep.name} x{conns}: {r.server_exited} server process(es) exited and "
                          f"{r.server_started} started during the run (crash/restart?): CPU figures incomplete")
                if not r.drained:
                    print(f"   ! {rep.name} x{conns}: some requests were still unanswered 10 s after the run")
                if r.other_cpu / r.seconds > 0.15:
                    noisy.append((r.other_cpu / r.seconds, f"{rep.name} x{conns}"))
                if r.client_cpu / r.seconds > 0.85 * r.procs:
                    print(f"   ! {rep.name} x{conns}: the load generator used {r.client_cpu / r.seconds:.2f} "
                          f"cores over {r.procs} process(es): it may be the bottleneck (try --client-procs)")
        if noisy:
            lo, hi = min(n for n, _ in noisy), max(n for n, _ in noisy)
            span = f"{lo:.2f}" if lo == hi else f"{lo:.2f} to {hi:.2f}"
            print(f"   ! machine not quiet: other processes used {span} cores during "
                  f"{', '.join(w for _, w in noisy)}; those figures may be low")


def print_import_table(reports: list[ServerReport], people: int) -> None:
    rows = [r for r in reports if r.import_seconds is not None]
    if not rows:
        return
    base = next((r for r in rows if r.name == "slapd"), None)
    print()
    print(f"== LDIF import ({people:,} people + containers and groups), offline, wall time incl. process start")
    hdr = f"{'server':<10} {'tool':<22} {'records':>9} {'seconds':>8} {'entries/s':>10} {'vs slapd':>8}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        rate = r.import_records / r.import_seconds if r.import_seconds else None
        bref = base.import_records / base.import_seconds if base and base.import_seconds else None
        print(f"{r.name:<10} {r.import_tool:<22} {r.import_records:>9,} {r.import_seconds:>8.1f} "
              f"{fmt(rate):>10} {'' if r is base else ratio(rate, bref):>8}")


def print_disk_memory(reports: list[ServerReport]) -> None:
    rows = [r for r in reports if r.disk_after_import is not None]
    if not rows:
        return
    base = next((r for r in rows if r.name == "slapd"), None)
    print()
    print("== On-disk size (allocated blocks, du) of the database directory")
    hdr = f"{'server':<10} {'after import':>13} {'after benchmark':>16} {'vs slapd':>8}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r.name:<10} {mb(r.disk_after_import):>13} {mb(r.disk_after_bench):>16} "
              f"{'' if r is base else ratio(r.disk_after_import, base.disk_after_import if base else None):>8}")
    print()
    print("== Resident memory of the server's processes: VmRSS summed, and PSS summed (shared pages")
    print("   counted once: the honest total for a multi-process server), split into anon (heap) and")
    print("   file (mapped database pages and libraries: page cache the kernel can reclaim)")
    hdr = (f"{'server':<10} {'procs':>5} {'RSS start':>10} {'RSS end':>10} {'PSS end':>10} {'anon':>9} "
           f"{'file':>9} {'PSS vs slapd':>12}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        m0, m1 = r.mem_after_start, r.mem_after_bench
        if m0 is None:
            continue
        if m1 is not None and m1.processes == 0:
            m1 = None
        bref = base.mem_after_bench if base else None
        print(f"{r.name:<10} {m0.processes:>5} {mb(m0.rss):>10} {mb(m1.rss if m1 else None):>10} "
              f"{mb(m1.pss if m1 else None):>10} {mb(m1.pss_anon if m1 else None):>9} "
              f"{mb(m1.pss_file if m1 else None):>9} "
              f"{'' if r is base else ratio(m1.pss if m1 else None, bref.pss if bref else None):>12}")


def print_client_cost(reports: list[ServerReport]) -> None:
    """Per workload, the load generator's CPU per completed op at the fastest run (batching
    is best there), and the rate one client process could drive at 100% of a core."""
    best: dict[str, tuple[float, str, int, LoadResult]] = {}
    for rep in reports:
        for (wl, conns), r in rep.runs.items():
            if r.ops and r.client_cpu > 0 and (wl not in best or r.ops_per_s > best[wl][0]):
                best[wl] = (r.ops_per_s, rep.name, conns, r)
    if not best:
        return
    print()
    print("== Load generator cost, per workload at its fastest run (client CPU / completed ops; at low")
    print("   rates every op costs its own wakeup, so slow workloads overstate the per-op cost)")
    for wl, (rate, name, conns, r) in best.items():
        us = r.client_cpu / (r.ops + r.error_count) * 1e6
        print(f"   {wl:<7} {us:6.1f} us/op at {rate:,.0f} ops/s ({name} x{conns}, client "
              f"{r.client_cpu / r.seconds:.2f} cores over {r.procs} process(es)); "
              f"~{1e6 / us:,.0f} ops/s per client process at 100% of a core")
    print(f"   the client shares this machine's {os.cpu_count()} cores with the server: "
          "ops/CPU-s does not depend on that, ops/s does.")


# ================================================================ --million


def million(args, reports_out: list[str]) -> None:
    n = 1_000_000
    work = tempfile.mkdtemp(prefix="lwbench-1m-", dir=args.workdir_parent)
    try:
        full = os.path.join(work, "people-1m.ldif")
        nobase = os.path.join(work, "people-1m-nobase.ldif")
        log(f"[1M] generating {n:,} entries")
        ds = D.write_ldif(full, n)
        D.write_ldif(nobase, n, include_base=False)
        width = ds.width
        for make in servers_to_run(args, work):
            srv = make()
            try:
                rep = ServerReport(srv.name)
                ldif = full if srv.needs_base else nobase
                records = ds.entries if srv.needs_base else ds.entries - 1
                srv.prepare()
                log(f"[1M {srv.name}] importing")
                secs = srv.import_ldif(ldif)
                disk = du(srv.db_dir)
                srv.start()
                try:
                    time.sleep(1.0)
                    m0 = memory(tree_pids(srv.pid))
                    # touch the data: random indexed searches over all entries
                    r = run_load(host="127.0.0.1", port=srv.port, workload="search", conns=8, procs=auto_procs(8),
                                 window=args.window, duration=args.duration, warmup=args.warmup,
                                 people=n, width=width, bind_dn=D.ADMIN_DN,
                                 bind_password=D.ADMIN_PASSWORD, server_pid=srv.pid, seed=args.seed)
                    m1 = memory(tree_pids(srv.pid))
                finally:
                    srv.stop()
                reports_out.append(
                    f"{srv.name:<10} {records:>9,} {secs:>8.1f} {records / secs:>10,.0f} {mb(disk):>10} "
                    f"{mb(m0.rss):>10} {mb(m1.rss):>10} {mb(m1.pss):>10} {mb(m1.pss_anon):>9} "
                    f"{r.ops_per_s:>9,.0f}")
                del rep
            except Exception as exc:
                reports_out.append(f"{srv.name:<10} FAILED: {type(exc).__name__}: {exc}"[:300])
                log(traceback.format_exc())
            finally:
                try:
                    srv.stop()
                except Exception:
                    pass
    finally:
        if not args.keep:
            remove(work)


# ================================================================ main


def servers_to_run(args, work: str) -> list[Callable[[], Any]]:
    makers: list[Callable[[], Any]] = []
    if not args.skip_slapd:
        makers.append(lambda: SlapdServer(os.path.join(work, "slapd"), nosync=args.nosync,
                                          threads=args.slapd_threads, slapadd_quick=not args.slapadd_safe,
                                          log=log))
    if not args.skip_ours:
        why = LightwaveServer.available()
        if why:
            log(f"lightwave is not runnable, skipping it: {why}")
        else:
            makers.append(lambda: LightwaveServer(os.path.join(work, "lightwave"), nosync=args.nosync,
                                                  workers=args.workers, log_ops=args.log_ops,
                                                  extra_args=tuple(args.ours_arg), log=log))
    return makers


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ldap_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", type=int, default=100_000, help="people in the data set (default 100000)")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds per run (default 5)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each run (default 1)")
    p.add_argument("--only", default=",".join(WORKLOADS), help=f"workloads (default {','.join(WORKLOADS)})")
    p.add_argument("--conns", default="1,8", help="connection counts (default 1,8)")
    p.add_argument("--window", type=int, default=8, help="outstanding requests per connection (default 8)")
    p.add_argument("--client-procs", type=int, default=0,
                   help="load generator processes (default: 1 for 1 connection, else max(2, conns/8))")
    p.add_argument("--skip-slapd", action="store_true", help="do not run OpenLDAP")
    p.add_argument("--skip-ours", action="store_true", help="do not run Lightwave")
    p.add_argument("--nosync", action="store_true",
                   help="both servers without fsync per commit (slapd dbnosync, lightwave --no-sync)")
    p.add_argument("--workers", type=int, default=None, help="lightwave worker processes (default: its own)")
    p.add_argument("--log-ops", action="store_true", help="let lightwave log one line per operation")
    p.add_argument("--ours-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for 'lightwave up' (repeatable)")
    p.add_argument("--slapd-threads", type=int, default=None, help="slapd 'threads' (default: slapd's, 16)")
    p.add_argument("--slapadd-safe", action="store_true", help="time slapadd without -q (much slower)")
    p.add_argument("--million", action="store_true",
                   help="also import 1,000,000 entries into each server and report memory (slow)")
    p.add_argument("--repeat", type=int, default=1,
                   help="run everything N times (interleaved) and report each median run (default 1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", default=None, help="parent of the temporary directory (default $TMPDIR)")
    p.add_argument("--keep", action="store_true", help="keep the temporary data directories")
    a = p.parse_args(argv)
    a.only = [w.strip() for w in a.only.split(",") if w.strip()]
    bad = [w for w in a.only if w not in WORKLOADS]
    if bad:
        p.error(f"unknown workload(s) {bad}; choose from {','.join(WORKLOADS)}")
    a.conns = [int(c) for c in a.conns.split(",") if c.strip()]
    a.workdir_parent = a.workdir
    if a.workdir:
        os.makedirs(a.workdir, exist_ok=True)  # made if it does not exist yet
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_begin = time.monotonic()
    work = tempfile.mkdtemp(prefix="lwbench-", dir=args.workdir_parent)
    reports: list[ServerReport] = []
    try:
        print(f"Lightwave LDAP benchmark  {time.strftime('%Y-%m-%d %H:%M:%S')}  on {machine_summary()}")
        print(f"data: {args.entries:,} people (inetOrgPerson+posixAccount, {{SSHA}} passwords) + "
              f"{D.group_count(args.entries):,} groups of {D.GROUP_SIZE}")
        idx, unknown = lightwave_indexes()
        print("indexes (from conf/lightwave.toml, on both servers): "
              + " ".join(f"{a}:{k}" for a, k in idx)
              + (f"; not in slapd's schema, so not indexed there: {' '.join(unknown)}" if unknown else ""))
        print(f"load: {args.duration:g}s measured after {args.warmup:g}s warm-up per run; window {args.window} "
              f"per connection (bind: 1); connections {','.join(map(str, args.conns))}; "
              f"load generator: {args.client_procs or 'auto'} client process(es) "
              f"({', '.join(f'{c} conns: {args.client_procs or auto_procs(c)}' for c in args.conns)}); "
              f"non-bind workloads bound as {D.ADMIN_DN}")
        if not (args.skip_slapd or args.skip_ours):
            print("order: both servers run side by side; each workload x connections runs on one, then the other")
        if args.repeat > 1:
            print(f"rounds: {args.repeat}; each row is the median round by ops/s")
        print(f"commits: {'NOT synced (--nosync) on either server' if args.nosync else 'durable (fsync) on both servers'}")
        ldif_full = os.path.join(work, "people.ldif")
        ldif_nobase = os.path.join(work, "people-nobase.ldif")
        log(f"generating {args.entries:,} entries in {work}")
        ds = D.write_ldif(ldif_full, args.entries)
        D.write_ldif(ldif_nobase, args.entries, include_base=False)
        makers = servers_to_run(args, work)
        if not makers:
            print("nothing to run")
        pairs = []
        for make in makers:
            try:
                srv = make()
            except Exception as exc:
                log(f"cannot set up a server: {exc}")
                continue
            rep = ServerReport(srv.name)
            reports.append(rep)
            try:
                setup_server(srv, ldif_full, ldif_nobase, ds.entries, rep)
                pairs.append((srv, rep))
            except Exception as exc:
                tail = srv.log_tail() if hasattr(srv, "log_tail") else ""
                rep.failures.append(("setup", f"{type(exc).__name__}: {exc}"
                                     + (f"\nlast log lines:\n{tail}" if tail else "")))
                log(f"[{srv.name}] FAILED:\n{traceback.format_exc()}")
                try:
                    srv.stop()
                except Exception:
                    pass
        speeds: list[float] = []
        if pairs:
            run_workloads(pairs, args, ds.people, ds.width, speeds)
        for rep in reports:
            print(f"{rep.name}: {rep.description}")
        print_workload_tables(reports, args)
        print_import_table(reports, args.entries)
        print_disk_memory(reports)
        print_client_cost(reports)
        if speeds:
            lo, hi = min(speeds), max(speeds)
            print()
            print(f"machine speed probe before each run: {lo:.1f} to {hi:.1f} M loop iterations/s "
                  f"(spread {(hi - lo) / hi:.0%})" + (
                      "\n   ! the machine's speed varied during the benchmark: compare ratios, "
                      "not absolute figures; --repeat 3 or a longer --duration steadies them"
                      if (hi - lo) / hi > 0.3 else ""))
        if args.million:
            lines: list[str] = []
            million(args, lines)
            print()
            print("== 1,000,000 people: import, on-disk size, resident memory (after start / after "
                  f"{args.duration:g}s of random 8-connection searches)")
            hdr = (f"{'server':<10} {'records':>9} {'seconds':>8} {'entries/s':>10} {'on disk':>10} "
                   f"{'RSS start':>10} {'RSS warm':>10} {'PSS warm':>10} {'anon':>9} {'search/s':>9}")
            print(hdr)
            print("-" * len(hdr))
            for line in lines:
                print(line)
        failures = [(r.name, s, m) for r in reports for s, m in r.failures
                    if s in ("setup", "run", "down")]
        if failures:
            print()
            for name, stage, msg in failures:
                print(f"! {name} {stage}: {msg[-3000:]}")
        print()
        print(f"(total {time.monotonic() - t_begin:.0f}s; work directory "
              f"{work if args.keep else 'removed'})")
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
