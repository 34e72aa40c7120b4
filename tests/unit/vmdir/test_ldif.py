"""The LDIF reader (RFC 2849): records with their first line, folded lines, comments,
base64 values, the version line, and malformed input refused with its line."""
from __future__ import annotations

import io

import pytest

from vmdir.model import ldif


def read(text: str) -> list[ldif.Record]:
    return list(ldif.parse(io.StringIO(text)))


def test_records_values_and_their_lines() -> None:
    text = ("version: 1\n\n# people\ndn: cn=a,dc=x\ncn: a\ncn:: Yg==\ndescription: folded\n  and more\n"
            "sn:  two spaces\r\n\n\n\ndn: cn=c,dc=x\nchangetype: delete\n")
    got = read(text)
    assert [(r.dn, r.line, r.changetype) for r in got] == [("cn=a,dc=x", 4, "add"), ("cn=c,dc=x", 13, "delete")]
    assert got[0].attrs == [("cn", b"a"), ("cn", b"b"), ("description", b"folded and more"), ("sn", b"two spaces")]
    assert got[0].grouped() == [("cn", [b"a", b"b"]), ("description", [b"folded and more"]), ("sn", [b"two spaces"])]
    assert got[0].attributes() == (("cn", (b"a", b"b")), ("description", (b"folded and more",)), ("sn", (b"two spaces",)))


def test_a_modify_record() -> None:
    (r,) = read("dn: cn=a,dc=x\nchangetype: modify\nadd: mail\nmail: a@x\nmail: b@x\n-\nreplace: sn\nsn: B\n-\n"
                "delete: cn\n-\n")
    assert r.mods == [("add", "mail", [b"a@x", b"b@x"]), ("replace", "sn", [b"B"]), ("delete", "cn", [])]


@pytest.mark.parametrize("text, line, message", [
    ("dn: cn=a,dc=x\ncn: a\n\ndn: cn=b,dc=x\nbroken line\n", 5, "missing ':'"),
    ("cn: a\n", 1, "does not start with 'dn:'"),
    ("dn: cn=a,dc=x\ncn:: not base64!\n", 2, "invalid base64"),
    ("dn: cn=a,dc=x\njpegPhoto:< http://example.com/x\n", 2, "URL values are not allowed"),
    ("dn: cn=a,dc=x\nchangetype: explode\n", 1, "unknown changetype"),
    ("dn: cn=a,dc=x\nchangetype: modify\nfrobnicate: cn\n", 3, "unknown modify operation"),
    ("dn: cn=a,dc=x\nchangetype: modrdn\n", 1, "without newrdn"),
])
def test_malformed_input_is_refused_with_its_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ldif.LDIFError) as err:
        read(text)
    assert err.value.line == line and message in str(err.value)


def test_url_values_come_through_the_given_opener() -> None:
    opened = []

    def opener(path: str) -> bytes:
        opened.append(path)
        return b"\xff\xd8photo"

    (r,) = ldif.parse(io.StringIO("dn: cn=a,dc=x\njpegPhoto:< file:///tmp/a.jpg\n"), open_url=opener)
    assert r.attrs == [("jpegPhoto", b"\xff\xd8photo")] and opened == ["/tmp/a.jpg"]
