"""String preparation for matching (RFC 4518, the parts that matter).

Steps, as in RFC 4518 section 2: transcode (UTF-8), map (controls and
zero-width characters removed, white space and separators become SPACE,
optional case folding), normalize (NFKC), prohibit (private use, surrogates,
non-characters, U+FFFD) and insignificant space handling.

Every function raises ``ValueError`` when the input cannot be prepared
(invalid UTF-8, prohibited characters, non-IA5 input to an IA5 rule). ASCII
input, by far the common case, takes a fast path without per-character work.

Layer 1: pure, no I/O.
"""
from __future__ import annotations

import unicodedata

__all__ = [
    "prep_equality",
    "prep_substring_value",
    "prep_substring_component",
    "prep_ia5",
    "prep_numeric",
    "prep_telephone",
    "map_and_fold",
]

_ASCII_SPACES = bytes.maketrans(b"\t\n\x0b\x0c\r", b"     ")
_ASCII_DELETE = bytes(range(0x00, 0x09)) + bytes(range(0x0E, 0x20)) + b"\x7f"
_ASCII_SPACES_LOWER = bytes(
    (b" "[0] if c in b"\t\n\x0b\x0c\r" else (c + 32 if 0x41 <= c <= 0x5A else c)) for c in range(256)
)

# Code points mapped to nothing (RFC 4518 2.2) besides the Cc and Cf categories.
_TO_NOTHING = frozenset([0x00AD, 0x1806, 0x034F, 0x180B, 0x180C, 0x180D, 0xFFFC, 0x200B] + list(range(0xFE00, 0xFE10)))
_TO_SPACE = frozenset([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85])


def _map_unicode(s: str, fold: bool) -> str:
    out = []
    for ch in s:
        o = ord(ch)
        if o < 0x80:
            if o in _TO_SPACE:
                out.append(" ")
            elif o < 0x20 or o == 0x7F:
                continue
            else:
                out.append(ch)
            continue
        if o in _TO_NOTHING:
            continue
        if o in _TO_SPACE:
            out.append(" ")
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf"):
            continue
        if cat in ("Zs", "Zl", "Zp"):
            out.append(" ")
            continue
        if cat in ("Co", "Cs") or o == 0xFFFD or (0xFDD0 <= o <= 0xFDEF) or (o & 0xFFFE) == 0xFFFE:
            raise ValueError("prohibited character")
        out.append(ch)
    r = "".join(out)
    if fold:
        r = r.casefold()
    r = unicodedata.normalize("NFKC", r)
    if fold:
        # NFKC may produce upper-case compatibility forms (e.g. U+2160 ROMAN NUMERAL ONE)
        r = r.casefold()
    return r


def map_and_fold(value: bytes, fold: bool) -> str:
    """Transcode, map, (fold), normalize and prohibit; no space handling."""
    if value.isascii():
        v = value.translate(_ASCII_SPACES_LOWER if fold else _ASCII_SPACES, _ASCII_DELETE)
        return v.decode("ascii")
    return _map_unicode(value.decode("utf-8"), fold)  # UnicodeDecodeError is a ValueError


def _squeeze(s: str) -> str:
    parts = [p for p in s.split(" ") if p]
    return " ".join(parts) if parts else " "


def prep_equality(value: bytes, fold: bool) -> bytes:
    """Prepared form for equality/ordering of Directory-String-like values.

    Leading and trailing spaces removed, internal runs collapsed to one space;
    a value of only spaces becomes a single space (keys are never empty).
    """
    if value.isascii():
        v = value.translate(_ASCII_SPACES_LOWER if fold else _ASCII_SPACES, _ASCII_DELETE)
        parts = v.split()
        return b" ".join(parts) if parts else b" "
    return _squeeze(_map_unicode(value.decode("utf-8"), fold)).encode("utf-8")


def prep_substring_value(value: bytes, fold: bool) -> str:
    """Prepared attribute value for substring matching (as equality, as str)."""
    if value.isascii():
        v = value.translate(_ASCII_SPACES_LOWER if fold else _ASCII_SPACES, _ASCII_DELETE)
        parts = v.split()
        return b" ".join(parts).decode("ascii") if parts else " "
    return _squeeze(_map_unicode(value.decode("utf-8"), fold))


def prep_substring_component(value: bytes, fold: bool, where: str) -> str:
    """Prepared substring assertion component.

    ``where`` is ``"initial"``, ``"any"`` or ``"final"``. Internal runs of
    spaces collapse to one; leading spaces of the initial component and
    trailing spaces of the final component are insignificant.
    """
    s = map_and_fold(value, fold)
    out = []
    prev_space = False
    for ch in s:
        if ch == " ":
            if prev_space:
                continue
            prev_space = True
        else:
            prev_space = False
        out.append(ch)
    r = "".join(out)
    if where == "initial":
        r = r.lstrip(" ")
    elif where == "final":
        r = r.rstrip(" ")
    return r


def prep_ia5(value: bytes, fold: bool) -> bytes:
    """IA5 (ASCII) equality preparation. Raises ValueError for non-ASCII."""
    if not value.isascii():
        raise ValueError("not IA5")
    v = value.translate(_ASCII_SPACES_LOWER if fold else _ASCII_SPACES, _ASCII_DELETE)
    parts = v.split()
    return b" ".join(parts) if parts else b" "


def prep_numeric(value: bytes) -> bytes:
    """numericString preparation: all spaces are insignificant."""
    s = map_and_fold(value, False).replace(" ", "")
    if not s:
        raise ValueError("empty numeric string")
    return s.encode("utf-8")


_TEL_INSIGNIFICANT = dict.fromkeys(map(ord, " -\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"))


def prep_telephone(value: bytes) -> bytes:
    """telephoneNumber preparation: case folded, spaces and hyphens removed."""
    s = map_and_fold(value, True).translate(_TEL_INSIGNIFICANT)
    if not s:
        raise ValueError("empty telephone number")
    return s.encode("utf-8")
