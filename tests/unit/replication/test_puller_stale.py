"""What the puller takes for being out of touch with the forest (real stores, the
supplier's ``pull_page`` in process, no sockets)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from replication._puller import HOLD_MS, Puller, Stale
from replication._supplier import pull_page
from replication._wire import PullRequest, PullResponse, Record, decode_record
from tests.unit.replication.test_supplier_hold import session
from tests.unit.vmdir.test_directory_meta import ADMIN, BASE, admin, d, new_directory, run, stored  # noqa: F401 - d: fixture
from vmdir.directory import Directory, writes_paused
from vmdir.proto import messages as m


@dataclasses.dataclass
class InProcess:
    """A supplier answering from ``d`` at once; ``meanwhile`` runs while a pull is "held",
    and ``purged`` is added to what it says it purged."""

    d: Directory
    url: str = "in-process"
    meanwhile: Callable[[], None] | None = None
    purged: dict[bytes, int] = dataclasses.field(default_factory=dict)
    asked: list[PullRequest] = dataclasses.field(default_factory=list)

    def connect(self) -> None:
        pass

    def close(self) -> None:
        pass

    def prefetch(self, req: PullRequest) -> None:
        pass

    def pull(self, req: PullRequest) -> tuple[list[Record], PullResponse]:
        self.asked.append(req)
        if self.meanwhile is not None:
            self.meanwhile()
        entries, resp = pull_page(self.d, session(self.d), req)
        resp = dataclasses.replace(resp, purged={**resp.purged, **self.purged})
        return [decode_record(e.attributes[0][1][0]) for e in entries], resp


@pytest.fixture()
def consumer(tmp_path):
    dr = new_directory(str(tmp_path / "b"))  # empty: it joins by copying from the supplier
    yield dr
    dr.store.close()


def _local_delete(d: Directory) -> int:
    """A person added and deleted on ``d`` itself; the USN of the delete."""
    dn = f"cn=short-lived,cn=Users,{BASE}"
    run(d, d.add(admin(d), m.AddRequest(dn, (("objectClass", (b"person",)), ("sn", (b"x",))))))
    run(d, d.delete(admin(d), m.DelRequest(dn)))
    with d.store.read() as r:
        return r.meta_int("next_usn")


def test_deletes_this_node_made_while_its_pull_was_held_are_no_sign_of_being_out_of_touch(
        d: Directory, consumer: Directory) -> None:
    """A held pull's vector is as old as the hold. Meanwhile this node deleted an entry,
    the supplier received the delete and (with a short tombstone lifetime) purged its
    tombstone: its answer says it purged a delete of this node's above the request's
    vector. This node has its own changes: it is not out of touch."""
    sup = InProcess(d)
    p = Puller(consumer, "a", sup, initial=True)
    p.sync()  # the full copy
    p.initial = False
    deleted: list[int] = []

    def meanwhile() -> None:
        deleted.append(_local_delete(consumer))
        sup.purged = {consumer.invocation: deleted[-1]}

    sup.meanwhile = meanwhile
    run(d, d.modify(admin(d), m.ModifyRequest(ADMIN, (m.Change(m.MOD_REPLACE, "description", (b"x",)),))))
    p.sync(HOLD_MS)
    assert sup.asked[-1].utdv[consumer.invocation] < deleted[0]  # the request did not cover it
    with consumer.store.read() as r:
        assert writes_paused(r) is None
    assert stored(consumer, ADMIN).attrs["description"] == [b"x"]

    # another originator's purged deletes beyond this node's vector still stop it
    sup.meanwhile = None
    sup.purged = {b"\x07" * 16: 5}
    with pytest.raises(Stale):
        p.sync(HOLD_MS)
    with consumer.store.read() as r:
        assert "tombstone lifetime" in (writes_paused(r) or "")
