"""The conflict rule and the replication encodings, without sockets or a store."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replication._merge import NAME, State, merge, wins
from replication._wire import (
    PullRequest, PullResponse, Record, decode_pull_request, decode_pull_response, decode_record,
    encode_pull_request, encode_pull_response, encode_record,
)
from vmdir.proto.results import LDAPError
from vmdir.store import StoredEntry, ValueMeta

INV = [bytes([i]) * 16 for i in range(1, 4)]


def key(attr: str, v: bytes) -> bytes:
    return v.lower()


# a change: (attribute, value or None for "delete the attribute", version, time, invocation index, orig usn)
change = st.tuples(st.sampled_from(["sn", "description", NAME]), st.sampled_from([b"a", b"B", b"c", None]),
                   st.integers(1, 3), st.integers(0, 3), st.integers(0, 2), st.integers(1, 50))
member_change = st.tuples(st.sampled_from([b"x", b"X", b"y", b"z"]), st.booleans(), st.integers(1, 3),
                          st.integers(0, 3), st.integers(0, 2), st.integers(1, 50))


def state(changes: list, members: list) -> State:
    attrs: dict[str, list[bytes]] = {}
    meta = {}
    for a, v, ver, t, i, usn in changes:
        m = (usn, ver, INV[i], t, usn)
        if a in meta and not wins(m, meta[a]):
            continue
        meta[a] = m
        if a != NAME:
            if v is None:
                attrs.pop(a, None)
            else:
                attrs[a] = [v]
    vm: dict[bytes, ValueMeta] = {}
    for v, deleted, ver, t, i, usn in members:
        nv = ValueMeta(v, usn, ver, INV[i], t, usn, deleted)
        k = key("member", v)
        if k not in vm or wins(nv.meta(), vm[k].meta()):
            vm[k] = nv
    vmeta = {"member": list(vm.values())} if vm else {}
    if vm:
        live = [x.value for x in vm.values() if not x.deleted]
        if live:
            attrs["member"] = live
    return State(attrs, meta, vmeta, None, "cn=e")


def apply_all(states: list[State]) -> StoredEntry:
    e: StoredEntry | None = None
    for s in states:
        e = merge(e, s, key).entry
    assert e is not None
    return e


def canon(e: StoredEntry) -> tuple:
    return (tuple(sorted((a, tuple(sorted(key(a, x) for x in v))) for a, v in e.attrs.items())),
            tuple(sorted((a, tuple(m[1:])) for a, m in e.meta.items())),
            tuple(sorted((key("member", v.value), v.meta()[1:], v.deleted) for vs in e.vmeta.values() for v in vs)))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(change, max_size=4), st.lists(member_change, max_size=4)), min_size=1, max_size=3))
def test_any_order_of_the_same_states_gives_the_same_entry(parts: list) -> None:
    # one originating USN names one change: number them uniquely, as a node's USNs are
    n = itertools.count(1)
    parts = [([x[:5] + (next(n),) for x in c], [x[:5] + (next(n),) for x in mm]) for c, mm in parts]
    states = [state(c, mm) for c, mm in parts]
    results = {canon(apply_all([states[i] for i in order])) for order in itertools.permutations(range(len(states)))}
    assert len(results) == 1
    # and merging a state twice changes nothing (idempotent)
    e = apply_all(states)
    for s in states:
        assert not merge(e, s, key).changed


def test_conflict_rule_version_then_time_then_invocation() -> None:
    assert wins((1, 2, INV[0], 0, 1), (9, 1, INV[2], 99, 9))  # higher version
    assert wins((1, 1, INV[0], 5, 1), (9, 1, INV[2], 4, 9))  # same version: later time
    assert wins((1, 1, INV[2], 5, 1), (9, 1, INV[0], 5, 9))  # then higher invocation
    assert not wins((1, 1, INV[0], 5, 1), (1, 1, INV[0], 5, 1))  # the same change does not win
    assert wins((1, 1, INV[0], 5, 1), None)


def test_concurrent_member_adds_both_survive_and_a_remove_applies() -> None:
    base = state([("sn", b"a", 1, 0, 0, 1)], [(b"m0", False, 1, 0, 0, 1)])
    on_a = state([], [(b"m1", False, 1, 5, 0, 2), (b"m0", True, 2, 5, 0, 2)])
    on_b = state([], [(b"m2", False, 1, 5, 1, 7)])
    for order in ([base, on_a, on_b], [base, on_b, on_a], [on_b, base, on_a]):
        e = apply_all(order)
        assert sorted(e.attrs["member"]) == [b"m1", b"m2"]


def test_wire_round_trips_and_refuses_garbage() -> None:
    req = PullRequest(INV[0], 2**40, 500, {INV[1]: 7, INV[2]: 2**62})
    assert decode_pull_request(encode_pull_request(req)) == req
    resp = PullResponse(INV[1], 12, 13, True, {INV[0]: 1}, {INV[2]: 7})
    assert decode_pull_response(encode_pull_response(resp)) == resp
    rec = Record(INV[0], None, "cn=x", 4, b"\x90")
    assert decode_record(encode_record(rec)) == rec
    held = PullRequest(INV[0], 3, 10, {}, hold=20_000, certificate=b"\x30\x03der")
    assert decode_pull_request(encode_pull_request(held)) == held
    assert decode_pull_request(encode_pull_request(PullRequest(INV[0], 3, 10, {}, certificate=b""))).certificate == b""
    announcing = PullRequest(INV[0], 3, 10, {}, certificate=b"\x30\x03der", url="ldaps://b.example:11636")
    assert decode_pull_request(encode_pull_request(announcing)) == announcing
    assert decode_pull_request(encode_pull_request(PullRequest(INV[0], 3, 10, {}, url="ldap://é:1"))).url == "ldap://é:1"
    plain = encode_pull_request(PullRequest(INV[0], 3, 10, {}))[2:]
    for bad_url in (b"\x82\x02\xff\xfe", b"\x82\x82\x04\x01" + b"x" * 1025):  # not UTF-8; too long
        body = plain + bad_url
        with pytest.raises(LDAPError):
            decode_pull_request(b"\x30\x82" + len(body).to_bytes(2, "big") + body)
    with pytest.raises(ValueError):
        encode_pull_request(PullRequest(INV[0], 3, 10, {}, hold=-1))
    too_long = encode_pull_request(req)[2:] + b"\x80\x04\x7f\xff\xff\xff"  # a hold past an hour
    with pytest.raises(LDAPError):
        decode_pull_request(b"\x30" + bytes([len(too_long)]) + too_long)
    for bad in (b"", b"\x30\x03\x04\x01", b"\x30\x80", encode_pull_request(req) + b"\x00", b"\x02\x01\x05"):
        with pytest.raises(LDAPError):
            decode_pull_request(bad)
    with pytest.raises(LDAPError):
        decode_pull_request(None)
    for bad in (b"\x93\x01\x02\x03", b"\xc1", encode_record(Record(b"short", None, "cn=x", 1, b""))):
        with pytest.raises(LDAPError):
            decode_record(bad)
