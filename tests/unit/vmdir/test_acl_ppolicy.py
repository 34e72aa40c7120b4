"""Access rules (parsing, combining) and password policy decisions: pure code."""
from __future__ import annotations

import pytest

from vmdir.directory._acl import AccessPolicy, Holder, parse_rule
from vmdir.directory import _ppolicy as pp
from vmdir.directory._session import Session


def _rule(text: str):
    return parse_rule(text, lambda dn: dn.lower().replace(" ", ""), lambda a: a.lower())


@pytest.mark.parametrize("text, why", [
    ("permit read by users", "allow"),
    ("allow read", "by SUBJECT"),
    ("allow fly by users", "unknown right"),
    ("allow read by everyone", "unknown subject"),
    ("allow read at mail by users", "expected 'on ATTRS'"),
    ("allow read by group:", "unknown subject"),
])
def test_bad_rules_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        _rule(text)


def test_rule_parts() -> None:
    r = _rule("deny read,write on mail, telephoneNumber by group:cn=X,dc=a")
    assert not r.allow and r.rights == {"read", "write"} and r.attrs == {"mail", "telephonenumber"}
    assert r.subject == "group" and r.target == "cn=x,dc=a" and not r.everything
    r = _rule("allow all by self")
    assert r.everything and r.rights == {"read", "write", "add", "delete"} and r.attrs is None


def _policy(rules_by_holder: list[tuple[int, str, list[str]]], groups: frozenset[str] = frozenset()) -> AccessPolicy:
    holders = [Holder(i, ndn, 1, [_rule(t) for t in rules]) for i, ndn, rules in rules_by_holder]
    p = AccessPolicy(lambda r: holders, lambda r, ndn: groups, lambda r: 1)
    p.sync(None)
    return p


def _session(ndn: str, root: int = 1, groups: frozenset[str] = frozenset()) -> Session:
    return Session(dn=ndn, ndn=ndn, entry_id=99, root_id=root, groups=groups, acl_gen=1, method="simple")


def test_views_combine_rules_deny_wins_and_protected_attrs_need_naming() -> None:
    p = _policy([(1, "dc=a", ["allow read by users", "deny read on mail by users",
                              "allow write on description by group:cn=g,dc=a"]),
                 (5, "cn=users,dc=a", ["allow read on userpassword by dn:cn=u,cn=users,dc=a"])])
    u = _session("cn=u,cn=users,dc=a", groups=frozenset({"cn=g,dc=a"}))
    top = p.view(u, 2, "cn=x,dc=a", 1)
    assert top.read and top.can_read("cn") and not top.can_read("mail") and not top.can_read("userpassword")
    assert top.can_write("description") and not top.can_write("cn") and not top.plain
    below = p.view(u, 7, "cn=y,cn=users,dc=a", 1)
    assert below.can_read("userpassword") and not below.can_read("mail")
    # another tenant's principal matches nothing, even a rule naming it
    stranger = _session("cn=u,cn=users,dc=a", root=2, groups=frozenset({"cn=g,dc=a"}))
    v = p.view(stranger, 7, "cn=y,cn=users,dc=a", 1)
    assert not v.read and not v.can_write("description")
    anon = Session()
    assert not p.view(anon, 2, "cn=x,dc=a", 1).read


def test_self_rules_apply_to_the_own_entry_only() -> None:
    p = _policy([(1, "dc=a", ["allow read by users", "allow write on userPassword by self"])])
    u = _session("cn=u,dc=a")
    assert p.view(u, 99, "cn=u,dc=a", 1).can_write("userpassword")
    assert not p.view(u, 98, "cn=v,dc=a", 1).can_write("userpassword")


def test_password_quality() -> None:
    policy = pp.PasswordPolicy.from_attrs(pp.DEFAULTS)
    assert policy.min_length == 8 and policy.min_classes == 3 and policy.lockout and policy.max_failure == 5
    assert policy.quality_error(b"Ab1-")[0] == pp.TOO_SHORT
    assert policy.quality_error(b"abcdefgh1")[0] == pp.INSUFFICIENT_QUALITY
    assert policy.quality_error(b"Abcdefgh1") is None and policy.quality_error("Ünïcode-pw".encode()) is None


