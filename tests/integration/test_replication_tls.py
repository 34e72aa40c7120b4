"""Nodes check each other's TLS certificates, with real nodes on localhost: a join pins the
partner's certificate by the fingerprint the operator gives (`openssl x509 -fingerprint`),
partners are checked against the key their node entry publishes, and a node with a new
key announces it when it pulls, so its partners accept it again; a node that only pulls
from it learns the key from the others.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from replication._partner import Partner, PartnerError, Trust, published_elsewhere
from replication._wire import PullRequest
from tests.conftest import Server, make_server, wait_for
from tests.integration.test_replication import USERS, cli, conn, converge, node_name, read


def cert_file(s: Server) -> str:
    return os.path.join(s.data_dir, "tls", "server.crt")


def der(path: str) -> bytes:
    return subprocess.run(["openssl", "x509", "-in", path, "-outform", "DER"], capture_output=True,
                          check=True).stdout


def openssl_fingerprint(path: str) -> str:
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", path],
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split("=", 1)[1]  # "sha256 Fingerprint=AB:CD:..."


def other_certificate(tmp_path) -> bytes:
    key, crt = str(tmp_path / "other.key"), str(tmp_path / "other.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=127.0.0.1"],
                   capture_output=True, check=True)
    return der(crt)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    a = make_server(tmp_path_factory, "tls-a")
    a.start()
    started = [a]
    yield started
    for n in started:
        n.stop()


def test_join_refuses_a_partner_whose_fingerprint_is_not_the_given_one(
        nodes: list[Server], tmp_path_factory: pytest.TempPathFactory) -> None:
    a = nodes[0]
    wrong = make_server(tmp_path_factory, "tls-wrong", extra=["--quiet-ops", "--join", a.url,
                                                              "--join-fingerprint", "AB:" * 31 + "AB"])
    with pytest.raises(RuntimeError) as failed:
        wrong.start(timeout=60)
    assert "not the expected AB:AB:" in str(failed.value), str(failed.value)
    assert wrong.proc is not None and wrong.proc.returncode == 1
    # refused before the administrator's password was sent: nothing registered at A
    assert read(a, f"cn={node_name(wrong)},cn=Nodes,cn=System") is None

    b = make_server(tmp_path_factory, "tls-b", extra=["--quiet-ops", "--join", a.url,
                                                      "--join-fingerprint", openssl_fingerprint(cert_file(a))])
    b.start(timeout=90)
    nodes.append(b)
    converge(a)
    # each node publishes its certificate in its node entry, on every node
    for s in (a, b):
        for where in (a, b):
            e = read(where, f"cn={node_name(s)},cn=Nodes,cn=System", "userCertificate")
            assert e is not None and e["usercertificate"] == [der(cert_file(s))]


def test_a_partner_is_checked_against_the_key_its_entry_publishes(nodes: list[Server], tmp_path) -> None:
    a, b = nodes
    with open(os.path.join(b.data_dir, "node-password")) as f:
        password = f.read().strip()
    me = f"cn={node_name(b)},cn=Nodes,cn=System"
    published = Trust.published(node_name(a), [der(cert_file(a))])
    p = Partner(a.url, me, password, trust=lambda: published)
    p.connect()
    records, resp = p.pull(PullRequest(b"\x01" * 16, 0, 5, {}))
    assert records and resp.more
    p.close()
    impostor = Trust.published(node_name(a), [other_certificate(tmp_path)])
    p = Partner(a.url, me, password, trust=lambda: impostor)
    with pytest.raises(PartnerError, match="whose key is not the one published for node"):
        p.connect()
    nothing = Trust.published(node_name(a), [])
    p = Partner(a.url, me, password, trust=lambda: nothing)
    with pytest.raises(PartnerError, match="no certificate is published"):
        p.connect()
    # LDAPS is checked the same way
    p = Partner(a.ldaps_url, me, password, trust=lambda: impostor)
    with pytest.raises(PartnerError, match="not the one published"):
        p.connect()
    # another node may vouch for the key: B's copy of A's entry publishes A's real key
    b_trust = Trust.published(node_name(b), [der(cert_file(b))])
    witness = [(node_name(b), b.url, b_trust)]
    a_entry = f"cn={node_name(a)},cn=Nodes,cn=System"
    p = Partner(a.url, me, password, trust=lambda: impostor,
                vouch=lambda cert: published_elsewhere(cert, a_entry, witness, me, password))
    p.connect()
    assert p.vouched_by == node_name(b)
    p.close()
    # ... but not for a key it does not publish for that node (here: B's entry's), nor
    # when the witness itself presents a key other than its published one
    p = Partner(a.url, me, password, trust=lambda: impostor,
                vouch=lambda cert: published_elsewhere(cert, me, witness, me, password))
    with pytest.raises(PartnerError, match="no other node publishes that key for it either"):
        p.connect()
    false_witness = [(node_name(b), b.url, Trust.published(node_name(b), [other_certificate(tmp_path)]))]
    assert published_elsewhere(der(cert_file(a)), a_entry, false_witness, me, password) is None


def test_a_node_with_a_new_key_is_accepted_again_after_it_announces_it(nodes: list[Server]) -> None:
    a, b = nodes
    b.stop()
    old = der(cert_file(b))
    shutil.rmtree(os.path.join(b.data_dir, "tls"))  # a new self-signed certificate, with a new key
    b.start(timeout=60)
    new = der(cert_file(b))
    assert new != old
    # B announced its certificate in its pulls from A: A's copy of B's entry has the new one
    wait_for("A to learn B's new certificate",
             lambda: (read(a, f"cn={node_name(b)},cn=Nodes,cn=System", "userCertificate") or {})
             .get("usercertificate") == [new])
    # and A pulls from B again: a write on B reaches A
    c = conn(b)
    c.add(f"cn=after-rekey,{USERS}", ["inetOrgPerson"], {"sn": "x", "uid": "after-rekey"})
    c.unbind()
    converge(b)
    assert read(a, f"cn=after-rekey,{USERS}") is not None


def test_a_new_key_reaches_a_node_that_only_pulls_from_it(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A one-way ring (B pulls from A, C from B, A from C). B gets a new key: it announces
    it to A, the node it pulls from, but C pulls from B and is not pulled from by it, so C
    has no copy of B's entry that publishes the new key. C asks the other nodes (A): A
    publishes it, so C accepts B, and a write on B goes round the ring again."""
    a = make_server(tmp_path_factory, "ring-a")
    a.start()
    b = make_server(tmp_path_factory, "ring-b", extra=["--quiet-ops", "--join", a.url])
    b.start(timeout=90)
    c = make_server(tmp_path_factory, "ring-c", extra=["--quiet-ops", "--join", b.url])
    c.start(timeout=90)
    nodes = [a, b, c]
    try:
        # through A: its own agreements change there, and B pulls from A
        for args in (("add", "--from", c.url, "--to", node_name(a)),
                     ("remove", "--from", node_name(b), "--to", node_name(a)),
                     ("remove", "--from", node_name(c), "--to", node_name(b))):
            r = cli("repl", "agreement", *args, "--server", a.url)
            assert r.returncode == 0, r.stdout + r.stderr
        converge(a)
        r = cli("repl", "agreement", "list", "--server", c.url, "--json")
        pulls = sorted((x["to"], x["from"]) for x in json.loads(r.stdout))
        assert pulls == sorted([(node_name(b), node_name(a)), (node_name(c), node_name(b)),
                                (node_name(a), node_name(c))]), pulls
        converge(b)
        b.stop()
        shutil.rmtree(os.path.join(b.data_dir, "tls"))  # a new self-signed certificate, with a new key
        b.start(timeout=60)
        new = der(cert_file(b))
        cn = conn(b)
        cn.add(f"cn=round-the-ring,{USERS}", ["inetOrgPerson"], {"sn": "r", "uid": "round-the-ring"})
        cn.unbind()
        converge(b)
        for n in (a, c):
            assert read(n, f"cn=round-the-ring,{USERS}") is not None
            # C now holds B's entry with the new certificate (replicated from B itself)
            assert new in (read(n, f"cn={node_name(b)},cn=Nodes,cn=System", "userCertificate") or {}).get(
                "usercertificate", [])
        assert f"node {node_name(a)} publishes it for {node_name(b)}" in c.log()
    finally:
        for n in nodes:
            n.stop()
