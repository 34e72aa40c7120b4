"""First start of a node's database: identity (invocation id, server id) and the
default tenant's naming context with its containers and administrator."""
from __future__ import annotations

import os
import uuid

from vmdir.directory._directory import Directory
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError
from vmdir.store import Store

CONTAINERS = ("Users", "Groups", "Computers", "ServiceAccounts")


def domain_dn(domain: str) -> str:
    """``lightwave.local`` -> ``dc=lightwave,dc=local``."""
    parts = [p for p in domain.strip().strip(".").split(".") if p]
    if not parts:
        raise ValueError(f"invalid domain name {domain!r}")
    return ",".join(f"dc={p}" for p in parts)


def admin_dn(domain: str) -> str:
    return f"cn=Administrator,cn=Users,{domain_dn(domain)}"


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
    with store.read() as r:
        return r.meta("initialised") is not None


def initialise(d: Directory, domain: str, admin_password: str) -> None:
    """Create the default tenant: its naming context, containers and administrator.

    Idempotent: does nothing if the database is already initialised.
    """
    if is_initialised(d.store):
        return
    base = domain_dn(domain)
    first = base.split(",", 1)[0].split("=", 1)[1]
    adm = admin_dn(domain)
    s = d.internal_session(adm)
    reqs = [m.AddRequest(base, (
        ("objectClass", (b"top", b"domain", b"lightwaveTenant")),
        ("dc", (first.encode(),)),
        ("lightwaveTenantName", (domain.encode(),)),
    ))]
    for c in CONTAINERS:
        reqs.append(m.AddRequest(f"cn={c},{base}", (
            ("objectClass", (b"top", b"lightwaveContainer")), ("cn", (c.encode(),)),
        )))
    reqs.append(m.AddRequest(adm, (
        ("objectClass", (b"top", b"person", b"organizationalPerson", b"inetOrgPerson", b"lightwaveUser")),
        ("cn", (b"Administrator",)), ("sn", (b"Administrator",)), ("uid", (b"administrator",)),
        ("userPrincipalName", (f"administrator@{domain}".encode(),)),
        ("userPassword", (admin_password.encode(),)),
        ("description", (b"Forest administrator",)),
    )))
    reqs.append(m.AddRequest(f"cn=Administrators,cn=Groups,{base}", (
        ("objectClass", (b"top", b"groupOfNames")), ("cn", (b"Administrators",)), ("member", (adm.encode(),)),
    )))
    ops = [d.add(s, r) for r in reqs]
    for res in d.run_writes(ops):
        if isinstance(res, BaseException):
            raise res
    with d.store.write() as w:
        w.set_meta("initialised", domain.encode())


def write_secret(path: str, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


__all__ = ["initialise", "is_initialised", "node_identity", "new_invocation", "domain_dn", "admin_dn",
           "write_secret", "LDAPError"]
