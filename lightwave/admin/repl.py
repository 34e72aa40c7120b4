"""`lightwave repl {status,wait,conflicts,agreement}` and `lightwave node {list,remove}`:
replication state and topology of a running forest, over LDAP.

Each node answers the replication status extended operation (replication._wire) with its
invocation id, highest USN, up-to-dateness vector and, per partner, the last outcome of
pulling from it. ``wait`` asks every node registered in ``cn=Nodes,cn=System`` until each
node's vector covers every other node's highest USN: then every node has every change.
Topology changes (agreements, node removal) are ordinary writes to ``cn=Nodes,cn=System``
through ``--server``: they replicate, and each node's agent follows them within a second.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
import uuid
from typing import Any

from lightwave.admin._client import Client, emit_json, epilog, first, print_table, report, values
from lightwave.cli import CLIError
from replication import STATUS_OID
from replication.topology import NODES_DN, agreement_dn, agreement_request, node_dn

LOST_AND_FOUND = "cn=LostAndFound,cn=System"


def node_status(args: argparse.Namespace, url: str | None = None) -> dict[str, Any]:
    """The status document of the node at ``url`` (default ``--server``). Raises CLIError."""
    a = copy.copy(args)
    if url is not None:
        a.server = url
    with Client.open(a) as c:
        return _status(c, a.server)


def _status(c: Client, server: str) -> dict[str, Any]:
    """The status document of the node ``c`` is connected to (at ``server``)."""
    if not c.extended(STATUS_OID, None):
        c.fail(f"cannot read the replication status of {server}")
    doc: dict[str, Any] = json.loads(c.result.get("responseValue") or b"{}")
    doc["url"] = server
    return doc


def node_urls(args: argparse.Namespace) -> dict[str, str]:
    """Node name -> URL, from the topology of the node at ``--server``."""
    with Client.open(args) as c:
        return {n: x["url"] for n, x in nodes(c).items() if x["url"]}


def behind(docs: list[dict[str, Any]]) -> list[str]:
    """What keeps the forest from having converged: '<node> lacks <n> changes of <other>'."""
    out = []
    for x in docs:
        for y in docs:
            if x is y:
                continue
            have = y["utdv"].get(x["invocation"], 0)
            if have < x["highest_usn"]:
                out.append(f"{y['node']} lacks changes of {x['node']} (has up to USN {have} of {x['highest_usn']})")
    return out


def cmd_status(args: argparse.Namespace) -> int:
    with Client.open(args) as c:  # one connection for the status and the node entries
        doc = _status(c, args.server)
        known = {x["invocation"]: n for n, x in nodes(c).items() if x["invocation"]}
    # whose changes each vector entry counts (a node restored from a backup, or removed,
    # leaves entries for invocations no node has any more)
    doc["utdv_nodes"] = {inv: known.get(inv) for inv in doc["utdv"]}
    if args.json:
        emit_json(doc)
        return 0
    print(f"node {doc['node']} (server id {doc['server_id']}, invocation {doc['invocation']}), "
          f"highest USN {doc['highest_usn']}")
    if doc.get("writes_paused"):
        print(f"TAKES NO WRITES: {doc['writes_paused']}")
    rows = []
    for name, p in sorted(doc["partners"].items()):
        rows.append([name, p.get("url", ""), p.get("last_success") or "never",
                     str(p.get("changes_behind", "")), str(p.get("seconds_behind", "")),
                     (p.get("last_error") or "") if (p.get("last_error_time") or "") >= (p.get("last_success") or "")
                     else ""])
    print_table(["PARTNER", "URL", "LAST SUCCESS", "CHANGES BEHIND", "SECONDS BEHIND", "LAST ERROR"], rows,
                "no replication partners")
    print("up-to-dateness vector (changes of each originating invocation this node has):")
    print_table(["INVOCATION", "UP TO USN", "NODE"],
                [[inv, str(usn), doc["utdv_nodes"][inv] or "(a former invocation: restored or removed node)"]
                 for inv, usn in sorted(doc["utdv"].items())], "empty")
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    last: list[str] = []
    while True:
        try:
            urls = node_urls(args)
            docs = [node_status(args, u) for u in urls.values()]
            last = behind(docs)
        except CLIError as exc:
            last = [str(exc)]
        if not last:
            if args.json:
                emit_json({"converged": True, "nodes": sorted(urls)})
            else:
                print(f"converged: {len(urls)} nodes have every change")
            return 0
        if time.monotonic() >= deadline:
            raise CLIError(f"not converged after {args.timeout:g}s: " + "; ".join(last))
        time.sleep(0.2)


# ---------------------------------------------------------------------- topology

def nodes(c: Client) -> dict[str, dict[str, str]]:
    """Node name -> {"url", "server_id", "invocation" (32 hex digits, or "")}, from ``cn=Nodes,cn=System``."""
    found = c.search(NODES_DN, "(objectClass=lightwaveNode)",
                     ["cn", "labeledURI", "lightwaveServerId", "lightwaveInvocationId"], action="cannot list the nodes")
    return {first(a, "cn"): {"url": first(a, "labeledURI").split(" ", 1)[0], "server_id": first(a, "lightwaveServerId"),
                             "invocation": _hex(first(a, "lightwaveInvocationId"))}
            for _, a in found}


def _hex(invocation: str) -> str:
    """A node entry's invocation id (a UUID) as the status document gives it; "" if unreadable."""
    try:
        return uuid.UUID(invocation).hex
    except ValueError:
        return ""


