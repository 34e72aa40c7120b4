"""Access decisions: the one place that says who may do what.

Rules live in the directory (``lightwaveAci`` values on any entry, so they replicate) and
apply to that entry and its whole subtree, inside its tenant only. One rule:

    allow|deny RIGHTS [on ATTRS] by SUBJECT

- RIGHTS: comma-separated ``read`` (search, compare, read), ``write`` (modify attributes),
  ``add`` (create entries below), ``delete``, or ``all`` (all four, protected attributes too).
- ATTRS: ``*`` (default: every attribute except the protected ones) or a comma-separated list.
  Protected attributes (password hashes, private keys, the rules themselves) are only covered
  by ``all`` or by naming them.
- SUBJECT: ``users`` (any principal of this tenant), ``self`` (the entry itself),
  ``anonymous``, ``dn:<DN>`` or ``group:<DN>`` (a member, through nested groups too).

``deny`` beats ``allow``. A principal never matches a rule of another tenant, so nothing
of a tenant is visible or writable from another one. Forest administrators (members of the
system tenant's Administrators group) may do everything everywhere; anonymous sessions
see the root DSE and the schema, plus what a tenant explicitly allows ``anonymous``.
What a session may not read it cannot use in a filter or a compare either.

Service roles are built in, for the service accounts of the forest's own services, which
serve every tenant. Membership of a group of the system tenant (``SERVICE_ROLES``) grants,
in every tenant, on top of the rules:

- ``replication`` (ReplicationAgents: node accounts): read everything, protected attributes
  and the system context included; no writes (replication applies changes itself).
- ``ca`` (CAServices: the certificate authority): read every tenant except protected
  attributes; everything below ``cn=CertificateAuthority`` of each tenant (its CA data).
- ``sts`` (TokenServices: the token service): the same, with ``cn=TokenService`` (clients,
  service providers, signing keys).
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass

from vmdir.directory._session import Session
from vmdir.proto.results import LDAPError, ResultCode


def attr_base(key: str) -> str:
    """An attribute key without its options (``cn;lang-de`` -> ``cn``): the key itself, with
    no list and string made, when it has none (nearly always)."""
    return key.partition(";")[0] if ";" in key else key

PROTECTED_ATTRS = frozenset({"userpassword", "lightwaveprivatekey", "lightwavesigningkey", "lightwaveaci",
                             "lightwaveoidcclientsecret", "pwdhistory"})
SECRET_ATTRS = PROTECTED_ATTRS  # the stored wire form keeps these apart (see Directory._set_wire)
RIGHTS = ("read", "write", "add", "delete")
# role -> the system tenant group (under cn=Groups) whose members hold it
SERVICE_ROLES = {"replication": "ReplicationAgents", "ca": "CAServices", "sts": "TokenServices"}
# role -> the container of every tenant the role manages (its normalised RDN below the tenant root)
ROLE_CONTAINERS = {"ca": "cn=certificateauthority", "sts": "cn=tokenservice"}
SYSTEM_NDN = "cn=system"
SUBJECTS = ("users", "self", "anonymous", "dn", "group")


@dataclass(frozen=True, slots=True)
class Rule:
    allow: bool
    rights: frozenset[str]
    attrs: frozenset[str] | None  # None: '*'
    everything: bool  # 'all': protected attributes too
    subject: str
    target: str = ""  # normalised DN for dn: and group:
    text: str = ""


def parse_rule(text: str, norm_dn: Callable[[str], str], canon_attr: Callable[[str], str]) -> Rule:
    """Parse one ``lightwaveAci`` value. Raises ValueError saying what is wrong."""
    words = text.strip().split(None, 1)
    if len(words) != 2 or words[0].lower() not in ("allow", "deny"):
        raise ValueError("a rule starts with 'allow' or 'deny'")
    allow = words[0].lower() == "allow"
    head, sep, who = words[1].rpartition(" by ")
    if not sep:
        raise ValueError("a rule needs 'by SUBJECT'")
    head_words = head.split(None, 1)
    if not head_words:
        raise ValueError("a rule needs its rights (read, write, add, delete, all)")
    rights: set[str] = set()
    everything = False
    for r in head_words[0].lower().split(","):
        if r == "all":
            everything = True
            rights.update(RIGHTS)
        elif r in RIGHTS:
            rights.add(r)
        else:
            raise ValueError(f"unknown right {r!r} (use read, write, add, delete, all)")
    attrs: frozenset[str] | None = None
    if len(head_words) > 1:
        rest = head_words[1].strip()
        if not rest.lower().startswith("on "):
            raise ValueError(f"expected 'on ATTRS' or 'by SUBJECT', got {rest!r}")
        names = [a.strip() for a in rest[3:].split(",") if a.strip()]
        if not names:
            raise ValueError("'on' needs attribute names or '*'")
        if names != ["*"]:
            attrs = frozenset(attr_base(canon_attr(a)) for a in names)
    who = who.strip()
    kind, _, arg = who.partition(":")
    kind = kind.strip().lower()
    if kind in ("users", "self", "anonymous") and not arg:
        return Rule(allow, frozenset(rights), attrs, everything, kind, "", text)
    if kind in ("dn", "group") and arg.strip():
        return Rule(allow, frozenset(rights), attrs, everything, kind, norm_dn(arg.strip()), text)
    raise ValueError(f"unknown subject {who!r} (use users, self, anonymous, dn:DN, group:DN)")


def default_rules(tenant_dn: str) -> list[str]:
    """The rules a new tenant starts with (stored on its naming context entry)."""
    return [
        f"allow all by group:cn=Administrators,cn=Groups,{tenant_dn}",
        "allow read by users",
        "allow write on userPassword,displayName,telephoneNumber,mobile,preferredLanguage by self",
    ]


_VIEW_KEYS = itertools.count(1)  # a View's cache key


class View:
    """What one session may do with the entries of one rule scope (computed once, cached)."""

    __slots__ = ("key", "read_all", "read_names", "read_prot", "deny_read_all", "deny_read", "write_all",
                 "write_names", "write_prot", "deny_write_all", "deny_write", "add", "delete", "read", "plain",
                 "secrets")
    def __init__(self) -> None:
        self.key = next(_VIEW_KEYS)
        self.read_all = self.read_prot = self.deny_read_all = False
        self.write_all = self.write_prot = self.deny_write_all = False
        self.read_names: set[str] = set()
        self.deny_read: set[str] = set()
        self.write_names: set[str] = set()
        self.deny_write: set[str] = set()
        self.add = self.delete = False
        self.read = self.plain = self.secrets = False

    @classmethod
    def everything(cls) -> "View":
        v = cls()
        v.read_all = v.read_prot = v.write_all = v.write_prot = v.add = v.delete = True
        v.finish()
        return v

    @classmethod
    def merged(cls, a: "View", b: "View") -> "View":
        """What either view allows (denies of both still apply)."""
        v = cls()
        for f in ("read_all", "read_prot", "write_all", "write_prot", "add", "delete", "deny_read_all",
                  "deny_write_all"):
            setattr(v, f, getattr(a, f) or getattr(b, f))
        for f in ("read_names", "write_names", "deny_read", "deny_write"):
            setattr(v, f, getattr(a, f) | getattr(b, f))
        return v.finish()

    def finish(self) -> "View":
        self.read = (self.read_all or bool(self.read_names) or self.read_prot) and not self.deny_read_all
        # the stored wire bytes of all user attributes may be sent as they are
        self.plain = self.read and self.read_all and not self.deny_read
        self.secrets = self.plain and self.read_prot
        return self

    def can_read(self, key: str) -> bool:
        if not self.read:
            return False
        base = attr_base(key)
        if base in self.deny_read:
            return False
        if base in PROTECTED_ATTRS:
            return self.read_prot or base in self.read_names
        return self.read_all or base in self.read_names

    def readable(self, attrs: dict[str, list[bytes]]) -> dict[str, list[bytes]]:
        """``attrs`` without what this view may not read (nor use in filters)."""
        if self.secrets and not self.deny_read:
            return attrs
        return {k: v for k, v in attrs.items() if self.can_read(k)}

    def can_write(self, key: str) -> bool:
        base = attr_base(key)
        if self.deny_write_all or base in self.deny_write:
            return False
        if base in PROTECTED_ATTRS:
            return self.write_prot or base in self.write_names
        return self.write_all or base in self.write_names


NOTHING = View().finish()
EVERYTHING = View.everything()


@dataclass(slots=True)
class Holder:
    id: int
    ndn: str
    root: int
    rules: list[Rule]


class AccessPolicy:
    """Decides reads and writes from the stored rules.

    ``load`` returns the rule holders of the database as of a read transaction; it is
    called again when the rules generation (a meta counter bumped by every write to
    rules) moves. ``groups_of`` returns the groups (normalised DNs, nested ones included)
    a DN belongs to; a session's groups and views are recomputed when the policy
    generation (bumped by writes to rules, group membership or password policies) moves.
    """

    def __init__(self, load: Callable[[object], list[Holder]],
                 groups_of: Callable[[object, str], frozenset[str]],
                 policy_gen: Callable[[object], int], rules_gen: Callable[[object], int] | None = None) -> None:
        self._load = load
        self._groups_of = groups_of
        self._policy_gen = policy_gen
        self._rules_gen = rules_gen or policy_gen
        self._lock = threading.Lock()
        self._gen = -1
        self._holders: dict[int, list[Holder]] = {}
        self.system_admins = ""  # normalised DN of the forest administrators' group
        self.service_roles: dict[str, str] = {}  # role -> normalised DN of its group (SERVICE_ROLES)
        self.on_deny: Callable[[Session, str], None] | None = None  # audit hook

    # ------------------------------------------------------------------ state

    def sync(self, r: object, s: Session | None = None) -> None:
        """Bring the rule cache (and ``s``'s groups and views) up to ``r``'s policy generation."""
        rgen = self._rules_gen(r)
        if rgen != self._gen:
            holders = self._load(r)
            by_root: dict[int, list[Holder]] = {}
            for h in holders:
                by_root.setdefault(h.root, []).append(h)
            for hs in by_root.values():
                hs.sort(key=lambda h: h.ndn.count(","))
            with self._lock:
                if rgen >= self._gen:
                    self._holders, self._gen = by_root, rgen
        if s is None:
            return
        gen = self._policy_gen(r)
        if s.acl_gen != gen and s.ndn:
            self.refresh_session(r, s, gen)

    def refresh_session(self, r: object, s: Session, gen: int | None = None) -> None:
        s.groups = self._groups_of(r, s.ndn) if s.ndn else frozenset()
        s.views = {}
        s.acl_gen = self._policy_gen(r) if gen is None else gen
        if s.method != "internal":
            s.is_admin = s.forest_admin_dn or (bool(self.system_admins) and self.system_admins in s.groups)
        s.roles = frozenset(role for role, g in self.service_roles.items() if g in s.groups)

    # ------------------------------------------------------------------ decisions

    def view(self, s: Session, entry_id: int, ndn: str, root: int, root_ndn: str = "") -> View:
        """What ``s`` may do with the entry ``entry_id`` (normalised DN ``ndn``, in naming context
        ``root`` named ``root_ndn``, which service roles need)."""
        if s.is_admin:
            return EVERYTHING
        v = self._rules_view(s, entry_id, ndn, root)
        if s.roles:
            v = self._with_roles(s, v, ndn, root_ndn)
        return v

    def _with_roles(self, s: Session, v: View, ndn: str, root_ndn: str) -> View:
        """``v`` plus what ``s``'s service roles grant on the entry ``ndn``."""
        system = root_ndn == SYSTEM_NDN
        managed = not system and any(
            ndn == c or ndn.endswith("," + c) for c in
            (ROLE_CONTAINERS[r] + "," + root_ndn for r in s.roles if r in ROLE_CONTAINERS))
        key = ("roles", v.key, system, managed)
        hit = s.views.get(key)
        if hit is not None:
            return hit
        grant = View()
        if "replication" in s.roles:
            grant.read_all = grant.read_prot = True
        if not system and s.roles.intersection(ROLE_CONTAINERS):
            grant.read_all = True
            if managed:
                grant.read_prot = grant.write_all = grant.write_prot = grant.add = grant.delete = True
        out = View.merged(v, grant.finish())
        s.views[key] = out
        return out

    def _rules_view(self, s: Session, entry_id: int, ndn: str, root: int) -> View:
        hs = self._holders.get(root)
        if not hs:
            return NOTHING
        if len(hs) == 1 and hs[0].id == root:
            key: tuple[int, ...] = (root,)
        else:
            key = tuple(h.id for h in hs if h.id == entry_id or ndn.endswith("," + h.ndn) or h.id == root)
        self_ = entry_id == s.entry_id and entry_id != 0
        v = s.views.get((key, self_))
        if v is None:
            v = self._compute(s, [h for h in hs if h.id in key], root, self_)
            if len(s.views) > 512:
                s.views.clear()
            s.views[(key, self_)] = v
        return v

    def _compute(self, s: Session, holders: list[Holder], root: int, self_: bool) -> View:
        v = View()
        same_tenant = bool(s.ndn) and s.root_id == root
        for h in holders:
            for rule in h.rules:
                if not _matches(rule, s, same_tenant, self_):
                    continue
                for right in rule.rights:
                    if right in ("read", "write"):
                        _grant(v, right, rule)
                    elif rule.allow:
                        setattr(v, right, True)  # add / delete
        # deny beats allow, whatever order the rules came in
        for h in holders:
            for rule in h.rules:
                if not rule.allow and _matches(rule, s, same_tenant, self_):
                    if "add" in rule.rights:
                        v.add = False
                    if "delete" in rule.rights:
                        v.delete = False
        return v.finish()

    def check_write(self, s: Session, v: View, attrs: set[str] | None, what: str) -> None:
        """Raise insufficientAccessRights unless the view allows the write.

        ``attrs`` are the attribute keys a modify touches; None means the entry itself
        (``what`` = 'entry' for delete/rename, 'parent' for add below it).
        """
        if s.is_admin:
            return
        if s.anonymous:
            raise LDAPError(ResultCode.insufficientAccessRights, f"no write access to {what}: authentication required")
        if attrs is None:
            ok = v.add if what in ("parent", "new superior") else v.delete
        else:
            ok = all(v.can_write(a) for a in attrs)
        if not ok:
            if self.on_deny is not None:
                self.on_deny(s, f"write {what}" + (f" ({', '.join(sorted(attrs))})" if attrs else ""))
            raise LDAPError(ResultCode.insufficientAccessRights, f"no write access to {what}")

    def lists_context(self, s: Session, root: int, root_ndn: str, system_tenant: str) -> bool:
        """Whether the root DSE's namingContexts shows ``s`` the naming context ``root``
        (normalised DN ``root_ndn``), so that no one learns of tenants it has no business
        with: a forest administrator sees every context (``cn=System`` too), a principal its
        own tenant's, anonymous the system tenant's (``system_tenant``, normalised). Service
        roles add what they read: ``replication`` every context, ``ca`` and ``sts`` every tenant.
        """
        if s.is_admin or "replication" in s.roles:
            return True
        if s.anonymous:
            return root_ndn == system_tenant
        return root == s.root_id or (root_ndn != SYSTEM_NDN and bool(s.roles.intersection(ROLE_CONTAINERS)))


def _matches(rule: Rule, s: Session, same_tenant: bool, self_: bool) -> bool:
    subj = rule.subject
    if subj == "anonymous":
        return not s.ndn
    if not same_tenant:
        return False
    if subj == "users":
        return True
    if subj == "self":
        return self_
    if subj == "dn":
        return s.ndn == rule.target
    return rule.target in s.groups  # group


def _grant(v: View, kind: str, rule: Rule) -> None:
    if rule.allow:
        if rule.attrs is None:
            setattr(v, kind + "_all", True)
            if rule.everything:
                setattr(v, kind + "_prot", True)
        else:
            getattr(v, kind + "_names").update(rule.attrs)
    else:
        if rule.attrs is None:
            setattr(v, "deny_" + kind + "_all", True)
        else:
            getattr(v, "deny_" + kind).update(rule.attrs)
