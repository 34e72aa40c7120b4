"""End-to-end with OpenLDAP's own client tools (ldap-utils) against `lightwave up`.

The tools' exit status is the LDAP result code, so the assertions check exact codes.
"""
from __future__ import annotations

import re

import pytest

from tests.conftest import ADMIN, ADMIN_PW, BASE, Server, run_tool

PEOPLE = f"ou=people,{BASE}"


def auth(srv: Server, *, url: str | None = None, who: str = ADMIN, pw: str = ADMIN_PW) -> list[str]:
    return ["-H", url or srv.url, "-x", "-D", who, "-w", pw]


def entries(ldif_text: str) -> dict[str, dict[str, list[str]]]:
    """Parse ldapsearch -LLL output (no folding: -o ldif-wrap=no) into {dn: {attr: [values]}}."""
    out: dict[str, dict[str, list[str]]] = {}
    cur: dict[str, list[str]] | None = None
    for line in ldif_text.splitlines():
        if not line.strip():
            cur = None
            continue
        k, _, v = line.partition(": ")
        if k.endswith(":"):  # base64 value
            k = k[:-1]
        if k == "dn":
            cur = out.setdefault(v, {})
        elif cur is not None:
            cur.setdefault(k.lower(), []).append(v)
    return out


def search(srv: Server, *args: str, who: str = ADMIN, pw: str = ADMIN_PW, url: str | None = None):
    return run_tool("ldapsearch", *auth(srv, url=url, who=who, pw=pw), "-LLL", "-o", "ldif-wrap=no", *args)


@pytest.fixture(scope="module")
def people(server: Server) -> Server:
    ldif = f"""dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

""" + "".join(f"""dn: uid=user{i},{PEOPLE}
objectClass: inetOrgPerson
objectClass: posixAccount
uid: user{i}
cn: User Number{i}
sn: Number{i}
givenName: User
mail: user{i}@example.com
uidNumber: {1000 + i}
gidNumber: 100
homeDirectory: /home/user{i}
userPassword: pw-user{i}

""" for i in range(1, 8))
    r = run_tool("ldapadd", "-ZZ", *auth(server), input=ldif)
    assert r.returncode == 0, r.stderr
    return server


# ------------------------------------------------------------------ root DSE and schema

def test_root_dse_anonymous(server: Server) -> None:
    r = run_tool("ldapsearch", "-H", server.url, "-x", "-LLL", "-b", "", "-s", "base", "+")
    assert r.returncode == 0, r.stderr
    e = entries(r.stdout)[""]
    assert BASE in e["namingcontexts"]
    assert "3" in e["supportedldapversion"]
    assert "1.2.840.113556.1.4.319" in e["supportedcontrol"]  # paged results
    assert "1.3.6.1.4.1.1466.20037" in e["supportedextension"]  # StartTLS
    assert "1.3.6.1.4.1.4203.1.11.3" in e["supportedextension"]  # Who am I
    assert {"EXTERNAL", "PLAIN"} <= set(e["supportedsaslmechanisms"])
    assert e["subschemasubentry"] == ["cn=Subschema"]
    assert e["vendorname"]


def test_root_dse_without_plus_has_only_user_attrs(server: Server) -> None:
    r = run_tool("ldapsearch", "-H", server.url, "-x", "-LLL", "-b", "", "-s", "base")
    assert r.returncode == 0
    e = entries(r.stdout)[""]
    assert "objectclass" in e and "namingcontexts" not in e


def test_subschema_readable_anonymously(server: Server) -> None:
    r = run_tool("ldapsearch", "-H", server.url, "-x", "-LLL", "-o", "ldif-wrap=no", "-b", "cn=Subschema",
                 "-s", "base", "(objectClass=subschema)", "objectClasses", "attributeTypes")
    assert r.returncode == 0, r.stderr
    e = entries(r.stdout)["cn=Subschema"]
    assert any("'inetOrgPerson'" in v for v in e["objectclasses"])
    assert any("NAME 'uid'" in v or "'uid'" in v for v in e["attributetypes"])


