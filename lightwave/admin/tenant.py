"""`lightwave tenant {create,list,show,delete}`: tenants of a running server, over LDAP.

Creating and deleting a tenant are extended operations (the server builds or removes the
whole naming context in one go); listing reads the registry ``cn=Tenants,cn=System``.
"""
from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from lightwave.admin._client import (
    Client, Target, confirm, emit_json, epilog, first, json_attrs, print_entry, print_table,
    prompt_new_password, read_secret, report, tenant_name, usage, when,
)
from lightwave.cli import CLIError
from vmdir.directory import OID_TENANT_CREATE, OID_TENANT_DELETE, domain_dn, encode_create, encode_delete

OID_CREATE = OID_TENANT_CREATE
OID_DELETE = OID_TENANT_DELETE
REGISTRY = "cn=Tenants,cn=System"
POLICY_ATTRS = ["pwdMinLength", "pwdInHistory", "pwdMaxAge", "pwdLockout", "pwdMaxFailure",
                "pwdLockoutDuration", "lightwavePwdMinClasses"]
CONTAINERS = (("users", "Users"), ("groups", "Groups"), ("computers", "Computers"),
              ("serviceAccounts", "ServiceAccounts"))


def create_request(name: str, admin_password: str) -> bytes:
    """``SEQUENCE { name OCTET STRING, adminPassword OCTET STRING }``."""
    return encode_create(name, admin_password.encode())


def delete_request(name: str, force: bool) -> bytes:
    """``SEQUENCE { name OCTET STRING, force BOOLEAN DEFAULT FALSE }``."""
    return encode_delete(name, force)


def _unsupported(c: Client, what: str, oid: str) -> None:
    r = c.result
    if r.get("result") == 2 and "not supported" in (r.get("message") or ""):
        raise CLIError(f"the server at {c.url} does not support {what} (extended operation {oid})")


# ---------------------------------------------------------------------- commands

def cmd_create(args: argparse.Namespace) -> int:
    name = args.name
    if args.admin_password_file:
        password = read_secret(args.admin_password_file, "the tenant administrator's password")
    elif sys.stdin.isatty():
        password = prompt_new_password(f"the administrator of {name}")
    else:
        return usage("tenant create: --admin-password-file FILE is required when not on a terminal")
    target = Target("tenant", name, name)
    with Client.open(args) as c:
        if not c.extended(OID_CREATE, create_request(name, password)):
            _unsupported(c, "creating tenants", OID_CREATE)
            code = c.result.get("result")
            diag = c.result.get("message") or ""
            if code == 68:
                raise CLIError(f"tenant {name} already exists")
            if code == 19:
                raise CLIError(f"the administrator password for {name} was refused by the password policy"
                               + (f": {diag}" if diag else ""))
            if code in (34, 53):
                raise CLIError(f"invalid tenant name {name}" + (f": {diag}" if diag else ""))
            c.fail(f"cannot create tenant {name}", target)
        value = c.result.get("responseValue") or b""
    dn = value.decode("utf-8", "replace") if value else domain_dn(name)
    return report(args, {"name": name, "dn": dn}, f"created tenant {name}: {dn}")


