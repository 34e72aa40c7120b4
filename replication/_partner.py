"""A blocking LDAP client of a supplier node (layer 2: ldap3): connect over TLS, bind as
this node's account, pull pages, wait for changes."""
from __future__ import annotations

import ssl
from typing import Any

from vmdir.proto.results import LDAPError

from replication._wire import (
    PULL_OID, REPL_ATTR, WAIT_OID, PullRequest, PullResponse, Record, decode_pull_response, decode_record,
    decode_usn, encode_pull_request, encode_wait_request, vector_sum,
)


class PartnerError(Exception):
    """The partner could not be reached, refused us, or answered something unusable.
    ``code`` is the LDAP result code when the partner answered one (49: wrong credentials)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class Partner:
    """One connection to a supplier. ``ldap://`` URLs are upgraded with StartTLS.

    The partner's certificate is not verified yet (nodes start with self-signed
    certificates until the CA issues theirs); the traffic is encrypted and the node account's
    password is never sent in the clear.
    """

    def __init__(self, url: str, user: str, password: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self.user = user
        self.password = password
        self.timeout = timeout
        self.conn: Any = None

    def connect(self) -> None:
        import ldap3
        from ldap3.core.exceptions import LDAPException

        tls = ldap3.Tls(validate=ssl.CERT_NONE)
        try:
            server = ldap3.Server(self.url, tls=tls, get_info=ldap3.NONE, connect_timeout=10)
            conn = ldap3.Connection(server, self.user, self.password, raise_exceptions=False,
                                    receive_timeout=int(self.timeout), auto_referrals=False)
            conn.open()
            if not self.url.lower().startswith("ldaps://") and not conn.start_tls():
                raise PartnerError(f"StartTLS with {self.url} failed: {conn.result.get('description')}")
            if not conn.bind():
                r = conn.result
                raise PartnerError(f"bind to {self.url} as {self.user} failed: {r.get('description')} "
                                   f"{r.get('message') or ''}".strip(), r.get("result"))
        except LDAPException as exc:
            raise PartnerError(f"cannot reach {self.url}: {exc}") from None
        self.conn = conn

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.unbind()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self.conn = None

    def pull(self, req: PullRequest) -> tuple[list[Record], PullResponse]:
        """One page. Raises PartnerError."""
        import ldap3
        from ldap3.core.exceptions import LDAPException

        try:
            ok = self.conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=[REPL_ATTR],
                                  controls=[(PULL_OID, True, encode_pull_request(req))])
        except LDAPException as exc:
            raise PartnerError(f"pull from {self.url} failed: {exc}") from None
        r = self.conn.result
        if not ok and r.get("result") != 0:
            raise PartnerError(f"pull from {self.url} refused: {r.get('description')} {r.get('message') or ''}".strip())
        ctrl = (r.get("controls") or {}).get(PULL_OID)
        if ctrl is None:
            raise PartnerError(f"{self.url} answered a pull without its response control")
        try:
            resp = decode_pull_response(ctrl.get("value"))
            records = [decode_record(e["raw_attributes"][REPL_ATTR][0])
                       for e in self.conn.response if e.get("type") == "searchResEntry"]
        except (LDAPError, KeyError, IndexError) as exc:
            raise PartnerError(f"{self.url} sent a malformed page: {exc}") from None
        return records, resp

    def wait(self, seen: PullResponse) -> int:
        """Block until the supplier has more than the pull response ``seen`` showed (a higher
        USN or a grown vector; or its wait limit passes); returns its highest USN. Raises
        PartnerError."""
        from ldap3.core.exceptions import LDAPException

        try:
            self.conn.extended(WAIT_OID, encode_wait_request(seen.highest_usn,
                                                             vector_sum(seen.utdv, seen.supplier)))
        except LDAPException as exc:
            raise PartnerError(f"waiting on {self.url} failed: {exc}") from None
        r = self.conn.result
        if r.get("result") != 0:
            raise PartnerError(f"waiting on {self.url} refused: {r.get('description')} {r.get('message') or ''}".strip())
        try:
            return decode_usn(r.get("responseValue"))
        except LDAPError as exc:
            raise PartnerError(f"{self.url} answered a wait with {exc}") from None
