"""A small blocking LDAP client driven by the project's BER codec (``vmdir.ber``).

Replication pulls pages of entries many times a second; ldap3's per-message cost was a
third of a pull's time (bench/repl_bench.py). This client sends one request at a time
over one socket (plain, StartTLS or LDAPS) and returns the decoded responses.

    c = Connection("ldap://127.0.0.1:10389", tls=ctx)   # StartTLS for ldap://
    c.bind(dn, password)
    entries, done, controls = c.search(base, SCOPE_SUB, Present("objectClass"))

Errors: ``ClientError`` (connection, TLS, timeout, a malformed answer), with ``code`` set
to the LDAP result code when the server answered one (``check`` raises it for a
non-success result).
"""
from __future__ import annotations

import socket
import ssl
from collections import deque
from collections.abc import Sequence
from urllib.parse import urlsplit

from vmdir.ber import decode_response, encode_request, peek_frame
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError, LocalProtocolError, ResultCode

STARTTLS_OID = "1.3.6.1.4.1.1466.20037"
MAX_PDU = 256 << 20


class ClientError(Exception):
    """The request failed. ``code`` is the LDAP result code when the server sent one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def describe(code: int, message: str) -> str:
    """``"invalidCredentials (49): <diagnostic>"``."""
    try:
        name = ResultCode(code).name
    except ValueError:
        name = "result"
    return f"{name} ({int(code)})" + (f": {message}" if message else "")


def check(what: str, done: object) -> None:
    """Raise ClientError unless ``done`` (an LDAPResult-carrying response) is success."""
    code = int(getattr(done, "code", 0))
    if code != 0:
        raise ClientError(f"{what}: {describe(code, getattr(done, 'message', ''))}", code)


class Connection:
    """One LDAP connection. ``ldap://`` is upgraded with StartTLS when ``tls`` is given;
    ``ldaps://`` always uses ``tls`` (a default context when None). ``timeout`` bounds
    every wait for an answer."""

    def __init__(self, url: str, *, tls: ssl.SSLContext | None = None, timeout: float = 30.0,
                 connect_timeout: float = 10.0) -> None:
        u = urlsplit(url)
        scheme = u.scheme.lower()
        if scheme not in ("ldap", "ldaps") or not u.hostname:
            raise ClientError(f"not an ldap:// or ldaps:// URL: {url!r}")
        self.url = url
        self.sock: socket.socket | None = None
        self._buf = b""
        self._ready: deque[bytes] = deque()  # frames received, not yet taken
        self._next = 1
        try:
            port = u.port or (636 if scheme == "ldaps" else 389)
        except ValueError:
            raise ClientError(f"bad port in {url!r}") from None
        try:
            sock = socket.create_connection((u.hostname, port), timeout=connect_timeout)
        except OSError as exc:
            raise ClientError(f"cannot reach {url}: {exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout)
        self.sock = sock
        try:
            if scheme == "ldaps":
                self._wrap(tls or ssl.create_default_context(), u.hostname)
            elif tls is not None:
                r = self.extended(STARTTLS_OID)
                check(f"StartTLS with {url}", r)
                self._wrap(tls, u.hostname)
        except BaseException:
            self.close()
            raise

    def _wrap(self, ctx: ssl.SSLContext, host: str) -> None:
        assert self.sock is not None
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=host if ctx.check_hostname else None)
        except (ssl.SSLError, OSError) as exc:
            raise ClientError(f"TLS with {self.url} failed: {exc}") from None

    def peer_certificate(self) -> bytes | None:
        """The server's certificate (DER) when the connection is TLS."""
        if isinstance(self.sock, ssl.SSLSocket):
            return self.sock.getpeercert(binary_form=True)
        return None

    # ------------------------------------------------------------------ requests

    def request(self, req: m.Request, controls: Sequence[m.Control] = ()
                ) -> tuple[list[m.Response], tuple[m.Control, ...]]:
        """Send ``req``; return its responses (entries and references, then the final
        one) and the final response's controls."""
        return self.receive(self.send(req, controls), type(req).__name__)

    def send(self, req: m.Request, controls: Sequence[m.Control] = ()) -> int:
        """Send ``req`` without waiting (requests may be pipelined); returns its message id
        for ``receive``."""
        if self.sock is None:
            raise ClientError(f"the connection to {self.url} is closed")
        msgid = self._next
        self._next += 1
        try:
            pdu = encode_request(msgid, req, tuple(controls))
        except LocalProtocolError as exc:
            raise ClientError(f"cannot send {type(req).__name__}: {exc}") from None
        try:
            self.sock.sendall(pdu)
        except OSError as exc:
            self.close()
            raise ClientError(f"{type(req).__name__} to {self.url} failed: {exc}") from None
        return msgid

    def receive(self, msgid: int, what: str = "request") -> tuple[list[m.Response], tuple[m.Control, ...]]:
        """The responses to the request sent as ``msgid`` (those of earlier requests not
        received are skipped)."""
        if self.sock is None:
            raise ClientError(f"the connection to {self.url} is closed")
        got: list[m.Response] = []
        try:
            while True:
                pdu = self._frame()
                mid, resp, ctrls = decode_response(pdu)
                if mid == 0 and isinstance(resp, m.ExtendedResponse):
                    self.close()  # notice of disconnection (RFC 4511 4.4.1)
                    raise ClientError(f"{self.url} closed the connection: {describe(resp.code, resp.message)}",
                                      int(resp.code))
                if mid != msgid:
                    continue
                got.append(resp)
                if not isinstance(resp, (m.SearchResultEntry, m.SearchResultReference, m.IntermediateResponse)):
                    return got, ctrls
        except (OSError, LDAPError) as exc:
            self.close()
            why = "no answer in time" if isinstance(exc, TimeoutError) else str(exc)
            raise ClientError(f"{what} to {self.url} failed: {why}") from None

    def _frame(self) -> bytes:
        assert self.sock is not None
        while not self._ready:
            chunk = self.sock.recv(1 << 18)
            if not chunk:
                raise ConnectionResetError("the server closed the connection")
            self._ready.extend(self.frames(chunk))
        return self._ready.popleft()

    def frames(self, data: bytes) -> list[bytes]:
        """Buffer ``data`` read from ``sock``; return every LDAPMessage it completes.
        (For callers that read the socket themselves: pipelined requests sent with
        ``reserve_ids``.) Raises RemoteProtocolError on a malformed or oversized frame."""
        buf = self._buf + data if self._buf else data
        out, pos = [], 0
        while True:
            n = peek_frame(buf, pos, MAX_PDU)
            if n is None:
                break
            out.append(buf[pos:pos + n])
            pos += n
        self._buf = buf[pos:]
        return out

    def reserve_ids(self, n: int) -> int:
        """Reserve ``n`` message ids for requests the caller encodes and sends itself;
        returns the first."""
        first = self._next
        self._next += n
        return first

    def bind(self, dn: str, password: str) -> None:
        (r,), _ = self.request(m.BindRequest(3, dn, password.encode()))
        check(f"bind to {self.url} as {dn}", r)

    def search(self, base: str, scope: int, flt: m.Filter, attributes: Sequence[str] = (),
               controls: Sequence[m.Control] = ()
               ) -> tuple[list[m.SearchResultEntry], m.SearchResultDone, tuple[m.Control, ...]]:
        """Entries, the SearchResultDone (any result code) and its controls."""
        return self.search_result(self.send_search(base, scope, flt, attributes, controls))

    def send_search(self, base: str, scope: int, flt: m.Filter, attributes: Sequence[str] = (),
                    controls: Sequence[m.Control] = ()) -> int:
        """Send a search without waiting; ``search_result`` of the returned id answers it."""
        return self.send(m.SearchRequest(base, scope, 0, 0, 0, False, flt, tuple(attributes)), controls)

    def search_result(self, msgid: int
                      ) -> tuple[list[m.SearchResultEntry], m.SearchResultDone, tuple[m.Control, ...]]:
        got, ctrls = self.receive(msgid, "SearchRequest")
        done = got[-1]
        if not isinstance(done, m.SearchResultDone):
            raise ClientError(f"{self.url} answered a search with {type(done).__name__}")
        return [e for e in got if isinstance(e, m.SearchResultEntry)], done, ctrls

    def write(self, req: m.AddRequest | m.DelRequest | m.ModifyRequest | m.ModifyDNRequest) -> m.Response:
        """The result of a write (any result code; ``check`` it)."""
        got, _ = self.request(req)
        return got[-1]

    def extended(self, oid: str, value: bytes | None = None) -> m.ExtendedResponse:
        got, _ = self.request(m.ExtendedRequest(oid, value))
        r = got[-1]
        if not isinstance(r, m.ExtendedResponse):
            raise ClientError(f"{self.url} answered an extended operation with {type(r).__name__}")
        return r

    def close(self) -> None:
        """Unbind (when still connected) and close; safe to call twice."""
        sock, self.sock = self.sock, None
        if sock is None:
            return
        try:
            sock.settimeout(1.0)
            sock.sendall(encode_request(self._next, m.UnbindRequest()))
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass
