"""`lightwave repl {status,wait}`: replication state of a running forest, over LDAP.

Each node answers the replication status extended operation (replication._wire) with its
invocation id, highest USN, up-to-dateness vector and, per partner, the last outcome of
pulling from it. ``wait`` asks every node registered in ``cn=Nodes,cn=System`` until each
node's vector covers every other node's highest USN: then every node has every change.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from typing import Any

from lightwave.admin._client import Client, emit_json, first, print_table
from lightwave.cli import CLIError
from replication import STATUS_OID
from replication.topology import NODES_DN


def node_status(args: argparse.Namespace, url: str | None = None) -> dict[str, Any]:
    """The status document of the node at ``url`` (default ``--server``). Raises CLIError."""
    a = copy.copy(args)
    if url is not None:
        a.server = url
    with Client.open(a) as c:
        if not c.extended(STATUS_OID, None):
            c.fail(f"cannot read the replication status of {a.server}")
        value = c.result.get("responseValue") or b"{}"
    doc: dict[str, Any] = json.loads(value)
    doc["url"] = a.server
    return doc


def node_urls(args: argparse.Namespace) -> dict[str, str]:
    """Node name -> URL, from the topology of the node at ``--server``."""
    with Client.open(args) as c:
        found = c.search(NODES_DN, "(objectClass=lightwaveNode)", ["cn", "labeledURI"],
                         action="cannot list the nodes")
    out = {}
    for _, attrs in found:
        url = (first(attrs, "labeledURI") or "").split(" ", 1)[0]
        if url:
            out[first(attrs, "cn") or url] = url
    return out


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
    doc = node_status(args)
    if args.json:
        emit_json(doc)
        return 0
    print(f"node {doc['node']} (server id {doc['server_id']}, invocation {doc['invocation']}), "
          f"highest USN {doc['highest_usn']}")
    rows = []
    for name, p in sorted(doc["partners"].items()):
        rows.append([name, p.get("url", ""), p.get("last_success") or "never",
                     str(p.get("changes_behind", "")), str(p.get("seconds_behind", "")),
                     (p.get("last_error") or "") if (p.get("last_error_time") or "") >= (p.get("last_success") or "")
                     else ""])
    print_table(["PARTNER", "URL", "LAST SUCCESS", "CHANGES BEHIND", "SECONDS BEHIND", "LAST ERROR"], rows,
                "no replication partners")
    print("up-to-dateness vector:")
    for inv, usn in sorted(doc["utdv"].items()):
        print(f"  {inv}  {usn}")
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
    repl.set_defaults(func=lambda a: (repl.print_help(), 2)[1])
