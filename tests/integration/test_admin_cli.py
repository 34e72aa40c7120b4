"""`lightwave tenant ...` and `lightwave dir ...` as an operator runs them: the real console
script against one real server, results read back with ldap3 and ldap-utils."""
from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator

import ldap3
import pytest

from lightwave.cli import main
from tests.conftest import ADMIN, ADMIN_PW, BASE, LIGHTWAVE, Server, free_port, make_server, run_tool

USERS = f"cn=Users,{BASE}"
GROUPS = f"cn=Groups,{BASE}"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = make_server(tmp_path_factory, "admincli")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def conn(srv: Server) -> Iterator[ldap3.Connection]:
    c = ldap3.Connection(ldap3.Server(srv.url, get_info=ldap3.NONE), ADMIN, ADMIN_PW, auto_bind=True,
                         raise_exceptions=False)
    yield c
    c.unbind()


def lw(srv: Server | None, *args: str, env: dict[str, str] | None = None,
       password: str | None = ADMIN_PW) -> subprocess.CompletedProcess[str]:
    """Run `lightwave ARGS --server URL` with the admin password in the environment, stdin not a tty."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTWAVE_", "LDAPTLS_"))}
    if password is not None:
        e["LIGHTWAVE_PASSWORD"] = password
    e.update(env or {})
    cmd = [LIGHTWAVE, *args] + (["--server", srv.url] if srv is not None else [])
    return subprocess.run(cmd, capture_output=True, text=True, env=e, stdin=subprocess.DEVNULL, timeout=60)


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr}"
    assert "Traceback" not in r.stderr
    return r.stdout


def failed(r: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The one-line message of a failed command."""
    assert r.returncode == code, f"exit {r.returncode}: {r.stdout} {r.stderr}"
    assert "Traceback" not in r.stderr and r.stdout == ""
    if code == 1:
        assert r.stderr.startswith("lightwave: ") and r.stderr.count("\n") == 1, r.stderr
    return r.stderr


def entry(conn: ldap3.Connection, dn: str, *attrs: str) -> dict[str, list[str]] | None:
    conn.search(dn, "(objectClass=*)", search_scope="BASE", attributes=list(attrs) or ["*"])
    if conn.result["result"] == 32:
        return None
    assert conn.result["result"] == 0, conn.result
    return {k: [v.decode() for v in vs] for k, vs in conn.response[0]["raw_attributes"].items() if vs}


def whoami(srv: Server, name: str, password: str) -> subprocess.CompletedProcess[str]:
    return run_tool("ldapwhoami", "-H", srv.url, "-x", "-D", name, "-w", password)


def secret(tmp_path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text + "\n")
    return str(p)


# ---------------------------------------------------------------------- users

