"""Schema: definition parsing, shipped definitions, syntaxes, matching rules,
entry checks (slapd's codes and messages) and the subschema subentry."""
from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmdir.model.schema import (
    LIGHTWAVE_OID_ARC,
    AttributeTypeDef,
    ObjectClassDef,
    Schema,
    SchemaError,
    SchemaSyntaxError,
    parse_attribute_type,
    parse_matching_rule,
    parse_object_class,
    parse_schema_text,
    parse_syntax,
)
from vmdir.proto.results import LDAPError, ResultCode

SCHEMA = Schema.default()


def ldap_error(fn, *args, **kwargs) -> LDAPError:
    with pytest.raises(LDAPError) as ei:
        fn(*args, **kwargs)
    return ei.value


# ---------------------------------------------------------------- parser


def test_parse_attribute_type_all_fields() -> None:
    d = parse_attribute_type(
        "( 1.2.3.4 NAME ( 'fooBar' 'fb' ) DESC 'say \\27hi\\27 \\5C' OBSOLETE SUP name "
        "EQUALITY caseIgnoreMatch ORDERING caseIgnoreOrderingMatch SUBSTR caseIgnoreSubstringsMatch "
        "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{64} SINGLE-VALUE COLLECTIVE NO-USER-MODIFICATION "
        "USAGE dsaoperation X-ORIGIN 'test' X-MULTI ( 'a' 'b' ) )"
    )
    assert d == AttributeTypeDef(
        oid="1.2.3.4", names=("fooBar", "fb"), desc="say 'hi' \\", obsolete=True, sup="name",
        equality="caseIgnoreMatch", ordering="caseIgnoreOrderingMatch", substr="caseIgnoreSubstringsMatch",
        syntax="1.3.6.1.4.1.1466.115.121.1.15", syntax_len=64, single_value=True, collective=True,
        no_user_modification=True, usage="dSAOperation",
        extensions=(("X-ORIGIN", ("test",)), ("X-MULTI", ("a", "b"))),
    )
    assert parse_attribute_type(d.to_text()) == d
    assert "DESC 'say \\27hi\\27 \\5C'" in d.to_text()


def test_parse_object_class_and_defaults() -> None:
    d = parse_object_class("( 1.2.3.5 NAME 'x' SUP ( top $ person ) AUXILIARY MUST ( cn $ sn ) MAY ( a $ b $ c ) )")
    assert d.sup == ("top", "person") and d.kind == "AUXILIARY"
    assert d.must == ("cn", "sn") and d.may == ("a", "b", "c")
    assert parse_object_class(d.to_text()) == d
    # kind defaults to STRUCTURAL (RFC 4512); slapd's lists without '$' are accepted
    d2 = parse_object_class("( 1.2.3.6 NAME 'y' SUP ( top person ) MAY cn )")
    assert d2.kind == "STRUCTURAL" and d2.sup == ("top", "person")


def test_parse_quoted_syntax_oid_and_other_kinds() -> None:
    d = parse_attribute_type("( 1.2.3.4 NAME 'm' SYNTAX '1.3.6.1.4.1.1466.115.121.1.12' )")
    assert d.syntax == "1.3.6.1.4.1.1466.115.121.1.12" and d.syntax_len is None
    s = parse_syntax("( 1.2.3 DESC 'Thing' X-NOT-HUMAN-READABLE 'TRUE' )")
    assert s.desc == "Thing" and s.extensions == (("X-NOT-HUMAN-READABLE", ("TRUE",)),)
    m = parse_matching_rule("( 2.5.13.2 NAME 'caseIgnoreMatch' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )")
    assert m.names == ("caseIgnoreMatch",) and m.syntax.endswith(".15")


