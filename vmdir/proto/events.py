"""Events produced by the sans-I/O LDAP server connection (``LDAPServerConnection.next_event``).

Layer 1: pure, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from vmdir.proto.messages import Control, Request, pickle_by_fields


class _Sentinel(Enum):
    NEED_DATA = "NEED_DATA"  # feed more bytes with receive_data()
    PAUSED = "PAUSED"  # a bind or StartTLS is in progress: answer it (or call tls_started()) first


NEED_DATA = _Sentinel.NEED_DATA
PAUSED = _Sentinel.PAUSED


@dataclass(frozen=True, slots=True, init=False)
class RequestReceived:
    """A complete, well-formed request. ``op`` is never an AbandonRequest or UnbindRequest.
    (One per operation: its constructor is written out, as ``vmdir.proto.messages`` says.)"""

    msgid: int
    op: Request
    controls: tuple[Control, ...]

    def __init__(self, msgid: int, op: Request, controls: tuple[Control, ...] = ()) -> None:
        object.__setattr__(self, "msgid", msgid)
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "controls", controls)


@dataclass(frozen=True, slots=True, init=False)
class Abandoned:
    """The peer abandoned ``msgid`` (it was in flight; later responses for it are dropped by send())."""

    msgid: int

    def __init__(self, msgid: int) -> None:
        object.__setattr__(self, "msgid", msgid)


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer sent Unbind (``reason="unbind"``) or closed its side (``reason="eof"``)."""

    reason: str


Event = RequestReceived | Abandoned | Closed | _Sentinel

pickle_by_fields([RequestReceived, Abandoned, Closed])