def cmd_list(args: argparse.Namespace) -> int:
    with Client.open(args) as c:
        try:
            found = c.search(REGISTRY, "(objectClass=lightwaveTenantEntry)",
                             ["cn", "lightwaveTenantName", "seeAlso", "createTimestamp"],
                             action="cannot list tenants")
        except CLIError:
            if c.result.get("result") == 32:
                raise CLIError(f"the server at {c.url} has no tenant registry ({REGISTRY}); "
                               "it does not support tenants yet") from None
            raise
    rows = []
    for dn, e in found:
        rows.append({"name": first(e, "lightwaveTenantName") or first(e, "cn"), "dn": first(e, "seeAlso"),
                     "created": first(e, "createTimestamp"), "entry": dn})
    rows.sort(key=lambda r: r["name"].lower())
    if args.json:
        emit_json(rows)
        return 0
    print_table(["name", "dn", "created"], [[r["name"], r["dn"], when(r["created"])] for r in rows], "no tenants")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    name = args.name
    dn = domain_dn(name)
    target = Target("tenant", name, name, dn)
    with Client.open(args) as c:
        root = c.read_opt(dn, ["*", "+"])
        if root is None:
            if c.result.get("result") == 32:
                raise CLIError(f"no such tenant {name}")
            c.fail(f"cannot read tenant {name}", target)
        counts = {key: c.count(f"cn={cn},{dn}") for key, cn in CONTAINERS}
        policy_dn = f"cn=Password Policy,cn=Policies,{dn}"
        policy = c.read_opt(policy_dn, POLICY_ATTRS)
    pol = json_attrs(policy) if policy is not None else None
    if args.json:
        emit_json({"name": name, "dn": dn, "attributes": json_attrs(root), "counts": counts,
                   "passwordPolicy": pol})
        return 0
    print(f"tenant: {name}")
    created = first(root, "createTimestamp")
    if created:
        print(f"created: {when(created)}")
    print(", ".join(f"{k if k != 'serviceAccounts' else 'service accounts'}: {'-' if n is None else n}"
                    for k, n in counts.items()))
    if pol is not None:
        print(f"password policy ({policy_dn}):")
        for k, vs in pol.items():
            print(f"  {k}: {', '.join(vs)}")
    else:
        print("password policy: not readable")
    print_entry(dn, root)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    name = args.name
    dn = domain_dn(name)
    target = Target("tenant", name, name, dn)
    if sys.stdin.isatty() and not args.yes:
        what = "and everything in it " if args.force else ""
        if not confirm(f"Delete tenant {name} ({dn}) {what}for good?"):
            print("nothing deleted", file=sys.stderr)
            return 1
    with Client.open(args) as c:
        if not c.extended(OID_DELETE, delete_request(name, args.force)):
            _unsupported(c, "deleting tenants", OID_DELETE)
            code = c.result.get("result")
            if code == 66:
                raise CLIError(f"tenant {name} is not empty ({_extra_entries(c, dn)} entries); use --force")
            if code == 32:
                raise CLIError(f"no such tenant {name}")
            c.fail(f"cannot delete tenant {name}", target)
    return report(args, {"name": name, "dn": dn, "deleted": True}, f"deleted tenant {name} ({dn})")


def _extra_entries(c: Client, dn: str) -> str:
    """How many entries keep a tenant from being deleted: the server's count (from its
    diagnostic, which leaves out what every tenant has), else every entry below the root."""
    m = re.search(r"\((\d+) entr", c.result.get("message") or "")
    if m:
        return m.group(1)
    n = c.count(dn, scope="SUBTREE")
    return "?" if n is None else str(n - 1)


# ---------------------------------------------------------------------- parser

def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``tenant`` and its commands to the ``lightwave`` subparsers ``sub``."""
    raw = argparse.RawDescriptionHelpFormatter
    t = sub.add_parser("tenant", help="create, list, show and delete tenants",
                       description="Manage the tenants of a running server (over LDAP). A tenant "
                                   "acme.example is the naming context dc=acme,dc=example.",
                       epilog=epilog("lightwave tenant create acme.example --admin-password-file acme.pw",
                                     "lightwave tenant list --json"), formatter_class=raw)
    acts = t.add_subparsers(dest="tenant_action", metavar="ACTION", required=True)

    p = acts.add_parser("create", parents=[common], formatter_class=raw, help="create a tenant",
                        description="Create tenant NAME with its containers, administrator and password "
                                    "policy (one extended operation). The administrator's password comes "
                                    "from --admin-password-file, else it is asked twice on a terminal.",
                        epilog=epilog("lightwave tenant create acme.example --admin-password-file acme.pw"))
    p.add_argument("name", metavar="NAME", type=tenant_name)
    p.add_argument("--admin-password-file", metavar="FILE", help="file holding the new tenant administrator's password")
    p.set_defaults(func=cmd_create)

    p = acts.add_parser("list", parents=[common], formatter_class=raw, help="list the tenants",
                        description="List the tenants registered under cn=Tenants,cn=System: name, DN, "
                                    "creation time.",
                        epilog=epilog("lightwave tenant list", "lightwave tenant list --json"))
    p.set_defaults(func=cmd_list)

    p = acts.add_parser("show", parents=[common], formatter_class=raw, help="show one tenant",
                        description="Show tenant NAME: its root entry, how many users, groups, computers and "
                                    "service accounts it has, and its password policy (if readable).",
                        epilog=epilog("lightwave tenant show acme.example"))
    p.add_argument("name", metavar="NAME", type=tenant_name)
    p.set_defaults(func=cmd_show)

    p = acts.add_parser("delete", parents=[common], formatter_class=raw, help="delete a tenant",
                        description="Delete tenant NAME. A tenant that still has users, groups, computers "
                                    "or service accounts is deleted only with --force. On a terminal you "
                                    "are asked to confirm unless --yes is given; with standard input not a "
                                    "terminal there is no question.",
                        epilog=epilog("lightwave tenant delete acme.example --force --yes"))
    p.add_argument("name", metavar="NAME", type=tenant_name)
    p.add_argument("--force", action="store_true", help="delete even if the tenant is not empty")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_delete)


__all__ = ["register", "create_request", "delete_request", "OID_CREATE", "OID_DELETE"]
