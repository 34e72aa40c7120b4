"""Joining a node to a forest (layer 3): register it with a running partner, then make the
full copy over the replication protocol.

1. As the forest administrator on the partner (its certificate checked against
   ``--join-fingerprint``, or trusted on first use and its fingerprint reported): pick the next free server id, add this
   node's entry (with a generated password: its own account, put in ReplicationAgents),
   and the two agreements (this node pulls from the partner and the partner from it).
2. As that node account, expecting the same certificate: pull everything from the partner into the empty local store, in
   pages, each page one transaction that also advances the watermark. An interrupted copy
   resumes from the watermark at the next start (the registration is remembered in the
   store's meta, the password in the data directory).
"""
from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from vmdir.client import ClientError, Connection, check, describe
from vmdir.directory import Directory
from vmdir.proto import messages as m

from replication._partner import Partner, PartnerError, Trust, fingerprint, parse_fingerprint
from replication._puller import Puller
from replication.topology import (
    NODES_DN, add_member, agents_group_dn, agreement_request, node_dn, node_request,
)


class JoinError(Exception):
    """The join cannot proceed; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Registration:
    partner: str  # the partner node's name
    partner_url: str
    server_id: int
    fingerprint: bytes  # SHA-256 of the certificate the partner presented (the copy expects it again)


def join_trust(url: str, fingerprint: str = "") -> Trust:
    """How the joining node checks the partner: the fingerprint the operator gave, or the
    first certificate seen. Raises JoinError if ``fingerprint`` is not one."""
    if not fingerprint:
        return Trust(url)
    try:
        return Trust(url, fingerprints=frozenset({parse_fingerprint(fingerprint)}))
    except ValueError as exc:
        raise JoinError(str(exc)) from None


def _connect(url: str, user: str, password: str, trust: Trust) -> Partner:
    """A connection to ``url`` over TLS, its certificate checked, bound as ``user``. Raises JoinError."""
    p = Partner(url, user, password, trust=lambda: trust, require_published=False)
    try:
        p.connect()
    except PartnerError as exc:
        if exc.code == 49:
            raise JoinError(f"bind to {url} as {user} failed: wrong user or password "
                            "(the forest administrator's password comes from LIGHTWAVE_ADMIN_PASSWORD)") from None
        raise JoinError(str(exc)) from None
    return p


def _nodes(conn: Connection, url: str) -> dict[str, tuple[int, list[str]]]:
    """Node name -> (server id, URLs), as the partner at ``url`` knows them. Raises JoinError."""
    try:
        entries, done, _ = conn.search(NODES_DN, m.SCOPE_ONE, m.Equality("objectClass", b"lightwaveNode"),
                                       ("cn", "lightwaveServerId", "labeledURI"))
    except ClientError as exc:
        raise JoinError(str(exc)) from None
    if done.code != 0:
        raise JoinError(f"{url} has no readable {NODES_DN} ({describe(done.code, done.message)}): "
                        "is it a Lightwave node, and is the join user a forest administrator?")
    nodes = {}
    for e in entries:
        a = {k.lower(): v for k, v in e.attributes}
        nodes[a["cn"][0].decode()] = (int((a.get("lightwaveserverid") or [b"0"])[0]),
                                      [u.decode().split(" ", 1)[0] for u in a.get("labeleduri") or []])
    return nodes


def _write(conn: Connection, req: m.AddRequest | m.DelRequest | m.ModifyRequest, what: str) -> None:
    try:
        check(what, conn.write(req))
    except ClientError as exc:
        raise JoinError(f"{exc}") from None


SERVER_ID_TRIES = 5


def register(url: str, admin: str, admin_password: str, *, name: str, my_url: str, invocation: bytes,
             node_password: str, domain: str, certificate: bytes | None = None, trust: Trust | None = None,
             log: Callable[[str], None] = lambda msg: None) -> Registration:
    """Step 1, on the partner at ``url``. Raises JoinError.

    ``trust`` checks the partner's certificate (default: the first one seen, reported
    through ``log`` with its fingerprint). ``certificate`` is this node's own, published in
    its entry. The server id is the highest known plus one. Two nodes joining through the
    same partner at once could pick the same one: after adding its entry, a node that sees
    another with its id withdraws and tries again (the one that added first sees no twin
    and keeps it)."""
    trust = trust or Trust(url)
    session = _connect(url, admin, admin_password, trust)
    seen = session.certificate_seen or b""
    if trust.first_use:
        log(f"{url} presented a certificate with SHA-256 fingerprint {fingerprint(seen)}; trusting it "
            "(pass --join-fingerprint to require a known one)")
    conn = session.conn
    assert conn is not None
    try:
        for attempt in range(SERVER_ID_TRIES):
            nodes = _nodes(conn, url)
            if name in nodes:
                raise JoinError(f"a node named {name!r} is already registered at {url}; remove it first "
                                "(lightwave node remove) or give this one another --node-name")
            partner = [n for n, (_, urls) in nodes.items() if _same_url(url, urls)]
            if len(partner) != 1:
                partner = list(nodes) if len(nodes) == 1 else []
            if not partner:
                raise JoinError(f"none of the nodes registered at {url} says it is reached at {url}; "
                                "join with the URL the partner advertises (its labeledURI)")
            pname = partner[0]
            purl = nodes[pname][1][0]
            sid = max([s for s, _ in nodes.values()] + [0]) + 1
            req = node_request(name, sid, invocation, my_url, node_password, certificate)
            _write(conn, req, f"adding {req.dn} at {url}")
            if any(s == sid for n, (s, _) in _nodes(conn, url).items() if n != name):
                # another node took this id meanwhile: withdraw, try the next
                _write(conn, m.DelRequest(req.dn), f"withdrawing {req.dn} at {url}")
                time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
                continue
            for req in (agreement_request(pname, purl, name), agreement_request(name, my_url, pname)):
                _write(conn, req, f"adding {req.dn} at {url}")
            _write(conn, add_member(agents_group_dn(domain), node_dn(name)),
                   f"adding {name} to the replication agents at {url}")
            return Registration(pname, purl, sid, hashlib.sha256(seen).digest())
        raise JoinError(f"could not get a server id no other joining node took after {SERVER_ID_TRIES} tries; "
                        "start again")
    finally:
        session.close()


def _same_url(a: str, urls: list[str]) -> bool:
    return a.rstrip("/").lower() in {u.rstrip("/").lower() for u in urls}


def full_copy(d: Directory, reg: Registration, name: str, node_password: str,
              progress: Callable[[int, int], None] | None = None) -> int:
    """Step 2: copy everything from the partner as this node's account. Returns the
    number of entries applied. Raises JoinError."""
    # the certificate the registration saw, whatever the partner's entry says (it is not here yet)
    trust = Trust(reg.partner, fingerprints=frozenset({reg.fingerprint}))
    partner = Partner(reg.partner_url, node_dn(name), node_password, trust=lambda: trust, require_published=False)
    puller = Puller(d, reg.partner, partner, progress=progress, initial=True)
    try:
        partner.connect()
        while True:
            resp = puller.sync()
            if not resp.more:
                break
    except PartnerError as exc:
        raise JoinError(f"copying from {reg.partner_url} failed: {exc} (start again to resume)") from None
    except Exception as exc:  # noqa: BLE001 - Stuck, StoreError: say it, resumable
        raise JoinError(f"copying from {reg.partner_url} stopped: {exc} (start again to resume)") from None
    finally:
        partner.close()
    return int(puller.status.get("applied") or 0)
