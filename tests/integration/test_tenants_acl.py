"""Tenants, stored access rules, nested memberOf and the password policy, driven with
ldap3 and OpenLDAP's ldap-utils against a real server."""
from __future__ import annotations

import base64
import hashlib
import json
import time

import ldap3
import pytest

from tests.conftest import ADMIN, ADMIN_PW, BASE, Server, make_server, run_tool
from vmdir.directory import OID_TENANT_CREATE, OID_TENANT_DELETE, encode_create, encode_delete

ACME = "dc=acme,dc=example"
ACME_ADMIN = f"cn=Administrator,cn=Users,{ACME}"
ACME_PW = "Acme-admin-pw1"
USER_PW = "Alice-pw-123"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):
    s = make_server(tmp_path_factory, "tenants", workers=2, extra=[])
    s.start()
    yield s
    s.stop()


def conn(srv: Server, who: str = ADMIN, pw: str = ADMIN_PW) -> ldap3.Connection:
    c = ldap3.Connection(ldap3.Server(srv.url, get_info=ldap3.NONE), who, pw, raise_exceptions=False)
    assert c.bind(), (who, c.result)
    return c


def anon(srv: Server) -> ldap3.Connection:
    c = ldap3.Connection(ldap3.Server(srv.url, get_info=ldap3.NONE))
    c.bind()
    return c


def add_user(c: ldap3.Connection, base: str, name: str, pw: str = USER_PW, **more: object) -> str:
    dn = f"cn={name},cn=Users,{base}"
    attrs = {"cn": name, "sn": name, "uid": name, "userPassword": pw, **more}
    assert c.add(dn, ["inetOrgPerson", "lightwaveUser"], attrs), c.result
    return dn


def add_group(c: ldap3.Connection, base: str, name: str, members: list[str]) -> str:
    dn = f"cn={name},cn=Groups,{base}"
    attrs: dict[str, object] = {"cn": name}
    if members:
        attrs["member"] = members
    assert c.add(dn, ["lightwaveGroup"], attrs), c.result
    return dn


@pytest.fixture(scope="module")
def acme(srv: Server) -> Server:
    c = conn(srv)
    assert c.extended(OID_TENANT_CREATE, encode_create("acme.example", ACME_PW.encode())), c.result
    assert c.result["result"] == 0 and c.result["responseValue"] == ACME.encode(), c.result
    return srv


def test_tenant_create_makes_the_naming_context_and_registers_it(acme: Server) -> None:
    c = conn(acme)
    c.search("", "(objectClass=*)", ldap3.BASE, attributes=["namingContexts", "supportedExtension"])
    ncs = {v.lower() for v in c.entries[0]["namingContexts"].values}
    assert ACME in ncs and BASE in ncs and "cn=system" in ncs
    assert OID_TENANT_CREATE in c.entries[0]["supportedExtension"].values
    c.search("cn=Tenants,cn=System", "(objectClass=lightwaveTenantEntry)", ldap3.LEVEL,
             attributes=["lightwaveTenantName", "seeAlso"])
    names = {str(e["lightwaveTenantName"]): str(e["seeAlso"]) for e in c.entries}
    assert names == {"lightwave.local": BASE, "acme.example": ACME}
    c.search(ACME, "(objectClass=*)", ldap3.LEVEL, attributes=["cn"])
    assert {str(e["cn"]) for e in c.entries} == {"Users", "Groups", "Computers", "ServiceAccounts", "Policies",
                                                 "CertificateAuthority", "TokenService"}
    # the tenant's administrator binds by DN and by UPN (ldapwhoami, a real client)
    r = run_tool("ldapwhoami", "-H", acme.url, "-x", "-D", "administrator@acme.example", "-w", ACME_PW)
    assert r.returncode == 0 and r.stdout.strip().lower() == f"dn:{ACME_ADMIN}".lower()


def test_tenant_create_errors(acme: Server) -> None:
    c = conn(acme)
    assert not c.extended(OID_TENANT_CREATE, encode_create("acme.example", ACME_PW.encode()))
    assert c.result["result"] == 68  # entryAlreadyExists
    assert not c.extended(OID_TENANT_CREATE, encode_create("bad_name!", ACME_PW.encode()))
    assert c.result["result"] == 34
    assert not c.extended(OID_TENANT_CREATE, encode_create("weak.example", b"short"))
    assert c.result["result"] == 19 and "too short" in c.result["message"]
    assert not c.extended(OID_TENANT_CREATE, encode_create("sub.lightwave.local", ACME_PW.encode()))
    assert c.result["result"] == 53  # would sit inside another tenant
    assert not c.extended(OID_TENANT_CREATE, b"\x30\x03\x04\x01")  # malformed value
    assert c.result["result"] == 2
    # a tenant administrator is not a forest administrator
    ta = conn(acme, ACME_ADMIN, ACME_PW)
    assert not ta.extended(OID_TENANT_CREATE, encode_create("other.example", ACME_PW.encode()))
    assert ta.result["result"] == 50


