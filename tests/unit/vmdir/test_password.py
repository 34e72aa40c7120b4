"""Tests for vmdir.model.password ({SCHEME} userPassword values)."""
from __future__ import annotations

import base64
import hashlib
import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.procinfo import find_tool  # one lookup for the tests and the benchmarks
from vmdir.model import password as pwmod
from vmdir.model.password import (
    HASH_SCHEMES,
    MAX_PASSWORD_LENGTH,
    SCHEMES,
    generate_password,
    hash_password,
    is_hashed,
    needs_rehash,
    scheme_of,
    verify_password,
)

CHEAP_ARGON2 = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
CHEAP = {"ARGON2": CHEAP_ARGON2, **{s: {"iterations": 10} for s in
                                    ("PBKDF2", "PBKDF2-SHA1", "PBKDF2-SHA256", "PBKDF2-SHA512")}}

# Generated once with slappasswd from OpenLDAP 2.5.13 (Debian bookworm), password
# "secret": `slappasswd -h '{SSHA}' -s secret`; {SHA256}..{SSHA512} with
# `-o module-load=pw-sha2`; {ARGON2} with `-o module-load=argon2` (argon2i, the
# variant slapd 2.5 built on libargon2 writes); {CRYPT} with `-c '$6$%.16s'` etc.
SLAPPASSWD_SECRET = [
    b"{SSHA}4WAw82cabv7EzbDjYynOA8Bd1qwNWlvN",
    b"{SSHA}CP5DxEIkPBuJ3ty3sidSpHUsY/8e9pl1",
    b"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
    b"{SMD5}zt8yCNye+SH3aLxF17vEvjL9rH4=",
    b"{SMD5}M/YKhgN5j2zggJhF2wiFXNKpxi4=",
    b"{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==",
    b"{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=",
    b"{SHA384}WKd1ukESvjAFrkQHznV9iP2nHUBJe7gCbsrFTU4//HIyzo3jq1rLMK45dg/ufFPt",
    b"{SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW/isg==",
    b"{SSHA256}PtWPjjXjJK/IDWcgMG4iMOOqxPP2Ng+1HPZOVVbNK8Hf4I+riFQyrQ==",
    b"{SSHA384}ONlDTZWz7eEKBHl5mz+zBCS6SW2EvS0u6V5FfOBKPq3l8BZ9QNuqgt8zYOcVfR0HXl+PI4mtHB8=",
    b"{SSHA512}u+OKVBXdSLfC7zg9nQb+swl9vUeA5eFX1mLPqpFE+mEtIIgwL5vtBVSy0kYBkKaINl8b775JPS/xgbLKHk9g6JhQJK6wfuHL",
    b"{SSHA512}LtzrU4lXVix0pztKfrMwU1vraC3yMcpJlNvhzGwHy55si1mb4Q3bEecYPuhZzvnKBw2K7+UUJ1A23i1ARcWRY+0AfTZrTYbh",
    b"{ARGON2}$argon2i$v=19$m=4096,t=3,p=1$Zu1Zl63u9BOlvWci5fx7cQ$1jZ0QIMGKVzmmcnT60Ei2Vyhl0NQ2zDR14+P+Ds2qBg",
    b"{ARGON2}$argon2i$v=19$m=8192,t=2,p=1$nxJnHbUp+Ym8m0qbgQn2LQ$tVnKAjL88V7aiUr3WUcTnP53UUHVXSagmTBZbDXnB2o",
    b"{CRYPT}$1$XOKtvVkg$Xgoeng2.bn90kJxZf3YA3.",
    b"{CRYPT}$5$krVsExdrbmtlax39$FE3BGJ7fXFA0a2XXaLU6mferNVPAJWP/MiOFruLHOZD",
    b"{CRYPT}$6$znthcVw05OxTEXhU$nfH7fFgxFpDziMZ4mVFfd3iXlKTi9pxN6CJo0D8bzBlLcnbPhdv1Ldi5qqofb02xeAYrFvh0sAkJFUDjQA7JF1",
    b"{CRYPT}$6$diTqNFnTXvKO87Qk$HdFsS.R5HurpBOjFVDUNqqGBJE3xBRKsYGrl1Qq7cv8fbpgjD8mQGIfzgwr7Lp.PNyPFFyqqSaDFJPOcrdrpf0",
    b"{CRYPT}Du9YFiGmJyfzo",
    b"{CRYPT}$2b$05$Fslq7SjUAJzWu.7edUezPuprQ7azDVVOAdGYNaPo/KfQGctKAuaIi",
    b"{CLEARTEXT}secret",
    b"secret",
]

