"""A node's life in a forest, with real nodes on localhost: restored from a backup (no local
writes until it has caught up, no USN reused), out of touch for longer than the tombstone
lifetime (refused both ways, deleted entries not brought back, joins again), and removed
(`lightwave node remove`), with the topology commands an operator uses.

The nodes run with a tombstone lifetime of a few seconds so that purges happen during
the test; waits are on conditions (`lightwave repl wait`, log lines, results), with deadlines.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator

import ldap3
import pytest

from tests.conftest import ADMIN, ADMIN_PW, BASE, Server, health, make_server, run_tool, scrape, wait_for
from tests.integration.test_replication import (
    USERS, cli, conn, converge, dump, node_name, read, replicators, status,
)

LIFETIME = "4"  # seconds: tombstones are purged during the test


def log_mark(s: Server) -> int:
    return os.path.getsize(s.log_path)


def logged_since(s: Server, mark: int, pattern: str) -> bool:
    """Whether the node's log has a line matching ``pattern`` after byte ``mark``."""
    with open(s.log_path, "rb") as f:
        f.seek(mark)
        return re.search(pattern, f.read().decode(errors="replace")) is not None


def add_person(s: Server, cn: str) -> int:
    c = conn(s)
    c.raise_exceptions = False
    c.add(f"cn={cn},{USERS}", ["inetOrgPerson"], {"sn": cn, "uid": cn})
    c.unbind()
    return c.result["result"]


def write_result(s: Server, cn: str) -> dict:
    c = conn(s)
    c.raise_exceptions = False
    c.add(f"cn={cn},{USERS}", ["inetOrgPerson"], {"sn": cn, "uid": cn})
    c.unbind()
    return c.result


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    a = make_server(tmp_path_factory, "life-a", extra=["--quiet-ops", "--tombstone-lifetime", LIFETIME])
    a.start()
    b = make_server(tmp_path_factory, "life-b",
                    extra=["--quiet-ops", "--tombstone-lifetime", LIFETIME, "--join", a.url])
    b.start(timeout=90)
    nodes = [a, b]
    yield nodes
    for n in nodes:
        n.stop()


def test_status_is_on_the_node_entry_and_agreements_are_managed_by_cli(pair: list[Server]) -> None:
    a, b = pair
    assert add_person(a, "st1") == 0
    converge(a)
    # the node's own entry, read over LDAP on that node, carries its replication state
    e = read(b, f"cn={node_name(b)},cn=Nodes,cn=System", "+")
    assert int(e["lightwavehighestusn"][0]) > 0
    vector = dict(v.decode().rsplit(":", 1) for v in e["lightwaveuptodatevector"])
    assert len(vector) == 2 and all(int(u) > 0 for u in vector.values())
    (st,) = [json.loads(v) for v in e["lightwavereplicationstatus"]]
    assert st["partner"] == node_name(a) and st["last_success"] and st["changes_behind"] == 0
    agreement = read(b, f"cn={node_name(a)},cn={node_name(b)},cn=Nodes,cn=System", "lightwaveLastUsnProcessed")
    assert int(agreement["lightwavelastusnprocessed"][0]) == st["watermark"]
    # not stored attributes: nobody can write them
    r = run_tool("ldapmodify", "-x", "-H", b.url, "-D", ADMIN, "-w", ADMIN_PW, input=(
        f"dn: cn={node_name(b)},cn=Nodes,cn=System\nchangetype: modify\nreplace: lightwaveHighestUsn\n"
        "lightwaveHighestUsn: 1\n"))
    assert r.returncode == 19, r.stderr  # constraintViolation: no user modification
    # agreements by the CLI: listed, duplicate refused with a sentence, removed and added back
    r = cli("repl", "agreement", "list", "--server", a.url, "--json")
    assert r.returncode == 0, r.stderr
    assert sorted((x["from"], x["to"]) for x in json.loads(r.stdout)) == sorted(
        [(node_name(a), node_name(b)), (node_name(b), node_name(a))])
    r = cli("repl", "agreement", "add", "--from", a.url, "--to", node_name(b), "--server", a.url)
    assert r.returncode == 1 and "already pulls changes" in r.stderr, r.stderr
    r = cli("repl", "agreement", "add", "--from", "nonesuch", "--to", node_name(b), "--server", a.url)
    assert r.returncode == 1 and "no node matches 'nonesuch'" in r.stderr, r.stderr
    r = cli("repl", "agreement", "remove", "--from", node_name(a), "--to", node_name(b), "--server", a.url)
    assert r.returncode == 0, r.stderr
    # B stops pulling from A (its status for A is dropped); a write on A stays on A
    wait_for("B to drop its status for A", lambda: not status(b)["partners"])
    assert add_person(a, "unseen") == 0
    time.sleep(1.5)  # a negative check: replication (well under a second here) would have brought it
    assert read(b, f"cn=unseen,{USERS}") is None
    r = cli("repl", "agreement", "add", "--from", node_name(a), "--to", node_name(b), "--server", b.url)
    assert r.returncode == 0, r.stderr
    converge(a)
    assert read(b, f"cn=unseen,{USERS}", "sn")["sn"] == [b"unseen"]


