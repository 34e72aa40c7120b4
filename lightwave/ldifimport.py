"""Offline LDIF import into a data directory, with the per-entry work spread over processes.

The file is cut into blocks of whole records (at blank lines). Helper processes parse a
block and run everything about its entries that needs no write access: schema and syntax
checks, normalisation, password hashing, index keys and the encoded attribute lists
(``Directory.prepare_add(..., precompute=True)``). This process applies the prepared
entries in file order (parents before children), a batch of them per LMDB transaction,
through the same ``Directory.apply_add`` a server's add uses. Blocks are handed out in a
bounded window, so memory stays flat whatever the file size.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import gc
import io
import multiprocessing
import os
import pickle
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from lightwave.config import NodeConfig
from lightwave.nodes import build_directory, open_store
from vmdir.directory import RELAX_OID, Directory, PreparedAdd, admin_dn
from vmdir.model import ldif
from vmdir.proto import messages as m
from vmdir.proto.results import LDAPError

BLOCK_BYTES = 128 << 10  # LDIF text per unit of work for a helper process
BLOCKS_PER_WRITE = 8  # blocks per write transaction (fewer commits: each rewrites the index pages it touched)
# the helpers yield the CPU to the importing process, which writes every entry in turn: with
# the three at one priority on two cores it got two thirds of one (7,600 against 8,200 entries/s)
HELPER_NICE = 10
# OpenLDAP's replication state, which slapcat writes in every entry (and the suffix's
# contextCSN): it means nothing here, and the import leaves it out (saying so) instead of
# refusing every entry of a migration for an undefined attribute type
FOREIGN_STATE = frozenset({"entrycsn", "contextcsn"})
_FOREIGN_LINE = re.compile(r"^(?:entryCSN|contextCSN)[;:]", re.IGNORECASE | re.MULTILINE)
_SKIPPED = object()  # what a record after a failed one "returns" in its transaction (see import_ldif)


Rows = dict[str, tuple[list[bytes], list[bytes]]]  # deferred index rows (Directory.defer_index_keys)


@dataclass(frozen=True, slots=True)
class Block:
    text: str
    first_line: int  # 1-based line number of the block's first line in the file
    size: int  # bytes of the file the block covers, for the progress bar
    first_id: int = 0  # ids reserved for the block's entries: first_id .. first_id + records - 1
    records: int = 0  # at least the number of records in the block


@dataclass(slots=True)
class PreparedBlock:
    block: Block
    entries: list["Prepared"]
    rows: Rows
    foreign: int = 0  # values of FOREIGN_STATE attributes left out


@dataclass(frozen=True, slots=True)
class Prepared:
    line: int
    dn: str
    add: PreparedAdd | None
    error: str = ""  # why the record was refused (add is None)
    fatal: bool = False  # the import cannot go on from here (malformed LDIF, a change record)
    request: m.AddRequest | None = None  # a refused record, to prepare again here (see _Worker.prepare)

    def __reduce__(self) -> tuple[Any, ...]:
        # the fields as constructor arguments: a frozen dataclass otherwise restores its
        # state field by field in interpreted code, and every record crosses processes
        return (Prepared, (self.line, self.dn, self.add, self.error, self.fatal, self.request))


def import_ldif(cfg: NodeConfig, path: str, *, keep_going: bool = False, quiet: bool = False,
                jobs: int | None = None) -> int:
    """Import content (or ``changetype: add``) records. Returns an exit status (1: some failed).

    ``jobs`` helper processes prepare entries (default: one per CPU; 0 prepares them in
    this process). Raises CLIError for a missing file, malformed LDIF or a change record.
    """
    from tqdm import tqdm

    from lightwave.cli import CLIError

    if path != "-" and not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if jobs is None:
        jobs = len(os.sched_getaffinity(0))
    # an import makes many short-lived objects without cycles: reference counting frees
    # them, and the cycle collector, walking them again and again, only costs (about 12%)
    gc.disable()
    os.makedirs(cfg.data_dir, exist_ok=True)
    store = open_store(cfg, sync=False)
    fh: TextIO = sys.stdin if path == "-" else open(path, encoding="utf-8", newline=None)
    total = os.path.getsize(path) if path != "-" else None
    bar = tqdm(total=total, unit="B", unit_scale=True, desc="import", disable=quiet or total is None,
               file=sys.stderr, mininterval=0.5)
    added = failed = foreign = 0
    t0 = time.monotonic()
    try:
        d = build_directory(cfg, store)  # identity, indexes: before the helpers open the store
        s = d.internal_session(admin_dn(cfg.domain))

        def apply(batch: list[Prepared], rows: list[tuple[Rows, list[int]]]) -> bool:
            """Add ``batch`` and the deferred index rows in one transaction; False: stop.

            Without ``keep_going`` the records after a failed one are left out too, so the
            import stops exactly there."""
            nonlocal added, failed
            if not batch and not rows:
                return True
            first_failed = [len(batch)]

            def add(w: Any, i: int, p: Prepared) -> Any:
                if i > first_failed[0]:
                    return _SKIPPED  # after the failed record (an isolated replay of the batch)
                try:
                    return d.apply_add(w, s, p.add)
                except Exception:
                    if not keep_going:
                        first_failed[0] = min(first_failed[0], i)
                    raise

            ops: list[Callable[[Any], Any]] = [functools.partial(add, i=i, p=p) for i, p in enumerate(batch)]
            ops += [functools.partial(d.apply_index_rows, rows=r, ids=ids) for r, ids in rows]  # only rows of entries added
            results = d.run_writes(ops)
            ok = True
            for p, res in zip(batch, results):
                if isinstance(res, BaseException):
                    failed += 1
                    ok = False
                    _report(p.line, p.dn, res)
                elif res is not _SKIPPED:
                    added += 1
            broken = [r for r in results[len(batch):] if isinstance(r, BaseException)]
            if broken:  # the store failed (full disk...): nothing of it is in
                near = f" near line {batch[0].line}" if batch else ""
                raise CLIError(f"{path}: writing entries failed{near}: {broken[0]!r}")
            return ok or keep_going

        def reserve(n: int) -> int:
            with store.write() as w:
                return w.reserve_ids(n)

        here = _Worker(cfg, d)
        pending: list[Prepared] = []  # prepared, to add in the next transaction
        pending_rows: list[tuple[Rows, list[int]]] = []  # their blocks' deferred index rows, the ids they may name
        pending_bytes = pending_blocks = 0

        def flush() -> bool:
            nonlocal pending_bytes, pending_blocks
            ok = apply(pending, pending_rows)
            bar.update(pending_bytes)
            pending.clear()
            pending_rows.clear()
            pending_bytes = pending_blocks = 0
            return ok

        try:
            with _Preparer(cfg, jobs, here, reserve) as prepare:
                for pb in prepare(_blocks(fh)):
                    foreign += pb.foreign
                    stop = fatal = None
                    for p in pb.entries:
                        if p.fatal:
                            stop = fatal = p
                            break
                        if p.add is None and pending and not flush():  # what it may need first (its schema), written first
                            stop = p
                            break
                        if p.add is None:
                            p = here.prepare_again(p)
                        if p.add is None:
                            failed += 1
                            print(f"lightwave: line {p.line}: dn: {p.dn}: {p.error}", file=sys.stderr)
                            if not keep_going:
                                stop = p
                                break
                            continue
                        pending.append(p)
                    pending_rows.append((pb.rows, [p.add.id for p in pb.entries if p.add is not None]))
                    pending_bytes += pb.block.size
                    pending_blocks += 1
                    if (stop is not None or pending_blocks >= BLOCKS_PER_WRITE) and not flush():
                        break
                    if fatal is not None:
                        raise CLIError(f"{path}: line {fatal.line}: {fatal.error}")
                    if stop is not None:
                        break
                else:
                    flush()
        except UnicodeDecodeError:  # reading the file (the blocks read before it were handed back first)
            flush()  # the records before it are in, as before a malformed record
            raise CLIError(f"{path}: not UTF-8 text (LDIF carries other bytes base64-encoded, 'attr:: ...')") from None
        except SpoolError as exc:  # its files: the helpers were stopped, what they held is dropped
            flush()  # the records before it are in, as above
            raise CLIError(f"handing blocks to the helper processes failed: {exc}. Set TMPDIR to a directory "
                           "with a few MB free (or import with --jobs 0); the entries imported before it "
                           "stay in") from None
        store.env.sync(True)
    finally:
        bar.close()
        if fh is not sys.stdin:
            fh.close()
        store.close()
        gc.enable()
    dt = time.monotonic() - t0
    rate = added / dt if dt > 0 else 0.0
    if foreign:
        print(f"lightwave: note: left out {foreign} entryCSN/contextCSN values (OpenLDAP's replication state, "
              "which means nothing here; entryUUID and the timestamps are kept)", file=sys.stderr)
    print(f"imported {added} entries in {dt:.1f} s ({rate:,.0f} entries/s); {failed} failed", file=sys.stderr)
    return 0 if failed == 0 else 1


def _report(line: int, dn: str, exc: BaseException) -> None:
    print(f"lightwave: line {line}: dn: {dn}: {_why(exc)}", file=sys.stderr)


def _why(exc: BaseException) -> str:
    if isinstance(exc, LDAPError):
        why = f"{exc.code.name} ({int(exc.code)})" + (f": {exc.message}" if exc.message else "")
        if exc.matched_dn:
            why += f" (matched DN: {exc.matched_dn})"
        return why
    return f"internal error: {exc!r}"


# ------------------------------------------------------------------ blocks of records

def _blocks(fh: TextIO, size: int = BLOCK_BYTES) -> Iterator[Block]:
    """Cut a text stream into blocks of whole records (cut after an empty line)."""
    line_no = 1
    rest = ""
    while True:
        chunk = fh.read(size)
        buf = rest + chunk
        if not chunk:
            if buf:
                yield Block(buf, line_no, len(buf.encode("utf-8")))
            return
        cut = buf.rfind("\n\n")
        if cut < 0:
            rest = buf  # one record longer than a block: keep reading
            continue
        text, rest = buf[:cut + 2], buf[cut + 2:]
        yield Block(text, line_no, len(text.encode("utf-8")))
        line_no += text.count("\n")


# ------------------------------------------------------------------ preparing (in helpers)

class _Worker:
    """What a helper process holds: its own store handle and Directory."""

    def __init__(self, cfg: NodeConfig, d: Directory | None = None) -> None:
        self.d = d if d is not None else build_directory(cfg, open_store(cfg, sync=False))
        self.s = self.d.internal_session(admin_dn(cfg.domain))
        self.relax = (m.Control(RELAX_OID, True),)

    def prepare_again(self, p: Prepared) -> Prepared:
        """``p`` (refused by a helper) prepared here, where every earlier record is written."""
        if p.request is None:
            return p
        self.d.refresh_schema()  # the file's own schema, written since
        try:
            return Prepared(p.line, p.dn, self.d.prepare_add(self.s, p.request, self.relax, precompute=True))
        except LDAPError as exc:
            return Prepared(p.line, p.dn, None, _why(exc))

    def prepare(self, block: Block) -> PreparedBlock:
        """The block's records, prepared; one with ``fatal`` stops the import there."""
        out: list[Prepared] = []
        base = block.first_line - 1
        next_id, end_id = block.first_id, block.first_id + block.records
        self.d.refresh_schema()  # once for the block (prepare_add with precompute leaves it to us)
        folded = block.text.lower()  # a scan for the words first: the expression alone costs more
        foreign_here = ("entrycsn" in folded or "contextcsn" in folded) and _FOREIGN_LINE.search(block.text) is not None
        foreign = 0
        try:
            for rec in ldif.parse(io.StringIO(block.text), open_url=_read_file):
                line = base + rec.line
                if rec.changetype != "add":
                    out.append(Prepared(line, rec.dn, None, f"changetype {rec.changetype} is not supported by "
                                        "import (use ldapmodify against a running server)", fatal=True))
                    break
                attrs = rec.attributes()
                if foreign_here:
                    kept = tuple([(t, v) for t, v in attrs if t.split(";", 1)[0].lower() not in FOREIGN_STATE])
                    foreign += sum(len(v) for _, v in attrs) - sum(len(v) for _, v in kept)
                    attrs = kept
                req = m.AddRequest(rec.dn, attrs)
                try:
                    p = self.d.prepare_add(self.s, req, self.relax, precompute=True, deferred=True)
                except LDAPError as exc:
                    # a helper runs ahead of the writes: schema the file adds earlier may not be
                    # stored yet, so the importing process tries such a record again in turn
                    out.append(Prepared(line, rec.dn, None, _why(exc), request=req))
                    continue
                if next_id < end_id:  # else (never expected): apply_add allocates one
                    p.id, next_id = next_id, next_id + 1
                out.append(Prepared(line, rec.dn, p))
        except ldif.LDIFError as exc:
            out.append(Prepared(base + exc.line, "", None, str(exc).split(": ", 1)[-1], fatal=True))
        rows = self.d.defer_index_keys([p.add for p in out if p.add is not None])
        return PreparedBlock(dataclasses.replace(block, text=""), out, rows, foreign)  # the text is not needed back