def test_lockout_window_and_expiry() -> None:
    policy = pp.PasswordPolicy(lockout=True, max_failure=3, lockout_duration=60, failure_interval=30, max_age=100,
                               expire_warning=20)
    now = 1_800_000_000.0
    locked_at = b"20270115080000Z"  # 1800000000 - 0 s
    assert pp.parse_gentime(locked_at) == now
    assert pp.locked(policy, {"pwdaccountlockedtime": [locked_at]}, now + 59)
    assert not pp.locked(policy, {"pwdaccountlockedtime": [locked_at]}, now + 61)
    assert pp.locked(policy, {"pwdaccountlockedtime": [b"000001010000Z"]}, now + 10**6)
    fails = [b"20270115075900.000000Z", b"20270115075950.5Z"]
    assert pp.recent_failures(policy, {"pwdfailuretime": fails}, now) == [fails[1]]
    assert pp.expired(policy, {"pwdchangedtime": [locked_at]}, now + 101) == (True, None)
    assert pp.expired(policy, {"pwdchangedtime": [locked_at]}, now + 90) == (False, 10)
    assert pp.expired(policy, {"pwdchangedtime": [locked_at]}, now + 10) == (False, None)


def test_service_roles_add_to_rules_in_their_scope_only() -> None:
    from vmdir.directory._acl import SERVICE_ROLES

    member_of = {"cn=ca,cn=serviceaccounts,dc=sys": frozenset({"cn=caservices,cn=groups,dc=sys"}),
                 "cn=r,cn=serviceaccounts,dc=sys": frozenset({"cn=replicationagents,cn=groups,dc=sys"}),
                 "cn=ca,cn=serviceaccounts,dc=a": frozenset({"cn=caservices,cn=groups,dc=sys"})}
    p = _policy([(1, "dc=a", ["allow read by users"])])
    p._groups_of = lambda r, ndn: member_of.get(ndn, frozenset())
    p.service_roles = {role: f"cn={g.lower()},cn=groups,dc=sys" for role, g in SERVICE_ROLES.items()}
    ca = _session("cn=ca,cn=serviceaccounts,dc=sys", root=3)
    p.refresh_session(None, ca, 1)
    assert ca.roles == {"ca"} and not ca.is_admin
    user = p.view(ca, 2, "cn=u,cn=users,dc=a", 1, "dc=a")
    assert user.read and user.can_read("cn") and not user.can_read("userpassword") and not user.can_write("cn")
    mine = p.view(ca, 4, "cn=k,cn=certificateauthority,dc=a", 1, "dc=a")
    assert mine.can_read("userpassword") and mine.can_write("lightwaveaci") and mine.add and mine.delete
    other = p.view(ca, 5, "cn=k,cn=tokenservice,dc=a", 1, "dc=a")
    assert not other.add and not other.can_write("description")
    assert not p.view(ca, 6, "cn=nodes,cn=system", 9, "cn=system").read
    repl = _session("cn=r,cn=serviceaccounts,dc=sys", root=3)
    p.refresh_session(None, repl, 1)
    for ndn, root_ndn in (("cn=u,cn=users,dc=a", "dc=a"), ("cn=nodes,cn=system", "cn=system")):
        v = p.view(repl, 7, ndn, 1, root_ndn)
        assert v.secrets and v.can_read("userpassword") and not v.can_write("description") and not v.add
    # a deny of the tenant's rules still holds against a role
    p2 = _policy([(1, "dc=a", ["deny read on mail by users"])])
    p2._groups_of = p._groups_of
    p2.service_roles = p.service_roles
    same_tenant = _session("cn=ca,cn=serviceaccounts,dc=a", root=1)
    p2.refresh_session(None, same_tenant, 1)
    assert not p2.view(same_tenant, 2, "cn=u,cn=users,dc=a", 1, "dc=a").can_read("mail")