def test_anonymous_sees_no_entries(server: Server) -> None:
    r = run_tool("ldapsearch", "-H", server.url, "-x", "-LLL", "-b", BASE, "(objectClass=*)")
    assert r.returncode in (0, 32), r.stderr
    assert "dn:" not in r.stdout


# ------------------------------------------------------------------ binds and who am I

def test_whoami_dn_and_upn(server: Server) -> None:
    r = run_tool("ldapwhoami", *auth(server))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().lower() == f"dn:{ADMIN}".lower()
    r = run_tool("ldapwhoami", "-H", server.url, "-x", "-D", "administrator@lightwave.local", "-w", ADMIN_PW)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().lower() == f"dn:{ADMIN}".lower()


def test_whoami_anonymous_and_exop(server: Server) -> None:
    r = run_tool("ldapwhoami", "-H", server.url, "-x")
    assert r.returncode == 0 and r.stdout.strip() == "anonymous"
    r = run_tool("ldapexop", *auth(server), "whoami")
    assert r.returncode == 0, r.stderr
    assert ADMIN.lower() in r.stdout.lower()


@pytest.mark.parametrize("who", [ADMIN, f"cn=Nobody,cn=Users,{BASE}", "nobody@lightwave.local"])
def test_bad_password_is_invalid_credentials(server: Server, who: str) -> None:
    r = run_tool("ldapwhoami", "-H", server.url, "-x", "-D", who, "-w", "wrong")
    assert r.returncode == 49, (r.stdout, r.stderr)


def test_dn_without_password_is_refused(server: Server) -> None:
    r = run_tool("ldapwhoami", "-H", server.url, "-x", "-D", ADMIN, "-w", "")
    assert r.returncode == 53, r.stderr


# ------------------------------------------------------------------ search

def test_admin_search_tree(server: Server) -> None:
    r = search(server, "-b", BASE, "(objectClass=*)", "dn")
    assert r.returncode == 0, r.stderr
    dns = {d.lower() for d in entries(r.stdout)}
    for c in ("Users", "Groups", "Computers", "ServiceAccounts"):
        assert f"cn={c},{BASE}".lower() in dns
    assert ADMIN.lower() in dns


def test_paged_search_over_ldaps(people: Server) -> None:
    r = search(people, "-b", PEOPLE, "-E", "pr=2/noprompt", "(uid=*)", "uid", url=people.ldaps_url)
    assert r.returncode == 0, r.stderr
    uids = sorted(v for e in entries(r.stdout).values() for v in e.get("uid", []))
    assert uids == [f"user{i}" for i in range(1, 8)]


def test_filters(people: Server) -> None:
    def dns(f: str) -> set[str]:
        r = search(people, "-b", PEOPLE, f, "1.1")
        assert r.returncode == 0, (f, r.stderr)
        return {d.split(",")[0] for d in entries(r.stdout)}

    assert dns("(uid=user3)") == {"uid=user3"}
    assert dns("(UID=USER3)") == {"uid=user3"}
    assert dns("(&(objectClass=posixAccount)(|(uid=user1)(uid=user2)))") == {"uid=user1", "uid=user2"}
    assert dns("(&(uid=user*)(!(uid=user1)))") == {f"uid=user{i}" for i in range(2, 8)}
    assert dns("(cn=*Number5)") == {"uid=user5"}
    assert dns("(uidNumber>=1006)") == {"uid=user6", "uid=user7"}
    assert dns("(uidNumber<=1001)") == {"uid=user1"}
    assert dns("(mail=user4@EXAMPLE.com)") == {"uid=user4"}
    assert dns("(cn:caseExactMatch:=User Number2)") == {"uid=user2"}
    assert dns("(cn:caseExactMatch:=user number2)") == set()
    assert dns("(ou:dn:=people)") >= {f"uid=user{i}" for i in range(1, 8)}
    assert dns("(uidNumber:1.2.840.113556.1.4.803:=1)") == {"uid=user1", "uid=user3", "uid=user5", "uid=user7"}
    assert dns("(nosuchattr=x)") == set()
    assert dns("(!(nosuchattr=x))") == set()  # Undefined stays Undefined under NOT


