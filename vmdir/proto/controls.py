"""Values of the LDAP controls and extended operations the directory supports.

Pure encode/decode of ``Control.value`` / ``ExtendedRequest.value`` payloads,
built on the primitives of :mod:`vmdir.ber` (speed does not matter here, but one
codec is less to trust than two). Decoders are used server side on client input:
a bad value raises ``LDAPError(protocolError)``, which the directory turns into
the operation's result; it is never a disconnect. Encoders raise
:class:`LocalProtocolError` for values that cannot be encoded.

Layer 1: pure, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass

from vmdir.ber import (
    T_ENUM, T_INTEGER, T_SEQUENCE, decode_entry, decode_filter_value, encode_entry, encode_filter, end_of,
    expect, header, integer, octets, read_octets, read_string, read_string_seq, read_uint, string, tlv,
)
from vmdir.proto.messages import Control, Filter, SearchResultEntry
from vmdir.proto.results import LDAPError, LocalProtocolError, RemoteProtocolError, ResultCode

# ---------------------------------------------------------------- OIDs

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"  # RFC 2696
SORT_REQUEST_OID = "1.2.840.113556.1.4.473"  # RFC 2891
SORT_RESPONSE_OID = "1.2.840.113556.1.4.474"  # RFC 2891
ASSERTION_OID = "1.3.6.1.1.12"  # RFC 4528
PRE_READ_OID = "1.3.6.1.1.13.1"  # RFC 4527
POST_READ_OID = "1.3.6.1.1.13.2"  # RFC 4527
SUBTREE_DELETE_OID = "1.2.840.113556.1.4.805"  # draft-armijo-ldap-treedelete
MANAGE_DSA_IT_OID = "2.16.840.1.113730.3.4.2"  # RFC 3296
PERMISSIVE_MODIFY_OID = "1.2.840.113556.1.4.1413"  # MS-ADTS, OpenLDAP
PPOLICY_OID = "1.3.6.1.4.1.42.2.27.8.5.1"  # draft-behera-ldap-password-policy

PASSWD_MODIFY_OID = "1.3.6.1.4.1.4203.1.11.1"  # RFC 3062 (extended operation)
WHOAMI_OID = "1.3.6.1.4.1.4203.1.11.3"  # RFC 4532 (extended operation)
STARTTLS_OID = "1.3.6.1.4.1.1466.20037"  # RFC 4511 4.14 (extended operation)


def _bad(what: str, detail: str = "") -> LDAPError:
    msg = "malformed %s value" % what
    if detail:
        msg += ": " + detail
    return LDAPError(ResultCode.protocolError, msg)


def _need(value: bytes | None, what: str) -> bytes:
    if value is None:
        raise _bad(what, "value is missing")
    return bytes(value)


def _sequence(value: bytes, what: str) -> tuple[int, int]:
    """Return the content bounds of the SEQUENCE that must be all of ``value``."""
    s, e = expect(value, 0, len(value), T_SEQUENCE, what)
    end_of(e, len(value), what)
    return s, e


def require_no_value(control: Control) -> None:
    """Check a control that takes no value (subtree delete, manageDsaIT,
    permissive modify, ppolicy request).

    Raises:
        LDAPError: protocolError if the control carries a value.
    """
    if control.value is not None:
        raise _bad(control.oid, "this control takes no value")


# ---------------------------------------------------------------- paged results (RFC 2696)


@dataclass(frozen=True, slots=True)
class PagedResults:
    """``realSearchControlValue ::= SEQUENCE { size INTEGER (0..maxInt), cookie OCTET STRING }``.

    Request: ``size`` is the page size wanted. Response: ``size`` is the
    estimated total (0 if unknown) and an empty ``cookie`` ends the search.
    """

    size: int
    cookie: bytes = b""


def encode_paged_results(v: PagedResults) -> bytes:
    """Return the paged results control value."""
    body = integer(v.size) + octets(v.cookie)
    return tlv(T_SEQUENCE, body)


def decode_paged_results(value: bytes | None) -> PagedResults:
    """Decode a paged results control value (request or response).

    Raises:
        LDAPError: protocolError if absent or malformed.
    """
    d = _need(value, "paged results")
    try:
        s, e = _sequence(d, "paged results")
        size, j = read_uint(d, s, e, T_INTEGER, "size")
        cookie, j = read_octets(d, j, e, "cookie")
        end_of(j, e, "paged results")
    except RemoteProtocolError as exc:
        raise _bad("paged results", exc.message) from None
    return PagedResults(size, cookie)


# ---------------------------------------------------------------- server-side sort (RFC 2891)


@dataclass(frozen=True, slots=True)
class SortKey:
    attr: str
    ordering_rule: str | None = None
    reverse: bool = False


def encode_sort_request(keys: tuple[SortKey, ...]) -> bytes:
    """Return the sort request control value (``SortKeyList``)."""
    parts = []
    for k in keys:
        body = string(k.attr)
        if k.ordering_rule is not None:
            body += tlv(0x80, k.ordering_rule.encode())
        if k.reverse:
            body += b"\x81\x01\xff"
        parts.append(tlv(T_SEQUENCE, body))
    return tlv(T_SEQUENCE, b"".join(parts))


def decode_sort_request(value: bytes | None) -> tuple[SortKey, ...]:
    """Decode ``SortKeyList ::= SEQUENCE OF SEQUENCE { attributeType,
    orderingRule [0] MatchingRuleId OPTIONAL, reverseOrder [1] BOOLEAN DEFAULT FALSE }``.

    Raises:
        LDAPError: protocolError if absent, malformed or empty.
    """
    d = _need(value, "sort request")
    keys = []
    try:
        s, e = _sequence(d, "sort request")
        j = s
        while j < e:
            ks, ke = expect(d, j, e, T_SEQUENCE, "SortKey")
            attr, k = read_string(d, ks, ke, "attributeType")
            rule = None
            reverse = False
            if k < ke and d[k] == 0x80:
                rule, k = read_string(d, k, ke, "orderingRule", 0x80)
            if k < ke:
                reverse, k = read_bool_tagged(d, k, ke, 0x81, "reverseOrder")
            end_of(k, ke, "SortKey")
            keys.append(SortKey(attr, rule, reverse))
            j = ke
    except RemoteProtocolError as exc:
        raise _bad("sort request", exc.message) from None
    if not keys:
        raise _bad("sort request", "no sort keys")
    return tuple(keys)


def read_bool_tagged(d: bytes, i: int, end: int, tag: int, what: str) -> tuple[bool, int]:
    """Read an implicitly tagged BOOLEAN; return ``(value, next_index)``."""
    s, e = expect(d, i, end, tag, what)
    if e - s != 1:
        raise RemoteProtocolError("%s: BOOLEAN must be one octet" % what)
    return d[s] != 0, e


@dataclass(frozen=True, slots=True)
class SortResult:
    """``SortResult ::= SEQUENCE { sortResult ENUMERATED, attributeType [0] OPTIONAL }``.

    ``code`` is one of the result codes RFC 2891 lists (success,
    operationsError, timeLimitExceeded, strongerAuthRequired,
    adminLimitExceeded, noSuchAttribute, inappropriateMatching,
    insufficientAccessRights, busy, unwillingToPerform, other).
    """

    code: int
    attr: str | None = None


def encode_sort_response(v: SortResult) -> bytes:
    """Return the sort response control value."""
    body = integer(int(v.code), T_ENUM)
    if v.attr is not None:
        body += tlv(0x80, v.attr.encode())
    return tlv(T_SEQUENCE, body)


def decode_sort_response(value: bytes | None) -> SortResult:
    """Decode a sort response control value (client side).

    Raises:
        LDAPError: protocolError if absent or malformed.
    """
    d = _need(value, "sort response")
    try:
        s, e = _sequence(d, "sort response")
        code, j = read_uint(d, s, e, T_ENUM, "sortResult")
        attr = None
        if j < e:
            attr, j = read_string(d, j, e, "attributeType", 0x80)
        end_of(j, e, "sort response")
    except RemoteProtocolError as exc:
        raise _bad("sort response", exc.message) from None
    try:
        code = ResultCode(code)
    except ValueError:
        pass
    return SortResult(code, attr)


# ---------------------------------------------------------------- assertion (RFC 4528)


def encode_assertion(f: Filter) -> bytes:
    """Return the assertion control value (a BER Filter)."""
    return encode_filter(f)


def decode_assertion(value: bytes | None, max_depth: int = 64, max_terms: int = 1024) -> Filter:
    """Decode the assertion control value, with the same limits as search filters.

    Raises:
        LDAPError: protocolError if absent, malformed or over the limits.
    """
    d = _need(value, "assertion")
    try:
        return decode_filter_value(d, max_depth, max_terms)
    except RemoteProtocolError as exc:
        raise _bad("assertion", exc.message) from None


# ---------------------------------------------------------------- pre-read / post-read (RFC 4527)


def encode_read_entry_request(attributes: tuple[str, ...]) -> bytes:
    """Return the pre/post-read request value (``AttributeSelection``)."""
    return tlv(T_SEQUENCE, b"".join([string(a) for a in attributes]))


def decode_read_entry_request(value: bytes | None) -> tuple[str, ...]:
    """Decode the pre/post-read request value: ``SEQUENCE OF LDAPString``.

    Raises:
        LDAPError: protocolError if absent or malformed.
    """
    d = _need(value, "read entry request")
    try:
        s, e = _sequence(d, "AttributeSelection")
        return read_string_seq(d, s, e, "AttributeSelection")
    except RemoteProtocolError as exc:
        raise _bad("read entry request", exc.message) from None


def encode_read_entry_response(entry: SearchResultEntry) -> bytes:
    """Return the pre/post-read response value: the entry encoded as a
    SearchResultEntry ([APPLICATION 4])."""
    return encode_entry(entry.dn, entry.attributes)


def decode_read_entry_response(value: bytes | None) -> SearchResultEntry:
    """Decode a pre/post-read response value (client side).

    Raises:
        LDAPError: protocolError if absent or malformed.
    """
    d = _need(value, "read entry response")
    try:
        return decode_entry(d)
    except RemoteProtocolError as exc:
        raise _bad("read entry response", exc.message) from None


# ---------------------------------------------------------------- password policy (draft-behera)


@dataclass(frozen=True, slots=True)
class PasswordPolicyResponse:
    """``PasswordPolicyResponseValue``: at most one warning, and an optional error.

    ``error`` codes: 0 passwordExpired, 1 accountLocked, 2 changeAfterReset,
    3 passwordModNotAllowed, 4 mustSupplyOldPassword, 5 insufficientPasswordQuality,
    6 passwordTooShort, 7 passwordTooYoung, 8 passwordInHistory.
    """

    time_before_expiration: int | None = None
    grace_authns_remaining: int | None = None
    error: int | None = None


def encode_ppolicy_response(v: PasswordPolicyResponse) -> bytes:
    """Return the password policy response control value.

    Raises:
        LocalProtocolError: both warnings are set, or a number is out of range.
    """
    body = b""
    if v.time_before_expiration is not None and v.grace_authns_remaining is not None:
        raise LocalProtocolError("ppolicy response carries at most one warning")
    if v.time_before_expiration is not None:
        body += tlv(0xA0, integer(v.time_before_expiration, 0x80))
    elif v.grace_authns_remaining is not None:
        body += tlv(0xA0, integer(v.grace_authns_remaining, 0x81))
    if v.error is not None:
        body += integer(v.error, 0x81)
    return tlv(T_SEQUENCE, body)


def decode_ppolicy_response(value: bytes | None) -> PasswordPolicyResponse:
    """Decode a password policy response control value (client side).

    Raises:
        LDAPError: protocolError if absent or malformed.
    """
    d = _need(value, "ppolicy response")
    tbe = grace = err = None
    try:
        s, e = _sequence(d, "ppolicy response")
        j = s
        if j < e and d[j] == 0xA0:
            ws, we = expect(d, j, e, 0xA0, "warning")
            tag, _, _ = header(d, ws, we)
            if tag == 0x80:
                tbe, k = read_uint(d, ws, we, 0x80, "timeBeforeExpiration")
            else:
                grace, k = read_uint(d, ws, we, 0x81, "graceAuthNsRemaining")
            end_of(k, we, "warning")
            j = we
        if j < e:
            err, j = read_uint(d, j, e, 0x81, "error")
        end_of(j, e, "ppolicy response")
    except RemoteProtocolError as exc:
        raise _bad("ppolicy response", exc.message) from None
    return PasswordPolicyResponse(tbe, grace, err)


# ---------------------------------------------------------------- Password Modify (RFC 3062)


@dataclass(frozen=True, slots=True)
class PasswdModifyRequest:
    """``PasswdModifyRequestValue ::= SEQUENCE { userIdentity [0] OCTET STRING OPTIONAL,
    oldPasswd [1] OCTET STRING OPTIONAL, newPasswd [2] OCTET STRING OPTIONAL }``.

    ``user`` is decoded as UTF-8 (it names a user: a DN or an authzId).
    """

    user: str | None = None
    old_password: bytes | None = None
    new_password: bytes | None = None


def encode_passwd_modify_request(v: PasswdModifyRequest) -> bytes:
    """Return the Password Modify request value."""
    body = b""
    if v.user is not None:
        body += tlv(0x80, v.user.encode())
    if v.old_password is not None:
        body += tlv(0x81, v.old_password)
    if v.new_password is not None:
        body += tlv(0x82, v.new_password)
    return tlv(T_SEQUENCE, body)


def decode_passwd_modify_request(value: bytes | None) -> PasswdModifyRequest:
    """Decode the Password Modify request value. An absent value means all
    three fields are absent (RFC 3062 section 2).

    Raises:
        LDAPError: protocolError if malformed (bad tags, order, duplicates,
            invalid UTF-8 in userIdentity).
    """
    if value is None:
        return PasswdModifyRequest()
    d = bytes(value)
    fields: list[bytes | None] = [None, None, None]
    try:
        s, e = _sequence(d, "Password Modify request")
        j = s
        last = -1
        while j < e:
            tag, vs, ve = header(d, j, e)
            n = tag - 0x80
            if not 0 <= n <= 2 or n <= last:
                raise RemoteProtocolError("bad or out-of-order element (tag 0x%02x)" % tag)
            last = n
            fields[n] = d[vs:ve]
            j = ve
        user = None
        if fields[0] is not None:
            try:
                user = fields[0].decode()
            except UnicodeDecodeError:
                raise RemoteProtocolError("userIdentity is not valid UTF-8") from None
    except RemoteProtocolError as exc:
        raise _bad("Password Modify request", exc.message) from None
    return PasswdModifyRequest(user, fields[1], fields[2])


def encode_passwd_modify_response(gen_password: bytes | None) -> bytes | None:
    """Return the Password Modify response value: ``SEQUENCE { genPasswd [0] }``,
    or ``None`` (no responseValue) when no password was generated."""
    if gen_password is None:
        return None
    return tlv(T_SEQUENCE, tlv(0x80, gen_password))


def decode_passwd_modify_response(value: bytes | None) -> bytes | None:
    """Decode a Password Modify response value; return the generated password or ``None``.

    Raises:
        LDAPError: protocolError if malformed.
    """
    if value is None:
        return None
    d = bytes(value)
    try:
        s, e = _sequence(d, "Password Modify response")
        if s == e:
            return None
        gen, j = read_octets(d, s, e, "genPasswd", 0x80)
        end_of(j, e, "Password Modify response")
    except RemoteProtocolError as exc:
        raise _bad("Password Modify response", exc.message) from None
    return gen


# ---------------------------------------------------------------- Who am I? (RFC 4532)


def check_whoami_request(value: bytes | None) -> None:
    """Check a Who am I? request: it has no value.

    Raises:
        LDAPError: protocolError if a value is present.
    """
    if value is not None:
        raise _bad("Who am I? request", "the request takes no value")


def encode_whoami_response(authz_id: str) -> bytes:
    """Return the Who am I? response value: the authzId (``dn:...``, ``u:...``
    or ``""`` for anonymous) as UTF-8."""
    return authz_id.encode()


def decode_whoami_response(value: bytes | None) -> str:
    """Decode a Who am I? response value (absent means anonymous, ``""``).

    Raises:
        LDAPError: protocolError if not valid UTF-8.
    """
    if value is None:
        return ""
    try:
        return bytes(value).decode()
    except UnicodeDecodeError:
        raise _bad("Who am I? response", "not valid UTF-8") from None


__all__ = [
    "PAGED_RESULTS_OID", "SORT_REQUEST_OID", "SORT_RESPONSE_OID", "ASSERTION_OID", "PRE_READ_OID",
    "POST_READ_OID", "SUBTREE_DELETE_OID", "MANAGE_DSA_IT_OID", "PERMISSIVE_MODIFY_OID", "PPOLICY_OID",
    "PASSWD_MODIFY_OID", "WHOAMI_OID", "STARTTLS_OID",
    "require_no_value",
    "PagedResults", "encode_paged_results", "decode_paged_results",
    "SortKey", "encode_sort_request", "decode_sort_request",
    "SortResult", "encode_sort_response", "decode_sort_response",
    "encode_assertion", "decode_assertion",
    "encode_read_entry_request", "decode_read_entry_request",
    "encode_read_entry_response", "decode_read_entry_response",
    "PasswordPolicyResponse", "encode_ppolicy_response", "decode_ppolicy_response",
    "PasswdModifyRequest", "encode_passwd_modify_request", "decode_passwd_modify_request",
    "encode_passwd_modify_response", "decode_passwd_modify_response",
    "check_whoami_request", "encode_whoami_response", "decode_whoami_response",
]