def resolve(known: dict[str, dict[str, str]], text: str) -> str:
    """The node ``text`` names: its name, its URL, its server id, or the start of one name."""
    if text in known:
        return text
    low = text.lower().rstrip("/")
    hits = [n for n, x in known.items() if x["url"].lower().rstrip("/") == low or x["server_id"] == text]
    if not hits:
        hits = [n for n in known if n.lower().startswith(low)]
    if len(hits) == 1:
        return hits[0]
    listing = ", ".join(f"{n} ({x['url']}, server id {x['server_id']})" for n, x in sorted(known.items()))
    raise CLIError(f"{'no' if not hits else 'more than one'} node matches {text!r}; the nodes are: {listing}")


def agreements(c: Client) -> list[tuple[str, str, str]]:
    """(supplier, consumer, supplier URL) of every agreement: the consumer pulls from the supplier."""
    found = c.search(NODES_DN, "(objectClass=lightwaveReplicationAgreement)", ["cn", "labeledURI"],
                     scope="SUBTREE", action="cannot list the agreements")
    from ldap3.utils.dn import parse_dn

    out = []
    for dn, a in found:
        consumer = parse_dn(dn)[1][1]
        out.append((first(a, "cn"), consumer, first(a, "labeledURI").split(" ", 1)[0]))
    return sorted(out)


def cmd_agreement_add(args: argparse.Namespace) -> int:
    with Client.open(args) as c:
        known = nodes(c)
        src, dst = resolve(known, args.source), resolve(known, args.to)
        if src == dst:
            raise CLIError("a node does not replicate from itself: --from and --to name the same node")
        req = agreement_request(src, known[src]["url"], dst)
        if not c.try_add(req.dn, {k: list(v) for k, v in req.attributes}):
            if c.result.get("result") == 68:
                raise CLIError(f"{dst} already pulls changes from {src}")
            c.fail(f"add the agreement {src} -> {dst}")
    return report(args, {"from": src, "to": dst, "dn": req.dn},
                  f"{dst} now pulls changes from {src} ({known[src]['url']})")


def cmd_agreement_remove(args: argparse.Namespace) -> int:
    with Client.open(args) as c:
        known = nodes(c)
        src, dst = resolve(known, args.source), resolve(known, args.to)
        if not c.try_delete(agreement_dn(src, dst)):
            if c.result.get("result") == 32:
                raise CLIError(f"{dst} does not pull changes from {src}")
            c.fail(f"remove the agreement {src} -> {dst}")
    return report(args, {"from": src, "to": dst}, f"{dst} no longer pulls changes from {src}")


def cmd_agreement_list(args: argparse.Namespace) -> int:
    with Client.open(args) as c:
        rows = agreements(c)
    if args.json:
        emit_json([{"from": s, "to": t, "url": u} for s, t, u in rows])
        return 0
    print_table(["FROM", "TO", "FROM URL"], [list(r) for r in rows], "no agreements")
    return 0


def cmd_node_list(args: argparse.Namespace) -> int:
    with Client.open(args) as c:
        known = nodes(c)
    if args.json:
        emit_json(known)
        return 0
    print_table(["NODE", "SERVER ID", "URL"], [[n, x["server_id"], x["url"]] for n, x in sorted(known.items())],
                "no nodes")
    return 0


