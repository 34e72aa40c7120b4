"""`lightwave ldif import/export --server URL`: the same through a running server (ldap3)."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from vmdir.model import ldif


def connect(args: argparse.Namespace) -> Any:
    """The bound ldap3 connection of the admin commands' contract: ldap:// or ldaps:// with
    --user and a password, or ldapi:// with SASL EXTERNAL (root or the server's user, no
    password)."""
    from lightwave.admin._client import Client

    return Client.open(args).conn


def import_online(args: argparse.Namespace) -> int:
    conn = connect(args)
    added = failed = 0
    fh = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
    try:
        for rec in ldif.parse(fh):
            attrs = {t: v for t, v in rec.grouped()}
            if conn.add(rec.dn, attributes=attrs):
                added += 1
            else:
                failed += 1
                r = conn.result
                print(f"lightwave: line {rec.line}: dn: {rec.dn}: {r.get('description')} ({r.get('result')})"
                      f"{': ' + r['message'] if r.get('message') else ''}", file=sys.stderr)
                if not args.keep_going:
                    break
    finally:
        if fh is not sys.stdin:
            fh.close()
        conn.unbind()
    print(f"imported {added} entries; {failed} failed", file=sys.stderr)
    return 0 if failed == 0 else 1


def export_online(args: argparse.Namespace) -> int:
    conn = connect(args)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    n = 0
    try:
        bases = [args.base] if args.base else []
        if not bases:
            conn.search("", "(objectClass=*)", search_scope="BASE", attributes=["namingContexts"])
            bases = [v for e in conn.response if e.get("type") == "searchResEntry"
                     for v in e["raw_attributes"].get("namingContexts", [])]
            bases = [b.decode() if isinstance(b, bytes) else b for b in bases]
        for base in bases:
            for e in conn.extend.standard.paged_search(base, "(objectClass=*)", attributes=["*", "+"],
                                                       paged_size=500, generator=True):
                if e.get("type") != "searchResEntry":
                    continue
                out.write(ldif.format_entry(e["dn"], sorted(e["raw_attributes"].items(),
                                                            key=lambda a: a[0].lower() != "objectclass")))
                n += 1
    finally:
        conn.unbind()
        if args.output:
            out.close()
    print(f"exported {n} entries", file=sys.stderr)
    return 0
