"""The tenant isolation matrix: every principal kind of two tenants (and anonymous) against
the other tenant's entries, for every LDAP operation, with the exact result codes, over ldap3
against a real two-worker server.

A principal of one tenant can neither read nor write nor learn the existence of another
tenant's entries: reads answer noSuchObject, writes noSuchObject (anonymous writes
insufficientAccessRights, anonymous password changes strongerAuthRequired, as slapd does),
never a matched DN, and an entry that exists is answered exactly as one that does not.
The system tenant's administrator is a forest administrator, so it is the positive control
(``test_forest_administrator_sees_both_tenants``), not a row of the matrix.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import ldap3
import pytest

from tests.conftest import ADMIN, ADMIN_PW, BASE, Server, make_server
from tests.integration.test_tenants_acl import ACME, ACME_ADMIN, ACME_PW, USER_PW, add_user, anon, conn
from vmdir.directory import OID_TENANT_CREATE, encode_create

MACHINE_PW = "Machine-pw-123"
DOMAIN = {ACME: "acme.example", BASE: "lightwave.local"}
SCOPES = {"base": ldap3.BASE, "one": ldap3.LEVEL, "sub": ldap3.SUBTREE}
NO_SUCH_OBJECT, INSUFFICIENT, STRONGER_AUTH = 32, 50, 8


@dataclass(frozen=True)
class Who:
    """A principal of the matrix: its tenant (None: anonymous), its kind and whom it attacks."""

    id: str
    tenant: str | None
    kind: str  # user | computer | service | admin | anonymous
    other: str  # the tenant whose entries it is run against

    @property
    def anonymous(self) -> bool:
        return self.tenant is None

    def dn(self) -> str:
        assert self.tenant is not None
        d = DOMAIN[self.tenant]
        return {"user": f"cn=mx-user,cn=Users,{self.tenant}",
                "computer": f"cn=mx-host.{d},cn=Computers,{self.tenant}",
                "service": f"cn=mx-svc,cn=ServiceAccounts,{self.tenant}",
                "admin": ACME_ADMIN}[self.kind]

    def password(self) -> str:
        return {"user": USER_PW, "admin": ACME_PW}.get(self.kind, MACHINE_PW)

    def write_code(self) -> int:
        """What a write to the other tenant answers."""
        return INSUFFICIENT if self.anonymous else NO_SUCH_OBJECT


WHO = [Who(f"{t}-{k}", tb, k, ob) for t, tb, ob in (("acme", ACME, BASE), ("local", BASE, ACME))
       for k in ("user", "computer", "service", "admin") if (tb, k) != (BASE, "admin")]
WHO += [Who(f"anonymous-vs-{t}", None, "anonymous", ob) for t, ob in (("acme", ACME), ("local", BASE))]
IDS = [w.id for w in WHO]


@dataclass(frozen=True)
class Victims:
    """Entries of one tenant the matrix aims at."""

    tenant: str

    @property
    def root(self) -> str:
        return self.tenant

    @property
    def users(self) -> str:
        return f"cn=Users,{self.tenant}"

    @property
    def user(self) -> str:
        return f"cn=mx-victim,cn=Users,{self.tenant}"

    @property
    def upn(self) -> str:
        return f"mx-victim@{DOMAIN[self.tenant]}"

    @property
    def missing(self) -> str:
        return f"cn=mx-nobody,cn=Users,{self.tenant}"

    @property
    def mover(self) -> str:
        """An entry of this tenant its principals try to move to the other tenant."""
        return f"cn=mx-mover,cn=Users,{self.tenant}"

    def existing(self) -> list[str]:
        return [self.root, self.users, self.user]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = make_server(tmp_path_factory, "isolation", workers=2)
    s.start()
    try:
        c = conn(s)
        assert c.extended(OID_TENANT_CREATE, encode_create("acme.example", ACME_PW.encode())), c.result
        ta = conn(s, ACME_ADMIN, ACME_PW)
        for admin, base in ((ta, ACME), (c, BASE)):
            d = DOMAIN[base]
            add_user(admin, base, "mx-user")
            add_user(admin, base, "mx-victim", userPrincipalName=f"mx-victim@{d}", description="victim")
            add_user(admin, base, "mx-mover")
            host = f"mx-host.{d}"
            assert admin.add(f"cn={host},cn=Computers,{base}", ["device", "lightwaveComputer"],
                             {"cn": host, "dNSHostName": host, "servicePrincipalName": f"host/{host}",
                              "userPrincipalName": f"mx-host$@{d}", "userPassword": MACHINE_PW}), admin.result
            assert admin.add(f"cn=mx-svc,cn=ServiceAccounts,{base}", ["applicationProcess", "lightwaveServiceAccount"],
                             {"cn": "mx-svc", "userPrincipalName": f"mx-svc@{d}",
                              "userPassword": MACHINE_PW}), admin.result
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def sessions(srv: Server) -> Iterator[dict[str, ldap3.Connection]]:
    """One bound connection per principal, bound once for the module."""
    cache: dict[str, ldap3.Connection] = {}
    yield cache
    for c in cache.values():
        c.unbind()


@pytest.fixture()
def session(srv: Server, sessions: dict[str, ldap3.Connection], request: pytest.FixtureRequest) -> ldap3.Connection:
    who: Who = request.node.callspec.params["who"]
    c = sessions.get(who.id)
    if c is None:
        c = sessions[who.id] = anon(srv) if who.anonymous else conn(srv, who.dn(), who.password())
    return c


def answer(c: ldap3.Connection) -> tuple[int, str, str]:
    return c.result["result"], c.result["dn"], c.result["message"]


def assert_same_as_missing(answers: dict[str, tuple[int, str, str]], missing: str, code: int) -> None:
    """Every target answered ``code`` with no matched DN, existing ones exactly as the missing one."""
    assert answers[missing][0] == code and answers[missing][1] == "", answers
    assert {t: a for t, a in answers.items() if a != answers[missing]} == {}, answers


# ====================================================================== reads


@pytest.mark.parametrize("who", WHO, ids=IDS)
@pytest.mark.parametrize("scope", SCOPES)
def test_search_other_tenant(who: Who, scope: str, session: ldap3.Connection) -> None:
    v = Victims(who.other)
    answers = {}
    for base in (*v.existing(), v.missing, "cn=System", "cn=Tenants,cn=System"):
        session.search(base, "(objectClass=*)", SCOPES[scope], attributes=["*", "+"])
        assert session.response == [], (base, session.response)
        answers[base] = answer(session)
    assert_same_as_missing(answers, v.missing, NO_SUCH_OBJECT)
    # a filter that names the victim changes nothing
    session.search(v.root, f"(|(uid=mx-victim)(userPrincipalName={v.upn}))", SCOPES[scope], attributes=["1.1"])
    assert session.response == [] and answer(session) == answers[v.missing]


@pytest.mark.parametrize("who", WHO, ids=IDS)
def test_search_own_tenant_sees_only_it(who: Who, session: ldap3.Connection) -> None:
    if who.anonymous:
        for base in (ACME, BASE):
            session.search(base, "(objectClass=*)", ldap3.SUBTREE, attributes=["1.1"])
            assert session.response == [] and session.result["result"] == NO_SUCH_OBJECT
        return
    assert who.tenant is not None
    session.search(who.tenant, "(|(uid=mx-victim)(objectClass=lightwaveComputer))", ldap3.SUBTREE, attributes=["1.1"])
    assert session.result["result"] == 0
    assert {e["dn"].lower() for e in session.response} == {
        Victims(who.tenant).user.lower(), f"cn=mx-host.{DOMAIN[who.tenant]},cn=computers,{who.tenant}".lower()}


@pytest.mark.parametrize("who", WHO, ids=IDS)
@pytest.mark.parametrize("scope", ["one", "sub"])
def test_search_from_the_root_dse_is_not_a_search_of_every_context(who: Who, scope: str,
                                                                   session: ldap3.Connection) -> None:
    # as slapd without a default search base: noSuchObject, nothing returned
    session.search("", "(objectClass=*)", SCOPES[scope], attributes=["1.1"])
    assert session.response == [] and answer(session) == (NO_SUCH_OBJECT, "", ""), session.result


@pytest.mark.parametrize("who", WHO, ids=IDS)
def test_compare_other_tenant(who: Who, session: ldap3.Connection) -> None:
    v = Victims(who.other)
    answers = {}
    for target, attr, value in ((v.root, "objectClass", "top"), (v.users, "cn", "Users"),
                                (v.user, "uid", "mx-victim"), (v.user, "description", "victim"),
                                (v.missing, "uid", "mx-nobody")):
        assert session.compare(target, attr, value) is False
        answers[f"{target} {attr}"] = answer(session)
    assert_same_as_missing(answers, f"{v.missing} uid", NO_SUCH_OBJECT)


# ====================================================================== writes


@pytest.mark.parametrize("who", WHO, ids=IDS)
def test_add_into_other_tenant(who: Who, session: ldap3.Connection) -> None:
    v = Victims(who.other)
    answers = {}
    for dn in (f"cn=mx-intruder,{v.users}", f"cn=mx-intruder,{v.root}", v.missing,  # new entries
               f"cn=mx-intruder,{v.missing}",  # below a missing parent
               v.user, v.users, v.root):  # entries that exist
        # extensibleObject: whatever the RDN (dc= too), the schema passes and access decides
        assert not session.add(dn, ["inetOrgPerson", "extensibleObject"], {"sn": "x", "cn": "x"})
        answers[dn] = answer(session)
    assert_same_as_missing(answers, v.missing, who.write_code())


@pytest.mark.parametrize("who", WHO, ids=IDS)
def test_modify_other_tenant(who: Who, session: ldap3.Connection) -> None:
    v = Victims(who.other)
    answers = {}
    for dn in (*v.existing(), v.missing):
        assert not session.modify(dn, {"description": [(ldap3.MODIFY_REPLACE, ["owned"])]})
        answers[dn] = answer(session)
    assert_same_as_missing(answers, v.missing, who.write_code())


@pytest.mark.parametrize("who", WHO, ids=IDS)
def test_rename_other_tenant_entry(who: Who, session: ldap3.Connection) -> None:
    v = Victims(who.other)
    answers = {}
    for dn in (v.user, v.users, v.missing):
        assert not session.modify_dn(dn, "cn=mx-renamed")
        answers[dn] = answer(session)
    assert_same_as_missing(answers, v.missing, who.write_code())


@pytest.mark.parametrize("who", WHO, ids=IDS)
def test_move_other_tenant_entry_into_own(who: Who, session: ldap3.Connection) -> None:
    v = Victims(who.other)
    home = f"cn=Users,{who.tenant or (BASE if who.other == ACME else ACME)}"
    answers = {}
    for dn in (v.user, v.missing):
        assert not session.modify_dn(dn, "cn=mx-stolen", new_superior=home)
        answers[dn] = answer(session)
    assert_same_as_missing(answers, v.missing, who.write_code())


@pytest.mark.parametrize("who", WHO, ids=IDS)
def test_move_own_entry_into_other_tenant(who: Who, session: ldap3.Connection) -> None:
    v = Victims(who.other)
    mover = Victims(who.tenant).mover if who.tenant else Victims(BASE if who.other == ACME else ACME).mover
    # only the tenant administrator may move its entries at all; the new superior is then not found
    code = NO_SUCH_OBJECT if who.kind == "admin" else INSUFFICIENT
    answers = {}
    for sup in (v.users, v.root, v.missing):
        assert not session.modify_dn(mover, "cn=mx-mover", new_superior=sup)
        answers[sup] = answer(session)
    assert answers[v.missing][0] == code and answers[v.missing][1] == "", answers
    assert {t: a for t, a in answers.items() if a != answers[v.missing]} == {}, answers


@pytest.mark.parametrize("who", WHO, ids=IDS)
def test_delete_other_tenant_entry(who: Who, session: ldap3.Connection) -> None:
    v = Victims(who.other)
    answers = {}
    for dn in (v.user, v.users, v.root, v.missing):
        assert not session.delete(dn)
        answers[dn] = answer(session)
    assert_same_as_missing(answers, v.missing, who.write_code())


@pytest.mark.parametrize("who", WHO, ids=IDS)
def test_password_modify_other_tenant_user(who: Who, session: ldap3.Connection, srv: Server) -> None:
    v = Victims(who.other)
    missing_upn = f"mx-nobody@{DOMAIN[who.other]}"
    answers = {}
    for target in (v.user, v.upn, v.missing, missing_upn):
        assert not session.extend.standard.modify_password(target, new_password="Stolen-pw-123")
        answers[target] = answer(session)
    assert_same_as_missing(answers, v.missing, STRONGER_AUTH if who.anonymous else NO_SUCH_OBJECT)
    # the victim's password is unchanged
    conn(srv, v.user, USER_PW).unbind()


@pytest.mark.parametrize("who", WHO, ids=IDS)
def test_who_am_i(who: Who, session: ldap3.Connection) -> None:
    got = session.extend.standard.who_am_i()
    assert (got or "").lower() == ("" if who.anonymous else f"dn:{who.dn()}".lower())


# ====================================================================== root DSE and the positive control


@pytest.mark.parametrize("who", WHO, ids=IDS)
def test_root_dse_lists_only_the_own_naming_context(who: Who, session: ldap3.Connection) -> None:
    session.search("", "(objectClass=*)", ldap3.BASE, attributes=["namingContexts"])
    ncs = {v.lower() for v in session.entries[0]["namingContexts"].values}
    # anonymous sees the system tenant's (where clients look for the directory)
    assert ncs == {who.tenant or BASE}


def test_forest_administrator_sees_both_tenants(srv: Server) -> None:
    c = conn(srv, ADMIN, ADMIN_PW)
    c.search("", "(objectClass=*)", ldap3.BASE, attributes=["namingContexts"])
    assert {v.lower() for v in c.entries[0]["namingContexts"].values} == {ACME, BASE, "cn=system"}
    for t in (ACME, BASE):
        assert c.compare(Victims(t).user, "description", "victim") is True, c.result
        assert c.search(Victims(t).users, "(uid=mx-victim)", ldap3.LEVEL, attributes=["1.1"]), c.result
        assert [e["dn"].lower() for e in c.response] == [Victims(t).user.lower()]
    # and the root DSE is still no search of every context, for it either (as slapd)
    c.search("", "(uid=mx-victim)", ldap3.SUBTREE, attributes=["1.1"])
    assert c.response == [] and c.result["result"] == NO_SUCH_OBJECT


# ====================================================================== groups naming another tenant's entries


def test_another_tenants_group_neither_grants_nor_follows_renames(srv: Server) -> None:
    root = conn(srv, ADMIN, ADMIN_PW)
    ta = conn(srv, ACME_ADMIN, ACME_PW)
    local = add_user(root, BASE, "mx-guest")
    admins = f"cn=Administrators,cn=Groups,{ACME}"
    # acme's administrator puts a lightwave.local user (a DN it guessed) in acme's Administrators
    assert ta.modify(admins, {"member": [(ldap3.MODIFY_ADD, [local])]}), ta.result
    try:
        # which grants nothing in acme: rules never match another tenant's principals
        g = conn(srv, local, USER_PW)
        g.search(ACME, "(objectClass=*)", ldap3.SUBTREE, attributes=["1.1"])
        assert g.response == [] and answer(g) == (NO_SUCH_OBJECT, "", "")
        assert not g.delete(Victims(ACME).user) and answer(g) == (NO_SUCH_OBJECT, "", "")
        g.search("", "(objectClass=*)", ldap3.BASE, attributes=["namingContexts"])
        assert [v.lower() for v in g.entries[0]["namingContexts"].values] == [BASE]
        # nor does acme's group show that the entry exists: a rename or delete there leaves it as it is
        assert root.modify_dn(local, "cn=mx-guest2"), root.result
        ta.search(admins, "(objectClass=*)", ldap3.BASE, attributes=["member"])
        assert local.lower() in {v.lower() for v in ta.entries[0]["member"].values}
        assert root.delete(f"cn=mx-guest2,cn=Users,{BASE}"), root.result
        ta.search(admins, "(objectClass=*)", ldap3.BASE, attributes=["member"])
        assert local.lower() in {v.lower() for v in ta.entries[0]["member"].values}
    finally:
        assert ta.modify(admins, {"member": [(ldap3.MODIFY_DELETE, [local])]}), ta.result
