"""Many tenants on one node: how fast tenants are created, and whether operations in an
existing tenant slow down once 1,000 others exist (issue 3: "tenant creation is cheap").

    python -m bench.tenants_bench                      # 1,000 tenants of 100 users, 10,000 people
    python -m bench.tenants_bench --tenants 200 --users-per-tenant 10 --people 2000 --duration 3

It loads the people data set into the default tenant, measures search and bind there
(bound as an ordinary user, so every operation goes through the stored access rules, and
as the administrator), creates the tenants through the tenantCreate extended operation
(each a full tenant: naming context, containers, administrator, rules, policy) and adds
``--users-per-tenant`` users to each (pipelined LDAP adds, {SSHA} passwords as a migration
would bring them), then measures the same workloads again and prints the ratios, with the
server's resident memory (RSS and PSS, all processes) before and after. Figures only;
exit status 0.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import ldap3  # noqa: E402

from bench import data as D  # noqa: E402
from bench.loadgen import run_load  # noqa: E402
from bench.procinfo import du, memory, tree_pids  # noqa: E402
from bench.repl_bench import add_requests, run_adds  # noqa: E402
from bench.servers import LightwaveServer, remove  # noqa: E402
from vmdir.directory import OID_TENANT_CREATE, encode_create  # noqa: E402


def mem_line(srv: LightwaveServer) -> str:
    m = memory(tree_pids(srv.pid))
    return (f"{m.processes} processes, RSS {m.rss / 1e6:,.0f} MB, PSS {m.pss / 1e6:,.0f} MB "
            f"(heap {m.pss_anon / 1e6:,.0f} MB, mapped files {m.pss_file / 1e6:,.0f} MB)")


def measure(srv: LightwaveServer, args: argparse.Namespace, width: int) -> dict[str, float]:
    out = {}
    user_dn = D.person_dn(1, width)
    for wl, who, pw in (("search", D.ADMIN_DN, D.ADMIN_PASSWORD), ("search", user_dn, D.PASSWORD.decode()),
                        ("bind", D.ADMIN_DN, D.ADMIN_PASSWORD)):
        label = f"{wl} as {'admin' if who == D.ADMIN_DN else 'user'}"
        r = run_load(host="127.0.0.1", port=srv.port, workload=wl, conns=args.conns, procs=1, window=8,
                     duration=args.duration, warmup=1, people=args.people, width=width, bind_dn=who,
                     bind_password=pw, server_pid=srv.pid)
        errors = sum(r.errors.values())
        print(f"  {label:16s} {r.ops_per_s:10,.0f} ops/s {r.ops_per_cpu or 0:10,.0f} ops/CPU-s"
              f"{'  errors: ' + str(dict(r.errors)) if errors else ''}", flush=True)
        out[label] = r.ops_per_cpu or 0.0
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tenants", type=int, default=1000)
    p.add_argument("--people", type=int, default=10_000)
    p.add_argument("--users-per-tenant", type=int, default=100)
    p.add_argument("--duration", type=float, default=5)
    p.add_argument("--conns", type=int, default=4)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="lw-tenants-")
    srv = LightwaveServer(work, nosync=False)
    try:
        ds = D.write_ldif(os.path.join(work, "people.ldif"), args.people)
        srv.import_ldif(ds.path)
        srv.start()
        print(f"{args.people:,} people in lightwave.local; {srv.describe()}")
        print("before:")
        before = measure(srv, args, ds.width)
        print(f"  memory: {mem_line(srv)}")
        disk0 = du(srv.db_dir)
        c = ldap3.Connection(ldap3.Server(f"ldap://127.0.0.1:{srv.port}", get_info=ldap3.NONE),
                             D.ADMIN_DN, D.ADMIN_PASSWORD, auto_bind=True)
        lat = []
        t0 = time.perf_counter()
        for i in range(args.tenants):
            t = time.perf_counter()
            ok = c.extended(OID_TENANT_CREATE, encode_create(f"t{i:05d}.example", b"Tenant-admin-pw1"))
            lat.append(time.perf_counter() - t)
            if not ok:
                print(f"tenant {i}: {c.result}", file=sys.stderr)
                return 0
            if (i + 1) % 100 == 0:
                print(f"  {i + 1} tenants", flush=True)
        dt = time.perf_counter() - t0
        lat.sort()
        print(f"created {args.tenants:,} tenants in {dt:.1f} s: {args.tenants / dt:.1f} tenants/s, "
              f"p50 {statistics.median(lat) * 1000:.1f} ms, p99 {lat[int(len(lat) * 0.99) - 1] * 1000:.1f} ms")
        if args.users_per_tenant:
            # the add workload's entries, in each tenant's cn=Users
            reqs = [r for i in range(args.tenants)
                    for r in add_requests(f"cn=Users,dc=t{i:05d},dc=example", args.users_per_tenant, f"t{i:05d}")]
            run = run_adds(srv.port, reqs, conns=4, window=8)
            errors = sum(run.errors.values())
            print(f"added {run.ok:,} users ({args.users_per_tenant} per tenant) in {run.seconds:.1f} s: "
                  f"{run.ok / run.seconds if run.seconds else 0:,.0f} adds/s"
                  f"{'; errors: ' + str(dict(run.errors)) if errors else ''}", flush=True)
        print(f"disk +{(du(srv.db_dir) - disk0) / args.tenants / 1024:.1f} KiB per tenant, its users included "
              "(LMDB grows in steps: meaningful for many tenants)")
        print(f"after {args.tenants:,} tenants:")
        after = measure(srv, args, ds.width)
        print(f"  memory: {mem_line(srv)}")
        print("ratio after/before (ops per server CPU-second):")
        for k in before:
            print(f"  {k:16s} {after[k] / before[k] if before[k] else 0:.2f}x")
    finally:
        srv.stop()
        if not args.keep:
            remove(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
