"""`lightwave ldif import/export --server URL`: the same through a running server (ldap3)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from vmdir.model import dn as dnmod
from vmdir.model import ldif
from vmdir.proto.results import LDAPError

T = TypeVar("T")


def connect(args: argparse.Namespace) -> Any:
    """The admin commands' client (``lightwave.admin._client.Client``), bound as their contract
    says: ldap:// or ldaps:// with --user and a password, or ldapi:// with SASL EXTERNAL (root
    or the server's user, no password)."""
    from lightwave.admin._client import Client

    return Client.open(args)


def import_online(args: argparse.Namespace) -> int:
    conn = connect(args).conn
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
    client = connect(args)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    n = 0
    try:
        bases = [args.base] if args.base else [
            v.decode() for _, attrs in client.search("", "(objectClass=*)", ["namingContexts"], scope="BASE")
            for v in attrs.get("namingContexts", [])]
        for base in bases:
            found = client.entries(base, "(objectClass=*)", ["*", "+"], scope="SUBTREE", action="export")
            for dn, attrs in parents_first(found, base):
                out.write(ldif.format_entry(dn, sorted(attrs.items(), key=lambda a: a[0].lower() != "objectclass")))
                n += 1
    finally:
        client.conn.unbind()
        if args.output:
            out.close()
    print(f"exported {n} entries", file=sys.stderr)
    return 0


def parents_first(entries: Iterable[tuple[str, T]], base: str) -> Iterator[tuple[str, T]]:
    """``entries`` (DN, anything) of the subtree at ``base``, each after its parent, so that an
    import can add them in turn. A server returns a subtree in its own order (slapd's: by entry
    id), which can put an entry moved under a newer parent before that parent. Entries
    wait only while their parent has not come; any whose parent never comes (one the
    exporting account may not read) follow at the end."""
    seen: set[DNKey] = set()
    waiting: dict[DNKey, list[tuple[str, T]]] = {}
    root = _key(base)
    for dn, item in entries:
        key = _key(dn)
        parent = key[1:]
        if key != root and parent not in seen:
            waiting.setdefault(parent, []).append((dn, item))
            continue
        ready = [(key, dn, item)]
        while ready:
            k, d, it = ready.pop()
            seen.add(k)
            yield d, it
            for cd, citem in reversed(waiting.pop(k, [])):
                ready.append((_key(cd), cd, citem))
    for rest in waiting.values():
        yield from rest


DNKey = tuple[str, ...]


def _key(dn: str) -> DNKey:
    """A DN as a key: its RDNs normalised as the directory does (types lower-cased, values
    caseIgnore, multi-valued RDNs sorted), leaf first; one that does not parse, as text."""
    try:
        return tuple(dnmod.normalize_rdn(rdn) for rdn in dnmod.parse_dn(dn))
    except LDAPError:
        return (dn.lower(),)