def test_scopes(people: Server) -> None:
    r = search(people, "-b", PEOPLE, "-s", "base", "(objectClass=*)", "1.1")
    assert list(entries(r.stdout)) == [PEOPLE]
    r = search(people, "-b", PEOPLE, "-s", "one", "(objectClass=*)", "1.1")
    assert len(entries(r.stdout)) == 7
    r = search(people, "-b", PEOPLE, "-s", "children", "(objectClass=*)", "1.1")
    assert len(entries(r.stdout)) == 7 and PEOPLE not in entries(r.stdout)


def test_size_limit(people: Server) -> None:
    r = search(people, "-b", PEOPLE, "-z", "3", "(uid=*)", "1.1")
    assert r.returncode == 4, r.stderr
    assert len(entries(r.stdout)) == 3


def test_attribute_selection(people: Server) -> None:
    dn = f"uid=user1,{PEOPLE}"
    r = search(people, "-b", dn, "-s", "base", "(objectClass=*)", "+")
    e = entries(r.stdout)[dn]
    assert "uid" not in e
    for a in ("entryuuid", "createtimestamp", "modifytimestamp", "creatorsname", "modifiersname",
              "entrydn", "hassubordinates", "numsubordinates", "subschemasubentry", "usncreated", "usnchanged"):
        assert a in e, a
    assert e["hassubordinates"] == ["FALSE"]
    assert e["creatorsname"][0].lower() == ADMIN.lower()
    r = search(people, "-b", dn, "-s", "base", "(objectClass=*)", "*", "entryUUID")
    e = entries(r.stdout)[dn]
    assert "uid" in e and "entryuuid" in e and "createtimestamp" not in e
    r = search(people, "-A", "-b", dn, "-s", "base", "(objectClass=*)", "mail")
    assert "mail:" in r.stdout or r.stdout.count("mail") == 1
    r = search(people, "-b", PEOPLE, "-s", "base", "(objectClass=*)", "numSubordinates")
    assert entries(r.stdout)[PEOPLE]["numsubordinates"] == ["7"]


def test_server_side_sort(people: Server) -> None:
    r = search(people, "-b", PEOPLE, "-E", "sss=-uidNumber", "(uid=*)", "uidNumber")
    assert r.returncode == 0, r.stderr
    nums = [int(v) for e in entries(r.stdout).values() for v in e["uidnumber"]]
    assert nums == sorted(nums, reverse=True) and len(nums) == 7


def test_unknown_critical_control(server: Server) -> None:
    r = search(server, "-b", BASE, "-e", "!1.2.3.4.5", "(objectClass=*)")
    assert r.returncode == 12, r.stderr
    r = search(server, "-b", BASE, "-s", "base", "-e", "1.2.3.4.5", "(objectClass=*)")
    assert r.returncode == 0, r.stderr


def test_no_such_object_with_matched_dn(server: Server) -> None:
    r = search(server, "-b", f"cn=x,cn=y,cn=Users,{BASE}", "(objectClass=*)")
    assert r.returncode == 32
    assert f"cn=Users,{BASE}".lower() in r.stdout.lower() + r.stderr.lower()


# ------------------------------------------------------------------ compare

def test_compare(people: Server) -> None:
    dn = f"uid=user2,{PEOPLE}"
    r = run_tool("ldapcompare", *auth(people), dn, "sn:Number2")
    assert r.returncode == 6, r.stderr  # compareTrue
    r = run_tool("ldapcompare", *auth(people), dn, "sn:number2")
    assert r.returncode == 6
    r = run_tool("ldapcompare", *auth(people), dn, "sn:Other")
    assert r.returncode == 5  # compareFalse
    r = run_tool("ldapcompare", *auth(people), dn, "description:x")
    assert r.returncode == 16  # noSuchAttribute
    r = run_tool("ldapcompare", *auth(people), f"uid=nobody,{PEOPLE}", "sn:x")
    assert r.returncode == 32