def test_tenants_are_isolated(acme: Server) -> None:
    ta = conn(acme, ACME_ADMIN, ACME_PW)
    alice = add_user(ta, ACME, "alice", mail="alice@acme.example")
    root = conn(acme)
    bob = add_user(root, BASE, "bob")
    a = conn(acme, alice, USER_PW)
    b = conn(acme, bob, USER_PW)
    # each sees its own tenant...
    assert a.search(ACME, "(uid=alice)", attributes=["mail"]) and len(a.entries) == 1
    assert b.search(BASE, "(uid=bob)") and len(b.entries) == 1
    # ...and nothing of the other: no entries, no existence, no matched DN
    for c, other, victim in ((a, BASE, bob), (b, ACME, alice)):
        c.search(other, "(objectClass=*)")
        assert c.result["result"] == 32 and c.entries == [] and c.result["dn"] == ""
        c.search(victim, "(objectClass=*)", ldap3.BASE)
        assert c.result["result"] == 32
        assert not c.modify(victim, {"description": [(ldap3.MODIFY_REPLACE, ["x"])]})
        assert c.result["result"] == 32
        assert not c.add(f"cn=intruder,cn=Users,{other}", ["person"], {"sn": "x"})
        assert c.result["result"] in (32, 50)
        assert not c.delete(victim) and c.result["result"] == 32
        assert c.compare(victim, "uid", "x") is False and c.result["result"] == 32
    # a tenant administrator manages its tenant only
    ta.search(BASE, "(objectClass=*)")
    assert ta.result["result"] == 32
    assert not ta.delete(bob) and ta.result["result"] == 32
    # nor does anyone see the system context except forest administrators
    a.search("cn=System", "(objectClass=*)")
    assert a.result["result"] == 32 and a.entries == []


def test_users_read_but_do_not_write_and_secrets_stay_hidden(acme: Server) -> None:
    ta = conn(acme, ACME_ADMIN, ACME_PW)
    carol = add_user(ta, ACME, "carol", description="secret-ish")
    a = conn(acme, f"cn=alice,cn=Users,{ACME}", USER_PW)
    a.search(carol, "(objectClass=*)", ldap3.BASE, attributes=["*"])
    attrs = {k.lower() for k in a.entries[0].entry_attributes_as_dict}
    assert "uid" in attrs and "userpassword" not in attrs and "lightwaveaci" not in attrs
    # filters on unreadable attributes disclose nothing
    a.search(ACME, "(userPassword=*)", attributes=["1.1"])
    assert a.entries == []
    a.search(ACME, "(lightwaveAci=*)", attributes=["1.1"])
    assert a.entries == []
    assert not a.modify(carol, {"description": [(ldap3.MODIFY_REPLACE, ["mine"])]})
    assert a.result["result"] == 50
    # own attributes from the self rule, but not others
    me = f"cn=alice,cn=Users,{ACME}"
    assert a.modify(me, {"telephoneNumber": [(ldap3.MODIFY_REPLACE, ["+1 555 0100"])]}), a.result
    assert not a.modify(me, {"description": [(ldap3.MODIFY_REPLACE, ["promote me"])]})
    assert a.result["result"] == 50
    # the tenant administrator sees hashes and rules
    ta.search(ACME, "(lightwaveAci=*)", ldap3.BASE, attributes=["lightwaveAci"])
    assert len(ta.entries) == 1 and ta.entries[0]["lightwaveAci"].values


