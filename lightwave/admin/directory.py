"""`lightwave dir {user,group,computer,service-account} ...`: a tenant's principals over LDAP.

Where things live in tenant T (DN ``<T>`` = ``domain_dn(T)``):
users ``cn=NAME,cn=Users,<T>``, groups ``cn=NAME,cn=Groups,<T>``, computers
``cn=FQDN,cn=Computers,<T>``, service accounts ``cn=NAME,cn=ServiceAccounts,<T>``.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from typing import Any

from lightwave.admin._client import (
    Attrs, Client, SecretOut, Target, emit_json, epilog, escape, first, json_attrs, object_name, print_entry,
    print_table, prompt_new_password, rdn_value, read_secret, report, same_dn, tenant_name, tenant_of, values,
)
from lightwave.cli import CLIError

USER_CLASSES = ["top", "person", "organizationalPerson", "inetOrgPerson", "lightwaveUser"]
GROUP_CLASSES = ["top", "lightwaveGroup"]
COMPUTER_CLASSES = ["top", "device", "lightwaveComputer"]
SERVICE_CLASSES = ["top", "applicationProcess", "lightwaveServiceAccount"]
USER_SHOW_ATTRS = ["*", "memberOf", "pwdAccountLockedTime", "pwdFailureTime", "pwdChangedTime", "accountDisabled"]
SHOW_ATTRS = ["*", "memberOf", "createTimestamp", "modifyTimestamp"]
_FQDN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


@dataclass(frozen=True, slots=True)
class Kind:
    key: str        # command name: "service-account"
    label: str      # in sentences: "service account"
    container: str  # "ServiceAccounts"
    plural: str     # "service accounts"

    def dn(self, name: str, tenant_dn: str) -> str:
        return f"cn={escape(name)},{self.base(tenant_dn)}"

    def base(self, tenant_dn: str) -> str:
        return f"cn={self.container},{tenant_dn}"


USER = Kind("user", "user", "Users", "users")
GROUP = Kind("group", "group", "Groups", "groups")
COMPUTER = Kind("computer", "computer", "Computers", "computers")
SERVICE = Kind("service-account", "service account", "ServiceAccounts", "service accounts")
KINDS = (USER, GROUP, COMPUTER, SERVICE)


@dataclass(frozen=True, slots=True)
class Ctx:
    """One command's tenant and what it is about."""
    tenant: str
    tenant_dn: str
    kind: Kind
    name: str

    @property
    def dn(self) -> str:
        return self.kind.dn(self.name, self.tenant_dn)

    @property
    def target(self) -> Target:
        return Target(self.kind.label, self.name, self.tenant, self.tenant_dn)


def _ctx(args: argparse.Namespace, kind: Kind, name: str = "") -> Ctx:
    tenant, tdn = tenant_of(args)
    return Ctx(tenant, tdn, kind, name)


def _is_dn(text: str) -> bool:
    from ldap3.utils.dn import parse_dn
    if "=" not in text:
        return False
    try:
        return bool(parse_dn(text))
    except Exception:
        return False


# ---------------------------------------------------------------------- shared: add, show, list, delete

def _upn_free(c: Client, x: Ctx, upn: str) -> None:
    """Refuse a principal name another entry of the tenant already has (binds by UPN must be unambiguous)."""
    for dn, _ in c.search(x.tenant_dn, f"(userPrincipalName={_filter_escape(upn)})", ["1.1"], scope="SUBTREE",
                          target=Target("tenant", x.tenant, x.tenant, x.tenant_dn)):
        if same_dn(dn, x.dn):
            raise CLIError(f"{x.kind.label} {x.name} already exists in {x.tenant}")
        raise CLIError(f"the principal name {upn} is already used by {dn}")


def _filter_escape(v: str) -> str:
    from ldap3.utils.conv import escape_filter_chars
    return str(escape_filter_chars(v))


