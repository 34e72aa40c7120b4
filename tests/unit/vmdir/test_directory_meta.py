"""The Directory over a real LMDB store (no sockets): replication metadata on every
write, per-value metadata with value tombstones, USN log, entry tombstones."""
from __future__ import annotations

import pytest

from vmdir.directory import DirectoryConfig, Directory, Session, initialise, node_identity
from vmdir.model.schema import Schema
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError, ResultCode
from vmdir.store import Store, pack_u64

BASE = "dc=lightwave,dc=local"
ADMIN = f"cn=Administrator,cn=Users,{BASE}"


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def new_directory(path: str) -> Directory:
    """A Directory on a new store at ``path``, with no entry yet (close its store)."""
    cfg = DirectoryConfig(password_params=(("time_cost", 1), ("memory_cost", 8)))
    store = Store(path, map_size=1 << 30, indexes={k: set(v) for k, v in cfg.indexes.items()})
    inv, sid, _ = node_identity(store)
    return Directory(store, Schema.default(), cfg, invocation=inv, server_id=sid, admin_dns=[ADMIN], clock=Clock())


@pytest.fixture()
def d(tmp_path):
    dr = new_directory(str(tmp_path / "db"))
    initialise(dr, "lightwave.local", "pw")
    yield dr
    dr.store.close()


def admin(d: Directory) -> Session:
    return Session(dn=ADMIN, ndn=d.dit.ndn(ADMIN), is_admin=True, forest_admin_dn=True)


def run(d: Directory, op):
    (res,) = d.run_writes([op])
    if isinstance(res, BaseException):
        raise res
    return res


def stored(d: Directory, dn: str):
    with d.store.read() as r:
        d.dit.begin(r)
        return d._find(r, dn)


def test_every_attribute_has_metadata_and_versions_grow(d: Directory) -> None:
    s = admin(d)
    dn = f"cn=g1,cn=Groups,{BASE}"
    run(d, d.add(s, m.AddRequest(dn, (("objectClass", (b"groupOfNames",)), ("cn", (b"g1",)),
                                       ("member", (ADMIN.encode(),)), ("description", (b"one",))))))
    e = stored(d, dn)
    usn_add = int(e.attrs["usncreated"][0])
    for a in e.attrs:
        local, version, inv, t, orig = e.meta[a]
        assert (local, version, inv, orig) == (usn_add, 1, d.invocation, usn_add), a
    run(d, d.modify(s, m.ModifyRequest(dn, (m.Change(m.MOD_REPLACE, "description", (b"two",)),))))
    e2 = stored(d, dn)
    usn_mod = int(e2.attrs["usnchanged"][0])
    assert usn_mod > usn_add
    assert e2.meta["description"][:2] == (usn_mod, 2)
    assert e2.meta["cn"] == e.meta["cn"]  # untouched attributes keep their metadata
    assert e2.meta["description"][3] > e.meta["description"][3]  # originating time advanced


def test_member_values_carry_their_own_metadata_and_tombstones(d: Directory) -> None:
    s = admin(d)
    dn = f"cn=g2,cn=Groups,{BASE}"
    a, b, c = (f"cn={x},cn=Users,{BASE}".encode() for x in ("a", "b", "c"))
    run(d, d.add(s, m.AddRequest(dn, (("objectClass", (b"groupOfNames",)), ("cn", (b"g2",)), ("member", (a, b))))))
    run(d, d.modify(s, m.ModifyRequest(dn, (m.Change(m.MOD_ADD, "member", (c,)),
                                            m.Change(m.MOD_DELETE, "member", (a,))))))
    e = stored(d, dn)
    assert sorted(e.attrs["member"]) == sorted([b, c])
    vm = {v.value: v for v in e.vmeta["member"]}
    assert vm[a].deleted and vm[a].version == 2  # value tombstone kept, version bumped
    assert not vm[b].deleted and vm[b].version == 1
    assert not vm[c].deleted and vm[c].local_usn == int(e.attrs["usnchanged"][0])


def _group(d: Directory, cn: str, members: list[bytes]) -> str:
    dn = f"cn={cn},cn=Groups,{BASE}"
    run(d, d.add(admin(d), m.AddRequest(dn, (("objectClass", (b"groupOfNames",)), ("cn", (cn.encode(),)),
                                             ("member", tuple(members))))))
    return dn