def _answers(url: str) -> bool:
    """Whether something accepts connections at ``url`` (an ldap:// or ldaps:// URL)."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(url)
    try:
        with socket.create_connection((u.hostname or "localhost", u.port or (636 if u.scheme == "ldaps" else 389)),
                                      timeout=2):
            return True
    except OSError:
        return False


def cmd_node_remove(args: argparse.Namespace) -> int:
    with Client.open(args) as c:
        known = nodes(c)
        name = resolve(known, args.node)
        url = known[name]["url"]
        if len(known) == 1:
            raise CLIError(f"{name} is the forest's only node; there is nothing to remove it from")
        if not args.force and _answers(url):
            raise CLIError(f"{name} still answers at {url}: stop it first (or pass --force); a removed node "
                           "that keeps running no longer replicates, and its changes since are lost")
        gone = [(s, t) for s, t, _ in agreements(c) if name in (s, t)]
        for s, t in gone:  # both directions; those under its own entry first, then the entry
            if not c.try_delete(agreement_dn(s, t)) and c.result.get("result") != 32:
                c.fail(f"remove the agreement {s} -> {t}")
        if not c.try_delete(node_dn(name)):
            c.fail(f"remove the node entry of {name}")
    return report(args, {"removed": name, "agreements": [{"from": s, "to": t} for s, t in gone]},
                  f"removed node {name} and {len(gone)} agreement(s); the other nodes stop pulling from it "
                  "within a second")


def cmd_conflicts(args: argparse.Namespace) -> int:
    """Entries replication set aside: naming conflicts and entries in lost and found."""
    rows: list[dict[str, str]] = []
    with Client.open(args) as c:
        root = c.read("", ["namingContexts"], action="read the root DSE")
        for base in values(root, "namingContexts") + ["cn=System"]:
            for dn, a in c.search(base, "(lightwaveConflict=*)", ["lightwaveConflict", "entryUUID"],
                                  scope="SUBTREE", action="search for conflict entries"):
                rows.append({"dn": dn, "kind": "naming conflict", "name": first(a, "lightwaveConflict"),
                             "uuid": first(a, "entryUUID")})
        for dn, a in c.search(LOST_AND_FOUND, "(objectClass=*)", ["entryUUID"], action="list lost and found"):
            rows.append({"dn": dn, "kind": "lost and found", "name": "", "uuid": first(a, "entryUUID")})
    if args.json:
        emit_json(rows)
        return 0
    print_table(["DN", "KIND", "NAME BOTH HAD"], [[r["dn"], r["kind"], r["name"]] for r in rows],
                "no conflict entries")
    if rows:
        print("resolve each by deleting it, or by renaming it (ldapmodrdn) and removing its lightwaveConflict "
              "attribute; move lost-and-found entries where they belong (ldapmodrdn -s)")
    return 0


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    repl = subparsers.add_parser("repl", help="replication status of the forest",
                                 description="Replication between the forest's nodes.")
    sub = repl.add_subparsers(dest="repl_cmd", metavar="ACTION")
    st = sub.add_parser("status", parents=[common], help="partners, lag and vector of one node",
                        description="Show the node's partners (last success, last error, changes and seconds "
                                    "behind) and its up-to-dateness vector.")
    st.set_defaults(func=cmd_status)
    wt = sub.add_parser("wait", parents=[common], help="wait until every node has every change",
                        description="Ask every node of the forest (the topology of --server) until each has "
                                    "applied every other node's changes. Exit 0 then, 1 at the timeout.")
    wt.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="give up after (default 30)")
    wt.set_defaults(func=cmd_wait)
    cf = sub.add_parser("conflicts", parents=[common], help="entries replication set aside",
                        description="List naming-conflict entries (the same DN added on two nodes at once: the "
                                    "loser is renamed '<rdn> CNF:<entryUUID>' and carries lightwaveConflict) and "
                                    "entries moved to cn=LostAndFound,cn=System (added under a parent deleted "
                                    "meanwhile).")
    cf.set_defaults(func=cmd_conflicts)
    ag = sub.add_parser("agreement", help="replication agreements (who pulls from whom)",
                        description="An agreement makes one node pull the changes of another. Join adds one each "
                                    "way between the new node and its partner; add more for a ring or a mesh.")
    agsub = ag.add_subparsers(dest="agreement_cmd", metavar="ACTION")
    for verb, fn, text in (("add", cmd_agreement_add, "make --to pull changes from --from"),
                           ("remove", cmd_agreement_remove, "stop --to pulling changes from --from")):
        p = agsub.add_parser(verb, parents=[common], help=text, description=text.capitalize() + ". Nodes are "
                             "named by name, URL, server id, or the start of a name.",
                             epilog=epilog(f"lightwave repl agreement {verb} --from c --to a"),
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--from", dest="source", required=True, metavar="NODE", help="the node changes come from")
        p.add_argument("--to", required=True, metavar="NODE", help="the node that pulls them")
        p.set_defaults(func=fn)
    al = agsub.add_parser("list", parents=[common], help="every agreement of the forest")
    al.set_defaults(func=cmd_agreement_list)
    ag.set_defaults(func=lambda a: (ag.print_help(), 2)[1])
    repl.set_defaults(func=lambda a: (repl.print_help(), 2)[1])

    node = subparsers.add_parser("node", help="the forest's nodes", description="The forest's nodes.")
    nsub = node.add_subparsers(dest="node_cmd", metavar="ACTION")
    nl = nsub.add_parser("list", parents=[common], help="nodes with their server ids and URLs")
    nl.set_defaults(func=cmd_node_list)
    nr = nsub.add_parser("remove", parents=[common], help="remove a node from the forest",
                         description="Remove a stopped node: its entry and every agreement from or to it, on "
                                     "every node (the removal replicates). To bring it back, start it with an "
                                     "empty data directory and --join.",
                         epilog=epilog("lightwave node remove c --server ldap://127.0.0.1:10389"),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    nr.add_argument("node", metavar="NODE", help="name, URL, server id, or the start of a name")
    nr.add_argument("--force", action="store_true", help="remove it even though it still answers")
    nr.set_defaults(func=cmd_node_remove)
    node.set_defaults(func=lambda a: (node.print_help(), 2)[1])