def test_user_lifecycle(srv: Server, conn: ldap3.Connection, tmp_path) -> None:
    out = ok(lw(srv, "dir", "user", "add", "alice", "--first", "Alice", "--last", "Liddell",
                "--email", "alice@example.com"))
    dn = f"cn=alice,{USERS}"
    assert f"created user alice in lightwave.local: {dn}" in out
    assert "no password yet" in out
    e = entry(conn, dn)
    assert e is not None
    assert set(e["objectClass"]) == {"top", "person", "organizationalPerson", "inetOrgPerson", "lightwaveUser"}
    assert (e["uid"], e["cn"], e["sn"], e["givenName"]) == (["alice"], ["alice"], ["Liddell"], ["Alice"])
    assert (e["mail"], e["displayName"]) == (["alice@example.com"], ["Alice Liddell"])
    assert e["userPrincipalName"] == ["alice@lightwave.local"] and "userPassword" not in e

    # a password from a file: alice binds by UPN with ldap-utils
    ok(lw(srv, "dir", "user", "set-password", "alice", "--new-password-file", secret(tmp_path, "a.pw", "Alice-pw-1")))
    r = whoami(srv, "alice@lightwave.local", "Alice-pw-1")
    assert r.returncode == 0 and f"dn:{dn}" in r.stdout, r.stderr
    # no file and no terminal: the server generates one, printed once
    got = json.loads(ok(lw(srv, "dir", "user", "set-password", "alice", "--json")))
    assert got["dn"] == dn and len(got["password"]) >= 8
    assert whoami(srv, "alice@lightwave.local", got["password"]).returncode == 0
    assert whoami(srv, "alice@lightwave.local", "Alice-pw-1").returncode == 49

    shown = json.loads(ok(lw(srv, "dir", "user", "show", "alice", "--json")))
    assert shown["dn"] == dn and shown["attributes"]["uid"] == ["alice"]
    assert "userPassword" not in shown["attributes"]
    assert (shown["passwordSet"], shown["locked"], shown["disabled"]) == (True, False, False)
    text = ok(lw(srv, "dir", "user", "show", "alice"))
    assert f"dn: {dn}" in text and "mail: alice@example.com" in text
    assert "status: enabled, not locked, password set" in text

    listing = ok(lw(srv, "dir", "user", "list"))
    assert listing.splitlines()[0].split()[:2] == ["NAME", "PRINCIPAL"]
    assert any(ln.split()[:2] == ["alice", "alice@lightwave.local"] for ln in listing.splitlines())
    arr = json.loads(ok(lw(srv, "dir", "user", "list", "--json")))
    assert {"name": "alice", "dn": dn} .items() <= next(x for x in arr if x["name"] == "alice").items()
    assert any(x["dn"] == ADMIN for x in arr)

    assert "user alice disabled" in ok(lw(srv, "dir", "user", "disable", "alice"))
    assert entry(conn, dn, "accountDisabled")["accountDisabled"] == ["TRUE"]
    assert "user alice enabled" in ok(lw(srv, "dir", "user", "enable", "alice"))
    assert entry(conn, dn, "accountDisabled")["accountDisabled"] == ["FALSE"]

    # not locked: said so, and it is not a failure
    assert "user alice was not locked" in ok(lw(srv, "dir", "user", "unlock", "alice"))

    assert "deleted user alice" in ok(lw(srv, "dir", "user", "delete", "alice"))
    assert entry(conn, dn) is None
    assert "no user alice in tenant lightwave.local" in failed(lw(srv, "dir", "user", "show", "alice"))
    assert "no user alice in tenant lightwave.local" in failed(
        lw(srv, "dir", "user", "set-password", "alice", "--generate"))


def test_user_add_with_password_and_duplicate(srv: Server, tmp_path) -> None:
    pw = secret(tmp_path, "c.pw", "Carol-pw-12")
    got = json.loads(ok(lw(srv, "dir", "user", "add", "carol", "--new-password-file", pw, "--json")))
    assert got == {"dn": f"cn=carol,{USERS}", "password": None}
    r = whoami(srv, "carol@lightwave.local", "Carol-pw-12")
    assert r.returncode == 0 and f"cn=carol,{USERS}" in r.stdout, r.stderr
    msg = failed(lw(srv, "dir", "user", "add", "carol"))
    assert msg == "lightwave: user carol already exists in lightwave.local\n"
    # a name that needs escaping in a DN
    ok(lw(srv, "dir", "user", "add", "Smith, J"))
    arr = json.loads(ok(lw(srv, "dir", "user", "list", "--json")))
    assert any(x["name"] == "Smith, J" and x["dn"] == f"cn=Smith\\, J,{USERS}" for x in arr)
    ok(lw(srv, "dir", "user", "delete", "Smith, J"))


def test_lockout_unlock_and_disabled_bind(srv: Server, tmp_path) -> None:
    ok(lw(srv, "dir", "user", "add", "locky", "--new-password-file", secret(tmp_path, "l.pw", "Locky-pw-12")))
    for _ in range(10):  # the default policy locks after 5 failures
        bad = ldap3.Connection(ldap3.Server(srv.url, get_info=ldap3.NONE), "locky@lightwave.local", "wrong")
        assert not bad.bind()
        bad.unbind()
    assert whoami(srv, "locky@lightwave.local", "Locky-pw-12").returncode == 49
    shown = json.loads(ok(lw(srv, "dir", "user", "show", "locky", "--json")))
    assert shown["locked"] is True and shown["attributes"].get("pwdAccountLockedTime")
    assert "user locky unlocked" in ok(lw(srv, "dir", "user", "unlock", "locky"))
    assert whoami(srv, "locky@lightwave.local", "Locky-pw-12").returncode == 0
    # a disabled account cannot bind either, until enabled again
    ok(lw(srv, "dir", "user", "disable", "locky"))
    assert whoami(srv, "locky@lightwave.local", "Locky-pw-12").returncode == 49
    ok(lw(srv, "dir", "user", "enable", "locky"))
    assert whoami(srv, "locky@lightwave.local", "Locky-pw-12").returncode == 0


