"""LDAPMessage codec (RFC 4511 section 4 and appendix B), both directions.

Server side: :func:`decode_message` (requests in) and :func:`encode_response`
(responses out). Client side (load generator, tests, replication):
:func:`encode_request` and :func:`decode_response`.

Decoding is strict: every length must match its container, nothing may trail,
every LDAPString must be UTF-8, every INTEGER must be in 0..maxInt. Any fault is
a :class:`RemoteProtocolError` (never an IndexError or UnicodeDecodeError).
Encoding takes the frozen values of :mod:`vmdir.proto.messages` and raises
:class:`LocalProtocolError` for values that cannot be put on the wire.

Layer 1: pure, no I/O.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from vmdir.ber._filter import decode_filter, encode_filter
from vmdir.ber._prim import (
    ENUM_SMALL, INT_SMALL, OCTETS, SEQ, SET, T_BOOLEAN, T_ENUM, T_INTEGER, T_SEQUENCE, T_SET, encode_length,
    end_of, expect, header, integer, read_bool, read_octets, read_octets_set, read_string,
    read_string_seq, read_uint, string, uint_value, utf8,
)
from vmdir.proto.messages import (
    NOTICE_OF_DISCONNECTION_OID, AbandonRequest, AddRequest, AddResponse, BindRequest, BindResponse,
    Change, CompareRequest, CompareResponse, Control, DelRequest, DelResponse, ExtendedRequest,
    ExtendedResponse, IntermediateResponse, ModifyDNRequest, ModifyDNResponse, ModifyRequest,
    EncodedSearchResultEntry, ModifyResponse, Request, Response, SearchRequest, SearchResultDone, SearchResultEntry,
    SearchResultReference, UnbindRequest,
)
from vmdir.proto.results import LocalProtocolError, RemoteProtocolError, ResultCode

DEFAULT_MAX_FILTER_DEPTH = 64
DEFAULT_MAX_FILTER_TERMS = 1024

_Decoder = Callable[[bytes, int, int, int, int], Any]

# ================================================================ shared pieces


def _open_message(pdu: bytes) -> tuple[int, int, int, int, int]:
    """Parse the LDAPMessage envelope up to the protocolOp.

    Returns ``(msgid, op_tag, op_start, op_stop, message_end)``.
    """
    end = len(pdu)
    tag, s, e = header(pdu, 0, end)
    if tag != T_SEQUENCE:
        raise RemoteProtocolError("LDAPMessage is not a SEQUENCE")
    if e != end:
        raise RemoteProtocolError("trailing data after LDAPMessage")
    ms, me = expect(pdu, s, e, T_INTEGER, "messageID")
    msgid = uint_value(pdu, ms, me, "messageID")
    tag, s, oe = header(pdu, me, e)
    return msgid, tag, s, oe, e


def _controls_after(d: bytes, i: int, end: int) -> tuple[Control, ...]:
    """Decode the optional ``controls [0]`` that ends an LDAPMessage."""
    if i == end:
        return ()
    cs, ce = expect(d, i, end, 0xA0, "controls")
    end_of(ce, end, "LDAPMessage")
    return decode_controls(d, cs, ce)


def decode_controls(d: bytes, s: int, e: int) -> tuple[Control, ...]:
    """Decode the content of ``Controls`` (SEQUENCE OF Control) in ``d[s:e]``.

    Raises:
        RemoteProtocolError: malformed Control.
    """
    out = []
    j = s
    while j < e:
        cs, ce = expect(d, j, e, T_SEQUENCE, "Control")
        oid, k = read_string(d, cs, ce, "controlType")
        critical = False
        value = None
        if k < ce and d[k] == T_BOOLEAN:
            critical, k = read_bool(d, k, ce, "criticality")
        if k < ce:
            value, k = read_octets(d, k, ce, "controlValue")
        end_of(k, ce, "Control")
        out.append(Control(oid, critical, value))
        j = ce
    return tuple(out)


def encode_controls(controls: tuple[Control, ...]) -> bytes:
    """Return the ``controls [0]`` TLV for a non-empty tuple of controls."""
    parts = []
    for c in controls:
        body = string(c.oid)
        if c.critical:
            body += b"\x01\x01\xff"
        if c.value is not None:
            body += OCTETS[len(c.value)] + c.value
        parts.append(SEQ[len(body)] + body)
    inner = b"".join(parts)
    return b"\xa0" + encode_length(len(inner)) + inner


def _envelope(msgid: int, op: bytes, controls: tuple[Control, ...]) -> bytes:
    mid = INT_SMALL[msgid] if 0 <= msgid < 0x80 else integer(msgid)
    if controls:
        ctl = encode_controls(controls)
        return b"".join((SEQ[len(mid) + len(op) + len(ctl)], mid, op, ctl))
    return b"".join((SEQ[len(mid) + len(op)], mid, op))


def _op(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(body)) + body


def _guard(exc: Exception) -> RemoteProtocolError:
    if isinstance(exc, UnicodeDecodeError):
        return RemoteProtocolError("LDAPString is not valid UTF-8")
    return RemoteProtocolError("malformed LDAPMessage (%s)" % type(exc).__name__)


# ================================================================ server side: requests in


def decode_message(
    pdu: bytes,
    max_filter_depth: int = DEFAULT_MAX_FILTER_DEPTH,
    max_filter_terms: int = DEFAULT_MAX_FILTER_TERMS,
) -> tuple[int, Request, tuple[Control, ...]]:
    """Decode one complete LDAPMessage sent by a client.

    ``pdu`` must hold exactly one message (see :func:`peek_frame`).

    Returns ``(msgid, op, controls)`` where ``op`` is one of the request values
    of :mod:`vmdir.proto.messages` (AbandonRequest and UnbindRequest included).
    The message ID is not checked against 0 here (the connection does that).

    A bind whose authentication choice is neither simple [0] nor sasl [3]
    (for instance Microsoft's Sicily [9]-[11]) decodes as a ``BindRequest``
    with ``password`` and ``sasl_mechanism`` both ``None``: the directory
    answers authMethodNotSupported. Empty and/or filters (RFC 4526) and empty
    value sets in add/modify are decoded as such; the directory judges them.

    Raises:
        RemoteProtocolError: any malformation (bad tag, wrong or overrunning
            lengths, trailing data, invalid UTF-8, integers outside 0..maxInt,
            an unknown protocolOp, a filter deeper than ``max_filter_depth`` or
            with more than ``max_filter_terms`` nodes).
    """
    if type(pdu) is not bytes:
        pdu = bytes(pdu)
    try:
        msgid, tag, s, oe, e = _open_message(pdu)
        dec = _REQUEST_DECODERS.get(tag)
        if dec is None:
            raise RemoteProtocolError("unknown or unexpected protocolOp (tag 0x%02x)" % tag)
        op = dec(pdu, s, oe, max_filter_depth, max_filter_terms)
        controls = _controls_after(pdu, oe, e) if oe != e else ()
    except RemoteProtocolError:
        raise
    except (IndexError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise _guard(exc) from None
    return msgid, op, controls


def _d_bind(d: bytes, s: int, e: int, fd: int, ft: int) -> BindRequest:
    version, j = read_uint(d, s, e, T_INTEGER, "version")
    name, j = read_string(d, j, e, "name")
    tag, vs, ve = header(d, j, e)
    end_of(ve, e, "BindRequest")
    if tag == 0x80:
        return BindRequest(version, name, d[vs:ve])
    if tag == 0xA3:
        mech, k = read_string(d, vs, ve, "SASL mechanism")
        creds = None
        if k < ve:
            creds, k = read_octets(d, k, ve, "SASL credentials")
        end_of(k, ve, "SaslCredentials")
        return BindRequest(version, name, None, mech, creds)
    if tag & 0xC0 == 0x80 and (tag & 0x1F) not in (0, 3):
        return BindRequest(version, name)  # unknown method: authMethodNotSupported
    raise RemoteProtocolError("bad AuthenticationChoice (tag 0x%02x)" % tag)


_UNBIND = UnbindRequest()


def _d_unbind(d: bytes, s: int, e: int, fd: int, ft: int) -> UnbindRequest:
    if s != e:
        raise RemoteProtocolError("UnbindRequest must be an empty NULL")
    return _UNBIND


def _d_search(d: bytes, s: int, e: int, fd: int, ft: int) -> SearchRequest:
    base, j = read_string(d, s, e, "baseObject")
    scope, j = read_uint(d, j, e, T_ENUM, "scope")
    if scope > 3:
        raise RemoteProtocolError("bad search scope %d" % scope)
    deref, j = read_uint(d, j, e, T_ENUM, "derefAliases")
    if deref > 3:
        raise RemoteProtocolError("bad derefAliases %d" % deref)
    size_limit, j = read_uint(d, j, e, T_INTEGER, "sizeLimit")
    time_limit, j = read_uint(d, j, e, T_INTEGER, "timeLimit")
    types_only, j = read_bool(d, j, e, "typesOnly")
    flt, j = decode_filter(d, j, e, fd, ft)
    as_, ae = expect(d, j, e, T_SEQUENCE, "attributes")
    end_of(ae, e, "SearchRequest")
    return SearchRequest(
        base, scope, deref, size_limit, time_limit, types_only, flt,
        read_string_seq(d, as_, ae, "attributes"),
    )


def _partial_attribute(d: bytes, s: int, e: int) -> tuple[str, tuple[bytes, ...]]:
    attr, j = read_string(d, s, e, "attribute type")
    vs, ve = expect(d, j, e, T_SET, "vals")
    end_of(ve, e, "attribute")
    return attr, read_octets_set(d, vs, ve, "vals")


def _attribute_list(d: bytes, s: int, e: int) -> tuple[tuple[str, tuple[bytes, ...]], ...]:
    """Decode the content of an AttributeList / PartialAttributeList."""
    out: list[tuple[str, tuple[bytes, ...]]] = []
    append = out.append
    j = s
    while j < e:
        # Fast path: short-form SEQUENCE { OCTET STRING, SET OF OCTET STRING } of one value.
        if j + 2 <= e and d[j] == 0x30 and d[j + 1] < 0x80:
            pe = j + 2 + d[j + 1]
            ts = j + 4
            if pe <= e and ts <= pe and d[j + 2] == 0x04 and d[j + 3] < 0x80:
                te = ts + d[j + 3]
                if te + 4 <= pe and d[te] == 0x31 and d[te + 1] < 0x80 and te + 2 + d[te + 1] == pe \
                        and d[te + 2] == 0x04 and d[te + 3] < 0x80 and te + 4 + d[te + 3] == pe:
                    append((d[ts:te].decode(), (d[te + 4:pe],)))
                    j = pe
                    continue
            ps, pe = expect(d, j, e, T_SEQUENCE, "attribute")
        else:
            ps, pe = expect(d, j, e, T_SEQUENCE, "attribute")
        append(_partial_attribute(d, ps, pe))
        j = pe
    return tuple(out)


def _d_modify(d: bytes, s: int, e: int, fd: int, ft: int) -> ModifyRequest:
    dn, j = read_string(d, s, e, "object")
    qs, qe = expect(d, j, e, T_SEQUENCE, "changes")
    end_of(qe, e, "ModifyRequest")
    changes = []
    k = qs
    while k < qe:
        cs, ce = expect(d, k, qe, T_SEQUENCE, "change")
        op, m = read_uint(d, cs, ce, T_ENUM, "operation")
        if op > 3:
            raise RemoteProtocolError("bad modify operation %d" % op)
        ps, pe = expect(d, m, ce, T_SEQUENCE, "modification")
        end_of(pe, ce, "change")
        attr, vals = _partial_attribute(d, ps, pe)
        changes.append(Change(op, attr, vals))
        k = ce
    return ModifyRequest(dn, tuple(changes))


def _d_add(d: bytes, s: int, e: int, fd: int, ft: int) -> AddRequest:
    dn, j = read_string(d, s, e, "entry")
    ls, le = expect(d, j, e, T_SEQUENCE, "attributes")
    end_of(le, e, "AddRequest")
    return AddRequest(dn, _attribute_list(d, ls, le))


def _d_del(d: bytes, s: int, e: int, fd: int, ft: int) -> DelRequest:
    return DelRequest(utf8(d, s, e, "DelRequest"))


def _d_moddn(d: bytes, s: int, e: int, fd: int, ft: int) -> ModifyDNRequest:
    dn, j = read_string(d, s, e, "entry")
    rdn, j = read_string(d, j, e, "newrdn")
    delete_old, j = read_bool(d, j, e, "deleteoldrdn")
    sup = None
    if j < e:
        sup, j = read_string(d, j, e, "newSuperior", 0x80)
    end_of(j, e, "ModifyDNRequest")
    return ModifyDNRequest(dn, rdn, delete_old, sup)


def _d_compare(d: bytes, s: int, e: int, fd: int, ft: int) -> CompareRequest:
    dn, j = read_string(d, s, e, "entry")
    as_, ae = expect(d, j, e, T_SEQUENCE, "ava")
    end_of(ae, e, "CompareRequest")
    attr, k = read_string(d, as_, ae, "attributeDesc")
    value, k = read_octets(d, k, ae, "assertionValue")
    end_of(k, ae, "AttributeValueAssertion")
    return CompareRequest(dn, attr, value)


def _d_abandon(d: bytes, s: int, e: int, fd: int, ft: int) -> AbandonRequest:
    return AbandonRequest(uint_value(d, s, e, "AbandonRequest"))


def _d_extended(d: bytes, s: int, e: int, fd: int, ft: int) -> ExtendedRequest:
    oid, j = read_string(d, s, e, "requestName", 0x80)
    value = None
    if j < e:
        value, j = read_octets(d, j, e, "requestValue", 0x81)
    end_of(j, e, "ExtendedRequest")
    return ExtendedRequest(oid, value)


_REQUEST_DECODERS: dict[int, _Decoder] = {
    0x60: _d_bind, 0x42: _d_unbind, 0x63: _d_search, 0x66: _d_modify, 0x68: _d_add,
    0x4A: _d_del, 0x6C: _d_moddn, 0x6E: _d_compare, 0x50: _d_abandon, 0x77: _d_extended,
}

# ================================================================ server side: responses out

_EMPTY_DN_MSG = b"\x04\x00\x04\x00"


def _result_body(r: Any) -> bytes:
    code = r.code
    c = ENUM_SMALL[code] if 0 <= code < 0x80 else integer(code, T_ENUM)
    if r.matched_dn or r.message:
        return c + string(r.matched_dn) + string(r.message)
    return c + _EMPTY_DN_MSG


def _result_encoder(tag: int) -> Callable[[Any], bytes]:
    tb = bytes((tag,))
    # Whole protocolOp for (code, "", "") precomputed: the common answers.
    cache = {int(c): _op(tag, ENUM_SMALL[c] + _EMPTY_DN_MSG) for c in ResultCode}

    def enc(r: Any) -> bytes:
        if not r.matched_dn and not r.message:
            op = cache.get(r.code)
            if op is not None:
                return op
        body = _result_body(r)
        return tb + encode_length(len(body)) + body

    return enc


def _e_bind_response(r: BindResponse) -> bytes:
    body = _result_body(r)
    if r.sasl_credentials is not None:
        body += _op(0x87, r.sasl_credentials)
    return _op(0x61, body)


def _e_extended_response(r: ExtendedResponse) -> bytes:
    body = _result_body(r)
    if r.name is not None:
        body += _op(0x8A, r.name.encode())
    if r.value is not None:
        body += _op(0x8B, r.value)
    return _op(0x78, body)


def _e_intermediate(r: IntermediateResponse) -> bytes:
    body = b""
    if r.name is not None:
        body += _op(0x80, r.name.encode())
    if r.value is not None:
        body += _op(0x81, r.value)
    return _op(0x79, body)


_DESC_CACHE: dict[str, bytes] = {}  # attribute description -> its OCTET STRING TLV
_DESC_CACHE_MAX = 4096


def encode_entry(dn: str, attributes: tuple[tuple[str, tuple[bytes, ...]], ...]) -> bytes:
    """Return the SearchResultEntry protocolOp TLV ([APPLICATION 4]).

    Also the value of the pre-read and post-read response controls (RFC 4527).
    """
    return encode_entry_raw(dn, encode_attribute_list(attributes))


def encode_entry_raw(dn: str, al: bytes) -> bytes:
    """The SearchResultEntry TLV for ``dn`` and an already encoded attribute list content."""
    b = dn.encode()
    body = b"".join((OCTETS[len(b)], b, SEQ[len(al)], al))
    return b"\x64" + encode_length(len(body)) + body


def encode_attribute_list(attributes: Iterable[tuple[str, Sequence[bytes]]]) -> bytes:
    """The content of a PartialAttributeList: each PartialAttribute SEQUENCE, concatenated.

    Lists encoded separately can be joined by concatenation.
    """
    oh = OCTETS
    cache = _DESC_CACHE
    parts: list[bytes] = []
    append = parts.append
    for desc, vals in attributes:
        a = cache.get(desc)
        if a is None:
            b = desc.encode()
            a = oh[len(b)] + b
            if len(cache) >= _DESC_CACHE_MAX:
                cache.clear()
            cache[desc] = a
        if len(vals) == 1:
            v = vals[0]
            vs = oh[len(v)] + v
        else:
            vs = b"".join([oh[len(v)] + v for v in vals])
        inner = a + SET[len(vs)] + vs
        append(SEQ[len(inner)] + inner)
    return b"".join(parts)


def _e_entry(r: SearchResultEntry) -> bytes:
    return encode_entry(r.dn, r.attributes)


def _e_encoded_entry(r: EncodedSearchResultEntry) -> bytes:
    return encode_entry_raw(r.dn, r.attributes_ber)


def _e_reference(r: SearchResultReference) -> bytes:
    if not r.uris:
        raise LocalProtocolError("SearchResultReference needs at least one URI")
    return _op(0x73, b"".join([string(u) for u in r.uris]))


_RESPONSE_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    SearchResultEntry: _e_entry,
    EncodedSearchResultEntry: _e_encoded_entry,
    SearchResultDone: _result_encoder(0x65),
    ModifyResponse: _result_encoder(0x67),
    AddResponse: _result_encoder(0x69),
    DelResponse: _result_encoder(0x6B),
    ModifyDNResponse: _result_encoder(0x6D),
    CompareResponse: _result_encoder(0x6F),
    BindResponse: _e_bind_response,
    ExtendedResponse: _e_extended_response,
    IntermediateResponse: _e_intermediate,
    SearchResultReference: _e_reference,
}


def encode_response(msgid: int, response: object, controls: tuple[Control, ...] = ()) -> bytes:
    """Return the LDAPMessage carrying ``response`` under ``msgid``. (``response`` is typed
    ``object``: the module is compiled, and a parameter typed with the message union would turn
    anything else into a TypeError before the LocalProtocolError promised here.)

    Raises:
        LocalProtocolError: ``response`` is not a response value, ``msgid`` is
            outside 0..maxInt, or a field cannot be encoded (wrong type, a
            string that is not encodable as UTF-8, an empty referral list...).
    """
    enc = _RESPONSE_ENCODERS.get(type(response))
    if enc is None:
        raise LocalProtocolError("not an LDAP response: %r" % (response,))
    try:
        return _envelope(msgid, enc(response), controls)
    except (TypeError, AttributeError, ValueError, OverflowError) as exc:
        raise LocalProtocolError("cannot encode %s: %s" % (type(response).__name__, exc)) from exc


def notice_of_disconnection(code: ResultCode | int, message: str) -> bytes:
    """Return the Notice of Disconnection (RFC 4511 section 4.4.1).

    An unsolicited ExtendedResponse with msgid 0, responseName
    1.3.6.1.4.1.1466.20036 and no value. The sender closes the connection
    right after writing it.
    """
    return encode_response(0, ExtendedResponse(ResultCode(code), "", message, NOTICE_OF_DISCONNECTION_OID))


# ================================================================ client side: requests out


def _e_bind(r: BindRequest) -> bytes:
    body = integer(r.version) + string(r.name)
    if r.sasl_mechanism is not None:
        sasl = string(r.sasl_mechanism)
        if r.sasl_credentials is not None:
            sasl += OCTETS[len(r.sasl_credentials)] + r.sasl_credentials
        body += _op(0xA3, sasl)
    elif r.password is not None:
        body += _op(0x80, r.password)
    else:
        raise LocalProtocolError("BindRequest needs a password or a SASL mechanism")
    return _op(0x60, body)


def _e_unbind(r: UnbindRequest) -> bytes:
    return b"\x42\x00"


def _e_search(r: SearchRequest) -> bytes:
    if not 0 <= r.scope <= 3 or not 0 <= r.deref <= 3:
        raise LocalProtocolError("bad scope or derefAliases")
    body = b"".join((
        string(r.base),
        ENUM_SMALL[r.scope], ENUM_SMALL[r.deref],
        integer(r.size_limit), integer(r.time_limit),
        b"\x01\x01\xff" if r.types_only else b"\x01\x01\x00",
        encode_filter(r.filter),
        _seq(b"".join([string(a) for a in r.attributes])),
    ))
    return _op(0x63, body)


def _seq(content: bytes) -> bytes:
    return SEQ[len(content)] + content


def _partial(attr: str, vals: tuple[bytes, ...]) -> bytes:
    vs = b"".join([OCTETS[len(v)] + v for v in vals])
    return _seq(string(attr) + SET[len(vs)] + vs)


def _e_modify(r: ModifyRequest) -> bytes:
    parts: list[bytes] = []
    for c in r.changes:
        if not 0 <= c.op <= 3:
            raise LocalProtocolError("bad modify operation %r" % (c.op,))
        parts.append(_seq(ENUM_SMALL[c.op] + _partial(c.attr, c.values)))
    return _op(0x66, string(r.dn) + _seq(b"".join(parts)))


def _e_add(r: AddRequest) -> bytes:
    return _op(0x68, string(r.dn) + _seq(b"".join([_partial(a, v) for a, v in r.attributes])))


def _e_del(r: DelRequest) -> bytes:
    return _op(0x4A, r.dn.encode())


def _e_moddn(r: ModifyDNRequest) -> bytes:
    body = string(r.dn) + string(r.new_rdn) + (b"\x01\x01\xff" if r.delete_old_rdn else b"\x01\x01\x00")
    if r.new_superior is not None:
        body += _op(0x80, r.new_superior.encode())
    return _op(0x6C, body)


def _e_compare(r: CompareRequest) -> bytes:
    return _op(0x6E, string(r.dn) + _seq(string(r.attr) + OCTETS[len(r.value)] + r.value))


def _e_abandon(r: AbandonRequest) -> bytes:
    return integer(r.msgid, 0x50)


def _e_extended(r: ExtendedRequest) -> bytes:
    body = _op(0x80, r.oid.encode())
    if r.value is not None:
        body += _op(0x81, r.value)
    return _op(0x77, body)


_REQUEST_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    SearchRequest: _e_search, BindRequest: _e_bind, ModifyRequest: _e_modify, AddRequest: _e_add,
    DelRequest: _e_del, ModifyDNRequest: _e_moddn, CompareRequest: _e_compare,
    AbandonRequest: _e_abandon, ExtendedRequest: _e_extended, UnbindRequest: _e_unbind,
}


def encode_request(msgid: int, request: object, controls: tuple[Control, ...] = ()) -> bytes:
    """Return the LDAPMessage carrying ``request`` under ``msgid`` (client side). (``object``
    for the reason ``encode_response`` gives.)

    Raises:
        LocalProtocolError: ``request`` is not a request value or has a field
            that cannot be encoded (bad scope, negative limit, a bind with
            neither password nor SASL mechanism, an empty Substrings filter...).
    """
    enc = _REQUEST_ENCODERS.get(type(request))
    if enc is None:
        raise LocalProtocolError("not an LDAP request: %r" % (request,))
    try:
        return _envelope(msgid, enc(request), controls)
    except (TypeError, AttributeError, ValueError, OverflowError, RecursionError) as exc:
        raise LocalProtocolError("cannot encode %s: %s" % (type(request).__name__, exc)) from exc


# ================================================================ client side: responses in

_RESULT_CODES: dict[int, ResultCode] = {int(c): c for c in ResultCode}


def _d_result(d: bytes, s: int, e: int) -> tuple[Any, str, str, int]:
    """Decode the LDAPResult fields; return ``(code, matched_dn, message, next)``.

    A referral [3] is skipped (the message values have no field for it). An
    unknown result code is returned as a plain int.
    """
    code, j = read_uint(d, s, e, T_ENUM, "resultCode")
    matched, j = read_string(d, j, e, "matchedDN")
    message, j = read_string(d, j, e, "diagnosticMessage")
    if j < e and d[j] == 0xA3:
        _, j = expect(d, j, e, 0xA3, "referral")
    rc = _RESULT_CODES.get(code)
    return (code if rc is None else rc), matched, message, j


def _plain_result(cls: type) -> Callable[[bytes, int, int], Any]:
    def dec(d: bytes, s: int, e: int) -> Any:
        code, matched, message, j = _d_result(d, s, e)
        end_of(j, e, cls.__name__)
        return cls(code, matched, message)

    return dec


def _dr_bind(d: bytes, s: int, e: int) -> BindResponse:
    code, matched, message, j = _d_result(d, s, e)
    creds = None
    if j < e:
        creds, j = read_octets(d, j, e, "serverSaslCreds", 0x87)
    end_of(j, e, "BindResponse")
    return BindResponse(code, matched, message, creds)


def _dr_extended(d: bytes, s: int, e: int) -> ExtendedResponse:
    code, matched, message, j = _d_result(d, s, e)
    name = value = None
    if j < e and d[j] == 0x8A:
        name, j = read_string(d, j, e, "responseName", 0x8A)
    if j < e:
        value, j = read_octets(d, j, e, "responseValue", 0x8B)
    end_of(j, e, "ExtendedResponse")
    return ExtendedResponse(code, matched, message, name, value)


def _dr_intermediate(d: bytes, s: int, e: int) -> IntermediateResponse:
    name = value = None
    j = s
    if j < e and d[j] == 0x80:
        name, j = read_string(d, j, e, "responseName", 0x80)
    if j < e:
        value, j = read_octets(d, j, e, "responseValue", 0x81)
    end_of(j, e, "IntermediateResponse")
    return IntermediateResponse(name, value)


def _dr_entry(d: bytes, s: int, e: int) -> SearchResultEntry:
    dn, j = read_string(d, s, e, "objectName")
    ls, le = expect(d, j, e, T_SEQUENCE, "attributes")
    end_of(le, e, "SearchResultEntry")
    return SearchResultEntry(dn, _attribute_list(d, ls, le))


def _dr_reference(d: bytes, s: int, e: int) -> SearchResultReference:
    uris = read_string_seq(d, s, e, "URI")
    if not uris:
        raise RemoteProtocolError("empty SearchResultReference")
    return SearchResultReference(uris)


def decode_entry(value: bytes) -> SearchResultEntry:
    """Decode a standalone SearchResultEntry TLV (the pre/post-read control value).

    Raises:
        RemoteProtocolError: malformed entry or trailing data.
    """
    value = bytes(value)
    try:
        s, e = expect(value, 0, len(value), 0x64, "SearchResultEntry")
        end_of(e, len(value), "SearchResultEntry")
        return _dr_entry(value, s, e)
    except RemoteProtocolError:
        raise
    except (IndexError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise _guard(exc) from None


_RESPONSE_DECODERS: dict[int, Callable[[bytes, int, int], Any]] = {
    0x61: _dr_bind, 0x64: _dr_entry, 0x65: _plain_result(SearchResultDone),
    0x73: _dr_reference, 0x67: _plain_result(ModifyResponse), 0x69: _plain_result(AddResponse),
    0x6B: _plain_result(DelResponse), 0x6D: _plain_result(ModifyDNResponse),
    0x6F: _plain_result(CompareResponse), 0x78: _dr_extended, 0x79: _dr_intermediate,
}


def decode_response(pdu: bytes) -> tuple[int, Response, tuple[Control, ...]]:
    """Decode one complete LDAPMessage sent by a server (client side).

    Returns ``(msgid, response, controls)``. A result code outside
    :class:`ResultCode` is kept as a plain ``int``; an LDAPResult referral
    field is skipped.

    Raises:
        RemoteProtocolError: any malformation, or a protocolOp that is not a
            response.
    """
    if type(pdu) is not bytes:
        pdu = bytes(pdu)
    try:
        msgid, tag, s, oe, e = _open_message(pdu)
        dec = _RESPONSE_DECODERS.get(tag)
        if dec is None:
            raise RemoteProtocolError("unknown or unexpected protocolOp (tag 0x%02x)" % tag)
        op = dec(pdu, s, oe)
        controls = _controls_after(pdu, oe, e) if oe != e else ()
    except RemoteProtocolError:
        raise
    except (IndexError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise _guard(exc) from None
    return msgid, op, controls


__all__ = [
    "decode_message", "encode_response", "notice_of_disconnection", "encode_request",
    "decode_response", "encode_entry", "decode_entry", "encode_controls", "decode_controls",
]
