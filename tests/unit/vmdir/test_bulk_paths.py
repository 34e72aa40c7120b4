"""The small pieces bulk import leans on for speed: each must give exactly what the plain
form it replaced gave (a prepared add through pickle, entryUUID values, timestamps,
entryUUID bytes, the structural class from the schema check)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import os
import pickle
import re
import uuid

import pytest

from vmdir.directory._directory import PreparedAdd, gentime, new_uuid
from vmdir.model.schema import Schema
from vmdir.proto import messages as m
from vmdir.store import StoreError, entry_uuid
from vmdir.store._entrycodec import StoredEntry

UUID4 = re.compile(rb"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_prepared_add_crosses_pickle_with_every_field() -> None:
    fields = dataclasses.fields(PreparedAdd)
    args = ("uid=a,dc=x", ("uid=a", "dc=x"), {"uid": [b"a"], "objectclass": [b"account"]},
            {"1.2.3": m.Control("1.2.3", True, b"v")}, True, ("uidnumber",), "account",
            {"uid": {b"\x01a"}}, (b"wire", None), 42, "uid=a")
    p = PreparedAdd(*args)
    # the written-out constructor takes the fields in their order, and none is left at its default
    params = inspect.signature(PreparedAdd).parameters
    assert list(params) == [f.name for f in fields]
    assert [getattr(p, f.name) for f in fields] == list(args)
    assert all(a != params[f.name].default for f, a in zip(fields, args))
    back = pickle.loads(pickle.dumps(p, protocol=pickle.HIGHEST_PROTOCOL))
    assert type(back) is PreparedAdd
    assert back == p
    assert len(p.__reduce__()[1]) == len(fields)  # a field added later must be added to __reduce__ too


def test_new_uuid_is_a_random_version_4_uuid() -> None:
    got = [new_uuid() for _ in range(2000)]  # across several refills of the random buffer
    assert all(UUID4.match(u) for u in got), [u for u in got if not UUID4.match(u)][:3]
    assert len(set(got)) == len(got)
    assert all(uuid.UUID(u.decode()).version == 4 for u in got[:10])


def test_new_uuid_in_a_forked_child_does_not_repeat_the_parent() -> None:
    new_uuid()  # the buffer now holds unused bytes that a fork would copy
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(w, new_uuid())
        os._exit(0)
    os.close(w)
    child = os.read(r, 64)
    os.close(r)
    os.waitpid(pid, 0)
    mine = new_uuid()
    assert UUID4.match(child) and child != mine


@pytest.mark.parametrize("ts", [-0.5, 0.0, 1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.0, 1_700_000_000.5, 2_000_000_000.25])
def test_gentime_equals_the_formatted_time(ts: float) -> None:
    want = dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y%m%d%H%M%SZ").encode()
    assert gentime(ts) == want
    assert gentime(ts) == want  # a second time, from the last second remembered
    frac = dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y%m%d%H%M%S.%fZ").encode()
    assert gentime(ts, frac=True) == frac


@pytest.mark.parametrize("text", [
    "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
    "{6ba7b810-9dad-11d1-80b4-00c04fd430c8}", "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    "6ba7b8109dad11d180b400c04fd430c8",
])
def test_entry_uuid_reads_every_form_uuid_reads(text: str) -> None:
    e = StoredEntry(7, 1, "cn=x", {"entryuuid": [text.encode()]})
    assert entry_uuid(e) == uuid.UUID(text).bytes


@pytest.mark.parametrize("text", ["6ba7b810-9dad-11d1-80b4-00c04fd430cz", "6ba7b810-9dad-11d1-80b4-00c04fd430", "",
                                  "6ba7b810+9dad-11d1-80b4-00c04fd430c8", "6ba7b810-9dad-11d1-80b4 00c04fd430c8"])
def test_entry_uuid_refuses_what_is_not_a_uuid(text: str) -> None:
    with pytest.raises(StoreError):
        entry_uuid(StoredEntry(7, 1, "cn=x", {"entryuuid": [text.encode()]}))


def test_check_entry_returns_the_structural_class() -> None:
    s = Schema.default()
    got = s.check_entry({"objectclass": [b"top", b"person", b"organizationalPerson", b"inetOrgPerson",
                                         b"posixAccount"], "cn": [b"a"], "sn": [b"b"], "uid": [b"a"],
                         "uidnumber": [b"1"], "gidnumber": [b"1"], "homedirectory": [b"/h"]})
    assert got == "inetOrgPerson" == s.structural_class([b"top", b"person", b"inetOrgPerson", b"posixAccount"])
    assert s.check_entry({"objectclass": [b"person", b"extensibleObject"], "cn": [b"a"], "sn": [b"b"]}) == "person"
