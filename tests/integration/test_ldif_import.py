"""Offline bulk import (`lightwave ldif import`): helper processes prepare blocks of records,
index rows are written in sorted runs. What an operator sees, and that the indexes written
that way are exactly the ones the server would have written entry by entry."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from lightwave.ldifimport import BLOCK_BYTES, BLOCKS_PER_WRITE, SPOOL_IDLE, SPOOL_PREFIX
from tests.conftest import ADMIN, ADMIN_PW, BASE, make_server, run_tool
from tests.integration.test_cli_offline import lw, people_ldif


def _index_rows(data_dir: str) -> tuple[dict[str, set[tuple[bytes, bytes]]], dict[str, set[tuple[bytes, bytes]]]]:
    """(index rows as stored, index rows rebuilt from the entries) for every index."""
    from lightwave.cli import build_parser, node_config
    from lightwave.nodes import build_directory, open_store

    cfg = node_config(build_parser().parse_args(["ldif", "export", "--data-dir", data_dir]))
    store = open_store(cfg)
    try:
        d = build_directory(cfg, store)

        def dump() -> dict[str, set[tuple[bytes, bytes]]]:
            out = {}
            with store.env.begin() as txn:
                for attr, db in store.db_idx.items():
                    out[attr] = {(bytes(k), bytes(v)) for k, v in txn.cursor(db=db).iternext(keys=True, values=True)}
            return out

        stored = dump()

        class Rollback(Exception):
            pass

        rebuilt: dict[str, set[tuple[bytes, bytes]]] = {}
        try:
            with store.write() as w:
                for attr, db in store.db_idx.items():
                    w.rebuild_index(attr, d.dit.index_keys)
                    rebuilt[attr] = {(bytes(k), bytes(v)) for k, v in w.txn.cursor(db=db).iternext(keys=True, values=True)}
                raise Rollback()
        except Rollback:
            pass
        return stored, rebuilt
    finally:
        store.close()


@pytest.mark.parametrize("jobs", ["0", "2"])
def test_bulk_import_many_blocks(tmp_path_factory: pytest.TempPathFactory, tmp_path, jobs: str) -> None:
    text = orphan_ldif(6000)
    assert len(text.encode()) > BLOCKS_PER_WRITE * BLOCK_BYTES  # several blocks and transactions, both helpers
    bad_line = text[:text.index("dn: uid=orphan")].count("\n") + 1
    f = tmp_path / "people.ldif"
    f.write_text(text)
    srv = make_server(tmp_path_factory, f"bulk{jobs}")
    srv.start()  # initialise the data directory (the tenant), then import offline
    srv.stop()
    tmp = _tmpdir(tmp_path)
    killed = subprocess.Popen(["true"])  # an import killed on the way left its spool behind
    killed.wait()
    left = tmp / f"{SPOOL_PREFIX}{killed.pid}-x1y2"
    left.mkdir()
    (left / "tmpab12").write_bytes(b"dn: cn=x\n")
    os.utime(left, (time.time() - SPOOL_IDLE - 1,) * 2)  # untouched since
    r = lw("ldif", "import", str(f), "--data-dir", srv.data_dir, "--quiet", "--keep-going", "--jobs", jobs,
           env_extra={"TMPDIR": str(tmp)})
    # the files blocks went through the helpers in are gone, and what the killed one left
    assert not list(tmp.iterdir())
    assert r.returncode == 1, r.stderr  # one record failed
    assert "imported 6001 entries" in r.stderr and "1 failed" in r.stderr
    assert f"line {bad_line}: dn: uid=orphan,ou=nowhere,{BASE}: noSuchObject (32)" in r.stderr
    stored, rebuilt = _index_rows(srv.data_dir)
    assert stored.keys() == rebuilt.keys()
    for attr in stored:
        assert stored[attr] == rebuilt[attr], attr  # no row missing, none left by the failed entry
    srv.start()
    try:
        for flt, want in (("(uid=p1499)", 1), ("(cn=*son 149*)", 11), ("(mail=p7*)", 111), ("(uid=orphan)", 0),
                          ("(&(objectClass=person)(sn=P0))", 1)):
            s = run_tool("ldapsearch", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW, "-LLL", "-z", "0",
                         "-b", BASE, flt, "1.1")
            assert s.returncode == 0, s.stderr
            assert s.stdout.count("dn: ") == want, (flt, s.stdout[:200])
    finally:
        srv.stop()


def _tmpdir(tmp_path: Path) -> Path:
    """An empty directory for the import's $TMPDIR (its helpers pass blocks through files there)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return tmp


def orphan_ldif(people: int) -> str:
    """People, with a record the writer refuses (its parent does not exist) before p700,
    in the middle of a block and of a transaction."""
    text = people_ldif(people)
    cut = text.index("dn: uid=p700,")
    bad = f"dn: uid=orphan,ou=nowhere,{BASE}\nobjectClass: inetOrgPerson\nuid: orphan\ncn: Orphan\nsn: O\n\n"
    return text[:cut] + bad + text[cut:]