_worker: _Worker | None = None  # per helper process (multiprocessing's initializer pattern)


def _init_worker(cfg: NodeConfig) -> None:
    global _worker
    gc.disable()  # as in the importing process (import_ldif); this process ends with the import
    os.nice(HELPER_NICE)
    _worker = _Worker(cfg)


class SpoolError(Exception):
    """Passing a block or a result through its file failed (the temporary directory is full...)."""


SPOOL_PREFIX = "lightwave-import-"  # then the importing process's pid, "-", and mkdtemp's letters
SPOOL_IDLE = 60.0  # seconds a spool directory has not changed before it may be stale


def remove_stale_spools(tmp: str | None = None) -> list[str]:
    """Remove the spool directories in ``tmp`` (the temporary directory) that imports killed
    on the way left (their importing process is gone: ``kill -9``, a crash); returns them.
    Only this user's, unchanged for SPOOL_IDLE seconds, and whose process is not running:
    an import running meanwhile keeps its own (its spool changes every few milliseconds,
    which also covers one running in another PID namespace with a shared $TMPDIR). A
    temporary directory that cannot be read is left alone."""
    gone: list[str] = []
    try:
        tmp = tmp or tempfile.gettempdir()
        names = os.listdir(tmp)
    except OSError:  # (gettempdir: "No usable temporary directory found")
        return gone
    for name in names:
        if not name.startswith(SPOOL_PREFIX):
            continue
        pid = name[len(SPOOL_PREFIX):].split("-", 1)[0]
        path = os.path.join(tmp, name)
        try:
            st = os.lstat(path)
            if (not pid.isdigit() or st.st_uid != os.getuid() or not stat.S_ISDIR(st.st_mode)
                    or time.time() - st.st_mtime < SPOOL_IDLE):
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:  # no such process: what it left is nobody's
            shutil.rmtree(path, ignore_errors=True)
            gone.append(path)
        except OSError:  # running as another user (EPERM), or vanished meanwhile
            continue
    return gone