# From the README of OpenLDAP's contrib pw-pbkdf2 (password "secret").
PW_PBKDF2_README = b"{PBKDF2}60000$Y6ZHtTTbeUgpIbIW0QDmDA$j/aU7jFKUSbH4UobNQDm9OEIwuw"

# A legacy 389-ds {PBKDF2_SHA256} value (10000 iterations) for "Password123",
# published with thesubtlety/389-ds-password-check.
DS389_PBKDF2_SHA256 = (
    b"{PBKDF2_SHA256}AAAnEGTxXtnR/oox922/jZyjH6fmiIdW4AwIYZE2LfCVL/SUz5GbAHfjRj4NbN2u8ul0/j/dUzJ4"
    b"gQSawGALGHZV74nOAtPttoZDTsh7BeGCLD/Ps7vRugwDdz9uPARXzF3bD/8qCpumvRGb4pehzfQsk+FnGgTwi0rUeVa"
    b"N8a7Kbv8ZpRfU2sd+208F/YL42BWAh/2tv0I4vY7ZsrCZcrUJtgKWy5Nr+t78zmPkrZsX/kgfnGdXhr50kN10cmkLQ0"
    b"/cZOXo9CAkpeZyFu+wQ5vQdUaES2Vd5kBjJYPCkr4b2ocr4ETQi3IGO2GGCoCetmMIETsudRVSxUNBbva+Vgxin5Apu"
    b"4wIP/0ZyuGK6TuWLqLnNpmK3RkRx0xjqJ4nN2Ok0ul0XYBJcYIBt4UoaVM2uSa/Etw28Uy+zAsUv2AOiRo5"
)


def _ab64(data: bytes) -> bytes:
    return base64.b64encode(data).replace(b"+", b".").rstrip(b"=")


@pytest.mark.parametrize("stored", SLAPPASSWD_SECRET, ids=lambda v: v[:24].decode())
def test_slappasswd_vectors(stored: bytes) -> None:
    assert verify_password(b"secret", stored)
    assert not verify_password(b"Secret", stored)
    assert not verify_password(b"secret ", stored)
    assert not verify_password(b"secre", stored)