def test_stored_rules_are_enforced_and_validated(acme: Server) -> None:
    ta = conn(acme, ACME_ADMIN, ACME_PW)
    a = conn(acme, f"cn=alice,cn=Users,{ACME}", USER_PW)
    # a bad rule is refused with invalidAttributeSyntax
    assert not ta.modify(ACME, {"lightwaveAci": [(ldap3.MODIFY_ADD, ["allow fly by users"])]})
    assert ta.result["result"] == 21
    # deny users the mail attribute: gone from results, from filters and from compares
    rule = "deny read on mail by users"
    assert ta.modify(ACME, {"lightwaveAci": [(ldap3.MODIFY_ADD, [rule])]}), ta.result
    try:
        a.search(ACME, "(uid=alice)", attributes=["*"])
        assert "mail" not in {k.lower() for k in a.entries[0].entry_attributes_as_dict}
        a.search(ACME, "(mail=alice@acme.example)", attributes=["1.1"])
        assert a.entries == []
        a.compare(f"cn=alice,cn=Users,{ACME}", "mail", "alice@acme.example")
        assert a.result["result"] == 50
    finally:
        assert ta.modify(ACME, {"lightwaveAci": [(ldap3.MODIFY_DELETE, [rule])]}), ta.result
    a.search(ACME, "(mail=alice@acme.example)", attributes=["mail"])
    assert len(a.entries) == 1
    # a rule on a subtree: let a helpdesk group write descriptions under cn=Users
    desk = add_user(ta, ACME, "desk")
    grp = add_group(ta, ACME, "helpdesk", [desk])
    assert ta.modify(f"cn=Users,{ACME}", {"lightwaveAci": [(ldap3.MODIFY_ADD, [f"allow write on description by group:{grp}"])]}), ta.result
    d = conn(acme, desk, USER_PW)
    assert d.modify(f"cn=alice,cn=Users,{ACME}", {"description": [(ldap3.MODIFY_REPLACE, ["checked"])]}), d.result
    assert not d.modify(f"cn=Administrators,cn=Groups,{ACME}", {"description": [(ldap3.MODIFY_REPLACE, ["x"])]})
    assert d.result["result"] == 50


def test_nested_member_of(acme: Server) -> None:
    ta = conn(acme, ACME_ADMIN, ACME_PW)
    dave = add_user(ta, ACME, "dave")
    eng = add_group(ta, ACME, "engineers", [dave])
    staff = add_group(ta, ACME, "staff", [eng])
    empty = add_group(ta, ACME, "nobody", [])
    ta.search(dave, "(objectClass=*)", ldap3.BASE, attributes=["memberOf"])
    assert {v.lower() for v in ta.entries[0]["memberOf"].values} == {eng.lower(), staff.lower()}
    # not returned unless asked for (operational), and searchable, nested included
    ta.search(dave, "(objectClass=*)", ldap3.BASE, attributes=["*"])
    assert "memberOf" not in ta.entries[0].entry_attributes_as_dict
    r = run_tool("ldapsearch", "-H", acme.url, "-x", "-D", ACME_ADMIN, "-w", ACME_PW, "-b", ACME, "-LLL",
                 f"(memberOf={staff})", "1.1")
    assert r.returncode == 0, r.stderr
    assert {ln[4:].strip().lower() for ln in r.stdout.splitlines() if ln.startswith("dn: ")} == {dave.lower(), eng.lower()}
    ta.search(ACME, f"(&(objectClass=inetOrgPerson)(memberOf={eng}))", attributes=["1.1"])
    assert [e.entry_dn.lower() for e in ta.entries] == [dave.lower()]
    ta.search(ACME, f"(memberOf={empty})", attributes=["1.1"])
    assert ta.entries == []
    # membership changes show at once, also for access decisions
    assert ta.modify(eng, {"member": [(ldap3.MODIFY_DELETE, [dave])]}), ta.result
    ta.search(dave, "(objectClass=*)", ldap3.BASE, attributes=["memberOf"])
    assert ta.entries[0]["memberOf"].values == []


