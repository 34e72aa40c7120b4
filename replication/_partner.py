"""A blocking LDAP client of a supplier node (layer 2, ``vmdir.client``): connect over TLS,
check the partner's certificate, bind as this node's account, pull pages.

Which certificate a partner may present (``Trust``): one whose public key is the key of a
certificate published in the partner's node entry (``userCertificate``; nodes publish
theirs and announce a new one in their pulls, see ``replication._wire``), or, for a join,
the certificate fingerprint the operator gave, or else the first one seen (trust on first
use, reported to the operator). The host name is not checked: the key pin is stronger,
and nodes are often reached by address.
"""
from __future__ import annotations

import hashlib
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from vmdir.client import ClientError, Connection, describe
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError

from replication._wire import (
    PULL_OID, REPL_ATTR, PullRequest, PullResponse, Record, decode_pull_response, decode_record, encode_pull_request,
)


class PartnerError(Exception):
    """The partner could not be reached, refused us, or answered something unusable.
    ``code`` is the LDAP result code when the partner answered one (49: wrong credentials)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def key_digest(der: bytes) -> bytes:
    """SHA-256 of a certificate's SubjectPublicKeyInfo. Raises ValueError if ``der`` is
    not a DER X.509 certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = x509.load_der_x509_certificate(der)
    return hashlib.sha256(cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).digest()


def fingerprint(der: bytes) -> str:
    """A certificate's SHA-256 fingerprint as ``openssl x509 -fingerprint -sha256`` prints it."""
    return colon_hex(hashlib.sha256(der).digest())


def colon_hex(digest: bytes) -> str:
    """``AB:CD:...``, the way openssl prints fingerprints."""
    return ":".join(f"{b:02X}" for b in digest)


def parse_fingerprint(text: str) -> bytes:
    """``AB:CD:...`` (or plain hex, or with a ``sha256`` prefix) -> 32 bytes. Raises ValueError."""
    t = text.strip().lower()
    for prefix in ("sha256 fingerprint=", "sha256:", "sha256="):
        if t.startswith(prefix):
            t = t[len(prefix):]
    raw = bytes.fromhex(t.replace(":", ""))
    if len(raw) != 32:
        raise ValueError(f"not a SHA-256 fingerprint: {text!r}")
    return raw


@dataclass(frozen=True, slots=True)
class Trust:
    """The certificates a partner may present. No keys and no fingerprints: the first one
    seen (a join without --join-fingerprint)."""

    node: str  # the partner's name, for messages
    keys: frozenset[bytes] = field(default_factory=frozenset)  # key_digest of published certificates
    fingerprints: frozenset[bytes] = field(default_factory=frozenset)  # SHA-256 of whole certificates

    @classmethod
    def published(cls, node: str, certificates: Iterable[bytes]) -> "Trust":
        keys = set()
        for der in certificates:
            try:
                keys.add(key_digest(der))
            except ValueError:
                continue  # an unreadable value pins nothing
        return cls(node, frozenset(keys))

    @property
    def first_use(self) -> bool:
        return not self.keys and not self.fingerprints

    def check(self, url: str, der: bytes | None, *, required: bool) -> None:
        """Raise PartnerError unless the certificate ``der`` is trusted. ``required``: a
        partner with nothing published is refused (not trusted on first use)."""
        if der is None:
            raise PartnerError(f"{url} sent no certificate")
        if self.first_use:
            if required:
                raise PartnerError(f"no certificate is published for node {self.node} (its entry's userCertificate) "
                                   f"yet; not connecting to {url} unverified")
            return
        if hashlib.sha256(der).digest() in self.fingerprints:
            return
        try:
            if key_digest(der) in self.keys:
                return
        except ValueError:
            pass
        if not self.keys:
            want = ", ".join(colon_hex(f) for f in sorted(self.fingerprints))
            raise PartnerError(f"{url} presented a certificate with SHA-256 fingerprint {fingerprint(der)}, not the "
                               f"expected {want}: refusing it (check the fingerprint on the partner with "
                               f"'openssl x509 -noout -fingerprint -sha256 -in <its data-dir>/tls/server.crt')")
        raise PartnerError(f"{url} presented a certificate (SHA-256 fingerprint {fingerprint(der)}) whose key is "
                           f"not the one published for node {self.node}: refusing it. If {self.node} has a new key, "
                           f"it announces it when it next pulls from this node; otherwise something else answers "
                           f"at {url}")


