"""The Twisted driver for the sans-I/O LDAP core: feeds bytes in, dispatches events
to the Directory, writes the bytes the core returns. Thin by design."""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, tcp, threads
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from vmdir.directory import (
    OID_PASSWD, OID_STARTTLS, OID_TENANT_CREATE, OID_TENANT_DELETE, OID_WHOAMI, Directory, Outcome, SearchRun, Session,
    SlowBind, tenant_create, tenant_delete,
)
from vmdir.proto import messages as m
from vmdir.proto.connection import LDAPServerConnection
from vmdir.proto.events import NEED_DATA, PAUSED, Abandoned, Closed, RequestReceived
from vmdir.proto.results import LDAPError, RemoteProtocolError, ResultCode
from vmdir.server.ldapi import peer_credentials
from vmdir.server.writer import WriteQueue

log = Logger(namespace="vmdir")
RC = ResultCode
SEARCH_CHUNK = 64
_STREAMED = (m.SearchResultEntry, m.EncodedSearchResultEntry, m.SearchResultReference, m.IntermediateResponse)

_OPNAME = {
    m.BindRequest: "BIND", m.SearchRequest: "SRCH", m.ModifyRequest: "MOD", m.AddRequest: "ADD",
    m.DelRequest: "DEL", m.ModifyDNRequest: "MODRDN", m.CompareRequest: "CMP", m.ExtendedRequest: "EXT",
}
_COUNTER = {
    m.BindRequest: "ops_bind", m.SearchRequest: "ops_search", m.ModifyRequest: "ops_modify",
    m.AddRequest: "ops_add", m.DelRequest: "ops_delete", m.ModifyDNRequest: "ops_modrdn",
    m.CompareRequest: "ops_compare", m.ExtendedRequest: "ops_extended",
}


@dataclass(frozen=True, slots=True)
class Limits:
    max_pdu_size: int = 1 << 20
    max_outstanding: int = 256
    max_filter_depth: int = 64
    max_filter_terms: int = 1024
    idle_timeout: int = 900
    max_connections: int = 4096


class ServerContext:
    """What every connection of a worker shares (passed in explicitly, no globals)."""

    def __init__(self, reactor: Any, directory: Directory, writer: WriteQueue, limits: Limits,
                 tls_options: Any = None, counters: Any = None, threadpool: Any = None,
                 log_ops: bool = True, search_handlers: dict[str, Any] | None = None,
                 extended_handlers: dict[str, Any] | None = None) -> None:
        self.reactor = reactor
        self.directory = directory
        self.writer = writer
        self.limits = limits
        self.tls_options = tls_options
        self.counters = counters
        self.threadpool = threadpool
        self.log_ops = log_ops
        # searches carrying one of these controls, and extended operations, served by
        # another package (replication): handler(session, request, ...) -> Deferred
        self.search_handlers = dict(search_handlers or {})
        self.extended_handlers = dict(extended_handlers or {})
        self.conn_ids = 0
        self.open_connections = 0

    def count(self, name: str, n: int = 1) -> None:
        if self.counters is not None:
            self.counters.add(name, n)


def _push_tls(t: Any) -> Any:
    """The socket connection under transport ``t``, with ``t``'s TLS records handed to it.

    Twisted's TLS transport gathers small writes and encrypts them on the next reactor
    turn (``BufferingTLSTransport``): for request/response traffic that is a whole reactor
    cycle, and a register/unregister-for-writing pair, added to each answer's latency (a
    replication page's above all). Its gathered writes are flushed here instead; a Twisted
    without that buffer (no ``_aggregator``) simply keeps its own behaviour. ``t`` is the
    TLS transport itself (LDAPS) or a socket connection that started TLS (StartTLS)."""
    if isinstance(t, tcp.Connection):
        tls = t.protocol if t.TLS else None
        sock = t
    else:
        tls, sock = t, getattr(t, "transport", t)
    flush = getattr(getattr(tls, "_aggregator", None), "flush", None)
    if flush is not None:
        flush()
    return sock


