"""Tenants: each one its own naming context with its containers, administrator, access rules
and password policy, registered in the system context (``cn=Tenants,cn=System``).

Creating or deleting a tenant is one extended operation, so it is one transaction: a
tenant is never left half made.

    tenantCreate  1.3.6.1.4.1.6876.40.10.3.1
        requestValue  ::= SEQUENCE { name OCTET STRING, adminPassword OCTET STRING }
        responseValue ::= the tenant's DN (UTF-8)
    tenantDelete  1.3.6.1.4.1.6876.40.10.3.2
        requestValue  ::= SEQUENCE { name OCTET STRING, force BOOLEAN DEFAULT FALSE }

Only forest administrators may use them.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.ber import encoder as ber_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, univ

from vmdir.directory._acl import SERVICE_ROLES, default_rules
from vmdir.directory._ppolicy import DEFAULTS as POLICY_DEFAULTS
from vmdir.directory._ppolicy import POLICY_RDN, PasswordPolicy
from vmdir.directory._session import Session
from vmdir.proto import controls as ctl
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError, ResultCode
from vmdir.store import WriteTxn

if TYPE_CHECKING:
    from vmdir.directory._directory import Directory, Outcome

RC = ResultCode
SYSTEM_DN = "cn=System"
TENANTS_DN = f"cn=Tenants,{SYSTEM_DN}"
NODES_DN = f"cn=Nodes,{SYSTEM_DN}"
OID_TENANT_CREATE = "1.3.6.1.4.1.6876.40.10.3.1"
OID_TENANT_DELETE = "1.3.6.1.4.1.6876.40.10.3.2"
# the containers of every tenant; CertificateAuthority and TokenService hold the data of the
# CA and the token service, which their service roles manage (see _acl.SERVICE_ROLES)
CONTAINERS = ("Users", "Groups", "Computers", "ServiceAccounts", "Policies", "CertificateAuthority", "TokenService")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def domain_dn(domain: str) -> str:
    """``lightwave.local`` -> ``dc=lightwave,dc=local``."""
    parts = [p for p in domain.strip().strip(".").split(".") if p]
    if not parts:
        raise ValueError(f"invalid domain name {domain!r}")
    return ",".join(f"dc={p}" for p in parts)


def admin_dn(domain: str) -> str:
    return f"cn=Administrator,cn=Users,{domain_dn(domain)}"


def admins_group_dn(domain: str) -> str:
    return f"cn=Administrators,cn=Groups,{domain_dn(domain)}"


def check_tenant_name(name: str) -> str:
    """The tenant name in canonical (lower-case) form, or LDAPError(invalidDNSyntax)."""
    n = name.strip().lower().rstrip(".")
    labels = n.split(".")
    if not n or len(n) > 253 or not all(_LABEL.match(lb) for lb in labels):
        raise LDAPError(RC.invalidDNSyntax, f"invalid tenant name {name!r}: use a DNS domain name like acme.example")
    return n


def system_requests() -> list[m.AddRequest]:
    """The system context: the forest's configuration and the tenant registry."""
    def container(dn: str, cn: str, desc: str) -> m.AddRequest:
        return m.AddRequest(dn, (("objectClass", (b"top", b"lightwaveContainer")), ("cn", (cn.encode(),)),
                                 ("description", (desc.encode(),))))
    return [
        container(SYSTEM_DN, "System", "Forest configuration"),
        container(TENANTS_DN, "Tenants", "Tenant registry"),
        container(NODES_DN, "Nodes", "Server nodes"),
        container(f"cn=LostAndFound,{SYSTEM_DN}", "LostAndFound",
                  "Entries replication found added under a parent deleted meanwhile"),
    ]


def container_requests(name: str) -> list[m.AddRequest]:
    """The tenant's containers (below its root)."""
    base = domain_dn(name)
    return [m.AddRequest(f"cn={c},{base}", (("objectClass", (b"top", b"lightwaveContainer")), ("cn", (c.encode(),))))
            for c in CONTAINERS]


