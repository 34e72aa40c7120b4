"""The Directory: LDAP operations with schema, access control, USNs and replication
metadata, over the LMDB store. Synchronous; no Twisted. Reads run in any thread;
writes run inside ``run_writes`` (one LMDB write transaction, one nested transaction
per operation, so a batch of concurrent writes costs one commit).
"""
from __future__ import annotations

import datetime as _dt
import os
import secrets
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from vmdir.directory._acl import (
    EVERYTHING, NOTHING, SECRET_ATTRS, SERVICE_ROLES, SYSTEM_NDN, AccessPolicy, Holder, View, attr_base, parse_rule,
)
from vmdir.directory._config import PER_VALUE_ATTRS, DirectoryConfig
from vmdir.directory import _ppolicy as pp
from vmdir.directory._dit import DIT, leaf_rdn, matched_dn
from vmdir.directory._groups import MEMBER_ATTRS, groups_of, member_ids
from vmdir.directory._session import Session
from vmdir.directory._tenants import OID_TENANT_CREATE, OID_TENANT_DELETE
from vmdir.model import dn as dnmod
from vmdir.ber import encode_attribute_list
from vmdir.model import password as pw
from vmdir.model.match import compile_filter
from vmdir.model.schema import Schema, SchemaError
from vmdir.proto import controls as ctl
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError, ResultCode
from vmdir.store import (
    FLAG_DELETED, KIND_EQ, KIND_PRES, KIND_SUB, KIND_SUBFINAL, KIND_SUBINIT, SUB_N,
    MAX_KEY, IndexKeys, ReadTxn, Store, StoredEntry, ValueMeta, WriteTxn, cap_key, decode_wire, pack_u64,
)

RC = ResultCode
SUBSCHEMA_DN = "cn=Subschema"
SCHEMA_STORE_DN = "cn=Schema,cn=System"  # the schema added over LDAP (lightwaveSchemaDefinition values)
SCHEMA_ATTR = "lightwaveschemadefinition"
SCHEMA_KINDS = {"attributetypes": "attributetype", "objectclasses": "objectclass"}  # cn=Subschema attr -> keyword
MONITOR_DN = "cn=monitor"

OID_STARTTLS = "1.3.6.1.4.1.1466.20037"
OID_WHOAMI = "1.3.6.1.4.1.4203.1.11.3"
OID_PASSWD = "1.3.6.1.4.1.4203.1.11.1"
RELAX_OID = "1.3.6.1.4.1.4203.666.5.12"  # OpenLDAP relax rules: administrators import operational attributes
SUPPORTED_CONTROLS = frozenset({
    ctl.PAGED_RESULTS_OID, ctl.SORT_REQUEST_OID, ctl.ASSERTION_OID, ctl.PRE_READ_OID, ctl.POST_READ_OID,
    ctl.SUBTREE_DELETE_OID, ctl.MANAGE_DSA_IT_OID, ctl.PERMISSIVE_MODIFY_OID, ctl.PPOLICY_OID, RELAX_OID,
})

# operational attributes we compute on read
# meta key: set while this node must not take writes of its own (restored from a backup and
# not yet brought up to date by a replication partner, for instance); the value says why
WRITES_PAUSED = "writes_paused"
COMPUTED = ("entrydn", "hassubordinates", "numsubordinates", "subschemasubentry", "structuralobjectclass", "memberof")
# a write touching one of these changes who may do what: every process re-reads rules and groups
POLICY_ATTRS = ("member", "uniquemember", "lightwaveaci") + pp.POLICY_ATTRS
# operational attributes stamped on write (NO-USER-MODIFICATION for clients)
STAMPED = frozenset({"entryuuid", "createtimestamp", "modifytimestamp", "creatorsname", "modifiersname",
                     "usncreated", "usnchanged", "structuralobjectclass"})


NAME_META = "_name"
"""The metadata key of an entry's name (parent and RDN): set on add and rename, so that
replication resolves concurrent renames by the conflict rule like any attribute."""
LOCAL_ATTRS = frozenset({"usncreated", "usnchanged"})
"""Attributes that belong to one node (its own USNs): never replicated."""


def writes_paused(r: ReadTxn) -> str | None:
    """Why this node refuses local writes (WRITES_PAUSED, set by replication), or None."""
    v = r.meta(WRITES_PAUSED)
    return None if v is None else bytes(v).decode("utf-8", "replace")


_last_gentime: list[tuple[int, bytes]] = [(0, b"19700101000000Z")]  # the last whole second formatted (writes cluster)