@pytest.mark.parametrize(
    "text",
    [
        "( 1.2.3 NAME 'a' NAME 'b' SYNTAX 1.2.3 )",  # repeated keyword
        "( 1.2.3 NAME 'a' FROB SYNTAX 1.2.3 )",  # unknown keyword
        "( 1.2.3 NAME 'a' SYNTAX 1.2.3",  # unbalanced
        "( foo NAME 'a' SYNTAX 1.2.3 )",  # not a numeric OID
        "( 1.2.3 NAME 'a b' SYNTAX 1.2.3 )",  # bad name
        "( 1.2.3 NAME 'a' )",  # neither SUP nor SYNTAX
        "( 1.2.3 NAME 'a' SYNTAX 1.2.3 USAGE sometimes )",
        "( 1.2.3 NAME 'a' SYNTAX 1.2.3 ) trailing",
        "( 01.2 NAME 'a' SYNTAX 1.2.3 )",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(SchemaSyntaxError):
        parse_attribute_type(text)


def test_parse_schema_text_layout() -> None:
    text = """
# comment
attributetype ( 1.2.3.1 NAME 'a'
\tSYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
  # indented comment inside nothing
objectClasses: ( 1.2.3.2 NAME 'b' SUP top
    MAY a )
"""
    defs = parse_schema_text(text)
    assert [type(d) for d in defs] == [AttributeTypeDef, ObjectClassDef]
    with pytest.raises(SchemaSyntaxError, match=r"<string>:2"):
        parse_schema_text("\nbogus ( 1.2 )\n")


def _shipped_files() -> list[str]:
    root = resources.files("vmdir.model.schema").joinpath("defs")
    return sorted(p.name for p in root.iterdir() if p.name.endswith(".schema"))


@pytest.mark.parametrize("name", _shipped_files())
def test_every_shipped_definition_parses_and_round_trips(name: str) -> None:
    text = resources.files("vmdir.model.schema").joinpath("defs", name).read_text("utf-8")
    defs = parse_schema_text(text, name)
    assert defs
    for d in defs:
        parsed = {  # the printer's output parses back to the same value
            "AttributeTypeDef": parse_attribute_type,
            "ObjectClassDef": parse_object_class,
            "SyntaxDef": parse_syntax,
            "MatchingRuleDef": parse_matching_rule,
        }[type(d).__name__](d.to_text())
        assert parsed == d


# ---------------------------------------------------------------- shipped schema

EXPECTED_CLASSES = """
top alias extensibleObject subschema subentry referral
person organizationalPerson organization organizationalUnit country locality residentialPerson
applicationProcess device groupOfNames groupOfUniqueNames dcObject uidObject organizationalRole
account document domain domainRelatedObject friendlyCountry RFC822localPart room documentSeries
simpleSecurityObject inetOrgPerson
posixAccount posixGroup shadowAccount ipHost ipNetwork nisMap nisObject ipService ipProtocol
oncRpc nisNetgroup ieee802Device bootableDevice
pkiUser pkiCA cRLDistributionPoint certificationAuthority strongAuthenticationUser deltaCRL
pwdPolicy labeledURIObject
monitor monitorServer monitorContainer monitorCounterObject monitorOperation monitorConnection
managedObject monitoredObject
lightwaveTenant lightwaveUser lightwaveComputer lightwaveServiceAccount lightwaveContainer
lightwaveNode lightwaveReplicationAgreement lightwaveGroup lightwaveOidcClient
lightwaveSamlServiceProvider lightwaveCertificateAuthority lightwaveIssuedCertificate
""".split()

EXPECTED_ATTRIBUTES = """
objectClass aliasedObjectName createTimestamp modifyTimestamp creatorsName modifiersName
subschemaSubentry entryDN entryUUID hasSubordinates numSubordinates structuralObjectClass
namingContexts supportedControl supportedExtension supportedFeatures supportedLDAPVersion
supportedSASLMechanisms vendorName vendorVersion altServer ldapSyntaxes matchingRules
matchingRuleUse attributeTypes objectClasses dITContentRules memberOf uSNCreated uSNChanged
cn sn c l st o ou title description uid mail host manager dc userPassword userCertificate
cACertificate certificateRevocationList authorityRevocationList crossCertificatePair
givenName displayName employeeNumber jpegPhoto uidNumber gidNumber homeDirectory loginShell
memberUid gecos ipHostNumber nisMapName nisMapEntry shadowLastChange member uniqueMember owner
seeAlso telephoneNumber userPrincipalName accountDisabled dNSHostName servicePrincipalName
pwdChangedTime pwdFailureTime pwdAccountLockedTime pwdHistory pwdReset pwdPolicySubentry
monitorCounter monitoredInfo monitorTimestamp labeledURI
""".split()


@pytest.mark.parametrize("name", EXPECTED_CLASSES)
def test_expected_object_classes_shipped(name: str) -> None:
    oc = SCHEMA.object_class(name)
    assert oc is not None and oc.name == name


@pytest.mark.parametrize("name", EXPECTED_ATTRIBUTES)
def test_expected_attributes_shipped(name: str) -> None:
    at = SCHEMA.attribute(name)
    assert at is not None and at.name == name and at.key == name.lower()


def test_well_known_oids() -> None:
    assert SCHEMA.attribute("2.5.4.3").key == "cn"
    assert SCHEMA.attribute("1.3.6.1.1.16.4").key == "entryuuid"
    assert SCHEMA.attribute("1.2.840.113556.1.2.102").key == "memberof"
    assert SCHEMA.attribute("1.3.6.1.4.1.453.16.2.103").key == "numsubordinates"
    assert SCHEMA.object_class("2.16.840.1.113730.3.2.2").key == "inetorgperson"
    assert SCHEMA.object_class("0.9.2342.19200300.100.4.13").key == "domain"
    for oc in SCHEMA.object_classes:
        if oc.name.startswith("lightwave"):
            assert oc.oid.startswith(LIGHTWAVE_OID_ARC + ".2.")
    for at in SCHEMA.attribute_types:
        if at.name.startswith("lightwave") or at.name == "accountDisabled":
            assert at.oid.startswith(LIGHTWAVE_OID_ARC + ".1.")


def test_attribute_type_properties_and_inheritance() -> None:
    cn = SCHEMA.attribute("CommonName")
    assert cn.names == ("cn", "commonName") and cn.name == "cn" and cn.sup == "name"
    assert cn.equality.name == "caseIgnoreMatch" and cn.substr.name == "caseIgnoreSubstringsMatch"
    assert cn.syntax == "1.3.6.1.4.1.1466.115.121.1.15" and cn.syntax_len == 32768
    assert cn.ordering is None and not cn.single_value and not cn.operational
    c = SCHEMA.attribute("countryName")  # SUP name, own SYNTAX
    assert c.syntax.endswith(".11") and c.equality.name == "caseIgnoreMatch" and c.single_value
    member = SCHEMA.attribute("member")
    assert member.equality.name == "distinguishedNameMatch" and member.syntax.endswith(".12")
    ts = SCHEMA.attribute("createTimestamp")
    assert ts.operational and ts.usage == "directoryOperation" and ts.no_user_modification
    assert ts.ordering.name == "generalizedTimeOrderingMatch"
    mo = SCHEMA.attribute("memberOf")
    assert mo.usage == "dSAOperation" and mo.operational and mo.no_user_modification
    assert SCHEMA.attribute("cn;lang-en") is cn
    assert SCHEMA.attribute("nosuch") is None
    assert SCHEMA.subtypes("name") >= {"name", "cn", "sn", "c", "l", "st", "o", "ou", "givenname"}
    assert SCHEMA.subtypes("monitorCounter") >= {"monitoropcompleted", "monitorconnectionnumber"}


def test_object_class_properties() -> None:
    iop = SCHEMA.object_class("inetorgperson")
    assert iop.kind == "STRUCTURAL" and iop.sup == ("organizationalperson",)
    assert iop.must == {"objectclass", "sn", "cn"}
    assert {"mail", "uid", "telephonenumber", "title", "userpassword"} <= iop.may
    assert iop.superclasses == {"inetorgperson", "organizationalperson", "person", "top"}
    assert SCHEMA.object_class("top").kind == "ABSTRACT"
    assert SCHEMA.object_class("posixAccount").kind == "AUXILIARY"
    assert SCHEMA.object_class("lightwaveComputer").superclasses >= {"device", "top"}
    assert SCHEMA.object_class("pilotOrganization").sup == ("organization", "organizationalunit")


def test_schema_builds_fast_and_is_cached() -> None:
    import time

    assert Schema.default() is SCHEMA
    t = time.perf_counter()
    Schema()
    assert time.perf_counter() - t < 0.5  # a few ms in practice; generous for slow CI


def test_with_definitions_and_conflicts() -> None:
    s = SCHEMA.with_definitions(
        "attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'favouriteColour' SUP name )\n"
        "objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'colourful' SUP top AUXILIARY MAY favouriteColour )\n"
    )
    assert s.attribute("favouriteColour").equality.name == "caseIgnoreMatch"
    assert SCHEMA.attribute("favouriteColour") is None  # the original is unchanged
    s.check_entry({"objectclass": [b"person", b"colourful"], "cn": [b"a"], "sn": [b"b"], "favouritecolour": [b"red"]})
    bad = [
        "attributetype ( 2.5.4.3 NAME 'dupOid' SUP name )",
        "attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'CN' SUP name )",
        "attributetype ( 1.3.6.1.4.1.99999.1.3 NAME 'x1' SUP nosuch )",
        "attributetype ( 1.3.6.1.4.1.99999.1.4 NAME 'x2' EQUALITY nosuchMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
        "attributetype ( 1.3.6.1.4.1.99999.1.5 NAME 'x3' EQUALITY caseIgnoreOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )",
        "attributetype ( 1.3.6.1.4.1.99999.1.6 NAME 'x4' SUP createTimestamp )",  # USAGE differs
        "objectclass ( 1.3.6.1.4.1.99999.2.2 NAME 'y1' SUP top MUST nosuch )",
        "objectclass ( 1.3.6.1.4.1.99999.2.3 NAME 'y2' SUP posixAccount STRUCTURAL )",
        "objectclass ( 1.3.6.1.4.1.99999.2.4 NAME 'y3' SUP y3 )",
        "objectclass ( 1.3.6.1.4.1.99999.2.5 NAME 'y4' SUP top MAY",
    ]
    for text in bad:
        with pytest.raises(SchemaError):
            SCHEMA.with_definitions(text)


# ---------------------------------------------------------------- attribute descriptions


def test_canonical_attr() -> None:
    assert SCHEMA.canonical_attr("CN") == "cn"
    assert SCHEMA.canonical_attr("commonName") == "cn"
    assert SCHEMA.canonical_attr("2.5.4.3") == "cn"
    assert SCHEMA.canonical_attr("cn;Lang-EN") == "cn;lang-en"
    assert SCHEMA.canonical_attr("CN;x-b;Lang-EN;x-B") == "cn;lang-en;x-b"
    assert SCHEMA.canonical_attr("userCertificate;binary") == "usercertificate"
    assert SCHEMA.canonical_attr("uidNumber") == "uidnumber"
    assert SCHEMA.display_attr("uidnumber") == "uidNumber"
    for bad in ("nosuchattr", "cn;", "cn;la ng", "", "c n", "1.2.3.4.5"):
        e = ldap_error(SCHEMA.canonical_attr, bad)
        assert e.code == ResultCode.undefinedAttributeType
        assert e.message == f"{bad}: attribute type undefined"


# ---------------------------------------------------------------- syntaxes


VALID = {
    "cn": [b"x", "Jürgen".encode()],
    "mail": [b"a@b.c", b""],
    "c": [b"US"],
    "uidNumber": [b"0", b"-1", b"4294967296"],
    "hasSubordinates": [b"TRUE", b"FALSE"],
    "member": [b"cn=a,dc=b", b"CN = a + SN = b , DC=c", b"", b"uid=x\\2Cy,dc=z", b"2.5.4.3=#0403616263"],
    "createTimestamp": [b"20240101120000Z", b"202401011200Z", b"2024010112Z", b"20240101120000.123-0130", b"20241231235960Z"],
    "objectClass": [b"person", b"2.5.6.6", b"INETORGPERSON"],
    "x121Address": [b"123 456"],
    "telephoneNumber": [b"+1 555 123-4567"],
    "postalAddress": [b"1 Main St$Springfield\\24", b"a"],
    "x500UniqueIdentifier": [b"'0101'B", b"''B"],
    "entryUUID": [b"550e8400-e29b-41d4-a716-446655440000"],
    "userCertificate": [b"\x30\x03\x02\x01\x05", b"\x30\x80\x02\x01\x05\x00\x00"],
    "uniqueMember": [b"cn=a,dc=b#'01'B", b"cn=a,dc=b"],
    "facsimileTelephoneNumber": [b"+1 555$twoDimensional"],
    "preferredDeliveryMethod": [b"telephone $ mhs"],
    "attributeTypes": [b"( 1.2.3 NAME 'x' SYNTAX 1.2.3 )"],
    "userPassword": [b"\x00\xff"],
    "supportedSASLMechanisms": [b"EXTERNAL"],
}
INVALID = {
    "cn": [b"", b"\xff\xfe"],
    "mail": ["é".encode()],
    "c": [b"USA", b"U"],
    "uidNumber": [b"", b"abc", b"01", b"-0", b"+1", b"1.0", b" 1"],
    "hasSubordinates": [b"true", b"yes", b""],
    "member": [b"cn", b"nosuchattr=a,dc=b", b"cn=a,,dc=b", b"cn=a\\", b"cn=\"", b"uidNumber=abc"],
    "createTimestamp": [b"20240101", b"20241301000000Z", b"20240230000000Z", b"20240101120000", b"20240101246000Z"],
    "objectClass": [b"nosuchclass", b"", b"per son"],
    "x121Address": [b"12a"],
    "telephoneNumber": [b"", "☎".encode()],
    "postalAddress": [b"a$$b", b"a\\xx"],
    "x500UniqueIdentifier": [b"'012'B", b"0101"],
    "entryUUID": [b"550e8400e29b41d4a716446655440000"],
    "userCertificate": [b"", b"\x30\x05\x02\x01", b"\x30\x03\x02\x01\x05\x00"],
    "preferredDeliveryMethod": [b"pigeon"],
}


@pytest.mark.parametrize("attr,value", [(a, v) for a, vs in VALID.items() for v in vs])
def test_valid_values(attr: str, value: bytes) -> None:
    SCHEMA.validate(attr, value)


@pytest.mark.parametrize("attr,value", [(a, v) for a, vs in INVALID.items() for v in vs])
def test_invalid_values(attr: str, value: bytes) -> None:
    e = ldap_error(SCHEMA.validate, attr, value, index=3)
    assert e.code == ResultCode.invalidAttributeSyntax
    assert e.message == f"{SCHEMA.attribute(attr).name}: value #3 invalid per syntax"


def test_unknown_syntax_accepts_anything() -> None:
    s = SCHEMA.with_definitions("attributetype ( 1.3.6.1.4.1.99999.1.9 NAME 'weird' SYNTAX 1.3.6.1.4.1.99999.3.1 )")
    s.validate("weird", b"\x00\xff anything")


# ---------------------------------------------------------------- matching rules

ascii_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20)
uni_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Co", "Cn")), min_size=1, max_size=20)


@given(uni_text)
def test_case_ignore_key_is_idempotent(s: str) -> None:
    try:
        k = SCHEMA.eq_key("cn", s.encode())
    except LDAPError:
        return  # prohibited characters do not normalise
    assert SCHEMA.eq_key("cn", k) == k
    assert k  # never empty (LMDB keys)


@given(ascii_text)
def test_case_ignore_ignores_case_and_insignificant_spaces(s: str) -> None:
    k = SCHEMA.eq_key("cn", s.encode())
    assert SCHEMA.eq_key("cn", s.upper().encode()) == k
    assert SCHEMA.eq_key("cn", s.lower().encode()) == k
    assert SCHEMA.eq_key("cn", ("  " + s.replace(" ", "   ") + "\t ").encode()) == k
    assert SCHEMA.eq_key("description", s.swapcase().encode()) == k


@given(ascii_text)
def test_case_exact_keeps_case(s: str) -> None:
    k = SCHEMA.eq_key("labeledURI", s.encode())
    assert SCHEMA.eq_key("labeledURI", (" " + s + " ").encode()) == k
    if s.upper().strip() != s.lower().strip():
        assert SCHEMA.eq_key("labeledURI", s.upper().encode()) != SCHEMA.eq_key("labeledURI", s.lower().encode())


def test_string_preparation_examples() -> None:
    k = SCHEMA.eq_key
    assert k("cn", b"  Hello   World ") == b"hello world"
    assert k("cn", "ＡＢＣ".encode()) == b"abc"  # NFKC (fullwidth)
    assert k("cn", "Stra\u00dfe".encode()) == k("cn", b"STRASSE")  # case folding
    assert k("cn", "a\u00adb".encode()) == b"ab"  # soft hyphen maps to nothing
    assert k("cn", "a\u00a0\u2003b".encode()) == b"a b"  # Zs spaces
    assert k("cn", b"   ") == b" "
    assert k("mail", b"John@Example.COM") == b"john@example.com"
    assert k("homeDirectory", b"/Home/X") == b"/Home/X"  # caseExactIA5
    assert k("telephoneNumber", b"+1 555-123 4567") == k("telephoneNumber", b"+15551234567")
    assert k("x121Address", b"12 34") == b"1234"
    assert k("uidNumber", b"-42") == b"-42"
    assert k("hasSubordinates", b"TRUE") == b"TRUE"
    assert k("userPassword", b"{SSHA}Ab") == b"{SSHA}Ab"
    assert k("entryUUID", b"550E8400-E29B-41D4-A716-446655440000") == bytes.fromhex("550e8400e29b41d4a716446655440000")
    assert k("postalAddress", b"1 Main  St$ SPRINGFIELD") == b"1 main st$springfield"
    assert k("objectClass", b"2.5.6.6") == k("objectClass", b"PERSON") == b"person"
    assert k("supportedFeatures", b"1.3.6.1.4.1.4203.1.5.1") == b"1.3.6.1.4.1.4203.1.5.1"
    assert k("pwdAttribute", b"2.5.4.35") == k("pwdAttribute", b"userPassword") == b"userpassword"
    assert k("attributeTypes", b"( 2.5.4.3 NAME 'cn' SUP name )") == b"cn"
    assert k("uniqueMember", b"CN=A, DC=B#'01'B") == b"cn=a,dc=b#'01'B"
    e = ldap_error(k, "uidNumber", b"x")
    assert e.code == ResultCode.invalidAttributeSyntax and e.message == "uidNumber: value #0 invalid per syntax"
    e = ldap_error(k, "facsimileTelephoneNumber", b"1")
    assert e.code == ResultCode.inappropriateMatching
    assert ldap_error(k, "nosuch", b"x").code == ResultCode.undefinedAttributeType


def test_dn_normalization() -> None:
    n = SCHEMA.normalize_dn
    assert n("CN=John  Smith , OU=People,DC=Example,DC=COM") == "cn=john smith,ou=people,dc=example,dc=com"
    assert n("commonName=x,2.5.4.11=Y") == "cn=x,ou=y"
    assert n("sn=b+cn=a,dc=x") == n("CN=A+SN=B,DC=X") == "cn=a+sn=b,dc=x"
    assert n("cn=a\\2Cb,dc=x") == n('cn=a\\,b,dc=x') == "cn=a\\,b,dc=x"
    assert n("cn=\\ a\\ ,dc=x") == "cn=a,dc=x"  # escaped spaces are still insignificant for caseIgnoreMatch
    assert n("uid=JSmith,dc=x") == "uid=jsmith,dc=x"
    assert n("uidNumber=10,dc=x") == "uidnumber=10,dc=x"
    assert n("") == ""
    assert n("cn=#04026162,dc=x") == "cn=#04026162,dc=x"
    assert n("1.2.3.4=Foo,dc=x") == "1.2.3.4=Foo,dc=x"  # unknown OID: value kept
    assert n("cn=a;dc=x") == "cn=a,dc=x"  # LDAPv2 separator
    assert n('cn="a, b",dc=x') == "cn=a\\, b,dc=x"  # LDAPv2 quoting
    assert n("member=cn\\3Da\\2Cdc\\3Db,dc=x") == "member=cn\\=a\\,dc\\=b,dc=x"  # nested DN normalised
    for bad in ("cn", "foo=bar", "cn=a,", "=a", "cn=a+", "cn=<", "cn=a\\zz"):
        e = ldap_error(n, bad)
        assert e.code == ResultCode.invalidDNSyntax and e.message == "invalid DN"
    assert SCHEMA.eq_key("member", b"CN=Admin,CN=Users,DC=Lightwave,DC=Local") == b"cn=admin,cn=users,dc=lightwave,dc=local"
    assert SCHEMA.dn_attribute_values("cn=a+sn=b,dc=x") == [("cn", b"a"), ("sn", b"b"), ("dc", b"x")]


@given(st.lists(st.tuples(st.sampled_from(["cn", "CN", "commonName", "ou", "dc", "uid", "2.5.4.3"]),
                          st.text(alphabet="abcXYZ ,+=\\#\"<>;é", min_size=1, max_size=8)), min_size=1, max_size=4))
def test_dn_normalization_is_idempotent_and_escaping_round_trips(rdns: list[tuple[str, str]]) -> None:
    from vmdir.model.schema._dn import escape_value

    dn = ",".join(f"{t}={escape_value(v)}" for t, v in rdns)
    try:
        norm = SCHEMA.normalize_dn(dn)
    except LDAPError:
        # refused: all-space values (empty Directory String), non-IA5 dc values
        assert any(not v.strip(" ") or (t == "dc" and not v.isascii()) for t, v in rdns)
        return
    assert SCHEMA.normalize_dn(norm) == norm
    assert SCHEMA.normalize_dn(dn.upper()) == SCHEMA.normalize_dn(dn.lower()) or any(c in "é" for c in dn)


def _gt(dt: datetime) -> bytes:
    return dt.strftime("%Y%m%d%H%M%S").encode() + b"Z"


def test_generalized_time_normalization() -> None:
    k = SCHEMA.eq_key
    assert k("createTimestamp", b"20240101120000Z") == k("createTimestamp", b"20240101140000+0200")
    assert k("createTimestamp", b"20240101120000Z") == k("createTimestamp", b"202401011200Z") == k("createTimestamp", b"2024010112Z")
    assert k("createTimestamp", b"20240101120000.500Z") == k("createTimestamp", b"20240101120000,5Z") == b"20240101120000.5Z"
    assert k("createTimestamp", b"2024010112.5Z") == b"20240101123000Z"  # fraction of an hour
    assert k("createTimestamp", b"202401011200.25Z") == b"20240101120015Z"  # fraction of a minute
    assert k("createTimestamp", b"20240101003000+0100") == b"20231231233000Z"  # crosses the year
    o = SCHEMA.ordering_key
    assert o("createTimestamp", b"20240101120000Z") < o("createTimestamp", b"20240101120000.01Z")
    assert o("createTimestamp", b"20240101120000.5Z") < o("createTimestamp", b"20240101120000.55Z")
    assert o("createTimestamp", b"20240101120000.9Z") < o("createTimestamp", b"20240101120001Z")
    assert o("createTimestamp", b"20240101130000+0200") < o("createTimestamp", b"20240101120000Z")


@settings(max_examples=200)
@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    st.integers(min_value=-23 * 60, max_value=23 * 60),
)
def test_generalized_time_ordering_matches_instants(a: datetime, b: datetime, off_minutes: int) -> None:
    a = a.replace(microsecond=a.microsecond // 1000 * 1000)
    b = b.replace(microsecond=b.microsecond // 1000 * 1000)

    def text(dt: datetime, off: int) -> bytes:
        local = dt + timedelta(minutes=off)
        sign = "+" if off >= 0 else "-"
        frac = f".{local.microsecond // 1000:03d}" if local.microsecond else ""
        return (local.strftime("%Y%m%d%H%M%S") + frac + f"{sign}{abs(off) // 60:02d}{abs(off) % 60:02d}").encode()

    ka, kb = SCHEMA.ordering_key("modifyTimestamp", text(a, off_minutes)), SCHEMA.ordering_key("modifyTimestamp", text(b, 0))
    assert (ka < kb) == (a < b) and (ka == kb) == (a == b)
    assert (SCHEMA.eq_key("modifyTimestamp", text(a, off_minutes)) == SCHEMA.eq_key("modifyTimestamp", text(b, 0))) == (a == b)
    assert SCHEMA.eq_key("modifyTimestamp", text(a, off_minutes)) == SCHEMA.eq_key("modifyTimestamp", text(a, 0))


def test_integer_and_uuid_ordering() -> None:
    o = SCHEMA.ordering_key
    assert o("uidNumber", b"-5") < o("uidNumber", b"3") < o("uidNumber", b"10")
    assert o("entryUUID", b"00000000-0000-0000-0000-00000000000a") < o("entryUUID", b"00000000-0000-0000-0000-0000000000FF")
    assert o("dnQualifier", b"ABC") == o("dnQualifier", b"abc")
    assert ldap_error(o, "cn", b"x").code == ResultCode.inappropriateMatching


def test_substring_preparation() -> None:
    assert SCHEMA.substr_prep("cn", b"  John   SMITH ") == "john smith"
    rule = SCHEMA.attribute("cn").substr
    assert rule.substrings_key(b"  Jo", (b"N  s",), b"tH  ") == ("jo", ("n s",), "th")
    assert rule.match_value(b"John Smith", rule.assertion_key(b"jo*n s*th"))
    assert not rule.match_value(b"John Smith", rule.assertion_key(b"*smith*john*"))
    tel = SCHEMA.attribute("telephoneNumber").substr
    assert tel.match_value(b"+1 555 123-4567", tel.assertion_key(b"*5551*"))


def test_objectclass_index_keys_include_superclasses() -> None:
    keys = SCHEMA.objectclass_index_keys([b"inetOrgPerson", b"posixAccount", b"nosuch"])
    assert keys == {b"inetorgperson", b"organizationalperson", b"person", b"top", b"posixaccount", b"nosuch"}


def test_rule_lookup_and_applicability() -> None:
    assert SCHEMA.matching_rule("2.5.13.2").name == "caseIgnoreMatch"
    assert SCHEMA.matching_rule("CASEIGNOREMATCH").oid == "2.5.13.2"
    assert SCHEMA.matching_rule("bitAndMatch").oid == "1.2.840.113556.1.4.803"
    assert SCHEMA.matching_rule("uUIDMatch").oid == "1.3.6.1.1.16.2"
    assert {"cn", "mail", "description"} <= SCHEMA.rule_applies_to(SCHEMA.matching_rule("caseIgnoreMatch"))
    assert "cn" not in SCHEMA.rule_applies_to(SCHEMA.matching_rule("integerMatch"))
    assert "uidnumber" in SCHEMA.rule_applies_to(SCHEMA.matching_rule("integerBitAndMatch"))


# ---------------------------------------------------------------- entry checks

PERSON = {"objectclass": [b"top", b"person"], "cn": [b"Babs"], "sn": [b"Jensen"]}


def check(attrs, **kw) -> LDAPError:
    return ldap_error(SCHEMA.check_entry, attrs, **kw)


def test_check_entry_accepts_good_entries() -> None:
    SCHEMA.check_entry(PERSON)
    SCHEMA.check_entry({"objectclass": [b"inetOrgPerson"], "cn": [b"a"], "sn": [b"b"], "mail": [b"a@b"],
                        "cn;lang-de": [b"ah"], "createtimestamp": [b"20240101000000Z"],
                        "entryuuid": [b"550e8400-e29b-41d4-a716-446655440000"], "memberof": [b"cn=g,dc=x"]})
    SCHEMA.check_entry({"objectClass": [b"inetOrgPerson", b"posixAccount", b"shadowAccount", b"lightwaveUser"],
                        "CN": [b"a"], "sn": [b"b"], "uid": [b"a"], "uidNumber": [b"1000"], "gidNumber": [b"1000"],
                        "homeDirectory": [b"/home/a"], "userPrincipalName": [b"a@LIGHTWAVE.LOCAL"],
                        "accountDisabled": [b"FALSE"]})
    SCHEMA.check_entry({"objectclass": [b"domain", b"lightwaveTenant"], "dc": [b"lightwave"],
                        "lightwavetenantname": [b"lightwave.local"]})
    SCHEMA.check_entry({"objectclass": [b"organization", b"dcObject"], "o": [b"x"], "dc": [b"x"]})
    SCHEMA.check_entry({"objectclass": [b"lightwaveContainer"], "cn": [b"Users"]})
    SCHEMA.check_entry({"objectclass": [b"lightwaveComputer"], "cn": [b"h1"], "dnshostname": [b"h1.x", b"h1.y"]})
    SCHEMA.check_entry({"objectclass": [b"lightwaveGroup"], "cn": [b"empty"]})
    SCHEMA.check_entry({"objectclass": [b"groupOfNames"], "cn": [b"g"], "member": [b"cn=a,dc=x"]})
    SCHEMA.check_entry({"objectclass": [b"person", b"extensibleObject"], "cn": [b"a"], "sn": [b"b"], "mail": [b"x"]})
    SCHEMA.check_entry({"objectclass": [b"subentry", b"subschema"], "cn": [b"Subschema"],
                        "subtreespecification": [b"{}"], "attributetypes": SCHEMA.subschema_attributes()["attributetypes"][:3]})


@pytest.mark.parametrize(
    "attrs,kw,code,message",
    [
        ({"objectclass": [b"person"], "cn": [b"x"]}, {}, ResultCode.objectClassViolation,
         "object class 'person' requires attribute 'sn'"),
        ({"objectclass": [b"Person"], "sn": [b"x"]}, {}, ResultCode.objectClassViolation,
         "object class 'Person' requires attribute 'cn'"),
        ({"objectclass": [b"top"], "cn": [b"x"]}, {}, ResultCode.objectClassViolation,
         "no structural object class provided"),
        ({"objectclass": [b"posixGroup", b"account"], "cn": [b"x"], "gidnumber": [b"1"], "uid": [b"u"]}, {},
         ResultCode.objectClassViolation, "invalid structural object class chain (posixGroup/account)"),
        ({"objectclass": [b"person"], "cn": [b"x"], "sn": [b"y"], "mail": [b"a@b"]}, {},
         ResultCode.objectClassViolation, "attribute 'mail' not allowed"),
        ({"objectclass": [b"person"], "cn": [b"x"], "sn": [b"y"], "cn;lang-en": [b"z"], "uid;x-a": [b"u"]}, {},
         ResultCode.objectClassViolation, "attribute 'uid;x-a' not allowed"),
        ({"objectclass": [b"person", b"nosuchclass"], "cn": [b"x"], "sn": [b"y"]}, {},
         ResultCode.invalidAttributeSyntax, "objectClass: value #1 invalid per syntax"),
        ({"objectclass": [b"person"], "cn": [b"x"], "sn": [b"y"], "nosuchattr": [b"z"]}, {},
         ResultCode.undefinedAttributeType, "nosuchattr: attribute type undefined"),
        ({"cn": [b"x"]}, {}, ResultCode.objectClassViolation, "no objectClass attribute"),
        ({"objectclass": [b"inetOrgPerson"], "cn": [b"x"], "sn": [b"y"], "displayname": [b"a", b"b"]}, {},
         ResultCode.constraintViolation, "displayName: multiple values provided"),
        ({"objectclass": [b"inetOrgPerson"], "cn": [b"x"], "sn": [b"y"], "displayname": [b"a", b"b"]},
         {"validate": False}, ResultCode.constraintViolation, "attribute 'displayName' cannot have multiple values"),
        ({"objectclass": [b"person"], "cn": [b"x", b" X "], "sn": [b"y"]}, {},
         ResultCode.attributeOrValueExists, "cn: value #1 provided more than once"),
        ({"objectclass": [b"person"], "cn": [b"x"], "sn": [b"y"], "createtimestamp": [b"20240101000000Z"]},
         {"check_nousermod": True}, ResultCode.constraintViolation, "createTimestamp: no user modification allowed"),
        ({"objectclass": [b"account", b"posixAccount"], "uid": [b"u"], "cn": [b"x"], "uidnumber": [b"x1"],
          "gidnumber": [b"1"], "homedirectory": [b"/"]}, {}, ResultCode.invalidAttributeSyntax,
         "uidNumber: value #0 invalid per syntax"),
        ({"objectclass": [b"account", b"posixAccount"], "uid": [b"u"], "cn": [b"x"], "gidnumber": [b"1"],
          "homedirectory": [b"/"]}, {}, ResultCode.objectClassViolation,
         "object class 'posixAccount' requires attribute 'uidNumber'"),
        ({"objectclass": [b"person", b"top", b"monitor"], "cn": [b"x"], "sn": [b"y"]}, {},
         ResultCode.objectClassViolation, "invalid structural object class chain (person/monitor)"),
        ({"objectclass": [b"person"], "cn": [b"x"], "sn": [b"y"], "structuralobjectclass": [b"account"]},
         {}, ResultCode.objectClassModsProhibited,
         "structural object class modification from 'account' to 'person' not allowed"),
        ({"objectclass": [b"person"], "cn": [b"x"], "sn": [b"y"], "objectClass": [b"top"]}, {},
         ResultCode.attributeOrValueExists, "attribute 'objectClass' provided more than once"),
        ({"objectclass": [b"person"], "cn": [], "sn": [b"y"]}, {}, ResultCode.protocolError,
         "cn: no values for attribute type"),
    ],
)
def test_check_entry_violations(attrs, kw, code, message) -> None:
    e = check(attrs, **kw)
    assert (e.code, e.message) == (code, message)


def test_structural_chain_with_common_subclass_and_abstract_classes() -> None:
    # person and organizationalPerson are superclasses of inetOrgPerson: a valid chain in any order
    for order in ([b"person", b"inetOrgPerson", b"organizationalPerson"], [b"inetOrgPerson", b"person"]):
        assert SCHEMA.structural_class(order) == "inetOrgPerson"
    # two unrelated classes with a common subclass listed later (pilotOrganization)
    assert SCHEMA.structural_class([b"organization", b"organizationalUnit", b"pilotOrganization"]) == "pilotOrganization"
    s = SCHEMA.with_definitions("objectclass ( 1.3.6.1.4.1.99999.2.9 NAME 'absy' SUP top ABSTRACT MAY description )")
    e = ldap_error(s.check_entry, {"objectclass": [b"person", b"absy"], "cn": [b"x"], "sn": [b"y"]})
    assert (e.code, e.message) == (ResultCode.objectClassViolation, "instantiation of abstract objectClass 'absy' not allowed")
    e = ldap_error(SCHEMA.structural_class, [b"top", b"bogus"])
    assert (e.code, e.message) == (ResultCode.objectClassViolation, "unrecognized objectClass 'bogus'")


def test_naming_check() -> None:
    SCHEMA.check_entry(PERSON, rdn=[("CN", b"  babs ")])
    SCHEMA.check_entry({**PERSON, "cn": [b"Babs", b"B"]}, rdn=[("cn", b"b"), ("sn", b"JENSEN")])
    cases = [
        ([("uid", b"x")], ResultCode.namingViolation, "naming attribute 'uid' is not present in entry"),
        ([("CN", b"other")], ResultCode.namingViolation, "value of naming attribute 'CN' is not present in entry"),
        ([("createTimestamp", b"20240101000000Z")], ResultCode.namingViolation,
         "naming attribute 'createTimestamp' is operational"),
        ([("nosuch", b"x")], ResultCode.undefinedAttributeType, "attribute type undefined (in RDN)"),
        ([("telexNumber", b"x")], ResultCode.namingViolation,
         "naming attribute 'telexNumber' has no equality matching rule"),
    ]
    for rdn, code, message in cases:
        e = check(PERSON, rdn=rdn)
        assert (e.code, e.message) == (code, message)


def test_check_values() -> None:
    assert SCHEMA.check_values("CN;Lang-EN", [b"a", b"b"]) == "cn;lang-en"
    e = ldap_error(SCHEMA.check_values, "uidnumber", [b"x"])
    assert e.message == "uidnumber: value #0 invalid per syntax"  # named as the client sent it
    e = ldap_error(SCHEMA.check_values, "modifiersName", [b"cn=x"], check_nousermod=True)
    assert (e.code, e.message) == (ResultCode.constraintViolation, "modifiersName: no user modification allowed")


# ---------------------------------------------------------------- subschema subentry


def test_subschema_attributes_parse_with_ldap3() -> None:
    from ldap3.protocol.rfc4512 import SchemaInfo
    from ldap3.protocol.oid import ATTRIBUTE_DSA_OPERATION

    sub = SCHEMA.subschema_attributes()
    assert set(sub) == {"ldapsyntaxes", "matchingrules", "matchingruleuse", "attributetypes", "objectclasses"}
    named = {SCHEMA.attribute(k).name: v for k, v in sub.items()}
    info = SchemaInfo("cn=Subschema", {k: [x.decode() for x in v] for k, v in named.items()}, named)
    assert info.is_valid()
    assert len(info.attribute_types) == len(SCHEMA.attribute_types)
    assert len(info.object_classes) == len(SCHEMA.object_classes)
    assert len(info.matching_rules) == len(SCHEMA.matching_rules)
    assert len(info.ldap_syntaxes) == len(SCHEMA.syntaxes)
    assert info.matching_rule_uses
    # every definition survived ldap3's (regex based) parser intact
    for at in SCHEMA.attribute_types:
        got = info.attribute_types[at.oid]
        assert got.oid == at.oid and list(got.name or []) == list(at.names)
        assert (got.single_value or False) == at.single_value
        assert (got.no_user_modification or False) == at.no_user_modification
    for oc in SCHEMA.object_classes:
        got = info.object_classes[oc.oid]
        assert list(got.name or []) == list(oc.names)
        assert {a.lower() for a in got.must_contain or []} <= {SCHEMA.attribute(a).key for a in got.must_contain or []} | oc.must
    iop = info.object_classes["inetOrgPerson"]
    assert iop.superior == ["organizationalPerson"] and "mail" in iop.may_contain
    assert info.attribute_types["memberOf"].usage == ATTRIBUTE_DSA_OPERATION
    # the subschema text re-parses with our own parser into the same schema
    rebuilt = Schema(
        "\n".join(
            ["ldapsyntax " + v.decode() for v in sub["ldapsyntaxes"]]
            + ["matchingrule " + v.decode() for v in sub["matchingrules"]]
            + ["attributetype " + v.decode() for v in sub["attributetypes"]]
            + ["objectclass " + v.decode() for v in sub["objectclasses"]]
        ),
        standard=False,
    )
    assert rebuilt.subschema_attributes() == sub


def test_time_helpers_reject_out_of_range() -> None:
    from vmdir.model.schema._time import format_time_key, parse_generalized_time

    for bad in (b"00000101000000Z", b"99991231230000-0100", b"20240101000000+2400", b"20240101000000.Z"):
        with pytest.raises(ValueError):
            parse_generalized_time(bad)
    key = parse_generalized_time(b"20240229235960Z")  # leap day, leap second
    assert format_time_key(key) == b"20240301000000Z"
    assert key[0] == calendar.timegm((2024, 3, 1, 0, 0, 0))
    assert datetime.fromtimestamp(key[0], timezone.utc).year == 2024
