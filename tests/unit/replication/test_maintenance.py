"""Tombstone purge and the restore mark over a real LMDB store (no sockets), and the rule
that tells a node out of touch for longer than the tombstone lifetime."""
from __future__ import annotations

import pytest

from replication._state import RESTORED, mark_restored, read_purged, read_utdv, stale_against, writes_paused
from replication.maintenance import purge_tombstones
from tests.unit.vmdir.test_directory_meta import ADMIN, BASE, admin, d, run, stored  # noqa: F401 - d: fixture
from vmdir.directory import Directory
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
