"""One write at a time: how long a client waits for a durable modify, Lightwave vs slapd.

    python -m bench.write_latency                     # 10 rounds of 50 writes on each server
    python -m bench.write_latency --rounds 20 --workers 1 --nosync

The acknowledged-write latency is the first part of replication's convergence latency
(bench/repl_bench.py). Here each server runs alone, so the write path can be compared
without a partner: a fresh ``lightwave up`` and a fresh slapd (back-mdb, durable
commits unless ``--nosync``), one kept-open connection each, bound as the administrator,
replacing ``description`` of the administrator's entry. Rounds alternate between the two
servers, so that a slow spell of the machine hits both; the first ``--warmup`` writes of
each round are not counted. A benchmark never fails a build: the exit status is 0.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a file: python bench/write_latency.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import data as D  # noqa: E402
from bench.repl_bench import Client, pct_ms  # noqa: E402
from bench.servers import add_alone_options, alone_servers, remove  # noqa: E402
from vmdir.proto.messages import BindRequest  # noqa: E402

BASE_LDIF = (f"dn: {D.SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: lightwave\no: lightwave\n\n"
             f"dn: cn=Users,{D.SUFFIX}\nobjectClass: organizationalRole\ncn: Users\n\n"
             f"dn: {D.ADMIN_DN}\nobjectClass: person\ncn: Administrator\nsn: Administrator\n\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.write_latency", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=10, help="rounds on each server, alternating (default 10)")
    p.add_argument("--writes", type=int, default=50, help="writes per round (default 50)")
    p.add_argument("--warmup", type=int, default=10, help="writes of each round not counted (default 10)")
    add_alone_options(p)
    a = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="lwwrite-")
    servers = {srv.name: srv for srv in alone_servers(work, a)}
    lat: dict[str, list[int]] = {name: [] for name in servers}  # ns
    try:
        clients = {}
        for name, srv in servers.items():
            srv.prepare()
            if srv.needs_base:
                ldif = os.path.join(work, "base.ldif")
                with open(ldif, "w") as f:
                    f.write(BASE_LDIF)
                srv.import_ldif(ldif)
            srv.start()
            c = Client(srv.port)
            done = c.call(BindRequest(3, D.ADMIN_DN, D.ADMIN_PASSWORD.encode()))[-1]
            if done.code != 0:
                print(f"{name}: bind as {D.ADMIN_DN} failed: {done.code!r} {done.message}")
                return 0
            clients[name] = c
        for r in range(a.rounds):
            for name, c in clients.items():
                for i in range(a.warmup + a.writes):
                    t0 = time.perf_counter_ns()
                    c.modify(D.ADMIN_DN, "description", f"write {r} {i}".encode())
                    if i >= a.warmup:
                        lat[name].append(time.perf_counter_ns() - t0)
    except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not fail the build
        print(f"problem: {type(exc).__name__}: {exc}")
    finally:
        for srv in servers.values():
            srv.stop()
        remove(work)
    commits = "no fsync (--nosync)" if a.nosync else "durable commits"
    print(f"== One modify at a time, each server alone ({commits}); {a.rounds} rounds of {a.writes} "
          f"(+{a.warmup} unmeasured) per server, alternating")
    print(f"{'server':12s} {'writes':>7s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s}   vs slapd: p50   p99")
    ref = lat.get("slapd") or []
    for name, ns in lat.items():
        if not ns:
            print(f"{name:12s} {'-':>7s}")
            continue
        p50, p90, p99 = (pct_ms(ns, q) or 0.0 for q in (0.5, 0.9, 0.99))
        ratio = ""
        if name != "slapd" and ref:
            ratio = f"   {p50 / (pct_ms(ref, 0.5) or 1):9.2f}x {p99 / (pct_ms(ref, 0.99) or 1):5.2f}x"
        print(f"{name:12s} {len(ns):7,d} {p50:8.3f} {p90:8.3f} {p99:8.3f}{ratio}")
    print("   below 1.00x is better for Lightwave; absolute figures depend on the machine, ratios less so")
    return 0


if __name__ == "__main__":
    sys.exit(main())