def gentime(ts: float, frac: bool = False) -> bytes:
    if not frac:
        sec = int(ts // 1)  # floor, as fromtimestamp rounds a time before 1970 down
        last = _last_gentime[0]
        if last[0] == sec:
            return last[1]
        out = _dt.datetime.fromtimestamp(sec, _dt.timezone.utc).strftime("%Y%m%d%H%M%SZ").encode()
        _last_gentime[0] = (sec, out)  # one assignment: threads see the old pair or the new
        return out
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y%m%d%H%M%S.%fZ").encode()


class _Random:
    """os.urandom bytes drawn 4 KiB at a time (one getrandom call per 256 UUIDs, not one each)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buf = b""
        self.pos = 0

    def take(self, n: int) -> bytes:
        with self.lock:
            if self.pos + n > len(self.buf):
                self.buf, self.pos = os.urandom(4096), 0
            out = self.buf[self.pos:self.pos + n]
            self.pos += n
            return out

    def forget(self) -> None:
        self.buf, self.pos = b"", 0


_random = _Random()
os.register_at_fork(after_in_child=_random.forget)  # a forked child must not repeat the parent's bytes


def new_uuid() -> bytes:
    """A random (version 4) UUID in its string form, as an attribute value; what
    ``str(uuid.uuid4()).encode()`` gives, at about a quarter of the cost (0.75 vs 2.8 µs)."""
    b = bytearray(_random.take(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".encode()


class _PolicyAnswer:
    """``with _PolicyAnswer(ctrls):`` a password policy error raised inside carries the ppolicy
    response control only when the request asked for it (draft-behera)."""

    def __init__(self, ctrls: Mapping[str, m.Control]) -> None:
        self.wanted = ctl.PPOLICY_OID in ctrls

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if isinstance(exc, LDAPError) and not self.wanted:
            exc.controls = ()


@dataclass(slots=True, init=False)
class Outcome:
    """A finished operation: its result plus response controls. (One per operation: the
    constructor is written out, compiled, as ``vmdir.proto.messages`` says.)"""

    code: ResultCode
    message: str
    matched_dn: str
    controls: tuple[m.Control, ...]
    extra: Any  # op-specific (extended response name/value, bind creds)
    after: Any  # a write op to commit before answering (a bind's failure count)

    def __init__(self, code: ResultCode = RC.success, message: str = "", matched_dn: str = "",
                 controls: tuple[m.Control, ...] = (), extra: Any = None, after: Any = None) -> None:
        self.code = code
        self.message = message
        self.matched_dn = matched_dn
        self.controls = controls
        self.extra = extra
        self.after = after


@dataclass(slots=True, init=False)
class PreparedAdd:
    """An add checked by ``Directory.prepare_add``: plain values, so it can cross processes.

    The constructor is written out: compiled, it costs a fraction of the one ``dataclass``
    generates (interpreted), and bulk import builds one per entry twice (once unpickling)."""

    dn: str
    nrdns: tuple[str, ...]
    attrs: dict[str, list[bytes]]
    controls: dict[str, m.Control]
    relax: bool
    allocate: tuple[str, ...]  # POSIX numbers to allocate in the writer (see _posix_placeholders)
    structural: str | None
    index_keys: dict[str, set[bytes]] | None  # precomputed: attribute -> its index keys
    wire: tuple[bytes | None, bytes | None]  # precomputed wire_user, wire_secret
    id: int  # reserved entry id (0: allocated by apply_add)
    rdn: str  # the leaf RDN as given

    def __init__(self, dn: str, nrdns: tuple[str, ...], attrs: dict[str, list[bytes]],
                 controls: dict[str, m.Control], relax: bool, allocate: tuple[str, ...], structural: str | None,
                 index_keys: dict[str, set[bytes]] | None = None,
                 wire: tuple[bytes | None, bytes | None] = (None, None), id: int = 0, rdn: str = "") -> None:
        self.dn = dn
        self.nrdns = nrdns
        self.attrs = attrs
        self.controls = controls
        self.relax = relax
        self.allocate = allocate
        self.structural = structural
        self.index_keys = index_keys
        self.wire = wire
        self.id = id
        self.rdn = rdn

    def __reduce__(self) -> tuple[Any, ...]:
        # the fields as constructor arguments: pickles (and unpickles) in a third of the time
        # of the generic state dict, and bulk import sends every entry through pickle
        return (PreparedAdd, (self.dn, self.nrdns, self.attrs, self.controls, self.relax, self.allocate,
                              self.structural, self.index_keys, self.wire, self.id, self.rdn))


class Directory:
    """Operations over one store.

    ``invocation`` (16 bytes) and ``server_id`` identify this node's database for
    replication metadata. ``clock`` returns seconds since the epoch.
    """

    def __init__(
        self,
        store: Store,
        schema: Schema,
        config: DirectoryConfig,
        *,
        invocation: bytes,
        server_id: int,
        admin_dns: Sequence[str] = (),
        system_admins: str = "",
        system_tenant: str = "",
        clock: Callable[[], float] = time.time,
        supported_sasl: Sequence[str] = ("EXTERNAL", "PLAIN"),
        counters: Any = None,
        local_admins: Mapping[int, str] | None = None,
    ) -> None:
        self.store = store
        self.schema = schema
        self.config = config
        # operational attributes computed on read by higher layers (replication status on the
        # node's entry): lower-case name -> f(read txn, entry) -> values ([] = not on this entry)
        self.constructed: dict[str, Callable[[ReadTxn, StoredEntry], list[bytes]]] = {}
        self.invocation = invocation
        self.server_id = server_id
        self.clock = clock
        self.dit = DIT(schema, config.indexes)
        self.acl = AccessPolicy(self._load_holders, self._session_groups, _policy_gen, _rules_gen)
        self.acl.system_admins = self.dit.ndn(system_admins) if system_admins else ""
        if system_tenant:
            self.acl.service_roles = {role: self.dit.ndn(f"cn={g},cn=Groups,{system_tenant}")
                                      for role, g in SERVICE_ROLES.items()}
        self.acl.on_deny = lambda s, what: self.audit("access_denied", s, what=what)
        self.admin_ndns = {self.dit.ndn(d) for d in admin_dns}
        self.system_tenant = system_tenant
        self.audit_sink: Callable[[dict[str, Any]], None] | None = None  # set by the server
        self._policies: dict[int, tuple[int, pp.PasswordPolicy]] = {}
        self.supported_sasl = tuple(supported_sasl)
        self.counters = counters
        # ldapi peer uid -> whom its SASL EXTERNAL bind authenticates (see external_identity)
        self.local_admins: Mapping[int, str] = dict(local_admins or {})
        self.on_commit: list[Callable[[int], None]] = []  # called with the last USN after each commit
        self._pw_params = dict(config.password_params)
        # checked when a bind names no entry, so its cost (and thread) match a real user's
        self._dummy_hash = pw.hash_password(secrets.token_bytes(16), config.password_scheme, **self._pw_params)
        self._display: dict[str, str] = {}  # attr key -> display name cache
        # attr key -> (kind, display name) for _set_wire; kind 0: operational (not in the
        # pre-encoded attributes), 1: public, 2: secret (userPassword...)
        self._wire_kinds: dict[str, tuple[int, str]] = {}
        self._selections: dict[tuple[str, ...], Selection] = {}  # attribute lists -> Selection
        self._standard_schema = schema  # without the definitions added over LDAP
        self._schema_gen = -1  # the store's "schemagen" the schema in use was built at
        self._subschema_rdns = self.dit.norm_rdns(SUBSCHEMA_DN)
        self._schema_store_rdns = self.dit.norm_rdns(SCHEMA_STORE_DN)

    # ================================================================== helpers

    def display_name(self, key: str) -> str:
        d = self._display.get(key)
        if d is None:
            base, _, opts = key.partition(";")
            at = self.schema.attribute(base)
            d = (at.name if at else base) + (";" + opts if opts else "")
            self._display[key] = d
        return d

    def _canon(self, desc: str) -> str:
        return self.schema.canonical_attr(desc)

    def _read_entry(self, r: ReadTxn, entry_id: int, names: frozenset[str] | None = None) -> StoredEntry | None:
        """The live entry ``entry_id`` with its DN, or None; with ``names``, only those
        attributes and no metadata (``ReadTxn.get_some``: to read, never to write back)."""
        e = r.get(entry_id) if names is None else r.get_some(entry_id, names)
        if e is None or e.deleted:
            return None
        e.dn, e.ndn, _ = self.dit.dn_of(r, entry_id, e.parent_id, e.rdn)
        return e

    def _find(self, r: ReadTxn, dn: str, s: Session | None = None) -> StoredEntry:
        """The live entry named ``dn``, or LDAPError(noSuchObject) with matchedDN.

        An entry the session may not read is reported exactly as a missing one.
        """
        e = self._read_entry(r, self._find_id(r, dn, s))
        if e is None:
            raise LDAPError(RC.noSuchObject)
        return e

    def _find_id(self, r: ReadTxn, dn: str, s: Session | None) -> int:
        """Like _find, but only the id (no decoding of the entry)."""
        rdns = self.dit.norm_rdns(dn)
        eid, anc, n = self.dit.resolve(r, rdns)
        if eid is None:
            md = matched_dn(dn, n) if anc and (s is None or self._may_see(r, s, anc)) else ""
            raise LDAPError(RC.noSuchObject, "", md)
        if s is not None and not self._may_see(r, s, eid):
            raise LDAPError(RC.noSuchObject)
        return eid

    def _may_see(self, r: ReadTxn, s: Session, entry_id: int) -> bool:
        return self._view(r, s, entry_id).read

    def _view(self, r: ReadTxn, s: Session, entry_id: int) -> View:
        """What ``s`` may do with entry ``entry_id``."""
        if s.is_admin:
            return EVERYTHING
        _, ndn, root = self.dit.dn_of(r, entry_id)
        return self.view_at(r, s, entry_id, ndn, root)

    def view_at(self, r: ReadTxn, s: Session, entry_id: int, ndn: str, root: int) -> View:
        """What ``s`` may do with entry ``entry_id``, named ``ndn`` in naming context ``root``."""
        return self.acl.view(s, entry_id, ndn, root, self.dit.dn_of(r, root)[1] if s.roles else "")

    def _begin(self, r: ReadTxn, s: Session | None = None) -> None:
        """Call at the start of every transaction: schema, names, rules and the session's groups up to date."""
        self._sync_schema(r)
        self.dit.begin(r)
        self.acl.sync(r, s)

    # ================================================================== schema added over LDAP

    def refresh_schema(self) -> None:
        """Bring the schema up to the store's: call before work that uses it outside a
        transaction (preparing an add or a modify), since another process may have added
        definitions."""
        with self.store.read() as r:
            self._sync_schema(r)

    def _sync_schema(self, r: ReadTxn) -> None:
        gen = r.meta_int("schemagen")
        if gen == self._schema_gen:
            return
        sid = self.dit.id_of(r, SCHEMA_STORE_DN)
        e = r.get(sid) if sid is not None else None
        defs = e.attrs.get(SCHEMA_ATTR, []) if e is not None and not e.deleted else []
        self._install_schema(defs, gen)

    def _install_schema(self, defs: list[bytes], gen: int) -> None:
        """Use the standard schema plus ``defs`` (lightwaveSchemaDefinition values). Definitions
        are only ever added, so what was normalised or parsed before stays right; the caches
        of names are dropped all the same."""
        schema = self._standard_schema
        if defs:
            try:
                schema = schema.with_definitions("\n".join(v.decode("utf-8", "replace") for v in defs))
            except SchemaError:
                # refused when added here; replicated from a node whose check differed: keep what we have
                schema = self.schema
        self.schema = schema
        self.dit.schema = schema
        self.dit.forget_names()
        self._display.clear()
        self._wire_kinds.clear()
        self._selections.clear()
        self._schema_gen = gen

    def _modify_subschema(self, s: Session, req: m.ModifyRequest) -> Callable[[WriteTxn], Outcome]:
        """``ldapmodify`` of cn=Subschema, as 389-ds and OpenLDAP's cn=config allow: forest
        administrators add attributeTypes and objectClasses (RFC 4512 descriptions). They are
        kept in SCHEMA_STORE_DN, so they replicate, and every process of every node uses them
        from its next operation. Definitions are never removed or changed (entries may use
        them)."""
        if not s.is_admin:
            raise LDAPError(RC.insufficientAccessRights, "only forest administrators may change the schema")
        self.refresh_schema()
        added: list[bytes] = []
        for c in req.changes:
            kind = SCHEMA_KINDS.get(self._canon(c.attr))
            if kind is None:
                raise LDAPError(RC.unwillingToPerform, f"only attributeTypes and objectClasses can be added to the schema, not {c.attr}")
            if c.op != m.MOD_ADD:
                raise LDAPError(RC.unwillingToPerform, "schema definitions can be added, not removed or replaced")
            for v in c.values:
                text = v.decode("utf-8", "replace").strip()
                if not text.startswith("("):
                    raise LDAPError(RC.invalidAttributeSyntax, f"{c.attr}: a definition is '( OID NAME ... )'")
                added.append(f"{kind} {text}".encode())
        if not added:
            raise LDAPError(RC.unwillingToPerform, "nothing to add to the schema")
        try:
            self.schema.with_definitions("\n".join(v.decode() for v in added))
        except SchemaError as exc:
            why = str(exc)
            exists = why.startswith("duplicate OID") or why.endswith("defined twice")
            raise LDAPError(RC.attributeOrValueExists if exists else RC.invalidAttributeSyntax,
                            f"schema definition refused: {why}") from None
        admin = self.internal_session(s.dn or SCHEMA_STORE_DN)

        def op(w: WriteTxn) -> Outcome:
            self.check_writable(w)
            self._sync_schema(w)
            try:  # again against the stored schema: another administrator may have added the same meanwhile
                self.schema.with_definitions("\n".join(v.decode() for v in added))
            except SchemaError as exc:
                raise LDAPError(RC.attributeOrValueExists, f"schema definition refused: {exc}") from None
            if self.dit.id_of(w, SCHEMA_STORE_DN) is None:
                return self.add(admin, m.AddRequest(SCHEMA_STORE_DN, (
                    ("objectClass", (b"top", b"lightwaveSchemaStore")), ("cn", (b"Schema",)),
                    ("description", (b"Schema definitions added over LDAP (to cn=Subschema)",)),
                    ("lightwaveSchemaDefinition", tuple(added)))))(w)
            return self.modify(admin, m.ModifyRequest(SCHEMA_STORE_DN, (
                m.Change(m.MOD_ADD, "lightwaveSchemaDefinition", tuple(added)),)))(w)

        return op

    def _guard_schema_store(self, s: Session, rdns: tuple[str, ...]) -> None:
        """SCHEMA_STORE_DN changes only through cn=Subschema, where definitions are checked and
        never removed (the server's own work, an import or a replicated change, excepted)."""
        if rdns == self._schema_store_rdns and s.method != "internal":
            raise LDAPError(RC.unwillingToPerform, f"{SCHEMA_STORE_DN} holds the schema added over LDAP: change "
                            "it through cn=Subschema (ldapmodify adding attributeTypes or objectClasses)")

    @staticmethod
    def check_writable(w: ReadTxn) -> None:
        """Refuse a change made here (not a replicated one) while writes are paused."""
        why = writes_paused(w)
        if why is not None:
            raise LDAPError(RC.unwillingToPerform, f"this node takes no writes now: {why}"
                            " (see 'lightwave repl status'); write through another node")

    def _load_holders(self, r: Any) -> list[Holder]:
        out = []
        for eid in r.index_ids("lightwaveaci", KIND_PRES) or ():
            e = r.get(eid)
            if e is None or e.deleted:
                continue
            _, ndn, root = self.dit.dn_of(r, eid, e.parent_id, e.rdn)
            rules = []
            for v in e.attrs.get("lightwaveaci", []):
                try:
                    rules.append(self._parse_rule(v))
                except (ValueError, LDAPError):
                    continue  # refused on write; an old or replicated bad value grants nothing
            out.append(Holder(eid, ndn, root, rules))
        return out

    def _parse_rule(self, v: bytes) -> Any:
        return parse_rule(v.decode("utf-8"), self.dit.ndn, self._canon)

    def _session_groups(self, r: Any, ndn: str) -> frozenset[str]:
        return frozenset(groups_of(r, self.dit, ndn))


    def check_controls(self, controls: Sequence[m.Control], allowed: frozenset[str]) -> dict[str, m.Control]:
        """The ``allowed`` controls by OID; an unknown critical one raises unavailableCriticalExtension."""
        out = {}
        for c in controls:
            if c.oid in allowed:
                out[c.oid] = c
            elif c.critical:
                raise LDAPError(RC.unavailableCriticalExtension, f"critical control {c.oid} not supported")
        return out

    def _assert(self, r: ReadTxn, ctrls: dict[str, m.Control], e: StoredEntry, s: Session) -> None:
        c = ctrls.get(ctl.ASSERTION_OID)
        if c is None:
            return
        f = ctl.decode_assertion(c.value)
        target = e.id or e.parent_id  # an entry being added: its parent's rules
        attrs = self._view(r, s, target).readable(e.attrs) if target else e.attrs  # root DSE, subschema
        if not compile_filter(f, self.schema)(attrs, e.dn):
            raise LDAPError(RC.assertionFailed, "assertion control failed")

    def internal_session(self, dn: str) -> Session:
        """An administrator session for the server's own work (first start, offline import)."""
        return Session(dn=dn, ndn=self.dit.ndn(dn), is_admin=True, forest_admin_dn=True, method="internal")

    def is_admin_dn(self, ndn: str) -> bool:
        return ndn in self.admin_ndns

    # ================================================================== bind

    def bind(self, s: Session, req: m.BindRequest, controls: Sequence[m.Control] = (), *,
             allow_slow: bool = True) -> Outcome:
        """Authenticate; on success the session carries the identity. Always resets it first.

        With ``allow_slow=False`` a password check that needs an expensive hash (argon2,
        PBKDF2, crypt) raises SlowBind instead, so the caller can retry it off its event loop.
        """
        s.reset()
        want_pp = ctl.PPOLICY_OID in self.check_controls(controls, frozenset({ctl.PPOLICY_OID}))
        if req.version != 3:
            raise LDAPError(RC.protocolError, "requested protocol version not allowed")
        if req.sasl_mechanism is not None:
            return self._sasl_bind(s, req, want_pp, allow_slow)
        if req.password is None:  # an authentication choice we do not know (e.g. Sicily)
            raise LDAPError(RC.authMethodNotSupported, "authentication method not supported")
        password = req.password
        if not req.name:
            if password:
                raise LDAPError(RC.unwillingToPerform, "unauthenticated bind (password with no DN) disallowed")
            return Outcome()
        if not password:
            raise LDAPError(RC.unwillingToPerform, "unauthenticated bind (DN with no password) disallowed")
        out = self._password_login(s, req.name, password, allow_slow, want_pp)
        if out.code == RC.success:
            s.method = "simple"
        return out

    def _principal(self, r: ReadTxn, name: str, names: frozenset[str] | None = None) -> StoredEntry | None:
        """The entry a bind name designates: a DN, or a user principal name (user@domain);
        with ``names``, only those attributes (as ``_read_entry``)."""
        name = name.strip()
        if "=" not in name and "@" in name:
            ids = r.index_ids("userprincipalname", KIND_EQ + self.schema.eq_key("userprincipalname", name.encode()))
            if ids:
                return self._read_entry(r, ids[0], names)
            local, _, domain = name.rpartition("@")
            if not local or not domain:
                return None
            cand = "cn=" + dnmod.escape_value(local) + ",cn=Users," + ",".join("dc=" + dnmod.escape_value(p) for p in domain.split("."))
            name = cand
        try:
            rdns = self.dit.norm_rdns(name)
        except LDAPError:
            return None
        eid, _, _ = self.dit.resolve(r, rdns)
        return self._read_entry(r, eid, names) if eid is not None else None

    def _password_login(self, s: Session, name: str, password: bytes, allow_slow: bool = True,
                        want_pp: bool = False) -> Outcome:
        """Check a password under the tenant's password policy.

        A failure answers invalidCredentials whatever the reason (a locked account does not
        tell whether the password was right); the ppolicy control, when asked for, says
        why. Failures are recorded (``Outcome.after``, a write to commit before answering)
        and lock the account after the policy's maximum.
        """
        with self.store.read() as r:
            self._begin(r)
            e = self._principal(r, name, LOGIN_ATTRS)
            if e is None:
                # the same work as a real check, so timing does not tell whether the DN exists
                if not allow_slow and _slow_hash(self._dummy_hash):
                    raise SlowBind()
                pw.verify_password(password, self._dummy_hash)
                self.audit("bind_failure", s, dn=name, reason="no such entry")
                return Outcome(RC.invalidCredentials)
            stored = e.attrs.get("userpassword", [])
            root = self.dit.dn_of(r, e.id)[2]
            policy = self.policy_of(r, e.id)
            now = self.clock()
            if pp.locked(policy, e.attrs, now):
                self.audit("bind_failure", s, dn=e.dn, reason="account locked")
                return Outcome(RC.invalidCredentials, controls=(pp.response_control(pp.LOCKED),) if want_pp else ())
            if not allow_slow and any(_slow_hash(h) for h in stored):
                raise SlowBind()
            if not any(pw.verify_password(password, h) for h in stored):
                self.audit("bind_failure", s, dn=e.dn, reason="invalid credentials")
                return Outcome(RC.invalidCredentials, after=self._record_failure(e.id, policy, now))
            if _disabled(e):
                self.audit("bind_failure", s, dn=e.dn, reason="account disabled")
                return Outcome(RC.invalidCredentials, "account disabled")
            expired, warn = pp.expired(policy, e.attrs, now)
            grace: int | None = None
            if expired:
                left = pp.grace_left(policy, e.attrs)
                if not left:
                    self.audit("bind_failure", s, dn=e.dn, reason="password expired")
                    return Outcome(RC.invalidCredentials, controls=(pp.response_control(pp.EXPIRED),) if want_pp else ())
                grace = left - 1  # this bind uses one
            self._login(s, e, root, r)
            reset = pp.must_change(policy, e.attrs)
            # an expired password (a grace bind) or one an administrator set: only changing it is allowed
            s.must_change = reset or expired
        self.audit("bind", s, dn=e.dn, **({"grace_left": grace} if grace is not None else {}))
        error = pp.CHANGE_AFTER_RESET if reset else None
        out = Outcome()
        if want_pp and (error is not None or warn is not None or grace is not None):
            out.controls = (pp.response_control(error, warn, grace),)
        if grace is not None:
            out.after = self._record_grace(e.id, now)
        elif e.attrs.get("pwdfailuretime"):
            out.after = self._clear_failures(e.id)
        return out

    def _account_update(self, eid: int, change: Callable[[StoredEntry], set[str]]) -> Callable[[WriteTxn], Outcome]:
        """A write op for the bind's bookkeeping on account ``eid``: ``change`` edits the entry
        and returns the attributes it changed (none: nothing is written)."""
        def op(w: WriteTxn) -> Outcome:
            e = self._read_entry(w, eid)
            if e is None:
                return Outcome()
            old = e.copy()
            changed = change(e)
            if changed:
                self._save_change(w, Session(dn=e.dn), e, old, changed)
            return Outcome()
        return op

    def _record_failure(self, eid: int, policy: pp.PasswordPolicy, now: float) -> Callable[[WriteTxn], Outcome]:
        def change(e: StoredEntry) -> set[str]:
            recent = pp.recent_failures(policy, e.attrs, now)[-63:] + [gentime(now, frac=True)]
            e.attrs["pwdfailuretime"] = recent
            if (policy.lockout and policy.max_failure and len(recent) >= policy.max_failure
                    and not e.attrs.get("pwdaccountlockedtime")):
                e.attrs["pwdaccountlockedtime"] = [gentime(now)]
                self.audit("lockout", None, dn=e.dn, failures=len(recent))
                return {"pwdfailuretime", "pwdaccountlockedtime"}
            return {"pwdfailuretime"}
        return self._account_update(eid, change)

    def _record_grace(self, eid: int, now: float) -> Callable[[WriteTxn], Outcome]:
        """A grace bind: one more pwdGraceUseTime value (and the failure count starts afresh)."""
        def change(e: StoredEntry) -> set[str]:
            e.attrs["pwdgraceusetime"] = e.attrs.get("pwdgraceusetime", []) + [gentime(now, frac=True)]
            return {"pwdgraceusetime"} | ({"pwdfailuretime"} if e.attrs.pop("pwdfailuretime", None) is not None else set())
        return self._account_update(eid, change)

    def _clear_failures(self, eid: int) -> Callable[[WriteTxn], Outcome]:
        def change(e: StoredEntry) -> set[str]:
            return {"pwdfailuretime"} if e.attrs.pop("pwdfailuretime", None) is not None else set()
        return self._account_update(eid, change)

    def policy_of(self, r: ReadTxn, entry_id: int) -> pp.PasswordPolicy:
        """The password policy of the tenant entry ``entry_id`` belongs to."""
        root = self.dit.dn_of(r, entry_id)[2]
        gen = r.meta_int("polgen")
        hit = self._policies.get(root)
        if hit is not None and hit[0] == gen:
            return hit[1]
        policy = pp.NO_POLICY
        rdn = self.dit.dn_of(r, root)[0]
        pid = self.dit.id_of(r, f"{pp.POLICY_RDN},{rdn}")
        if pid is not None:
            e = r.get(pid)
            if e is not None and not e.deleted:
                policy = pp.PasswordPolicy.from_attrs(e.attrs)
        if len(self._policies) > 4096:
            self._policies.clear()
        self._policies[root] = (gen, policy)
        return policy

    def policy_for_dn(self, dn: str) -> pp.PasswordPolicy:
        """The password policy that governs an entry named ``dn`` (existing or not)."""
        with self.store.read() as r:
            self.dit.begin(r)
            _, anc, _ = self.dit.resolve(r, self.dit.norm_rdns(dn))
            return self.policy_of(r, anc) if anc else pp.NO_POLICY

    def audit(self, event: str, s: Session | None, **fields: Any) -> None:
        """A security event for the audit log (never secrets)."""
        if self.audit_sink is None:
            return
        rec: dict[str, Any] = {"event": event}
        if s is not None:
            rec["who"] = s.dn or "anonymous"
            if s.peer:
                rec["peer"] = s.peer
        rec.update(fields)
        self.audit_sink(rec)

    def restricted(self, s: Session, op: Any, controls: Sequence[m.Control]) -> Outcome | None:
        """The answer for ``op`` from a session that must change its password first
        (``s.must_change``: bound with a password someone else set under pwdMustChange, or
        with an expired one in a grace bind), or None when it may go ahead: such a session
        may only change its own password (the Password Modify operation, or a modify of its
        own userPassword), start TLS, bind again, unbind and abandon."""
        if not s.must_change or isinstance(op, m.BindRequest):
            return None
        if isinstance(op, m.ExtendedRequest) and op.oid in (OID_PASSWD, OID_STARTTLS):
            return None
        if isinstance(op, m.ModifyRequest):
            try:
                if (all(attr_base(self._canon(c.attr)) == "userpassword" for c in op.changes)
                        and self.dit.ndn(op.dn) == s.ndn):
                    return None
            except LDAPError:
                pass
        want_pp = any(c.oid == ctl.PPOLICY_OID for c in controls)
        return Outcome(RC.insufficientAccessRights, pp.RESTRICTED,
                       controls=(pp.response_control(pp.CHANGE_AFTER_RESET),) if want_pp else ())

    def _login(self, s: Session, e: StoredEntry, root: int, r: ReadTxn) -> None:
        s.dn, s.ndn, s.entry_id, s.root_id = e.dn, e.ndn, e.id, root
        s.forest_admin_dn = self.is_admin_dn(e.ndn)
        s.is_admin = s.forest_admin_dn
        self.acl.refresh_session(r, s)

    def _sasl_bind(self, s: Session, req: m.BindRequest, want_pp: bool = False, allow_slow: bool = True) -> Outcome:
        mech = (req.sasl_mechanism or "").upper()
        if mech not in self.supported_sasl:
            raise LDAPError(RC.authMethodNotSupported, "SASL(-4): no mechanism available: unknown mechanism")
        if mech == "EXTERNAL":
            name, how = external_identity(s, self.local_admins)
            if name is None:
                self.audit("bind_failure", s, reason="local user not mapped", **how)
                return Outcome(RC.invalidCredentials, "SASL EXTERNAL over ldapi: only root and the server's "
                                                      "own user are mapped (to the forest administrator)")
            with self.store.read() as r:
                self.dit.begin(r)
                e = self._principal(r, name)
                if e is None:
                    raise LDAPError(RC.invalidCredentials, f"no entry for the {how['via']} identity")
                authz = (req.sasl_credentials or b"").decode("utf-8", "replace")
                if authz and authz.removeprefix("dn:").strip():
                    want = self._principal(r, authz.removeprefix("dn:"))
                    if want is None or want.id != e.id:
                        raise LDAPError(RC.insufficientAccessRights, "authorization identity not permitted")
                if _disabled(e) and not self.is_admin_dn(e.ndn):
                    self.audit("bind_failure", s, dn=e.dn, reason="account disabled", **how)
                    return Outcome(RC.invalidCredentials, "account disabled")
                # no lockout here: a certificate or a local uid is not guessable, and it is the way
                # back in for an administrator whose password binds were locked by someone guessing
                self._login(s, e, self.dit.dn_of(r, e.id)[2], r)
            s.method = "EXTERNAL"
            self.audit("bind", s, dn=s.dn, **how)
            return Outcome()
        # PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd
        if not s.secure:
            raise LDAPError(RC.confidentialityRequired, "SASL PLAIN requires TLS (or ldapi)")
        parts = (req.sasl_credentials or b"").split(b"\0")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise LDAPError(RC.invalidCredentials, "SASL(-13): malformed PLAIN credentials")
        authz, authc, passwd = parts[0].decode("utf-8", "replace"), parts[1].decode("utf-8", "replace"), parts[2]
        authc = authc.removeprefix("dn:").removeprefix("u:")
        out = self._password_login(s, authc, passwd, allow_slow, want_pp)
        if out.code != RC.success:
            return out
        if authz and authz.removeprefix("dn:").removeprefix("u:") not in ("", authc):
            target = authz.removeprefix("dn:").removeprefix("u:")
            with self.store.read() as r:
                self.dit.begin(r)
                want = self._principal(r, target)
            if not s.is_admin or want is None:
                s.reset()
                raise LDAPError(RC.insufficientAccessRights, "SASL(-14): authorization failure")
            with self.store.read() as r:
                self._begin(r)
                self._login(s, want, self.dit.dn_of(r, want.id)[2], r)
        s.method = "PLAIN"
        return out

    # ================================================================== search

    SEARCH_CONTROLS = frozenset({ctl.PAGED_RESULTS_OID, ctl.SORT_REQUEST_OID, ctl.ASSERTION_OID, ctl.MANAGE_DSA_IT_OID})

    def search(self, s: Session, req: m.SearchRequest, controls: Sequence[m.Control] = ()) -> "SearchRun":
        """Start a search. Iterate the returned SearchRun for entries, then read its outcome."""
        ctrls = self.check_controls(controls, self.SEARCH_CONTROLS)
        return SearchRun(self, s, req, ctrls)

    def select_attrs(self, req_attrs: Sequence[str]) -> "Selection":
        key = tuple(req_attrs)
        sel = self._selections.get(key)
        if sel is None:
            sel = Selection.parse(self, req_attrs)
            if len(self._selections) > 1024:
                self._selections.clear()
            self._selections[key] = sel
        return sel

    def render(self, r: ReadTxn, s: Session, e: StoredEntry, sel: "Selection", types_only: bool,
               plain: bool = False, view: View | None = None) -> m.SearchResultEntry | m.EncodedSearchResultEntry:
        """The search result for ``e``: stored wire bytes when all user attributes are asked for."""
        if view is None:
            view = self._view(r, s, e.id)
        if sel.user_only and not types_only and not plain and e.wire_user is not None and view.plain:
            return self.wire_entry(view, e.dn, e.wire_user, e.wire_secret)
        out: list[tuple[str, tuple[bytes, ...]]] = []
        names = sel.names_for(view)
        for key, vals in e.attrs.items():
            name = names.get(key)
            if name is None:
                name = names[key] = (self.display_name(key) if sel.wants(key, self) and view.can_read(key) else "")
            if name:
                out.append((name, () if types_only else tuple(vals)))
        if sel.any_operational:
            for key in (*COMPUTED, *self.constructed):
                if not sel.wants(key, self) or key in e.attrs or not view.can_read(key):
                    continue
                vals = self._computed(r, e, key, s)
                if vals:
                    out.append((self.display_name(key), () if types_only else tuple(vals)))
        return m.SearchResultEntry(e.dn, tuple(out))

    @staticmethod
    def wire_entry(view: View, dn: str, public: bytes, secret: bytes | None) -> m.EncodedSearchResultEntry:
        """An entry's stored user attributes (``view.plain``), protected ones only for those who may see them."""
        return m.EncodedSearchResultEntry(dn, public + secret if secret and view.secrets else public)

    def _computed(self, r: ReadTxn, e: StoredEntry, key: str, s: Session | None = None) -> list[bytes]:
        if key == "memberof":
            return [self.dit.dn_of(r, gid)[0].encode() for gid in groups_of(r, self.dit, e.ndn).values()
                    if s is None or self._may_see(r, s, gid)]
        if key == "entrydn":
            return [e.dn.encode()]
        if key == "subschemasubentry":
            return [SUBSCHEMA_DN.encode()]
        if key == "numsubordinates":
            return [str(r.count_children(e.id)).encode()]
        if key == "hassubordinates":
            return [b"TRUE" if r.count_children(e.id) else b"FALSE"]
        if key == "structuralobjectclass":
            try:
                return [self.schema.structural_class(e.attrs.get("objectclass", [])).encode()]
            except LDAPError:
                return []
        fn = self.constructed.get(key)
        return fn(r, e) if fn is not None else []

    # ================================================================== compare

    def compare(self, s: Session, req: m.CompareRequest, controls: Sequence[m.Control] = ()) -> Outcome:
        ctrls = self.check_controls(controls, frozenset({ctl.ASSERTION_OID, ctl.MANAGE_DSA_IT_OID}))
        key = self._canon(req.attr)
        with self.store.read() as r:
            self._begin(r, s)
            if not s.is_admin and self.dit.ndn(req.dn) in (self.dit.ndn(SUBSCHEMA_DN),):
                raise LDAPError(RC.insufficientAccessRights)
            e = self._find(r, req.dn, s)
            self._assert(r, ctrls, e, s)
            base = attr_base(key)
            if not self._view(r, s, e.id).can_read(base):
                raise LDAPError(RC.insufficientAccessRights, "no compare access to " + self.display_name(base))
            at = self.schema.attribute(base)
            if at is None or at.equality is None:
                raise LDAPError(RC.inappropriateMatching, f"{self.display_name(key)}: no equality matching rule")
            vals = [v for k, vv in e.attrs.items() if k == key or k.startswith(key + ";") for v in vv]
            if not vals and (base in COMPUTED or base in self.constructed):
                vals = self._computed(r, e, base, s)
        if not vals:
            raise LDAPError(RC.noSuchAttribute)
        try:
            want = self.schema.eq_key(base, req.value)
        except LDAPError:
            return Outcome(RC.compareFalse)
        for v in vals:
            try:
                if self.schema.eq_key(base, v) == want:
                    return Outcome(RC.compareTrue)
            except LDAPError:
                continue
        return Outcome(RC.compareFalse)

    # ================================================================== writes

    def run_writes(self, ops: Sequence[Callable[[WriteTxn], Any]]) -> list[Any]:
        """Run write operations in ONE LMDB write transaction (group commit).

        Returns what each op returned (an Outcome for LDAP writes), or the exception it raised, in order. The batch is
        first run optimistically, ops directly in the transaction; if any op fails, that
        transaction is aborted and the batch replayed with each op in a nested
        transaction, so a failed op leaves nothing and the others still commit (ops
        re-read what they change, so replaying them is safe). If the commit itself fails,
        every op gets that exception. After a successful commit the ``on_commit`` hooks
        run with the highest USN.
        """
        try:
            try:
                results, last = self._run_batch(ops, isolate=False)
            except _BatchFailed as failed:
                if len(ops) == 1:  # nothing else to save: the aborted transaction wrote nothing
                    self.dit.forget()
                    return [failed.exc]
                results, last = self._run_batch(ops, isolate=True)
        except Exception as exc:  # noqa: BLE001 - commit failed: nothing of the batch is durable
            self.dit.forget()
            return [exc for _ in ops]
        for hook in self.on_commit:
            hook(last)
        return results

    def _run_batch(self, ops: Sequence[Callable[[WriteTxn], Any]], *, isolate: bool
                   ) -> tuple[list[Any], int]:
        results: list[Any] = []
        with self.store.write() as w:
            self._begin(w)
            for op in ops:
                if not isolate:
                    try:
                        results.append(op(w))
                    except Exception as exc:  # noqa: BLE001 - abort, replay isolated
                        raise _BatchFailed(exc) from exc
                    continue
                try:
                    with w.nested() as child:
                        results.append(op(child))
                except Exception as exc:  # noqa: BLE001 - reported per op
                    results.append(exc)
            last = w.current_usn()
        return results, last

    # ---------------------------------------------------------------- metadata stamping

    def _stamp(self, e: StoredEntry, attrs: set[str], usn: int, now_ms: int) -> None:
        # the attributes new here share one tuple, which the entry's encoding writes once
        # (``Any``: compiled, a typed tuple would be built anew at each store)
        meta: dict[str, Any] = e.meta
        first: Any = (usn, 1, self.invocation, now_ms, usn)
        for a in attrs:
            old = meta.get(a)
            meta[a] = (usn, old[1] + 1, self.invocation, now_ms, usn) if old else first

    def _stamp_values(self, e: StoredEntry, attr: str, added: list[bytes], removed: list[bytes], usn: int, now_ms: int) -> None:
        """Stamp the ``added`` and ``removed`` values of ``attr`` as changed here at ``usn``.
        A value's metadata is replaced, never changed in place: ``StoredEntry.copy`` shares
        it with the entry's state before the change."""
        vm = e.vmeta.setdefault(attr, [])
        at: dict[bytes, int] = {self._vkey(attr, v.value): i for i, v in enumerate(vm)}
        for val, deleted in [(x, False) for x in added] + [(x, True) for x in removed]:
            k = self._vkey(attr, val)
            i = at.get(k, -1)
            if i < 0:
                at[k] = len(vm)
                vm.append(ValueMeta(val, usn, 1, self.invocation, now_ms, usn, deleted))
            else:
                vm[i] = ValueMeta(val, usn, vm[i].version + 1, self.invocation, now_ms, usn, deleted)

    def value_key(self, attr: str, v: bytes) -> bytes:
        """The key that tells values of ``attr`` apart (the equality-normalised value)."""
        return self._vkey(attr, v)

    def stamp(self, e: StoredEntry, attrs: set[str], usn: int) -> None:
        """Give the ``attrs`` of ``e`` new originating metadata: a change made here at local
        ``usn`` (a rename replication decided, for instance)."""
        self._stamp(e, attrs, usn, int(self.clock() * 1000))

    def store_replica(self, w: WriteTxn, new: StoredEntry, old: StoredEntry | None, usn: int) -> None:
        """Write ``new`` (the result of merging a replicated change into ``old``) at local
        ``usn``: its local USN attributes, name, index and USN rows. The metadata is the
        caller's; nothing is checked against the schema or the access rules (the change was
        checked where it was made)."""
        old_usn = None
        if old is not None:
            old_usn = int(old.attrs.get("usnchanged", [b"0"])[0]) or None
        if old is None or "usncreated" not in new.attrs:
            new.attrs["usncreated"] = [str(usn).encode()]
        new.attrs["usnchanged"] = [str(usn).encode()]
        old_nrdn = _nrdn_of(self, old) if old is not None else None
        self._write_entry(w, new, old, usn, old_usn, _nrdn_of(self, new), old_nrdn)
        # as a local write: names cached by id go stale only when an entry's own name or
        # place changes, and the naming contexts when one appears, goes or comes back (a new
        # or deleted entry elsewhere changes no cached name: with every replicated add
        # bumping the generation, every worker dropped its DN cache on each page of a burst)
        moved = old is not None and (old.parent_id != new.parent_id or old.rdn != new.rdn)
        appeared = old is None or old.flags != new.flags
        if moved or (appeared and new.parent_id == 0):
            self._names_changed(w)
            self.dit.forget()

    def store_housekeeping(self, w: WriteTxn, new: StoredEntry, old: StoredEntry) -> None:
        """Write ``new`` in place of ``old`` at the same local USN: local housekeeping that no
        partner needs to see (purged value tombstones), so nothing is replicated for it."""
        usn = int(old.attrs.get("usnchanged", [b"0"])[0])
        self._write_entry(w, new, old, usn, usn, _nrdn_of(self, new), _nrdn_of(self, old), wire=False)

    def nrdn(self, e: StoredEntry) -> str:
        """The normalised RDN of ``e`` under its parent (its normalised DN for a naming context)."""
        return _nrdn_of(self, e)

    def _vkey(self, attr: str, v: bytes) -> bytes:
        try:
            return self.schema.eq_key(attr_base(attr), v)
        except LDAPError:
            return v

    def _save_change(self, w: WriteTxn, s: Session, e: StoredEntry, old: StoredEntry, changed: set[str],
                     pv_add: dict[str, list[bytes]] | None = None, pv_del: dict[str, list[bytes]] | None = None,
                     ) -> None:
        """Store ``e`` in place of ``old`` (its state before the change): a new USN, the modify
        stamps, replication metadata for the ``changed`` attributes and for the per-value
        attributes' added and removed values, then one put with its name, index and USN rows."""
        self._audit_write(w, s, e, "modify", changed)
        usn = w.alloc_usn()
        now = self.clock()
        now_ms = int(now * 1000)
        e.attrs["modifytimestamp"] = [gentime(now)]
        e.attrs["modifiersname"] = [s.dn.encode()]
        e.attrs["usnchanged"] = [str(usn).encode()]
        self._stamp(e, changed | {"modifytimestamp", "modifiersname", "usnchanged"}, usn, now_ms)
        pv_add, pv_del = pv_add or {}, pv_del or {}
        for a in PER_VALUE_ATTRS:
            if a in pv_add or a in pv_del:
                self._stamp_values(e, a, pv_add.get(a, []), pv_del.get(a, []), usn, now_ms)
        old_usn = int(old.attrs.get("usnchanged", [b"0"])[0]) or None
        self._write_entry(w, e, old, usn, old_usn, _nrdn_of(self, e), _nrdn_of(self, old))

    def _names_changed(self, w: WriteTxn) -> None:
        """A naming context or an entry's name changed: every process rereads roots and DNs."""
        w.set_meta_int("dngen", w.meta_int("dngen") + 1)

    def _write_entry(self, w: WriteTxn, new: StoredEntry, old: StoredEntry | None, usn: int,
                     old_usn: int | None, nrdn: str, old_nrdn: str | None, *, wire: bool = True,
                     index_keys: IndexKeys | None = None) -> None:
        if wire:
            self._set_wire(new)
        w.put(new, old, nrdn=nrdn, old_nrdn=old_nrdn, usn=usn, old_usn=old_usn,
              index_keys=index_keys or self.dit.index_keys)
        if _policy_relevant(new, old, (SCHEMA_ATTR,)):  # added here or replicated: every process reloads
            w.set_meta_int("schemagen", w.meta_int("schemagen") + 1)
            self._sync_schema(w)  # from SCHEMA_STORE_DN (the one entry whose definitions count), as written
        if _policy_relevant(new, old, POLICY_ATTRS):
            w.set_meta_int("polgen", w.meta_int("polgen") + 1)
            if _policy_relevant(new, old, ("lightwaveaci",)):
                w.set_meta_int("acigen", w.meta_int("acigen") + 1)

    def _set_wire(self, e: StoredEntry) -> None:
        """Pre-encode the entry's user attributes (public, secret) for searches that return them all."""
        if e.deleted:
            e.wire_user = e.wire_secret = None
            return
        public: list[tuple[str, list[bytes]]] = []
        secret: list[tuple[str, list[bytes]]] = []
        kinds = self._wire_kinds
        for key in sorted(e.attrs):
            kind = kinds.get(key)
            if kind is None:
                base = attr_base(key)
                at = self.schema.attribute(base)
                kind = kinds[key] = (0 if at is not None and at.operational else
                                     2 if base in SECRET_ATTRS else 1, self.display_name(key))
            if kind[0]:
                (secret if kind[0] == 2 else public).append((kind[1], e.attrs[key]))
        e.wire_user = encode_attribute_list(public)
        e.wire_secret = encode_attribute_list(secret)

    def _prepare_values(self, s: Session, key: str, values: Sequence[bytes], *, dn: str) -> list[bytes]:
        """Validate values of ``key`` (for the entry ``dn``); check clear-text passwords against
        the tenant's password policy and hash them with its scheme."""
        base = attr_base(key)
        out = []
        for i, v in enumerate(values):
            if base == "lightwaveaci":
                try:
                    self._parse_rule(v)
                except (ValueError, UnicodeDecodeError, LDAPError) as exc:
                    raise LDAPError(RC.invalidAttributeSyntax, f"lightwaveAci: value #{i} invalid: {exc}") from None
            if base == "userpassword":
                if not v:
                    raise LDAPError(RC.invalidAttributeSyntax, f"{self.display_name(base)}: value #{i} invalid per syntax")
                if not (s.is_admin and pw.is_hashed(v)):  # a forest administrator's hash is stored as given
                    v = self._new_password(s, v, self.policy_for_dn(dn))
            else:
                self.schema.validate(base, v, index=i)
            out.append(v)
        return out

    def _new_password(self, s: Session, v: bytes, policy: pp.PasswordPolicy) -> bytes:
        """The stored form of a new password: checked against ``policy``, then hashed."""
        if pw.is_hashed(v):
            if policy.check_quality >= 2 and not s.is_admin:
                raise LDAPError(RC.constraintViolation, "the password policy does not accept pre-hashed passwords",
                                controls=(pp.response_control(pp.INSUFFICIENT_QUALITY),))
            return v
        bad = policy.quality_error(v)
        if bad is not None:
            raise LDAPError(RC.constraintViolation, bad[1], controls=(pp.response_control(bad[0]),))
        scheme = policy.scheme or self.config.password_scheme
        params = dict(self._pw_params) if scheme == self.config.password_scheme else {}
        if policy.cost:
            params["time_cost" if scheme == "ARGON2" else "iterations"] = policy.cost
        try:
            return pw.hash_password(v, scheme, **params)
        except (ValueError, TypeError):  # a policy naming a scheme we cannot hash with
            return pw.hash_password(v, self.config.password_scheme, **self._pw_params)

    def _modify_history_check(self, s: Session, dn: str, values: list[bytes]) -> None:
        with self.store.read() as r:
            self._begin(r, s)
            eid = self.dit.id_of(r, dn)
            e = self._read_entry(r, eid) if eid is not None else None
            if e is None or not self._may_see(r, s, e.id):
                return  # the op reports it (noSuchObject)
            # access before policy: someone who may not set it learns nothing about the policy
            self.acl.check_write(s, self._view(r, s, e.id), {"userpassword"}, "entry")
            policy = self.policy_of(r, e.id)
        for v in values:
            self._check_history(e, v, policy)

    def _check_upn(self, w: WriteTxn, s: Session, e: StoredEntry, parent_id: int) -> None:
        """A user principal name names one principal in the whole forest, in its own tenant's realm
        (else binding by it could reach another tenant's account)."""
        v = e.attrs["userprincipalname"][0]
        key = KIND_EQ + self.schema.eq_key("userprincipalname", v)
        for other in w.index_ids("userprincipalname", key) or ():
            if other != e.id:
                raise LDAPError(RC.constraintViolation, "userPrincipalName: value is already in use")
        local, at, realm = v.decode("utf-8", "replace").rpartition("@")
        if not at or not local or not realm:
            raise LDAPError(RC.invalidAttributeSyntax, "userPrincipalName: expected name@realm")
        if s.is_admin or not parent_id:
            return
        root = self.dit.dn_of(w, parent_id)[2]
        tenant = self._tenant_name(w, root)
        if tenant and realm.lower() != tenant:
            raise LDAPError(RC.constraintViolation, f"userPrincipalName: the realm must be this tenant's ({tenant})")

    def _tenant_name(self, r: ReadTxn, root: int) -> str:
        e = r.get(root)
        if e is None:
            return ""
        name = e.attrs.get("lightwavetenantname")
        if name:
            return name[0].decode("utf-8", "replace").lower()
        rdns = dnmod.parse_dn(e.rdn)
        if all(len(rd) == 1 and rd[0][0].lower() == "dc" for rd in rdns):
            return ".".join(rd[0][1] for rd in rdns).lower()
        return ""

    def _allocate_posix(self, w: WriteTxn, e: StoredEntry, attrs: tuple[str, ...]) -> None:
        """Give ``e`` the next uidNumber/gidNumber of this node's range (like 389's DNA plugin):
        each server id owns its own block, so two masters never hand out the same number.

        The server id is read from the store, not this process's copy: the replication
        process may renumber the node (``replication.maintenance``, two nodes that joined at
        once with the same id), and a number some entry already holds (given explicitly, or
        handed out under the old id) is skipped."""
        lo = POSIX_BASE + ((w.meta_int("server_id") or self.server_id) - 1) * POSIX_RANGE
        nxt = max(w.meta_int("posix_next"), lo)
        while nxt < lo + POSIX_RANGE and any(self._posix_taken(w, a, nxt) for a in attrs):
            nxt += 1
        if nxt >= lo + POSIX_RANGE:
            raise LDAPError(RC.unwillingToPerform, "this node's POSIX id range is used up; give uidNumber explicitly")
        w.set_meta_int("posix_next", nxt + 1)
        for a in attrs:
            e.attrs[a] = [str(nxt).encode()]

    def _posix_taken(self, w: WriteTxn, attr: str, n: int) -> bool:
        """Whether an entry holds ``n`` as ``attr`` (known only where it is indexed)."""
        if "eq" not in self.config.indexes.get(attr, ()):
            return False
        return bool(w.index_ids(attr, KIND_EQ + self.schema.eq_key(attr, str(n).encode())))

    def _audit_write(self, w: WriteTxn, s: Session, e: StoredEntry, op: str, changed: set[str] | None) -> None:
        """Changes made by administrators (forest or tenant) to entries other than their own."""
        if self.audit_sink is None or s.method == "internal" or not s.ndn or s.ndn == e.ndn:
            return
        if s.is_admin or self._view(w, s, e.id if e.id else e.parent_id).write_prot:
            if e.deleted:
                op = "delete"
            fields: dict[str, Any] = {"op": op, "dn": e.dn}
            if changed:
                fields["attrs"] = sorted(a for a in changed if not a.startswith("_"))
            self.audit("admin_change", s, **fields)

    def _check_history(self, e: StoredEntry, clear: bytes, policy: pp.PasswordPolicy) -> None:
        """Refuse a new password that is the current one or in the account's history."""
        if not policy.history or pw.is_hashed(clear):
            return
        hashes = list(e.attrs.get("userpassword", []))
        hashes += [h for h in (pp.history_hash(v) for v in e.attrs.get("pwdhistory", [])) if h]
        if any(pw.verify_password(clear, h) for h in hashes[:policy.history + 1]):
            raise LDAPError(RC.constraintViolation, "Password is in history of old passwords",
                            controls=(pp.response_control(pp.IN_HISTORY),))

    def _password_changed(self, e: StoredEntry, old: StoredEntry, policy: pp.PasswordPolicy, s: Session) -> set[str]:
        """Bookkeeping after ``s`` changed ``e``'s password: change time, history, failures, and
        pwdReset (set when someone else set it and the policy says it must then be changed).
        Returns the attributes it touched."""
        now = self.clock()
        e.attrs["pwdchangedtime"] = [gentime(now)]
        touched = {"pwdchangedtime"}
        if policy.history and old.attrs.get("userpassword"):
            hist = list(old.attrs.get("pwdhistory", []))
            hist += [pp.history_value(h, gentime(now, frac=True)) for h in old.attrs["userpassword"]]
            e.attrs["pwdhistory"] = hist[-policy.history:]
            touched.add("pwdhistory")
        for a in ("pwdfailuretime", "pwdaccountlockedtime", "pwdreset", "pwdgraceusetime"):
            if e.attrs.pop(a, None) is not None:
                touched.add(a)
        if policy.must_change and s.ndn != e.ndn and s.method != "internal":
            e.attrs["pwdreset"] = [b"TRUE"]
            touched.add("pwdreset")
        return touched

    def _dedupe(self, key: str, values: list[bytes]) -> list[bytes]:
        if len(values) < 2:
            return values
        seen: set[bytes] = set()
        out = []
        base = attr_base(key)
        for i, v in enumerate(values):
            k = self._vkey(base, v)
            if k in seen:
                raise LDAPError(RC.attributeOrValueExists, f"{self.display_name(key)}: value #{i} provided more than once")
            seen.add(k)
            out.append(v)
        return out

    # ---------------------------------------------------------------- add

    ADD_CONTROLS = frozenset({ctl.POST_READ_OID, ctl.ASSERTION_OID, ctl.MANAGE_DSA_IT_OID, RELAX_OID, ctl.PPOLICY_OID})
    PASSWD_CONTROLS = frozenset({ctl.PPOLICY_OID})

    def add(self, s: Session, req: m.AddRequest, controls: Sequence[m.Control] = ()) -> Callable[[WriteTxn], Outcome]:
        """Validate what needs no store access now; return the op to run in the writer."""
        p = self.prepare_add(s, req, controls)
        return lambda w: self.apply_add(w, s, p)

    def prepare_add(self, s: Session, req: m.AddRequest, controls: Sequence[m.Control] = (), *,
                    precompute: bool = False, deferred: bool = False) -> PreparedAdd:
        """The checks of an add that need no store access (schema, syntax, password policy,
        hashing), as a picklable value for ``apply_add``. Raises LDAPError.

        With ``precompute`` the index keys and the encoded attribute lists of the user
        attributes are computed here too, so that the writer has less to do (bulk import
        prepares entries in other processes); the caller brings the schema up to date
        (``refresh_schema``) first, once for many adds. With ``deferred`` as well, only the
        keys of WRITE_TIME_INDEXES are: the caller passes the add to ``defer_index_keys``.
        """
        ctrls = self.check_controls(controls, self.ADD_CONTROLS)
        if s.anonymous:  # before any lookup: say 'authenticate', not 'no such object'
            self.acl.check_write(s, NOTHING, None, "entry")
        if not precompute:
            self.refresh_schema()
        rdns = self.dit.norm_rdns(req.dn)
        self._guard_schema_store(s, rdns)
        if not rdns:
            raise LDAPError(RC.unwillingToPerform, "cannot add the root DSE")
        attrs: dict[str, list[bytes]] = {}
        for desc, vals in req.attributes:
            key = self._canon(desc)
            if not vals:
                raise LDAPError(RC.protocolError, f"{desc}: no values for attribute type")
            attrs.setdefault(key, []).extend(vals)
        relax = RELAX_OID in ctrls and s.is_admin
        answer = _PolicyAnswer(ctrls)
        for key in list(attrs):
            base = attr_base(key)
            at = self.schema.attribute(base)
            if at is not None and at.no_user_modification and not relax:
                raise LDAPError(RC.constraintViolation, f"{self.display_name(base)}: no user modification allowed")
            with answer:
                attrs[key] = self._dedupe(key, self._prepare_values(s, key, attrs[key], dn=req.dn))
        leaf = leaf_rdn(req.dn)
        for t, v in self.dit.avas(leaf):
            # as slapd does: naming values missing from the entry are added to it
            have = attrs.setdefault(t, [])
            vb = v.encode()
            want = self._vkey(t, vb)
            if not any(self._vkey(t, x) == want for x in have):
                self.schema.validate(t, vb)
                have.append(vb)
        if "objectclass" not in attrs:
            raise LDAPError(RC.objectClassViolation, "no objectClass attribute")
        allocate = _posix_placeholders(attrs)
        structural = self.schema.check_entry(attrs, validate=False)  # values validated on input
        p = PreparedAdd(req.dn, rdns, attrs, dict(ctrls), relax, allocate, structural, rdn=dnmod.format_dn(leaf))
        if precompute and not allocate:
            keep = self.WRITE_TIME_INDEXES
            keys = {a: self.dit.index_keys(a, v) for a, v in attrs.items()
                    if a in self.dit.indexes and (not deferred or a in keep)}
            probe = StoredEntry(0, 0, "", attrs)
            self._set_wire(probe)
            p.index_keys, p.wire = keys, (probe.wire_user, probe.wire_secret)
        return p

    # indexes the write path itself reads (rules, UPN uniqueness, membership): never deferred
    WRITE_TIME_INDEXES = frozenset({"lightwaveaci", "userprincipalname", "member", "uniquemember"})

    def defer_index_keys(self, adds: Sequence[PreparedAdd]) -> dict[str, tuple[list[bytes], list[bytes]]]:
        """The index rows of ``adds`` (prepared with ``deferred``; those with reserved ids in
        increasing order) but for WRITE_TIME_INDEXES, for ``WriteTxn.add_index_rows``:
        attribute -> (stored keys, u64 ids), sorted by key then id. Pass them to
        ``apply_index_rows`` after the adds, in the same transaction. An add with no
        reserved id gets its keys instead, for ``apply_add`` to write. (Two flat lists rather
        than pairs: they cross from the import's helper processes, and pickle them several
        times faster.)"""
        # grouped by key as they are made: a block's entries share most keys (objectClass
        # values, the mail domain's substrings), so only the distinct keys are sorted (a set
        # per entry, then a sort of every (key, id) pair, cost 40% of preparing an entry)
        grouped: dict[str, dict[bytes, list[bytes]]] = {}
        keep = self.WRITE_TIME_INDEXES
        indexes = self.dit.indexes
        for p in adds:
            if p.index_keys is None:
                continue
            if not p.id:  # (never expected: the import reserves an id for every record)
                p.index_keys.update({a: self.dit.index_keys(a, v) for a, v in p.attrs.items()
                                     if a in indexes and a not in keep})
                continue
            pid = pack_u64(p.id)
            for a, values in p.attrs.items():
                if a not in indexes or a in keep:
                    continue
                by_key = grouped.get(a)
                if by_key is None:
                    by_key = grouped[a] = {}
                for k in self.dit.key_list(a, values):
                    if len(k) > MAX_KEY:
                        k = cap_key(k)
                    ids = by_key.get(k)
                    if ids is None:
                        by_key[k] = [pid]
                    elif ids[-1] is not pid:  # (a key twice in one entry: one row)
                        ids.append(pid)  # in id order: the adds' order
        rows: dict[str, tuple[list[bytes], list[bytes]]] = {}
        for a, by_key in grouped.items():
            out_keys: list[bytes] = []
            out_ids: list[bytes] = []
            for k in sorted(by_key):
                ids = by_key[k]
                out_ids.extend(ids)
                out_keys.extend([k] * len(ids))
            rows[a] = (out_keys, out_ids)
        return rows

    def apply_index_rows(self, w: WriteTxn, rows: dict[str, tuple[list[bytes], list[bytes]]],
                         ids: Sequence[int]) -> None:
        """Write deferred index rows, leaving out those of entries that were not added.
        ``ids``: every entry the rows may name (the ids of the adds they were made from;
        a set gathered from the rows themselves cost 5% of an import's writing)."""
        gone = {pack_u64(i) for i in ids if w.raw(i) is None}
        for a, (keys, pids) in rows.items():
            if gone:
                kept = [j for j, pid in enumerate(pids) if pid not in gone]
                keys, pids = [keys[j] for j in kept], [pids[j] for j in kept]
            w.add_index_rows(a, keys, pids)

    def apply_add(self, w: WriteTxn, s: Session, p: PreparedAdd) -> Outcome:
        """The store part of an add prepared by ``prepare_add``, in the write transaction."""
        ctrls, attrs, nrdns, dn = p.controls, p.attrs, p.nrdns, p.dn
        self.check_writable(w)
        eid, anc, n = self.dit.resolve(w, nrdns)
        if eid is not None:
            if not self._may_see(w, s, eid):
                # answered as the add of a new entry there would be: an entry one may not
                # read (another tenant's) does not show that it exists
                pid = self.dit.resolve(w, nrdns[1:])[0] if len(nrdns) > 1 else None
                if pid is None or not self._may_see(w, s, pid):
                    raise LDAPError(RC.noSuchObject)
                self.acl.check_write(s, self._view(w, s, pid), None, "parent")
            raise LDAPError(RC.entryAlreadyExists)
        parent_n = len(nrdns) - 1
        if anc and n == parent_n:
            parent_id = anc
            if not self._may_see(w, s, parent_id):
                raise LDAPError(RC.noSuchObject)
            self.acl.check_write(s, self._view(w, s, parent_id), None, "parent")
            nrdn, rdn = nrdns[0], p.rdn
        elif anc == 0 and s.is_admin:
            # no existing ancestor at all: a new naming context (e.g. a tenant)
            parent_id, nrdn, rdn = 0, ",".join(nrdns), dnmod.format_dn(dnmod.parse_dn(dn))
        else:
            md = matched_dn(dn, n) if anc and self._may_see(w, s, anc) else ""
            if s.anonymous:
                raise LDAPError(RC.insufficientAccessRights, "no write access to parent")
            raise LDAPError(RC.noSuchObject, "", md)
        if ctl.ASSERTION_OID in ctrls:
            probe = StoredEntry(0, parent_id, rdn, attrs)
            probe.dn = dn
            self._assert(w, ctrls, probe, s)
        usn = w.alloc_usn()
        now = self.clock()
        now_ms = int(now * 1000)
        e = StoredEntry(p.id or w.alloc_id(), parent_id, rdn, {k: list(v) for k, v in attrs.items()})
        if p.allocate:
            self._allocate_posix(w, e, p.allocate)
        if "userprincipalname" in e.attrs:
            self._check_upn(w, s, e, parent_id)
        ts = gentime(now)
        ops_attrs = {
            "entryuuid": [new_uuid()],
            "createtimestamp": [ts], "modifytimestamp": [ts],
            "creatorsname": [s.dn.encode()], "modifiersname": [s.dn.encode()],
            "usncreated": [str(usn).encode()], "usnchanged": [str(usn).encode()],
        }
        if p.structural:
            ops_attrs["structuralobjectclass"] = [p.structural.encode()]
        for k, v in ops_attrs.items():
            if not (p.relax and k in e.attrs):
                e.attrs[k] = v
        if ("userpassword" in e.attrs and parent_id and not p.relax and s.method != "internal"
                and self.policy_of(w, parent_id).must_change):
            e.attrs["pwdreset"] = [b"TRUE"]  # set by its creator: to be changed at the first bind
        self._stamp(e, set(e.attrs) | {NAME_META}, usn, now_ms)
        for a in PER_VALUE_ATTRS:
            if a in e.attrs:
                self._stamp_values(e, a, e.attrs[a], [], usn, now_ms)
        keys = p.index_keys
        if keys is None:
            self._write_entry(w, e, None, usn, None, nrdn, None)
        else:  # prepared elsewhere: only the attributes added here need their keys computed
            # (attributes missing from ``keys`` were deferred: see defer_index_keys)
            e.wire_user, e.wire_secret = p.wire
            fresh = {k for k, v in ops_attrs.items() if e.attrs[k] is v}
            self._write_entry(w, e, None, usn, None, nrdn, None, wire=False,
                              index_keys=lambda a, v: self.dit.index_keys(a, v) if a in fresh else keys.get(a, set()))
        e.dn, e.ndn = dn, ",".join(nrdns)
        self._audit_write(w, s, e, "add", None)
        if parent_id == 0:  # a new naming context
            self._names_changed(w)
        out = Outcome()
        if ctl.POST_READ_OID in ctrls:
            e.dn = dn if parent_id else rdn
            out.controls = (self._read_control(w, s, e, ctrls[ctl.POST_READ_OID], ctl.POST_READ_OID),)
        return out

    def _read_control(self, r: ReadTxn, s: Session, e: StoredEntry, c: m.Control, oid: str) -> m.Control:
        attrs = ctl.decode_read_entry_request(c.value)
        sel = self.select_attrs(attrs)
        entry = self.render(r, s, e, sel, False, plain=True)
        assert isinstance(entry, m.SearchResultEntry)
        return m.Control(oid, False, ctl.encode_read_entry_response(entry))

    # ---------------------------------------------------------------- delete

    DELETE_CONTROLS = frozenset({ctl.PRE_READ_OID, ctl.ASSERTION_OID, ctl.MANAGE_DSA_IT_OID, ctl.SUBTREE_DELETE_OID})

    def delete(self, s: Session, req: m.DelRequest, controls: Sequence[m.Control] = ()) -> Callable[[WriteTxn], Outcome]:
        ctrls = self.check_controls(controls, self.DELETE_CONTROLS)
        if s.anonymous:  # before any lookup: say 'authenticate', not 'no such object'
            self.acl.check_write(s, NOTHING, None, "entry")
        self._guard_schema_store(s, self.dit.norm_rdns(req.dn))

        def op(w: WriteTxn) -> Outcome:
            self.check_writable(w)
            e = self._find(w, req.dn, s)
            self.acl.check_write(s, self._view(w, s, e.id), None, "entry")
            self._assert(w, ctrls, e, s)
            out = Outcome()
            if ctl.PRE_READ_OID in ctrls:
                out.controls = (self._read_control(w, s, e, ctrls[ctl.PRE_READ_OID], ctl.PRE_READ_OID),)
            kids = w.children(e.id)
            if kids:
                if ctl.SUBTREE_DELETE_OID not in ctrls:
                    raise LDAPError(RC.notAllowedOnNonLeaf, "subordinate objects must be deleted first")
                # depth first: leaves before parents
                order: list[int] = []
                stack = [e.id]
                while stack:
                    cur = stack.pop()
                    order.append(cur)
                    stack.extend(w.children(cur))
                for cid in reversed(order[1:]):
                    c = w.get(cid)
                    if c is not None and not c.deleted:
                        c.dn, c.ndn, _ = self.dit.dn_of(w, c.id, c.parent_id, c.rdn)
                        self._tombstone(w, s, c)
            self._tombstone(w, s, e)
            return out

        return op

    def _tombstone(self, w: WriteTxn, s: Session, e: StoredEntry) -> None:
        old = e.copy()
        keep = {"objectclass", "entryuuid", "usncreated", "createtimestamp", "creatorsname"}
        removed = {a for a in e.attrs if a not in keep}
        pv_del = {a: e.attrs[a] for a in removed if a in PER_VALUE_ATTRS}
        for a in removed:
            del e.attrs[a]
        e.attrs["isdeleted"] = [b"TRUE"]
        e.attrs["lastknownparent"] = [(e.dn.split(",", 1)[1] if "," in e.dn else "").encode()]
        e.flags |= FLAG_DELETED
        self._save_change(w, s, e, old, removed | {"isdeleted", "lastknownparent"}, pv_del=pv_del)
        if e.parent_id == 0:
            self._names_changed(w)
        self._refint(w, s, e.ndn, None)

    def _refint(self, w: WriteTxn, s: Session, old_ndn: str, new: tuple[str, str] | None) -> None:
        """Referential integrity of group membership: a deleted entry leaves the groups that
        list it, a renamed one is listed under its new name (in the same transaction). A
        group that would lose its last required member keeps the old value. ``new`` is the
        renamed entry's (DN, normalised DN). Only groups of the entry's own tenant and of the
        forest's (the system tenant and ``cn=System``, whose groups grant forest-wide roles)
        follow: another tenant's group naming the entry (which grants it nothing there) must
        not show that the entry exists, nor its new name."""
        key = KIND_EQ + old_ndn.encode()
        forest = {SYSTEM_NDN, self.dit.ndn(self.system_tenant) if self.system_tenant else SYSTEM_NDN}
        for attr in MEMBER_ATTRS:
            for gid in list(w.index_ids(attr, key) or ()):
                g = self._read_entry(w, gid)
                if g is None:
                    continue
                ctx = self.dit.dn_of(w, self.dit.dn_of(w, gid)[2])[1]
                if ctx not in forest and not (old_ndn == ctx or old_ndn.endswith("," + ctx)):
                    continue
                vals = g.attrs.get(attr, [])
                gone = [v for v in vals if self.dit.ndn_or_none(v) == old_ndn]
                if not gone:
                    continue
                old = g.copy()
                keep = [v for v in vals if v not in gone]
                added = []
                if new is not None and not any(self.dit.ndn_or_none(v) == new[1] for v in keep):
                    added = [new[0].encode()]
                g.attrs[attr] = keep + added
                if not g.attrs[attr]:
                    del g.attrs[attr]
                try:
                    self.schema.check_entry(g.attrs, validate=False)
                except LDAPError:
                    continue
                self._save_change(w, s, g, old, {attr}, {attr: added} if added else None, {attr: gone})

    def _refint_below(self, w: WriteTxn, s: Session, top_id: int, old_ndn: str, new_ndn: str) -> None:
        """After the entry ``top_id`` was renamed or moved from ``old_ndn`` to ``new_ndn``,
        group members naming entries below it follow them too."""
        stack = list(w.children(top_id))
        while stack:
            cid = stack.pop()
            stack.extend(w.children(cid))
            dn, ndn, _ = self.dit.dn_of(w, cid)
            self._refint(w, s, ndn[:len(ndn) - len(new_ndn)] + old_ndn, (dn, ndn))

    # ---------------------------------------------------------------- modify

    MODIFY_CONTROLS = frozenset({ctl.PRE_READ_OID, ctl.POST_READ_OID, ctl.ASSERTION_OID, ctl.MANAGE_DSA_IT_OID,
                                 ctl.PERMISSIVE_MODIFY_OID, RELAX_OID, ctl.PPOLICY_OID})

    def _modify_changes(self, s: Session, req: m.ModifyRequest, relax: bool,
                        changes: list[tuple[int, str, list[bytes]]]) -> None:
        """Check and prepare the changes of a modify (no store write): appends (op, key, values)."""
        for ch in req.changes:
            key = self._canon(ch.attr)
            base = attr_base(key)
            at = self.schema.attribute(base)
            if at is not None and at.no_user_modification and not relax:
                raise LDAPError(RC.constraintViolation, f"{self.display_name(base)}: no user modification allowed")
            vals = list(ch.values)
            if base == "userpassword" and ch.op in (m.MOD_ADD, m.MOD_REPLACE) and vals:
                self._modify_history_check(s, req.dn, vals)
            if ch.op in (m.MOD_ADD, m.MOD_REPLACE) and vals:
                vals = self._dedupe(key, self._prepare_values(s, key, vals, dn=req.dn))
            if ch.op == m.MOD_ADD and not vals:
                raise LDAPError(RC.protocolError, f"modify/add: {ch.attr}: no values given")
            if ch.op == m.MOD_INCREMENT:
                if len(vals) != 1:
                    raise LDAPError(RC.protocolError, f"modify/increment: {ch.attr}: exactly one value required")
                try:
                    int(vals[0])
                except ValueError:
                    raise LDAPError(RC.invalidAttributeSyntax, f"{ch.attr}: value #0 invalid per syntax") from None
            changes.append((ch.op, key, vals))

    def modify(self, s: Session, req: m.ModifyRequest, controls: Sequence[m.Control] = ()) -> Callable[[WriteTxn], Outcome]:
        ctrls = self.check_controls(controls, self.MODIFY_CONTROLS)
        if s.anonymous:  # before any lookup: say 'authenticate', not 'no such object'
            self.acl.check_write(s, NOTHING, None, "entry")
        rdns = self.dit.norm_rdns(req.dn)
        if rdns == self._subschema_rdns:
            return self._modify_subschema(s, req)
        self._guard_schema_store(s, rdns)
        self.refresh_schema()
        permissive = ctl.PERMISSIVE_MODIFY_OID in ctrls
        relax = RELAX_OID in ctrls and s.is_admin
        changes: list[tuple[int, str, list[bytes]]] = []
        with _PolicyAnswer(ctrls):
            self._modify_changes(s, req, relax, changes)
        touched = {attr_base(k) for _, k, _ in changes}

        def op(w: WriteTxn) -> Outcome:
            self.check_writable(w)
            e = self._find(w, req.dn, s)
            self.acl.check_write(s, self._view(w, s, e.id), touched, "entry")
            self._assert(w, ctrls, e, s)
            out_ctrls = []
            if ctl.PRE_READ_OID in ctrls:
                out_ctrls.append(self._read_control(w, s, e, ctrls[ctl.PRE_READ_OID], ctl.PRE_READ_OID))
            old = e.copy()
            changed: set[str] = set()
            pv_add: dict[str, list[bytes]] = {}
            pv_del: dict[str, list[bytes]] = {}
            rdn_avas = {(t, self._vkey(t, v.encode())) for t, v in self.dit.rdn_avas(e.dn)}
            for opc, key, vals in changes:
                # values are told apart by their equality keys, looked up in a set or a dict:
                # a change to a group of many thousand members stays linear in its size
                cur = e.attrs.get(key, [])
                base = attr_base(key)
                if opc == m.MOD_ADD:
                    new = list(cur)
                    have = {self._vkey(base, v) for v in cur}
                    for i, v in enumerate(vals):
                        k = self._vkey(base, v)
                        if k in have:
                            if permissive:
                                continue
                            raise LDAPError(RC.attributeOrValueExists, f"modify/add: {self.display_name(key)}: value #{i} already exists")
                        new.append(v)
                        have.add(k)
                        pv_add.setdefault(key, []).append(v)
                    e.attrs[key] = new
                elif opc == m.MOD_DELETE:
                    if not vals:
                        if not cur:
                            if permissive:
                                continue
                            raise LDAPError(RC.noSuchAttribute, f"modify/delete: {self.display_name(key)}: no such attribute")
                        pv_del.setdefault(key, []).extend(cur)
                        e.attrs[key] = []
                    else:
                        pos: dict[bytes, int] = {self._vkey(base, v): j for j, v in enumerate(cur)}
                        gone: set[int] = set()
                        for i, v in enumerate(vals):
                            j = pos.pop(self._vkey(base, v), -1)  # a value named twice is gone the second time
                            if j < 0:
                                if permissive:
                                    continue
                                raise LDAPError(RC.noSuchAttribute, f"modify/delete: {self.display_name(key)}: no such value")
                            gone.add(j)
                            pv_del.setdefault(key, []).append(cur[j])
                        e.attrs[key] = [v for j, v in enumerate(cur) if j not in gone]
                elif opc == m.MOD_REPLACE:
                    valkeys = [self._vkey(base, v) for v in vals]
                    curkeys = [self._vkey(base, v) for v in cur]
                    newkeys, had = set(valkeys), set(curkeys)
                    pv_del.setdefault(key, []).extend(v for v, k in zip(cur, curkeys) if k not in newkeys)
                    pv_add.setdefault(key, []).extend(v for v, k in zip(vals, valkeys) if k not in had)
                    e.attrs[key] = list(vals)
                elif opc == m.MOD_INCREMENT:
                    if not cur:
                        raise LDAPError(RC.noSuchAttribute, f"modify/increment: {self.display_name(key)}: no such attribute")
                    at = self.schema.attribute(base)
                    if at is None or at.equality is None or at.equality.name.lower() != "integermatch":
                        raise LDAPError(RC.constraintViolation, f"{self.display_name(key)}: attribute syntax inappropriate for increment")
                    e.attrs[key] = [str(int(x) + int(vals[0])).encode() for x in cur]
                else:
                    raise LDAPError(RC.protocolError, "unknown modify operation")
                changed.add(key)
                if not e.attrs.get(key):
                    e.attrs.pop(key, None)
            for t, k in rdn_avas:
                if not any(self._vkey(t, v) == k for v in e.attrs.get(t, [])):
                    raise LDAPError(RC.namingViolation, f"naming attribute '{self.display_name(t)}' is not present in entry")
            if changed & {t for t, _ in rdn_avas}:
                changed.add(NAME_META)  # a naming attribute and the name are stamped as one unit
            if "objectclass" in changed:
                try:
                    before = self.schema.structural_class(old.attrs.get("objectclass", []))
                except LDAPError:
                    before = None
                after = self.schema.structural_class(e.attrs.get("objectclass", []))
                if before is not None and after.lower() != before.lower():
                    raise LDAPError(RC.objectClassModsProhibited, "structural object class modification from '%s' to '%s' not allowed" % (before, after))
            self.schema.check_entry(e.attrs, validate=False)  # values validated on input
            if "userprincipalname" in changed and e.attrs.get("userprincipalname"):
                self._check_upn(w, s, e, e.parent_id)
            if "userpassword" in changed:
                changed |= self._password_changed(e, old, self.policy_of(w, e.id), s)
                if s.ndn == e.ndn:
                    s.must_change = False  # changed: the session is no longer restricted
            if "pwdaccountlockedtime" in changed and not e.attrs.get("pwdaccountlockedtime"):
                if e.attrs.pop("pwdfailuretime", None) is not None:  # an unlock starts the count afresh
                    changed.add("pwdfailuretime")
                self.audit("unlock", s, dn=e.dn)
            elif "pwdaccountlockedtime" in changed:
                self.audit("lock", s, dn=e.dn)
            self._save_change(w, s, e, old, changed, pv_add, pv_del)
            if ctl.POST_READ_OID in ctrls:
                out_ctrls.append(self._read_control(w, s, e, ctrls[ctl.POST_READ_OID], ctl.POST_READ_OID))
            return Outcome(controls=tuple(out_ctrls))

        return op

    # ---------------------------------------------------------------- modify DN

    MODDN_CONTROLS = frozenset({ctl.PRE_READ_OID, ctl.POST_READ_OID, ctl.ASSERTION_OID, ctl.MANAGE_DSA_IT_OID})

    def modify_dn(self, s: Session, req: m.ModifyDNRequest, controls: Sequence[m.Control] = ()) -> Callable[[WriteTxn], Outcome]:
        ctrls = self.check_controls(controls, self.MODDN_CONTROLS)
        if s.anonymous:  # before any lookup: say 'authenticate', not 'no such object'
            self.acl.check_write(s, NOTHING, None, "entry")
        old_rdns = self.dit.norm_rdns(req.dn)
        self._guard_schema_store(s, old_rdns)
        new_rdns = dnmod.parse_dn(req.new_rdn)
        if len(new_rdns) != 1:
            raise LDAPError(RC.invalidDNSyntax, "invalid new RDN")
        new_avas = self.dit.rdn_avas(req.new_rdn)
        for t, _ in new_avas:
            at = self.schema.attribute(t)
            if at is not None and at.no_user_modification:
                raise LDAPError(RC.constraintViolation, f"{self.display_name(t)}: no user modification allowed")
        new_nrdn = self.dit.norm_rdns(req.new_rdn)[0]
        parent_rdns = self.dit.norm_rdns(req.new_superior) if req.new_superior is not None else old_rdns[1:]
        self._guard_schema_store(s, (new_nrdn, *parent_rdns))  # nor may another entry become it

        def op(w: WriteTxn) -> Outcome:
            self.check_writable(w)
            e = self._find(w, req.dn, s)
            self.acl.check_write(s, self._view(w, s, e.id), None, "entry")
            self._assert(w, ctrls, e, s)
            if e.parent_id == 0:
                raise LDAPError(RC.unwillingToPerform, "cannot rename a naming context")
            out_ctrls = []
            if ctl.PRE_READ_OID in ctrls:
                out_ctrls.append(self._read_control(w, s, e, ctrls[ctl.PRE_READ_OID], ctl.PRE_READ_OID))
            parent_id = e.parent_id
            if req.new_superior is not None:
                try:
                    sup = self._find(w, req.new_superior, s)
                except LDAPError as exc:
                    raise LDAPError(RC.noSuchObject, "new superior not found", exc.matched_dn) from None
                # not under itself
                anc: int = sup.id
                while anc:
                    if anc == e.id:
                        raise LDAPError(RC.unwillingToPerform, "cannot move an entry below itself")
                    a = w.get(anc)
                    anc = a.parent_id if a else 0
                self.acl.check_write(s, self._view(w, s, sup.id), None, "new superior")
                parent_id = sup.id
            existing = w.lookup(parent_id, new_nrdn)
            if existing is not None and existing != e.id:
                raise LDAPError(RC.entryAlreadyExists)
            old = e.copy()
            changed: set[str] = set()
            pv_add: dict[str, list[bytes]] = {}
            pv_del: dict[str, list[bytes]] = {}
            if req.delete_old_rdn:
                new_keys = {(t, self._vkey(t, v.encode())) for t, v in new_avas}
                for t, v in self.dit.rdn_avas(e.dn):
                    k = self._vkey(t, v.encode())
                    if (t, k) in new_keys:
                        continue
                    vals = e.attrs.get(t, [])
                    keep = [x for x in vals if self._vkey(t, x) != k]
                    if len(keep) != len(vals):
                        pv_del.setdefault(t, []).extend(x for x in vals if self._vkey(t, x) == k)
                        changed.add(t)
                        if keep:
                            e.attrs[t] = keep
                        else:
                            e.attrs.pop(t, None)
            for t, v in new_avas:
                vb = v.encode()
                self.schema.validate(t, vb)
                vals = e.attrs.get(t, [])
                if not any(self._vkey(t, x) == self._vkey(t, vb) for x in vals):
                    at = self.schema.attribute(t)
                    if at is not None and at.single_value and vals:
                        if not req.delete_old_rdn:
                            raise LDAPError(RC.constraintViolation, f"{self.display_name(t)}: multiple values provided")
                        vals = []
                    e.attrs[t] = vals + [vb]
                    pv_add.setdefault(t, []).append(vb)
                    changed.add(t)
            self.schema.check_entry(e.attrs, validate=False)  # values validated on input
            e.parent_id = parent_id
            e.rdn = dnmod.format_dn(new_rdns)
            # the name itself carries metadata too, so renames resolve by the conflict rule; the
            # naming attributes (old and new) with it, so a name never comes from one write and
            # the values it names from another
            naming = {t for t, _ in new_avas} | {t for t, _ in self.dit.rdn_avas(old.dn)}
            self._save_change(w, s, e, old, changed | naming | {NAME_META}, pv_add, pv_del)
            self._names_changed(w)
            self.dit.forget()
            new_dn, new_ndn, _ = self.dit.dn_of(w, e.id, e.parent_id, e.rdn)
            if new_ndn != old.ndn:
                self._refint(w, s, old.ndn, (new_dn, new_ndn))
                self._refint_below(w, s, e.id, old.ndn, new_ndn)
            if ctl.POST_READ_OID in ctrls:
                e.dn, e.ndn, _ = self.dit.dn_of(w, e.id, e.parent_id, e.rdn)
                out_ctrls.append(self._read_control(w, s, e, ctrls[ctl.POST_READ_OID], ctl.POST_READ_OID))
            return Outcome(controls=tuple(out_ctrls))

        return op

    # ================================================================== extended

    def whoami(self, s: Session) -> Outcome:
        return Outcome(extra=(None, ("dn:" + s.dn).encode() if s.dn else b""))

    def password_modify(self, s: Session, value: bytes | None, controls: Sequence[m.Control] = ()
                        ) -> Callable[[WriteTxn], Outcome]:
        """RFC 3062. Returns the write op; its Outcome.extra is (name, value) for the response."""
        ctrls = self.check_controls(controls, self.PASSWD_CONTROLS)
        preq = ctl.decode_passwd_modify_request(value)
        user, old_pw, new_pw = preq.user, preq.old_password, preq.new_password
        if s.anonymous:  # as slapd
            raise LDAPError(RC.strongerAuthRequired, "only authenticated users may change passwords")
        generated = None
        if not new_pw:
            generated = pw.generate_password().encode()
            new_pw = generated
        target_name = user if user else s.dn
        with self.store.read() as r:
            self._begin(r, s)
            target = self._principal(r, target_name)
            if target is None or not self._may_see(r, s, target.id):
                raise LDAPError(RC.noSuchObject, "user not found")
            # access before quality: a stranger learns nothing about the policy
            self.acl.check_write(s, self._view(r, s, target.id), {"userpassword"}, "the password of another user")
            policy = self.policy_of(r, target.id)
        # the old password is verified here (in the thread pool: argon2 is slow), not in the writer
        checked = list(target.attrs.get("userpassword", []))
        if old_pw is not None and not any(pw.verify_password(old_pw, h) for h in checked):
            raise LDAPError(RC.unwillingToPerform, "unwilling to verify old password")
        with _PolicyAnswer(ctrls):
            if not generated:
                self._check_history(target, new_pw, policy)
            hashed = self._new_password(s, new_pw, policy)

        def op(w: WriteTxn) -> Outcome:
            self.check_writable(w)
            e = self._principal(w, target_name)
            if e is None or not self._may_see(w, s, e.id):
                raise LDAPError(RC.noSuchObject, "user not found")
            self.acl.check_write(s, self._view(w, s, e.id), {"userpassword"}, "the password of another user")
            now_stored = e.attrs.get("userpassword", [])
            if (old_pw is not None and now_stored != checked  # changed meanwhile (rare): verify against it
                    and not any(pw.verify_password(old_pw, h) for h in now_stored)):
                raise LDAPError(RC.unwillingToPerform, "unwilling to verify old password")
            old = e.copy()
            e.attrs["userpassword"] = [hashed]
            changed = {"userpassword"} | self._password_changed(e, old, policy, s)
            if s.ndn == e.ndn:
                s.must_change = False  # changed: the session is no longer restricted
            self._save_change(w, s, e, old, changed)
            self.audit("password_change", s, dn=e.dn)
            return Outcome(extra=(None, ctl.encode_passwd_modify_response(generated) if generated else None))

        return op

    # ================================================================== special entries

    def root_dse(self, naming_contexts: list[str]) -> dict[str, list[bytes]]:
        return {
            "objectclass": [b"top", b"OpenLDAProotDSE"] if self.schema.object_class("OpenLDAProotDSE") else [b"top"],
            "namingcontexts": [n.encode() for n in naming_contexts],
            "supportedcontrol": [o.encode() for o in sorted(SUPPORTED_CONTROLS)],
            "supportedextension": [OID_STARTTLS.encode(), OID_WHOAMI.encode(), OID_PASSWD.encode(),
                                   OID_TENANT_CREATE.encode(), OID_TENANT_DELETE.encode()],
            "supportedfeatures": [b"1.3.6.1.1.14", b"1.3.6.1.4.1.4203.1.5.1", b"1.3.6.1.4.1.4203.1.5.2",
                                  b"1.3.6.1.4.1.4203.1.5.3", b"1.3.6.1.4.1.4203.1.5.4", b"1.3.6.1.4.1.4203.1.5.5"],
            "supportedldapversion": [b"3"],
            "supportedsaslmechanisms": [x.encode() for x in self.supported_sasl],
            "vendorname": [b"Lightwave (Python)"],
            "vendorversion": [self.config.vendor_version.encode()],
            "subschemasubentry": [SUBSCHEMA_DN.encode()],
            "entrydn": [b""],
        }

    def subschema(self) -> dict[str, list[bytes]]:
        attrs = {"objectclass": [b"top", b"subentry", b"subschema", b"extensibleObject"], "cn": [b"Subschema"]}
        for k, v in self.schema.subschema_attributes().items():
            attrs[self.schema.canonical_attr(k)] = v
        attrs["entrydn"] = [SUBSCHEMA_DN.encode()]
        attrs["subschemasubentry"] = [SUBSCHEMA_DN.encode()]
        return attrs

    def naming_contexts(self, r: ReadTxn, s: Session | None = None) -> list[str]:
        """The naming contexts (as stored), all of them or those the root DSE shows ``s``
        (``AccessPolicy.lists_context``)."""
        system = self.dit.ndn(self.system_tenant) if s is not None and self.system_tenant else ""
        out = []
        for ndn, rid in r.roots():
            if s is not None and not self.acl.lists_context(s, rid, ndn, system):
                continue
            e = r.get(rid)
            if e is not None and not e.deleted:
                out.append(e.rdn)
        return out

    def monitor(self) -> dict[str, list[bytes]]:
        attrs: dict[str, list[bytes]] = {"objectclass": [b"top", b"lightwaveMonitor"], "cn": [b"monitor"]}
        if self.counters is not None:
            for k, v in self.counters.snapshot().items():
                attrs.setdefault("lwmonitorcounter", []).append(f"{k}={v}".encode())
        with self.store.read() as r:
            attrs["lwmonitorcounter"] = attrs.get("lwmonitorcounter", []) + [
                f"currentUSN={r.meta_int('next_usn')}".encode(),
                f"entries={self.store.stat()['records']}".encode(),
            ]
        return attrs


# ====================================================================== helpers

class _BatchFailed(Exception):
    def __init__(self, exc: BaseException) -> None:
        super().__init__(repr(exc))
        self.exc = exc


def external_identity(s: Session, local_admins: Mapping[int, str]) -> tuple[str | None, dict[str, Any]]:
    """Whom a SASL EXTERNAL bind on ``s`` names, from what its connection established: the
    one place that decides it.

    Over ldapi (``s.local_peer``, the peer's SO_PEERCRED uid and gid) the uid is looked up
    in ``local_admins`` (the server maps root and its own user to the forest administrator);
    any other local user is refused, it authenticates with a password like a remote one.
    Otherwise the subject of a verified TLS client certificate names the entry.

    Returns (DN or principal name to look up, or None when a local uid is not mapped;
    audit fields saying how). Raises inappropriateAuthentication when the connection
    established no identity. Leaves ``s`` unchanged.
    """
    if s.local_peer is not None:
        uid, gid = s.local_peer
        return local_admins.get(uid), {"method": "EXTERNAL", "via": "ldapi", "uid": uid, "gid": gid}
    if s.tls and s.client_cert_subject:
        return s.client_cert_subject, {"method": "EXTERNAL", "via": "certificate"}
    raise LDAPError(RC.inappropriateAuthentication,
                    "SASL EXTERNAL needs a TLS client certificate or a local (ldapi) connection")


class SlowBind(Exception):
    """The bind needs an expensive password hash: run it again with allow_slow=True elsewhere."""


_FAST_SCHEMES = frozenset({"SSHA", "SHA", "SSHA256", "SSHA384", "SSHA512", "SHA256", "SHA384", "SHA512",
                           "SMD5", "MD5", "CLEARTEXT", None})


def _slow_hash(stored: bytes) -> bool:
    return pw.scheme_of(stored) not in _FAST_SCHEMES


# what a password bind reads of the account (_password_login, the ppolicy checks, _disabled):
# decoding only these takes a fifth off a bind's instructions (callgrind: 353k -> 290k)
LOGIN_ATTRS = frozenset({
    "userpassword", "accountdisabled", "createtimestamp", "pwdaccountlockedtime", "pwdfailuretime",
    "pwdchangedtime", "pwdreset", "pwdgraceusetime",
})


def _disabled(e: StoredEntry) -> bool:
    return e.attrs.get("accountdisabled", [b""])[0].upper() == b"TRUE"


def _policy_relevant(new: StoredEntry, old: StoredEntry | None, attrs: Sequence[str]) -> bool:
    """Whether writing ``new`` over ``old`` changes ``attrs`` (rules, group membership, password
    policy), or moves or deletes an entry holding them."""
    if old is None:
        return any(a in new.attrs for a in attrs)
    if any(new.attrs.get(a) != old.attrs.get(a) for a in attrs):
        return True
    moved = new.flags != old.flags or new.parent_id != old.parent_id or new.rdn != old.rdn
    return moved and any(a in old.attrs for a in attrs)


POSIX_BASE = 100_000  # first uidNumber/gidNumber handed out by server id 1
POSIX_RANGE = 1_000_000  # numbers per server id


def _posix_placeholders(attrs: dict[str, list[bytes]]) -> tuple[str, ...]:
    """A posixAccount/posixGroup added without its numbers gets them allocated in the write;
    fill placeholders (and a default home directory) so the schema check passes. Returns the
    attributes to allocate."""
    classes = {c.lower() for c in attrs.get("objectclass", [])}
    want: list[str] = []
    if b"posixaccount" in classes:
        if "uidnumber" not in attrs:
            want.append("uidnumber")
            if "gidnumber" not in attrs:  # a user private group number, the same as the uid
                want.append("gidnumber")
        if "homedirectory" not in attrs and attrs.get("uid"):
            attrs["homedirectory"] = [b"/home/" + attrs["uid"][0]]
    elif b"posixgroup" in classes and "gidnumber" not in attrs:
        want.append("gidnumber")
    for a in want:
        attrs[a] = [b"0"]
    return tuple(want)


def _policy_gen(r: Any) -> int:
    return r.meta_int("polgen")


def _rules_gen(r: Any) -> int:
    return r.meta_int("acigen")


def _nrdn_of(d: Directory, e: StoredEntry) -> str:
    """The dn2id name of ``e`` under its parent (its whole normalised DN for a naming context)."""
    if e.parent_id == 0:
        return d.dit.ndn(e.rdn)
    return d.dit.norm_rdns(e.rdn)[0]


class Selection:
    """Which attributes a search asked for (RFC 4511 4.5.1.8, RFC 3673 '+', RFC 4529 '@oc')."""

    __slots__ = ("all_user", "all_oper", "names", "none", "any_operational", "_memo", "_view_names", "user_only")

    def __init__(self) -> None:
        self.user_only = False  # exactly the user attributes: stored wire bytes can be sent
        self._memo: dict[str, bool] = {}
        # per access view: attribute key -> name to return it under ("" = not returned)
        self._view_names: dict[int, dict[str, str]] = {}
        self.all_user = False
        self.all_oper = False
        self.names: set[str] = set()
        self.none = False
        self.any_operational = False

    @classmethod
    def parse(cls, d: Directory, req: Sequence[str]) -> "Selection":
        sel = cls()
        if not req:
            sel.all_user = sel.user_only = True
            return sel
        for a in req:
            a = a.strip()
            if a == "*":
                sel.all_user = True
            elif a == "+":
                sel.all_oper = True
                sel.any_operational = True
            elif a == "1.1":
                continue
            elif a.startswith("@"):
                oc = d.schema.object_class(a[1:])
                if oc is not None:
                    sel.names |= set(oc.must) | set(oc.may)
            else:
                try:
                    key = d.schema.canonical_attr(a)
                except LDAPError:
                    continue  # unknown types are ignored in the attribute list (RFC 4511)
                sel.names.add(key)
                at = d.schema.attribute(attr_base(key))
                if at is not None and at.operational:
                    sel.any_operational = True
        if not sel.all_user and not sel.all_oper and not sel.names:
            sel.none = True
        sel.user_only = sel.all_user and not sel.all_oper and not sel.names
        return sel

    def names_for(self, view: View) -> dict[str, str]:
        names = self._view_names.get(view.key)
        if names is None:
            if len(self._view_names) > 256:
                self._view_names.clear()
            names = self._view_names[view.key] = {}
        return names

    def wants(self, key: str, d: Directory) -> bool:
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._wants(key, d)
        return hit

    def _wants(self, key: str, d: Directory) -> bool:
        if self.none:
            return False
        base = attr_base(key)
        at = d.schema.attribute(base)
        oper = at is not None and at.operational
        if oper and self.all_oper:
            return True
        if not oper and self.all_user:
            return True
        if key in self.names or base in self.names:
            return True
        # a request for a supertype returns its subtypes ('name' -> cn, sn, ...)
        if at is not None and self.names:
            sup = at.sup
            while sup:
                if sup.lower() in self.names:
                    return True
                sat = d.schema.attribute(sup)
                sup = sat.sup if sat is not None else None
        return False


Result = Union[m.SearchResultEntry, m.EncodedSearchResultEntry]  # what a search yields


class SearchRun:
    """One search in progress. Iterate it for SearchResultEntry values; ``outcome`` after.

    Holds a read transaction for its lifetime: ``close()`` (or exhausting it) ends it.
    """

    def __init__(self, d: Directory, s: Session, req: m.SearchRequest, ctrls: dict[str, m.Control]) -> None:
        self.d = d
        self.s = s
        self.req = req
        self.ctrls = ctrls
        self.outcome = Outcome()
        self._ctx: Any = None
        self._gen: Generator[Result, None, None] | None = None
        self.sent = 0
        self._exact = False
        self._exact_attr = ""
        self._memberof = _mentions(req.filter, "memberof", d)
        self.t0 = 0.0  # when the request arrived (the server's log)
        self.it: Iterator[Result] | None = None  # the server's iteration of it

    def __iter__(self) -> Iterator[Result]:
        if self._gen is None:
            self._gen = self._run()
        return self._gen

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()

    def _limits(self) -> tuple[int, float]:
        d, s, req = self.d, self.s, self.req
        size = req.size_limit
        tlim = req.time_limit
        if not s.is_admin:
            if d.config.size_limit and (size == 0 or size > d.config.size_limit):
                size = d.config.size_limit
            if d.config.time_limit and (tlim == 0 or tlim > d.config.time_limit):
                tlim = d.config.time_limit
        deadline = time.monotonic() + tlim if tlim else 0.0
        return size, deadline

    def _run(self) -> Generator[Result, None, None]:
        d = self.d
        try:
            with d.store.read() as r:
                d._begin(r, self.s)
                yield from self._search(r)
        except LDAPError as exc:
            self.outcome = Outcome(exc.code, exc.message, exc.matched_dn)

    def _special(self, r: ReadTxn, rdns: tuple[str, ...]) -> dict[str, list[bytes]] | None:
        d = self.d
        if not rdns:
            if self.req.scope != m.SCOPE_BASE:
                # as slapd without a default search base: the root DSE is no search of every context
                raise LDAPError(RC.noSuchObject)
            return d.root_dse(d.naming_contexts(r, self.s))
        if len(rdns) == 1:
            nd = rdns[0]
            if nd == d.dit.ndn(SUBSCHEMA_DN):
                return d.subschema()
            if nd == d.dit.ndn(MONITOR_DN):
                if not self.s.is_admin:
                    raise LDAPError(RC.noSuchObject)
                return d.monitor()
        return None

    def _search(self, r: ReadTxn) -> Iterator[Result]:
        d, s, req = self.d, self.s, self.req
        rdns = d.dit.norm_rdns(req.base)
        sel = d.select_attrs(req.attributes)
        match = compile_filter(req.filter, d.schema)
        special = self._special(r, rdns)
        if special is not None:
            if req.scope == m.SCOPE_BASE:
                se = StoredEntry(0, 0, req.base, special)
                se.dn = req.base if rdns else ""
                if match(special, se.dn):
                    if ctl.ASSERTION_OID in self.ctrls:
                        d._assert(r, self.ctrls, se, s)
                    self.sent += 1
                    yield self._render_special(se, sel)
            return
        base: StoredEntry | None = None  # read once: the loop below takes it again (scope base)
        if req.scope == m.SCOPE_BASE or ctl.ASSERTION_OID in self.ctrls:
            base = d._find(r, req.base, s)
            d._assert(r, self.ctrls, base, s)
            base_id = base.id
        else:
            base_id = d._find_id(r, req.base, s)
        size, deadline = self._limits()
        sort_ctrl = self.ctrls.get(ctl.SORT_REQUEST_OID)
        paged = self.ctrls.get(ctl.PAGED_RESULTS_OID)
        page_size, cookie = (0, b"")
        if paged is not None:
            pr = ctl.decode_paged_results(paged.value)
            page_size, cookie = pr.size, pr.cookie
        ids = self._candidates(r, base_id)
        if sort_ctrl is not None or paged is not None:
            ids = sorted(ids) if not isinstance(ids, list) else ids
        start = 0
        if paged is not None and cookie:
            state = s.paging.pop(cookie, None)
            if state is None:
                raise LDAPError(RC.unwillingToPerform, "paged results cookie is invalid")
            start = state
            if page_size == 0:  # abandon the paged search (RFC 2696)
                self.outcome.controls = (m.Control(ctl.PAGED_RESULTS_OID, False, ctl.encode_paged_results(ctl.PagedResults(0, b""))),)
                return
        results: list[StoredEntry] | None = [] if sort_ctrl is not None else None
        if (results is None and paged is None and self._exact and sel.user_only and not req.types_only):
            # the index answered the filter exactly: send stored wire bytes, decode nothing
            for eid in ids:
                raw = r.raw(eid)
                if raw is None:
                    continue
                parent, rdn, flags, wu, ws = decode_wire(raw)
                if flags & FLAG_DELETED or wu is None:
                    continue
                dn, ndn, root = d.dit.dn_of(r, eid, parent, rdn)
                view = d.view_at(r, s, eid, ndn, root)
                if not view.plain:
                    if not view.read or not view.can_read(self._exact_attr):
                        continue
                    fe = r.get(eid)
                    if fe is None or not match(view.readable(fe.attrs), dn):
                        continue
                    fe.dn, fe.ndn = dn, ndn
                    entry: Any = d.render(r, s, fe, sel, False, view=view)
                else:
                    entry = d.wire_entry(view, dn, wu, ws)
                if size and self.sent >= size:
                    raise LDAPError(RC.sizeLimitExceeded)
                self.sent += 1
                yield entry
            return
        n_checked = 0
        matched_in_order = 0
        idx = -1
        for idx, eid in enumerate(ids):
            if idx < start and results is None:
                continue
            n_checked += 1
            if deadline and n_checked % 256 == 0 and time.monotonic() > deadline:
                raise LDAPError(RC.timeLimitExceeded)
            e = base if base is not None and eid == base_id else r.get(eid)
            if e is None or e.deleted:
                continue
            e.dn, e.ndn, root = d.dit.dn_of(r, eid, e.parent_id, e.rdn)
            view = d.view_at(r, s, eid, e.ndn, root)
            if not view.read:
                continue
            attrs = view.readable(e.attrs)
            if self._memberof and view.can_read("memberof"):
                attrs = dict(attrs)
                attrs["memberof"] = d._computed(r, e, "memberof", s)
            if not match(attrs, e.dn):
                continue
            if results is not None:
                results.append(e)
                continue
            if size and self.sent >= size:
                raise LDAPError(RC.sizeLimitExceeded)
            self.sent += 1
            yield d.render(r, s, e, sel, req.types_only, view=view)
            matched_in_order += 1
            if paged is not None and page_size and matched_in_order >= page_size:
                nxt = secrets.token_bytes(8)
                s.paging[nxt] = idx + 1
                self.outcome.controls = (m.Control(ctl.PAGED_RESULTS_OID, False, ctl.encode_paged_results(ctl.PagedResults(0, nxt))),)
                return
        if results is not None:
            assert sort_ctrl is not None  # results is a list only when sorting
            results = self._sort(results, sort_ctrl)
            end = len(results)
            if paged is not None and page_size:
                end = min(len(results), start + page_size)
            for i in range(start, end):
                if size and self.sent >= size:
                    raise LDAPError(RC.sizeLimitExceeded)
                self.sent += 1
                yield d.render(r, s, results[i], sel, req.types_only)
            ctrls_out = [m.Control(ctl.SORT_RESPONSE_OID, False, ctl.encode_sort_response(ctl.SortResult(0)))]
            if paged is not None:
                nxt = b""
                if end < len(results):
                    nxt = secrets.token_bytes(8)
                    s.paging[nxt] = end
                ctrls_out.append(m.Control(ctl.PAGED_RESULTS_OID, False, ctl.encode_paged_results(ctl.PagedResults(0, nxt))))
            self.outcome.controls = tuple(ctrls_out)
            return
        if paged is not None:
            self.outcome.controls = (m.Control(ctl.PAGED_RESULTS_OID, False, ctl.encode_paged_results(ctl.PagedResults(0, b""))),)

    def _render_special(self, e: StoredEntry, sel: Selection) -> m.SearchResultEntry:
        d = self.d
        out = []
        for key, vals in e.attrs.items():
            if key == "entrydn" and not e.dn:
                vals = [b""]
            if sel.wants(key, d):
                out.append((d.display_name(key), () if self.req.types_only else tuple(vals)))
        return m.SearchResultEntry(e.dn, tuple(out))

    def _sort(self, entries: list[StoredEntry], c: m.Control) -> list[StoredEntry]:
        d = self.d
        keys = ctl.decode_sort_request(c.value)
        for sk in reversed(keys):
            attr, reverse = sk.attr, sk.reverse
            try:
                key = d.schema.canonical_attr(attr)
            except LDAPError:
                raise LDAPError(RC.unwillingToPerform, f"sort: unknown attribute {attr}") from None
            at = d.schema.attribute(key)
            ordering = at.ordering if at is not None else None

            def k(e: StoredEntry, key: str = key, ordering: Any = ordering) -> tuple[int, Any]:
                vals = e.attrs.get(key, [])
                if not vals:
                    return (1, b"")  # entries without the attribute sort last (RFC 2891)
                try:
                    if ordering is not None:
                        return (0, min(d.schema.ordering_key(key, v) for v in vals))
                    return (0, min(d.schema.eq_key(key, v) for v in vals))
                except (LDAPError, ValueError):
                    return (0, min(vals))

            present = [e for e in entries if e.attrs.get(key)]
            absent = [e for e in entries if not e.attrs.get(key)]
            present.sort(key=k, reverse=reverse)
            entries = present + absent
        return entries

    def _candidates(self, r: ReadTxn, base_id: int) -> Sequence[int]:
        d, s, req = self.d, self.s, self.req
        if req.scope == m.SCOPE_BASE:
            return [base_id]
        planned = self._plan(r, req.filter)
        if req.scope == m.SCOPE_ONE:
            kids = r.children(base_id)
            if planned is not None and len(planned) < len(kids):
                ks = set(kids)
                return [i for i in planned if i in ks]
            return kids
        # subtree / children
        if planned is not None:
            out = []
            for eid in sorted(planned):
                if eid == base_id:
                    if req.scope == m.SCOPE_SUB:
                        out.append(eid)
                    continue
                if self._under(r, eid, base_id):
                    out.append(eid)
            return out
        limit = 0 if s.is_admin else d.config.unindexed_limit
        ids = [base_id] if req.scope == m.SCOPE_SUB else []
        frontier = [base_id]
        while frontier:
            nxt = []
            for pid in frontier:
                kids = r.children(pid)
                ids.extend(kids)
                nxt.extend(kids)
            if limit and len(ids) > limit:
                raise LDAPError(RC.adminLimitExceeded, "unindexed search would examine too many entries; add an indexed term to the filter")
            frontier = nxt
        return ids

    def _under(self, r: ReadTxn, eid: int, base_id: int) -> bool:
        _, ndn, root = self.d.dit.dn_of(r, eid)
        _, bndn, broot = self.d.dit.dn_of(r, base_id)
        return root == broot and (ndn.endswith("," + bndn) or not bndn)

    def _plan(self, r: ReadTxn, f: m.Filter) -> set[int] | None:
        """Candidate ids from the indexes, or None when the filter cannot use them.

        Sets ``self._exact`` when the candidates are exactly the matching entries (a lone
        equality on an equality index of a non-secret, option-less attribute), so they need
        no re-check against the filter.
        """
        d = self.d
        if f is self.req.filter and isinstance(f, m.Equality) and ";" not in f.attr:
            try:
                key = d.schema.canonical_attr(f.attr)
            except LDAPError:
                key = ""
            self._exact = ("eq" in d.config.indexes.get(key, ()) and key not in SECRET_ATTRS
                           and len(f.value) < 400 and d.schema.subtypes(key) <= {key})
            self._exact_attr = key
        if isinstance(f, m.Equality):
            try:
                key = d.schema.canonical_attr(f.attr)
            except LDAPError:
                return set()
            if key == "memberof":
                try:
                    gndn = d.dit.ndn(f.value.decode("utf-8"))
                except (LDAPError, UnicodeDecodeError):
                    return set()
                return member_ids(r, d.dit, gndn)
            if "eq" not in d.config.indexes.get(key, ()):
                return None
            try:
                ik = KIND_EQ + d.schema.eq_key(key, f.value)
            except LDAPError:
                return set()
            ids = r.index_ids(key, ik)
            return set(ids) if ids is not None else None
        if isinstance(f, m.Present):
            try:
                key = d.schema.canonical_attr(f.attr)
            except LDAPError:
                return set()
            if "pres" in d.config.indexes.get(key, ()):
                ids = r.index_ids(key, KIND_PRES)
                return set(ids) if ids is not None else None
            return None
        if isinstance(f, m.Substrings):
            try:
                key = d.schema.canonical_attr(f.attr)
            except LDAPError:
                return set()
            if "sub" not in d.config.indexes.get(key, ()):
                return None
            keys: list[bytes] = []
            if f.initial:
                piece_n = d.dit.sub_norm(key, f.initial)
                if piece_n is not None and len(piece_n) >= SUB_N:
                    keys.append(KIND_SUBINIT + piece_n[:SUB_N])
            if f.final:
                piece_n = d.dit.sub_norm(key, f.final)
                if piece_n is not None and len(piece_n) >= SUB_N:
                    keys.append(KIND_SUBFINAL + piece_n[-SUB_N:])
            for piece in (f.initial, *f.any, f.final):
                if not piece:
                    continue
                piece_n = d.dit.sub_norm(key, piece)
                if piece_n is None:
                    continue
                for i in range(len(piece_n) - SUB_N + 1):
                    keys.append(KIND_SUB + piece_n[i:i + SUB_N])
            if not keys:
                return None
            counts = sorted((r.index_count(key, k), k) for k in set(keys))
            result: set[int] | None = None
            for _, k in counts[:4]:
                found = set(r.index_ids(key, k) or [])
                result = found if result is None else result & found
                if not result:
                    break
            return result
        if isinstance(f, m.And):
            best: set[int] | None = None
            for sub in sorted(f.filters, key=_plan_rank):
                sp = self._plan(r, sub)
                if sp is None:
                    continue
                best = sp if best is None else best & sp
                if len(best) < 16:
                    break
            return best
        if isinstance(f, m.Or):
            out: set[int] = set()
            for sub in f.filters:
                sp = self._plan(r, sub)
                if sp is None:
                    return None
                out |= sp
            return out
        return None


def _mentions(f: m.Filter, key: str, d: Directory) -> bool:
    """Whether filter ``f`` has a term on attribute ``key``."""
    if isinstance(f, (m.And, m.Or)):
        return any(_mentions(x, key, d) for x in f.filters)
    if isinstance(f, m.Not):
        return _mentions(f.filter, key, d)
    attr = getattr(f, "attr", None)
    if not attr:
        return False
    try:
        return d.schema.canonical_attr(attr) == key
    except LDAPError:
        return False


def _plan_rank(f: m.Filter) -> int:
    # equality first (most selective), objectClass equality last
    if isinstance(f, m.Equality):
        return 2 if f.attr.lower() in ("objectclass", "2.5.4.0") else 0
    if isinstance(f, m.Substrings):
        return 1
    return 3