def _added(args: argparse.Namespace, x: Ctx, dn: str, password: str | None, out: SecretOut | None,
           extra: str = "") -> int:
    if out is not None and out.path and password is not None:
        out.write(password)
    if args.json:
        obj: dict[str, Any] = {"dn": dn, "password": None if out is not None and out.path else password}
        if out is not None and out.path:
            obj["passwordFile"] = out.path
        emit_json(obj)
        return 0
    print(f"created {x.kind.label} {x.name} in {x.tenant}: {dn}")
    if extra:
        print(extra)
    if password is not None:
        if out is not None and out.path:
            print(f"password written to {out.path} (mode 0600)")
        else:
            print(f"password: {password}")
            print("(shown once: store it now)", file=sys.stderr)
    return 0


def _add_with_secret(args: argparse.Namespace, c: Client, x: Ctx, attrs: dict[str, Any], extra: str) -> int:
    from vmdir.model.password import generate_password

    out = SecretOut(args.password_file_out)
    try:
        password = generate_password()
        attrs["userPassword"] = password
        c.add(x.dn, attrs, x.target, f"cannot add {x.kind.label} {x.name}")
    except BaseException:
        out.abandon()
        raise
    return _added(args, x, x.dn, password, out, extra)


def cmd_show(args: argparse.Namespace, kind: Kind) -> int:
    x = _ctx(args, kind, args.name)
    attrs_wanted = USER_SHOW_ATTRS if kind is USER else SHOW_ATTRS
    with Client.open(args) as c:
        e = c.read(x.dn, attrs_wanted, x.target, "cannot read")
    info = _status(e) if kind is not GROUP else {}
    if args.json:
        emit_json({"dn": x.dn, "attributes": json_attrs(e), **info})
        return 0
    print_entry(x.dn, e)
    if info:
        state = ["disabled" if info["disabled"] else "enabled", "locked" if info["locked"] else "not locked",
                 "password set" if info["passwordSet"] else "no password"]
        print(f"status: {', '.join(state)}")
    return 0


def _status(e: Attrs) -> dict[str, bool]:
    return {"disabled": first(e, "accountDisabled").upper() == "TRUE",
            "locked": bool(values(e, "pwdAccountLockedTime")),
            "passwordSet": bool(values(e, "userPassword"))}


LIST_ATTRS = {
    "user": ["cn", "uid", "userPrincipalName", "mail", "displayName", "accountDisabled", "pwdAccountLockedTime"],
    "group": ["cn", "member", "description"],
    "computer": ["cn", "dNSHostName", "userPrincipalName", "accountDisabled"],
    "service-account": ["cn", "userPrincipalName", "description", "accountDisabled"],
}


def _row(kind: Kind, dn: str, e: Attrs) -> list[str]:
    name = rdn_value(dn)
    if kind is USER:
        flags = [f for f, on in (("disabled", first(e, "accountDisabled").upper() == "TRUE"),
                                 ("locked", bool(values(e, "pwdAccountLockedTime")))) if on]
        return [name, first(e, "userPrincipalName"), first(e, "mail"), first(e, "displayName"),
                ",".join(flags) or "ok"]
    if kind is GROUP:
        return [name, str(len(values(e, "member"))), first(e, "description")]
    if kind is COMPUTER:
        return [name, first(e, "userPrincipalName"),
                "disabled" if first(e, "accountDisabled").upper() == "TRUE" else "ok"]
    return [name, first(e, "userPrincipalName"), first(e, "description")]


HEADERS = {
    "user": ["name", "principal name", "email", "display name", "status"],
    "group": ["name", "members", "description"],
    "computer": ["name", "principal name", "status"],
    "service-account": ["name", "principal name", "description"],
}


def cmd_list(args: argparse.Namespace, kind: Kind) -> int:
    x = _ctx(args, kind)
    target = Target("container", kind.base(x.tenant_dn), x.tenant, x.tenant_dn)
    with Client.open(args) as c:
        found = c.search(kind.base(x.tenant_dn), "(objectClass=*)", LIST_ATTRS[kind.key], target=target,
                         action=f"cannot list {kind.plural}")
    found.sort(key=lambda de: rdn_value(de[0]).lower())
    if args.json:
        emit_json([{"dn": dn, "name": rdn_value(dn), "attributes": json_attrs(e)} for dn, e in found])
        return 0
    print_table(HEADERS[kind.key], [_row(kind, dn, e) for dn, e in found], f"no {kind.plural} in {x.tenant}")
    return 0


