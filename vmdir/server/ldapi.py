"""ldapi://: LDAP over a unix-domain socket on this machine (as OpenLDAP's slapd serves it).

The supervisor creates the listening socket once (:func:`open_listener`) and every worker
process adopts the same descriptor (:func:`adopt`): unix sockets have no SO_REUSEPORT. The
supervisor also removes the file at a clean stop (``Listener.close``).
Each connection learns who is at the other end from the kernel (:func:`peer_credentials`,
SO_PEERCRED), and the protocol hands that to the Session as a plain fact.
"""
from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import struct
from typing import Any

from twisted.internet import tcp, unix

MODE = 0o600  # only the server's own user (and root) may connect
_MAX_PATH = 107  # sun_path holds 108 bytes with the terminating NUL


class ListenerError(Exception):
    """The socket cannot be created; the message says why and what to do."""


class PathTooLong(ListenerError):
    """The socket path does not fit in a unix socket address."""


class Listener:
    """The listening socket at ``path`` (see :func:`open_listener`); ``close()`` removes the file."""

    def __init__(self, sock: socket.socket, path: str) -> None:
        self.sock = sock
        self.path = path
        self._ino = os.stat(path).st_ino

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        """Stop listening and remove the socket file, unless another one has replaced it."""
        try:
            if os.lstat(self.path).st_ino == self._ino:
                os.unlink(self.path)
        except OSError:
            pass
        self.sock.close()


def open_listener(path: str, backlog: int = 1024) -> Listener:
    """Listen on a new unix socket at ``path`` (mode 0600, non-blocking).

    A stale socket file (nobody accepts on it: a server that was killed) is removed first.
    Raises ListenerError if ``path`` is too long, is not a socket, or a server answers on it.
    """
    if len(os.fsencode(path)) > _MAX_PATH:
        raise PathTooLong(f"ldapi socket path {path} is longer than {_MAX_PATH} bytes; set a shorter ldapi_path")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise ListenerError(f"ldapi socket path {path} exists and is not a socket; remove it or set ldapi_path")
        if _answers(path):
            raise ListenerError(f"another server is listening on {path}")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # no moment in which others may connect
    bound = False
    try:
        sock.bind(path)
        bound = True
        os.chmod(path, MODE)
        sock.listen(backlog)
        sock.setblocking(False)
        return Listener(sock, path)
    except OSError as exc:
        sock.close()
        if bound:
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise ListenerError(f"cannot listen on {path}: {exc.strerror or exc}") from None
    finally:
        os.umask(old)


def _answers(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect(path)
        return True
    except OSError as exc:
        return exc.errno not in (errno.ECONNREFUSED, errno.ENOENT)
    finally:
        s.close()


class _SharedPort(unix.Port):
    """A listening unix socket made by the supervisor and shared by the workers. Twisted's
    own Port would make the file mode 0666 when it starts listening and unlink the file
    when it stops; here the mode stays 0600 and the file belongs to the supervisor."""

    def __init__(self, fileName: Any, factory: Any, backlog: int = 1024, mode: int = MODE,
                 reactor: Any = None, wantPID: int = 0) -> None:
        super().__init__(fileName, factory, backlog, MODE, reactor, wantPID)

    def connectionLost(self, reason: Any) -> None:
        tcp.Port.connectionLost(self, reason)  # skip unix.Port's unlink


def adopt(reactor: Any, fd: int, factory: Any) -> Any:
    """Serve ``factory`` on the listening unix socket ``fd`` (inherited or our own; it is
    duplicated, so the caller may close ``fd``). Returns the IListeningPort."""
    port = _SharedPort._fromListeningDescriptor(reactor, fd, factory)  # as reactor.adoptStreamPort does
    port.startListening()
    return port


_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_credentials(transport: Any) -> tuple[int, int, int] | None:
    """(pid, uid, gid) of the process that connected to a unix-socket ``transport``, or None."""
    try:
        sock = transport.getHandle()
        if sock.family != socket.AF_UNIX:
            return None
        pid, uid, gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    except (AttributeError, OSError, struct.error):
        return None
    return pid, uid, gid