@implementer(IPushProducer)
class LDAPServerProtocol(Protocol, TimeoutMixin):
    transport: Any  # a TCP, unix or TLS transport: what each offers is checked where it is used

    def __init__(self, ctx: ServerContext, tls: bool, ldapi: bool = False) -> None:
        self.ctx = ctx
        self.ldapi = ldapi  # a unix-socket connection: the peer's uid comes from the kernel
        lim = ctx.limits
        self.core = LDAPServerConnection(
            max_pdu_size=lim.max_pdu_size, max_outstanding=lim.max_outstanding,
            max_filter_depth=lim.max_filter_depth, max_filter_terms=lim.max_filter_terms,
        )
        self.session = Session(tls=tls)
        self.searches: dict[int, SearchRun] = {}
        self.paused = False
        self.closed = False
        self.conn_id = 0
        self._cert_checked = False
        self._kick_pending = False
        self._was_paused = False
        self._in_data = False  # inside dataReceived: flush once at its end
        self._dirty = False  # written since the last flush
        self._out: list[bytes] = []  # answers not yet handed to the socket or the transport

    # ------------------------------------------------------------------ connection

    def connectionMade(self) -> None:
        ctx = self.ctx
        ctx.conn_ids += 1
        self.conn_id = ctx.conn_ids
        ctx.open_connections += 1
        ctx.count("connections_total")
        ctx.count("connections_current")
        if self.ldapi:
            cred = peer_credentials(self.transport)
            self.session.peer = "ldapi"
            if cred is not None:  # else no local identity: EXTERNAL is refused, as without a certificate
                pid, uid, gid = cred
                self.session.local_peer = (uid, gid)
                self.session.peer = f"ldapi pid={pid} uid={uid} gid={gid}"
        else:
            peer = self.transport.getPeer()
            self.session.peer = f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"
        self.transport.registerProducer(self, True)
        # pipelined answers must not wait for Nagle / delayed ACKs (LDAPS: the TCP transport under TLS)
        t = self.transport
        while t is not None and not hasattr(t, "setTcpNoDelay"):
            t = getattr(t, "transport", None)
        if t is not None:
            try:
                t.setTcpNoDelay(True)
            except OSError:
                pass
        self.setTimeout(ctx.limits.idle_timeout or None)
        if ctx.open_connections > ctx.limits.max_connections:
            log.warn("conn={conn} refused: too many connections ({n})", conn=self.conn_id, n=ctx.open_connections)
            self._disconnect(RC.unavailable, "too many connections")
            return
        if ctx.log_ops:
            log.info("conn={conn} ACCEPT from {peer} tls={tls}", conn=self.conn_id, peer=self.session.peer, tls=self.session.tls)

    def connectionLost(self, reason: Any = None) -> None:
        self.closed = True
        self.setTimeout(None)
        for run in self.searches.values():
            run.close()
        self.searches.clear()
        self.ctx.open_connections -= 1
        self.ctx.count("connections_current", -1)
        if self.ctx.log_ops:
            log.info("conn={conn} closed", conn=self.conn_id)

    def timeoutConnection(self) -> None:
        log.info("conn={conn} idle timeout", conn=self.conn_id)
        self._disconnect(RC.unavailable, "idle timeout")

    # IPushProducer: the transport tells us when its buffer is full
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        for msgid in list(self.searches):
            self._pump_search(msgid)
        self._process()

    def stopProducing(self) -> None:
        self.paused = True

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        self.core.receive_data(data)
        self._in_data = True
        try:
            self._process()
        finally:
            self._in_data = False
        self._flush()

    def _flush(self) -> None:
        """Send the answers written since the last flush now, in one piece, not on the next
        reactor turn: for request/response traffic that saves a whole epoll cycle per
        operation. Called at the end of each batch of work (dataReceived, a finished answer,
        a chunk of search entries)."""
        if not self._dirty or self._in_data or self.closed:
            return
        self._dirty = False
        self._drain()

    def _drain(self) -> None:
        """Hand the gathered answers on, in order. On a plain socket (TCP or ldapi, no TLS)
        with nothing already queued in the transport they go straight to ``send()``: that
        spares the transport's register-for-writing / unregister pair of epoll calls per
        answer. Whatever the socket does not take, or any error, is left to the transport,
        which reports a loss as usual. Over TLS the answer is encrypted and sent now too,
        not on the next reactor turn (``_push_tls``). Called before anything else touches
        the transport."""
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        t: Any = self.transport
        # a socket connection itself (not a TLS wrapper, which forwards attributes to one)
        raw = isinstance(t, tcp.Connection) and not t.TLS
        if raw and not t.dataBuffer and not t._tempDataBuffer and t.connected and not t.disconnecting:
            try:
                sent = t.socket.send(data)
            except OSError:  # would block, or broken: the transport deals with it
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        t.write(data)
        sock = _push_tls(t)
        do_write = getattr(sock, "doWrite", None)
        if do_write is not None and sock.connected and not sock.disconnecting:
            do_write()  # now, not on the next reactor turn

    # ------------------------------------------------------------------ events

    def _process(self) -> None:
        while not self.closed:
            try:
                ev = self.core.next_event()
            except RemoteProtocolError as exc:
                self.ctx.count("errors_protocol")
                log.info("conn={conn} protocol error: {msg}", conn=self.conn_id, msg=exc.message)
                self._disconnect(exc.code, exc.message or "protocol error")
                return
            if ev is PAUSED:
                self._was_paused = True
                return
            if ev is NEED_DATA:
                return
            if isinstance(ev, RequestReceived):
                self._dispatch(ev)
            elif isinstance(ev, Abandoned):
                self.ctx.count("ops_abandon")
                run = self.searches.pop(ev.msgid, None)
                if run is not None:
                    run.close()
            elif isinstance(ev, Closed):
                self._drain()
                self.closed = True
                self.transport.loseConnection()
                return

    def _disconnect(self, code: ResultCode, message: str) -> None:
        try:
            self._out.append(self.core.notice_of_disconnection(code, message))
            self._drain()
        except Exception:  # noqa: BLE001 - core already in ERROR: close anyway
            pass
        self.closed = True
        self.transport.loseConnection()

    def _send(self, msgid: int, resp: Any, controls: tuple[m.Control, ...] = ()) -> None:
        if self.closed:
            return
        data = self.core.send(msgid, resp, controls)
        if data:
            self._out.append(data)
            self._dirty = True
        if self._was_paused and not isinstance(resp, _STREAMED) and not self._kick_pending:
            # a final answer may lift a PAUSED (bind, StartTLS, outstanding limit): look again
            self._kick_pending = True
            self.ctx.reactor.callLater(0, self._kick)

    def _kick(self) -> None:
        self._kick_pending = False
        self._was_paused = False
        if not self.closed and self.core.buffered:
            self._process()

    def _log(self, msgid: int, op: Any, code: int, t0: float, extra: str = "") -> None:
        if self.ctx.log_ops:
            log.info("conn={conn} op={op} {name} {extra}result={code} etime={etime:.6f}",
                     conn=self.conn_id, op=msgid, name=_OPNAME.get(type(op), "?"), extra=extra,
                     code=int(code), etime=time.monotonic() - t0)

    def _finish(self, msgid: int, op: Any, out: Outcome, t0: float, extra: str = "") -> None:
        resp_type = m.RESPONSE_FOR[type(op)]
        if resp_type is m.ExtendedResponse:
            name, value = out.extra if out.extra else (None, None)
            resp = m.ExtendedResponse(out.code, out.matched_dn, out.message, name, value)
        else:
            resp = resp_type(out.code, out.matched_dn, out.message)
        self._send(msgid, resp, out.controls)
        self._log(msgid, op, out.code, t0, extra)
        self._flush()

    def _fail(self, msgid: int, op: Any, exc: BaseException, t0: float) -> None:
        if isinstance(exc, LDAPError):
            out = Outcome(exc.code, exc.message, exc.matched_dn, controls=exc.controls)
        else:
            incident = secrets.token_hex(4)
            self.ctx.count("errors_internal")
            log.failure("conn={conn} op={op} internal error, incident {incident}", failure=Failure(exc),
                        conn=self.conn_id, op=msgid, incident=incident)
            out = Outcome(RC.other, f"internal error (incident {incident})")
        self._finish(msgid, op, out, t0)

    def _dispatch(self, ev: RequestReceived) -> None:
        op, msgid, controls = ev.op, ev.msgid, ev.controls
        t0 = time.monotonic()
        self.ctx.count(_COUNTER.get(type(op), "ops_extended"))
        d = self.ctx.directory
        try:
            if self.session.must_change:  # bound with a reset password: little else is allowed
                refused = d.restricted(self.session, op, controls)
                if refused is not None:
                    self._finish(msgid, op, refused, t0)
                    return
            if isinstance(op, m.SearchRequest):
                self._start_search(msgid, op, controls, t0)
            elif isinstance(op, m.BindRequest):
                self._bind(msgid, op, controls, t0)
            elif isinstance(op, m.CompareRequest):
                self._finish(msgid, op, d.compare(self.session, op, controls), t0)
            elif isinstance(op, (m.AddRequest, m.ModifyRequest)) and _has_password(op):
                # hashing a password is slow (argon2): prepare the write in the pool
                prep = d.add if isinstance(op, m.AddRequest) else d.modify
                self._prepare_write(msgid, op, t0, prep, self.session, op, controls)
            elif isinstance(op, m.AddRequest):
                self._write(msgid, op, d.add(self.session, op, controls), t0)
            elif isinstance(op, m.ModifyRequest):
                self._write(msgid, op, d.modify(self.session, op, controls), t0)
            elif isinstance(op, m.DelRequest):
                self._write(msgid, op, d.delete(self.session, op, controls), t0)
            elif isinstance(op, m.ModifyDNRequest):
                self._write(msgid, op, d.modify_dn(self.session, op, controls), t0)
            elif isinstance(op, m.ExtendedRequest):
                self._extended(msgid, op, controls, t0)
            else:  # pragma: no cover - the core never yields others
                raise LDAPError(RC.protocolError, "unsupported operation")
        except Exception as exc:  # noqa: BLE001 - every failure becomes a response
            self._fail(msgid, op, exc, t0)

    # ------------------------------------------------------------------ operations

    def _bind(self, msgid: int, op: m.BindRequest, controls: tuple[m.Control, ...], t0: float) -> None:
        self._refresh_cert()
        dn_for_log = op.name
        if op.sasl_mechanism is None or op.sasl_mechanism.upper() == "EXTERNAL":
            try:
                out = self.ctx.directory.bind(self.session, op, controls, allow_slow=False)
            except SlowBind:
                pass  # an expensive hash (argon2, PBKDF2): verify it in the thread pool below
            else:
                self._bound(msgid, op, out, t0, dn_for_log)
                return
        dfr = self._in_pool(self.ctx.directory.bind, self.session, op, controls)
        dfr.addCallbacks(self._bound_then, self._failed, callbackArgs=(msgid, op, t0, dn_for_log),
                         errbackArgs=(msgid, op, t0))

    # Deferred callbacks are methods with their context as arguments (no closures)

    def _failed(self, f: Failure, msgid: int, op: Any, t0: float) -> None:
        self._fail(msgid, op, f.value, t0)

    def _finished(self, out: Outcome, msgid: int, op: Any, t0: float, extra: str) -> None:
        self._finish(msgid, op, out, t0, extra)

    def _bound_then(self, out: Outcome, msgid: int, op: m.BindRequest, t0: float, dn_for_log: str) -> None:
        self._bound(msgid, op, out, t0, dn_for_log)

    def _recording_failed(self, f: Failure) -> None:
        log.failure("conn={conn} recording a bind outcome failed", failure=f, conn=self.conn_id)

    def _finish_after(self, _: Any, msgid: int, op: Any, out: Outcome, t0: float, extra: str) -> None:
        self._finish(msgid, op, out, t0, extra)

    def _bound(self, msgid: int, op: m.BindRequest, out: Outcome, t0: float, dn_for_log: str) -> None:
        extra = f'dn="{dn_for_log}" method={self.session.method} ' if self.ctx.log_ops else ""
        if out.after is None:
            self._finish(msgid, op, out, t0, extra)
            return
        # record the failure (or clear the count) before answering, so guesses cannot outrun it
        dfr = self.ctx.writer.submit(out.after)
        dfr.addErrback(self._recording_failed)
        dfr.addBoth(self._finish_after, msgid, op, out, t0, extra)

    def _in_pool(self, fn: Any, *args: Any) -> "defer.Deferred[Any]":
        """Run blocking work (password hashing) off the reactor; inline when no pool is given."""
        if self.ctx.threadpool is None:
            return defer.maybeDeferred(fn, *args)
        return threads.deferToThreadPool(self.ctx.reactor, self.ctx.threadpool, fn, *args)

    def _prepare_write(self, msgid: int, op: Any, t0: float, prepare: Any, *args: Any) -> None:
        """Prepare a write in the pool (it hashes passwords: slow), then queue it for the writer."""
        dfr = self._in_pool(prepare, *args)
        dfr.addCallbacks(self._write_prepared, self._failed, callbackArgs=(msgid, op, t0), errbackArgs=(msgid, op, t0))

    def _write_prepared(self, fn: Any, msgid: int, op: Any, t0: float) -> None:
        self._write(msgid, op, fn, t0)

    def _write(self, msgid: int, op: Any, fn: Any, t0: float) -> None:
        extra = f'dn="{getattr(op, "dn", "")}" '
        dfr = self.ctx.writer.submit(fn)
        dfr.addCallbacks(self._finished, self._failed, callbackArgs=(msgid, op, t0, extra), errbackArgs=(msgid, op, t0))

    def _extended(self, msgid: int, op: m.ExtendedRequest, controls: tuple[m.Control, ...], t0: float) -> None:
        d = self.ctx.directory
        if op.oid != OID_PASSWD:
            d.check_controls(controls, frozenset())  # no other extended operation takes a control
        if op.oid == OID_WHOAMI:
            self._finish(msgid, op, d.whoami(self.session), t0, "oid=whoami ")
        elif op.oid == OID_PASSWD:
            self._prepare_write(msgid, op, t0, d.password_modify, self.session, op.value, controls)
        elif op.oid in (OID_TENANT_CREATE, OID_TENANT_DELETE):
            prep = tenant_create if op.oid == OID_TENANT_CREATE else tenant_delete
            self._prepare_write(msgid, op, t0, prep, d, self.session, op.value)
        elif op.oid == OID_STARTTLS:
            self._starttls(msgid, op, t0)
        elif op.oid in self.ctx.extended_handlers:
            dfr = defer.maybeDeferred(self.ctx.extended_handlers[op.oid], self.session, op.value)
            dfr.addCallbacks(self._finished, self._failed, callbackArgs=(msgid, op, t0, f"oid={op.oid} "),
                             errbackArgs=(msgid, op, t0))
        else:
            raise LDAPError(RC.protocolError, f"{op.oid} not supported")

    def _starttls(self, msgid: int, op: m.ExtendedRequest, t0: float) -> None:
        if self.ctx.tls_options is None:
            raise LDAPError(RC.unavailable, "TLS not configured")
        if self.session.tls:
            raise LDAPError(RC.operationsError, "TLS already started")
        self._send(msgid, m.ExtendedResponse(RC.success, "", "", OID_STARTTLS, None))
        self._drain()  # the answer goes out in the clear, before the handshake
        self.transport.startTLS(self.ctx.tls_options)
        self.session.tls = True
        self.core.tls_started()
        self._log(msgid, op, RC.success, t0, "oid=starttls ")

    def _refresh_cert(self) -> None:
        if not self.session.tls or self._cert_checked:
            return
        self._cert_checked = True
        try:
            cert = self.transport.getPeerCertificate()
        except Exception:  # noqa: BLE001 - no certificate
            cert = None
        if cert is not None:
            from cryptography import x509
            c = x509.load_der_x509_certificate(_der(cert))
            self.session.client_cert_subject = c.subject.rfc4514_string()

    # ------------------------------------------------------------------ search streaming

    def _start_search(self, msgid: int, op: m.SearchRequest, controls: tuple[m.Control, ...], t0: float) -> None:
        for c in controls:
            handler = self.ctx.search_handlers.get(c.oid)
            if handler is not None:
                self._handled_search(msgid, op, handler(self.session, op, controls), t0)
                return
        run = self.ctx.directory.search(self.session, op, controls)
        run.t0 = t0
        run.it = iter(run)
        self.searches[msgid] = run
        self._pump_search(msgid)

    def _pump_search(self, msgid: int) -> None:
        run = self.searches.get(msgid)
        if run is None:
            return
        it = run.it
        assert it is not None
        sent = 0
        try:
            while not self.paused and not self.closed:
                entry = next(it, None)
                if entry is None:
                    break
                self._send(msgid, entry)
                sent += 1
                if sent >= SEARCH_CHUNK:
                    self.ctx.count("entries_sent", sent)
                    sent = 0
                    self._dirty = False
                    self._drain()  # to the socket now: the transport may pause us (flow control)
                    # let other connections run; continue on the next reactor turn
                    self.ctx.reactor.callLater(0, self._pump_search, msgid)
                    return
            else:
                self.ctx.count("entries_sent", sent)
                return  # paused or closed: resumeProducing continues
        except Exception as exc:  # noqa: BLE001
            self.searches.pop(msgid, None)
            run.close()
            self._fail(msgid, run.req, exc, run.t0)
            return
        if sent:
            self.ctx.count("entries_sent", sent)
        self.searches.pop(msgid, None)
        out = run.outcome
        self._send(msgid, m.SearchResultDone(out.code, out.matched_dn, out.message), out.controls)
        self._flush()
        op = run.req
        self._log(msgid, op, out.code, run.t0,
                  f'base="{op.base}" scope={op.scope} nentries={run.sent} ')


    def _handled_search(self, msgid: int, op: m.SearchRequest, dfr: "defer.Deferred[Any]", t0: float) -> None:
        """Send what a search handler answered: (entries, Outcome of SearchResultDone)."""
        dfr.addCallbacks(self._handled, self._failed, callbackArgs=(msgid, op, t0), errbackArgs=(msgid, op, t0))

    def _handled(self, result: tuple[list[Any], Outcome], msgid: int, op: m.SearchRequest, t0: float) -> None:
        entries, out = result
        for e in entries:
            self._send(msgid, e)
        self.ctx.count("entries_sent", len(entries))
        self._send(msgid, m.SearchResultDone(out.code, out.matched_dn, out.message), out.controls)
        self._flush()
        self._log(msgid, op, out.code, t0, f'base="{op.base}" handler nentries={len(entries)} ')


def _has_password(op: m.AddRequest | m.ModifyRequest) -> bool:
    names = [a for a, _ in op.attributes] if isinstance(op, m.AddRequest) else [c.attr for c in op.changes]
    return any(n.lower().split(";", 1)[0] in ("userpassword", "2.5.4.35") for n in names)


def _der(cert: Any) -> bytes:
    from OpenSSL import crypto
    return crypto.dump_certificate(crypto.FILETYPE_ASN1, cert.original if hasattr(cert, "original") else cert)




class LDAPFactory(Factory):
    def __init__(self, ctx: ServerContext, tls: bool = False, ldapi: bool = False) -> None:
        self.ctx = ctx
        self.tls = tls
        self.ldapi = ldapi

    def buildProtocol(self, addr: Any) -> LDAPServerProtocol:
        p = LDAPServerProtocol(self.ctx, self.tls, self.ldapi)
        p.factory = self
        return p