def cmd_delete(args: argparse.Namespace, kind: Kind) -> int:
    x = _ctx(args, kind, args.name)
    with Client.open(args) as c:
        c.delete(x.dn, x.target, f"cannot delete {kind.label} {x.name}")
    return report(args, {"dn": x.dn, "deleted": True}, f"deleted {kind.label} {x.name} from {x.tenant}")


# ---------------------------------------------------------------------- users

def cmd_user_add(args: argparse.Namespace) -> int:
    x = _ctx(args, USER, args.name)
    upn = f"{x.name}@{x.tenant}"
    attrs: dict[str, Any] = {"objectClass": USER_CLASSES, "uid": x.name, "cn": x.name,
                             "sn": args.last or x.name, "userPrincipalName": upn}
    if args.first:
        attrs["givenName"] = args.first
    if args.email:
        attrs["mail"] = args.email
    if args.first and args.last:
        attrs["displayName"] = f"{args.first} {args.last}"
    if args.new_password_file:
        attrs["userPassword"] = read_secret(args.new_password_file, "the new user's password")
    with Client.open(args, hint=_pw_hint(args)) as c:
        _upn_free(c, x, upn)
        c.add(x.dn, attrs, x.target, f"cannot add user {x.name}")
    if args.json:
        emit_json({"dn": x.dn, "password": None})
        return 0
    print(f"created user {x.name} in {x.tenant}: {x.dn} (principal name {upn})")
    if not args.new_password_file:
        print(f"it has no password yet: lightwave dir user set-password {x.name}"
              + (f" --tenant {x.tenant}" if args.tenant else ""))
    return 0


def _pw_hint(args: argparse.Namespace) -> str:
    if args.password_file:
        return ("; note: --password-file is the password of the binding user (--user), "
                "the new password is --new-password-file")
    return ""


def cmd_user_set_password(args: argparse.Namespace) -> int:
    x = _ctx(args, USER, args.name)
    new: str | None
    if args.new_password_file:
        new = read_secret(args.new_password_file, "the new password")
    elif args.generate or not sys.stdin.isatty():
        new = None
    else:
        new = prompt_new_password(x.name)
    with Client.open(args, hint=_pw_hint(args)) as c:
        generated = c.modify_password(x.dn, new)
        if c.result.get("result") != 0:
            c.fail(f"cannot set the password of user {x.name}", x.target)
    if args.json:
        emit_json({"dn": x.dn, "password": generated})
    elif generated is not None:
        print(f"password of user {x.name} set to a generated one: {generated}")
        print("(shown once: store it now)", file=sys.stderr)
    else:
        print(f"password of user {x.name} changed")
    return 0


def cmd_user_enable(args: argparse.Namespace, disable: bool) -> int:
    x = _ctx(args, USER, args.name)
    with Client.open(args) as c:
        if not c.modify(x.dn, {"accountDisabled": [("MODIFY_REPLACE", ["TRUE" if disable else "FALSE"])]}):
            c.fail(f"cannot {'disable' if disable else 'enable'} user {x.name}", x.target)
    word = "disabled" if disable else "enabled"
    return report(args, {"dn": x.dn, "disabled": disable}, f"user {x.name} {word}")


def cmd_user_unlock(args: argparse.Namespace) -> int:
    x = _ctx(args, USER, args.name)
    with Client.open(args) as c:
        ok = c.modify(x.dn, {"pwdAccountLockedTime": [("MODIFY_DELETE", [])]})
        if not ok and c.result.get("result") != 16:
            c.fail(f"cannot unlock user {x.name}", x.target)
    if args.json:
        emit_json({"dn": x.dn, "wasLocked": ok})
    elif ok:
        print(f"user {x.name} unlocked")
    else:
        print(f"user {x.name} was not locked")
    return 0


# ---------------------------------------------------------------------- groups

def cmd_group_add(args: argparse.Namespace) -> int:
    x = _ctx(args, GROUP, args.name)
    attrs: dict[str, Any] = {"objectClass": GROUP_CLASSES, "cn": x.name}
    if args.description:
        attrs["description"] = args.description
    with Client.open(args) as c:
        c.add(x.dn, attrs, x.target, f"cannot add group {x.name}")
    return report(args, {"dn": x.dn, "password": None}, f"created group {x.name} in {x.tenant}: {x.dn}")


