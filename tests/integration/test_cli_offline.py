"""`lightwave ldif import/export`, `backup`, `restore` as an operator runs them."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import ADMIN, ADMIN_PW, BASE, LIGHTWAVE, make_server, run_tool


def lw(*args: str, env_extra: dict[str, str] | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LIGHTWAVE_ADMIN_PASSWORD=ADMIN_PW, **(env_extra or {}))
    return subprocess.run([LIGHTWAVE, *args], capture_output=True, text=True, env=env, input=input, timeout=300)


def people_ldif(n: int) -> str:
    parts = [f"dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n"]
    for i in range(n):
        parts.append(
            f"dn: uid=p{i},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: p{i}\ncn: Person {i}\n"
            f"sn: P{i}\nmail: p{i}@example.com\nuserPassword: {{SSHA}}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"
            f"description:: w6lsw6h2ZQ==\n\n")
    return "".join(parts)


def test_import_export_roundtrip(tmp_path_factory: pytest.TempPathFactory, tmp_path) -> None:
    srv = make_server(tmp_path_factory, "imp")
    srv.start()  # initialise the data directory, then import while it serves
    try:
        f = tmp_path / "people.ldif"
        f.write_text(people_ldif(300))
        r = lw("ldif", "import", str(f), "--data-dir", srv.data_dir, "--quiet")
        assert r.returncode == 0, r.stderr
        assert "imported 301 entries" in r.stderr
        s = run_tool("ldapsearch", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW, "-LLL",
                     "-b", f"ou=people,{BASE}", "(uid=p299)", "description")
        assert s.returncode == 0 and "dn: uid=p299" in s.stdout
        assert "w6lsw6h2ZQ==" in s.stdout  # non-ASCII value kept byte for byte
        # a bad record is reported with its line, and the exit status says so
        bad = tmp_path / "bad.ldif"
        bad.write_text(f"dn: uid=x,ou=nowhere,{BASE}\nobjectClass: account\nuid: x\n\n")
        r = lw("ldif", "import", str(bad), "--data-dir", srv.data_dir, "--quiet")
        assert r.returncode == 1 and "line 1" in r.stderr and "noSuchObject" in r.stderr
        out = tmp_path / "dump.ldif"
        r = lw("ldif", "export", "--data-dir", srv.data_dir, "-o", str(out))
        assert r.returncode == 0, r.stderr
        dump = out.read_text()
        assert dump.index(f"dn: ou=people,{BASE}") < dump.index(f"dn: uid=p0,ou=people,{BASE}")
        assert "entryUUID:" in dump and "createTimestamp:" in dump
    finally:
        srv.stop()
    # the export loads into a new node and keeps identities (entryUUID) intact
    fresh = make_server(tmp_path_factory, "fresh")
    r = lw("ldif", "import", str(out), "--data-dir", fresh.data_dir, "--quiet")
    assert r.returncode == 0, r.stderr
    r = lw("ldif", "export", "--data-dir", fresh.data_dir, "--base", f"uid=p7,ou=people,{BASE}")
    assert r.returncode == 0, r.stderr
    uuid_line = [ln for ln in r.stdout.splitlines() if ln.startswith("entryUUID:")]
    assert uuid_line and uuid_line[0] in dump


def test_backup_while_serving_and_restore(tmp_path_factory: pytest.TempPathFactory, tmp_path) -> None:
    srv = make_server(tmp_path_factory, "bk")
    srv.start()
    try:
        r = run_tool("ldapadd", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW,
                     input=f"dn: cn=before,cn=Users,{BASE}\nobjectClass: person\ncn: before\nsn: b\n")
        assert r.returncode == 0, r.stderr
        bdir = tmp_path / "backup"
        r = lw("backup", str(bdir), "--data-dir", srv.data_dir)
        assert r.returncode == 0, r.stderr
        assert (bdir / "backup.json").exists()
        r = run_tool("ldapadd", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW,
                     input=f"dn: cn=after,cn=Users,{BASE}\nobjectClass: person\ncn: after\nsn: a\n")
        assert r.returncode == 0
        r = run_tool("ldapsearch", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW, "-LLL", "-b", "",
                     "-s", "base", "+")
    finally:
        srv.stop()
    r = lw("restore", str(bdir), "--data-dir", srv.data_dir)
    assert r.returncode == 1 and "--force" in r.stderr  # refuses to clobber silently
    r = lw("restore", str(bdir), "--data-dir", srv.data_dir, "--force")
    assert r.returncode == 0, r.stderr
    assert "new invocation id" in r.stderr
    srv.start()
    try:
        base = ["-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW, "-LLL", "-b", f"cn=Users,{BASE}"]
        assert "cn=before" in run_tool("ldapsearch", *base, "(cn=before)", "1.1").stdout
        assert "cn=after" not in run_tool("ldapsearch", *base, "(cn=after)", "1.1").stdout
    finally:
        srv.stop()


def test_cli_help_and_errors(tmp_path) -> None:
    r = lw("--help")
    assert r.returncode == 0 and "up" in r.stdout and "ldif" in r.stdout
    r = lw("up", "--help")
    assert "--ldap-port" in r.stdout and "--workers" in r.stdout
    r = lw("ldif", "import", str(tmp_path / "missing.ldif"), "--data-dir", str(tmp_path / "v"))
    assert r.returncode == 1 and "no such file" in r.stderr
    r = lw("ldif", "export", "--data-dir", str(tmp_path / "empty"))
    assert r.returncode == 1 and "no database" in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[node]\nldap_prot = 1\n")
    r = lw("up", "--config", str(bad), "--data-dir", str(tmp_path / "v2"))
    assert r.returncode == 1 and "unknown setting" in r.stderr
    r = lw("up", "--data-dir", str(tmp_path / "v3"), "--ldap-port", "30001", "--ldaps-port", "30001")
    assert r.returncode == 1 and "ldap_port and ldaps_port are both 30001" in r.stderr, r.stderr
    for listen, why in (("192.0.2.1", "Cannot assign requested address"), ("no-such-host.invalid", "")):
        r = lw("up", "--data-dir", str(tmp_path / "v4"), "--listen", listen)
        assert r.returncode == 1 and f"cannot listen on {listen}: {why}" in r.stderr, r.stderr
        assert "--listen takes an address of this machine" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "v4").exists()


def test_online_import_and_export(server, tmp_path) -> None:
    f = tmp_path / "online.ldif"
    f.write_text(f"dn: ou=online,{BASE}\nobjectClass: organizationalUnit\nou: online\n\n"
                 f"dn: uid=on1,ou=online,{BASE}\nobjectClass: account\nuid: on1\n\n")
    pwf = tmp_path / "pw"
    pwf.write_text(ADMIN_PW + "\n")
    r = lw("ldif", "import", str(f), "--server", server.url, "--password-file", str(pwf))
    assert r.returncode == 0, r.stderr
    assert "imported 2 entries" in r.stderr
    r = lw("ldif", "import", str(f), "--server", server.url, "--password-file", str(pwf))
    assert r.returncode == 1 and "entryAlreadyExists" in r.stderr and "line 1" in r.stderr
    r = lw("ldif", "export", "--server", server.url, "--base", f"ou=online,{BASE}",
           env_extra={"LIGHTWAVE_PASSWORD": ADMIN_PW})
    assert r.returncode == 0, r.stderr
    assert f"dn: uid=on1,ou=online,{BASE}" in r.stdout and "entryUUID:" in r.stdout
    bad = tmp_path / "badpw"
    bad.write_text("wrong\n")
    r = lw("ldif", "export", "--server", server.url, "--password-file", str(bad))
    assert r.returncode == 1 and "bind as" in r.stderr and "invalid credentials (wrong user or password)" in r.stderr, r.stderr


def test_a_second_node_or_a_restore_on_a_served_data_directory_is_refused(
        tmp_path_factory: pytest.TempPathFactory, tmp_path) -> None:
    from tests.conftest import free_port

    srv = make_server(tmp_path_factory, "held").start()
    node_entry = ["-b", "cn=Nodes,cn=System", "-s", "one", "labeledURI"]
    try:
        before = run_tool("ldapsearch", "-LLL", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW, *node_entry)
        assert before.returncode == 0 and srv.url in before.stdout, before.stdout + before.stderr
        # the same data directory, other ports: refused before it touches anything
        r = lw("up", "--data-dir", srv.data_dir, "--listen", "127.0.0.1", "--ldap-port", str(free_port()),
               "--ldaps-port", str(free_port()), "--https-port", str(free_port()), "--workers", "1")
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"{srv.data_dir} is in use by lightwave up (pid {srv.proc.pid}): stop it before starting another node" \
            in r.stderr, r.stderr
        after = run_tool("ldapsearch", "-LLL", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW, *node_entry)
        assert after.stdout == before.stdout  # its published URL was not rewritten
        # a backup is fine while it serves; a restore is not
        bk = tmp_path / "bk"
        assert lw("backup", str(bk), "--data-dir", srv.data_dir).returncode == 0
        r = lw("restore", str(bk), "--data-dir", srv.data_dir, "--force")
        assert r.returncode == 1 and "stop it before restoring" in r.stderr, r.stderr
        assert not [n for n in os.listdir(srv.data_dir) if "before-restore" in n]  # nothing moved aside
        assert run_tool("ldapwhoami", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW).returncode == 0
    finally:
        assert srv.stop() == 0
    r = lw("restore", str(bk), "--data-dir", srv.data_dir, "--force")  # stopped: now it may
    assert r.returncode == 0, r.stderr


def test_a_data_directory_keeps_its_domain(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Restarted without --domain, a node serves the forest its data directory holds (it took
    the default domain, and recognised no administrator); with another --domain it is refused."""
    from tests.conftest import Server

    first = make_server(tmp_path_factory, "corp", extra=["--quiet-ops", "--domain", "corp.example.com"]).start()
    assert first.stop() == 0
    again = Server(first.data_dir, first.ldap_port, first.ldaps_port, first.https_port, 1, ["--quiet-ops"]).start()
    try:
        corp_admin = "cn=Administrator,cn=Users,dc=corp,dc=example,dc=com"
        r = run_tool("ldapwhoami", "-H", again.url, "-x", "-D", "administrator@corp.example.com", "-w", ADMIN_PW)
        assert r.returncode == 0 and r.stdout.strip().lower() == f"dn:{corp_admin}".lower(), r.stdout + r.stderr
        # recognised as the forest's administrator: the system context is visible to it
        r = run_tool("ldapsearch", "-LLL", "-H", again.url, "-x", "-D", corp_admin, "-w", ADMIN_PW,
                     "-b", "cn=Nodes,cn=System", "-s", "one", "cn")
        assert r.returncode == 0 and "dn: cn=" in r.stdout, r.stdout + r.stderr
        assert "Admin     cn=Administrator,cn=Users,dc=corp,dc=example,dc=com" in again.log()
    finally:
        assert again.stop() == 0
    r = lw("up", "--data-dir", first.data_dir, "--domain", "lightwave.local", "--ldap-port", str(first.ldap_port),
           "--ldaps-port", str(first.ldaps_port), "--https-port", str(first.https_port))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{first.data_dir} holds the forest of domain corp.example.com, not lightwave.local" in r.stderr, r.stderr
    r = lw("ldif", "export", "--data-dir", first.data_dir)  # offline tools take the data directory's domain too
    assert r.returncode == 0 and "dn: dc=corp,dc=example,dc=com" in r.stdout, r.stderr