def _put(spool: str, data: bytes) -> str:
    """``data`` in a new file in ``spool``; its path."""
    try:
        fd, path = tempfile.mkstemp(dir=spool)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise SpoolError(f"{spool}: {exc.strerror or exc}") from None
    return path


def _take(path: str) -> bytes:
    """The contents of a file ``_put`` wrote, which is removed."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        os.unlink(path)
    except OSError as exc:
        raise SpoolError(f"{path}: {exc.strerror or exc}") from None
    return data


def _prepare_in_worker(block: Block, text_path: str) -> str:
    """Prepare the block whose text is in ``text_path``; the path of the pickled PreparedBlock,
    in the same directory."""
    assert _worker is not None
    prepared = _worker.prepare(dataclasses.replace(block, text=_take(text_path).decode("utf-8")))
    return _put(os.path.dirname(text_path), pickle.dumps(prepared, pickle.HIGHEST_PROTOCOL))


def _result(pending: Any) -> PreparedBlock:
    """The PreparedBlock of a ``_prepare_in_worker`` call (its AsyncResult), when it is done."""
    return pickle.loads(_take(pending.get()))


class _Preparer:
    """``with _Preparer(cfg, jobs, local, reserve) as prepare: for block, prepared in prepare(blocks)``,
    in order; at most a few blocks ahead of the consumer. ``jobs=0``: in this process, by
    ``local``."""

    def __init__(self, cfg: NodeConfig, jobs: int, local: _Worker, reserve: Callable[[int], int]) -> None:
        self.cfg = cfg
        self.jobs = jobs
        self.local = local
        self.reserve = reserve
        self.pool: Any = None
        self.spool = ""  # a directory of files the helpers and this process pass (see __enter__)

    def _with_ids(self, blocks: Iterator[Block]) -> Iterator[Block]:
        for b in blocks:
            n = _count_records(b.text)
            yield Block(b.text, b.first_line, b.size, self.reserve(n) if n else 0, n)

    def __enter__(self) -> Callable[[Iterator[Block]], Iterator[PreparedBlock]]:
        remove_stale_spools()
        if self.jobs > 0:
            ctx = multiprocessing.get_context("spawn")  # never fork an open LMDB environment
            # the blocks and what the helpers make of them (400 KiB for 128 KiB of people) go through
            # short-lived files in the temporary directory ($TMPDIR), like sort(1)'s, and only
            # their names through multiprocessing's pipes: a pipe moves them 64 KiB at a
            # time, each a wakeup of both ends, and the pool's result thread unpickled beside
            # the writer, taking turns with it (9,100 against 10,000 entries/s). A file is
            # removed as it is read, long before the page cache would write it out.
            try:
                self.spool = tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-")
            except OSError as exc:  # no usable temporary directory ("No usable temporary directory found in [...]")
                raise SpoolError(str(exc.strerror or exc)) from None
            try:
                self.pool = ctx.Pool(self.jobs, initializer=_init_worker, initargs=(self.cfg,))
            except BaseException:
                shutil.rmtree(self.spool, ignore_errors=True)
                raise
            return self._pooled
        return lambda blocks: (self.local.prepare(b) for b in self._with_ids(blocks))

    def _pooled(self, blocks: Iterator[Block]) -> Iterator[PreparedBlock]:
        window: collections.deque[Any] = collections.deque()
        # a write's worth of blocks ahead and more: while the writer applies one transaction
        # the helpers prepare the next (with two blocks per helper ahead only, they sat idle
        # through each write: 6,000 against 7,000 entries/s)
        limit = BLOCKS_PER_WRITE + 2 * self.jobs + 1
        todo = self._with_ids(blocks)
        while True:
            try:
                b = next(todo)
            except StopIteration:
                break
            except Exception:  # reading the file failed (not UTF-8...): the blocks read before it first
                while window:
                    yield _result(window.popleft())
                raise
            path = _put(self.spool, b.text.encode("utf-8"))
            window.append(self.pool.apply_async(_prepare_in_worker, (dataclasses.replace(b, text=""), path)))
            if len(window) >= limit:
                yield _result(window.popleft())
        while window:
            yield _result(window.popleft())

    def __exit__(self, *exc: Any) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            shutil.rmtree(self.spool, ignore_errors=True)


def _count_records(text: str) -> int:
    """An upper bound of the records in ``text``, a block of whole records: each record but
    the last is followed by an empty line (a regular expression for 'dn:' lines cost the
    importing process a twentieth of its time)."""
    if not text or text.isspace():
        return 0
    return text.count("\n\n") + 1


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
