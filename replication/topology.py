"""Nodes and replication agreements, as entries of the system context (they replicate).

- A node is ``cn=<name>,cn=Nodes,cn=System`` (objectClass lightwaveNode): its server id,
  invocation id, the URL partners reach it at (labeledURI), its TLS certificate
  (userCertificate: partners accept the key in it, ``replication._partner.Trust``), and a
  password: the node's own account, a member of the ReplicationAgents group, which other
  nodes' suppliers accept.
- An agreement ``cn=<supplier>,cn=<consumer>,cn=Nodes,cn=System`` (objectClass
  lightwaveReplicationAgreement, labeledURI = the supplier's URL) says that the consumer
  pulls from the supplier. Each node's agent follows the agreements under its own entry.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from vmdir.directory import Directory, Outcome, SYSTEM_DN, domain_dn
from vmdir.model import dn as dnmod
from vmdir.proto import messages as m
from vmdir.store import ReadTxn, StoredEntry, WriteTxn

from replication._partner import Trust, Witness

NODES_DN = f"cn=Nodes,{SYSTEM_DN}"
AGENTS_GROUP = "ReplicationAgents"


def node_dn(name: str) -> str:
    return f"cn={dnmod.escape_value(name)},{NODES_DN}"


def agreement_dn(supplier: str, consumer: str) -> str:
    return f"cn={dnmod.escape_value(supplier)},{node_dn(consumer)}"


def agents_group_dn(domain: str) -> str:
    return f"cn={AGENTS_GROUP},cn=Groups,{domain_dn(domain)}"


def node_request(name: str, server_id: int, invocation: bytes, url: str, password: str,
                 certificate: bytes | None = None) -> m.AddRequest:
    return m.AddRequest(node_dn(name), (
        ("objectClass", (b"top", b"lightwaveNode")),
        ("cn", (name.encode(),)),
        ("lightwaveServerId", (str(server_id).encode(),)),
        ("lightwaveInvocationId", (str(uuid.UUID(bytes=invocation)).encode(),)),
        ("labeledURI", (url.encode(),)),
        ("userPassword", (password.encode(),)),
    ) + ((("userCertificate", (certificate,)),) if certificate else ()))


def agreement_request(supplier: str, supplier_url: str, consumer: str) -> m.AddRequest:
    return m.AddRequest(agreement_dn(supplier, consumer), (
        ("objectClass", (b"top", b"lightwaveReplicationAgreement")),
        ("cn", (supplier.encode(),)),
        ("labeledURI", (supplier_url.encode(),)),
        ("description", (f"{consumer} pulls changes from {supplier}".encode(),)),
    ))


def add_member(group: str, dn: str) -> m.ModifyRequest:
    return m.ModifyRequest(group, (m.Change(m.MOD_ADD, "member", (dn.encode(),)),))


@dataclass(frozen=True, slots=True)
class Agreement:
    supplier: str  # the supplier node's name
    url: str  # where to reach it


def text(e: StoredEntry, attr: str) -> str:
    """The first value of ``attr`` as text ("" when it has none)."""
    return (e.attrs.get(attr) or [b""])[0].decode("utf-8", "replace")


def url_of(e: StoredEntry) -> str:
    """The URL of ``e``'s labeledURI (RFC 2079: the URL, then an optional label)."""
    return text(e, "labeleduri").split(" ", 1)[0]


def is_a(e: StoredEntry, object_class: bytes) -> bool:
    """Whether ``e`` has ``object_class`` (lower case)."""
    return object_class in {v.lower() for v in e.attrs.get("objectclass", [])}


def live_children(r: ReadTxn, parent_id: int | None) -> Iterator[StoredEntry]:
    """The children of ``parent_id`` that are not deleted (none when it is None)."""
    for cid in r.children(parent_id) if parent_id is not None else ():
        e = r.get(cid)
        if e is not None and not e.deleted:
            yield e


def agreements(d: Directory, consumer: str) -> list[Agreement]:
    """The agreements under node ``consumer``'s entry in the local store."""
    out = []
    with d.store.read() as r:
        d.dit.begin(r)
        for e in live_children(r, d.dit.id_of(r, node_dn(consumer))):
            if is_a(e, b"lightwavereplicationagreement") and url_of(e) and text(e, "cn"):
                out.append(Agreement(text(e, "cn"), url_of(e)))
    return sorted(out, key=lambda a: a.supplier)