def _members(n: int) -> list[bytes]:
    return [f"cn=u{i},cn=Users,{BASE}".encode() for i in range(n)]


def test_member_changes_tell_values_apart_by_their_equality_keys(d: Directory) -> None:
    """Add, delete and replace compare values by their normalised form (the value sets and
    the key-to-position map that keep a change to a big group linear)."""
    s = admin(d)
    us = _members(6)
    dn = _group(d, "keys", us[:4])
    # another spelling of a member already there is that member
    with pytest.raises(LDAPError) as exc:
        run(d, d.modify(s, m.ModifyRequest(dn, (m.Change(m.MOD_ADD, "member", (us[4], us[1].upper())),))))
    assert exc.value.code == ResultCode.attributeOrValueExists and "value #1" in exc.value.message
    assert stored(d, dn).attrs["member"] == us[:4]  # the refused change left nothing
    # deleted under another spelling; the others keep their order
    run(d, d.modify(s, m.ModifyRequest(dn, (m.Change(m.MOD_DELETE, "member", (us[2].upper(), us[0])),))))
    assert stored(d, dn).attrs["member"] == [us[1], us[3]]
    # a value named twice in one delete is gone the second time
    with pytest.raises(LDAPError) as exc:
        run(d, d.modify(s, m.ModifyRequest(dn, (m.Change(m.MOD_DELETE, "member", (us[1], us[1].upper())),))))
    assert exc.value.code == ResultCode.noSuchAttribute
    # permissive modify skips what is there / not there
    permissive = (m.Control("1.2.840.113556.1.4.1413", False, None),)
    run(d, d.modify(s, m.ModifyRequest(dn, (m.Change(m.MOD_ADD, "member", (us[1].upper(), us[4])),
                                            m.Change(m.MOD_DELETE, "member", (us[5], us[3]))), ), permissive))
    assert stored(d, dn).attrs["member"] == [us[1], us[4]]
    # replace: a value kept under another spelling keeps its metadata, the others change
    before = {v.value.lower(): v for v in stored(d, dn).vmeta["member"]}
    run(d, d.modify(s, m.ModifyRequest(dn, (m.Change(m.MOD_REPLACE, "member", (us[4].upper(), us[5])),))))
    e = stored(d, dn)
    assert e.attrs["member"] == [us[4].upper(), us[5]]
    vm = {v.value.lower(): v for v in e.vmeta["member"]}
    usn = int(e.attrs["usnchanged"][0])
    assert vm[us[4].lower()].local_usn == before[us[4].lower()].local_usn  # kept: not stamped again
    assert vm[us[1].lower()].deleted and vm[us[1].lower()].local_usn == usn
    assert not vm[us[5].lower()].deleted and vm[us[5].lower()].local_usn == usn


def test_a_change_replaces_value_metadata_it_shares_with_the_state_before(d: Directory) -> None:
    """``StoredEntry.copy`` shares the ValueMeta objects: stamping a value gives the changed
    entry a new one and leaves the earlier state's as it was."""
    us = _members(3)
    dn = _group(d, "share", us)
    e = stored(d, dn)
    assert len(e.vmeta["member"]) == 3  # built now (a read builds the states when first asked for)
    old = e.copy()
    kept = old.vmeta["member"][0]
    assert e.vmeta["member"][0] is kept and e.vmeta["member"] is not old.vmeta["member"]
    d._stamp_values(e, "member", [], [us[0]], 10_000, 1)
    assert e.vmeta["member"][0].deleted and e.vmeta["member"][0].local_usn == 10_000
    assert old.vmeta["member"][0] is kept and not kept.deleted and kept.local_usn != 10_000
    d._stamp_values(e, "member", [us[0]], [], 10_001, 2)  # back again: the same value, version 3
    assert [v.version for v in e.vmeta["member"]] == [3, 1, 1] and len(e.vmeta["member"]) == 3


