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