def url_changes(r: ReadTxn, d: Directory, e: StoredEntry, name: str, url: str) -> list[Setting]:
    """(dn, attribute, value) to set so that node ``name``'s entry ``e`` and every agreement
    pulling from it (under the other nodes' entries) give ``url``."""
    if (e.attrs.get("labeleduri") or [b""])[0] == url.encode():
        return []
    want = [(node_dn(name), "labeledURI", url.encode())]
    for consumer in live_children(r, e.parent_id):
        if consumer.id == e.id:
            continue
        cname = text(consumer, "cn")
        aid = d.dit.id_of(r, agreement_dn(name, cname))
        agreement = r.get(aid) if aid is not None else None
        if agreement is not None and not agreement.deleted and (agreement.attrs.get("labeleduri") or [b""])[0] != url.encode():
            want.append((agreement_dn(name, cname), "labeledURI", url.encode()))
    return want


Setting = tuple[str, str, bytes]  # (dn, attribute, its one value)


def published_changes(r: ReadTxn, d: Directory, e: StoredEntry, url: str | None,
                      certificate: bytes | None) -> list[Setting]:
    """What to set so that node entry ``e`` publishes ``certificate`` (as its one value) and
    it and the agreements pulling from it give ``url`` (None: leave it as it is)."""
    want: list[Setting] = []
    name = text(e, "cn")
    if certificate is not None and (e.attrs.get("usercertificate") or []) != [certificate]:
        want.append((node_dn(name), "userCertificate", certificate))
    return want + (url_changes(r, d, e, name, url) if url is not None else [])


def set_values(d: Directory, node: str, settings: list[Setting]) -> Callable[[WriteTxn], Outcome]:
    """One write op giving each (dn, attribute) its value, as node ``node``'s own work (its
    entry, its agreements, what it announced): the modifies in one transaction."""
    s = d.internal_session(node_dn(node))
    ops = [d.modify(s, m.ModifyRequest(dn, (m.Change(m.MOD_REPLACE, attr, (value,)),))) for dn, attr, value in settings]

    def op(w: WriteTxn) -> Outcome:
        out = Outcome()
        for one in ops:
            out = one(w)
        return out
    return op


def node_urls(d: Directory) -> dict[str, str]:
    """Every node in the local store: name -> the URL partners reach it at."""
    with d.store.read() as r:
        d.dit.begin(r)
        return {text(e, "cn"): url_of(e) for e in live_children(r, d.dit.id_of(r, NODES_DN))
                if is_a(e, b"lightwavenode") and text(e, "cn") and url_of(e)}


def witnesses(d: Directory, me: str, about: str) -> list[Witness]:
    """The nodes that may vouch for node ``about``'s key to node ``me``: every other node,
    with the certificates it may present."""
    return [(n, url, node_trust(d, n)) for n, url in sorted(node_urls(d).items()) if n not in (me, about)]


def node_trust(d: Directory, name: str) -> Trust:
    """The certificates node ``name`` may present: those its entry publishes."""
    with d.store.read() as r:
        d.dit.begin(r)
        nid = d.dit.id_of(r, node_dn(name))
        e = r.get(nid) if nid is not None else None
    certs = [] if e is None or e.deleted else e.attrs.get("usercertificate") or []
    return Trust.published(name, certs)


def register_local_node(d: Directory, domain: str, name: str, url: str, password: str,
                        certificate: bytes | None = None) -> None:
    """Give a forest's first node its entry and its place in ReplicationAgents (idempotent).
    Raises the LDAPError of a write that failed."""
    from vmdir.directory import admin_dn, exists

    s = d.internal_session(admin_dn(domain))
    ops = []
    if not exists(d, node_dn(name)):
        ops.append(d.add(s, node_request(name, d.server_id, d.invocation, url, password, certificate)))
        group = agents_group_dn(domain)
        ops.append(d.modify(s, add_member(group, node_dn(name))))
    for res in d.run_writes(ops):
        if isinstance(res, BaseException):
            raise res