def test_lockout_and_ppolicy_control(acme: Server) -> None:
    ta = conn(acme, ACME_ADMIN, ACME_PW)
    erin = add_user(ta, ACME, "erin")
    for _ in range(5):
        r = run_tool("ldapwhoami", "-H", acme.url, "-x", "-D", erin, "-w", "wrong-pw-1")
        assert r.returncode == 49
    # locked: even the right password fails, and the ppolicy control says why
    r = run_tool("ldapwhoami", "-H", acme.url, "-x", "-e", "ppolicy", "-D", erin, "-w", USER_PW)
    assert r.returncode == 49 and "Account locked" in r.stdout + r.stderr, (r.stdout, r.stderr)
    r = run_tool("ldapwhoami", "-H", acme.url, "-x", "-e", "ppolicy", "-D", erin, "-w", "wrong-pw-1")
    assert r.returncode == 49 and "Account locked" in r.stdout + r.stderr
    ta.search(erin, "(objectClass=*)", ldap3.BASE, attributes=["pwdAccountLockedTime", "pwdFailureTime"])
    assert ta.entries[0]["pwdAccountLockedTime"].value and len(ta.entries[0]["pwdFailureTime"].values) == 5
    # the administrator unlocks it; the failure count starts afresh
    assert ta.modify(erin, {"pwdAccountLockedTime": [(ldap3.MODIFY_DELETE, [])]}), ta.result
    r = run_tool("ldapwhoami", "-H", acme.url, "-x", "-D", erin, "-w", USER_PW)
    assert r.returncode == 0, r.stderr
    ta.search(erin, "(objectClass=*)", ldap3.BASE, attributes=["pwdAccountLockedTime", "pwdFailureTime"])
    assert not ta.entries[0]["pwdFailureTime"].values and not ta.entries[0]["pwdAccountLockedTime"].value
    # a user cannot unlock itself
    e = conn(acme, erin, USER_PW)
    assert not e.modify(erin, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, ["20300101000000Z"])]})
    assert e.result["result"] == 50
    # lockouts are audit events
    time.sleep(0.2)
    events = [json.loads(line.split("audit ", 1)[1]) for line in acme.log().splitlines() if "audit {" in line]
    kinds = {(ev["event"], ev.get("dn", "").lower()) for ev in events}
    assert ("lockout", erin.lower()) in kinds and ("unlock", erin.lower()) in kinds
    assert any(ev["event"] == "bind_failure" and ev.get("peer", "").startswith("127.0.0.1:") for ev in events)
    assert not any(USER_PW in line or "wrong-pw-1" in line for line in acme.log().splitlines())


def test_password_quality_and_history(acme: Server) -> None:
    ta = conn(acme, ACME_ADMIN, ACME_PW)
    frank = add_user(ta, ACME, "frank")
    f = conn(acme, frank, USER_PW)
    for bad, why in (("short1!", "too short"), ("alllowercaseletters", "quality")):
        assert not f.extend.standard.modify_password(frank, USER_PW, bad)
        assert f.result["result"] == 19 and why in f.result["message"], f.result
    assert f.extend.standard.modify_password(frank, USER_PW, "Frank-pw-2"), f.result
    # the previous password is in the history
    f = conn(acme, frank, "Frank-pw-2")
    assert not f.extend.standard.modify_password(frank, "Frank-pw-2", USER_PW)
    assert f.result["result"] == 19 and "history" in f.result["message"]
    # clear-text quality applies to adds too
    assert not ta.add(f"cn=weak,cn=Users,{ACME}", ["inetOrgPerson"], {"sn": "w", "userPassword": "abc"})
    assert ta.result["result"] == 19


def test_tenant_delete(acme: Server) -> None:
    c = conn(acme)
    assert c.extended(OID_TENANT_CREATE, encode_create("tmp.example", ACME_PW.encode())), c.result
    tmp_admin = conn(acme, "administrator@tmp.example", ACME_PW)
    add_user(tmp_admin, "dc=tmp,dc=example", "zed")
    assert not c.extended(OID_TENANT_DELETE, encode_delete("tmp.example"))
    assert c.result["result"] == 66 and "not empty (1 entries)" in c.result["message"]
    assert c.extended(OID_TENANT_DELETE, encode_delete("tmp.example", force=True)), c.result
    c.search("dc=tmp,dc=example", "(objectClass=*)")
    assert c.result["result"] == 32
    c.search("cn=Tenants,cn=System", "(cn=tmp.example)", ldap3.LEVEL)
    assert c.entries == []
    gone = ldap3.Connection(ldap3.Server(acme.url, get_info=ldap3.NONE), "administrator@tmp.example", ACME_PW)
    assert not gone.bind() and gone.result["result"] == 49
    assert not c.extended(OID_TENANT_DELETE, encode_delete("lightwave.local", force=True))
    assert c.result["result"] == 53
    assert not c.extended(OID_TENANT_DELETE, encode_delete("none.example"))
    assert c.result["result"] == 32


def test_posix_ids_are_allocated_from_the_node_range(acme: Server) -> None:
    ta = conn(acme, ACME_ADMIN, ACME_PW)
    got = []
    for name in ("px1", "px2"):
        dn = f"cn={name},cn=Users,{ACME}"
        assert ta.add(dn, ["inetOrgPerson", "posixAccount"], {"sn": name, "uid": name, "userPassword": USER_PW}), ta.result
        ta.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["uidNumber", "gidNumber", "homeDirectory"])
        e = ta.entries[0]
        got.append(int(e["uidNumber"].value))
        assert int(e["gidNumber"].value) == got[-1] and e["homeDirectory"].value == f"/home/{name}"
    assert got[1] == got[0] + 1 and 100_000 <= got[0] < 1_100_000  # server id 1's block
    grp = f"cn=pxg,cn=Groups,{ACME}"
    assert ta.add(grp, ["posixGroup"], {"cn": "pxg"}), ta.result
    ta.search(grp, "(objectClass=*)", ldap3.BASE, attributes=["gidNumber"])
    assert int(ta.entries[0]["gidNumber"].value) == got[1] + 1
    # an explicit number is kept
    dn = f"cn=px3,cn=Users,{ACME}"
    assert ta.add(dn, ["inetOrgPerson", "posixAccount"], {"sn": "p", "uid": "px3", "uidNumber": 5000,
                                                          "gidNumber": 5000, "homeDirectory": "/srv/px3"}), ta.result
    ta.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["uidNumber"])
    assert int(ta.entries[0]["uidNumber"].value) == 5000