# ------------------------------------------------------------------ modify

def modify(srv: Server, ldif: str, *extra: str, who: str = ADMIN, pw: str = ADMIN_PW):
    return run_tool("ldapmodify", *auth(srv, who=who, pw=pw), *extra, input=ldif)


def test_modify_operations_and_codes(people: Server) -> None:
    dn = f"uid=user3,{PEOPLE}"
    ok = modify(people, f"dn: {dn}\nchangetype: modify\nreplace: description\ndescription: one\n-\n"
                        f"add: mail\nmail: second@example.com\n-\nincrement: uidNumber\nuidNumber: 10\n")
    assert ok.returncode == 0, ok.stderr
    e = entries(search(people, "-b", dn, "-s", "base", "(objectClass=*)").stdout)[dn]
    assert e["description"] == ["one"]
    assert sorted(e["mail"]) == ["second@example.com", "user3@example.com"]
    assert e["uidnumber"] == ["1013"]
    r = modify(people, f"dn: {dn}\nchangetype: modify\nadd: mail\nmail: SECOND@example.com\n")
    assert r.returncode == 20, r.stderr  # attributeOrValueExists (caseIgnore)
    r = modify(people, f"dn: {dn}\nchangetype: modify\ndelete: mail\nmail: none@example.com\n")
    assert r.returncode == 16, r.stderr  # noSuchAttribute
    r = modify(people, f"dn: {dn}\nchangetype: modify\nreplace: uidNumber\nuidNumber: abc\n")
    assert r.returncode == 21, r.stderr  # invalidAttributeSyntax
    r = modify(people, f"dn: {dn}\nchangetype: modify\nadd: uidNumber\nuidNumber: 5\n")
    assert r.returncode in (19, 65), r.stderr  # single-valued
    r = modify(people, f"dn: {dn}\nchangetype: modify\ndelete: sn\n")
    assert r.returncode == 65, r.stderr  # objectClassViolation: sn is MUST
    r = modify(people, f"dn: {dn}\nchangetype: modify\nadd: nosuchattr\nnosuchattr: x\n")
    assert r.returncode == 17, r.stderr
    r = modify(people, f"dn: {dn}\nchangetype: modify\nreplace: entryUUID\nentryUUID: 7c8b9f2e-0000-0000-0000-000000000000\n")
    assert r.returncode == 19, r.stderr  # constraintViolation: no user modification
    r = modify(people, f"dn: {dn}\nchangetype: modify\ndelete: uid\n")
    assert r.returncode == 64, r.stderr  # namingViolation, as slapd
    r = modify(people, f"dn: {dn}\nchangetype: modify\nincrement: sn\nsn: 1\n")
    assert r.returncode == 19, r.stderr  # not an integer attribute
    # nothing of the failed modifies was applied
    e = entries(search(people, "-b", dn, "-s", "base", "(objectClass=*)").stdout)[dn]
    assert e["uidnumber"] == ["1013"] and "nosuchattr" not in e and e["sn"] == ["Number3"]


def test_assertion_and_read_controls(people: Server) -> None:
    dn = f"uid=user4,{PEOPLE}"
    r = modify(people, f"dn: {dn}\nchangetype: modify\nreplace: description\ndescription: x\n",
               "-e", "assert=(sn=wrong)")
    assert r.returncode == 122, r.stderr
    r = modify(people, f"dn: {dn}\nchangetype: modify\nreplace: description\ndescription: after\n",
               "-e", "assert=(sn=Number4)", "-e", "preread=sn", "-e", "postread=description")
    assert r.returncode == 0, r.stderr
    assert "Number4" in r.stdout and "after" in r.stdout


