"""A node listening on an IPv6 address (``--listen ::1``), as an operator on an IPv6
network runs it: every URL it prints or publishes has the address in brackets (RFC 3986),
the commands its banner suggests work as printed, its certificate names the address, and a
second node joins it and replicates both ways over IPv6."""
from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import ADMIN, ADMIN_PW, BASE, LIGHTWAVE, Server, make_server, run_tool, wait_for


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    a = make_server(tmp_path_factory, "v6-a", workers=2, extra=[])
    a.listen = "::1"
    a.start()
    b = make_server(tmp_path_factory, "v6-b", workers=1, extra=["--quiet-ops", "--join", a.url])
    b.listen = "::1"
    try:
        b.start(timeout=90)
        yield a, b
    finally:
        if b.proc is not None:
            b.stop()
        a.stop()


def _banner(srv: Server) -> str:
    return wait_for("the banner is printed", lambda: "Try:" in srv.log() and srv.log())


def test_printed_urls_bracket_the_address_and_the_suggested_commands_work(nodes: tuple[Server, Server]) -> None:
    a, _ = nodes
    log = _banner(a)
    assert a.url == f"ldap://[::1]:{a.ldap_port}"
    assert f"LDAP      ldap://[::1]:{a.ldap_port}" in log
    assert f"LDAPS     ldaps://[::1]:{a.ldaps_port}" in log
    assert f"Health    https://[::1]:{a.https_port}/health" in log
    assert f"--join ldap://[::1]:{a.ldap_port}" in log
    assert re.search(rf"worker 0 serving ldap://\[::1\]:{a.ldap_port} ldaps://\[::1\]:{a.ldaps_port} ", log), log
    assert "://::1" not in log, log
    # the "Try:" lines, run as printed (the password taken from the environment)
    tried = [ln.strip() for ln in log.split("Try:", 1)[1].splitlines()
             if ln.strip().startswith(("ldapsearch", "ldapwhoami -H ldap:", "LDAPTLS_REQCERT", "curl"))]
    assert len(tried) == 4, tried
    env = dict(os.environ, LIGHTWAVE_ADMIN_PASSWORD=ADMIN_PW)
    for line in tried:
        r = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 0, (line, r.stdout, r.stderr)
        assert ("[::1]" in line) or ("localhost" not in line), line
    # curl checked the node's certificate for [::1]: the certificate names the address
    c = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                        os.path.join(a.data_dir, "tls", "server.crt")], capture_output=True, text=True, timeout=30)
    assert "IP Address:0:0:0:0:0:0:0:1" in c.stdout or "IP Address:::1" in c.stdout, c.stdout


def test_a_node_joined_over_ipv6_publishes_a_bracketed_url_and_replicates_both_ways(
        nodes: tuple[Server, Server]) -> None:
    a, b = nodes
    for i, (src, dst) in enumerate(((a, b), (b, a))):
        dn = f"cn=v6-{i},{BASE}"
        r = run_tool("ldapadd", "-H", src.url, "-x", "-D", ADMIN, "-w", ADMIN_PW,
                     input=f"dn: {dn}\nobjectClass: person\ncn: v6-{i}\nsn: six\n")
        assert r.returncode == 0, r.stderr
        wait_for(f"{dn} reaches {dst.url}", lambda: run_tool(
            "ldapsearch", "-LLL", "-H", dst.url, "-x", "-D", ADMIN, "-w", ADMIN_PW, "-b", dn, "-s", "base",
            "dn").returncode == 0, timeout=30)
    # each node entry publishes where the node is reached: a URL another node can connect to
    r = run_tool("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-H", b.url, "-x", "-D", ADMIN, "-w", ADMIN_PW,
                 "-b", "cn=Nodes,cn=System", "-s", "one", "labeledURI")
    assert r.returncode == 0, r.stderr
    urls = sorted(re.findall(r"^labeledURI: (\S+)", r.stdout, re.M))
    assert urls == sorted([a.url, b.url]), r.stdout
    st = subprocess.run([LIGHTWAVE, "repl", "status", "--server", b.url], capture_output=True, text=True,
                        timeout=60, env=dict(os.environ, LIGHTWAVE_ADMIN_PASSWORD=ADMIN_PW))
    assert st.returncode == 0 and a.url in st.stdout, shlex.join(st.args) + "\n" + st.stdout + st.stderr