def test_usn_log_keeps_latest_change_per_entry_and_delete_leaves_tombstone(d: Directory) -> None:
    s = admin(d)
    dn = f"cn=t,cn=Users,{BASE}"
    run(d, d.add(s, m.AddRequest(dn, (("objectClass", (b"person",)), ("cn", (b"t",)), ("sn", (b"x",))))))
    eid = stored(d, dn).id
    run(d, d.modify(s, m.ModifyRequest(dn, (m.Change(m.MOD_REPLACE, "sn", (b"y",)),))))
    run(d, d.delete(s, m.DelRequest(dn)))
    with d.store.read() as r:
        rows = [(usn, i) for usn, i in r.changes_since(0) if i == eid]
        assert len(rows) == 1  # only the latest change of the entry stays in the log
        tomb = r.get(eid)
        assert tomb is not None and tomb.deleted
        assert rows[0][0] == int(tomb.attrs["usnchanged"][0])
        assert "sn" not in tomb.attrs and tomb.meta["sn"][1] == 3  # deletion is a new version
    with pytest.raises(LDAPError) as exc:
        stored(d, dn)
    assert exc.value.code == ResultCode.noSuchObject


def test_failed_op_in_a_batch_leaves_nothing_and_others_commit(d: Directory) -> None:
    s = admin(d)
    good = d.add(s, m.AddRequest(f"cn=ok,cn=Users,{BASE}", (("objectClass", (b"person",)), ("cn", (b"ok",)), ("sn", (b"x",)))))
    dup = d.add(s, m.AddRequest(f"cn=Users,{BASE}", (("objectClass", (b"lightwaveContainer",)), ("cn", (b"Users",)))))
    with d.store.read() as r:
        before = r.meta_int("next_usn")
    res = d.run_writes([good, dup])
    assert not isinstance(res[0], BaseException)
    assert isinstance(res[1], LDAPError) and res[1].code == ResultCode.entryAlreadyExists
    with d.store.read() as r:
        assert r.meta_int("next_usn") == before + 1  # the failed op consumed no USN
    assert stored(d, f"cn=ok,cn=Users,{BASE}")


def test_unindexed_search_limit_applies_to_users_not_admins(tmp_path) -> None:
    cfg = DirectoryConfig(unindexed_limit=5, password_params=(("time_cost", 1), ("memory_cost", 8)))
    store = Store(str(tmp_path / "db2"), map_size=1 << 30, indexes={k: set(v) for k, v in cfg.indexes.items()})
    inv, sid, _ = node_identity(store)
    dr = Directory(store, Schema.default(), cfg, invocation=inv, server_id=sid, admin_dns=[ADMIN], clock=Clock())
    initialise(dr, "lightwave.local", "pw")
    s = admin(dr)
    for i in range(10):
        run(dr, dr.add(s, m.AddRequest(f"cn=p{i},cn=Users,{BASE}", (("objectClass", (b"person",)), ("cn", (f"p{i}".encode(),)), ("sn", (b"x",)), ("userPassword", (b"Passw0rd-long",))))))
    user = Session()
    dr.bind(user, m.BindRequest(3, f"cn=p1,cn=Users,{BASE}", b"Passw0rd-long"))
    unindexed = m.SearchRequest(BASE, 2, 0, 0, 0, False, m.Equality("description", b"x"), ())
    run_ = dr.search(user, unindexed)
    assert list(run_) == [] and run_.outcome.code == ResultCode.adminLimitExceeded
    indexed = m.SearchRequest(BASE, 2, 0, 0, 0, False, m.Equality("cn", b"p3"), ())
    run_ = dr.search(user, indexed)
    assert [e.dn for e in run_] == [f"cn=p3,cn=Users,{BASE}"] and run_.outcome.code == ResultCode.success
    run_ = dr.search(s, unindexed)
    assert list(run_) == [] and run_.outcome.code == ResultCode.success
    store.close()


def _plain(d: Directory, s: Session, req: m.SearchRequest) -> list[tuple[str, dict[str, list[bytes]]]]:
    """Search results normalised to (dn, {attr: sorted values}) whatever their encoding."""
    from vmdir.ber import decode_entry, encode_entry_raw
    out = []
    for e in d.search(s, req):
        if isinstance(e, m.EncodedSearchResultEntry):
            e = decode_entry(encode_entry_raw(e.dn, e.attributes_ber))
        out.append((e.dn, {k.lower(): sorted(v) for k, v in e.attributes}))
    return out