# ---------------------------------------------------------------------- groups

def test_group_commands(srv: Server, conn: ldap3.Connection, tmp_path) -> None:
    ok(lw(srv, "dir", "user", "add", "dave"))
    ok(lw(srv, "dir", "service-account", "add", "builder", "--password-file-out", str(tmp_path / "b.pw")))
    out = ok(lw(srv, "dir", "group", "add", "devs", "--description", "Developers"))
    assert f"created group devs in lightwave.local: cn=devs,{GROUPS}" in out
    ok(lw(srv, "dir", "group", "add", "ops"))
    g = entry(conn, f"cn=devs,{GROUPS}")
    assert set(g["objectClass"]) == {"top", "lightwaveGroup"} and g["description"] == ["Developers"]
    assert "member" not in g  # an empty group

    members = {f"cn=dave,{USERS}", f"cn=ops,{GROUPS}", f"cn=builder,cn=ServiceAccounts,{BASE}", ADMIN}
    ok(lw(srv, "dir", "group", "add-member", "devs", "dave", "ops", "builder", ADMIN))
    assert set(entry(conn, f"cn=devs,{GROUPS}", "member")["member"]) == members
    # already there: skipped, said so, success
    r = lw(srv, "dir", "group", "add-member", "devs", "dave")
    assert "is already a member of group devs" in r.stderr and ok(r) == ""
    # an unknown name changes nothing
    msg = failed(lw(srv, "dir", "group", "add-member", "devs", "mallory", "nobody"))
    assert msg == "lightwave: no user, group, computer or service account named mallory in tenant lightwave.local\n"
    # a name that is both a user and a group needs a DN
    ok(lw(srv, "dir", "user", "add", "twin"))
    ok(lw(srv, "dir", "group", "add", "twin"))
    msg = failed(lw(srv, "dir", "group", "add-member", "devs", "twin"))
    assert "twin is ambiguous in tenant lightwave.local" in msg and "give the DN" in msg
    ok(lw(srv, "dir", "group", "add-member", "devs", f"cn=twin,{GROUPS}"))
    assert f"cn=twin,{GROUPS}" in entry(conn, f"cn=devs,{GROUPS}", "member")["member"]
    # unknown group
    assert "no group nosuch in tenant lightwave.local" in failed(
        lw(srv, "dir", "group", "add-member", "nosuch", "dave"))

    assert "removed" in ok(lw(srv, "dir", "group", "remove-member", "devs", "dave", f"cn=twin,{GROUPS}"))
    assert set(entry(conn, f"cn=devs,{GROUPS}", "member")["member"]) == members - {f"cn=dave,{USERS}"}
    r = lw(srv, "dir", "group", "remove-member", "devs", "dave")
    assert "is not a member of group devs" in r.stderr and r.returncode == 0

    shown = json.loads(ok(lw(srv, "dir", "group", "show", "devs", "--json")))
    assert shown["dn"] == f"cn=devs,{GROUPS}" and len(shown["attributes"]["member"]) == 3
    assert f"member: cn=ops,{GROUPS}" in ok(lw(srv, "dir", "group", "show", "devs"))
    listing = ok(lw(srv, "dir", "group", "list"))
    assert any(ln.split() == ["devs", "3", "Developers"] for ln in listing.splitlines()), listing
    names = [x["name"] for x in json.loads(ok(lw(srv, "dir", "group", "list", "--json")))]
    assert {"Administrators", "devs", "ops", "twin"} <= set(names)

    ok(lw(srv, "dir", "group", "delete", "twin"))
    assert entry(conn, f"cn=twin,{GROUPS}") is None
    assert "no group twin in tenant lightwave.local" in failed(lw(srv, "dir", "group", "delete", "twin"))