def test_an_online_export_lists_parents_first_and_imports(server, tmp_path) -> None:
    """Every entry after its parent, so that the export imports: it wrote each page of 500
    backwards (ldap3's paged generator pops them), children before parents, and an import of
    it failed. Includes an entry moved under a parent created after it."""
    r = run_tool("ldapadd", "-H", server.url, "-x", "-D", ADMIN, "-w", ADMIN_PW, input=(
        f"dn: ou=mvA,{BASE}\nobjectClass: organizationalUnit\nou: mvA\n\n"
        f"dn: cn=mover,ou=mvA,{BASE}\nobjectClass: device\ncn: mover\n\n"
        f"dn: ou=mvZ,{BASE}\nobjectClass: organizationalUnit\nou: mvZ\n\n"))
    assert r.returncode == 0, r.stderr
    r = run_tool("ldapmodrdn", "-H", server.url, "-x", "-D", ADMIN, "-w", ADMIN_PW, "-s", f"ou=mvZ,{BASE}",
                 f"cn=mover,ou=mvA,{BASE}", "cn=mover")
    assert r.returncode == 0, r.stderr
    r = lw("ldif", "export", "--server", server.url, env_extra={"LIGHTWAVE_PASSWORD": ADMIN_PW})
    assert r.returncode == 0, r.stderr
    dns = [line[4:].lower() for line in r.stdout.splitlines() if line.startswith("dn: ")]
    assert f"cn=mover,ou=mvz,{BASE}" in dns and len(dns) > 20
    where = {dn: i for i, dn in enumerate(dns)}
    for i, dn in enumerate(dns):
        parent = dn.split(",", 1)[1] if "," in dn else ""
        assert where.get(parent, -1) < i, (dn, "before its parent")
    dump = tmp_path / "online.ldif"
    dump.write_text(r.stdout)
    r = lw("ldif", "import", str(dump), "--data-dir", str(tmp_path / "copy"), "--quiet")
    assert r.returncode == 0 and "0 failed" in r.stderr, r.stderr
    again = lw("ldif", "export", "--data-dir", str(tmp_path / "copy"), "--base", f"ou=mvZ,{BASE}")
    assert again.returncode == 0 and f"dn: cn=mover,ou=mvZ,{BASE}" in again.stdout, again.stderr


def test_an_online_export_of_a_missing_base_fails(server) -> None:
    r = lw("ldif", "export", "--server", server.url, "--base", f"ou=nowhere,{BASE}",
           env_extra={"LIGHTWAVE_PASSWORD": ADMIN_PW})
    assert r.returncode == 1 and f"export under ou=nowhere,{BASE}: noSuchObject (32)" in r.stderr and "Traceback" not in r.stderr, r.stderr