def _context() -> ssl.SSLContext:
    """TLS 1.2+ without the CA check: the certificate is checked against ``Trust`` after
    the handshake (node certificates are self-signed until the CA issues theirs)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


Witness = tuple[str, str, Trust]  # another node: (name, URL, the certificates it may present)


def published_elsewhere(der: bytes, entry_dn: str, witnesses: Iterable[Witness], user: str, password: str,
                        timeout: float = 5.0) -> str | None:
    """The name of the first witness whose copy of the node entry ``entry_dn`` publishes the
    key of certificate ``der`` (None: none does, or none could be asked). Each witness is
    checked against its own published key and bound to as ``user``.

    A node with a new key announces it to the nodes it pulls from; a node that pulls from
    it but is not pulled from by it (a one-way ring) learns the key from them this way,
    then by replication."""
    try:
        want = key_digest(der)
    except ValueError:
        return None
    for name, url, trust in witnesses:
        try:
            conn = Connection(url, tls=_context(), timeout=timeout)
        except ClientError:
            continue
        try:
            trust.check(url, conn.peer_certificate(), required=True)
            conn.bind(user, password)
            entries, done, _ = conn.search(entry_dn, m.SCOPE_BASE, m.Present("objectClass"), ("userCertificate",))
        except (ClientError, PartnerError):
            continue
        finally:
            conn.close()
        certs = [v for e in entries for a, vs in e.attributes if a.lower() == "usercertificate" for v in vs]
        if done.code == 0 and want in Trust.published(name, certs).keys:
            return name
    return None


class Partner:
    """One connection to a supplier. ``ldap://`` URLs are upgraded with StartTLS. Pulls
    may be pipelined (``prefetch``).

    ``trust`` is asked at each connect (the published certificates replicate, so they can
    change). ``certificate`` (this node's own, DER) and ``own_url`` (where it is reached) are
    announced in the first pull of each connection. After ``connect``, ``certificate_seen`` is
    what the partner presented. ``vouch(certificate)``: asked when the certificate is not
    the published one; the name of a node that publishes its key for the partner (it is
    then accepted, ``vouched_by``), or None."""

    def __init__(self, url: str, user: str, password: str, *, trust: Callable[[], Trust],
                 require_published: bool = True, certificate: bytes | None = None, own_url: str | None = None,
                 vouch: Callable[[bytes], str | None] | None = None, timeout: float = 30.0) -> None:
        self.url = url
        self.user = user
        self.password = password
        self.trust = trust
        self.require_published = require_published
        self.certificate = certificate
        self.own_url = own_url
        self.timeout = timeout
        self.conn: Connection | None = None
        self.certificate_seen: bytes | None = None
        self.vouch = vouch
        self.vouched_by: str | None = None
        self._announce = False
        self._prefetched: tuple[PullRequest, int] | None = None  # a pull sent, not yet received

    def connect(self) -> None:
        self.close()
        try:
            conn = Connection(self.url, tls=_context(), timeout=self.timeout)
        except ClientError as exc:
            raise PartnerError(str(exc), exc.code) from None
        try:
            self.certificate_seen = conn.peer_certificate()
            self.vouched_by = None
            try:
                self.trust().check(self.url, self.certificate_seen, required=self.require_published)
            except PartnerError as exc:
                who = self.vouch(self.certificate_seen) if self.vouch and self.certificate_seen else None
                if who is None:
                    raise PartnerError(f"{exc}; no other node publishes that key for it either"
                                       if self.vouch else str(exc)) from None
                self.vouched_by = who
            conn.bind(self.user, self.password)
        except ClientError as exc:
            conn.close()
            raise PartnerError(str(exc), exc.code) from None
        except BaseException:
            conn.close()
            raise
        self.conn = conn
        self._announce = self.certificate is not None or self.own_url is not None

    def close(self) -> None:
        self._prefetched = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def prefetch(self, req: PullRequest) -> None:
        """Send ``req`` now, so the supplier reads that page while this node applies the
        last one; the next ``pull(req)`` takes its answer. Raises PartnerError."""
        self._prefetched = (req, self._send(req))

    def pull(self, req: PullRequest) -> tuple[list[Record], PullResponse]:
        """One page (held by the supplier up to ``req.hold`` ms when it would bring nothing).
        Raises PartnerError."""
        pending, self._prefetched = self._prefetched, None
        msgid = pending[1] if pending is not None and pending[0] == req else self._send(req)
        assert self.conn is not None
        try:
            entries, done, controls = self.conn.search_result(msgid)
        except ClientError as exc:
            raise PartnerError(f"pull from {self.url} failed: {exc}") from None
        if done.code != 0:
            raise PartnerError(f"pull from {self.url} refused: {describe(done.code, done.message)}", int(done.code))
        ctrl = next((c for c in controls if c.oid == PULL_OID), None)
        if ctrl is None:
            raise PartnerError(f"{self.url} answered a pull without its response control")
        try:
            resp = decode_pull_response(ctrl.value)
            records = [decode_record(_repl_value(e)) for e in entries]
        except (LDAPError, KeyError, IndexError) as exc:
            raise PartnerError(f"{self.url} sent a malformed page: {exc}") from None
        return records, resp

    def _send(self, req: PullRequest) -> int:
        if self.conn is None:
            raise PartnerError(f"not connected to {self.url}")
        if self._announce:
            req = replace(req, certificate=self.certificate, url=self.own_url)
            self._announce = False
        try:
            return self.conn.send_search("", m.SCOPE_BASE, m.Present("objectClass"), (REPL_ATTR,),
                                         (m.Control(PULL_OID, True, encode_pull_request(req)),))
        except ClientError as exc:
            raise PartnerError(f"pull from {self.url} failed: {exc}") from None


def _repl_value(e: m.SearchResultEntry) -> bytes:
    for name, values in e.attributes:
        if name.lower() == REPL_ATTR.lower():
            return values[0]
    raise KeyError(f"{e.dn} has no {REPL_ATTR}")
