"""Password storage schemes: OpenLDAP-compatible ``{SCHEME}`` userPassword values.

Formats (all verified; all but cleartext can be produced by :func:`hash_password`):

``{ARGON2}$argon2id$v=19$m=<KiB>,t=<n>,p=<n>$<b64 salt>$<b64 hash>``
    OpenLDAP's pw-argon2 (slapd-pw-argon2(5)): ``{ARGON2}`` followed by the PHC
    string of the reference library, base64 without padding. We write argon2id;
    argon2i and argon2d values (slapd 2.5 built with libargon2 writes argon2i)
    verify too.
``{PBKDF2-SHA512}<iterations>$<ab64 salt>$<ab64 dk>`` (also ``-SHA256``, ``-SHA1``
    and ``{PBKDF2}`` = SHA-1)
    OpenLDAP's contrib pw-pbkdf2, which is also what 389-ds 2.x (pwdchan) and
    passlib's ``ldap_pbkdf2_*`` write. "ab64" is passlib's adapted base64: ``.``
    for ``+``, no padding. We write a 16-byte salt and a digest-sized dk, as
    pw-pbkdf2 requires; we verify any salt length and dk lengths 16..256 bytes.
``{PBKDF2_SHA256}<base64(iterations:4 BE | salt:64 | dk:256)>``
    the legacy 389-ds 1.3/1.4 format; verified only.
``{SSHA}``, ``{SSHA256}``, ``{SSHA384}``, ``{SSHA512}``, ``{SMD5}``
    base64(digest(password + salt) + salt); salt of any length >= 1 (we write 8).
``{SHA}``, ``{SHA256}``, ``{SHA384}``, ``{SHA512}``, ``{MD5}``
    base64(digest(password)).
``{CRYPT}<crypt(3) string>``
    through Python's ``crypt`` module (deprecated in 3.11, removed in 3.13; its
    DeprecationWarning is suppressed here). Whatever the system's libcrypt
    knows verifies: ``$6$``, ``$5$``, ``$1$``, ``$2b$``, ``$y$``, DES. Without the
    module, ``{CRYPT}`` values never verify.
``{CLEARTEXT}<password>`` and a value without a scheme
    compared as they are.

Verification compares in constant time (``hmac.compare_digest``, or inside
libargon2). A value whose ``{SCHEME}`` we do not know, or that is malformed,
simply does not verify: :func:`verify_password` never raises for bad input. As in
OpenLDAP's ``lutil_passwd``, an empty password or an empty stored value never
verifies (an empty simple-bind password is an unauthenticated bind, RFC 4513
5.1.2, and must be handled before getting here).

Because administrators (or an import) can store pre-hashed values, cost
parameters read from a stored value are capped before any work (``*_MAX_*``
constants below), as is the length of the password and of the stored value;
beyond a cap a value does not verify.

Defaults (measured on the 2-core development box, see :data:`ARGON2_TIME_COST`)
are chosen so that a bind costs tens of milliseconds of one core, not seconds.

Layer 1: pure, no I/O (randomness from :mod:`secrets` only).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import warnings
from typing import Callable

import argon2.exceptions
from argon2.low_level import Type as _Argon2Type
from argon2.low_level import hash_secret as _argon2_hash
from argon2.low_level import verify_secret as _argon2_verify

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import crypt as _crypt
    except ImportError:  # pragma: no cover - Python >= 3.13 or no libcrypt
        _crypt = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_SCHEME",
    "ARGON2_TIME_COST",
    "ARGON2_MEMORY_COST",
    "ARGON2_PARALLELISM",
    "PBKDF2_ITERATIONS",
    "SCHEMES",
    "HASH_SCHEMES",
    "hash_password",
    "verify_password",
    "is_hashed",
    "scheme_of",
    "needs_rehash",
    "generate_password",
]

DEFAULT_SCHEME = "ARGON2"

#: argon2id cost: OWASP's second recommended profile (m=19 MiB, t=2, p=1),
#: which is also RFC 9106's memory-constrained range. Measured on the 2-core
#: development box: ~22 ms per verify (median of 10; up to ~30 ms under load).
#: RFC 9106's t=3/64 MiB/p=4 costs ~140 ms and both cores, m=64 MiB/t=2/p=1
#: ~125 ms, OpenLDAP pw-argon2's default (argon2i, 4 MiB, t=3) ~11 ms. p=1 keeps one bind on one
#: core, so concurrent binds scale with the worker threads; memory per bind is
#: bounded by 19 MiB. Tests pass e.g. ``time_cost=1, memory_cost=8``.
ARGON2_TIME_COST = 2
ARGON2_MEMORY_COST = 19 * 1024  # KiB
ARGON2_PARALLELISM = 1
ARGON2_HASH_LEN = 32
ARGON2_SALT_LEN = 16

#: PBKDF2 iterations written by default, per scheme. Below OWASP 2023 (which
#: asks 210k/600k/1.3M) because a bind would then cost 0.3-0.5 s here; PBKDF2 is
#: for FIPS/compatibility, argon2id is the default. Measured here: ~30 ms per
#: verify for SHA-1 and SHA-256, ~67 ms for SHA-512.
PBKDF2_ITERATIONS = {
    "PBKDF2-SHA512": 100_000,
    "PBKDF2-SHA256": 100_000,
    "PBKDF2-SHA1": 100_000,
    "PBKDF2": 100_000,
}
PBKDF2_SALT_LEN = 16  # pw-pbkdf2 refuses other sizes
SALTED_SALT_LEN = 8  # {SSHA*}/{SMD5}: OpenLDAP pw-sha2 and 389-ds use 8

# Caps on what a stored value may ask of us.
MAX_PASSWORD_LENGTH = 4096  # bytes
MAX_STORED_LENGTH = 4096  # bytes, scheme included
ARGON2_MAX_MEMORY_COST = 256 * 1024  # KiB
ARGON2_MAX_TIME_COST = 16
ARGON2_MAX_PARALLELISM = 16
PBKDF2_MAX_ITERATIONS = 2_000_000
CRYPT_MAX_ROUNDS = 1_000_000  # $5$/$6$ rounds=
BCRYPT_MAX_COST = 14  # $2?$NN$

_DIGESTS: dict[str, tuple[str, bool]] = {
    # scheme: (hashlib name, salted)
    "SHA": ("sha1", False),
    "SHA256": ("sha256", False),
    "SHA384": ("sha384", False),
    "SHA512": ("sha512", False),
    "MD5": ("md5", False),
    "SSHA": ("sha1", True),
    "SSHA256": ("sha256", True),
    "SSHA384": ("sha384", True),
    "SSHA512": ("sha512", True),
    "SMD5": ("md5", True),
}
# hashlib's constructors by name: hashlib.new(name) looks the name up on every call
_HASHES: dict[str, Callable[[], "hashlib._Hash"]] = {
    "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512,
    "md5": hashlib.md5,
}
_PBKDF2_DIGESTS = {
    "PBKDF2": "sha1",
    "PBKDF2-SHA1": "sha1",
    "PBKDF2-SHA256": "sha256",
    "PBKDF2-SHA512": "sha512",
}

_SCHEME_MAX = 32  # characters of a {SCHEME} name
_SCHEME_RE = re.compile(rb"\{([A-Za-z0-9._-]{1,%d})\}" % _SCHEME_MAX)
_ARGON2_RE = re.compile(
    rb"\$argon2(id|i|d)\$(?:v=(\d{1,3})\$)?m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,3})"
    rb"\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+"
)
_ARGON2_TYPES = {b"id": _Argon2Type.ID, b"i": _Argon2Type.I, b"d": _Argon2Type.D}
_PBKDF2_RE = re.compile(rb"([1-9][0-9]{0,9})\$([A-Za-z0-9./+]+=*)\$([A-Za-z0-9./+]+=*)")
_SHA_CRYPT_ROUNDS_RE = re.compile(r"\$[56]\$rounds=([0-9]{1,12})\$")
_BCRYPT_RE = re.compile(r"\$2[abxy]?\$([0-9]{2})\$")

# Exceptions a malformed value can provoke; anything else is a bug.
_BAD_INPUT = (ValueError, TypeError, OSError, OverflowError, argon2.exceptions.Argon2Error)


# ---------------------------------------------------------------- helpers


def _ab64_encode(data: bytes) -> bytes:
    return base64.b64encode(data).replace(b"+", b".").rstrip(b"=")


def _ab64_decode(text: bytes) -> bytes:
    text = text.rstrip(b"=").replace(b".", b"+")
    return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)


def _b64decode(text: bytes) -> bytes:
    return base64.b64decode(text, validate=True)


def scheme_of(stored: bytes) -> str | None:
    """The upper-cased ``{SCHEME}`` name at the start of ``stored``, or None."""
    scheme, _ = _scheme_head(stored)
    return scheme or None


_HEADS: dict[bytes, str] = {}  # "{ssha}" as stored -> "SSHA" ("" when not a scheme)


def _scheme_head(stored: bytes) -> tuple[str, int]:
    """(upper-cased scheme, where its value starts) of ``stored``; ("", 0) without one.
    The ``{...}`` heads seen are remembered (a bind reads the scheme twice; the regular
    expression and the decoding cost 4k instructions each time)."""
    end = stored.find(b"}", 0, _SCHEME_MAX + 2)  # within "{" + the longest name + "}"
    if end < 0 or not stored.startswith(b"{"):
        return "", 0
    head = stored[:end + 1]
    scheme = _HEADS.get(head)
    if scheme is None:
        m = _SCHEME_RE.fullmatch(head)
        scheme = m.group(1).decode("ascii").upper() if m else ""
        if len(_HEADS) >= 256:  # spelled in more ways than any directory holds: start again
            _HEADS.clear()
        _HEADS[head] = scheme
    return scheme, (end + 1 if scheme else 0)


# ---------------------------------------------------------------- verifiers


def _verify_argon2(password: bytes, rest: bytes, scheme: str) -> bool:
    m = _ARGON2_RE.fullmatch(rest)
    if m is None:
        return False
    variant, _version, mem, time_cost, par = m.groups()
    if (
        int(mem) > ARGON2_MAX_MEMORY_COST
        or int(time_cost) > ARGON2_MAX_TIME_COST
        or int(par) > ARGON2_MAX_PARALLELISM
    ):
        return False
    try:
        return _argon2_verify(rest, password, _ARGON2_TYPES[variant])
    except argon2.exceptions.VerifyMismatchError:
        return False


def _verify_pbkdf2(password: bytes, rest: bytes, scheme: str) -> bool:
    m = _PBKDF2_RE.fullmatch(rest)
    if m is None:
        return False
    iterations = int(m.group(1))
    if iterations > PBKDF2_MAX_ITERATIONS:
        return False
    salt = _ab64_decode(m.group(2))
    dk = _ab64_decode(m.group(3))
    if not salt or not 16 <= len(dk) <= 256:
        return False
    derived = hashlib.pbkdf2_hmac(_PBKDF2_DIGESTS[scheme], password, salt, iterations, len(dk))
    return hmac.compare_digest(derived, dk)


def _verify_389_pbkdf2_sha256(password: bytes, rest: bytes, scheme: str) -> bool:
    blob = _b64decode(rest)
    if len(blob) != 4 + 64 + 256:
        return False
    iterations = int.from_bytes(blob[:4], "big")
    if not 1 <= iterations <= PBKDF2_MAX_ITERATIONS:
        return False
    derived = hashlib.pbkdf2_hmac("sha256", password, blob[4:68], iterations, 256)
    return hmac.compare_digest(derived, blob[68:])


def _verify_digest(password: bytes, rest: bytes, scheme: str) -> bool:
    name, salted = _DIGESTS[scheme]
    raw = binascii.a2b_base64(rest, strict_mode=True)  # as _b64decode refuses, without its Python layers
    h = _HASHES[name]()
    size = h.digest_size
    if salted:
        if len(raw) <= size:
            return False
        h.update(password + raw[size:])
    elif len(raw) != size:
        return False
    else:
        h.update(password)
    return hmac.compare_digest(h.digest(), raw[:size])


def _verify_crypt(password: bytes, rest: bytes, scheme: str) -> bool:
    if _crypt is None or len(rest) < 2 or b"\x00" in password:
        return False
    text = password.decode("utf-8")
    setting = rest.decode("ascii")
    m = _SHA_CRYPT_ROUNDS_RE.match(setting)
    if m is not None and int(m.group(1)) > CRYPT_MAX_ROUNDS:
        return False
    m = _BCRYPT_RE.match(setting)
    if m is not None and int(m.group(1)) > BCRYPT_MAX_COST:
        return False
    result = _crypt.crypt(text, setting)
    if not result:
        return False
    return hmac.compare_digest(result.encode("ascii"), rest)


def _verify_cleartext(password: bytes, rest: bytes, scheme: str) -> bool:
    return hmac.compare_digest(password, rest)


_Verifier = Callable[[bytes, bytes, str], bool]

_VERIFIERS: dict[str, _Verifier] = {
    "ARGON2": _verify_argon2,
    "PBKDF2_SHA256": _verify_389_pbkdf2_sha256,
    "CRYPT": _verify_crypt,
    "CLEARTEXT": _verify_cleartext,
    **{name: _verify_pbkdf2 for name in _PBKDF2_DIGESTS},
    **{name: _verify_digest for name in _DIGESTS},
}

#: Every scheme that :func:`verify_password` knows.
SCHEMES = frozenset(_VERIFIERS)


def verify_password(password: bytes, stored: bytes) -> bool:
    """Whether ``password`` matches the stored userPassword value ``stored``.

    Returns False, never raises, for a wrong password, an unknown ``{SCHEME}``,
    a malformed value, a cost above the caps, an empty password or empty stored
    value, or a password longer than :data:`MAX_PASSWORD_LENGTH`.
    Comparison is constant-time for the digest itself.
    """
    if not password or not stored or len(password) > MAX_PASSWORD_LENGTH:
        return False
    if len(stored) > MAX_STORED_LENGTH:
        return False
    scheme, at = _scheme_head(stored)
    if not scheme:
        return hmac.compare_digest(password, stored)
    verifier = _VERIFIERS.get(scheme)
    if verifier is None:
        return False
    try:
        return verifier(password, stored[at:], scheme)
    except _BAD_INPUT:
        return False


def is_hashed(value: bytes) -> bool:
    """Whether ``value`` starts with the ``{SCHEME}`` of a hash we know
    (``{CLEARTEXT}`` is not a hash)."""
    scheme = scheme_of(value)
    return scheme is not None and scheme != "CLEARTEXT" and scheme in _VERIFIERS


# ---------------------------------------------------------------- hashing


def _hash_argon2(
    password: bytes,
    *,
    time_cost: int = ARGON2_TIME_COST,
    memory_cost: int = ARGON2_MEMORY_COST,
    parallelism: int = ARGON2_PARALLELISM,
    hash_len: int = ARGON2_HASH_LEN,
    salt_len: int = ARGON2_SALT_LEN,
    salt: bytes | None = None,
) -> bytes:
    if salt is None:
        salt = secrets.token_bytes(salt_len)
    encoded = _argon2_hash(
        password, salt, time_cost, memory_cost, parallelism, hash_len, _Argon2Type.ID
    )
    return b"{ARGON2}" + encoded


def _hash_pbkdf2(
    password: bytes,
    scheme: str,
    *,
    iterations: int | None = None,
    salt: bytes | None = None,
) -> bytes:
    if iterations is None:
        iterations = PBKDF2_ITERATIONS[scheme]
    if not 1 <= iterations <= PBKDF2_MAX_ITERATIONS:
        raise ValueError("PBKDF2 iterations out of range")
    if salt is None:
        salt = secrets.token_bytes(PBKDF2_SALT_LEN)
    digest = _PBKDF2_DIGESTS[scheme]
    dk = hashlib.pbkdf2_hmac(digest, password, salt, iterations)
    return b"{%s}%d$%s$%s" % (scheme.encode(), iterations, _ab64_encode(salt), _ab64_encode(dk))


def _hash_digest(password: bytes, scheme: str, *, salt: bytes | None = None) -> bytes:
    name, salted = _DIGESTS[scheme]
    if not salted:
        if salt is not None:
            raise ValueError(f"{{{scheme}}} takes no salt")
        salt = b""
    elif salt is None:
        salt = secrets.token_bytes(SALTED_SALT_LEN)
    elif not salt:
        raise ValueError("empty salt")
    digest = hashlib.new(name, password + salt).digest()
    return b"{%s}%s" % (scheme.encode(), base64.b64encode(digest + salt))


_CRYPT_METHODS = {
    "SHA512": "METHOD_SHA512",
    "SHA256": "METHOD_SHA256",
    "MD5": "METHOD_MD5",
    "BLOWFISH": "METHOD_BLOWFISH",
}


def _hash_crypt(
    password: bytes, *, method: str = "SHA512", rounds: int | None = None, salt: str | None = None
) -> bytes:
    if _crypt is None:
        raise ValueError("{CRYPT} is not available on this Python")
    if b"\x00" in password:
        raise ValueError("NUL in password")
    if salt is None:
        attr = _CRYPT_METHODS.get(method.upper())
        if attr is None:
            raise ValueError(f"unknown crypt method {method!r}")
        salt = _crypt.mksalt(getattr(_crypt, attr), rounds=rounds)
    result: str | None = _crypt.crypt(password.decode("utf-8"), salt)
    if not result or result.startswith("*"):
        raise ValueError("crypt(3) refused the salt/method")
    return b"{CRYPT}" + result.encode("ascii")


#: Every scheme :func:`hash_password` can write.
HASH_SCHEMES = frozenset(
    {"ARGON2", "CRYPT", *_PBKDF2_DIGESTS, *_DIGESTS}
)


def hash_password(password: bytes, scheme: str = DEFAULT_SCHEME, **params: object) -> bytes:
    """Hash ``password`` into a ``{SCHEME}...`` userPassword value.

    ``scheme`` (case-insensitive) is one of :data:`HASH_SCHEMES`. Parameters:

    - ARGON2: ``time_cost``, ``memory_cost`` (KiB), ``parallelism``, ``hash_len``,
      ``salt_len``, ``salt`` (defaults: the ``ARGON2_*`` constants);
    - PBKDF2*: ``iterations`` (default :data:`PBKDF2_ITERATIONS`), ``salt``;
    - salted digests: ``salt`` (bytes, default 8 random bytes);
    - CRYPT: ``method`` (SHA512, SHA256, MD5, BLOWFISH), ``rounds``, or a full
      crypt(3) ``salt`` setting string.

    A given ``salt`` is for known-answer tests only. Raises ``ValueError`` for an
    unknown scheme or bad parameters (``TypeError`` for unknown parameter names).
    """
    name = scheme.strip("{}").upper()
    if name == "ARGON2":
        return _hash_argon2(password, **params)  # type: ignore[arg-type]
    if name in _PBKDF2_DIGESTS:
        return _hash_pbkdf2(password, name, **params)  # type: ignore[arg-type]
    if name in _DIGESTS:
        return _hash_digest(password, name, **params)  # type: ignore[arg-type]
    if name == "CRYPT":
        return _hash_crypt(password, **params)  # type: ignore[arg-type]
    raise ValueError(f"unknown password scheme {scheme!r}")


def needs_rehash(stored: bytes, scheme: str = DEFAULT_SCHEME, **params: object) -> bool:
    """Whether ``stored`` should be re-hashed with ``scheme`` (after a good bind).

    True if it is in another scheme (cleartext included), is malformed, or is
    weaker than what :func:`hash_password` would now write: argon2 with another
    variant or other ``time_cost``/``memory_cost``/``parallelism``, PBKDF2 with
    fewer iterations or a shorter salt.
    """
    target = scheme.strip("{}").upper()
    current = scheme_of(stored)
    if current == "PBKDF2":
        current = "PBKDF2-SHA1"
    if target == "PBKDF2":
        target = "PBKDF2-SHA1"
    if current != target:
        return True
    rest = stored[stored.index(b"}") + 1:]
    if target == "ARGON2":
        m = _ARGON2_RE.fullmatch(rest)
        if m is None or m.group(1) != b"id":
            return True
        want = (
            params.get("memory_cost", ARGON2_MEMORY_COST),
            params.get("time_cost", ARGON2_TIME_COST),
            params.get("parallelism", ARGON2_PARALLELISM),
        )
        return tuple(int(x) for x in m.group(3, 4, 5)) != want
    if target in _PBKDF2_DIGESTS:
        m = _PBKDF2_RE.fullmatch(rest)
        if m is None:
            return True
        want_iter = params.get("iterations", PBKDF2_ITERATIONS[target])
        assert isinstance(want_iter, int)
        try:
            salt = _ab64_decode(m.group(2))
        except binascii.Error:
            return True
        return int(m.group(1)) < want_iter or len(salt) < PBKDF2_SALT_LEN
    return False


# ---------------------------------------------------------------- generating

# No 0/O/o, 1/l/I, 5/S, 2/Z, 8/B; symbols that need no quoting in a shell or URL.
_LOWER = "abcdefghijkmnpqrstuvwxyz"
_UPPER = "ACDEFGHJKLMNPQRTUVWXY"
_DIGITS = "345679"
_SYMBOLS = "-_.@%+="
_ALPHABET = _LOWER + _UPPER + _DIGITS + _SYMBOLS


def generate_password(length: int = 20) -> str:
    """A random password of ``length`` characters from a readable alphabet.

    It always holds at least one lower-case letter, upper-case letter, digit and
    symbol (so it passes the usual complexity policies). ``length`` must be at
    least 8; raises ``ValueError`` otherwise. Randomness from :mod:`secrets`.
    """
    if length < 8:
        raise ValueError("generated passwords are at least 8 characters")
    while True:
        pw = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if (
            any(c in _LOWER for c in pw)
            and any(c in _UPPER for c in pw)
            and any(c in _DIGITS for c in pw)
            and any(c in _SYMBOLS for c in pw)
        ):
            return pw

