"""`lightwave ldif import/export --server URL`: the same through a running server (ldap3)."""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from vmdir.model import ldif


def credentials(args: argparse.Namespace, default_user: str) -> tuple[str, str]:
    """(user, password) by the CLI contract: --password-file, $LIGHTWAVE_PASSWORD,
    $LIGHTWAVE_ADMIN_PASSWORD, else a prompt."""
    from lightwave.cli import CLIError

    user = args.user or default_user
    if args.password_file:
        try:
            with open(args.password_file) as f:
                return user, f.read().rstrip("\n")
        except OSError as exc:
            raise CLIError(f"cannot read password file: {exc}") from None
    for var in ("LIGHTWAVE_PASSWORD", "LIGHTWAVE_ADMIN_PASSWORD"):
        if os.environ.get(var):
            return user, os.environ[var]
    if not sys.stdin.isatty():
        raise CLIError("no password: use --password-file, LIGHTWAVE_PASSWORD or a terminal")
    return user, getpass.getpass(f"Password for {user}: ")


def connect(args: argparse.Namespace) -> Any:
    import ssl

    import ldap3

    from lightwave.cli import CLIError
    from vmdir.directory import admin_dn

    user, password = credentials(args, admin_dn("lightwave.local"))
    tls = ldap3.Tls(validate=ssl.CERT_NONE if os.environ.get("LDAPTLS_REQCERT") == "never" else ssl.CERT_REQUIRED)
    server = ldap3.Server(args.server, tls=tls, get_info=ldap3.NONE, connect_timeout=10)
    conn = ldap3.Connection(server, user, password, raise_exceptions=False)
    try:
        if not conn.bind():
            raise CLIError(f"bind as {user} failed: {conn.result.get('description')} "
                           f"({conn.result.get('result')}) {conn.result.get('message', '')}".rstrip())
    except ldap3.core.exceptions.LDAPException as exc:
        raise CLIError(f"cannot reach {args.server}: {exc}") from None
    return conn


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