def test_restored_node_takes_no_writes_until_it_caught_up(pair: list[Server], tmp_path) -> None:
    a, b = pair
    assert add_person(b, "before-backup") == 0
    converge(b)
    bdir = tmp_path / "backup-b"
    r = cli("backup", str(bdir), "--data-dir", b.data_dir)
    assert r.returncode == 0, r.stderr
    # changes after the backup, through both nodes (B's own reach A before B is restored)
    assert add_person(b, "after-backup-on-b") == 0
    assert add_person(a, "after-backup-on-a") == 0
    converge(a)
    old_inv = read(b, f"cn={node_name(b)},cn=Nodes,cn=System", "lightwaveInvocationId")["lightwaveinvocationid"]
    b.stop()
    a.stop()  # B must not catch up before the test has seen it refuse writes
    r = cli("restore", str(bdir), "--data-dir", b.data_dir, "--force")
    assert r.returncode == 0, r.stderr
    b.start(timeout=60)
    res = write_result(b, "while-restored")
    assert res["result"] == 53 and "restored from a backup" in res["message"], res
    assert "restored from a backup" in status(b)["writes_paused"]
    r = cli("repl", "status", "--server", b.url)
    assert "TAKES NO WRITES: restored from a backup" in r.stdout, r.stdout + r.stderr
    # a load balancer sends no client to it: its data may be stale
    code, doc = health(b)
    assert code == 503 and doc["status"] == "writes paused" and "restored from a backup" in doc["writes_paused"], doc
    assert scrape(b)[("lightwave_writes_paused", ())] == 1
    assert read(b, f"cn=after-backup-on-b,{USERS}") is None  # the backup's state
    a.start(timeout=60)
    wait_for("B to take writes again", lambda: write_result(b, "after-restore")["result"] == 0)
    code, doc = health(b)
    assert code == 200 and doc["status"] == "ok" and doc["replication"][node_name(a)]["last_success"], doc
    m = scrape(b)
    partner = (("partner", node_name(a)),)
    assert m[("lightwave_writes_paused", ())] == 0 and m[("lightwave_replication_failing", partner)] == 0, m
    assert abs(m[("lightwave_replication_last_success_timestamp_seconds", partner)] - time.time()) < 120, m
    converge(a)
    for n in pair:
        for cn in ("before-backup", "after-backup-on-b", "after-backup-on-a", "after-restore"):
            assert read(n, f"cn={cn},{USERS}", "sn")["sn"] == [cn.encode()], (n.url, cn)
    # the restored database is a new invocation (its USNs start again from the backup's)
    new_inv = wait_for("B's entry to give its new invocation id", lambda: (
        read(a, f"cn={node_name(b)},cn=Nodes,cn=System", "lightwaveInvocationId")["lightwaveinvocationid"]
        != old_inv))
    assert new_inv
    converge(a)
    # A's vector counts changes of both of B's invocations: the status names whose they are
    r = cli("repl", "status", "--server", a.url)
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line.startswith("  ") or line[:1].isalnum()}
    now_inv = read(a, f"cn={node_name(b)},cn=Nodes,cn=System", "lightwaveInvocationId")["lightwaveinvocationid"]
    new_hex, old_hex = (uuid.UUID(v[0].decode()).hex for v in (now_inv, old_inv))
    assert lines[new_hex].split()[-1] == node_name(b), r.stdout
    assert "(a former invocation: restored or removed node)" in lines[old_hex], r.stdout
    doc = json.loads(cli("repl", "status", "--server", a.url, "--json").stdout)
    assert doc["utdv_nodes"][new_hex] == node_name(b) and doc["utdv_nodes"][old_hex] is None
    for n in pair:
        n.stop()
    try:
        assert dump(a) == dump(b)
    finally:
        for n in pair:
            n.start(timeout=60)
        # stopped for longer than the (short) tombstone lifetime, each takes writes again
        # once the other confirms it is not stale: the next test writes at once
        wait_for("both nodes to take writes again", lambda: all(health(n)[0] == 200 for n in pair))