def test_user_principal_names_are_unique_and_in_the_tenant_realm(acme: Server) -> None:
    ta = conn(acme, ACME_ADMIN, ACME_PW)
    add_user(ta, ACME, "gina", userPrincipalName="gina@acme.example")
    # the same name again, anywhere in the forest: refused
    assert not ta.add(f"cn=gina2,cn=Users,{ACME}", ["inetOrgPerson", "lightwaveUser"],
                      {"sn": "g", "userPrincipalName": "GINA@acme.example"})
    assert ta.result["result"] == 19 and "already in use" in ta.result["message"]
    # a tenant administrator cannot claim another tenant's realm (bind by UPN would reach it)
    assert not ta.add(f"cn=spoof,cn=Users,{ACME}", ["inetOrgPerson", "lightwaveUser"],
                      {"sn": "s", "userPrincipalName": "spoof@lightwave.local"})
    assert ta.result["result"] == 19 and "realm" in ta.result["message"]
    assert not ta.modify(f"cn=gina,cn=Users,{ACME}",
                         {"userPrincipalName": [(ldap3.MODIFY_REPLACE, ["administrator@lightwave.local"])]})
    assert ta.result["result"] == 19


def test_group_membership_follows_deletes_and_renames(acme: Server) -> None:
    ta = conn(acme, ACME_ADMIN, ACME_PW)
    hal = add_user(ta, ACME, "hal")
    ivy = add_user(ta, ACME, "ivy")
    grp = add_group(ta, ACME, "movers", [hal, ivy])
    assert ta.modify_dn(hal, "cn=hal2"), ta.result
    assert ta.delete(ivy), ta.result
    ta.search(grp, "(objectClass=*)", ldap3.BASE, attributes=["member"])
    assert [v.lower() for v in ta.entries[0]["member"].values] == [f"cn=hal2,cn=users,{ACME}"]
    ta.search(f"cn=hal2,cn=Users,{ACME}", "(objectClass=*)", ldap3.BASE, attributes=["memberOf"])
    assert [v.lower() for v in ta.entries[0]["memberOf"].values] == [grp.lower()]
    # a subtree rename: members below the renamed entry follow too, at any depth
    assert ta.add(f"ou=team,cn=Users,{ACME}", ["organizationalUnit"], {"ou": "team"}), ta.result
    assert ta.add(f"ou=sub,ou=team,cn=Users,{ACME}", ["organizationalUnit"], {"ou": "sub"}), ta.result
    for dn in (f"cn=max,ou=team,cn=Users,{ACME}", f"cn=nia,ou=sub,ou=team,cn=Users,{ACME}"):
        assert ta.add(dn, ["inetOrgPerson"], {"sn": "x"}), ta.result
    crew = add_group(ta, ACME, "crew", [f"cn=max,ou=team,cn=Users,{ACME}", f"cn=nia,ou=sub,ou=team,cn=Users,{ACME}"])
    r = run_tool("ldapmodrdn", "-H", acme.url, "-x", "-D", ACME_ADMIN, "-w", ACME_PW, "-r",
                 f"ou=team,cn=Users,{ACME}", "ou=squad")
    assert r.returncode == 0, r.stderr
    ta.search(crew, "(objectClass=*)", ldap3.BASE, attributes=["member"])
    assert sorted(v.lower() for v in ta.entries[0]["member"].values) == [
        f"cn=max,ou=squad,cn=users,{ACME}", f"cn=nia,ou=sub,ou=squad,cn=users,{ACME}"]
    ta.search(ACME, f"(memberOf={crew})", attributes=["cn"])
    assert sorted(e.entry_dn.lower() for e in ta.entries) == [
        f"cn=max,ou=squad,cn=users,{ACME}", f"cn=nia,ou=sub,ou=squad,cn=users,{ACME}"]


