"""The audit log's holding of successful binds: written together, in order, within the
hold; every other event at once, after what is held."""
from __future__ import annotations

import io
import json

from vmdir.server.audit import HOLD_BYTES, AuditLog


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def events(out: io.StringIO) -> list[dict]:
    lines = out.getvalue().splitlines()
    assert all(" [audit] audit {" in ln for ln in lines), lines
    return [json.loads(ln.split(" audit ", 1)[1]) for ln in lines]


def test_binds_are_held_until_the_hold_has_passed() -> None:
    out, clock = io.StringIO(), Clock()
    log = AuditLog(out, hold=1.0, clock=clock)
    log({"event": "bind", "dn": "cn=a"})
    clock.now += 0.5
    log({"event": "bind", "dn": "cn=b"})
    assert out.getvalue() == ""
    clock.now += 0.6  # 1.1 s after the first one held
    log({"event": "bind", "dn": "cn=c"})
    assert [e["dn"] for e in events(out)] == ["cn=a", "cn=b", "cn=c"]
    assert out.getvalue().startswith("2027-01-15T08:00:00+0000 [audit] audit {")


def test_any_other_event_is_written_at_once_after_the_held_binds() -> None:
    out, clock = io.StringIO(), Clock()
    log = AuditLog(out, hold=1.0, clock=clock)
    log({"event": "bind", "dn": "cn=a"})
    log({"event": "bind_failure", "dn": "cn=b", "reason": "invalid credentials"})
    assert [(e["event"], e["dn"]) for e in events(out)] == [("bind", "cn=a"), ("bind_failure", "cn=b")]
    log({"event": "lockout", "dn": "cn=b"})
    assert len(events(out)) == 3


def test_flush_writes_what_is_held_and_nothing_twice() -> None:
    out, clock = io.StringIO(), Clock()
    log = AuditLog(out, hold=1.0, clock=clock)
    log.flush()
    assert out.getvalue() == ""
    log({"event": "bind", "dn": "cn=a"})
    log.flush()
    log.flush()
    assert [e["dn"] for e in events(out)] == ["cn=a"]


def test_a_full_hold_is_written_before_its_time() -> None:
    out, clock = io.StringIO(), Clock()
    log = AuditLog(out, hold=60.0, clock=clock)
    n = 0
    while out.getvalue() == "":
        log({"event": "bind", "dn": f"cn=user{n}", "peer": "127.0.0.1:5555"})
        n += 1
        assert n < 10_000
    written = events(out)
    assert [e["dn"] for e in written] == [f"cn=user{i}" for i in range(n)]
    assert sum(len(ln) + 1 for ln in out.getvalue().splitlines()) >= HOLD_BYTES


def test_hold_zero_writes_every_line_at_once() -> None:
    out = io.StringIO()
    log = AuditLog(out, hold=0)
    log({"event": "bind", "dn": "cn=a"})
    assert [e["dn"] for e in events(out)] == ["cn=a"]


def test_a_record_of_strings_is_written_as_the_json_encoder_writes_it() -> None:
    from vmdir.server.audit import _ENCODE, encode
    recs = [
        {"event": "bind", "who": "uid=a,dc=x", "peer": "127.0.0.1:4000", "dn": "uid=a,dc=x"},
        {"event": "bind", "dn": 'cn=Quote "q",cn=back\\slash,cn=tab\there', "who": "cn=Ünïcödé ☃,dc=x"},
        {"event": "bind", "dn": "cn=nul\x00and\x1fcontrols\u2028"},
        {},
    ]
    for rec in recs:
        assert encode(rec) == _ENCODE(rec)
        assert json.loads(encode(rec)) == rec
    mixed = {"event": "lockout", "dn": "cn=a", "failures": 5, "how": {"via": "uid"}}
    assert encode(mixed) == _ENCODE(mixed)