def test_pbkdf2_vectors() -> None:
    assert verify_password(b"secret", PW_PBKDF2_README)
    assert not verify_password(b"secreT", PW_PBKDF2_README)
    # the same value re-derived by hash_password from its salt
    salt = base64.b64decode(b"Y6ZHtTTbeUgpIbIW0QDmDA==")
    assert hash_password(b"secret", "PBKDF2", iterations=60000, salt=salt) == PW_PBKDF2_README
    # RFC 6070 PBKDF2-HMAC-SHA1 vectors, in the pw-pbkdf2 format
    for iterations, dk_hex in [(1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"),
                               (4096, "4b007901b765489abead49d926f721d065a429c1")]:
        stored = b"{PBKDF2-SHA1}%d$%s$%s" % (iterations, _ab64(b"salt"), _ab64(bytes.fromhex(dk_hex)))
        assert verify_password(b"password", stored)
        assert not verify_password(b"Password", stored)
    # 389-ds legacy binary format
    assert verify_password(b"Password123", DS389_PBKDF2_SHA256)
    assert not verify_password(b"password123", DS389_PBKDF2_SHA256)


def test_salted_digest_known_answer() -> None:
    # re-derive slappasswd's {SSHA} value from its own salt
    stored = b"{SSHA}4WAw82cabv7EzbDjYynOA8Bd1qwNWlvN"
    salt = base64.b64decode(stored[6:])[20:]
    assert hash_password(b"secret", "SSHA", salt=salt) == stored
    assert hash_password(b"secret", "SHA") == b"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="
    assert hash_password(b"secret", "{md5}") == b"{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ=="


# Debian's slapd package (make system-deps installs it) puts it in /usr/sbin, off a user's PATH
SLAPPASSWD = find_tool("slappasswd")


@pytest.mark.skipif(SLAPPASSWD is None, reason="slappasswd not installed (Debian package slapd)")
@pytest.mark.parametrize("args", [
    ["-h", "{SSHA}"], ["-h", "{SMD5}"], ["-h", "{CRYPT}", "-c", "$6$%.16s"],
    ["-o", "module-load=pw-sha2", "-h", "{SSHA512}"],
    ["-o", "module-load=argon2 m=64 t=1 p=1", "-h", "{ARGON2}"],
])
def test_live_slappasswd(args: list[str]) -> None:
    pw = "p\u00e4ss w\u00f6rd \u20ac"
    proc = subprocess.run([SLAPPASSWD, *args, "-s", pw], capture_output=True, timeout=30)
    if proc.returncode != 0:
        pytest.skip(f"slappasswd {args} failed: {proc.stderr!r}")
    stored = proc.stdout.strip()
    assert verify_password(pw.encode(), stored)
    assert not verify_password(b"x" + pw.encode(), stored)


@pytest.mark.parametrize("scheme", sorted(HASH_SCHEMES))
def test_hash_then_verify(scheme: str) -> None:
    params = CHEAP.get(scheme, {})
    for pw in (b"secret", "p\u00e4ss \u20ac".encode(), b"\x00\xff" if scheme != "CRYPT" else b"x"):
        stored = hash_password(pw, scheme, **params)
        assert scheme_of(stored) == scheme
        assert is_hashed(stored)
        assert verify_password(pw, stored)
        assert not verify_password(pw + b"!", stored)
    assert hash_password(b"a", scheme, **params) != hash_password(b"b", scheme, **params)


def test_argon2_format() -> None:
    stored = hash_password(b"secret", **CHEAP_ARGON2)  # type: ignore[arg-type]
    assert stored.startswith(b"{ARGON2}$argon2id$v=19$m=8,t=1,p=1$")
    default = hash_password(b"secret")
    assert default.startswith(b"{ARGON2}$argon2id$v=19$m=%d,t=%d,p=%d$" % (
        pwmod.ARGON2_MEMORY_COST, pwmod.ARGON2_TIME_COST, pwmod.ARGON2_PARALLELISM))
    assert verify_password(b"secret", default)
    assert not needs_rehash(default)
    assert needs_rehash(stored)
    assert not needs_rehash(stored, **CHEAP_ARGON2)  # type: ignore[arg-type]


def test_pbkdf2_format() -> None:
    stored = hash_password(b"secret", "pbkdf2-sha512", iterations=1000)
    head, salt, dk = stored[len(b"{PBKDF2-SHA512}"):].split(b"$")
    assert stored.startswith(b"{PBKDF2-SHA512}1000$")
    assert b"+" not in salt + dk and b"=" not in salt + dk
    assert len(pwmod._ab64_decode(salt)) == 16 and len(pwmod._ab64_decode(dk)) == 64
    assert hashlib.pbkdf2_hmac("sha512", b"secret", pwmod._ab64_decode(salt), 1000) == (
        pwmod._ab64_decode(dk))
    assert needs_rehash(stored, "PBKDF2-SHA512")
    assert not needs_rehash(stored, "PBKDF2-SHA512", iterations=1000)
    assert needs_rehash(stored, "ARGON2")


def test_scheme_names_are_case_insensitive() -> None:
    assert verify_password(b"secret", b"{ssha}4WAw82cabv7EzbDjYynOA8Bd1qwNWlvN")
    assert verify_password(b"secret", b"{cleartext}secret")
    assert scheme_of(b"{ssha}x") == "SSHA"


def test_cleartext_and_unknown() -> None:
    assert verify_password(b"{abc}def", b"{CLEARTEXT}{abc}def")
    assert not verify_password(b"{abc}def", b"{abc}def")  # unknown scheme, not cleartext
    assert not verify_password(b"secret", b"{UNKNOWN}secret")
    assert not verify_password(b"secret", b"{K5KEY}")
    assert verify_password(b"{not a scheme", b"{not a scheme")
    assert not is_hashed(b"secret")
    assert not is_hashed(b"{CLEARTEXT}secret")
    assert not is_hashed(b"{UNKNOWN}x")
    assert is_hashed(b"{SSHA}anything")
    assert scheme_of(b"secret") is None


def test_empty_and_oversized() -> None:
    assert not verify_password(b"", b"")
    assert not verify_password(b"", b"{CLEARTEXT}")
    assert not verify_password(b"x", b"")
    big = b"x" * (MAX_PASSWORD_LENGTH + 1)
    assert not verify_password(big, big)
    assert verify_password(big[:-1], big[:-1])
    assert not verify_password(b"x", b"{SSHA}" + b"A" * 5000)


@pytest.mark.parametrize("stored", [
    b"{SSHA}", b"{SSHA}!!!!", b"{SSHA}" + base64.b64encode(b"x" * 20),  # no salt
    b"{SHA}" + base64.b64encode(b"x" * 19), b"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ",
    b"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n", b"{MD5}",
    b"{ARGON2}", b"{ARGON2}$argon2id$", b"{ARGON2}$argon2x$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
    b"{ARGON2}$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$!!",
    b"{ARGON2}$argon2id$v=19$m=8,t=1,p=1$$aGFzaA", b"{ARGON2}$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
    b"{PBKDF2}", b"{PBKDF2}0$c2FsdA$" + _ab64(b"x" * 20), b"{PBKDF2}-1$c2FsdA$x",
    b"{PBKDF2}10$$" + _ab64(b"x" * 20), b"{PBKDF2}10$c2FsdA$x", b"{PBKDF2}10$c2FsdA$" + _ab64(b"x" * 8),
    b"{PBKDF2}10$c2FsdA$" + _ab64(b"x" * 20) + b"$", b"{PBKDF2}10$c$" + _ab64(b"x" * 20),
    b"{PBKDF2}99999999999$c2FsdA$" + _ab64(b"x" * 20),
    b"{PBKDF2_SHA256}", b"{PBKDF2_SHA256}" + base64.b64encode(b"\x00" * 324),
    b"{PBKDF2_SHA256}" + base64.b64encode(b"\x00" * 300),
    b"{CRYPT}", b"{CRYPT}x", b"{CRYPT}*", b"{CRYPT}!", b"{CRYPT}$6$", b"{CRYPT}$9$abc$def",
    b"{CRYPT}\xff\xfe", b"{CRYPT}$6$rounds=999999999$salt$hash",
    b"{CRYPT}$2b$31$Fslq7SjUAJzWu.7edUezPuprQ7azDVVOAdGYNaPo/KfQGctKAuaIi",
])
def test_malformed_values_do_not_verify(stored: bytes) -> None:
    assert verify_password(b"secret", stored) is False
    assert verify_password(b"x", stored) is False


def test_cost_caps() -> None:
    huge_m = b"{ARGON2}$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"
    assert not verify_password(b"secret", huge_m)  # would need 4 GiB
    huge_t = b"{ARGON2}$argon2id$v=19$m=8,t=1000,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"
    assert not verify_password(b"secret", huge_t)
    salt = b"saltsaltsaltsalt"
    dk = hashlib.pbkdf2_hmac("sha1", b"secret", salt, 1)
    assert verify_password(b"secret", b"{PBKDF2}1$%s$%s" % (_ab64(salt), _ab64(dk)))
    too_many = pwmod.PBKDF2_MAX_ITERATIONS + 1
    assert not verify_password(b"secret", b"{PBKDF2}%d$%s$%s" % (too_many, _ab64(salt), _ab64(dk)))


def test_crypt_rejects_nul_and_non_utf8_passwords() -> None:
    stored = b"{CRYPT}$1$XOKtvVkg$Xgoeng2.bn90kJxZf3YA3."
    assert not verify_password(b"secret\x00", stored)
    assert not verify_password(b"\xff", stored)


@settings(max_examples=300)
@given(
    st.sampled_from(sorted(SCHEMES) + ["", "UNKNOWN"]),
    st.binary(max_size=80) | st.text(st.sampled_from("$.=/+09aAz,mtpv:"), max_size=60).map(str.encode),
    st.binary(max_size=20),
)
def test_verify_never_raises(scheme: str, rest: bytes, password: bytes) -> None:
    stored = (b"{%s}" % scheme.encode() if scheme else b"") + rest
    assert verify_password(password, stored) in (True, False)
    assert needs_rehash(stored) in (True, False)


def test_hash_password_errors() -> None:
    with pytest.raises(ValueError):
        hash_password(b"x", "NOPE")
    with pytest.raises(ValueError):
        hash_password(b"x", "CLEARTEXT")
    with pytest.raises(ValueError):
        hash_password(b"x", "SHA", salt=b"s")
    with pytest.raises(ValueError):
        hash_password(b"x", "SSHA", salt=b"")
    with pytest.raises(ValueError):
        hash_password(b"x", "PBKDF2", iterations=0)
    with pytest.raises(ValueError):
        hash_password(b"x", "CRYPT", method="ROT13")
    with pytest.raises(TypeError):
        hash_password(b"x", "SSHA", bogus=1)


def test_crypt_methods() -> None:
    for method, prefix in [("SHA512", b"{CRYPT}$6$"), ("SHA256", b"{CRYPT}$5$"),
                           ("MD5", b"{CRYPT}$1$")]:
        stored = hash_password(b"secret", "CRYPT", method=method)
        assert stored.startswith(prefix)
        assert verify_password(b"secret", stored)
    stored = hash_password(b"secret", "CRYPT", salt="$6$rounds=1000$abcdefgh")
    assert stored.startswith(b"{CRYPT}$6$rounds=1000$abcdefgh$")
    assert verify_password(b"secret", stored)


def test_generate_password() -> None:
    seen = set()
    for _ in range(50):
        pw = generate_password()
        assert len(pw) == 20
        assert any(c.islower() for c in pw) and any(c.isupper() for c in pw)
        assert any(c.isdigit() for c in pw) and any(not c.isalnum() for c in pw)
        assert not set(pw) & set("0O1lI")
        seen.add(pw)
    assert len(seen) == 50
    assert len(generate_password(8)) == 8
    assert len(generate_password(64)) == 64
    with pytest.raises(ValueError):
        generate_password(7)


_HEAD_PIECES = st.sampled_from([b"{", b"}", b"SSHA", b"ssha", b"sha", b"PBKDF2-SHA512", b"x" * 31, b"y" * 33, b".",
                                b"_", b"-", b"!", b" ", b"\xff", b"abc", b"=="])


@settings(max_examples=500, deadline=None)
@given(st.lists(_HEAD_PIECES, max_size=8).map(b"".join))
def test_scheme_head_reads_what_the_regular_expression_reads(stored: bytes) -> None:
    """The remembered ``{SCHEME}`` heads give what matching the whole value gave."""
    m = re.match(rb"\{([A-Za-z0-9._-]{1,32})\}", stored)
    want = (m.group(1).decode("ascii").upper(), m.end()) if m else ("", 0)
    assert pwmod._scheme_head(stored) == want
    assert pwmod._scheme_head(stored) == want  # from what it remembered
    assert scheme_of(stored) == (want[0] or None)
