"""Offline tools over a data directory: LDIF export, backup and restore (import: ldifimport)."""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import TextIO

from lightwave.config import NodeConfig
from lightwave.nodes import build_directory, open_store
from vmdir.model import ldif
from vmdir.proto.results import LDAPError


class OfflineError(Exception):
    pass


def export_ldif(cfg: NodeConfig, out: TextIO, base: str | None = None) -> int:
    """Write entries as LDIF, parents before children, with their operational attributes."""
    from lightwave.cli import CLIError

    if not os.path.exists(os.path.join(cfg.store_dir, "data.mdb")):
        raise CLIError(f"no database in {cfg.data_dir} (run 'lightwave up' once, or pass --data-dir)")
    store = open_store(cfg)
    try:
        d = build_directory(cfg, store)
        with store.read() as r:
            d.dit.begin(r)
            if base:
                try:
                    start = [d._find(r, base).id]
                except LDAPError:
                    raise CLIError(f"base {base} not found") from None
            else:
                start = [rid for _, rid in r.roots()]
            n = 0
            stack = list(reversed(start))
            while stack:
                eid = stack.pop()
                e = r.get(eid)
                if e is None or e.deleted:
                    continue
                dn, _, _ = d.dit.dn_of(r, eid, e.parent_id, e.rdn)
                attrs = [(d.display_name(k), v) for k, v in e.attrs.items()]
                attrs.sort(key=lambda a: (a[0].lower() != "objectclass", 0))
                out.write(ldif.format_entry(dn, attrs))
                n += 1
                stack.extend(reversed(r.children(eid)))
        print(f"exported {n} entries", file=sys.stderr)
        return 0
    finally:
        store.close()


def backup(cfg: NodeConfig, dest: str) -> int:
    """A consistent, compacted copy of the database (safe while the server runs)."""
    from lightwave.cli import CLIError

    if not os.path.exists(os.path.join(cfg.store_dir, "data.mdb")):
        raise CLIError(f"no database in {cfg.data_dir}")
    if os.path.exists(dest) and os.listdir(dest):
        raise CLIError(f"{dest} exists and is not empty; choose a new directory")
    os.makedirs(dest, exist_ok=True)
    store = open_store(cfg)
    try:
        store.copy_to(os.path.join(dest, "db"))
        with store.read() as r:
            inv = (r.meta("invocation") or b"").hex()
            usn = r.meta_int("next_usn")
    finally:
        store.close()
    info = {"format": 1, "domain": cfg.domain, "time": time.time(), "invocation": inv, "usn": usn}
    with open(os.path.join(dest, "backup.json"), "w") as f:
        json.dump(info, f, indent=2)
    print(f"backup written to {dest} (USN {usn})", file=sys.stderr)
    return 0


def restore(cfg: NodeConfig, src: str, *, force: bool = False) -> int:
    """Replace the data directory's database with a backup, under a new invocation id."""
    from lightwave.cli import CLIError
    from lightwave.nodes import lock_data_dir

    if not os.path.exists(os.path.join(src, "db", "data.mdb")) or not os.path.exists(os.path.join(src, "backup.json")):
        raise CLIError(f"{src} is not a backup made by 'lightwave backup'")
    held = lock_data_dir(cfg.data_dir, "lightwave restore", "restoring")
    try:
        _restore(cfg, src, force)
    finally:
        os.close(held)
    return 0


def _restore(cfg: NodeConfig, src: str, force: bool) -> None:
    from lightwave.cli import CLIError
    from vmdir.directory import new_invocation

    target = cfg.store_dir
    if os.path.exists(os.path.join(target, "data.mdb")):
        if not force:
            raise CLIError(f"{target} already holds a database; pass --force to replace it")
        aside = f"{target}.before-restore-{int(time.time())}"
        os.rename(target, aside)
        print(f"previous database moved to {aside}", file=sys.stderr)
    os.makedirs(target, exist_ok=True)
    shutil.copyfile(os.path.join(src, "db", "data.mdb"), os.path.join(target, "data.mdb"))
    store = open_store(cfg)
    try:
        with store.read() as r:
            old_inv, highest = r.meta("invocation"), r.meta_int("next_usn")
        inv = new_invocation(store)
        if old_inv is not None:
            from replication.maintenance import mark_restored_store
            mark_restored_store(store, bytes(old_inv), highest)
    finally:
        store.close()
    print(f"restored from {src}; new invocation id {inv.hex()}", file=sys.stderr)