def service_role_requests(system_tenant: str) -> list[m.AddRequest]:
    """The groups of the system tenant whose members hold the built-in service roles."""
    base = domain_dn(system_tenant)
    return [m.AddRequest(f"cn={g},cn=Groups,{base}", (
        ("objectClass", (b"top", b"lightwaveGroup")), ("cn", (g.encode(),)),
        ("description", (f"Service accounts holding the '{role}' service role".encode(),)),
    )) for role, g in SERVICE_ROLES.items()]


def tenant_requests(name: str, admin_password: bytes, description: str = "") -> list[m.AddRequest]:
    """Every entry a new tenant starts with, parents first."""
    base = domain_dn(name)
    adm = admin_dn(name)
    root_attrs: list[tuple[str, tuple[bytes, ...]]] = [
        ("objectClass", (b"top", b"domain", b"lightwaveTenant")),
        ("dc", (base.split(",", 1)[0][3:].encode(),)),
        ("lightwaveTenantName", (name.encode(),)),
        ("lightwaveAci", tuple(r.encode() for r in default_rules(base))),
    ]
    if description:
        root_attrs.append(("description", (description.encode(),)))
    reqs = [m.AddRequest(base, tuple(root_attrs)), *container_requests(name)]
    policy: list[tuple[str, tuple[bytes, ...]]] = [
        ("objectClass", (b"top", b"lightwaveContainer", b"pwdPolicy", b"lightwavePasswordPolicy")),
        ("cn", (b"Password Policy",)),
    ]
    policy += [(k, tuple(v)) for k, v in POLICY_DEFAULTS.items()]
    reqs.append(m.AddRequest(f"{POLICY_RDN},{base}", tuple(policy)))
    reqs.append(m.AddRequest(adm, (
        ("objectClass", (b"top", b"person", b"organizationalPerson", b"inetOrgPerson", b"lightwaveUser")),
        ("cn", (b"Administrator",)), ("sn", (b"Administrator",)), ("uid", (b"administrator",)),
        ("userPrincipalName", (f"administrator@{name}".encode(),)),
        ("userPassword", (admin_password,)),
        ("description", (f"Administrator of {name}".encode(),)),
    )))
    reqs.append(m.AddRequest(admins_group_dn(name), (
        ("objectClass", (b"top", b"groupOfNames")), ("cn", (b"Administrators",)), ("member", (adm.encode(),)),
    )))
    reqs.append(registry_request(name))
    return reqs


def registry_request(name: str) -> m.AddRequest:
    return m.AddRequest(f"cn={name},{TENANTS_DN}", (
        ("objectClass", (b"top", b"lightwaveTenantEntry")), ("cn", (name.encode(),)),
        ("lightwaveTenantName", (name.encode(),)), ("seeAlso", (domain_dn(name).encode(),)),
    ))


# ---------------------------------------------------------------------- request values


class _CreateValue(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("name", univ.OctetString()),
        namedtype.NamedType("adminPassword", univ.OctetString()),
    )


class _DeleteValue(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("name", univ.OctetString()),
        namedtype.DefaultedNamedType("force", univ.Boolean(False)),
    )


def encode_create(name: str, admin_password: bytes) -> bytes:
    v = _CreateValue()
    v["name"] = name.encode()
    v["adminPassword"] = admin_password
    return bytes(ber_encoder.encode(v))


def encode_delete(name: str, force: bool = False) -> bytes:
    v = _DeleteValue()
    v["name"] = name.encode()
    if force:
        v["force"] = True
    return bytes(ber_encoder.encode(v))


def _decode(value: bytes | None, spec: univ.Sequence, what: str) -> univ.Sequence:
    if not value:
        raise LDAPError(RC.protocolError, f"{what}: request value missing")
    try:
        v, rest = ber_decoder.decode(value, asn1Spec=spec)
    except (PyAsn1Error, ValueError, TypeError):
        raise LDAPError(RC.protocolError, f"{what}: malformed request value") from None
    if rest:
        raise LDAPError(RC.protocolError, f"{what}: trailing bytes in request value")
    return v


