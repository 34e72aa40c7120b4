"""The protocol's value types (vmdir.proto.messages, vmdir.proto.events) as the rest of the
code relies on them: each constructor takes the fields in their declared order, positionally
or by name, with the declared defaults; values are frozen, compare and hash by value, and
survive pickle and copy. The busiest ones have their constructor written out by hand (see
the messages module), so these checks are what keep it in step with the field list."""
from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import types

import pytest

from vmdir.directory import Outcome
from vmdir.proto import events, messages as m
from vmdir.proto.results import ResultCode
from vmdir.store import StoredEntry


def _classes(module: types.ModuleType) -> list[type]:
    return [c for c in vars(module).values()
            if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == module.__name__]


CLASSES = _classes(m) + _classes(events)


# a value for each field name the messages use (the compiled module's annotations are
# evaluated, and unions come out as plain ``type``, so they cannot tell)
_SAMPLES: dict[str, object] = {
    "oid": "1.2.3", "critical": True, "value": b"val", "filters": (m.Present("f"),), "filter": m.Present("g"),
    "attr": "cn", "initial": b"ini", "any": (b"any",), "final": b"fin", "rule": "caseExactMatch",
    "dn_attrs": True, "version": 3, "name": "cn=n", "password": b"pw", "sasl_mechanism": "PLAIN",
    "sasl_credentials": b"cred", "base": "dc=b", "scope": 2, "deref": 1, "size_limit": 10, "time_limit": 20,
    "types_only": True, "attributes": ("cn",), "op": 1, "values": (b"x",), "dn": "cn=d",
    "changes": (m.Change(m.MOD_ADD, "cn", (b"x",)),), "new_rdn": "cn=r", "delete_old_rdn": True,
    "new_superior": "dc=s", "msgid": 7, "code": ResultCode.noSuchObject, "matched_dn": "dc=m",
    "message": "msg", "attributes_ber": b"0\x00", "uris": ("ldap://x/",), "reason": "eof",
    "controls": (m.Control("1.2.4"),),
}
# a second, different value for each
_OTHER: dict[str, object] = {
    "oid": "1.2.9", "critical": False, "value": b"other", "filters": (), "filter": m.Present("h"), "attr": "sn",
    "initial": None, "any": (), "final": None, "rule": None, "dn_attrs": False, "version": 2, "name": "cn=o",
    "password": None, "sasl_mechanism": None, "sasl_credentials": None, "base": "dc=o", "scope": 0, "deref": 0,
    "size_limit": 0, "time_limit": 0, "types_only": False, "attributes": (), "op": 2, "values": (),
    "dn": "cn=e", "changes": (), "new_rdn": "cn=q", "delete_old_rdn": False, "new_superior": None, "msgid": 8,
    "code": ResultCode.success, "matched_dn": "", "message": "", "attributes_ber": b"", "uris": (),
    "reason": "unbind", "controls": (),
}


def _values(cls: type, table: dict[str, object]) -> list[object]:
    out = []
    for f in dataclasses.fields(cls):
        if cls is events.RequestReceived and f.name == "op":
            out.append(m.DelRequest("cn=x") if table is _SAMPLES else m.DelRequest("cn=y"))
        elif cls is m.Extensible and f.name == "attr":
            out.append("cn" if table is _SAMPLES else None)
        else:
            out.append(table[f.name])
    return out


def test_every_class_is_covered() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {"BindRequest", "SearchRequest", "Control", "BindResponse", "SearchResultDone", "RequestReceived",
            "EncodedSearchResultEntry", "Equality", "ExtendedResponse"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_constructor_follows_the_fields(cls: type) -> None:
    fields = dataclasses.fields(cls)
    values = _values(cls, _SAMPLES)
    by_position = cls(*values)
    by_name = cls(**{f.name: v for f, v in zip(fields, values)})
    for f, v in zip(fields, values):
        assert getattr(by_position, f.name) == v
    assert by_position == by_name and hash(by_position) == hash(by_name)
    assert list(inspect.signature(cls).parameters) == [f.name for f in fields]
    if fields:  # frozen
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(by_position, fields[0].name, values[0])
    # pickle and copy give an equal value
    for back in (pickle.loads(pickle.dumps(by_position)), copy.copy(by_position), copy.deepcopy(by_position)):
        assert type(back) is cls and back == by_position
    # a different value in any one field makes a different message
    others = _values(cls, _OTHER)
    for i in range(len(fields)):
        changed = list(values)
        changed[i] = others[i]
        assert cls(*changed) != by_position, fields[i].name


def test_defaults_of_the_written_out_constructors() -> None:
    assert m.BindRequest(3, "cn=x") == m.BindRequest(3, "cn=x", None, None, None)
    assert m.Control("1.2") == m.Control("1.2", False, None)
    assert m.BindResponse(ResultCode.success) == m.BindResponse(ResultCode.success, "", "", None)
    assert m.SearchResultDone(ResultCode.success) == m.SearchResultDone(ResultCode.success, "", "")
    assert events.RequestReceived(1, m.DelRequest("cn=x")).controls == ()


def test_outcome_and_stored_entry_defaults() -> None:
    o = Outcome()
    assert (o.code, o.message, o.matched_dn, o.controls, o.extra, o.after) == (ResultCode.success, "", "", (), None, None)
    a, b = StoredEntry(1, 0, "cn=a", {}), StoredEntry(2, 0, "cn=b", {})
    a.meta["cn"] = (1, 1, b"\0" * 16, 0, 1)
    assert b.meta == {} and b.vmeta == {}  # each entry its own dicts
    assert (b.flags, b.dn, b.ndn, b.wire_user, b.wire_secret) == (0, "", "", None, None)