def test_add_errors(people: Server) -> None:
    r = run_tool("ldapadd", *auth(people), input=f"dn: uid=user1,{PEOPLE}\nobjectClass: account\nuid: user1\n")
    assert r.returncode == 68, r.stderr  # entryAlreadyExists
    r = run_tool("ldapadd", *auth(people), input=f"dn: uid=x,ou=missing,{BASE}\nobjectClass: account\nuid: x\n")
    assert r.returncode == 32, r.stderr
    r = run_tool("ldapadd", *auth(people), input=f"dn: uid=x,{PEOPLE}\nobjectClass: inetOrgPerson\nuid: x\ncn: x\n")
    assert r.returncode == 65, r.stderr  # sn missing
    # as slapd: the naming value is added to the entry
    r = run_tool("ldapadd", *auth(people), input=f"dn: uid=named,{PEOPLE}\nobjectClass: account\nuid: other\n")
    assert r.returncode == 0, r.stderr
    e = entries(search(people, "-b", f"uid=named,{PEOPLE}", "-s", "base", "(objectClass=*)", "uid").stdout)
    assert sorted(e[f"uid=named,{PEOPLE}"]["uid"]) == ["named", "other"]
    r = run_tool("ldapadd", *auth(people), input=f"dn: uid=x,{PEOPLE}\nobjectClass: nosuchclass\nuid: x\n")
    assert r.returncode in (21, 65), r.stderr
    r = run_tool("ldapadd", *auth(people), input="dn: bogus\nobjectClass: account\nuid: x\n")
    assert r.returncode == 34, r.stderr


# ------------------------------------------------------------------ rename, delete

def test_modrdn_rename_and_move(people: Server) -> None:
    ou2 = f"ou=moved,{BASE}"
    assert run_tool("ldapadd", *auth(people), input=f"dn: {ou2}\nobjectClass: organizationalUnit\nou: moved\n").returncode == 0
    assert run_tool("ldapadd", *auth(people), input=f"dn: uid=ren,{PEOPLE}\nobjectClass: account\nuid: ren\n").returncode == 0
    r = run_tool("ldapmodrdn", *auth(people), "-r", f"uid=ren,{PEOPLE}", "uid=renamed")
    assert r.returncode == 0, r.stderr
    e = entries(search(people, "-b", f"uid=renamed,{PEOPLE}", "-s", "base", "(objectClass=*)").stdout)
    assert e[f"uid=renamed,{PEOPLE}"]["uid"] == ["renamed"]
    r = run_tool("ldapmodrdn", *auth(people), "-s", ou2, f"uid=renamed,{PEOPLE}", "uid=renamed")
    assert r.returncode == 0, r.stderr
    r = search(people, "-b", ou2, "(uid=renamed)", "entryDN")
    assert list(entries(r.stdout)) == [f"uid=renamed,{ou2}"]
    assert search(people, "-b", f"uid=renamed,{PEOPLE}", "(objectClass=*)").returncode == 32
    # rename a subtree: children follow
    r = run_tool("ldapmodrdn", *auth(people), ou2, "ou=moved2")
    assert r.returncode == 0, r.stderr
    r = search(people, "-b", f"ou=moved2,{BASE}", "(uid=renamed)", "1.1")
    assert list(entries(r.stdout)) == [f"uid=renamed,ou=moved2,{BASE}"]
    r = run_tool("ldapmodrdn", *auth(people), f"uid=user1,{PEOPLE}", "uid=user2")
    assert r.returncode == 68