def _name(v: univ.Sequence, what: str) -> str:
    try:
        return bytes(v["name"]).decode("utf-8")
    except UnicodeDecodeError:
        raise LDAPError(RC.protocolError, f"{what}: name is not UTF-8") from None


def decode_create(value: bytes | None) -> tuple[str, bytes]:
    v = _decode(value, _CreateValue(), "tenant create")
    return _name(v, "tenant create"), bytes(v["adminPassword"])


def decode_delete(value: bytes | None) -> tuple[str, bool]:
    v = _decode(value, _DeleteValue(), "tenant delete")
    return _name(v, "tenant delete"), bool(v["force"])


# ---------------------------------------------------------------------- operations


def _forest_admin_only(s: Session, what: str) -> None:
    if not s.is_admin:
        raise LDAPError(RC.insufficientAccessRights, f"only forest administrators may {what} tenants")


def tenant_create(d: "Directory", s: Session, value: bytes | None) -> Callable[[WriteTxn], "Outcome"]:
    """Validate (and hash the administrator's password) now; return the write op."""
    from vmdir.directory._directory import Outcome

    name, password = decode_create(value)
    _forest_admin_only(s, "create")
    name = check_tenant_name(name)
    if not password:
        raise LDAPError(RC.constraintViolation, "the tenant administrator needs a password")
    bad = PasswordPolicy.from_attrs(POLICY_DEFAULTS).quality_error(password)
    if bad is not None:
        raise LDAPError(RC.constraintViolation, f"administrator password refused: {bad[1]}")
    ops = [d.add(s, r) for r in tenant_requests(name, password)]
    base = domain_dn(name)

    def op(w: WriteTxn) -> Outcome:
        if d.dit.id_of(w, base) is not None:
            raise LDAPError(RC.entryAlreadyExists, f"tenant {name} already exists")
        nbase = d.dit.ndn(base)
        for rndn, _ in w.roots():
            if nbase.endswith("," + rndn) or rndn.endswith("," + nbase):
                raise LDAPError(RC.unwillingToPerform, f"tenant {name} would overlap the naming context {rndn}")
        if d.dit.id_of(w, TENANTS_DN) is None:
            for req in system_requests():
                if d.dit.id_of(w, req.dn) is None:
                    d.add(s, req)(w)
        for o in ops:
            o(w)
        d.audit("tenant_create", s, tenant=name)
        return Outcome(extra=(None, base.encode()))

    return op


def tenant_delete(d: "Directory", s: Session, value: bytes | None) -> Callable[[WriteTxn], "Outcome"]:
    from vmdir.directory._directory import Outcome

    name, force = decode_delete(value)
    _forest_admin_only(s, "delete")
    name = check_tenant_name(name)
    base = domain_dn(name)
    if d.dit.ndn(base) == d.dit.ndn(d.system_tenant):
        raise LDAPError(RC.unwillingToPerform, "the system tenant cannot be deleted")
    builtin = {d.dit.ndn(r.dn) for r in tenant_requests(name, b"x")}

    def op(w: WriteTxn) -> Outcome:
        root = d.dit.id_of(w, base)
        if root is None:
            raise LDAPError(RC.noSuchObject, f"no such tenant {name}")
        extra = 0
        stack = list(w.children(root))
        while stack:
            eid = stack.pop()
            e = w.get(eid)
            if e is None or e.deleted:
                continue
            if d.dit.dn_of(w, eid, e.parent_id, e.rdn)[1] not in builtin:
                extra += 1
            stack.extend(w.children(eid))
        if extra and not force:
            raise LDAPError(RC.notAllowedOnNonLeaf, f"tenant {name} is not empty ({extra} entries); use force")
        d.delete(s, m.DelRequest(base), (m.Control(ctl.SUBTREE_DELETE_OID, True),))(w)
        reg = f"cn={name},{TENANTS_DN}"
        if d.dit.id_of(w, reg) is not None:
            d.delete(s, m.DelRequest(reg))(w)
        d.audit("tenant_delete", s, tenant=name, entries=extra)
        return Outcome()

    return op
