"""Schema added over LDAP (a modify of cn=Subschema), over a real LMDB store: checked, kept in
a replicated entry, and used by every Directory on the store from its next operation."""
from __future__ import annotations

import pytest

from tests.unit.vmdir.test_directory_meta import ADMIN, BASE, admin, d, run, stored  # noqa: F401 - d: fixture
from vmdir.directory import Directory, Session
from vmdir.directory._directory import SCHEMA_STORE_DN
from vmdir.model.schema import Schema
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError, ResultCode

AT = b"( 1.3.6.1.4.1.99999.1.1 NAME 'badgeNumber' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )"
OC = b"( 1.3.6.1.4.1.99999.2.1 NAME 'badgeHolder' SUP top AUXILIARY MAY badgeNumber )"


def add_schema(d: Directory, s: Session, *changes: m.Change) -> None:
    run(d, d.modify(s, m.ModifyRequest("cn=Subschema", changes)))


def person(dn: str, *more: tuple[str, tuple[bytes, ...]]) -> m.AddRequest:
    return m.AddRequest(dn, (("objectClass", (b"inetOrgPerson",) + tuple(v for k, vs in more if k == "oc" for v in vs)),
                             ("sn", (b"x",)), *[(k, v) for k, v in more if k != "oc"]))


def test_definitions_added_over_ldap_are_used_and_kept(d: Directory) -> None:
    s = admin(d)
    dn = f"cn=p1,cn=Users,{BASE}"
    with pytest.raises(LDAPError) as err:  # not defined yet
        run(d, d.add(s, person(dn, ("oc", (b"badgeHolder",)), ("badgeNumber", (b"7",)))))
    assert err.value.code in (ResultCode.objectClassViolation, ResultCode.undefinedAttributeType)
    add_schema(d, s, m.Change(m.MOD_ADD, "attributeTypes", (AT,)), m.Change(m.MOD_ADD, "objectClasses", (OC,)))
    run(d, d.add(s, person(dn, ("oc", (b"badgeHolder",)), ("badgeNumber", (b"7",)))))
    assert stored(d, dn).attrs["badgenumber"] == [b"7"]
    with pytest.raises(LDAPError) as err:  # its syntax is checked
        run(d, d.modify(s, m.ModifyRequest(dn, (m.Change(m.MOD_REPLACE, "badgeNumber", (b"seven",)),))))
    assert err.value.code == ResultCode.invalidAttributeSyntax
    shown = d.subschema()
    assert any(b"'badgeNumber'" in v for v in shown["attributetypes"])
    assert any(b"'badgeHolder'" in v for v in shown["objectclasses"])
    assert len(stored(d, SCHEMA_STORE_DN).attrs["lightwaveschemadefinition"]) == 2
    # another process on the same store (a worker, the replication process) uses it too
    other = Directory(d.store, Schema.default(), d.config, invocation=d.invocation, server_id=1, admin_dns=[ADMIN])
    run(other, other.add(admin(other), person(f"cn=p2,cn=Users,{BASE}", ("oc", (b"badgeHolder",)),
                                              ("badgeNumber", (b"8",)))))


def test_schema_changes_are_checked_and_for_forest_administrators_only(d: Directory) -> None:
    s = admin(d)
    add_schema(d, s, m.Change(m.MOD_ADD, "attributeTypes", (AT,)))
    cases = [
        (s, m.Change(m.MOD_ADD, "attributeTypes", (AT,)), ResultCode.attributeOrValueExists),  # defined already
        (s, m.Change(m.MOD_ADD, "attributeTypes", (b"( 1.2.3.4 NAME 'cn' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",)),
         ResultCode.attributeOrValueExists),  # a standard name
        (s, m.Change(m.MOD_ADD, "objectClasses", (b"( 1.2.3.5 NAME 'x' SUP noSuchClass )",)),
         ResultCode.invalidAttributeSyntax),
        (s, m.Change(m.MOD_ADD, "attributeTypes", (b"not a definition",)), ResultCode.invalidAttributeSyntax),
        (s, m.Change(m.MOD_DELETE, "attributeTypes", (AT,)), ResultCode.unwillingToPerform),
        (s, m.Change(m.MOD_ADD, "cn", (b"x",)), ResultCode.unwillingToPerform),
        (Session(dn=f"cn=someone,cn=Users,{BASE}", ndn=f"cn=someone,cn=users,{BASE}"),
         m.Change(m.MOD_ADD, "objectClasses", (OC,)), ResultCode.insufficientAccessRights),
    ]
    for who, change, code in cases:
        with pytest.raises(LDAPError) as err:
            add_schema(d, who, change)
        assert err.value.code == code, (change, err.value)
    assert len(stored(d, SCHEMA_STORE_DN).attrs["lightwaveschemadefinition"]) == 1  # nothing else was kept


def test_the_schema_store_changes_only_through_the_subschema_entry(d: Directory) -> None:
    """Definitions are checked on the way in and never removed: cn=Schema,cn=System itself
    refuses direct changes, and another entry holding definitions adds nothing."""
    s = admin(d)
    add_schema(d, s, m.Change(m.MOD_ADD, "attributeTypes", (AT,)))
    for attempt in (
        lambda: d.modify(s, m.ModifyRequest(SCHEMA_STORE_DN, (m.Change(m.MOD_DELETE, "lightwaveSchemaDefinition", ()),))),
        lambda: d.delete(s, m.DelRequest(SCHEMA_STORE_DN)),
        lambda: d.modify_dn(s, m.ModifyDNRequest(SCHEMA_STORE_DN, "cn=Old Schema", True, None)),
        lambda: d.add(s, m.AddRequest(SCHEMA_STORE_DN, (("objectClass", (b"lightwaveSchemaStore",)),))),
    ):
        with pytest.raises(LDAPError) as err:
            run(d, attempt())
        assert err.value.code == ResultCode.unwillingToPerform and "cn=Subschema" in err.value.message
    run(d, d.add(s, m.AddRequest(f"cn=Schema2,{BASE}", (
        ("objectClass", (b"lightwaveSchemaStore",)), ("cn", (b"Schema2",)),
        ("lightwaveSchemaDefinition", (b"objectclass ( 1.2.3.9 NAME 'sneaky' SUP top AUXILIARY )",))))))
    assert d.schema.object_class("sneaky") is None
    with pytest.raises(LDAPError) as err:  # nor can it take the store's place
        run(d, d.modify_dn(s, m.ModifyDNRequest(f"cn=Schema2,{BASE}", "cn=Schema", True, "cn=System")))
    assert err.value.code == ResultCode.unwillingToPerform
    assert d.schema.attribute("badgeNumber") is not None