def test_delete(people: Server) -> None:
    r = run_tool("ldapdelete", *auth(people), PEOPLE)
    assert r.returncode == 66, r.stderr  # notAllowedOnNonLeaf
    assert run_tool("ldapadd", *auth(people), input=f"dn: uid=gone,{PEOPLE}\nobjectClass: account\nuid: gone\n").returncode == 0
    r = run_tool("ldapdelete", *auth(people), f"uid=gone,{PEOPLE}")
    assert r.returncode == 0, r.stderr
    assert search(people, "-b", f"uid=gone,{PEOPLE}", "(objectClass=*)").returncode == 32
    assert entries(search(people, "-b", PEOPLE, "(uid=gone)").stdout) == {}
    r = run_tool("ldapdelete", *auth(people), f"uid=gone,{PEOPLE}")
    assert r.returncode == 32
    # the name is free again
    assert run_tool("ldapadd", *auth(people), input=f"dn: uid=gone,{PEOPLE}\nobjectClass: account\nuid: gone\n").returncode == 0


# ------------------------------------------------------------------ users, passwords, access

def test_user_access_and_passwords(people: Server) -> None:
    dn = f"uid=user5,{PEOPLE}"
    # a user reads its naming context but never password hashes
    r = search(people, "-b", PEOPLE, "(uid=user6)", "*", who=dn, pw="pw-user5")
    assert r.returncode == 0, r.stderr
    e = entries(r.stdout)[f"uid=user6,{PEOPLE}"]
    assert "userpassword" not in e and e["uid"] == ["user6"]
    # the administrator sees the hash, and it is hashed
    r = search(people, "-b", dn, "-s", "base", "(objectClass=*)", "userPassword")
    (pw_b64,) = entries(r.stdout)[dn]["userpassword"]
    import base64
    stored = base64.b64decode(pw_b64) if "{" not in pw_b64 else pw_b64.encode()
    assert stored.startswith(b"{") and b"pw-user5" not in stored
    # filters on secrets disclose nothing to users
    r = search(people, "-b", PEOPLE, "(userPassword=*)", "1.1", who=dn, pw="pw-user5")
    assert entries(r.stdout) == {}
    r = run_tool("ldapcompare", *auth(people, who=dn, pw="pw-user5"), f"uid=user6,{PEOPLE}", "userPassword:pw-user6")
    assert r.returncode == 50
    # writes to others are refused; anonymous writes too
    r = modify(people, f"dn: uid=user6,{PEOPLE}\nchangetype: modify\nreplace: description\ndescription: x\n", who=dn, pw="pw-user5")
    assert r.returncode == 50, r.stderr
    r = run_tool("ldapmodify", "-H", people.url, "-x", input=f"dn: {dn}\nchangetype: modify\nreplace: description\ndescription: x\n")
    assert r.returncode in (8, 50), r.stderr
    # own password with ldappasswd (old password checked), then bind with the new one
    r = run_tool("ldappasswd", *auth(people, who=dn, pw="pw-user5"), "-a", "pw-user5", "-s", "new-pw-5")
    assert r.returncode == 0, r.stderr
    assert run_tool("ldapwhoami", *auth(people, who=dn, pw="new-pw-5")).returncode == 0
    assert run_tool("ldapwhoami", *auth(people, who=dn, pw="pw-user5")).returncode == 49
    # a generated password is returned and works
    r = run_tool("ldappasswd", *auth(people), f"uid=user7,{PEOPLE}")
    assert r.returncode == 0, r.stderr
    m = re.search(r"New password: (\S+)", r.stdout)
    assert m, r.stdout
    assert run_tool("ldapwhoami", *auth(people, who=f"uid=user7,{PEOPLE}", pw=m.group(1))).returncode == 0
    # a user may not set another's password
    r = run_tool("ldappasswd", *auth(people, who=dn, pw="new-pw-5"), "-s", "x", f"uid=user6,{PEOPLE}")
    assert r.returncode != 0 and "Insufficient access (50)" in r.stdout + r.stderr, (r.stdout, r.stderr)


def test_starttls_then_whoami(server: Server) -> None:
    r = run_tool("ldapwhoami", "-ZZ", *auth(server))
    assert r.returncode == 0, r.stderr
    r = run_tool("ldapwhoami", *auth(server, url=server.ldaps_url))
    assert r.returncode == 0, r.stderr
