"""When applying replicated changes tells every process to drop the names it cached (the
``dngen`` generation): as a local write does, only when an entry's name or place changes
or a naming context appears or goes, not for every new entry (real stores, the supplier's
``pull_page`` in process)."""
from __future__ import annotations

from replication._puller import HOLD_MS, Puller
from tests.unit.replication.test_puller_stale import InProcess, consumer  # noqa: F401 - consumer: fixture
from tests.unit.vmdir.test_directory_meta import ADMIN, BASE, admin, d, run, stored  # noqa: F401 - d: fixture
from vmdir.directory import Directory
from vmdir.proto import messages as m

USERS = f"cn=Users,{BASE}"


def _gen(d: Directory) -> int:
    with d.store.read() as r:
        return r.meta_int("dngen")


def _dn(d: Directory, eid: int) -> str:
    with d.store.read() as r:
        d.dit.begin(r)
        return d.dit.dn_of(r, eid)[0]


def _id(d: Directory, dn: str) -> int | None:
    with d.store.read() as r:
        d.dit.begin(r)
        return d.dit.id_of(r, dn)


def _person(d: Directory, dn: str) -> None:
    run(d, d.add(admin(d), m.AddRequest(dn, (("objectClass", (b"person",)), ("sn", (b"p",))))))


def test_replicated_adds_and_deletes_keep_cached_names_renames_and_naming_contexts_drop_them(
        d: Directory, consumer: Directory) -> None:
    sup = InProcess(d)
    p = Puller(consumer, "a", sup, initial=True)
    p.sync()  # the full copy
    p.initial = False
    admin_id = _id(consumer, ADMIN)
    assert admin_id is not None and _dn(consumer, admin_id) == ADMIN  # now cached
    gen = _gen(consumer)

    # new entries under an existing parent, and a delete: no cached name changed
    people = [f"cn=p{i},{USERS}" for i in range(3)]
    for dn in people:
        _person(d, dn)
    run(d, d.delete(admin(d), m.DelRequest(people[0])))
    p.sync(HOLD_MS)
    assert _id(consumer, people[1]) is not None and _id(consumer, people[0]) is None
    assert _gen(consumer) == gen
    assert admin_id in consumer.dit._dn_cache  # this process kept its cache too

    # a rename: every process drops the names, and the new one is what resolves
    pid = _id(consumer, people[1])
    assert pid is not None and _dn(consumer, pid) == people[1]
    run(d, d.modify_dn(admin(d), m.ModifyDNRequest(people[1], "cn=renamed", True)))
    p.sync(HOLD_MS)
    assert _gen(consumer) > gen
    assert _dn(consumer, pid) == f"cn=renamed,{USERS}"
    assert _id(consumer, people[1]) is None

    # a new naming context: every process must reread the roots to resolve names under it
    gen = _gen(consumer)
    run(d, d.add(admin(d), m.AddRequest("dc=example,dc=com", (
        ("objectClass", (b"domain",)), ("dc", (b"example",))))))
    p.sync(HOLD_MS)
    assert _gen(consumer) > gen
    assert _id(consumer, "dc=example,dc=com") is not None
    assert stored(consumer, "dc=example,dc=com").attrs["dc"] == [b"example"]
