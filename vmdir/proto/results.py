"""LDAP result codes (RFC 4511 section 4.1.9 and extensions) and the error type
that carries one from the domain layer to the front end.

Layer 1: pure, no I/O.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Any


class ResultCode(IntEnum):
    success = 0
    operationsError = 1
    protocolError = 2
    timeLimitExceeded = 3
    sizeLimitExceeded = 4
    compareFalse = 5
    compareTrue = 6
    authMethodNotSupported = 7
    strongerAuthRequired = 8
    referral = 10
    adminLimitExceeded = 11
    unavailableCriticalExtension = 12
    confidentialityRequired = 13
    saslBindInProgress = 14
    noSuchAttribute = 16
    undefinedAttributeType = 17
    inappropriateMatching = 18
    constraintViolation = 19
    attributeOrValueExists = 20
    invalidAttributeSyntax = 21
    noSuchObject = 32
    aliasProblem = 33
    invalidDNSyntax = 34
    aliasDereferencingProblem = 36
    inappropriateAuthentication = 48
    invalidCredentials = 49
    insufficientAccessRights = 50
    busy = 51
    unavailable = 52
    unwillingToPerform = 53
    loopDetect = 54
    namingViolation = 64
    objectClassViolation = 65
    notAllowedOnNonLeaf = 66
    notAllowedOnRDN = 67
    entryAlreadyExists = 68
    objectClassModsProhibited = 69
    affectsMultipleDSAs = 71
    other = 80
    cancelled = 118
    noSuchOperation = 119
    tooLate = 120
    cannotCancel = 121
    assertionFailed = 122


class LDAPError(Exception):
    """An operation failed with an LDAP result code.

    Raised by the domain layer (and the pure core for peer errors); the front end
    turns it into the operation's response once. ``message`` is safe to show to
    the client: never put internal exception text in it.
    """

    def __init__(self, code: ResultCode | int, message: str = "", matched_dn: str = "",
                 controls: tuple[Any, ...] = ()) -> None:
        super().__init__(message)
        self.code = ResultCode(code)
        self.message = message
        self.matched_dn = matched_dn
        self.controls = controls  # response controls of the failed operation (messages.Control)

    def __repr__(self) -> str:
        return f"LDAPError({self.code.name}, {self.message!r}, matched_dn={self.matched_dn!r})"


class RemoteProtocolError(LDAPError):
    """The peer broke the protocol: the connection must end with a Notice of
    Disconnection carrying ``code`` (protocolError unless said otherwise)."""

    def __init__(self, message: str, code: ResultCode | int = ResultCode.protocolError) -> None:
        super().__init__(code, message)


class LocalProtocolError(Exception):
    """We misused the sans-I/O API (a bug on our side, never the peer's)."""
