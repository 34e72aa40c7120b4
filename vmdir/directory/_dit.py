"""DN handling over the store: normalising DNs, resolving them to ids, computing an
entry's DN from its parent chain (with a process-wide cache invalidated whenever any
process renames something), and index keys.
"""
from __future__ import annotations

import functools
import threading

from vmdir.model import dn as dnmod
from vmdir.model.schema import Schema
from vmdir.proto.results import LDAPError, ResultCode
from vmdir.store import KIND_EQ, KIND_PRES, KIND_SUB, KIND_SUBFINAL, KIND_SUBINIT, SUB_N, ReadTxn, WriteTxn

DN_CACHE_MAX = 200_000
RDN_CACHE = 65_536  # normalised RDNs remembered (then forgotten all at once)


class DIT:
    """Names and keys for one store + schema."""

    def __init__(self, schema: Schema, indexes: dict[str, frozenset[str]]) -> None:
        self.schema = schema
        self.indexes = indexes
        self._dn_cache: dict[int, tuple[str, str, int]] = {}  # id -> (dn, ndn, root id)
        self._dn_gen = -1
        self._root_map: dict[str, int] | None = None  # naming contexts by normalised DN, valid for _dn_gen
        self._lock = threading.Lock()
        self._rdn_norms: dict[str, str] = {}  # a plain RDN as written -> normalised (see norm_rdns)
        self._norm_rdns_cached = functools.lru_cache(maxsize=4096)(self._norm_rdns)

    # ------------------------------------------------------------------ normalising

    def _type_norm(self, t: str) -> str:
        at = self.schema.attribute(t)
        if at is None:
            raise LDAPError(ResultCode.invalidDNSyntax, "invalid DN")
        return at.key

    def _value_norm(self, t: str, v: str) -> str:
        at = self.schema.attribute(t)
        if at is None or at.equality is None:
            return dnmod.normalize_value(v)
        try:
            key = self.schema.eq_key(at.key, v.encode("utf-8"))
        except LDAPError:
            raise LDAPError(ResultCode.invalidDNSyntax, "invalid DN") from None
        return key.decode("utf-8", "surrogateescape")

    def norm_rdns(self, dn: str) -> tuple[str, ...]:
        """Normalised RDNs of ``dn``, leaf first. Raises LDAPError(invalidDNSyntax).

        A plain DN (``dnmod.plain_rdns``, nearly every one) is normalised an RDN at a time,
        each RDN looked up as written: the DNs of one tenant share all but their leaf, so a
        DN not seen before costs one new RDN (3.8 us against 8.3 for normalising it whole,
        which binds spread over 100,000 people did for a third of their DNs with the
        whole-DN cache this replaced)."""
        parts = dnmod.plain_rdns(dn)
        if parts is None:
            return self._norm_rdns_cached(dn) if dn else ()
        known = self._rdn_norms
        out = []
        for part in parts:
            n = known.get(part)
            if n is None:
                one = self._norm_rdns(part)
                if len(one) != 1:  # an empty part (",,"): the whole DN's parse says what is wrong
                    return self._norm_rdns_cached(dn)
                n = one[0]
                if len(known) >= RDN_CACHE:
                    known.clear()
                known[part] = n
            out.append(n)
        return tuple(out)

    def forget_names(self) -> None:
        """Drop the normalised names (the schema changed)."""
        self._rdn_norms.clear()
        self._norm_rdns_cached.cache_clear()

    def _norm_rdns(self, dn: str) -> tuple[str, ...]:
        value_norm, type_norm = self._value_norm, self._type_norm
        return tuple(dnmod.normalize_rdn(r, value_norm, type_norm) for r in dnmod.parse_dn(dn))

    def ndn(self, dn: str) -> str:
        return ",".join(self.norm_rdns(dn))

    def rdn_avas(self, dn: str) -> list[tuple[str, str]]:
        """The attribute/value pairs of the leaf RDN of ``dn`` (types as schema keys)."""
        return self.avas(leaf_rdn(dn))

    def avas(self, leaf: dnmod.DNTuple) -> list[tuple[str, str]]:
        """The attribute/value pairs of ``leaf`` (``leaf_rdn``'s: no RDN or one), types as schema keys."""
        if not leaf:
            return []
        return [(self._type_norm(t), v) for t, v in leaf[0]]

    # ------------------------------------------------------------------ index keys

    def index_keys(self, attr: str, values: list[bytes]) -> set[bytes]:
        """The index keys of ``values`` of ``attr`` (none if it is not indexed)."""
        return set(self.key_list(attr, values))

    def key_list(self, attr: str, values: list[bytes]) -> list[bytes]:
        """The index keys of ``values`` of ``attr``, in a list that may hold one twice (bulk
        import groups them by key at once, with no set per entry)."""
        kinds = self.indexes.get(attr)
        if not kinds:
            return []
        out: list[bytes] = []
        if "pres" in kinds:
            out.append(KIND_PRES)
        if "eq" in kinds and attr == "objectclass":
            # superclasses too, so (objectClass=person) finds inetOrgPerson entries
            out.extend([KIND_EQ + k for k in self.schema.objectclass_index_keys(values)])
        elif "eq" in kinds:
            for v in values:
                try:
                    out.append(KIND_EQ + self.schema.eq_key(attr, v))
                except LDAPError:
                    pass
        if "sub" in kinds:
            for v in values:
                s = self.sub_norm(attr, v)
                if s is None:
                    continue
                out.append(KIND_SUBINIT + s[:SUB_N])
                out.append(KIND_SUBFINAL + s[-SUB_N:])
                for i in range(len(s) - SUB_N + 1):
                    out.append(KIND_SUB + s[i:i + SUB_N])
        return out

    def sub_norm(self, attr: str, v: bytes) -> bytes | None:
        """The substring-normalised form of a value or assertion piece, as bytes (None if invalid)."""
        try:
            s = self.schema.substr_prep(attr, v)
        except LDAPError:
            return None
        return s.encode("utf-8") if isinstance(s, str) else bytes(s)

    # ------------------------------------------------------------------ resolving

    def _check_gen(self, r: ReadTxn) -> None:
        gen = r.meta_int("dngen")
        if gen != self._dn_gen:
            with self._lock:
                self._dn_cache.clear()
                self._root_map = None
                self._dn_gen = gen

    def begin(self, r: ReadTxn) -> None:
        """Call at the start of every transaction that reads DNs."""
        self._check_gen(r)

    def forget(self) -> None:
        with self._lock:
            self._dn_cache.clear()
            self._root_map = None
            self._dn_gen = -1

    def dn_of(self, r: ReadTxn, entry_id: int, parent_id: int | None = None, rdn: str | None = None) -> tuple[str, str, int]:
        """(dn, ndn, root id) of entry ``entry_id``."""
        hit = self._dn_cache.get(entry_id)
        if hit is not None:
            return hit
        if parent_id is None or rdn is None:
            e = r.get(entry_id)
            if e is None:
                raise LDAPError(ResultCode.other, "dangling entry id")
            parent_id, rdn = e.parent_id, e.rdn
        if parent_id == 0:
            res = (rdn, self.ndn(rdn), entry_id)
        else:
            pdn, pndn, root = self.dn_of(r, parent_id)
            res = (rdn + "," + pdn, ",".join(self.norm_rdns(rdn)) + "," + pndn, root)
        if len(self._dn_cache) > DN_CACHE_MAX:
            self._dn_cache.clear()
        self._dn_cache[entry_id] = res
        return res

    def resolve(self, r: ReadTxn, ndn_rdns: tuple[str, ...]) -> tuple[int | None, int, int]:
        """Find the entry with the given normalised RDNs (leaf first).

        Returns (id or None, id of the deepest existing ancestor or 0, number of RDNs of that
        ancestor) so callers can report matchedDN.
        """
        if not ndn_rdns:
            return None, 0, 0
        best: tuple[int, int] | None = None  # (root id, number of rdns in the root)
        n = len(ndn_rdns)
        if isinstance(r, WriteTxn):  # a writer may have added a naming context not yet committed
            for k in range(n, 0, -1):
                rid = r.lookup(0, ",".join(ndn_rdns[n - k:]))
                if rid is not None:
                    best = (rid, k)
                    break
        else:
            root_map = self._root_map
            if root_map is None:
                root_map = self._root_map = {ndn: rid for ndn, rid in r.roots()}
            for k in range(n, 0, -1):  # deepest naming context first: O(depth), not O(tenants)
                rid = root_map.get(",".join(ndn_rdns[n - k:]))
                if rid is not None:
                    best = (rid, k)
                    break
        if best is None:
            return None, 0, 0
        cur, depth = best
        for i in range(len(ndn_rdns) - depth - 1, -1, -1):
            nxt = r.lookup(cur, ndn_rdns[i])
            if nxt is None:
                return None, cur, len(ndn_rdns) - i - 1
            cur = nxt
        return cur, cur, len(ndn_rdns)


    def ndn_or_none(self, value: bytes) -> str | None:
        """The normalised form of a DN-valued attribute value (None if it is not a valid DN)."""
        try:
            return self.ndn(value.decode("utf-8"))
        except (LDAPError, UnicodeDecodeError):
            return None

    def id_of(self, r: ReadTxn, dn: str) -> int | None:
        """The id of the entry named ``dn`` (None if missing or not a valid DN)."""
        try:
            eid, _, _ = self.resolve(r, self.norm_rdns(dn))
        except LDAPError:
            return None
        return eid


def leaf_rdn(dn: str) -> dnmod.DNTuple:
    """``parse_dn(dn)[:1]``. A plain DN's leaf is parsed from its first RDN alone, as
    ``DIT.norm_rdns`` parsed it: most often a hit in parse_dn's cache, where parsing the
    whole DN of a new entry cost 4.5 us (twice per add: its naming values, its RDN).
    Raises LDAPError(invalidDNSyntax)."""
    parts = dnmod.plain_rdns(dn)
    if parts is None or not parts[0]:
        return dnmod.parse_dn(dn)[:1]
    return dnmod.parse_dn(parts[0])


def matched_dn(dn: str, n_rdns: int) -> str:
    """The last ``n_rdns`` RDNs of ``dn`` as the client wrote them (for matchedDN)."""
    if n_rdns <= 0:
        return ""
    rdns = dnmod.parse_dn(dn)
    return dnmod.format_dn(rdns[len(rdns) - n_rdns:])