def test_password_set_by_an_administrator_must_be_changed_first(srv: Server) -> None:
    """pwdMustChange (OpenLDAP's ppolicy): a password an administrator sets (add or reset)
    marks the account pwdReset; its next session may only change the password."""
    c = conn(srv)
    assert c.extended(OID_TENANT_CREATE, encode_create("musts.example", ACME_PW.encode())), c.result
    base = "dc=musts,dc=example"
    ta = conn(srv, f"cn=Administrator,cn=Users,{base}", ACME_PW)
    policy = f"cn=Password Policy,cn=Policies,{base}"
    assert ta.modify(policy, {"pwdMustChange": [(ldap3.MODIFY_REPLACE, ["TRUE"])]}), ta.result
    gina = add_user(ta, base, "gina")

    def reset_flag() -> list[str]:  # ldap3 without the schema: the raw "TRUE"
        ta.search(gina, "(objectClass=*)", ldap3.BASE, attributes=["pwdReset"])
        return ta.entries[0]["pwdReset"].values

    assert reset_flag() == ["TRUE"]
    # the bind succeeds and says why nothing else will
    r = run_tool("ldapwhoami", "-H", srv.url, "-x", "-e", "ppolicy", "-D", gina, "-w", USER_PW)
    out = r.stdout + r.stderr
    assert "ldap_bind: Success (0); Password must be changed" in out, out
    assert r.returncode != 0 and "Result: Insufficient access (50)" in out, out  # the Who am I? that follows
    assert "Operations are restricted to bind/unbind/abandon/StartTLS/modify password" in out, out
    assert "ppolicy: error=2 (Password must be changed)" in out, out
    r = run_tool("ldapsearch", "-H", srv.url, "-x", "-D", gina, "-w", USER_PW, "-b", base, "(cn=gina)", "cn")
    assert r.returncode == 50 and "Operations are restricted" in r.stdout + r.stderr
    g = conn(srv, gina, USER_PW)
    assert not g.modify(gina, {"description": [(ldap3.MODIFY_REPLACE, ["x"])]}) and g.result["result"] == 50
    assert not g.compare(gina, "cn", "gina") and g.result["result"] == 50
    # changing its own password lifts it, on the same connection, and clears pwdReset
    assert g.modify(gina, {"userPassword": [(ldap3.MODIFY_REPLACE, ["Gina-own-pw-2"])]}), g.result
    assert g.search(base, "(cn=gina)", attributes=["cn"]) and len(g.entries) == 1, g.result
    assert reset_flag() == []
    # an administrator's reset marks it again; ldappasswd (Password Modify) is allowed
    r = run_tool("ldappasswd", "-H", srv.url, "-x", "-D", f"cn=Administrator,cn=Users,{base}", "-w", ACME_PW,
                 "-s", "Admin-set-pw-3", gina)
    assert r.returncode == 0, r.stderr
    assert reset_flag() == ["TRUE"]
    r = run_tool("ldapsearch", "-H", srv.url, "-x", "-D", gina, "-w", "Admin-set-pw-3", "-b", base, "(cn=gina)")
    assert r.returncode == 50
    r = run_tool("ldappasswd", "-H", srv.url, "-x", "-D", gina, "-w", "Admin-set-pw-3", "-a", "Admin-set-pw-3",
                 "-s", "Gina-own-pw-4")
    assert r.returncode == 0, r.stderr
    assert reset_flag() == []
    r = run_tool("ldapsearch", "-H", srv.url, "-x", "-D", gina, "-w", "Gina-own-pw-4", "-b", base, "(cn=gina)", "cn")
    assert r.returncode == 0 and "cn: gina" in r.stdout, r.stderr
    # without pwdMustChange an administrator's reset restricts nothing
    assert ta.modify(policy, {"pwdMustChange": [(ldap3.MODIFY_REPLACE, ["FALSE"])]}), ta.result
    assert ta.extend.standard.modify_password(gina, None, "Admin-set-pw-5"), ta.result
    assert reset_flag() == []
    r = run_tool("ldapwhoami", "-H", srv.url, "-x", "-D", gina, "-w", "Admin-set-pw-5")
    assert r.returncode == 0, r.stderr


