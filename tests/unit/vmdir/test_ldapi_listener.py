"""The ldapi listening socket: mode 0600, stale files replaced, live ones and other files
left alone, removed on close; and the peer credentials of an accepted connection."""
from __future__ import annotations

import os
import socket
import stat

import pytest

from vmdir.server.ldapi import ListenerError, open_listener, peer_credentials


def test_listens_with_mode_0600_and_close_removes_the_file(tmp_path) -> None:
    path = str(tmp_path / "ldapi")
    lst = open_listener(path)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(path)
    lst.close()
    assert not os.path.exists(path)


def test_a_stale_socket_file_is_replaced(tmp_path) -> None:
    path = str(tmp_path / "ldapi")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()  # the file stays, nobody listens: a killed server's
    lst = open_listener(path)
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(path)
    lst.close()


def test_a_live_socket_or_another_file_is_left_alone(tmp_path) -> None:
    path = str(tmp_path / "ldapi")
    first = open_listener(path)
    with pytest.raises(ListenerError, match="another server"):
        open_listener(path)
    first.close()
    with open(path, "w") as f:
        f.write("not a socket")
    with pytest.raises(ListenerError, match="not a socket"):
        open_listener(path)
    assert open(path).read() == "not a socket"


def test_close_leaves_a_replaced_file(tmp_path) -> None:
    path = str(tmp_path / "ldapi")
    lst = open_listener(path)
    os.unlink(path)
    other = open_listener(path)
    lst.close()
    assert os.path.exists(path)
    other.close()


def test_too_long_a_path_says_so(tmp_path) -> None:
    with pytest.raises(ListenerError, match="longer than"):
        open_listener(str(tmp_path / ("x" * 120)))


def test_peer_credentials_are_the_connecting_process(tmp_path) -> None:
    path = str(tmp_path / "ldapi")
    lst = open_listener(path)
    lst.sock.setblocking(True)

    class Transport:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def getHandle(self) -> socket.socket:
            return self.sock

    with socket.socket(socket.AF_UNIX) as c:
        c.connect(path)
        conn, _ = lst.sock.accept()
        with conn:
            assert peer_credentials(Transport(conn)) == (os.getpid(), os.getuid(), os.getgid())
    with socket.socket() as tcp:
        assert peer_credentials(Transport(tcp)) is None
    assert peer_credentials(object()) is None
    lst.close()
