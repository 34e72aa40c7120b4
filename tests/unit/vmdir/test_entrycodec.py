"""The stored entry encoding: written out as msgpack would write it, and decode_some stepping over the attributes it is not asked for."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmdir.store import StoredEntry, ValueMeta, decode_body, decode_entry, decode_some, encode_body, encode_entry
from vmdir.store._entrycodec import _skip

INV = bytes(range(16))
names = st.one_of(
    st.sampled_from(["userpassword", "cn", "pwdfailuretime", "member", "objectclass"]),
    st.text("abcdefghijklmnopqrstuvwxyz;-", min_size=1, max_size=40),  # past 31: not a fixstr
)
values = st.lists(st.binary(max_size=300), max_size=4)
meta = st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**32), st.just(INV),
                 st.integers(0, 2**63 - 1), st.integers(0, 2**64 - 1))


@st.composite
def entries(draw: st.DrawFn) -> StoredEntry:
    attrs: dict[str, list[bytes]] = {}
    metas = {}
    vmeta = {}
    for name in draw(st.lists(names, max_size=12, unique=True)):
        vals = draw(values)
        if vals:
            attrs[name] = vals
        metas[name] = draw(meta)  # an attribute with no values left keeps its metadata
        if draw(st.booleans()):
            vmeta[name] = [ValueMeta(v, 1, 2, INV, 3, 4, draw(st.booleans())) for v in vals]
    return StoredEntry(7, 3, "cn=x", attrs, metas, vmeta, draw(st.integers(0, 1)),
                       wire_user=draw(st.none() | st.binary(max_size=50)))


@settings(max_examples=300, deadline=None)
@given(entries(), st.frozensets(names, max_size=6))
def test_decode_some_gives_the_named_attributes_of_decode_entry(e: StoredEntry, wanted: frozenset[str]) -> None:
    data = encode_entry(e)
    full = decode_entry(7, data)
    some = decode_some(7, data, wanted | {"userpassword"})
    assert some.attrs == {k: v for k, v in full.attrs.items() if k in wanted | {"userpassword"}}
    assert (some.id, some.parent_id, some.rdn, some.flags, some.wire_user) == (7, 3, "cn=x", e.flags, e.wire_user)
    assert some.meta == {} and some.vmeta == {}


def test_a_cut_or_garbled_record_is_refused_with_valueerror() -> None:
    e = StoredEntry(7, 3, "cn=x", {"cn": [b"x" * 40], "userpassword": [b"{SSHA}abc"], "sn": [b"y"]},
                    {"cn": (1, 1, INV, 1, 1), "userpassword": (1, 1, INV, 1, 1), "sn": (1, 1, INV, 1, 1)})
    data = encode_entry(e)
    rec = msgpack.unpackb(data)
    body = rec[4]
    for cut in range(len(body)):
        rec[4] = body[:cut]
        with pytest.raises(ValueError):
            decode_some(7, msgpack.packb(rec), frozenset({"userpassword"}))
    rec[4] = b"\xc1" + body[1:]  # a byte msgpack never uses
    with pytest.raises(ValueError):
        decode_some(7, msgpack.packb(rec), frozenset({"userpassword"}))


@settings(max_examples=300, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.binary(max_size=70000)
    | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=20) | st.dictionaries(st.text(max_size=5), inner, max_size=20),
    max_leaves=40))
def test_skip_steps_over_any_msgpack_object(obj: object) -> None:
    data = msgpack.packb(obj, use_bin_type=True)
    assert _skip(data + b"\x01\x02", 0, 1) == len(data)
    assert _skip(data * 2, 0, 2) == 2 * len(data)


def _generic_body(e: StoredEntry, skip: frozenset[str] = frozenset(), shared: bool = False) -> bytes:
    """What encode_body writes (``shared``: the body of a stored record, where an attribute
    whose metadata an earlier one has gives that one's position), by msgpack's own packer."""
    out = []
    first: dict[tuple, int] = {}
    for name in sorted(e.attrs.keys() | e.meta.keys()):
        if name in skip:
            continue
        m = e.meta.get(name)
        if shared and m is not None:
            if m in first:
                m = first[m]  # the position of the first attribute with it
            else:
                first[m] = len(out)
        out.append((name, e.attrs.get(name, []), m,
                    [(v.value, v.local_usn, v.version, v.invocation, v.time_ms, v.orig_usn, v.deleted)
                     for v in e.vmeta[name]] if e.vmeta.get(name) else None))
    return msgpack.packb(out, use_bin_type=True)


# the sizes where msgpack changes its encoding: fixstr/str8/str16, bin8/bin16/bin32,
# fixarray/array16, fixint/uint8/16/32/64
edge_values = st.lists(st.sampled_from([0, 1, 31, 32, 255, 256, 65535, 65536]).map(lambda n: b"v" * n)
                       | st.binary(max_size=40), max_size=17)
edge_ints = st.sampled_from([0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]) | st.integers(0, 2**64 - 1)
edge_names = names | st.sampled_from(["n" * 31, "n" * 32, "n" * 255, "n" * 256, "é" * 16, "cn;lang-ü"])


@st.composite
def edge_entries(draw: st.DrawFn) -> StoredEntry:
    attrs: dict[str, list[bytes]] = {}
    metas = {}
    vmeta = {}
    shared = draw(st.tuples(edge_ints, edge_ints, st.just(INV), edge_ints, edge_ints))
    for name in draw(st.lists(edge_names, max_size=20, unique=True)):  # past 15: not a fixarray
        vals = draw(edge_values)
        if vals:
            attrs[name] = vals
        metas[name] = shared if draw(st.booleans()) else draw(meta)  # one tuple for many, as an add stamps
        if vals and draw(st.booleans()):
            vmeta[name] = [ValueMeta(v, draw(edge_ints), 1, INV, draw(edge_ints), 4, draw(st.booleans())) for v in vals]
    return StoredEntry(draw(edge_ints), draw(edge_ints), draw(edge_names), attrs, metas, vmeta, draw(st.integers(0, 1)),
                       wire_user=draw(st.none() | st.binary(max_size=300)), wire_secret=draw(st.none() | st.binary(max_size=5)))


@settings(max_examples=300, deadline=None)
@given(edge_entries(), st.frozensets(edge_names, max_size=3))
def test_the_written_out_encoding_is_msgpacks_own(e: StoredEntry, skip: frozenset[str]) -> None:
    assert encode_body(e, skip) == _generic_body(e, skip)
    assert encode_entry(e) == msgpack.packb([3, e.parent_id, e.rdn, e.flags, _generic_body(e, shared=True), e.wire_user,
                                             e.wire_secret], use_bin_type=True)
    data = encode_entry(e)
    # read back, the values' states are built when first asked for; written back before
    # that (a change to another attribute), they are written from the lists read, the same
    unasked = decode_entry(e.id, data)
    assert encode_entry(unasked) == data and encode_entry(unasked.copy()) == data
    assert encode_body(unasked, skip) == encode_body(e, skip)
    back = decode_entry(e.id, data)
    assert (back.attrs, back.meta, back.vmeta) == ({k: v for k, v in e.attrs.items() if v}, e.meta, e.vmeta)
    assert encode_entry(back) == data
    # decode_some steps over shared metadata (a position) as over written-out metadata
    assert decode_some(e.id, data, skip | {"cn"}).attrs == {
        k: v for k, v in e.attrs.items() if v and k in skip | {"cn"}}
    # a record written before metadata was shared (format 2) reads the same
    old = msgpack.packb([2, e.parent_id, e.rdn, e.flags, _generic_body(e), e.wire_user, e.wire_secret], use_bin_type=True)
    back = decode_entry(e.id, old)
    assert (back.attrs, back.meta, back.vmeta, back.wire_user) == (
        {k: v for k, v in e.attrs.items() if v}, e.meta, e.vmeta, e.wire_user)


def test_a_stored_record_writes_shared_metadata_once() -> None:
    stamp = (41, 1, INV, 1_795_000_000_000, 41)
    attrs = {f"attr{i:02d}": [b"value %d" % i] for i in range(24)}
    e = StoredEntry(9, 3, "cn=x", attrs, {a: stamp for a in attrs} | {"attr05": (57, 2, INV, 1_795_000_100_000, 57)})
    body = msgpack.unpackb(msgpack.unpackb(encode_entry(e))[4])
    assert [a[2] for a in body[:7]] == [list(stamp), 0, 0, 0, 0, [57, 2, INV, 1_795_000_100_000, 57], 0]
    assert len(encode_entry(e)) < len(encode_body(e)) - 20 * len(msgpack.packb(stamp))
    back = decode_entry(9, encode_entry(e))
    assert back.meta == e.meta and back.meta["attr00"] is back.meta["attr23"]  # one tuple, as stamped


def test_metadata_referring_to_no_earlier_attribute_is_refused() -> None:
    stamp = [1, 1, INV, 5, 1]
    for body in ([["a", [b"x"], 0, None]],  # itself
                 [["a", [b"x"], stamp, None], ["b", [b"y"], 2, None]],  # a later one
                 [["a", [], None, None], ["b", [b"y"], 0, None]]):  # one without metadata
        with pytest.raises(ValueError):
            decode_entry(1, msgpack.packb([3, 0, "cn=x", 0, msgpack.packb(body, use_bin_type=True), None, None],
                                          use_bin_type=True))


def test_value_metadata_of_another_shape_or_type_is_refused() -> None:
    """A peer's page or a damaged record with a value's state that is not the seven fields
    of ValueMeta fails like any other malformed body: ValueError."""
    stamp = [1, 1, INV, 5, 1]
    good = [b"cn=a", 1, 1, INV, 5, 1, False]
    body = [["member", [b"cn=a"], stamp, [good]]]
    _, _, vmeta = decode_body(msgpack.packb(body, use_bin_type=True))
    assert vmeta["member"][0] == ValueMeta(b"cn=a", 1, 1, INV, 5, 1, False)
    for bad in (good[:6], good + [1], ["cn=a"] + good[1:], good[:1] + ["1"] + good[2:], 5):
        body = msgpack.packb([["member", [b"cn=a"], stamp, [bad]]], use_bin_type=True)
        with pytest.raises(ValueError):
            decode_body(body)
        # a stored record's are built when first asked for: refused then
        e = decode_entry(1, msgpack.packb([3, 0, "cn=x", 0, body, None, None], use_bin_type=True))
        assert e.attrs == {"member": [b"cn=a"]}
        with pytest.raises(ValueError):
            e.vmeta
    with pytest.raises(ValueError):  # not a list of states at all
        decode_entry(1, msgpack.packb([3, 0, "cn=x", 0, msgpack.packb([["member", [b"cn=a"], stamp, 7]]), None, None]))


def test_values_outside_the_written_out_encoding_go_to_msgpack() -> None:
    # a negative number or a str value is not what the store writes, but it is still written as msgpack would
    e = StoredEntry(1, 2, "cn=x", {"cn": [b"x"]}, {"cn": (-5, 1, INV, 3, 4)})
    assert encode_body(e) == _generic_body(e)
    e = StoredEntry(1, 2, "cn=x", {"cn": ["text"]}, {"cn": (5, 1, INV, 3, 4)})  # type: ignore[list-item]
    assert encode_body(e) == _generic_body(e)
    e = StoredEntry(-1, -2, "cn=x", {"cn": [b"x"]}, {"cn": (5, 1, INV, 3, 4)})
    assert decode_entry(-1, encode_entry(e)).parent_id == -2