def test_node_out_of_touch_past_tombstone_lifetime_is_refused_then_joins_again(
        pair: list[Server], tmp_path_factory: pytest.TempPathFactory) -> None:
    a, b = pair
    assert add_person(a, "doomed") == 0
    assert add_person(a, "keeper") == 0
    converge(a)
    b.stop()
    mark = log_mark(a)
    c = conn(a)
    c.delete(f"cn=doomed,{USERS}")
    c.unbind()
    # A forgets the delete once its tombstone is older than the lifetime
    wait_for("A to purge the tombstone", lambda: logged_since(a, mark, r"purged [1-9]\d* tombstones"), timeout=30)
    b.start(timeout=60)
    # B has not replicated for longer than the lifetime: from its first moment it takes no
    # writes (none acknowledged that the forest would refuse), until a partner confirms it ...
    res = write_result(b, "late")
    assert res["result"] == 53 and "tombstone lifetime" in res["message"], res
    # ... and A's answer shows it is out of touch: it stays so, and says why
    res = wait_for("B to say it must join again",
                   lambda: (lambda r: r if "join it again" in r["message"] else None)(write_result(b, "late")))
    assert res["result"] == 53 and "tombstone lifetime" in res["message"], res
    def last_error(s: Server, partner: Server) -> str:
        return (status(s)["partners"].get(node_name(partner)) or {}).get("last_error") or ""

    wait_for("B's status to give the reason", lambda: "tombstone lifetime" in last_error(b, a))
    assert scrape(b)[("lightwave_replication_failing", (("partner", node_name(a)),))] == 1
    code, doc = health(b)
    assert code == 503 and "tombstone lifetime" in doc["replication"][node_name(a)]["last_error"], doc
    # A refuses to pull from B, so the deleted entry B still holds does not come back
    wait_for("A to refuse B", lambda: "out of touch" in last_error(a, b))
    assert "lightwave node remove" in last_error(a, b)
    assert read(b, f"cn=doomed,{USERS}", "sn") is not None  # still on B ...
    assert read(a, f"cn=doomed,{USERS}") is None  # ... and not back on A
    # the remedy the messages give: remove it, join it again with an empty data directory
    r = cli("node", "remove", node_name(b), "--server", a.url)
    assert r.returncode == 1 and "still answers" in r.stderr, r.stderr
    b.stop()
    r = cli("node", "remove", node_name(b), "--server", a.url, "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["agreements"]) == 2
    r = cli("node", "list", "--server", a.url, "--json")
    assert list(json.loads(r.stdout)) == [node_name(a)]
    wait_for("A to drop its status for B", lambda: not status(a)["partners"])
    shutil.rmtree(b.data_dir)
    os.makedirs(b.data_dir)
    b.extra = ["--quiet-ops", "--tombstone-lifetime", LIFETIME, "--join", a.url]
    b.start(timeout=90)
    converge(a)
    assert read(b, f"cn=doomed,{USERS}") is None
    assert read(b, f"cn=keeper,{USERS}", "sn")["sn"] == [b"keeper"]
    assert add_person(b, "rejoined") == 0
    converge(b)
    assert read(a, f"cn=rejoined,{USERS}", "sn")["sn"] == [b"rejoined"]


def test_removed_value_states_are_purged_and_members_still_converge(pair: list[Server]) -> None:
    a, b = pair
    group = f"cn=purgers,cn=Groups,{BASE}"
    m1, m2 = f"cn=keeper,{USERS}", f"cn=rejoined,{USERS}"
    mark = log_mark(a)
    c = conn(a)
    c.add(group, ["groupOfNames"], {"member": [m1, m2]})
    c.modify(group, {"member": [(ldap3.MODIFY_DELETE, [m2])]})
    c.unbind()
    wait_for("A to purge the removed member's value state",
          lambda: logged_since(a, mark, r"and [1-9]\d* value tombstones"), timeout=30)
    cb = conn(b)
    cb.modify(group, {"member": [(ldap3.MODIFY_ADD, [m2])]})
    cb.unbind()
    converge(b)
    for n in pair:
        assert read(n, group, "member")["member"] == sorted([m1.encode(), m2.encode()])


def server_ids(s: Server) -> dict[str, int]:
    """Node name -> server id, as `lightwave node list` on ``s`` gives them."""
    r = cli("node", "list", "--server", s.url, "--json")
    assert r.returncode == 0, r.stderr
    return {n: int(x["server_id"]) for n, x in json.loads(r.stdout).items()}


@pytest.mark.parametrize("through", ["one partner", "two partners"])
def test_two_nodes_joining_at_once_get_distinct_server_ids(
        pair: list[Server], tmp_path_factory: pytest.TempPathFactory, through: str) -> None:
    """Through one partner, the second to add its entry sees the first's and takes the next
    id; through two, each partner may not know the other's newcomer yet, and the later claim
    of a shared id moves to a new one once both are known (replication.maintenance)."""
    import threading

    a, b = pair
    partners = [a, a] if through == "one partner" else [a, b]
    joiners = [make_server(tmp_path_factory, f"life-{x}", extra=["--quiet-ops", "--join", p.url])
               for x, p in zip("cd", partners)]
    errors: list[BaseException] = []

    def start(s: Server) -> None:
        try:
            s.start(timeout=90)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in joiners]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        converge(a)
        for s in pair:
            wait_for(f"four distinct server ids on {node_name(s)}",
                     lambda s=s: len(set(server_ids(s).values())) == 4, timeout=30, interval=0.3)
    finally:
        for s in joiners:
            if s.proc is not None:
                s.stop()
                cli("node", "remove", node_name(s), "--server", a.url)  # the others no longer wait for it
    assert sorted(json.loads(cli("node", "list", "--server", a.url, "--json").stdout)) == sorted([node_name(a), node_name(b)])


