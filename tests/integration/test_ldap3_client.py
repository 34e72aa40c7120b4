"""ldap3 (a second, independent client implementation): controls ldap-utils cannot
send, SASL PLAIN and EXTERNAL, schema loading, cn=monitor."""
from __future__ import annotations

import datetime as dt
import os
import ssl

import ldap3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ldap3 import MODIFY_ADD, MODIFY_DELETE

from tests.conftest import ADMIN, ADMIN_PW, BASE, Server, make_server, run_tool

SUBTREE_DELETE = "1.2.840.113556.1.4.805"
PERMISSIVE = "1.2.840.113556.1.4.1413"


def admin(url: str, **kw) -> ldap3.Connection:
    return ldap3.Connection(ldap3.Server(url, get_info=kw.pop("info", ldap3.NONE)), ADMIN, ADMIN_PW,
                            auto_bind=True, raise_exceptions=False, **kw)


def test_schema_and_root_dse_load_in_ldap3(server: Server) -> None:
    c = admin(server.url, info=ldap3.ALL)
    assert c.server.schema is not None
    assert "inetOrgPerson" in c.server.schema.object_classes
    assert "uid" in c.server.schema.attribute_types
    assert BASE in c.server.info.naming_contexts


def test_subtree_delete_control(server: Server) -> None:
    c = admin(server.url)
    top = f"ou=tree,{BASE}"
    assert c.add(top, ["organizationalUnit"], {"ou": "tree"}), c.result
    assert c.add(f"ou=mid,{top}", ["organizationalUnit"], {"ou": "mid"}), c.result
    for i in range(5):
        assert c.add(f"cn=leaf{i},ou=mid,{top}", ["person"], {"cn": f"leaf{i}", "sn": "x"}), c.result
    assert not c.delete(top)
    assert c.result["result"] == 66
    assert c.delete(top, controls=[(SUBTREE_DELETE, True, None)]), c.result
    c.search(BASE, "(ou=mid)", attributes=["ou"])
    assert c.entries == []
    c.search(BASE, "(cn=leaf*)")
    assert c.entries == []


def test_permissive_modify(server: Server) -> None:
    c = admin(server.url)
    dn = f"cn=perm,cn=Users,{BASE}"
    assert c.add(dn, ["person"], {"cn": "perm", "sn": "x", "description": "a"}), c.result
    assert not c.modify(dn, {"description": [(MODIFY_ADD, ["a"])]})
    assert c.result["result"] == 20
    assert c.modify(dn, {"description": [(MODIFY_ADD, ["a"])]}, controls=[(PERMISSIVE, True, None)]), c.result
    assert c.modify(dn, {"telephoneNumber": [(MODIFY_DELETE, [])]}, controls=[(PERMISSIVE, True, None)]), c.result


def test_paged_search_with_ldap3_generator(server: Server) -> None:
    c = admin(server.url)
    for i in range(25):
        c.add(f"cn=pg{i},cn=Users,{BASE}", ["person"], {"cn": f"pg{i}", "sn": "pg"})
    got = list(c.extend.standard.paged_search(f"cn=Users,{BASE}", "(sn=pg)", attributes=["cn"],
                                              paged_size=7, generator=True))
    names = sorted(e["attributes"]["cn"][0] for e in got if e["type"] == "searchResEntry")
    assert names == sorted(f"pg{i}" for i in range(25))


def test_sasl_plain_requires_tls(server: Server) -> None:
    c = ldap3.Connection(ldap3.Server(server.url), sasl_mechanism=ldap3.PLAIN,
                         sasl_credentials=(None, ADMIN, ADMIN_PW), authentication=ldap3.SASL)
    c.open()
    assert not c.bind()
    assert c.result["result"] == 13  # confidentialityRequired
    tls = ldap3.Tls(validate=ssl.CERT_NONE)
    c = ldap3.Connection(ldap3.Server(server.ldaps_url, use_ssl=True, tls=tls), sasl_mechanism=ldap3.PLAIN,
                         sasl_credentials=(None, "administrator@lightwave.local", ADMIN_PW),
                         authentication=ldap3.SASL)
    assert c.bind(), c.result
    assert c.extend.standard.who_am_i().lower() == f"dn:{ADMIN}".lower()


def test_monitor_for_admin_only(server: Server) -> None:
    c = admin(server.url)
    assert c.search("cn=monitor", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["*", "+"])
    text = str(c.entries[0])
    assert "ops_search=" in text and "connections_total=" in text
    anon = ldap3.Connection(ldap3.Server(server.url), auto_bind=True)
    anon.search("cn=monitor", "(objectClass=*)", search_scope=ldap3.BASE)
    assert anon.entries == [] and anon.result["result"] == 32


def _cert(subject: x509.Name, issuer: x509.Name, pub, key, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(pub)
         .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
         .not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return b.sign(key, hashes.SHA256())


def test_sasl_external_with_client_certificate(tmp_path_factory: pytest.TempPathFactory, tmp_path) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = _cert(ca_name, ca_name, ca_key.public_key(), ca_key, True)
    user_key = ec.generate_private_key(ec.SECP256R1())
    # RFC 4514 order: cn=Administrator,cn=Users,dc=lightwave,dc=local
    subj = x509.Name([
        x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "local"), x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "lightwave"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Users"), x509.NameAttribute(NameOID.COMMON_NAME, "Administrator"),
    ])
    user = _cert(subj, ca_name, user_key.public_key(), ca_key, False)
    ca_pem, cert_pem, key_pem = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(user.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(user_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    conf = tmp_path / "lw.toml"
    conf.write_text(f'[tls]\ntls_client_ca = "{ca_pem}"\n')
    srv = make_server(tmp_path_factory, "ext", extra=["--config", str(conf), "--quiet-ops"])
    srv.start()
    try:
        env = dict(os.environ, LDAPTLS_REQCERT="never", LDAPTLS_CERT=str(cert_pem), LDAPTLS_KEY=str(key_pem))
        # someone guessing locks the forest administrator's password binds...
        for _ in range(5):
            assert run_tool("ldapwhoami", "-H", srv.url, "-x", "-D", ADMIN, "-w", "guess-Pw-1").returncode == 49
        r = run_tool("ldapwhoami", "-H", srv.url, "-x", "-e", "ppolicy", "-D", ADMIN, "-w", ADMIN_PW)
        assert r.returncode == 49 and "Account locked" in r.stdout + r.stderr
        # ...but the certificate still gets in, and from there the administrator unlocks itself
        r = run_tool("ldapwhoami", "-H", srv.ldaps_url, "-Y", "EXTERNAL", "-Q", env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().lower() == f"dn:{ADMIN}".lower()
        r = run_tool("ldapmodify", "-H", srv.ldaps_url, "-Y", "EXTERNAL", "-Q", env=env,
                     input=f"dn: {ADMIN}\nchangetype: modify\ndelete: pwdAccountLockedTime\n")
        assert r.returncode == 0, r.stderr
        assert run_tool("ldapwhoami", "-H", srv.url, "-x", "-D", ADMIN, "-w", ADMIN_PW).returncode == 0
        # without a certificate: inappropriateAuthentication
        r = run_tool("ldapwhoami", "-H", srv.ldaps_url, "-Y", "EXTERNAL", "-Q",
                     env=dict(os.environ, LDAPTLS_REQCERT="never"))
        assert r.returncode != 0
    finally:
        srv.stop()
