"""A small RFC 4514 DN parser for the DN syntax and distinguishedNameMatch.

This is the schema's own validator (``vmdir.model.dn`` is the directory's DN
model; this module must not depend on it). It accepts RFC 4514 plus the
leniencies slapd accepts on input: white space around ``,`` ``+`` and ``=``,
``;`` as an RDN separator and LDAPv2 quoted values.

Layer 1: pure, no I/O.
"""
from __future__ import annotations

__all__ = ["AVA", "parse_dn", "escape_value", "MAX_DN_LENGTH"]

MAX_DN_LENGTH = 64 * 1024

AVA = tuple[str, bytes, bool]  # (attribute type as written, value, value was #hex)

_HEX = frozenset("0123456789abcdefABCDEF")
_SPECIAL_ESC = frozenset('"+,;<>\\ #=')
_ALNUM_DASH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_OIDCH = frozenset("0123456789.")


def parse_dn(dn: str) -> list[list[AVA]]:
    """Parse a DN string into RDNs (leftmost first), each a list of AVAs.

    Raises ValueError if the string is not a DN. The empty string (and a
    string of spaces) is the empty DN ``[]``.
    """
    if len(dn) > MAX_DN_LENGTH:
        raise ValueError("DN too long")
    n = len(dn)
    i = 0
    while i < n and dn[i] == " ":
        i += 1
    if i == n:
        return []
    rdns: list[list[AVA]] = []
    rdn: list[AVA] = []
    while True:
        while i < n and dn[i] == " ":
            i += 1
        # attribute type
        start = i
        if i < n and dn[i].isascii() and dn[i].isalpha():
            while i < n and dn[i] in _ALNUM_DASH:
                i += 1
            atype = dn[start:i]
            if atype[:4].lower() == "oid." and i < n and dn[i] in _OIDCH:  # LDAPv2 "OID.2.5.4.3"
                while i < n and dn[i] in _OIDCH:
                    i += 1
                atype = dn[start + 4 : i]
                _check_oid(atype)
        elif i < n and dn[i].isdigit():
            while i < n and dn[i] in _OIDCH:
                i += 1
            atype = dn[start:i]
            _check_oid(atype)
        else:
            raise ValueError("attribute type expected")
        while i < n and dn[i] == " ":
            i += 1
        if i >= n or dn[i] != "=":
            raise ValueError("'=' expected")
        i += 1
        while i < n and dn[i] == " ":
            i += 1
        # attribute value
        is_hex = False
        if i < n and dn[i] == "#":
            i += 1
            start = i
            while i < n and dn[i] in _HEX:
                i += 1
            h = dn[start:i]
            if not h or len(h) % 2:
                raise ValueError("bad hexstring")
            value = bytes.fromhex(h)
            is_hex = True
        elif i < n and dn[i] == '"':
            i += 1
            buf = bytearray()
            while True:
                if i >= n:
                    raise ValueError("unterminated quoted value")
                ch = dn[i]
                if ch == '"':
                    i += 1
                    break
                if ch == "\\":
                    i = _escape(dn, i, buf)
                    continue
                buf += ch.encode("utf-8")
                i += 1
            value = bytes(buf)
        else:
            buf = bytearray()
            keep = 0  # length of buf that trailing-space stripping must not cut
            while i < n:
                ch = dn[i]
                if ch in ",;+":
                    break
                if ch == "\\":
                    i = _escape(dn, i, buf)
                    keep = len(buf)
                    continue
                if ch in '"<>\x00':
                    raise ValueError(f"unescaped {ch!r} in value")
                buf += ch.encode("utf-8")
                if ch != " ":
                    keep = len(buf)
                i += 1
            value = bytes(buf[:keep])
        rdn.append((atype, value, is_hex))
        while i < n and dn[i] == " ":
            i += 1
        if i >= n:
            rdns.append(rdn)
            return rdns
        ch = dn[i]
        i += 1
        if ch == "+":
            continue
        if ch in ",;":
            rdns.append(rdn)
            rdn = []
            continue
        raise ValueError(f"unexpected {ch!r}")


def _check_oid(s: str) -> None:
    parts = s.split(".")
    if len(parts) < 2 or any(not p or (len(p) > 1 and p[0] == "0") for p in parts):
        raise ValueError("malformed numeric OID")


def _escape(dn: str, i: int, buf: bytearray) -> int:
    """Decode the escape at dn[i] == '\\' into buf; return the next index."""
    if i + 1 >= len(dn):
        raise ValueError("dangling escape")
    c1 = dn[i + 1]
    if c1 in _HEX and i + 2 < len(dn) and dn[i + 2] in _HEX:
        buf.append(int(dn[i + 1 : i + 3], 16))
        return i + 3
    if c1 in _SPECIAL_ESC:
        buf += c1.encode("utf-8")
        return i + 2
    raise ValueError("bad escape")


def escape_value(s: str) -> str:
    """RFC 4514 string form of a value (minimal, canonical escaping)."""
    if not s:
        return s
    out = []
    for ch in s:
        if ch in '"+,;<>\\=':
            out.append("\\" + ch)
        elif ch == "\x00":
            out.append("\\00")
        else:
            out.append(ch)
    if s[0] in " #":
        out[0] = "\\" + s[0]
    if s[-1] == " " and (len(s) > 1 or s[0] != " "):
        out[-1] = "\\ "
    return "".join(out)