def test_bulk_import_stops_at_the_first_refused_record(tmp_path_factory: pytest.TempPathFactory, tmp_path) -> None:
    """Without --keep-going nothing after the refused record is added, not even the records
    written in the same transaction as those before it."""
    f = tmp_path / "people.ldif"
    f.write_text(orphan_ldif(1500))
    srv = make_server(tmp_path_factory, "bulkstop")
    srv.start()
    srv.stop()
    tmp = _tmpdir(tmp_path)
    r = lw("ldif", "import", str(f), "--data-dir", srv.data_dir, "--quiet", "--jobs", "2", env_extra={"TMPDIR": str(tmp)})
    assert not list(tmp.iterdir())  # blocks the helpers had ahead when it stopped too
    assert r.returncode == 1, r.stderr
    assert "imported 701 entries" in r.stderr and "1 failed" in r.stderr, r.stderr  # ou=people, p0..p699
    assert f"dn: uid=orphan,ou=nowhere,{BASE}: noSuchObject (32)" in r.stderr
    stored, rebuilt = _index_rows(srv.data_dir)
    assert stored == rebuilt
    uid_keys = {k for k, _ in stored["uid"]}
    assert b"=p699" in uid_keys and b"=p700" not in uid_keys and b"=p1499" not in uid_keys


def test_bulk_import_stops_at_malformed_ldif_with_its_line(tmp_path_factory: pytest.TempPathFactory, tmp_path) -> None:
    text = people_ldif(1200)
    cut = text.index("dn: uid=p1100,")
    text = text[:cut] + "dn: uid=broken,ou=people," + BASE + "\nthis line has no colon\n\n" + text[cut:]
    line = text[:text.index("this line has no colon")].count("\n") + 1
    f = tmp_path / "broken.ldif"
    f.write_text(text)
    srv = make_server(tmp_path_factory, "broken")
    srv.start()
    srv.stop()
    tmp = _tmpdir(tmp_path)
    r = lw("ldif", "import", str(f), "--data-dir", srv.data_dir, "--quiet", "--jobs", "2", env_extra={"TMPDIR": str(tmp)})
    assert not list(tmp.iterdir())
    assert r.returncode != 0
    assert f"line {line}: missing ':'" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    # records before the bad one are in, records after it are not
    stored, rebuilt = _index_rows(srv.data_dir)
    assert stored == rebuilt
    uid_keys = {k for k, _ in stored["uid"]}
    assert b"=p1099" in uid_keys and b"=p1100" not in uid_keys


def test_import_with_the_schema_it_needs_in_the_same_file(tmp_path_factory: pytest.TempPathFactory, tmp_path) -> None:
    """An export of a forest with schema added over LDAP holds that schema (cn=Schema,cn=System)
    before the entries using it. Helpers prepare blocks ahead of the writes, before that schema
    is stored: the records they refuse are prepared again in turn, after it is."""
    srv = make_server(tmp_path_factory, "bulkschema")
    srv.start()
    try:
        r = run_tool("ldapmodify", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW, input=(
            "dn: cn=Subschema\nchangetype: modify\nadd: attributeTypes\nattributeTypes: ( 1.3.6.1.4.1.99999.1.9 "
            "NAME 'deskNumber' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )\n-\n"
            "add: objectClasses\nobjectClasses: ( 1.3.6.1.4.1.99999.2.9 NAME 'deskHolder' SUP top AUXILIARY "
            "MAY deskNumber )\n"))
        assert r.returncode == 0, r.stdout + r.stderr
        text = people_ldif(1200).replace("objectClass: inetOrgPerson\n", "objectClass: inetOrgPerson\n"
                                         "objectClass: deskHolder\ndeskNumber: 12\n")
        f = tmp_path / "desks.ldif"
        f.write_text(text)
        assert len(text.encode()) > 2 * BLOCK_BYTES
    finally:
        srv.stop()
    r = lw("ldif", "import", str(f), "--data-dir", srv.data_dir, "--quiet", "--jobs", "2")
    assert r.returncode == 0 and "imported 1201 entries" in r.stderr, r.stderr
    export = lw("ldif", "export", "--data-dir", srv.data_dir)
    assert export.returncode == 0, export.stderr
    assert export.stdout.index("dn: cn=Schema,cn=System") < export.stdout.index("deskNumber: 12")
    # the export, schema and all, into an empty data directory
    dump = tmp_path / "all.ldif"
    dump.write_text(export.stdout)
    fresh = tmp_path / "fresh"
    r = lw("ldif", "import", str(dump), "--data-dir", str(fresh), "--quiet", "--jobs", "2")
    assert r.returncode == 0 and "0 failed" in r.stderr, r.stderr
    again = lw("ldif", "export", "--data-dir", str(fresh))
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("deskNumber: 12") == 1200  # every person


