"""The URLs a node prints and publishes, from its listen address: IPv6 in brackets, a
wildcard published as the host name (a partner would read 0.0.0.0 as itself), local client
URLs by localhost where that reaches the listener."""
from __future__ import annotations

import socket

import pytest

from lightwave.config import NodeConfig
from lightwave.nodes import cert_names


def cfg(listen: str, **kw) -> NodeConfig:
    return NodeConfig(listen=listen, ldap_port=10389, ldaps_port=10636, https_port=8443, **kw)


@pytest.mark.parametrize("listen, published, local", [
    ("127.0.0.1", "ldap://127.0.0.1:10389", "ldap://localhost:10389"),
    ("192.0.2.7", "ldap://192.0.2.7:10389", "ldap://192.0.2.7:10389"),
    ("::1", "ldap://[::1]:10389", "ldap://[::1]:10389"),
    ("2001:db8::5", "ldap://[2001:db8::5]:10389", "ldap://[2001:db8::5]:10389"),
    ("0.0.0.0", f"ldap://{socket.gethostname()}:10389", "ldap://localhost:10389"),
    ("::", f"ldap://{socket.gethostname()}:10389", "ldap://localhost:10389"),
])
def test_published_and_local_urls(listen: str, published: str, local: str) -> None:
    c = cfg(listen)
    assert c.effective_url == published
    assert c.url("ldap", c.ldap_port, local=True) == local
    assert c.url("https", c.https_port, "/health").endswith(":8443/health")


def test_an_advertised_url_is_published_as_given() -> None:
    assert cfg("0.0.0.0", advertise_url="ldaps://dir1.example.com:636").effective_url == "ldaps://dir1.example.com:636"


def test_without_an_ldap_port_the_ldaps_url_is_published() -> None:
    c = NodeConfig(listen="::1", ldap_port=0, ldaps_port=10636)
    assert c.effective_url == "ldaps://[::1]:10636"


def test_the_certificate_names_a_specific_listen_address_and_never_a_wildcard() -> None:
    assert cert_names(cfg("192.0.2.7"))[-1] == "192.0.2.7"
    for wildcard in ("0.0.0.0", "::"):
        assert wildcard not in cert_names(cfg(wildcard))
    names = cert_names(cfg("127.0.0.1"))
    assert names.count("127.0.0.1") == 1 and "::1" in names and "localhost" in names
