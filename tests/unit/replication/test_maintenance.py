"""Tombstone purge and the restore mark over a real LMDB store (no sockets), and the rule
that tells a node out of touch for longer than the tombstone lifetime."""
from __future__ import annotations

import time

import pytest

from replication._state import RESTORED, mark_restored, read_purged, read_utdv, stale_against
from replication._state import OUT_OF_TOUCH, write_status
from replication.maintenance import pause_if_out_of_touch, purge_tombstones, tend_local_node
from replication.topology import agreement_request, node_dn, node_request, register_local_node
from tests.unit.vmdir.test_directory_meta import ADMIN, BASE, admin, d, run, stored  # noqa: F401 - d: fixture
from vmdir.directory import Directory, writes_paused
from vmdir.directory._directory import POSIX_BASE, POSIX_RANGE
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError, ResultCode
from vmdir.store import entry_uuid

A, B, C = (bytes([i]) * 16 for i in (1, 2, 3))


def test_stale_when_a_purged_originator_is_not_covered() -> None:
    assert stale_against({}, {}) is None
    assert stale_against({A: 5}, {A: 5, B: 1}) is None
    assert stale_against({A: 5, B: 2}, {A: 9, B: 1}) == B
    assert stale_against({C: 1}, {A: 9}) == C


def test_purge_forgets_old_tombstones_and_value_states_only(d: Directory) -> None:
    s = admin(d)
    users = f"cn=Users,{BASE}"
    for cn in ("gone", "young"):
        run(d, d.add(s, m.AddRequest(f"cn={cn},{users}", (("objectClass", (b"person",)), ("sn", (cn.encode(),))))))
    group = f"cn=g,cn=Groups,{BASE}"
    run(d, d.add(s, m.AddRequest(group, (("objectClass", (b"groupOfNames",)),
                                         ("member", (ADMIN.encode(), f"cn=young,{users}".encode()))))))
    gone = stored(d, f"cn=gone,{users}")
    gone_uuid = entry_uuid(gone)
    run(d, d.delete(s, m.DelRequest(f"cn=gone,{users}")))
    run(d, d.modify(s, m.ModifyRequest(group, (m.Change(m.MOD_DELETE, "member", (f"cn=young,{users}".encode(),)),))))
    usn_before = int(stored(d, group).attrs["usnchanged"][0])
    now = d.clock()
    assert purge_tombstones(d, 3600, now=now).entries == 0  # nothing is old enough yet
    done = purge_tombstones(d, 3600, now=now + 3601)
    assert (done.entries, done.values) == (1, 1)
    with d.store.read() as r:
        assert r.uuid_id(gone_uuid) is None
        assert read_purged(r)[d.invocation] > 0
    g = stored(d, group)
    assert [v.value for v in g.vmeta["member"]] == [ADMIN.encode()]  # the removed member's state is gone
    assert int(g.attrs["usnchanged"][0]) == usn_before  # housekeeping: nothing new to replicate
    assert stored(d, f"cn=young,{users}") is not None
    assert purge_tombstones(d, 3600, now=now + 3601).entries == 0  # idempotent


def test_restore_mark_pauses_local_writes_and_keeps_the_old_invocation_covered(d: Directory) -> None:
    with d.store.write() as w:
        mark_restored(w, A, 42)
    with d.store.read() as r:
        assert writes_paused(r) == RESTORED
        assert read_utdv(r)[A] == 42
    s = admin(d)
    with pytest.raises(LDAPError) as err:
        run(d, d.add(s, m.AddRequest(f"cn=x,cn=Users,{BASE}", (("objectClass", (b"person",)), ("sn", (b"x",))))))
    assert err.value.code == ResultCode.unwillingToPerform and "restored from a backup" in err.value.message


def _uid_number(d: Directory, dn: str) -> int:
    return int(stored(d, dn).attrs["uidnumber"][0])