def test_a_slapcat_export_from_openldap_imports(tmp_path) -> None:
    """Migrating from OpenLDAP: slapcat writes operational attributes in every entry, among them
    its replication state (entryCSN, and contextCSN on the suffix), which this directory does
    not define. The import leaves that state out, says so, and keeps the rest: entryUUID and the
    timestamps of the original entries."""
    def op(n: int) -> str:
        return (f"entryUUID: 0b7c1c2e-7b15-1041-8a{n:02d}-978fd8eb828a\n"
                f"creatorsName: cn=admin,{BASE}\ncreateTimestamp: 20240102030405Z\n"
                f"entryCSN: 20240102030405.123456Z#000000#000#000000\n"
                f"modifiersName: cn=admin,{BASE}\nmodifyTimestamp: 20240102030405Z\n")
    text = (f"dn: {BASE}\nobjectClass: top\nobjectClass: domain\ndc: lightwave\nstructuralObjectClass: domain\n{op(0)}"
            "contextCSN: 20240102030405.123456Z#000000#000#000000\n\n"
            f"dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n"
            f"structuralObjectClass: organizationalUnit\n{op(1)}\n"
            + "".join(f"dn: uid=m{i},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: m{i}\ncn: M {i}\nsn: M\n"
                      f"structuralObjectClass: inetOrgPerson\n{op(10 + i)}\n" for i in range(3)))
    f = tmp_path / "slapcat.ldif"
    f.write_text(text)
    data = tmp_path / "var"
    r = lw("ldif", "import", str(f), "--data-dir", str(data), "--quiet")
    assert r.returncode == 0 and "imported 5 entries" in r.stderr and "0 failed" in r.stderr, r.stderr
    assert "left out 6 entryCSN/contextCSN values" in r.stderr
    export = lw("ldif", "export", "--data-dir", str(data), "--base", f"uid=m2,ou=people,{BASE}")
    assert export.returncode == 0, export.stderr
    assert "entryUUID: 0b7c1c2e-7b15-1041-8a12-978fd8eb828a\n" in export.stdout
    assert "createTimestamp: 20240102030405Z\n" in export.stdout
    assert "CSN" not in export.stdout


def test_a_file_that_is_not_utf8_stops_with_what_came_before_it_in(tmp_path) -> None:
    """The import reads the file a block at a time; a block that is not UTF-8 stops it, and
    every block read before it is in (they were being prepared ahead, and were dropped)."""
    text = people_ldif(1500)
    cut = text.index("dn: uid=p1400,")
    raw = text[:cut].encode() + b"dn: uid=latin,ou=people," + BASE.encode() + b"\ncn: Jos\xe9\n\n" + text[cut:].encode()
    read = (cut // BLOCK_BYTES) * BLOCK_BYTES  # the characters read before the block that fails (ASCII before it)
    good = text[:text.rfind("\n\n", 0, read) + 2]
    assert good.count("dn: uid=p") > 1000  # two blocks in
    last = f"=p{good.count('dn: uid=p') - 1}".encode()
    following = f"=p{good.count('dn: uid=p')}".encode()
    f = tmp_path / "latin1.ldif"
    f.write_bytes(raw)
    data = tmp_path / "var"
    r = lw("ldif", "import", str(f), "--data-dir", str(data), "--quiet")
    assert r.returncode == 1 and "not UTF-8 text" in r.stderr and "Traceback" not in r.stderr, r.stderr
    stored, rebuilt = _index_rows(str(data))
    assert stored == rebuilt
    uid_keys = {k for k, _ in stored["uid"]}
    assert b"=p0" in uid_keys and last in uid_keys and following not in uid_keys


def test_a_full_temporary_directory_stops_the_import_with_what_to_do(tmp_path) -> None:
    """Blocks pass to the helpers through files in $TMPDIR: when it fills up, the import says
    so and how to go on, keeps what it wrote, and leaves the directory empty."""
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(tiny)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        f = tmp_path / "people.ldif"
        f.write_text(people_ldif(8000))  # more than a window of blocks: 300 KiB cannot hold them
        data = tmp_path / "var"
        r = lw("ldif", "import", str(f), "--data-dir", str(data), "--quiet", "--jobs", "2",
               env_extra={"TMPDIR": str(tiny)})
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert "handing blocks to the helper processes failed" in r.stderr, r.stderr
        assert "No space left on device. Set TMPDIR to a directory with a few MB free" in r.stderr
        assert not list(tiny.iterdir())
        stored, rebuilt = _index_rows(str(data))
        assert stored == rebuilt  # what went in before it is whole
    finally:
        subprocess.run(["umount", str(tiny)], check=True)