def test_member_of_is_shown(srv: Server) -> None:
    ok(lw(srv, "dir", "user", "add", "erin"))
    ok(lw(srv, "dir", "group", "add", "readers"))
    ok(lw(srv, "dir", "group", "add", "staff"))
    ok(lw(srv, "dir", "group", "add-member", "readers", "erin"))
    ok(lw(srv, "dir", "group", "add-member", "staff", "readers"))
    user = json.loads(ok(lw(srv, "dir", "user", "show", "erin", "--json")))
    assert f"cn=readers,{GROUPS}" in user["attributes"]["memberOf"]
    group = json.loads(ok(lw(srv, "dir", "group", "show", "readers", "--json")))
    assert group["attributes"]["memberOf"] == [f"cn=staff,{GROUPS}"]
    assert f"memberOf: cn=staff,{GROUPS}" in ok(lw(srv, "dir", "group", "show", "readers"))


# ---------------------------------------------------------------------- computers and service accounts

def test_computer_commands(srv: Server, conn: ldap3.Connection, tmp_path) -> None:
    out_file = tmp_path / "web01.pw"
    got = json.loads(ok(lw(srv, "dir", "computer", "add", "Web01.Example.com", "--password-file-out", str(out_file),
                           "--json")))
    dn = f"cn=web01.example.com,cn=Computers,{BASE}"
    assert got == {"dn": dn, "password": None, "passwordFile": str(out_file)}
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    password = out_file.read_text().strip()
    e = entry(conn, dn)
    assert set(e["objectClass"]) == {"top", "device", "lightwaveComputer"}
    assert e["dNSHostName"] == ["web01.example.com"] and e["servicePrincipalName"] == ["host/web01.example.com"]
    assert e["userPrincipalName"] == ["web01$@lightwave.local"]
    r = whoami(srv, "web01$@lightwave.local", password)
    assert r.returncode == 0 and dn in r.stdout, r.stderr

    # the same first label in another domain would share the principal name
    msg = failed(lw(srv, "dir", "computer", "add", "web01.other.example", "--password-file-out",
                    str(tmp_path / "x.pw")))
    assert f"principal name web01$@lightwave.local is already used by {dn}" in msg
    assert not (tmp_path / "x.pw").exists()
    assert "computer web01.example.com already exists" in failed(lw(srv, "dir", "computer", "add", "web01.example.com"))
    assert "invalid host name" in failed(lw(srv, "dir", "computer", "add", "bad_host!"))

    out = ok(lw(srv, "dir", "computer", "add", "db1.example.com"))
    assert "created computer db1.example.com" in out
    pw_line = [ln for ln in out.splitlines() if ln.startswith("password: ")]
    assert pw_line, out
    r = whoami(srv, f"cn=db1.example.com,cn=Computers,{BASE}", pw_line[0].split(": ", 1)[1])
    assert r.returncode == 0, r.stderr

    listing = ok(lw(srv, "dir", "computer", "list"))
    assert any(ln.split()[:2] == ["web01.example.com", "web01$@lightwave.local"] for ln in listing.splitlines())
    assert {x["name"] for x in json.loads(ok(lw(srv, "dir", "computer", "list", "--json")))} >= {
        "web01.example.com", "db1.example.com"}
    shown = json.loads(ok(lw(srv, "dir", "computer", "show", "web01.example.com", "--json")))
    assert shown["dn"] == dn and "userPassword" not in shown["attributes"] and shown["passwordSet"] is True
    ok(lw(srv, "dir", "computer", "delete", "db1.example.com"))
    assert entry(conn, f"cn=db1.example.com,cn=Computers,{BASE}") is None


def test_service_account_commands(srv: Server, conn: ldap3.Connection) -> None:
    got = json.loads(ok(lw(srv, "dir", "service-account", "add", "backup", "--description", "nightly", "--json")))
    dn = f"cn=backup,cn=ServiceAccounts,{BASE}"
    assert got["dn"] == dn and len(got["password"]) >= 16
    e = entry(conn, dn)
    assert set(e["objectClass"]) == {"top", "applicationProcess", "lightwaveServiceAccount"}
    assert e["userPrincipalName"] == ["backup@lightwave.local"] and e["description"] == ["nightly"]
    r = whoami(srv, "backup@lightwave.local", got["password"])
    assert r.returncode == 0 and dn in r.stdout, r.stderr
    # a user of the same name would take the same principal name
    assert f"principal name backup@lightwave.local is already used by {dn}" in failed(
        lw(srv, "dir", "user", "add", "backup"))
    assert "service account backup already exists in lightwave.local" in failed(
        lw(srv, "dir", "service-account", "add", "backup"))
    listing = ok(lw(srv, "dir", "service-account", "list"))
    assert any(ln.split() == ["backup", "backup@lightwave.local", "nightly"] for ln in listing.splitlines())
    assert "description: nightly" in ok(lw(srv, "dir", "service-account", "show", "backup"))
    ok(lw(srv, "dir", "service-account", "delete", "backup"))
    assert entry(conn, dn) is None