def test_a_node_whose_server_id_another_claimed_first_takes_a_new_one(pair: list[Server]) -> None:
    """Made by hand here (the race of two joins is rarely this exact): B's entry given A's
    server id, as if B had joined after A with the same one. B gives it up for a new one,
    and its POSIX numbers come from the new range."""
    a, b = pair
    ids = server_ids(a)
    mark = log_mark(b)
    c = conn(a)
    assert c.modify(f"cn={node_name(b)},cn=Nodes,cn=System",
                    {"lightwaveServerId": [(ldap3.MODIFY_REPLACE, [str(ids[node_name(a)])])]}), c.result
    new = max(v for n, v in ids.items() if n != node_name(b)) + 1  # the highest B then knows, plus one
    wait_for("B to take a new server id", lambda: logged_since(b, mark, f"this node is now server id {new}"))
    converge(b)
    for s in pair:
        want = {node_name(a): ids[node_name(a)], node_name(b): new}
        got = {n: v for n, v in server_ids(s).items() if n in want}
        assert got == want, (node_name(s), got)
    cb = conn(b)
    assert cb.add(f"uid=posix-after-renumber,{USERS}", ["inetOrgPerson", "posixAccount"],
                  {"cn": "p", "sn": "p", "uid": "posix-after-renumber", "gidNumber": "100",
                   "homeDirectory": "/home/p"}), cb.result
    number = int(read(b, f"uid=posix-after-renumber,{USERS}", "uidNumber")["uidnumber"][0])
    assert 100_000 + (new - 1) * 1_000_000 <= number < 100_000 + new * 1_000_000, number


