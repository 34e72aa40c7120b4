"""Offline tools over a data directory: LDIF import/export, backup and restore."""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import Any, TextIO

from lightwave.config import NodeConfig
from lightwave.nodes import build_directory, open_store
from vmdir.directory import RELAX_OID, admin_dn
from vmdir.model import ldif
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError

BATCH = 1000


class OfflineError(Exception):
    pass


def import_ldif(cfg: NodeConfig, path: str, *, keep_going: bool = False, quiet: bool = False) -> int:
    """Import content (or changetype: add) records. Returns an exit status."""
    from tqdm import tqdm

    from lightwave.cli import CLIError

    if path != "-" and not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    os.makedirs(cfg.data_dir, exist_ok=True)
    store = open_store(cfg, sync=False)
    try:
        d = build_directory(cfg, store)
        s = d.internal_session(admin_dn(cfg.domain))
        relax = (m.Control(RELAX_OID, True),)
        fh = sys.stdin if path == "-" else open(path, encoding="utf-8")
        total = os.path.getsize(path) if path != "-" else None
        bar = tqdm(total=total, unit="B", unit_scale=True, desc="import", disable=quiet or total is None,
                   file=sys.stderr, mininterval=0.5)
        counted = _CountingLines(fh, bar)
        added = failed = 0
        t0 = time.monotonic()
        batch: list[tuple[ldif.Record, Any]] = []

        def flush() -> bool:
            nonlocal added, failed
            if not batch:
                return True
            results = d.run_writes([op for _, op in batch])
            ok = True
            for (rec, _), res in zip(batch, results):
                if isinstance(res, BaseException):
                    failed += 1
                    ok = False
                    _report(rec, res)
                else:
                    added += 1
            batch.clear()
            return ok or keep_going

        try:
            for rec in ldif.parse(counted, open_url=_read_file):
                if rec.changetype != "add":
                    raise CLIError(f"line {rec.line}: changetype {rec.changetype} is not supported by import "
                                   "(use ldapmodify against a running server)")
                req = m.AddRequest(rec.dn, tuple((t, tuple(v)) for t, v in rec.grouped()))
                try:
                    op = d.add(s, req, relax)
                except LDAPError as exc:
                    failed += 1
                    _report(rec, exc)
                    if not keep_going:
                        break
                    continue
                batch.append((rec, op))
                if len(batch) >= BATCH and not flush():
                    break
            else:
                flush()
        except ldif.LDIFError as exc:
            flush()
            raise CLIError(f"{path}: {exc}") from None
        finally:
            bar.close()
            if fh is not sys.stdin:
                fh.close()
        store.env.sync(True)
        dt = time.monotonic() - t0
        rate = added / dt if dt > 0 else 0.0
        print(f"imported {added} entries in {dt:.1f} s ({rate:,.0f} entries/s); {failed} failed",
              file=sys.stderr)
        return 0 if failed == 0 else 1
    finally:
        store.close()


def _report(rec: ldif.Record, exc: BaseException) -> None:
    if isinstance(exc, LDAPError):
        why = f"{exc.code.name} ({int(exc.code)})" + (f": {exc.message}" if exc.message else "")
        if exc.matched_dn:
            why += f" (matched DN: {exc.matched_dn})"
    else:
        why = f"internal error: {exc!r}"
    print(f"lightwave: line {rec.line}: dn: {rec.dn}: {why}", file=sys.stderr)


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class _CountingLines:
    """Iterate lines of a text file, advancing a progress bar by their size."""

    def __init__(self, fh: TextIO, bar: Any) -> None:
        self.fh = fh
        self.bar = bar

    def __iter__(self) -> Any:
        pending = 0
        for line in self.fh:
            pending += len(line)
            if pending > 1 << 20:
                self.bar.update(pending)
                pending = 0
            yield line
        self.bar.update(pending)


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
    from vmdir.directory import new_invocation

    if not os.path.exists(os.path.join(src, "db", "data.mdb")) or not os.path.exists(os.path.join(src, "backup.json")):
        raise CLIError(f"{src} is not a backup made by 'lightwave backup'")
    pidfile = os.path.join(cfg.data_dir, "lightwave.pid")
    if _running(pidfile):
        raise CLIError("the server is running on this data directory; stop it before restoring")
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
        inv = new_invocation(store)
        with store.write() as w:
            w.set_meta("restored", b"1")
    finally:
        store.close()
    print(f"restored from {src}; new invocation id {inv.hex()}", file=sys.stderr)
    return 0


def _running(pidfile: str) -> bool:
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False