# ---------------------------------------------------------------------- connection, credentials, tenants

def test_connection_and_credential_errors(srv: Server, tmp_path) -> None:
    msg = failed(lw(srv, "dir", "user", "list", password="wrong-password"))
    assert msg == f"lightwave: bind as {ADMIN} failed: invalid credentials (wrong user or password)\n"
    port = free_port()
    msg = failed(lw(None, "dir", "user", "list", "--server", f"ldap://127.0.0.1:{port}"))
    assert msg == f"lightwave: cannot reach ldap://127.0.0.1:{port}: connection refused (is the server running?)\n"
    assert "no password" in failed(lw(srv, "dir", "group", "list", password=None))
    # --password-file and --user on any subcommand
    pw = secret(tmp_path, "admin.pw", ADMIN_PW)
    assert "Administrators" in ok(lw(srv, "dir", "group", "list", "--password-file", pw, password=None))
    ok(lw(srv, "dir", "user", "add", "frank", "--new-password-file", secret(tmp_path, "f.pw", "Frank-pw-12")))
    msg = failed(lw(srv, "dir", "user", "add", "gina", "--user", "frank@lightwave.local", "--password-file",
                    str(tmp_path / "f.pw"), password=None))
    assert msg.startswith("lightwave: permission denied (insufficientAccessRights): ")
    # LDAPS: the self-signed certificate is refused unless told otherwise, as with ldapsearch
    assert "TLS certificate check failed" in failed(lw(None, "dir", "group", "list", "--server", srv.ldaps_url))
    assert "Administrators" in ok(lw(None, "dir", "group", "list", "--server", srv.ldaps_url,
                                     env={"LDAPTLS_REQCERT": "never"}))
    tls_ca = os.path.join(srv.data_dir, "tls", "server.crt")
    assert "Administrators" in ok(lw(None, "dir", "group", "list", "--server",
                                     f"ldaps://localhost:{srv.ldaps_port}", env={"LDAPTLS_CACERT": tls_ca}))


