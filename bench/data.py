"""Deterministic benchmark data set, written as LDIF.

The same file is loaded into OpenLDAP slapd (``slapadd``) and into Lightwave
(``lightwave ldif import``), so it only uses the standard schemas both servers
ship: core, cosine, inetOrgPerson and RFC 2307 (nis).

Layout (``SUFFIX`` = ``dc=lightwave,dc=local``)::

    dc=lightwave,dc=local                      domain           (optional, see include_base)
      ou=people,dc=lightwave,dc=local          organizationalUnit
        uid=user000000,ou=people,...           inetOrgPerson + posixAccount
        ...
      ou=groups,dc=lightwave,dc=local          organizationalUnit
        cn=group00000,ou=groups,...            groupOfNames (GROUP_SIZE members)

Every person's ``userPassword`` is an ``{SSHA}`` hash of ``PASSWORD``; the salts are
derived deterministically and only ``SALTS`` distinct hashes are computed, so
writing a million entries stays fast. Entries are streamed to the file, never
held in memory.

Run as a script to write a file::

    python -m bench.data --entries 100000 /tmp/people.ldif
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import random
import sys
import time
from dataclasses import dataclass

SUFFIX = "dc=lightwave,dc=local"
DOMAIN = "lightwave.local"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
ADMIN_DN = f"cn=Administrator,cn=Users,{SUFFIX}"
ADMIN_PASSWORD = "Bench-Admin-Passw0rd!"
PASSWORD = b"Bench-User-Passw0rd!"  # every generated person's password
SALTS = 256  # distinct {SSHA} salts (hashes) across the data set
GROUP_EVERY = 500  # one group per this many people
GROUP_SIZE = 25  # members per group
UID_NUMBER_BASE = 100000
SEED = 20240601

_GIVEN = (
    "Ada Alan Alice Amir Ana Anders Anya Ari Arjun Aya Bea Ben Bianca Boris Carla Carlos Chen "
    "Chloe Dana Daniel Dara Diego Dmitri Elena Eli Emil Emma Erik Eva Farah Felix Fatima Finn "
    "Gita Grace Hana Hugo Ian Ines Ivan Jade Jan Jia Joao Jonas Julia Kai Karim Kate Kenji Lara "
    "Leo Lena Li Lin Luca Lucia Mai Malik Marek Maria Mateo Maya Mei Mia Milan Mira Nadia Nia "
    "Nico Nina Noah Nora Olga Omar Oscar Paula Pedro Priya Quinn Rafael Rana Rosa Ruth Sam Sara "
    "Sofia Sven Tara Theo Tomas Uma Vera Victor Wei Xin Yara Yusuf Zara Zoe"
).split()
_SYLLABLES = (
    "an ber ca da el fer gar hol in jo ka lan mor nel os pa quin ros sa tor ul var wen xi yor zu"
).split()


def uid_width(n: int) -> int:
    """Digits in ``userNNNNNN``: 6 up to a million people, more beyond."""
    return max(6, len(str(max(n - 1, 0))))


def uid_of(i: int, width: int) -> str:
    return f"user{i:0{width}d}"


def person_dn(i: int, width: int) -> str:
    return f"uid={uid_of(i, width)},{PEOPLE}"


def ssha(password: bytes, salt: bytes) -> str:
    digest = hashlib.sha1(password + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode("ascii")


def _surnames(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        parts = [rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))]
        out.append("".join(parts).capitalize())
    return out


@dataclass(frozen=True)
class DataSet:
    path: str
    people: int
    groups: int
    entries: int  # total LDIF records written
    width: int  # uid digits
    include_base: bool
    seconds: float


def group_count(n: int) -> int:
    return max(1, n // GROUP_EVERY) if n else 0


def write_ldif(path: str, n: int = 100_000, *, include_base: bool = True,
               seed: int = SEED) -> DataSet:
    """Write ``n`` people (plus containers and groups) to ``path``; return a summary.

    ``include_base`` controls whether the suffix entry ``dc=lightwave,dc=local`` is
    written (slapd needs it; a server that creates its own domain at first start may
    not want it).
    """
    t0 = time.perf_counter()
    rng = random.Random(seed)
    width = uid_width(n)
    surnames = _surnames(rng, 400)
    hashes = [ssha(PASSWORD, hashlib.sha256(b"bench-salt-%d" % k).digest()[:8]) for k in range(SALTS)]
    records = 0
    with open(path, "w", encoding="ascii", buffering=1 << 20) as f:
        w = f.write
        if include_base:
            w(f"dn: {SUFFIX}\nobjectClass: top\nobjectClass: domain\ndc: lightwave\n\n")
            records += 1
        w(f"dn: {PEOPLE}\nobjectClass: top\nobjectClass: organizationalUnit\nou: people\n\n")
        w(f"dn: {GROUPS}\nobjectClass: top\nobjectClass: organizationalUnit\nou: groups\n\n")
        records += 2
        ngroups = group_count(n)
        given_n, sur_n = len(_GIVEN), len(surnames)
        for i in range(n):
            uid = uid_of(i, width)
            given = _GIVEN[rng.randrange(given_n)]
            sn = surnames[rng.randrange(sur_n)]
            w(
                f"dn: uid={uid},{PEOPLE}\n"
                "objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\n"
                "objectClass: inetOrgPerson\nobjectClass: posixAccount\n"
                f"uid: {uid}\ncn: {given} {sn}\nsn: {sn}\ngivenName: {given}\n"
                f"displayName: {given} {sn} ({uid})\n"
                f"mail: {uid}@{DOMAIN}\n"
                f"uidNumber: {UID_NUMBER_BASE + i}\ngidNumber: {UID_NUMBER_BASE + (i % max(ngroups, 1))}\n"
                f"homeDirectory: /home/{uid}\nloginShell: /bin/bash\n"
                f"employeeNumber: {i}\ntelephoneNumber: +1 555 {i % 10000:04d}\n"
                f"description: Benchmark person {i}\n"
                f"userPassword: {hashes[i % SALTS]}\n\n"
            )
        records += n
        for g in range(ngroups):
            members = "".join(
                f"member: uid={uid_of(m, width)},{PEOPLE}\n"
                for m in rng.sample(range(n), min(GROUP_SIZE, n))
            )
            w(
                f"dn: cn=group{g:05d},{GROUPS}\n"
                "objectClass: top\nobjectClass: groupOfNames\n"
                f"cn: group{g:05d}\ndescription: Benchmark group {g}\n{members}\n"
            )
        records += ngroups
    return DataSet(path, n, ngroups, records, width, include_base, time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("path")
    p.add_argument("--entries", type=int, default=100_000, help="number of people")
    p.add_argument("--no-base", action="store_true", help="omit the suffix entry")
    a = p.parse_args(argv)
    ds = write_ldif(a.path, a.entries, include_base=not a.no_base)
    print(f"wrote {ds.entries} records ({ds.people} people, {ds.groups} groups) to {ds.path} "
          f"in {ds.seconds:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
