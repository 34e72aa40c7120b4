"""Built-in service roles: service accounts of the system tenant put in ReplicationAgents,
CAServices or TokenServices get exactly their role's rights in every tenant, through the
admin CLI and ldap3 against a real server."""
from __future__ import annotations

from collections.abc import Iterator

import ldap3
import pytest

from tests.conftest import ADMIN, ADMIN_PW, BASE, Server, make_server
from tests.integration.test_admin_cli import lw, ok
from tests.integration.test_tenants_acl import ACME, ACME_ADMIN, ACME_PW
from vmdir.directory import OID_TENANT_CREATE, encode_create

SVC = f"cn=ServiceAccounts,{BASE}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = make_server(tmp_path_factory, "roles")
    s.start()
    c = bind(s, ADMIN, ADMIN_PW)
    assert c.extended(OID_TENANT_CREATE, encode_create("acme.example", ACME_PW.encode())), c.result
    yield s
    s.stop()


def bind(srv: Server, who: str, pw: str) -> ldap3.Connection:
    c = ldap3.Connection(ldap3.Server(srv.url, get_info=ldap3.NONE), who, pw, raise_exceptions=False)
    assert c.bind(), (who, c.result)
    return c


@pytest.fixture(scope="module")
def accounts(srv: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Service accounts ca, sts and repl of the system tenant, each in its role's group: name -> password."""
    out = {}
    d = tmp_path_factory.mktemp("pw")
    for name, group in (("ca", "CAServices"), ("sts", "TokenServices"), ("repl", "ReplicationAgents")):
        ok(lw(srv, "dir", "service-account", "add", f"{name}-svc", "--password-file-out", str(d / name)))
        out[name] = (d / name).read_text().strip()
        ok(lw(srv, "dir", "group", "add-member", group, f"cn={name}-svc,{SVC}"))
    return out


def svc(srv: Server, accounts: dict[str, str], name: str) -> ldap3.Connection:
    return bind(srv, f"{name}-svc@lightwave.local", accounts[name])


def test_role_groups_and_containers_exist(srv: Server) -> None:
    c = bind(srv, ADMIN, ADMIN_PW)
    for g in ("ReplicationAgents", "CAServices", "TokenServices"):
        assert c.search(f"cn={g},cn=Groups,{BASE}", "(objectClass=lightwaveGroup)", ldap3.BASE), (g, c.result)
    for base in (BASE, ACME):
        for cn in ("CertificateAuthority", "TokenService"):
            assert c.search(f"cn={cn},{base}", "(objectClass=lightwaveContainer)", ldap3.BASE), (cn, base, c.result)


def test_ca_role_manages_ca_data_in_every_tenant_and_nothing_else(srv: Server, accounts: dict[str, str]) -> None:
    ca = svc(srv, accounts, "ca")
    for base in (BASE, ACME):
        target = f"cn=Roots,cn=CertificateAuthority,{base}"
        assert ca.add(target, ["lightwaveContainer"], {"description": "root certificates",
                                                        "lightwaveAci": "allow read by users"}), ca.result
        assert ca.modify(target, {"description": [(ldap3.MODIFY_REPLACE, ["rotated"])]}), ca.result
        assert ca.search(target, "(objectClass=*)", ldap3.BASE, attributes=["lightwaveAci", "description"])
        assert ca.entries[0]["lightwaveAci"].value == "allow read by users"  # protected, but its own data
        # reads the tenant (hosts' names), not its secrets
        assert ca.search(f"cn=Users,{base}", "(cn=Administrator)", attributes=["uid", "userPassword"])
        assert len(ca.response) == 1
        assert {k for k, v in ca.response[0]["raw_attributes"].items() if v} == {"uid"}
        ca.search(f"cn=Users,{base}", "(userPassword=*)")  # not even through a filter
        assert ca.result["result"] == 0 and ca.entries == []
        # writes nothing outside its container
        assert not ca.add(f"cn=x,cn=TokenService,{base}", ["lightwaveContainer"])
        assert ca.result["result"] == 50
        assert not ca.modify(f"cn=Administrator,cn=Users,{base}", {"description": [(ldap3.MODIFY_REPLACE, ["x"])]})
        assert ca.result["result"] == 50
        assert ca.delete(target), ca.result
    # nor does it see the forest's configuration
    ca.search("cn=System", "(objectClass=*)")
    assert ca.result["result"] == 32 and ca.entries == []


def test_sts_role_manages_token_service_data(srv: Server, accounts: dict[str, str]) -> None:
    sts = svc(srv, accounts, "sts")
    target = f"cn=Clients,cn=TokenService,{ACME}"
    assert sts.add(target, ["lightwaveContainer"]), sts.result
    assert not sts.add(f"cn=x,cn=CertificateAuthority,{ACME}", ["lightwaveContainer"])
    assert sts.result["result"] == 50
    assert sts.search(ACME, "(uid=administrator)", attributes=["userPrincipalName"]) and len(sts.entries) == 1
    assert sts.delete(target), sts.result


def test_replication_role_reads_everything_and_writes_nothing(srv: Server, accounts: dict[str, str]) -> None:
    repl = svc(srv, accounts, "repl")
    assert repl.search(ACME_ADMIN, "(objectClass=*)", ldap3.BASE, attributes=["userPassword"])
    assert repl.entries[0]["userPassword"].value  # the hash: a new node needs it
    assert repl.search("cn=Tenants,cn=System", "(objectClass=lightwaveTenantEntry)", ldap3.LEVEL)
    assert len(repl.entries) == 2
    assert not repl.modify(ACME_ADMIN, {"description": [(ldap3.MODIFY_REPLACE, ["x"])]})
    assert repl.result["result"] == 50
    assert not repl.add(f"cn=x,cn=Users,{ACME}", ["lightwaveContainer"]) and repl.result["result"] == 50
    assert not repl.delete(f"cn=Tenants,cn=System") and repl.result["result"] == 50


def test_role_follows_group_membership_and_tenant_admins_cannot_grant_it(srv: Server, accounts: dict[str, str]) -> None:
    ok(lw(srv, "dir", "group", "remove-member", "CAServices", f"cn=ca-svc,{SVC}"))
    ca = svc(srv, accounts, "ca")
    ca.search(ACME, "(objectClass=*)")
    assert ca.result["result"] == 32 and ca.entries == []
    assert not ca.add(f"cn=y,cn=CertificateAuthority,{BASE}", ["lightwaveContainer"])
    assert ca.result["result"] == 50
    ok(lw(srv, "dir", "group", "add-member", "CAServices", f"cn=ca-svc,{SVC}"))
    ca = svc(srv, accounts, "ca")
    assert ca.search(ACME, "(cn=CertificateAuthority)") and len(ca.entries) == 1
    # a tenant administrator cannot put its accounts in a role group of the system tenant
    ta = bind(srv, ACME_ADMIN, ACME_PW)
    assert not ta.modify(f"cn=CAServices,cn=Groups,{BASE}",
                         {"member": [(ldap3.MODIFY_ADD, [ACME_ADMIN])]})
    assert ta.result["result"] == 32
