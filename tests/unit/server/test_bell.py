"""Commit bells between processes of one node (vmdir.server.bell), over real sockets."""
from __future__ import annotations

import os
import select
import subprocess
import sys

from vmdir.server.bell import Bell


def rung(b: Bell, timeout: float = 2.0) -> bool:
    ready, _, _ = select.select([b.sock], [], [], timeout)
    b.drain()
    return bool(ready)


def test_a_ring_reaches_every_other_listener_and_not_itself(tmp_path) -> None:
    here = Bell(str(tmp_path / "bell"))
    here.listen()
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, select\n"
        "from vmdir.server.bell import Bell\n"
        f"b = Bell({str(tmp_path / 'bell')!r}); b.listen()\n"
        "print('ready', flush=True)\n"
        "r, _, _ = select.select([b.sock], [], [], 10)\n"
        "print('rung' if r else 'silent', flush=True)\n")],
        stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        sender = Bell(str(tmp_path / "bell"))  # a process that only rings (the replication process)
        sender.pid = 1  # as if it were another process than this test's listener
        sender.ring()
        assert child.stdout.readline().strip() == "rung"
        assert rung(here)
        here.ring()
        assert not rung(here, 0.2)  # a listener is not rung by its own commits
        sender.close()
    finally:
        child.kill()
        child.wait()
    here.close()
    assert str(os.getpid()) not in os.listdir(tmp_path / "bell")  # a listener that closes removes its marker


def test_a_listener_that_is_gone_is_forgotten(tmp_path) -> None:
    d = tmp_path / "bell"
    ghost = Bell(str(d))
    ghost.listen()
    ghost.sock.close()  # as if its process died without cleaning up: the marker stays
    (d / "999999999").write_text("")  # and a marker of a process that never bound
    alive = Bell(str(d))
    alive.pid = os.getpid() + 1  # a second listener in this process, for the test
    alive.listen()
    b = Bell(str(d))
    b.pid = 1  # ring from "another" process than both
    b.ring()
    assert rung(alive)
    assert sorted(os.listdir(d)) == [str(alive.pid)]
    for x in (alive, b):
        x.close()
