"""Joining a node to a forest (layer 3): register it with a running partner, then make the
full copy over the replication protocol.

1. As the forest administrator on the partner: pick the next free server id, add this
   node's entry (with a generated password: its own account, put in ReplicationAgents),
   and the two agreements (this node pulls from the partner and the partner from it).
2. As that node account: pull everything from the partner into the empty local store, in
   pages, each page one transaction that also advances the watermark. An interrupted copy
   resumes from the watermark at the next start (the registration is remembered in the
   store's meta, the password in the data directory).
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vmdir.directory import Directory

from replication._partner import Partner, PartnerError
from replication._puller import Puller
from replication.topology import (
    NODES_DN, agents_group_dn, agreement_request, node_dn, node_request,
)


class JoinError(Exception):
    """The join cannot proceed; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Registration:
    partner: str  # the partner node's name
    partner_url: str
    server_id: int


def _ldap(url: str, user: str, password: str) -> Any:
    """An ldap3 connection to ``url`` over TLS, bound as ``user``. Raises JoinError."""
    p = Partner(url, user, password)
    try:
        p.connect()
    except PartnerError as exc:
        if exc.code == 49:
            raise JoinError(f"bind to {url} as {user} failed: wrong user or password "
                            "(the forest administrator's password comes from LIGHTWAVE_ADMIN_PASSWORD)") from None
        raise JoinError(str(exc)) from None
    return p.conn


def _nodes(conn: Any, url: str) -> dict[str, tuple[int, list[str]]]:
    """Node name -> (server id, URLs), as the partner at ``url`` knows them. Raises JoinError."""
    conn.search(NODES_DN, "(objectClass=lightwaveNode)", search_scope="LEVEL",
                attributes=["cn", "lightwaveServerId", "labeledURI"])
    if conn.result.get("result") != 0:
        raise JoinError(f"{url} has no readable {NODES_DN} ({conn.result.get('description')}): "
                        "is it a Lightwave node, and is the join user a forest administrator?")
    nodes = {}
    for e in conn.response:
        if e.get("type") != "searchResEntry":
            continue
        a = e["raw_attributes"]
        nodes[a["cn"][0].decode()] = (int((a.get("lightwaveServerId") or [b"0"])[0]),
                                      [u.decode().split(" ", 1)[0] for u in a.get("labeledURI") or []])
    return nodes


def _failed(conn: Any, what: str) -> JoinError:
    return JoinError(f"{what} failed: {conn.result.get('description')} {conn.result.get('message') or ''}".strip())


SERVER_ID_TRIES = 5


def register(url: str, admin: str, admin_password: str, *, name: str, my_url: str, invocation: bytes,
             node_password: str, domain: str) -> Registration:
    """Step 1, on the partner at ``url``. Raises JoinError.

    The server id is the highest known plus one. Two nodes joining through the same partner
    at once could pick the same one: after adding its entry, a node that sees another with
    its id withdraws and tries again (the one that added first sees no twin and keeps it)."""
    conn = _ldap(url, admin, admin_password)
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
            req = node_request(name, sid, invocation, my_url, node_password)
            conn.add(req.dn, attributes={k: list(v) for k, v in req.attributes})
            if conn.result.get("result") != 0:
                raise _failed(conn, f"adding {req.dn} at {url}")
            if any(s == sid for n, (s, _) in _nodes(conn, url).items() if n != name):
                conn.delete(req.dn)  # another node took this id meanwhile: withdraw, try the next
                time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
                continue
            for req in (agreement_request(pname, purl, name), agreement_request(name, my_url, pname)):
                conn.add(req.dn, attributes={k: list(v) for k, v in req.attributes})
                if conn.result.get("result") != 0:
                    raise _failed(conn, f"adding {req.dn} at {url}")
            import ldap3
            conn.modify(agents_group_dn(domain), {"member": [(ldap3.MODIFY_ADD, [node_dn(name)])]})
            if conn.result.get("result") != 0:
                raise _failed(conn, f"adding {name} to the replication agents at {url}")
            return Registration(pname, purl, sid)
        raise JoinError(f"could not get a server id no other joining node took after {SERVER_ID_TRIES} tries; "
                        "start again")
    finally:
        conn.unbind()


def _same_url(a: str, urls: list[str]) -> bool:
    return a.rstrip("/").lower() in {u.rstrip("/").lower() for u in urls}


def full_copy(d: Directory, reg: Registration, name: str, node_password: str,
              progress: Callable[[int, int], None] | None = None) -> int:
    """Step 2: copy everything from the partner as this node's account. Returns the
    number of entries applied. Raises JoinError."""
    partner = Partner(reg.partner_url, node_dn(name), node_password)
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