def _posix_user(d: Directory, uid: str, number: int | None = None) -> str:
    dn = f"uid={uid},cn=Users,{BASE}"
    attrs: list[tuple[str, tuple[bytes, ...]]] = [
        ("objectClass", (b"inetOrgPerson", b"posixAccount")), ("cn", (uid.encode(),)), ("sn", (b"x",)),
        ("uid", (uid.encode(),)), ("homeDirectory", (f"/home/{uid}".encode(),)), ("gidNumber", (b"100",))]
    if number is not None:
        attrs.append(("uidNumber", (str(number).encode(),)))
    run(d, d.add(admin(d), m.AddRequest(dn, tuple(attrs))))
    return dn


def test_a_node_that_claimed_a_shared_server_id_later_takes_a_new_one(d: Directory) -> None:
    """Two nodes that joined through different partners at the same time can get the same
    server id; once both entries are known, the later claim moves to the highest id plus one
    (its entry and the store's id in one write), and POSIX numbers follow the new range."""
    register_local_node(d, "lightwave.local", "n1", "ldap://n1:389", "pw-n1")
    s = admin(d)
    run(d, d.add(s, node_request("n2", 1, d.invocation, "ldap://n2:389", "pw-n2")))  # the same id, claimed later
    run(d, d.add(s, node_request("n3", 2, C, "ldap://n3:389", "pw-n3")))
    logged: list[str] = []
    tend_local_node(d, "n1", "ldap://n1:389", logged.append)  # n1 claimed id 1 first: it keeps it
    assert d.server_id == 1 and not logged
    assert _uid_number(d, _posix_user(d, "u1")) == POSIX_BASE  # server id 1's range
    # this store as n2's: n2 gives id 1 up for 3 (n3 holds 2)
    tend_local_node(d, "n2", "ldap://n2:389", logged.append)
    assert stored(d, node_dn("n2")).attrs["lightwaveserverid"] == [b"3"]
    with d.store.read() as r:
        assert r.meta_int("server_id") == 3
    assert d.server_id == 3 and "this node is now server id 3" in logged[0]
    tend_local_node(d, "n2", "ldap://n2:389", logged.append)  # settled: nothing more to do
    assert len(logged) == 1
    # POSIX numbers come from server id 3's range, skipping one an entry already holds
    third = POSIX_BASE + 2 * POSIX_RANGE
    _posix_user(d, "taken", third)
    assert _uid_number(d, _posix_user(d, "u2")) == third + 1


def test_a_node_long_without_replicating_starts_with_writes_paused_until_it_catches_up(d: Directory) -> None:
    register_local_node(d, "lightwave.local", "n1", "ldap://n1:389", "pw-n1")
    s = admin(d)
    run(d, d.add(s, node_request("n2", 2, B, "ldap://n2:389", "pw-n2")))
    last = 1_800_000_000.0
    with d.store.write() as w:
        write_status(w, "n2", {"last_success": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last))})
    assert not pause_if_out_of_touch(d, "n1", 3600, last + 3000)  # within the lifetime
    assert not pause_if_out_of_touch(d, "n1", 3600, last + 4000)  # no agreement: nobody to have missed
    run(d, d.add(s, agreement_request("n2", "ldap://n2:389", "n1")))
    logged: list[str] = []
    assert pause_if_out_of_touch(d, "n1", 3600, last + 4000, logged.append)
    assert "longer than the tombstone lifetime" in logged[0]
    with d.store.read() as r:
        assert writes_paused(r) == OUT_OF_TOUCH
    with pytest.raises(LDAPError) as err:
        run(d, d.add(s, m.AddRequest(f"cn=x,cn=Users,{BASE}", (("objectClass", (b"person",)), ("sn", (b"x",))))))
    assert err.value.code == ResultCode.unwillingToPerform and "tombstone lifetime" in err.value.message
    assert not pause_if_out_of_touch(d, "n1", 3600, last + 4000)  # already paused: nothing to add