def test_stored_wire_bytes_equal_rendered_attributes(d: Directory) -> None:
    s = admin(d)
    dn = f"uid=w1,cn=Users,{BASE}"
    run(d, d.add(s, m.AddRequest(dn, (("objectClass", (b"inetOrgPerson",)), ("cn", (b"W One", b"w1")),
                                       ("sn", (b"One",)), ("userPassword", (b"secret-w1",)),
                                       ("cn;lang-en", (b"Double You",)), ("description", (b"x",))))))
    user = Session()
    dr = d.bind(user, m.BindRequest(3, dn, b"secret-w1"))
    assert dr.code == ResultCode.success
    exact = m.SearchRequest(BASE, 2, 0, 0, 0, False, m.Equality("uid", b"W1"), ())          # index-exact path
    rechecked = m.SearchRequest(BASE, 2, 0, 0, 0, False, m.And((m.Equality("uid", b"w1"), m.Present("sn"))), ())
    named = m.SearchRequest(BASE, 2, 0, 0, 0, False, m.Equality("uid", b"w1"),
                            ("objectClass", "cn", "sn", "uid", "userPassword", "description"))  # rendered path
    for who, sees_pw in ((s, True), (user, False)):
        a, b, c = _plain(d, who, exact), _plain(d, who, rechecked), _plain(d, who, named)
        assert a == b == c and len(a) == 1
        attrs = a[0][1]
        assert ("userpassword" in attrs) is sees_pw
        assert attrs["cn;lang-en"] == [b"Double You"] and "entryuuid" not in attrs
    # a value stored with an option is found through the cn index
    found = _plain(d, s, m.SearchRequest(BASE, 2, 0, 0, 0, False, m.Equality("cn", b"double you"), ("1.1",)))
    assert [dn_ for dn_, _ in found] == [dn]


def test_bind_to_missing_dn_costs_like_a_real_user(d: Directory) -> None:
    from vmdir.directory import SlowBind
    from vmdir.model.password import scheme_of
    assert scheme_of(d._dummy_hash) == "ARGON2"  # the configured default scheme
    for name in (f"cn=nobody,cn=Users,{BASE}", ADMIN):  # missing and existing (argon2-hashed) principals
        with pytest.raises(SlowBind):
            d.bind(Session(), m.BindRequest(3, name, b"wrong"), allow_slow=False)
        out = d.bind(Session(), m.BindRequest(3, name, b"wrong"))
        assert out.code == ResultCode.invalidCredentials


def test_an_index_dropped_then_configured_again_is_rebuilt(tmp_path) -> None:
    from lightwave.nodes import ensure_indexes
    from vmdir.directory import DEFAULT_INDEXES

    def open_dir(indexes):
        cfg = DirectoryConfig(indexes=indexes, password_params=(("time_cost", 1), ("memory_cost", 8)))
        store = Store(str(tmp_path / "db3"), map_size=1 << 30, indexes={k: set(v) for k, v in indexes.items()})
        inv, sid, _ = node_identity(store)
        dr = Directory(store, Schema.default(), cfg, invocation=inv, server_id=sid, admin_dns=[ADMIN], clock=Clock())
        ensure_indexes(dr)
        return dr

    without_uid = {k: v for k, v in DEFAULT_INDEXES.items() if k != "uid"}
    dr = open_dir(dict(DEFAULT_INDEXES))
    initialise(dr, "lightwave.local", "pw")
    dr.store.close()
    dr = open_dir(without_uid)  # uid no longer indexed: entries added now get no uid index rows
    run(dr, dr.add(admin(dr), m.AddRequest(f"uid=late,cn=Users,{BASE}", (("objectClass", (b"account",)), ("uid", (b"late",))))))
    dr.store.close()
    dr = open_dir(dict(DEFAULT_INDEXES))  # configured again: must be rebuilt, not trusted
    found = [e.dn for e in dr.search(admin(dr), m.SearchRequest(BASE, 2, 0, 0, 0, False, m.Equality("uid", b"late"), ("1.1",)))]
    assert found == [f"uid=late,cn=Users,{BASE}"]
    dr.store.close()


