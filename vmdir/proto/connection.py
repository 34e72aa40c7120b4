"""Sans-I/O LDAPv3 server connection (h11 style: bytes in, events out, responses in, bytes out).

The driver (``vmdir/server/protocol.py``) does::

    conn.receive_data(data)            # b"" on EOF
    while True:
        ev = conn.next_event()         # may raise RemoteProtocolError
        if ev is NEED_DATA: break
        if ev is PAUSED: transport.pauseProducing(); break   # resume after send()/tls_started()
        ...dispatch RequestReceived / Abandoned / Closed...
    transport.write(conn.send(msgid, response))

and on ``RemoteProtocolError as e``: ``transport.write(conn.notice_of_disconnection(e.code,
e.message)); transport.loseConnection()``.

The core never reads a clock, never touches TLS and never calls back into the
application; everything that changes its state is in this file, and the state
machine is the table ``_TRANSITIONS`` below.

Layer 1: pure, no I/O.
"""
from __future__ import annotations

from enum import Enum

from vmdir.ber import decode_message, encode_response, notice_of_disconnection, peek_frame
from vmdir.proto.events import NEED_DATA, PAUSED, Abandoned, Closed, Event, RequestReceived
from vmdir.proto.messages import (
    RESPONSE_FOR, AbandonRequest, BindRequest, Control, ExtendedRequest,
    EncodedSearchResultEntry, ExtendedResponse, IntermediateResponse, Request, Response, SearchRequest,
    SearchResultEntry,
    SearchResultReference, UnbindRequest,
)
from vmdir.proto.controls import STARTTLS_OID
from vmdir.proto.results import LocalProtocolError, RemoteProtocolError, ResultCode

_MAX_FILTER_DEPTH_CAP = 256  # the filter decoder recurses once per level


class ConnState(Enum):
    """Connection states. Only OPEN yields requests; the three middle ones are PAUSED."""

    OPEN = "OPEN"  # requests flow (subject to the conditions listed at _TRANSITIONS)
    BINDING = "BINDING"  # a BindRequest was yielded; PAUSED until its BindResponse is sent
    STARTTLS = "STARTTLS"  # a StartTLS request was yielded; PAUSED until its ExtendedResponse is sent
    TLS_PENDING = "TLS_PENDING"  # StartTLS answered success; PAUSED until tls_started()
    CLOSED = "CLOSED"  # Unbind or EOF seen: next_event() repeats Closed; send() still works
    ERROR = "ERROR"  # an exception was raised: every call but notice_of_disconnection() fails

    # members are singletons: hash by identity, in C (Enum's own __hash__ is a Python call,
    # made for every state change: _TRANSITIONS is keyed by (state, trigger))
    __hash__ = object.__hash__


OPEN, BINDING, STARTTLS, TLS_PENDING, CLOSED, ERROR = (
    ConnState.OPEN, ConnState.BINDING, ConnState.STARTTLS, ConnState.TLS_PENDING,
    ConnState.CLOSED, ConnState.ERROR,
)

# The whole state machine. Any (state, trigger) pair not listed is a LocalProtocolError.
#
# Besides the state, two conditions make next_event() answer PAUSED in OPEN
# (the request that triggered them is held, nothing is skipped):
#   - ``max_outstanding`` operations are in flight (backpressure: send() some answers);
#   - a Bind or StartTLS arrived while other operations are in flight (RFC 4511
#     4.2.1: they must complete first, so the core waits for them).
# Abandoned operations are no longer in flight: they never cause a pause.
# Any error moves to ERROR from every state.
_TRANSITIONS: dict[tuple[ConnState, str], ConnState] = {
    (OPEN, "bind_received"): BINDING,
    (BINDING, "bind_answered"): OPEN,
    (OPEN, "starttls_received"): STARTTLS,
    (STARTTLS, "starttls_succeeded"): TLS_PENDING,
    (STARTTLS, "starttls_failed"): OPEN,
    (TLS_PENDING, "tls_started"): OPEN,
    (OPEN, "unbind_received"): CLOSED,
    (OPEN, "eof_received"): CLOSED,
}

_PAUSED_STATES = frozenset({BINDING, STARTTLS, TLS_PENDING})


class _StartTLS:
    """In-flight marker for a StartTLS ExtendedRequest."""


