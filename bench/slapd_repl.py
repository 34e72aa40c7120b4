"""OpenLDAP slapd nodes that replicate, for the replication benchmark (bench/repl_bench.py).

A :class:`SlapdNode` is a :class:`bench.slapd.Slapd` (same back-mdb database, suffix,
rootdn, schemas, indexes, access rules and durability) plus what syncrepl needs:

- the ``syncprov`` overlay (every node can be a provider) and a ``serverID``;
- equality indexes on entryCSN and entryUUID (what the OpenLDAP admin guide recommends
  for syncrepl), unless Lightwave's index list already gave one;
- one ``syncrepl`` consumer per provider URL: refreshAndPersist of the whole suffix,
  bound as the rootdn (which bypasses access control and limits), retried every second;
- ``multiprovider on`` when the node also takes writes (OpenLDAP 2.5's name for
  ``mirrormode``; each node of a pair pulls from the other).

Two multi-provider nodes that start with the same data (the second loads ``slapcat`` of
the first, so entryUUIDs and entryCSNs match)::

    pa, pb = free_port(), free_port()
    a = SlapdNode(dir_a, server_id=1, port=pa, providers=[url(pb)], multiprovider=True)
    b = SlapdNode(dir_b, server_id=2, port=pb, providers=[url(pa)], multiprovider=True)
    a.slapadd(ldif, quick=True, context_csn=True); a.slapcat(copy); b.slapadd(copy, quick=True)
    a.start(); b.start()

A fresh consumer doing a full initial refresh: ``SlapdNode(dir, server_id=2,
providers=[a.url])`` with an empty database, started after the provider.
"""
from __future__ import annotations

import os

from bench.data import ADMIN_DN, ADMIN_PASSWORD, SUFFIX
from bench.procinfo import find_tool
from bench.slapd import Slapd


def url(port: int) -> str:
    """The URL a node listens on, as the other nodes' syncrepl lines name it."""
    return f"ldap://127.0.0.1:{port}/"


class SlapdNode(Slapd):
    """One replicating slapd. ``port`` is chosen by the caller, because a partner's
    configuration must name it before either node starts."""

    def __init__(self, workdir: str, *, server_id: int, port: int, providers: list[str] | tuple[str, ...] = (),
                 multiprovider: bool = False, nosync: bool = False, threads: int | None = None,
                 log=print) -> None:
        # Read by _write_conf, which Slapd.__init__ calls: set before it.
        self.server_id = server_id
        self.providers = list(providers)
        self.multiprovider = multiprovider
        super().__init__(workdir, nosync=nosync, threads=threads, log=log)
        self.port = port

    # ------------------------------------------------------------ config

    def _write_conf(self) -> None:
        """Slapd's configuration, with the replication directives added: global ones
        (module, serverID) before the ``database`` line, per-database ones at its end."""
        super()._write_conf()
        with open(self.conf) as f:
            text = f.read()
        anchor = "moduleload back_mdb\n"
        if anchor not in text:  # bench/slapd.py changed shape: say so rather than guess
            raise RuntimeError(f"cannot add the replication settings: no {anchor.strip()!r} line in {self.conf}")
        text = text.replace(anchor, anchor + "moduleload syncprov\n" + f"serverID {self.server_id}\n", 1)
        indexed = {attr.lower() for attr, _ in self.indexes}
        lines = [f"index {attr} eq" for attr in ("entryCSN", "entryUUID") if attr.lower() not in indexed]
        for k, provider in enumerate(self.providers, start=1):
            # rid is local to this database; one per provider. The credentials are the
            # rootdn's password: the rootdn reads everything (no ACL, no size limit).
            lines.append(
                f"syncrepl rid={k:03d} provider={provider} bindmethod=simple "
                f'binddn="{ADMIN_DN}" credentials="{ADMIN_PASSWORD}" '
                f'searchbase="{SUFFIX}" type=refreshAndPersist retry="1 +" timeout=5'
            )
        if self.multiprovider:
            lines.append("multiprovider on")
        # The overlay goes last: it applies to the database above it.
        lines += ["overlay syncprov", "syncprov-checkpoint 1000 1"]
        with open(self.conf, "w") as f:
            f.write(text + "\n".join(lines) + "\n")

    # ------------------------------------------------------------ offline load and copy

    def slapadd(self, ldif: str, *, quick: bool = False, context_csn: bool = False) -> float:
        """Load ``ldif`` into the stopped database; return elapsed seconds.
        ``context_csn`` (``slapadd -w``) stores the suffix's contextCSN, the provider's
        "what I have" marker that consumers compare their own with."""
        cmd = [self.slapadd_bin, "-f", self.conf, "-l", ldif]
        if quick:
            cmd.append("-q")
        if context_csn:
            cmd.append("-w")
        return self._run_tool(cmd, "slapadd")

    def slapcat(self, out: str) -> float:
        """Dump the stopped database, operational attributes included (entryUUID,
        entryCSN, contextCSN), so that another node can start from an identical copy."""
        slapcat = find_tool("slapcat") or os.path.join(os.path.dirname(self.slapadd_bin), "slapcat")
        return self._run_tool([slapcat, "-f", self.conf, "-l", out], "slapcat")

    def start(self, port: int | None = None, timeout: float = 60.0) -> int:
        return super().start(port or self.port, timeout)

    def describe(self) -> str:
        role = "multiprovider" if self.multiprovider else ("consumer" if self.providers else "provider")
        return (f"slapd serverID {self.server_id} ({role}), back-mdb + syncprov, "
                f"{'dbnosync' if self.nosync else 'durable commits'}, loglevel 0")
