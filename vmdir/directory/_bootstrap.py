"""First start of a node's database: identity (invocation id, server id) and the
default tenant's naming context with its containers and administrator."""
from __future__ import annotations

import os
import uuid

from vmdir.directory._acl import default_rules
from vmdir.directory._directory import Directory
from vmdir.directory._tenants import (
    TENANTS_DN, admin_dn, container_requests, domain_dn, service_role_requests, system_requests, tenant_requests,
)
from vmdir.proto import messages as m
from vmdir.store import Store

# 2: system context, tenant registry, stored access rules and password policy
# 3: service role groups; every tenant's CertificateAuthority and TokenService containers
# 4: cn=LostAndFound,cn=System (replication)
LAYOUT = 4


def node_identity(store: Store, server_id: int = 1) -> tuple[bytes, int, bool]:
    """Return (invocation id, server id, created) from meta, creating them on first use."""
    with store.read() as r:
        inv = r.meta("invocation")
        sid = r.meta_int("server_id", 0)
    if inv is not None and sid:
        return inv, sid, False
    with store.write() as w:
        inv = w.meta("invocation")
        if inv is None:
            inv = uuid.uuid4().bytes
            w.set_meta("invocation", inv)
        sid = w.meta_int("server_id", 0) or server_id
        w.set_meta_int("server_id", sid)
    return inv, sid, True


def new_invocation(store: Store) -> bytes:
    """Give the database a new invocation id (after a restore: USNs must never be reused)."""
    inv = uuid.uuid4().bytes
    with store.write() as w:
        w.set_meta("invocation", inv)
    return inv


def is_initialised(store: Store) -> bool:
    """Whether the database holds the default tenant in the current layout."""
    with store.read() as r:
        return r.meta("initialised") is not None and r.meta_int("layout") >= LAYOUT


def exists(d: Directory, dn: str) -> bool:
    """Whether an entry named ``dn`` exists (tombstones do not count)."""
    with d.store.read() as r:
        d.dit.begin(r)
        eid = d.dit.id_of(r, dn)
        if eid is None:
            return False
        e = r.get(eid)
        return e is not None and not e.deleted


def initialise(d: Directory, domain: str, admin_password: str) -> None:
    """Create the system context and the default (system) tenant: its naming context,
    containers, administrator, rules and policy. Also brings a database made by an older
    version up to the current layout.

    Idempotent: entries that already exist are left alone (an LDIF imported before the
    first start may hold some, the administrator included, whose password is then the
    imported one).
    """
    if is_initialised(d.store):
        return
    s = d.internal_session(admin_dn(domain))
    reqs = system_requests() + tenant_requests(domain, admin_password.encode(), "The system tenant")
    reqs += service_role_requests(domain)
    for other in _registered_tenants(d):  # tenants made by an older version: containers added since
        reqs += container_requests(other)
    unique = {d.dit.ndn(r.dn): r for r in reversed(reqs)}  # first of each DN, parents first
    ops = [d.add(s, r) for r in reqs if unique[d.dit.ndn(r.dn)] is r and not exists(d, r.dn)]
    base = domain_dn(domain)
    root_rules = _missing_root_rules(d, base)
    if root_rules is not None:
        ops.append(d.modify(s, m.ModifyRequest(base, root_rules)))
    for res in d.run_writes(ops):
        if isinstance(res, BaseException):
            raise res
    with d.store.write() as w:
        w.set_meta("initialised", domain.encode())
        w.set_meta_int("layout", LAYOUT)


def _registered_tenants(d: Directory) -> list[str]:
    """Names of the tenants in the registry whose naming context exists."""
    names = []
    with d.store.read() as r:
        d.dit.begin(r)
        reg = d.dit.id_of(r, TENANTS_DN)
        for eid in r.children(reg) if reg is not None else ():
            e = r.get(eid)
            for v in (e.attrs.get("lightwavetenantname", []) if e is not None and not e.deleted else []):
                name = v.decode("utf-8", "replace")
                if d.dit.id_of(r, domain_dn(name)) is not None:
                    names.append(name)
    return names


def _missing_root_rules(d: Directory, base: str) -> tuple[m.Change, ...] | None:
    """Changes giving an existing tenant root (older layout, or imported) its default rules."""
    with d.store.read() as r:
        d.dit.begin(r)
        eid = d.dit.id_of(r, base)
        e = r.get(eid) if eid is not None else None
        if e is None or e.attrs.get("lightwaveaci"):
            return None
        classes = {c.lower() for c in e.attrs.get("objectclass", [])}
    changes = []
    if b"lightwavetenant" not in classes:
        changes.append(m.Change(m.MOD_ADD, "objectClass", (b"lightwaveTenant",)))
    changes.append(m.Change(m.MOD_ADD, "lightwaveAci", tuple(x.encode() for x in default_rules(base))))
    return tuple(changes)


def write_secret(path: str, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


__all__ = ["initialise", "is_initialised", "exists", "node_identity", "new_invocation", "write_secret"]
