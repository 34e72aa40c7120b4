"""Big groups: changes to a group of many thousand members, Lightwave vs slapd.

    python -m bench.group_bench                 # a group of 5,000 members (of 10,000 people)
    python -m bench.group_bench --members 20000 --singles 100

Each server alone (durable commits unless ``--nosync``), loaded with ``2 x --members``
people, one kept-open connection bound as the administrator. On each, in turn:

- the group is added with ``--members`` members (one add);
- ``--singles`` modifies each add one new member (p50 and p90 of one);
- one modify adds a quarter of the group's size in new members, one deletes as many;
- one modify replaces the members with as many values, half of them new;
- ``--singles`` base searches read the whole group (p50).

A directory stores a group as one record: every change rewrites it, so a single member
added costs time in proportion to the group's size on both servers. What is compared is
the constant, and that nothing grows faster than the group (a change of many values done
value by value against a list would). A benchmark never fails a build: exit status 0.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a file: python bench/group_bench.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import data as D  # noqa: E402
from bench.repl_bench import Client, pct_ms  # noqa: E402
from bench.servers import add_alone_options, alone_servers, remove  # noqa: E402
from vmdir.proto.messages import (  # noqa: E402
    MOD_ADD, MOD_DELETE, MOD_REPLACE, SCOPE_BASE, AddRequest, Change, ModifyRequest, Present,
)

GROUP = f"cn=big,{D.SUFFIX}"


def run_server(srv, a: argparse.Namespace, work: str) -> dict[str, float]:
    """The figures of one server (ms), or what went wrong under ``problem``."""
    people = 2 * a.members
    srv.prepare()
    ldif = os.path.join(work, f"{srv.name}.ldif")
    D.write_ldif(ldif, people, include_base=srv.needs_base)
    srv.import_ldif(ldif)
    srv.start()
    c = Client(srv.port)
    w = D.uid_width(people)
    dns = [D.person_dn(i, w).encode() for i in range(people)]
    n, q = a.members, a.members // 4
    out: dict[str, float] = {}

    def call(label: str, req) -> int:
        """Nanoseconds ``req`` took; RuntimeError unless it succeeded."""
        t0 = time.perf_counter_ns()
        done = c.call(req)[-1]
        took = time.perf_counter_ns() - t0
        if done.code != 0:
            raise RuntimeError(f"{label}: result {int(done.code)} {done.message}")
        return took

    def timed(label: str, req) -> None:
        out[label] = call(label, req) / 1e6

    try:
        timed("add the group", AddRequest(GROUP, (("objectClass", (b"groupOfNames",)), ("cn", (b"big",)),
                                                  ("member", tuple(dns[:n])))))
        singles = [call("add one member", ModifyRequest(GROUP, (Change(MOD_ADD, "member", (dns[n + i],)),)))
                   for i in range(a.singles)]
        out["add one member p50"] = pct_ms(singles, 0.5) or 0.0
        out["add one member p90"] = pct_ms(singles, 0.9) or 0.0
        start = n + a.singles
        timed(f"add {q:,} members", ModifyRequest(GROUP, (Change(MOD_ADD, "member", tuple(dns[start:start + q])),)))
        timed(f"delete {q:,} members", ModifyRequest(GROUP, (Change(MOD_DELETE, "member", tuple(dns[:q])),)))
        half = n // 2
        timed(f"replace with {n:,} (half new)",
              ModifyRequest(GROUP, (Change(MOD_REPLACE, "member", tuple(dns[q:q + half] + dns[people - half:])),)))
        reads = []
        for _ in range(a.singles):
            t0 = time.perf_counter_ns()
            code, entries = c.search(GROUP, SCOPE_BASE, Present("objectClass"), ("member",))
            reads.append(time.perf_counter_ns() - t0)
            if code != 0 or len(entries) != 1:
                raise RuntimeError(f"read the group: result {code}, {len(entries)} entries")
        out["read the group p50"] = pct_ms(reads, 0.5) or 0.0
    finally:
        c.close()
        srv.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.group_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--members", type=int, default=5000, help="members of the group (default 5000)")
    p.add_argument("--singles", type=int, default=200, help="single-member adds and group reads (default 200)")
    add_alone_options(p)
    a = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="lwgroup-")
    servers = alone_servers(work, a)
    figures: dict[str, dict[str, float]] = {}
    try:
        for srv in servers:
            try:
                figures[srv.name] = run_server(srv, a, work)
            except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not fail the build
                print(f"{srv.name}: problem: {type(exc).__name__}: {exc}")
    finally:
        remove(work)
    commits = "no fsync (--nosync)" if a.nosync else "durable commits"
    print(f"== A group of {a.members:,} members among {2 * a.members:,} people, each server alone ({commits}); ms")
    names = [s.name for s in servers if s.name in figures]
    rows = list(dict.fromkeys(k for f in figures.values() for k in f))
    print(f"{'':32s}" + "".join(f"{n:>12s}" for n in names) + ("   lightwave / slapd" if len(names) == 2 else ""))
    for row in rows:
        vals = [figures[n].get(row) for n in names]
        line = f"{row:32s}" + "".join(f"{v:12.2f}" if v is not None else f"{'-':>12s}" for v in vals)
        if len(names) == 2 and None not in vals and vals[1]:
            line += f"   {vals[0] / vals[1]:10.2f}x"
        print(line)
    print("   below 1.00x is better for Lightwave; absolute figures depend on the machine, ratios less so")
    return 0


if __name__ == "__main__":
    sys.exit(main())