# What kind of operation each in-flight msgid is -> the final response it needs.
_FINAL_FOR: dict[type, type] = {**RESPONSE_FOR, _StartTLS: ExtendedResponse}
_NON_FINAL = frozenset({SearchResultEntry, EncodedSearchResultEntry, SearchResultReference, IntermediateResponse})


class LDAPServerConnection:
    """The server side of one LDAP connection, with no I/O.

    Limits (all per connection):

    - ``max_pdu_size``: largest LDAPMessage accepted, checked from its header.
    - ``max_outstanding``: operations in flight (yielded, not abandoned, final
      response not yet sent) before next_event() answers PAUSED. It also
      bounds how many abandoned operations are remembered (at least 1024).
    - ``max_filter_depth`` / ``max_filter_terms``: search and assertion filters.
    - ``max_buffer_size``: unconsumed received bytes (default ``2 * max_pdu_size``).
      The driver should stop reading while PAUSED; a peer that keeps pipelining
      past this limit gets a RemoteProtocolError from next_event().

    Raises:
        TypeError: a limit is not an int.
        ValueError: a limit is not positive, ``max_filter_depth`` is over
            256, or ``max_buffer_size < max_pdu_size``.
    """

    def __init__(
        self,
        max_pdu_size: int = 1 << 20,
        max_outstanding: int = 256,
        max_filter_depth: int = 64,
        max_filter_terms: int = 1024,
        max_buffer_size: int | None = None,
    ) -> None:
        if max_buffer_size is None:
            max_buffer_size = 2 * max_pdu_size
        for name, v in (
            ("max_pdu_size", max_pdu_size), ("max_outstanding", max_outstanding),
            ("max_filter_depth", max_filter_depth), ("max_filter_terms", max_filter_terms),
            ("max_buffer_size", max_buffer_size),
        ):
            if type(v) is not int:  # (compiled, the call itself raises this)
                raise TypeError("%s must be an int, got %r" % (name, v))
            if v <= 0:
                raise ValueError("%s must be a positive int, got %r" % (name, v))
        if max_filter_depth > _MAX_FILTER_DEPTH_CAP:
            raise ValueError("max_filter_depth must be at most %d" % _MAX_FILTER_DEPTH_CAP)
        if max_buffer_size < max_pdu_size:
            raise ValueError("max_buffer_size must be at least max_pdu_size")
        self.max_pdu_size = max_pdu_size
        self.max_outstanding = max_outstanding
        self.max_filter_depth = max_filter_depth
        self.max_filter_terms = max_filter_terms
        self.max_buffer_size = max_buffer_size

        self._state = OPEN
        self._buf = bytearray()
        self._pos = 0  # start of unconsumed bytes in _buf
        self._eof = False
        self._fault: str | None = None  # a peer fault found outside next_event, raised by it
        self._pending: tuple[int, Request, tuple[Control, ...]] | None = None
        self._inflight: dict[int, type] = {}  # msgid -> request type (or _StartTLS)
        # Abandoned msgid -> request kind, remembered so that late send()s are
        # dropped. Oldest first; at most _max_abandoned entries.
        self._abandoned: dict[int, type] = {}
        self._max_abandoned = max(1024, max_outstanding)
        self._closed: Closed | None = None

    # ------------------------------------------------------------ introspection

    @property
    def state(self) -> ConnState:
        """The current :class:`ConnState`."""
        return self._state

    @property
    def in_flight(self) -> frozenset[int]:
        """Message IDs yielded as RequestReceived, not abandoned, whose final
        response has not been sent yet."""
        return frozenset(self._inflight)

    @property
    def abandoned(self) -> frozenset[int]:
        """Message IDs the peer abandoned whose final response has not been
        passed to send() (whatever is sent for them returns ``b""``)."""
        return frozenset(self._abandoned)

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet turned into events."""
        return len(self._buf) - self._pos

    # ------------------------------------------------------------ state table

    def _fire(self, trigger: str) -> None:
        new = _TRANSITIONS.get((self._state, trigger))
        if new is None:
            state, self._state = self._state, ERROR
            raise LocalProtocolError("%s is not allowed in state %s" % (trigger, state.name))
        self._state = new

    # ------------------------------------------------------------ bytes in

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes received from the peer; ``b""`` means EOF.

        Never parses and never raises for the peer's faults: an over-full
        buffer is reported by the next call to :meth:`next_event`. Data after
        an Unbind is ignored.

        Raises:
            LocalProtocolError: the connection is in ERROR, or data is fed after EOF.
        """
        if self._state is ERROR:
            raise LocalProtocolError("connection is in ERROR state")
        if self._eof:
            if data:
                self._state = ERROR
                raise LocalProtocolError("receive_data() after EOF")
            return
        if not data:
            self._eof = True
            return
        if self._state is CLOSED or self._fault is not None:
            return
        buf = self._buf
        pos = self._pos
        if pos:
            # Compact lazily: at most one memmove per byte received, amortised.
            if pos == len(buf):
                buf.clear()
                self._pos = pos = 0
            elif pos * 2 >= len(buf):
                del buf[:pos]
                self._pos = pos = 0
        if len(buf) - pos + len(data) > self.max_buffer_size:
            self._fault = "too much unprocessed data (%d bytes buffered)" % (len(buf) - pos + len(data))
            return
        buf += data

    # ------------------------------------------------------------ events out

    def next_event(self) -> Event:
        """Return the next event.

        - ``RequestReceived(msgid, op, controls)``: a request to answer with send().
          Never an Abandon or Unbind.
        - ``Abandoned(msgid)``: an in-flight operation was abandoned. Stop it
          (sending nothing more is fine). It leaves :attr:`in_flight` at once,
          so it never delays a Bind or counts against ``max_outstanding``.
          Whatever is still sent for it returns ``b""`` until its final
          response or until the peer reuses the msgid for a new request (from
          then on sends belong to the new request: stop the old operation
          first). Abandon of an unknown or finished msgid is ignored (RFC 4511
          4.11).
        - ``Closed("unbind")`` / ``Closed("eof")``: no more requests will come
          (returned again on every later call). A partial PDU at EOF is dropped.
        - ``NEED_DATA``: call receive_data().
        - ``PAUSED``: nothing may be processed until the driver sends an answer
          (a Bind or StartTLS response, or any final response when the
          outstanding limit is reached) or calls tls_started(). Stop reading
          from the socket and call next_event() again after that.

        Raises:
            RemoteProtocolError: the peer sent a malformed or oversized PDU, a
                request with message ID 0, a duplicate in-flight message ID,
                too much data, or plaintext after StartTLS. The connection is
                then in ERROR: write notice_of_disconnection() and close.
            LocalProtocolError: the connection was already in ERROR.
        """
        st = self._state
        if st is ERROR:
            raise LocalProtocolError("connection is in ERROR state")
        if self._fault is not None:
            self._state = ERROR
            raise RemoteProtocolError(self._fault)
        if st is CLOSED:
            assert self._closed is not None
            return self._closed
        if st in _PAUSED_STATES:
            return PAUSED
        try:
            return self._next()
        except RemoteProtocolError:
            self._state = ERROR
            raise

    def _read(self) -> tuple[int, Request, tuple[Control, ...]] | None:
        buf = self._buf
        pos = self._pos
        n = peek_frame(buf, pos, self.max_pdu_size)
        if n is None:
            return None
        end = pos + n
        if end == len(buf):  # common case: the buffer held whole PDUs only
            pdu = bytes(buf) if pos == 0 else bytes(memoryview(buf)[pos:])
            buf.clear()
            self._pos = 0
        else:
            pdu = bytes(memoryview(buf)[pos:end])  # one copy; the view dies with the expression
            self._pos = end
        return decode_message(pdu, self.max_filter_depth, self.max_filter_terms)

    def _close(self, reason: str, trigger: str) -> Closed:
        self._fire(trigger)
        self._pending = None
        self._buf = bytearray()
        self._pos = 0
        self._closed = Closed(reason)
        return self._closed

    def _next(self) -> Event:
        inflight = self._inflight
        while True:
            p = self._pending
            if p is None:
                p = self._read()
                if p is None:
                    if self._eof:
                        return self._close("eof", "eof_received")
                    return NEED_DATA
                self._pending = p
            msgid, op, controls = p
            if msgid == 0:
                raise RemoteProtocolError("message ID 0 is reserved for unsolicited notifications")
            if isinstance(op, AbandonRequest):
                self._pending = None
                target = op.msgid
                gone = inflight.pop(target, None)
                if gone is not None:
                    abandoned = self._abandoned
                    if len(abandoned) >= self._max_abandoned:
                        del abandoned[next(iter(abandoned))]  # forget the oldest
                    abandoned[target] = gone
                    return Abandoned(target)
                continue  # unknown, finished or already abandoned: ignore
            if isinstance(op, UnbindRequest):
                return self._close("unbind", "unbind_received")
            if msgid in inflight:
                raise RemoteProtocolError("message ID %d is already in use" % msgid)
            if len(inflight) >= self.max_outstanding:
                return PAUSED
            kind: type = type(op)
            if kind is BindRequest:
                if inflight:
                    return PAUSED
                self._fire("bind_received")
            elif isinstance(op, ExtendedRequest) and op.oid == STARTTLS_OID:
                if inflight:
                    return PAUSED
                self._fire("starttls_received")
                kind = _StartTLS
            self._pending = None
            if self._abandoned:
                self._abandoned.pop(msgid, None)  # the msgid now names the new request
            inflight[msgid] = kind
            return RequestReceived(msgid, op, controls)

    # ------------------------------------------------------------ responses in, bytes out

    def send(self, msgid: int, response: Response, controls: tuple[Control, ...] = ()) -> bytes:
        """Return the bytes of ``response`` to request ``msgid``.

        SearchResultEntry, SearchResultReference and IntermediateResponse keep
        the operation in flight; any other response is final and retires it.
        Sending the BindResponse ends the Bind pause; sending the StartTLS
        ExtendedResponse ends the StartTLS pause if it is not success, and
        otherwise moves to TLS_PENDING until tls_started().

        For an abandoned operation nothing is encoded and ``b""`` is returned
        (its final response makes the core forget it).

        Raises:
            LocalProtocolError: ``msgid`` is not in flight, the response type
                does not answer that request (e.g. an entry for a modify), the
                response cannot be encoded, or the connection is in ERROR. The
                connection is then in ERROR.
        """
        if self._state is ERROR:
            raise LocalProtocolError("connection is in ERROR state")
        t = type(response)
        kind = self._inflight.get(msgid)
        if kind is None:
            late = self._abandoned.get(msgid)
            if late is None:
                self._state = ERROR
                raise LocalProtocolError("message ID %r is not in flight" % (msgid,))
            self._check_answer(late, t)
            if t not in _NON_FINAL:
                del self._abandoned[msgid]
            return b""
        final = t not in _NON_FINAL
        self._check_answer(kind, t)
        try:
            data = encode_response(msgid, response, controls)
        except LocalProtocolError:
            self._state = ERROR
            raise
        if final:
            del self._inflight[msgid]
            if kind is BindRequest or kind is _StartTLS:
                self._after_final(kind, response)
        return data

    def _check_answer(self, kind: type, t: type) -> None:
        if t in _NON_FINAL:
            if kind is SearchRequest or t is IntermediateResponse:
                return
        elif _FINAL_FOR.get(kind) is t:
            return
        self._state = ERROR
        raise LocalProtocolError("%s cannot answer a %s" % (t.__name__, kind.__name__))

    def _after_final(self, kind: type, response: Response) -> None:
        if self._state is CLOSED:
            return
        if kind is BindRequest:
            self._fire("bind_answered")
        elif kind is _StartTLS:
            assert isinstance(response, ExtendedResponse)
            self._fire("starttls_succeeded" if response.code == ResultCode.success else "starttls_failed")

    def tls_started(self) -> None:
        """Tell the core that TLS is now active on the transport (after a
        successful StartTLS response was sent). Ends the TLS_PENDING pause.

        Any bytes received before this call were sent in plaintext after the
        StartTLS request, which the client must not do (and which could be an
        injection attack): the next next_event() then raises RemoteProtocolError.

        Raises:
            LocalProtocolError: not in TLS_PENDING. The connection is then in ERROR.
        """
        if self._state is ERROR:
            raise LocalProtocolError("connection is in ERROR state")
        self._fire("tls_started")
        if self._pending is not None or self._pos != len(self._buf):
            self._fault = "plaintext data received after StartTLS"
            self._pending = None
            self._buf = bytearray()
            self._pos = 0

    def notice_of_disconnection(
        self, code: ResultCode | int = ResultCode.protocolError, message: str = "",
    ) -> bytes:
        """Return a Notice of Disconnection (msgid 0, RFC 4511 4.4.1) to write
        just before closing. Allowed in every state, ERROR included; the
        connection is in ERROR afterwards (it must not be used any more).
        """
        self._state = ERROR
        return notice_of_disconnection(code, message)


__all__ = ["LDAPServerConnection", "ConnState", "STARTTLS_OID"]