def test_an_older_layout_gets_role_groups_and_every_tenant_its_new_containers(tmp_path) -> None:
    from vmdir.directory import admin_dn, admins_group_dn, domain_dn, encode_create, initialise, tenant_create
    from vmdir.directory._bootstrap import exists

    cfg = DirectoryConfig()
    store = Store(str(tmp_path / "old"), map_size=1 << 30, indexes={k: set(v) for k, v in cfg.indexes.items()})
    inv, sid, _ = node_identity(store)
    d = Directory(store, Schema.default(), cfg, invocation=inv, server_id=sid, admin_dns=[admin_dn("lightwave.local")],
                  system_admins=admins_group_dn("lightwave.local"), system_tenant=domain_dn("lightwave.local"),
                  clock=Clock())
    initialise(d, "lightwave.local", "Admin-pw-123")
    s = d.internal_session(admin_dn("lightwave.local"))
    [res] = d.run_writes([tenant_create(d, s, encode_create("acme.example", b"Acme-pw-123"))])
    assert not isinstance(res, BaseException), res
    # what a version-2 database looked like: no role groups, no CA / token service containers
    gone = ["cn=CAServices,cn=Groups,dc=lightwave,dc=local", "cn=TokenService,dc=acme,dc=example",
            "cn=CertificateAuthority,dc=lightwave,dc=local"]
    results = d.run_writes([d.delete(s, m.DelRequest(dn)) for dn in gone])
    assert not any(isinstance(r, BaseException) for r in results), results
    with store.write() as w:
        w.set_meta_int("layout", 2)
    assert not any(exists(d, dn) for dn in gone)
    initialise(d, "lightwave.local", "unused")
    assert all(exists(d, dn) for dn in gone)


def _index_rows(d: Directory) -> dict[str, set[tuple[bytes, bytes]]]:
    with d.store.env.begin() as txn:
        return {a: {(bytes(k), bytes(v)) for k, v in txn.cursor(db=db)} for a, db in d.store.db_idx.items()}


def test_deferred_index_rows_are_the_rows_of_a_plain_add(d: Directory) -> None:
    """Bulk import's path (prepare_add deferred, defer_index_keys, apply_add, apply_index_rows)
    leaves the index rows a rebuild from the entries gives, for adds with a reserved id (rows
    grouped by key) and without one (keys written by apply_add)."""
    from vmdir.directory import RELAX_OID

    s = admin(d)
    relax = (m.Control(RELAX_OID, True),)
    people = [m.AddRequest(f"uid=p{i},cn=Users,{BASE}", (
        ("objectClass", (b"inetOrgPerson",)), ("uid", (f"p{i}".encode(),)), ("cn", (b"Pat Doe", f"Pat {i}".encode())),
        ("sn", (b"Doe",)), ("mail", (f"p{i}@example.com".encode(), b"x" * 300)))) for i in range(3)]
    d.refresh_schema()
    adds = [d.prepare_add(s, r, relax, precompute=True, deferred=True) for r in people]
    with d.store.write() as w:
        first = w.reserve_ids(2)
    adds[0].id, adds[1].id = first, first + 1  # the third has none
    rows = d.defer_index_keys(adds)
    assert rows["cn"][0] == sorted(rows["cn"][0])
    assert adds[2].index_keys is not None and "uid" in adds[2].index_keys and "uid" not in adds[0].index_keys
    ops = [lambda w, p=p: d.apply_add(w, s, p) for p in adds] + [lambda w: d.apply_index_rows(w, rows, [p.id for p in adds])]
    assert not [x for x in d.run_writes(ops) if isinstance(x, BaseException)]
    stored_rows = _index_rows(d)
    with d.store.write() as w:
        for attr in d.store.db_idx:
            w.rebuild_index(attr, d.dit.index_keys)
    assert _index_rows(d) == stored_rows
    assert any(k.startswith(b"=p2") for k, _ in stored_rows["uid"])


def test_deferred_index_rows_of_an_add_that_failed_are_left_out(d: Directory) -> None:
    """An import's transaction writes a block's rows after its adds: an add that failed
    (here: the entry exists) leaves no rows."""
    from vmdir.directory import RELAX_OID

    s = admin(d)
    taken = f"uid=taken,cn=Users,{BASE}"
    run(d, d.add(s, m.AddRequest(taken, (("objectClass", (b"inetOrgPerson",)), ("cn", (b"First",)), ("sn", (b"T",))))))
    reqs = [m.AddRequest(dn, (("objectClass", (b"inetOrgPerson",)), ("cn", (b"Zed Unique" + dn[:9].encode(),)),
                               ("sn", (b"Z",)))) for dn in (f"uid=fresh,cn=Users,{BASE}", taken)]
    d.refresh_schema()
    adds = [d.prepare_add(s, r, (m.Control(RELAX_OID, True),), precompute=True, deferred=True) for r in reqs]
    with d.store.write() as w:
        first = w.reserve_ids(2)
    adds[0].id, adds[1].id = first, first + 1
    rows = d.defer_index_keys(adds)
    ops = [lambda w, p=p: d.apply_add(w, s, p) for p in adds] + [lambda w: d.apply_index_rows(w, rows, [p.id for p in adds])]
    results = d.run_writes(ops)
    assert isinstance(results[1], LDAPError) and results[1].code == ResultCode.entryAlreadyExists
    named = {pid for rows_of in _index_rows(d).values() for _, pid in rows_of}
    assert pack_u64(first) in named and pack_u64(first + 1) not in named
    stored_rows = _index_rows(d)
    with d.store.write() as w:
        for attr in d.store.db_idx:
            w.rebuild_index(attr, d.dit.index_keys)
    assert _index_rows(d) == stored_rows