def test_expired_password_grace_binds_only_change_it(srv: Server) -> None:
    """pwdGraceAuthNLimit: an expired password still binds that many times, each saying how many
    remain, only to change it; then it is refused."""
    c = conn(srv)
    assert c.extended(OID_TENANT_CREATE, encode_create("grace.example", ACME_PW.encode())), c.result
    base = "dc=grace,dc=example"
    admin = f"cn=Administrator,cn=Users,{base}"
    ta = conn(srv, admin, ACME_PW)
    policy = f"cn=Password Policy,cn=Policies,{base}"
    assert ta.modify(policy, {"pwdMaxAge": [(ldap3.MODIFY_REPLACE, ["1"])],
                              "pwdGraceAuthNLimit": [(ldap3.MODIFY_REPLACE, ["2"])]}), ta.result
    hank, ivan = add_user(ta, base, "hank"), add_user(ta, base, "ivan")
    time.sleep(1.5)  # both passwords are now past pwdMaxAge

    def whoami(dn: str) -> tuple[int, str]:
        r = run_tool("ldapwhoami", "-H", srv.url, "-x", "-e", "ppolicy", "-D", dn, "-w", USER_PW)
        return r.returncode, r.stdout + r.stderr

    rc, out = whoami(ivan)
    assert "ldap_bind: Success (0) (Password expired, 1 grace logins remain)" in out, out
    assert rc != 0 and "Operations are restricted" in out, out  # the Who am I? that follows
    rc, out = whoami(ivan)
    assert "ldap_bind: Success (0) (Password expired, 0 grace logins remain)" in out, out
    rc, out = whoami(ivan)
    assert rc == 49 and "ldap_bind: Invalid credentials (49); Password expired" in out, out
    ta.search(ivan, "(objectClass=*)", ldap3.BASE, attributes=["pwdGraceUseTime"])
    assert len(ta.entries[0]["pwdGraceUseTime"].values) == 2
    # a grace bind may change the password; the grace uses are then forgotten
    r = run_tool("ldappasswd", "-H", srv.url, "-x", "-D", hank, "-w", USER_PW, "-a", USER_PW, "-s", "Hank-new-pw-2")
    assert r.returncode == 0, r.stderr
    ta.search(hank, "(objectClass=*)", ldap3.BASE, attributes=["pwdGraceUseTime", "pwdChangedTime"])
    assert not ta.entries[0]["pwdGraceUseTime"].values and ta.entries[0]["pwdChangedTime"].value
    assert ta.modify(policy, {"pwdMaxAge": [(ldap3.MODIFY_REPLACE, ["0"])]}), ta.result
    r = run_tool("ldapsearch", "-H", srv.url, "-x", "-D", hank, "-w", "Hank-new-pw-2", "-b", base, "(cn=hank)", "cn")
    assert r.returncode == 0 and "cn: hank" in r.stdout, r.stderr


