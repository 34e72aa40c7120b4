"""What a page holds: entries in change-log order, an entry's ancestors that changed later
sent before it (once per page), each record naming its parent's entryUUID (a real store,
``pull_page`` in process)."""
from __future__ import annotations

from replication._supplier import pull_page
from replication._wire import PullRequest, decode_record
from tests.unit.replication.test_supplier_hold import session
from tests.unit.vmdir.test_directory_meta import BASE, admin, d, run, stored  # noqa: F401 - d: fixture
from vmdir.directory import Directory
from vmdir.proto import messages as m
from vmdir.store import entry_uuid

CONSUMER = b"\x09" * 16
OU = f"ou=later,{BASE}"


def _page(d: Directory, watermark: int, utdv: dict[bytes, int]) -> list[tuple[str, bytes | None, int]]:
    entries, resp = pull_page(d, session(d), PullRequest(CONSUMER, watermark, 500, utdv, 0))
    assert not resp.more
    out = []
    for e in entries:
        rec = decode_record(e.attributes[0][1][0])
        out.append((e.dn, rec.parent_uuid, rec.position))
    return out


def _usn(d: Directory, dn: str) -> int:
    return int(stored(d, dn).attrs["usnchanged"][0])


def test_ancestors_that_changed_later_come_first_once_with_their_uuids(d: Directory) -> None:
    s = admin(d)
    run(d, d.add(s, m.AddRequest(OU, (("objectClass", (b"organizationalUnit",)), ("ou", (b"later",))))))
    kids = [f"cn=kid{i},{OU}" for i in range(3)]
    for dn in kids:
        run(d, d.add(s, m.AddRequest(dn, (("objectClass", (b"person",)), ("sn", (b"k",))))))
    start = _usn(d, OU) - 1  # a consumer that has everything before the OU
    run(d, d.modify(s, m.ModifyRequest(OU, (m.Change(m.MOD_REPLACE, "description", (b"changed after its children",)),))))
    ou_uuid = entry_uuid(stored(d, OU))
    base_uuid = entry_uuid(stored(d, BASE))

    page = _page(d, start, {})
    # the OU's latest change comes after its children's in the log: it is sent before the
    # first of them (at that child's position), and not again
    assert [dn for dn, _, _ in page] == [OU] + kids
    assert page[0][1] == base_uuid
    assert all(parent == ou_uuid for _, parent, _ in page[1:])
    assert page[0][2] == page[1][2] == _usn(d, kids[0])

    # the vector decides what is lacked: all of it, or nothing
    assert _page(d, start, {d.invocation: _usn(d, kids[0]) - 1}) == page
    assert _page(d, start, {d.invocation: _usn(d, OU)}) == []
    # a page from the middle of the log: the OU still comes first, sent at the child's position
    page = _page(d, _usn(d, kids[0]), {})
    assert [dn for dn, _, _ in page] == [OU] + kids[1:]
    assert page[0][2] == _usn(d, kids[1])


def test_a_group_change_sends_the_values_states_the_consumer_lacks(tmp_path, d: Directory) -> None:
    """Of ``member`` only the states the consumer's vector does not cover go (no value list);
    every attribute-level state goes. A consumer that has the group merges the one new member
    into it; one that lacks the group gets it whole. Both end equal to the supplier's."""
    from replication._consumer import apply_page
    from tests.unit.vmdir.test_directory_meta import _group, _members, new_directory
    from vmdir.store import decode_body

    s = admin(d)
    us = _members(50)
    g = _group(d, "many", us[:40])
    covered = _usn(d, g)
    run(d, d.modify(s, m.ModifyRequest(g, (m.Change(m.MOD_ADD, "member", (us[40],)),
                                           m.Change(m.MOD_DELETE, "member", (us[0],))))))
    uuid = entry_uuid(stored(d, g))

    def states(utdv: dict[bytes, int]):
        """(attrs, meta, vmeta) of the group in the page for a consumer with ``utdv``."""
        entries, _ = pull_page(d, session(d), PullRequest(CONSUMER, 0, 500, utdv, 0))
        (rec,) = [r for r in (decode_record(e.attributes[0][1][0]) for e in entries) if r.uuid == uuid]
        return decode_body(rec.body)

    attrs, meta, vmeta = states({d.invocation: covered})
    assert sorted(v.value for v in vmeta["member"]) == [us[0], us[40]]  # the added one and the removed one
    assert "member" not in attrs and {"cn", "objectclass", "member"} <= meta.keys()
    assert len(states({})[2]["member"]) == 41

    # consumers: one that had the group as of `covered`, one that lacks it; each applies the
    # pages it is sent (the first gets them twice: first all of them, then the partial one)
    def consumer(name: str) -> Directory:
        return new_directory(str(tmp_path / name))  # empty: the first page brings the whole tree

    def apply(c: Directory, utdv: dict[bytes, int]) -> None:
        entries, resp = pull_page(d, session(d), PullRequest(c.invocation, 0, 500, utdv, 0))
        res = apply_page(c, [decode_record(e.attributes[0][1][0]) for e in entries], resp, resp)
        assert res.error is None

    def members(x: Directory) -> tuple[list[bytes], list[tuple]]:
        e = stored(x, g)
        return sorted(e.attrs["member"]), sorted((v.value, v.version, v.invocation, v.orig_usn, v.deleted)
                                                 for v in e.vmeta["member"])

    fresh = consumer("fresh")
    apply(fresh, {})
    assert members(fresh) == members(d)
    had = consumer("had")
    apply(had, {})
    run(d, d.modify(s, m.ModifyRequest(g, (m.Change(m.MOD_ADD, "member", (us[41],)),))))
    apply(had, {d.invocation: _usn(d, g) - 1})  # only the new member's state travels
    assert members(had) == members(d) and us[41] in members(had)[0]


def test_values_without_a_state_of_their_own_keep_the_value_list() -> None:
    """An entry whose live values its states do not all stand for (none is written so; a
    damaged or hand-made record) still sends its value list: nothing is lost on the way."""
    from replication._supplier import _body
    from vmdir.store import StoredEntry, ValueMeta, decode_body

    inv = b"\x07" * 16
    a, b = b"cn=a", b"cn=b"
    e = StoredEntry(1, 0, "cn=g", {"member": [a, b]}, {"member": (1, 1, inv, 1, 1)},
                    {"member": [ValueMeta(a, 1, 1, inv, 1, 1)]})
    attrs, _, vmeta = decode_body(_body(e, {}))
    assert attrs["member"] == [a, b] and [v.value for v in vmeta["member"]] == [a]
    e.attrs["member"] = [a]  # every live value has its state: the list stays home
    attrs, _, vmeta = decode_body(_body(e, {}))
    assert "member" not in attrs and [v.value for v in vmeta["member"]] == [a]