def test_replication_process_of_a_one_worker_node_is_restarted(pair: list[Server]) -> None:
    import signal

    a, b = pair
    (old,) = replicators(b)
    os.kill(old, signal.SIGKILL)
    wait_for("a new replication process on B", lambda: [p for p in replicators_or_none(b) if p != old])
    assert add_person(a, "after-replicator-restart") == 0
    converge(a)
    assert read(b, f"cn=after-replicator-restart,{USERS}", "sn") is not None


def replicators_or_none(s: Server) -> list[int]:
    try:
        return replicators(s)
    except AssertionError:  # none at this moment (between the old one's death and the new one)
        return []


def test_a_node_restarted_on_other_ports_stays_the_same_node(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.conftest import free_port

    s = make_server(tmp_path_factory, "life-ports")
    s.start()
    name = node_name(s)
    s.stop()
    s.ldap_port, s.ldaps_port, s.https_port = free_port(), free_port(), free_port()
    s.start()
    try:
        r = cli("node", "list", "--server", s.url, "--json")
        assert r.returncode == 0, r.stderr
        inv = status(s)["invocation"]
        # its URL follows the ports; the same node (server id, invocation)
        assert json.loads(r.stdout) == {name: {"url": s.url, "server_id": "1", "invocation": inv}}
        converge(s, timeout=10)
    finally:
        s.stop()
    s.extra = ["--quiet-ops", "--node-name", "renamed"]
    with pytest.raises(RuntimeError, match="cannot become 'renamed'"):
        s.start()


def test_a_node_back_after_the_tombstone_lifetime_takes_writes_once_a_partner_confirms_it(pair: list[Server]) -> None:
    """Offline for longer than the lifetime, but nothing was purged that it missed: it starts
    with writes paused (it cannot know yet), and takes them once a pass has caught up."""
    a, b = pair
    converge(a)
    b.stop()
    stopped = time.monotonic()
    wait_for("the tombstone lifetime to pass", lambda: time.monotonic() - stopped > float(LIFETIME) + 1.5,
             timeout=30, interval=0.2)
    b.start(timeout=60)
    res = write_result(b, "back-after-lifetime")
    assert res["result"] == 53 and "until a partner has confirmed" in res["message"], res
    wait_for("B to take writes again", lambda: write_result(b, "back-after-lifetime")["result"] == 0)
    converge(b)
    assert read(a, f"cn=back-after-lifetime,{USERS}", "sn") is not None


def test_a_node_back_on_other_ports_is_found_by_its_only_partner(pair: list[Server]) -> None:
    """B restarts on new ports. A could learn B's URL only by pulling from B, at the old URL;
    B announces it in its pulls from A instead, and both directions work again, with no
    agreement to re-add."""
    from tests.conftest import free_port

    a, b = pair
    converge(a)
    name = node_name(b)  # named at its first start, after its port then
    b.stop()
    b.ldap_port, b.ldaps_port, b.https_port = free_port(), free_port(), free_port()
    b.start(timeout=60)
    new = f"ldap://127.0.0.1:{b.ldap_port}"
    wait_for("A to know B's new URL", lambda: json.loads(cli("node", "list", "--server", a.url, "--json").stdout)
             .get(name, {}).get("url") == new, interval=0.3)
    r = cli("repl", "agreement", "list", "--server", a.url, "--json")
    assert r.returncode == 0, r.stderr
    assert [x["url"] for x in json.loads(r.stdout) if x["from"] == name] == [new], r.stdout
    wait_for("B to take writes", lambda: write_result(b, "via-new-port")["result"] in (0, 68))
    wait_for("B's write to reach A", lambda: read(a, f"cn=via-new-port,{USERS}", "sn") is not None, interval=0.3)
    assert add_person(a, "to-new-port") == 0
    wait_for("A's write to reach B", lambda: read(b, f"cn=to-new-port,{USERS}", "sn") is not None, interval=0.3)


def test_schema_added_over_ldap_replicates(pair: list[Server]) -> None:
    """ldapmodify of cn=Subschema on A (as 389-ds and OpenLDAP's cn=config allow): the new
    attribute type and class are used at once on A, reach B with replication, and B's
    workers use them for its own writes."""
    a, b = pair
    at = ("( 1.3.6.1.4.1.99999.1.7 NAME 'employeeBadge' DESC 'badge number' EQUALITY integerMatch "
          "SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )")
    oc = "( 1.3.6.1.4.1.99999.2.7 NAME 'badgeCarrier' SUP top AUXILIARY MAY employeeBadge )"
    args = ("-H", a.url, "-x", "-D", ADMIN, "-w", ADMIN_PW)
    r = run_tool("ldapmodify", *args, input=f"dn: cn=Subschema\nchangetype: modify\nadd: attributeTypes\n"
                 f"attributeTypes: {at}\n-\nadd: objectClasses\nobjectClasses: {oc}\n")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_tool("ldapmodify", *args, input=f"dn: cn=Subschema\nchangetype: modify\nadd: attributeTypes\n"
                 f"attributeTypes: {at}\n")
    assert r.returncode == 20, r.stdout + r.stderr  # attributeOrValueExists: defined already
    assert add_person(a, "badge-a") == 0
    c = conn(a)
    assert c.modify(f"cn=badge-a,{USERS}", {"objectClass": [(ldap3.MODIFY_ADD, ["badgeCarrier"])],
                                             "employeeBadge": [(ldap3.MODIFY_ADD, ["41"])]}), c.result
    c.unbind()

    def b_knows() -> bool:
        r = run_tool("ldapsearch", "-H", b.url, "-x", "-LLL", "-b", "cn=Subschema", "-s", "base", "attributeTypes")
        return "NAME 'employeeBadge'" in r.stdout

    wait_for("B to have the new attribute type", b_knows, interval=0.3)
    cb = conn(b)
    cb.raise_exceptions = False
    assert cb.add(f"cn=badge-b,{USERS}", ["inetOrgPerson", "badgeCarrier"],
                  {"sn": "b", "employeeBadge": "42"}), cb.result
    assert not cb.modify(f"cn=badge-b,{USERS}", {"employeeBadge": [(ldap3.MODIFY_REPLACE, ["forty-two"])]})
    assert cb.result["result"] == 21, cb.result  # its syntax is checked on B too
    cb.unbind()
    converge(b)
    assert read(a, f"cn=badge-b,{USERS}", "employeeBadge")["employeebadge"] == [b"42"]
    assert read(b, f"cn=badge-a,{USERS}", "employeeBadge")["employeebadge"] == [b"41"]
    # only forest administrators change the schema
    r = run_tool("ldapmodify", "-H", a.url, "-x", input="dn: cn=Subschema\nchangetype: modify\n"
                 "add: objectClasses\nobjectClasses: ( 1.3.6.1.4.1.99999.2.8 NAME 'anonClass' SUP top AUXILIARY )\n")
    assert r.returncode in (8, 50), r.stdout + r.stderr