def test_password_change_errors_carry_the_ppolicy_control_when_asked(acme: Server) -> None:
    ta = conn(acme, ACME_ADMIN, ACME_PW)
    jill = add_user(ta, ACME, "jill")
    args = ("-H", acme.url, "-x", "-D", jill, "-w", USER_PW)
    r = run_tool("ldappasswd", *args, "-e", "ppolicy", "-a", USER_PW, "-s", "short1!")
    out = r.stdout + r.stderr
    # (ldappasswd exits 1 on any failure; the result code is in its output)
    assert r.returncode == 1 and "Constraint violation (19)" in out, out
    assert "ppolicy: error=6 (Password is too short for policy)" in out, out
    r = run_tool("ldappasswd", *args, "-a", USER_PW, "-s", "short1!")  # not asked: not sent
    assert "Constraint violation (19)" in r.stdout + r.stderr and "ppolicy" not in r.stdout + r.stderr
    r = run_tool("ldappasswd", *args, "-e", "ppolicy", "-a", USER_PW, "-s", "alllowercaseletters")
    assert "Constraint violation (19)" in r.stdout + r.stderr and "ppolicy: error=5" in r.stdout + r.stderr
    # the current password is in the history: a modify says so too
    ldif = f"dn: {jill}\nchangetype: modify\nreplace: userPassword\nuserPassword: {USER_PW}\n"
    r = run_tool("ldapmodify", *args, "-e", "ppolicy", input=ldif)
    out = r.stdout + r.stderr
    assert r.returncode == 19 and "ppolicy: error=8" in out and "history" in out, out
    # an add with a weak password, by the administrator
    ldif = f"dn: cn=kim,cn=Users,{ACME}\nobjectClass: inetOrgPerson\ncn: kim\nsn: kim\nuserPassword: abc\n"
    r = run_tool("ldapadd", "-H", acme.url, "-x", "-D", ACME_ADMIN, "-w", ACME_PW, "-e", "ppolicy", input=ldif)
    assert r.returncode == 19 and "ppolicy: error=6" in r.stdout + r.stderr, r.stdout + r.stderr
    # someone who may not set another's password learns nothing about the policy: 50, not 19
    lena = add_user(ta, ACME, "lena")
    r = run_tool("ldapmodify", *args, input=f"dn: {lena}\nchangetype: modify\nreplace: userPassword\nuserPassword: weak\n")
    assert r.returncode == 50, r.stdout + r.stderr
    # a wrong old password (verified before the write is queued)
    r = run_tool("ldappasswd", *args, "-a", "not-my-password", "-s", "Jill-new-pw-9")
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "unwilling to perform (53)" in out and "unwilling to verify old password" in out, out
    r = run_tool("ldappasswd", *args, "-a", USER_PW, "-s", "Jill-new-pw-9")
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_tenant_administrator_migrates_pre_hashed_passwords(acme: Server) -> None:
    """Pre-hashed values are refused under pwdCheckQuality 2 (the default: their quality
    cannot be checked); a tenant's administrator who migrates users lowers its own tenant's
    policy to 1, as with OpenLDAP's ppolicy, and the imported hashes bind."""
    salt = b"migr8"
    hashed = "{SSHA}" + base64.b64encode(hashlib.sha1(b"Migrated-pw-1" + salt).digest() + salt).decode()
    policy = f"cn=Password Policy,cn=Policies,{ACME}"
    admin_args = ("-H", acme.url, "-x", "-D", ACME_ADMIN, "-w", ACME_PW)
    ldif = (f"dn: cn=migrated,cn=Users,{ACME}\nobjectClass: inetOrgPerson\ncn: migrated\nsn: m\n"
            f"userPassword: {hashed}\n")
    r = run_tool("ldapadd", *admin_args, "-e", "ppolicy", input=ldif)
    out = r.stdout + r.stderr
    assert r.returncode == 19 and "does not accept pre-hashed passwords" in out and "ppolicy: error=5" in out, out

    def quality(n: int) -> None:
        q = run_tool("ldapmodify", *admin_args,
                     input=f"dn: {policy}\nchangetype: modify\nreplace: pwdCheckQuality\npwdCheckQuality: {n}\n")
        assert q.returncode == 0, q.stdout + q.stderr

    quality(1)
    try:
        r = run_tool("ldapadd", *admin_args, input=ldif)
        assert r.returncode == 0, r.stdout + r.stderr
        who = run_tool("ldapwhoami", "-H", acme.url, "-x", "-D", "migrated@acme.example", "-w", "Migrated-pw-1")
        assert who.returncode == 0 and who.stdout.strip() == f"dn:cn=migrated,cn=Users,{ACME}", who.stdout + who.stderr
        # the hash is stored as given (a later password change hashes with the policy's scheme)
        c = conn(acme, ACME_ADMIN, ACME_PW)
        assert c.search(f"cn=migrated,cn=Users,{ACME}", "(objectClass=*)", ldap3.BASE, attributes=["userPassword"])
        assert c.entries[0].userPassword.raw_values == [hashed.encode()]
        # another tenant's policy is not this administrator's to change
        r = run_tool("ldapmodify", *admin_args, input=f"dn: cn=Password Policy,cn=Policies,{BASE}\n"
                     "changetype: modify\nreplace: pwdCheckQuality\npwdCheckQuality: 0\n")
        assert r.returncode in (32, 50), r.stdout + r.stderr
    finally:
        quality(2)


def test_a_tenant_keeps_at_least_one_administrator(acme: Server) -> None:
    """The Administrators group is a groupOfNames (member is required): removing its last
    member is refused, so a tenant cannot lose its last administrator by mistake; adding
    another first, then removing the first, works."""
    ta = conn(acme, ACME_ADMIN, ACME_PW)
    admins = f"cn=Administrators,cn=Groups,{ACME}"
    assert not ta.modify(admins, {"member": [(ldap3.MODIFY_DELETE, [ACME_ADMIN])]})
    assert ta.result["result"] == 65, ta.result  # objectClassViolation, as slapd answers
    deputy = add_user(ta, ACME, "deputy")
    assert ta.modify(admins, {"member": [(ldap3.MODIFY_ADD, [deputy])]}), ta.result
    d = conn(acme, deputy, USER_PW)
    assert d.modify(admins, {"member": [(ldap3.MODIFY_DELETE, [ACME_ADMIN])]}), d.result
    assert d.modify(admins, {"member": [(ldap3.MODIFY_ADD, [ACME_ADMIN])]}), d.result  # and back
    assert d.modify(admins, {"member": [(ldap3.MODIFY_DELETE, [deputy])]}), d.result
