"""SASL EXTERNAL: whom a connection's certificate or local peer uid (ldapi) names, and the
bind over a real store: a local administrator gets in even when locked out, others do not."""
from __future__ import annotations

import pytest

from vmdir.directory import Directory, DirectoryConfig, Session, initialise, node_identity
from vmdir.directory._directory import external_identity
from vmdir.model.schema import Schema
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError, ResultCode
from vmdir.store import Store

BASE = "dc=lightwave,dc=local"
ADMIN = f"cn=Administrator,cn=Users,{BASE}"
PW = "Admin-pw-1234"
LOCAL = {0: ADMIN, 1234: ADMIN}  # root and the server's own user (uid 1234 here)


@pytest.mark.parametrize(("uid", "name"), [(0, ADMIN), (1234, ADMIN), (1000, None), (65534, None)])
def test_local_peer_maps_root_and_the_server_user_only(uid: int, name: str | None) -> None:
    who, how = external_identity(Session(local_peer=(uid, 42)), LOCAL)
    assert who == name
    assert how == {"method": "EXTERNAL", "via": "ldapi", "uid": uid, "gid": 42}


def test_certificate_subject_names_the_entry() -> None:
    s = Session(tls=True, client_cert_subject="CN=alice")
    assert external_identity(s, LOCAL) == ("CN=alice", {"method": "EXTERNAL", "via": "certificate"})


def test_local_peer_wins_over_a_certificate() -> None:
    s = Session(tls=True, client_cert_subject="CN=alice", local_peer=(1000, 1000))
    assert external_identity(s, LOCAL)[0] is None


@pytest.mark.parametrize("s", [Session(), Session(tls=True), Session(client_cert_subject="CN=x")])
def test_no_identity_is_inappropriate(s: Session) -> None:
    with pytest.raises(LDAPError) as ei:
        external_identity(s, LOCAL)
    assert ei.value.code == ResultCode.inappropriateAuthentication


def test_ldapi_is_secure_like_tls() -> None:
    assert Session(local_peer=(5, 5)).secure and Session(tls=True).secure and not Session().secure


# ---------------------------------------------------------------------- the bind, over a store

@pytest.fixture()
def events() -> list[dict]:
    return []  # the audit events of ``d``


@pytest.fixture()
def d(tmp_path, events):
    cfg = DirectoryConfig(password_params=(("time_cost", 1), ("memory_cost", 8)))
    store = Store(str(tmp_path / "db"), map_size=1 << 30, indexes={k: set(v) for k, v in cfg.indexes.items()})
    inv, sid, _ = node_identity(store)
    dr = Directory(store, Schema.default(), cfg, invocation=inv, server_id=sid, admin_dns=[ADMIN],
                   local_admins=LOCAL)
    initialise(dr, "lightwave.local", PW)
    dr.audit_sink = events.append
    yield dr
    store.close()


EXTERNAL = m.BindRequest(3, "", None, "EXTERNAL", None)


def _lock_out(d: Directory) -> None:
    for _ in range(5):
        out = d.bind(Session(), m.BindRequest(3, ADMIN, b"wrong-Guess-1"))
        assert out.code == ResultCode.invalidCredentials
        (res,) = d.run_writes([out.after])
        assert not isinstance(res, BaseException)
    assert d.bind(Session(), m.BindRequest(3, ADMIN, PW.encode())).code == ResultCode.invalidCredentials


def test_local_root_binds_as_the_administrator_even_when_locked_out(d: Directory, events: list[dict]) -> None:
    _lock_out(d)
    s = Session(local_peer=(0, 0), peer="ldapi pid=1 uid=0 gid=0")
    out = d.bind(s, EXTERNAL)
    assert out.code == ResultCode.success and out.after is None
    assert (s.dn, s.is_admin, s.method) == (ADMIN, True, "EXTERNAL")
    assert d.whoami(s).extra == (None, f"dn:{ADMIN}".encode())
    assert events[-1] == {"event": "bind", "who": ADMIN, "peer": "ldapi pid=1 uid=0 gid=0", "dn": ADMIN,
                            "method": "EXTERNAL", "via": "ldapi", "uid": 0, "gid": 0}


def test_other_local_users_are_refused_and_stay_anonymous(d: Directory, events: list[dict]) -> None:
    s = Session(local_peer=(1000, 100))
    out = d.bind(s, EXTERNAL)
    assert out.code == ResultCode.invalidCredentials
    assert s.anonymous and not s.is_admin
    assert events[-1]["event"] == "bind_failure" and events[-1]["uid"] == 1000


def test_authorization_identity_must_be_the_mapped_one(d: Directory) -> None:
    req = m.BindRequest(3, "", None, "EXTERNAL", f"dn:cn=nobody,cn=Users,{BASE}".encode())
    with pytest.raises(LDAPError) as ei:
        d.bind(Session(local_peer=(0, 0)), req)
    assert ei.value.code == ResultCode.insufficientAccessRights
    assert d.bind(Session(local_peer=(0, 0)), m.BindRequest(3, "", None, "EXTERNAL", f"dn:{ADMIN}".encode())).code == 0


def test_sasl_plain_over_ldapi_needs_no_tls(d: Directory) -> None:
    plain = m.BindRequest(3, "", None, "PLAIN", b"\0" + ADMIN.encode() + b"\0" + PW.encode())
    s = Session(local_peer=(1000, 100))
    assert d.bind(s, plain).code == ResultCode.success and s.dn == ADMIN
    with pytest.raises(LDAPError) as ei:
        d.bind(Session(), plain)
    assert ei.value.code == ResultCode.confidentialityRequired