def resolve_member(c: Client, x: Ctx, name: str) -> str:
    """The DN a MEMBER argument names: a DN as is, else the one user, group, computer or
    service account of that name in the tenant. Raises CLIError if none or several."""
    if _is_dn(name):
        return name
    found = [k.dn(name, x.tenant_dn) for k in KINDS if c.read_opt(k.dn(name, x.tenant_dn), ["1.1"]) is not None]
    if not found:
        raise CLIError(f"no user, group, computer or service account named {name} in tenant {x.tenant}")
    if len(found) > 1:
        raise CLIError(f"{name} is ambiguous in tenant {x.tenant}: " + " and ".join(found) + "; give the DN instead")
    return found[0]


def cmd_group_members(args: argparse.Namespace, remove: bool) -> int:
    x = _ctx(args, GROUP, args.group)
    verb = "remove members from" if remove else "add members to"
    with Client.open(args) as c:
        g = c.read(x.dn, ["member"], x.target, f"cannot {verb}")
        current = values(g, "member")
        dns = [resolve_member(c, x, m) for m in args.members]
        change: list[str] = []
        skipped: list[str] = []
        for dn in dict.fromkeys(dns):
            present = any(same_dn(dn, have) for have in current)
            if present != remove or any(same_dn(dn, d) for d in change):
                skipped.append(dn)
            else:
                change.append(dn)
        if change and not c.modify(x.dn, {"member": [("MODIFY_DELETE" if remove else "MODIFY_ADD", change)]}):
            c.fail(f"cannot {verb} group {x.name}", x.target)
    if args.json:
        emit_json({"dn": x.dn, "removed" if remove else "added": change, "unchanged": skipped})
        return 0
    for dn in change:
        print(f"{'removed' if remove else 'added'} {dn} {'from' if remove else 'to'} group {x.name}")
    for dn in skipped:
        print(f"{dn} {'is not' if remove else 'is already'} a member of group {x.name}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------- computers and service accounts

def cmd_computer_add(args: argparse.Namespace) -> int:
    fqdn = args.fqdn.strip().rstrip(".").lower()
    if not _FQDN.match(fqdn):
        raise CLIError(f"invalid host name {args.fqdn!r} (expected a DNS name like host1.example.com)")
    x = _ctx(args, COMPUTER, fqdn)
    upn = f"{fqdn.split('.')[0]}$@{x.tenant}"
    attrs: dict[str, Any] = {"objectClass": COMPUTER_CLASSES, "cn": fqdn, "dNSHostName": fqdn,
                             "servicePrincipalName": f"host/{fqdn}", "userPrincipalName": upn}
    with Client.open(args) as c:
        _upn_free(c, x, upn)
        return _add_with_secret(args, c, x, attrs, f"principal name {upn}, service principal host/{fqdn}")


def cmd_service_add(args: argparse.Namespace) -> int:
    x = _ctx(args, SERVICE, args.name)
    upn = f"{x.name}@{x.tenant}"
    attrs: dict[str, Any] = {"objectClass": SERVICE_CLASSES, "cn": x.name, "userPrincipalName": upn}
    if args.description:
        attrs["description"] = args.description
    with Client.open(args) as c:
        _upn_free(c, x, upn)
        return _add_with_secret(args, c, x, attrs, f"principal name {upn}")


# ---------------------------------------------------------------------- parser

def _leaf(sub: Any, name: str, help_: str, description: str, examples: list[str], func: Any,
          parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=description, epilog=epilog(*examples),
                       formatter_class=argparse.RawDescriptionHelpFormatter, parents=parents)
    p.set_defaults(func=func)
    assert isinstance(p, argparse.ArgumentParser)
    return p


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``dir`` and its commands to the ``lightwave`` subparsers ``sub``."""
    tp = argparse.ArgumentParser(add_help=False)
    tp.add_argument("--tenant", type=tenant_name, metavar="NAME",
                    help="tenant to work in (default $LIGHTWAVE_TENANT, else lightwave.local)")
    parents = [common, tp]
    d = sub.add_parser("dir", help="manage a tenant's users, groups, computers and service accounts",
                       description="Manage the users, groups, computers and service accounts of a tenant "
                                   "on a running server (over LDAP).",
                       epilog=epilog("lightwave dir user add alice --first Alice --last Liddell",
                                     "lightwave dir group add-member admins alice --tenant acme.example"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = d.add_subparsers(dest="dir_kind", metavar="KIND", required=True)
    _users(kinds, parents)
    _groups(kinds, parents)
    _computers(kinds, parents)
    _services(kinds, parents)


def _kind_parser(kinds: Any, kind: Kind, help_: str, example: str) -> Any:
    p = kinds.add_parser(kind.key, help=help_, description=help_[0].upper() + help_[1:] + ".",
                         epilog=epilog(example), formatter_class=argparse.RawDescriptionHelpFormatter)
    return p.add_subparsers(dest="dir_action", metavar="ACTION", required=True)


def _common_leaves(acts: Any, kind: Kind, parents: list[argparse.ArgumentParser], sample: str) -> None:
    p = _leaf(acts, "show", f"show one {kind.label}",
              f"Show a {kind.label}'s attributes" + (" (with memberOf and lockout state)" if kind is USER else "")
              + ". The password hash is never shown.",
              [f"lightwave dir {kind.key} show {sample}", f"lightwave dir {kind.key} show {sample} --json"],
              lambda a: cmd_show(a, kind), parents)
    p.add_argument("name", metavar="FQDN" if kind is COMPUTER else "NAME", type=object_name)
    _leaf(acts, "list", f"list the {kind.plural} of the tenant",
          f"List the {kind.plural} of the tenant (entries directly under cn={kind.container}).",
          [f"lightwave dir {kind.key} list", f"lightwave dir {kind.key} list --tenant acme.example --json"],
          lambda a: cmd_list(a, kind), parents)
    p = _leaf(acts, "delete", f"delete a {kind.label}", f"Delete a {kind.label}.",
              [f"lightwave dir {kind.key} delete {sample}"], lambda a: cmd_delete(a, kind), parents)
    p.add_argument("name", metavar="FQDN" if kind is COMPUTER else "NAME", type=object_name)


def _users(kinds: Any, parents: list[argparse.ArgumentParser]) -> None:
    acts = _kind_parser(kinds, USER, "manage users (cn=NAME,cn=Users,<tenant>)", "lightwave dir user add alice")
    p = _leaf(acts, "add", "create a user",
              "Create user NAME: cn=NAME,cn=Users,<tenant DN>, uid NAME, principal name NAME@<tenant>. "
              "Without --new-password-file the account has no password until set-password.",
              ["lightwave dir user add alice --first Alice --last Liddell --email alice@example.com "
               "--new-password-file alice.pw"], cmd_user_add, parents)
    p.add_argument("name", metavar="NAME", type=object_name)
    p.add_argument("--first", metavar="F", help="given name (givenName)")
    p.add_argument("--last", metavar="L", help="surname (sn; default NAME)")
    p.add_argument("--email", metavar="E", help="e-mail address (mail)")
    p.add_argument("--new-password-file", metavar="FILE", help="file holding the new user's password")
    _common_leaves(acts, USER, parents, "alice")
    p = _leaf(acts, "set-password", "set a user's password (as the administrator)",
              "Set user NAME's password with the Password Modify operation (RFC 3062). The password comes "
              "from --new-password-file; else, on a terminal, it is asked twice; else (or with --generate) "
              "the server generates one, which is printed once.",
              ["lightwave dir user set-password alice --new-password-file alice.pw",
               "lightwave dir user set-password alice --generate --json"], cmd_user_set_password, parents)
    p.add_argument("name", metavar="NAME", type=object_name)
    p.add_argument("--new-password-file", metavar="FILE", help="file holding the new password")
    p.add_argument("--generate", action="store_true", help="let the server generate the password")
    for verb, disable in (("enable", False), ("disable", True)):
        p = _leaf(acts, verb, f"{verb} a user's account",
                  f"{verb.capitalize()} user NAME (sets accountDisabled to {'TRUE' if disable else 'FALSE'}).",
                  [f"lightwave dir user {verb} alice"], (lambda dis: lambda a: cmd_user_enable(a, dis))(disable),
                  parents)
        p.add_argument("name", metavar="NAME", type=object_name)
    p = _leaf(acts, "unlock", "unlock a user locked out by failed logins",
              "Unlock user NAME (removes pwdAccountLockedTime). Succeeds, saying so, if it was not locked.",
              ["lightwave dir user unlock alice"], cmd_user_unlock, parents)
    p.add_argument("name", metavar="NAME", type=object_name)


def _groups(kinds: Any, parents: list[argparse.ArgumentParser]) -> None:
    acts = _kind_parser(kinds, GROUP, "manage groups (cn=NAME,cn=Groups,<tenant>)",
                        "lightwave dir group add-member admins alice bob")
    p = _leaf(acts, "add", "create a group", "Create an (empty) group NAME: cn=NAME,cn=Groups,<tenant DN>.",
              ["lightwave dir group add admins --description 'Tenant administrators'"], cmd_group_add, parents)
    p.add_argument("name", metavar="NAME", type=object_name)
    p.add_argument("--description", metavar="D", help="what the group is for")
    member_help = ("Each MEMBER is a full DN, or the name of a user, group, computer or service account of "
                   "the tenant (a name that matches several asks for the DN).")
    for verb, remove in (("add-member", False), ("remove-member", True)):
        p = _leaf(acts, verb, f"{'remove' if remove else 'add'} members {'from' if remove else 'to'} a group",
                  f"{'Remove' if remove else 'Add'} members {'from' if remove else 'to'} GROUP. " + member_help
                  + (" Members that are not in the group are skipped." if remove
                     else " Members already in the group are skipped."),
                  [f"lightwave dir group {verb} admins alice web01.example.com",
                   f"lightwave dir group {verb} admins cn=bob,cn=Users,dc=lightwave,dc=local"],
                  (lambda rm: lambda a: cmd_group_members(a, rm))(remove), parents)
        p.add_argument("group", metavar="GROUP", type=object_name)
        p.add_argument("members", metavar="MEMBER", nargs="+", type=object_name)
    _common_leaves(acts, GROUP, parents, "admins")


def _computers(kinds: Any, parents: list[argparse.ArgumentParser]) -> None:
    acts = _kind_parser(kinds, COMPUTER, "manage computer accounts (cn=FQDN,cn=Computers,<tenant>)",
                        "lightwave dir computer add web01.example.com --password-file-out web01.pw")
    p = _leaf(acts, "add", "create a computer account with a generated password",
              "Create computer FQDN: cn=FQDN,cn=Computers,<tenant DN>, dNSHostName FQDN, service principal "
              "host/FQDN, principal name <first label>$@<tenant>. Its generated password is printed once, "
              "or written to --password-file-out (mode 0600).",
              ["lightwave dir computer add web01.example.com",
               "lightwave dir computer add web01.example.com --password-file-out web01.pw --json"],
              cmd_computer_add, parents)
    p.add_argument("fqdn", metavar="FQDN")
    p.add_argument("--password-file-out", metavar="FILE", help="write the generated password here (mode 0600)")
    _common_leaves(acts, COMPUTER, parents, "web01.example.com")


def _services(kinds: Any, parents: list[argparse.ArgumentParser]) -> None:
    acts = _kind_parser(kinds, SERVICE, "manage service accounts (cn=NAME,cn=ServiceAccounts,<tenant>)",
                        "lightwave dir service-account add backup --description 'nightly backups'")
    p = _leaf(acts, "add", "create a service account with a generated password",
              "Create service account NAME: cn=NAME,cn=ServiceAccounts,<tenant DN>, principal name "
              "NAME@<tenant>. Its generated password is printed once, or written to --password-file-out "
              "(mode 0600).",
              ["lightwave dir service-account add backup --description 'nightly backups' "
               "--password-file-out backup.pw"], cmd_service_add, parents)
    p.add_argument("name", metavar="NAME", type=object_name)
    p.add_argument("--description", metavar="D", help="what the account is for")
    p.add_argument("--password-file-out", metavar="FILE", help="write the generated password here (mode 0600)")
    _common_leaves(acts, SERVICE, parents, "backup")


__all__ = ["register", "resolve_member", "KINDS"]
