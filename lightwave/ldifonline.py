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
            for dn, attrs in parents_first(_subtree(conn, base), base):
                out.write(ldif.format_entry(dn, sorted(attrs.items(), key=lambda a: a[0].lower() != "objectclass")))
                n += 1
    finally:
        conn.unbind()
        if args.output:
            out.close()
    print(f"exported {n} entries", file=sys.stderr)
    return 0


PAGED_OID = "1.2.840.113556.1.4.319"


def _subtree(conn: Any, base: str, page: int = 500) -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    """(DN, raw attributes) of every entry under ``base``, in the order the server sent them,
    a page at a time. (ldap3's own paged_search generator yields each page backwards, which
    put children before their parents.)"""
    cookie: bytes | None = None
    while True:
        conn.search(base, "(objectClass=*)", attributes=["*", "+"], paged_size=page, paged_cookie=cookie)
        for e in conn.response or []:
            if e.get("type") == "searchResEntry":
                yield e["dn"], e["raw_attributes"]
        result = conn.result or {}
        if result.get("result") != 0:  # a part of the export missing must not pass for all of it
            from lightwave.admin._client import describe
            from lightwave.cli import CLIError

            raise CLIError(f"export of {base}: {describe(result, 'search', None)}")
        cookie = result.get("controls", {}).get(PAGED_OID, {}).get("value", {}).get("cookie")
        if not cookie:
            return


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


DNKey = tuple[tuple[tuple[str, str], ...], ...]


def _key(dn: str) -> DNKey:
    """A DN compared as a server would for ordering purposes: RDNs, types and values lower-cased."""
    try:
        rdns = dnmod.parse_dn(dn)
    except LDAPError:  # not a DN: compared as text
        return ((("", dn.lower()),),)
    return tuple(tuple(sorted((t.lower(), v.lower()) for t, v in rdn)) for rdn in rdns)
