"""Per-connection authentication state, owned by the front end, read and updated by the Directory."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Session:
    peer: str = ""  # "ip:port" of the client (over ldapi "ldapi pid=P uid=U gid=G"), for logs
    tls: bool = False  # the connection is encrypted (LDAPS or after StartTLS)
    client_cert_subject: str | None = None  # RFC 4514 subject of a verified client certificate
    local_peer: tuple[int, int] | None = None  # (uid, gid) of the process at the other end of an ldapi connection
    dn: str = ""  # bound DN as stored ("" = anonymous)
    ndn: str = ""
    entry_id: int = 0
    root_id: int = 0  # naming context (tenant) of the bound principal
    is_admin: bool = False  # a forest administrator: may do everything everywhere
    forest_admin_dn: bool = False  # bound as a configured administrator DN
    method: str = "anonymous"  # anonymous | simple | EXTERNAL | PLAIN | internal
    paging: dict[bytes, Any] = field(default_factory=dict)  # paged-results state by cookie
    groups: frozenset[str] = frozenset()  # normalised DNs of the groups it belongs to (nested too)
    roles: frozenset[str] = frozenset()  # built-in service roles held through those groups (_acl.SERVICE_ROLES)
    views: dict[Any, Any] = field(default_factory=dict)  # access views by rule scope (AccessPolicy)
    acl_gen: int = -1  # policy generation groups and views were computed at
    must_change: bool = False  # bound with a password an administrator reset (pwdReset): may only change it

    @property
    def secure(self) -> bool:
        """Whether what the client sends cannot be read on the way: TLS, or a unix socket on this machine."""
        return self.tls or self.local_peer is not None

    @property
    def anonymous(self) -> bool:
        return not self.ndn

    def reset(self) -> None:
        """Back to anonymous (start of every bind, RFC 4511 4.2.1)."""
        self.dn = self.ndn = ""
        self.entry_id = self.root_id = 0
        self.is_admin = self.forest_admin_dn = False
        self.method = "anonymous"
        self.groups = self.roles = frozenset()
        self.views = {}
        self.acl_gen = -1
        self.must_change = False
