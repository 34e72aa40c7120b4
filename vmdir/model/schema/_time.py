"""Generalized Time and UTC Time (RFC 4517 3.3.13 and 3.3.34).

``parse_generalized_time`` returns a canonical UTC form: whole seconds since
the epoch plus the fractional second as a digit string without trailing
zeros. Equality keys print it as ``YYYYMMDDHHMMSS[.fff]Z``; ordering keys
compare the ``(seconds, fraction digits)`` tuple, which orders like the
instants themselves (digit strings without trailing zeros compare like the
fractions they denote).

Layer 1: pure, no I/O.
"""
from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta, timezone
from fractions import Fraction

__all__ = ["TimeKey", "parse_generalized_time", "parse_utc_time", "format_time_key"]

TimeKey = tuple[int, str]

_GT = re.compile(rb"(\d{4})(\d{2})(\d{2})(\d{2})(?:(\d{2})(\d{2})?)?(?:[.,](\d{1,32}))?(Z|[+-]\d{2}(?:\d{2})?)\Z")
_UT = re.compile(rb"(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(Z|[+-]\d{4})\Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _offset(tz: bytes) -> int:
    if tz == b"Z":
        return 0
    hh = int(tz[1:3])
    mm = int(tz[3:5]) if len(tz) == 5 else 0
    if hh > 23 or mm > 59:
        raise ValueError("bad time zone")
    off = hh * 3600 + mm * 60
    return -off if tz[:1] == b"-" else off


def _key(year: int, month: int, day: int, hour: int, minute: int, second: int, frac: Fraction, off: int) -> TimeKey:
    if year < 1:
        raise ValueError("year out of range")
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1] and hour <= 23 and minute <= 59 and second <= 60):
        raise ValueError("time out of range")
    base = calendar.timegm((year, month, day, hour, minute, 0, 0, 0, 0)) + second - off
    total = base + frac
    whole = total.numerator // total.denominator
    rest = total - whole
    digits = ""
    if rest:
        # rest has a terminating decimal expansion (denominator divides 10^k)
        k = 0
        while (rest * 10**k).denominator != 1:
            k += 1
            if k > 40:
                raise ValueError("fraction too long")
        digits = str(int(rest * 10**k)).rjust(k, "0").rstrip("0")
    # make sure the instant is printable (years 0001..9999)
    try:
        _EPOCH + timedelta(seconds=whole)
    except OverflowError:
        raise ValueError("year out of range") from None
    return whole, digits


def parse_generalized_time(value: bytes) -> TimeKey:
    """Parse a GeneralizedTime. Raises ValueError if malformed."""
    m = _GT.match(value)
    if m is None:
        raise ValueError("not a GeneralizedTime")
    y, mo, d, h, mi, s, f, tz = m.groups()
    frac = Fraction(0)
    if f is not None:
        unit = 1 if s is not None else (60 if mi is not None else 3600)
        frac = Fraction(int(f), 10 ** len(f)) * unit
    return _key(int(y), int(mo), int(d), int(h), int(mi or 0), int(s or 0), frac, _offset(tz))


def parse_utc_time(value: bytes) -> TimeKey:
    """Parse a UTCTime (two-digit year: 50-99 -> 19xx, 00-49 -> 20xx)."""
    m = _UT.match(value)
    if m is None:
        raise ValueError("not a UTCTime")
    yy, mo, d, h, mi, s, tz = m.groups()
    year = int(yy)
    year += 1900 if year >= 50 else 2000
    return _key(year, int(mo), int(d), int(h), int(mi), int(s or 0), Fraction(0), _offset(tz))


def format_time_key(key: TimeKey) -> bytes:
    """Canonical ``YYYYMMDDHHMMSS[.fff]Z`` form of a time key."""
    whole, digits = key
    dt = _EPOCH + timedelta(seconds=whole)
    s = dt.strftime("%Y%m%d%H%M%S")
    if len(s) < 14:  # strftime does not zero-pad years < 1000 everywhere
        s = f"{dt.year:04d}{dt.month:02d}{dt.day:02d}{dt.hour:02d}{dt.minute:02d}{dt.second:02d}"
    if digits:
        s += "." + digits
    return (s + "Z").encode("ascii")