def test_deferred_index_rows_below_ids_already_indexed_all_land(d: Directory) -> None:
    """A block's rows are appended to each key's ids (its ids were reserved after every id
    indexed so far). An entry added beside the import after the reservation has a higher id
    under the same keys: the rows whose ids come before it are inserted in their place."""
    from vmdir.directory import RELAX_OID

    s = admin(d)
    d.refresh_schema()
    reqs = [m.AddRequest(f"uid=blk{i},cn=Users,{BASE}", (("objectClass", (b"inetOrgPerson",)), ("uid", (f"blk{i}".encode(),)),
                                                         ("cn", (b"Shared Name",)), ("sn", (b"S",)))) for i in range(3)]
    adds = [d.prepare_add(s, r, (m.Control(RELAX_OID, True),), precompute=True, deferred=True) for r in reqs]
    with d.store.write() as w:
        first = w.reserve_ids(3)
    for i, p in enumerate(adds):
        p.id = first + i
    rows = d.defer_index_keys(adds)
    # added meanwhile (as a server writing beside the import would): a higher id, the same keys
    run(d, d.add(s, m.AddRequest(f"uid=beside,cn=Users,{BASE}", (
        ("objectClass", (b"inetOrgPerson",)), ("cn", (b"Shared Name",)), ("sn", (b"S",))))))
    beside = {pid for k, pid in _index_rows(d)["cn"] if k.endswith(b"shared name")}
    assert beside and max(beside) > pack_u64(first + 2)
    ops = [lambda w, p=p: d.apply_add(w, s, p) for p in adds] + [lambda w: d.apply_index_rows(w, rows, [p.id for p in adds])]
    assert not [x for x in d.run_writes(ops) if isinstance(x, BaseException)]
    stored_rows = _index_rows(d)
    assert {pid for k, pid in stored_rows["cn"] if k.endswith(b"shared name")} == beside | {
        pack_u64(first + i) for i in range(3)}
    with d.store.write() as w:
        for attr in d.store.db_idx:
            w.rebuild_index(attr, d.dit.index_keys)
    assert _index_rows(d) == stored_rows


def test_a_person_is_stored_within_a_page(d: Directory) -> None:
    """A person as the benchmark's data has it (two dozen attributes with the metadata of
    the add) fits in an LMDB page, not an overflow page of its own: the metadata its
    attributes share is written once (it took each entry past the ~2 KB a page holds)."""
    def overflow() -> int:
        with d.store.env.begin() as txn:
            return txn.stat(d.store.db_entries)["overflow_pages"]

    before = overflow()
    for i in range(20):
        uid = f"person{i:06d}".encode()
        run(d, d.add(admin(d), m.AddRequest(f"uid={uid.decode()},cn=Users,{BASE}", (
            ("objectClass", (b"top", b"person", b"organizationalPerson", b"inetOrgPerson", b"posixAccount")),
            ("uid", (uid,)), ("cn", (b"Anna Marieklotz",)), ("sn", (b"Marieklotz",)), ("givenName", (b"Anna",)),
            ("displayName", (b"Anna Marieklotz " + uid,)), ("mail", (uid + b"@example.com",)),
            ("uidNumber", (b"%d" % (10000 + i),)), ("gidNumber", (b"10000",)),
            ("homeDirectory", (b"/home/" + uid,)), ("loginShell", (b"/bin/bash",)),
            ("telephoneNumber", (b"+1 555 0100 %03d" % i,)), ("employeeNumber", (b"%d" % i,)),
            ("description", (b"benchmark person number %d" % i,)),
            ("userPassword", (b"{SSHA}" + b"A" * 32,))))))
    assert overflow() == before