def test_tenant_option_and_usage_errors(srv: Server) -> None:
    assert failed(lw(srv, "dir", "user", "list", "--tenant", "nope.example")) == \
        "lightwave: no such tenant nope.example\n"
    assert failed(lw(srv, "dir", "user", "add", "x", env={"LIGHTWAVE_TENANT": "nope.example"})) == \
        "lightwave: no such tenant nope.example\n"
    assert "no such tenant nope.example" in failed(lw(srv, "dir", "group", "add-member", "g", "x",
                                                      "--tenant", "nope.example"))
    # the default tenant by name, through the environment too
    assert "Administrator" in ok(lw(srv, "dir", "user", "list", env={"LIGHTWAVE_TENANT": "lightwave.local"}))
    assert "invalid tenant name" in failed(lw(srv, "dir", "user", "list", "--tenant", "a,b"), code=2)
    assert "required" in failed(lw(srv, "dir", "user", "add"), code=2)
    assert "required" in failed(lw(None, "dir", "user"), code=2)
    assert failed(lw(None, "dir", "user", "frobnicate"), code=2)


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    leaves = [("tenant", a) for a in ("create", "list", "show", "delete")]
    leaves += [("dir", "user", a) for a in ("add", "show", "list", "set-password", "delete", "enable", "disable",
                                            "unlock")]
    leaves += [("dir", "group", a) for a in ("add", "add-member", "remove-member", "show", "list", "delete")]
    leaves += [("dir", k, a) for k in ("computer", "service-account") for a in ("add", "list", "show", "delete")]
    for path in [("tenant",), ("dir",), *[("dir", k) for k in ("user", "group", "computer", "service-account")],
                 *leaves]:
        with pytest.raises(SystemExit) as exc:
            main([*path, "--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert "example" in text and f"lightwave {' '.join(path)}" in text, path
        if path in leaves:
            assert "--server URL" in text and "--password-file FILE" in text and "--json" in text, path
            assert ("--tenant NAME" in text) == (path[0] == "dir"), path
    r = subprocess.run([LIGHTWAVE, "dir", "user", "add", "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "lightwave dir user add alice" in r.stdout


def test_tenant_lifecycle(srv: Server, conn: ldap3.Connection, tmp_path) -> None:
    pw = secret(tmp_path, "acme.pw", "Acme-admin-pw-1")
    out = ok(lw(srv, "tenant", "create", "acme.example", "--admin-password-file", pw))
    assert out.strip() == "created tenant acme.example: dc=acme,dc=example"
    r = whoami(srv, "administrator@acme.example", "Acme-admin-pw-1")
    assert r.returncode == 0 and "dc=acme,dc=example" in r.stdout, r.stderr

    tenants = json.loads(ok(lw(srv, "tenant", "list", "--json")))
    by_name = {t["name"]: t for t in tenants}
    assert by_name["acme.example"]["dn"] == "dc=acme,dc=example" and by_name["acme.example"]["created"]
    assert "lightwave.local" in by_name
    listing = ok(lw(srv, "tenant", "list"))
    assert any(ln.split()[:2] == ["acme.example", "dc=acme,dc=example"] for ln in listing.splitlines())

    # dir commands in the new tenant
    ok(lw(srv, "dir", "user", "add", "zed", "--tenant", "acme.example"))
    assert entry(conn, "cn=zed,cn=Users,dc=acme,dc=example")["userPrincipalName"] == ["zed@acme.example"]
    shown = json.loads(ok(lw(srv, "tenant", "show", "acme.example", "--json")))
    assert shown["dn"] == "dc=acme,dc=example" and shown["counts"]["users"] >= 2
    assert shown["passwordPolicy"] is not None and "pwdMinLength" in shown["passwordPolicy"]
    assert "password policy (cn=Password Policy,cn=Policies,dc=acme,dc=example)" in ok(
        lw(srv, "tenant", "show", "acme.example"))

    msg = failed(lw(srv, "tenant", "delete", "acme.example"))
    assert msg.startswith("lightwave: tenant acme.example is not empty (") and msg.endswith("entries); use --force\n")
    assert "deleted tenant acme.example" in ok(lw(srv, "tenant", "delete", "acme.example", "--force"))
    assert failed(lw(srv, "tenant", "show", "acme.example")) == "lightwave: no such tenant acme.example\n"
    assert entry(conn, "dc=acme,dc=example") is None


def test_tenant_errors(srv: Server, tmp_path) -> None:
    pw = secret(tmp_path, "t.pw", "Tenant-admin-pw-1")
    ok(lw(srv, "tenant", "create", "dup.example", "--admin-password-file", pw, "--json"))
    assert failed(lw(srv, "tenant", "create", "dup.example", "--admin-password-file", pw)) == \
        "lightwave: tenant dup.example already exists\n"
    weak = secret(tmp_path, "weak.pw", "a")
    assert "refused by the password policy" in failed(
        lw(srv, "tenant", "create", "weak.example", "--admin-password-file", weak))
    assert "invalid tenant name" in failed(lw(srv, "tenant", "create", "bad_name.example", "--admin-password-file", pw))
    # a tenant's own administrator is not a forest administrator
    msg = failed(lw(srv, "tenant", "create", "other.example", "--admin-password-file", pw,
                    "--user", "administrator@dup.example", "--password-file", pw, password=None))
    assert msg.startswith("lightwave: permission denied (insufficientAccessRights)")
    # an empty tenant goes without --force
    ok(lw(srv, "tenant", "delete", "dup.example"))
    assert failed(lw(srv, "tenant", "delete", "dup.example")) == "lightwave: no such tenant dup.example\n"


def test_tenant_show_default_and_missing(srv: Server) -> None:
    shown = json.loads(ok(lw(srv, "tenant", "show", "lightwave.local", "--json")))
    assert shown["dn"] == BASE and shown["counts"]["users"] >= 1 and shown["counts"]["groups"] >= 1
    assert shown["attributes"]["entryUUID"]
    text = ok(lw(srv, "tenant", "show", "lightwave.local"))
    assert text.startswith("tenant: lightwave.local\n") and f"dn: {BASE}" in text
    assert failed(lw(srv, "tenant", "show", "nope.example")) == "lightwave: no such tenant nope.example\n"
    assert "--admin-password-file" in failed(lw(srv, "tenant", "create", "x.example"), code=2)
