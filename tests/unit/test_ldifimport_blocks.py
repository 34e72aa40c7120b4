"""How the bulk import cuts a file into blocks and reserves entry ids for them: a block holds
whole records, and the ids reserved for it are never fewer than its records."""
from __future__ import annotations

import io
import os
import re
import subprocess
import time

from hypothesis import given, settings
from hypothesis import strategies as st

import pytest

from lightwave.ldifimport import SPOOL_IDLE, SPOOL_PREFIX, SpoolError, _blocks, _count_records, _put, _take, remove_stale_spools
from vmdir.model import ldif

lines = st.lists(st.sampled_from(["cn: a", "sn: b", "description: x", "description:: w6k=", "# a comment",
                                  "mail: a@b", "description: folded\n  on two lines"]), max_size=4)


@st.composite
def ldif_texts(draw: st.DrawFn) -> tuple[str, int]:
    """An LDIF text and its number of records: records apart by one or more empty lines,
    with comments and folded lines, a version line or not, an empty line at the end or not."""
    n = draw(st.integers(0, 30))
    parts = ["version: 1\n\n"] if draw(st.booleans()) else []
    for i in range(n):
        body = "\n".join([f"dn: cn=r{i},dc=x", *draw(lines)])
        parts.append(body + "\n" + "\n" * draw(st.integers(1 if i < n - 1 else 0, 3)))
    return "".join(parts), n


@settings(max_examples=200, deadline=None)
@given(ldif_texts(), st.sampled_from([16, 64, 200, 1 << 17]))
def test_blocks_hold_whole_records_and_ids_are_enough(case: tuple[str, int], size: int) -> None:
    text, n = case
    blocks = list(_blocks(io.StringIO(text), size))
    assert "".join(b.text for b in blocks) == text
    total = 0
    for b in blocks:
        records = [r for r in ldif.parse(io.StringIO(b.text))]  # a cut inside a record would not parse
        assert _count_records(b.text) >= len(records)
        total += len(records)
    assert total == n


def test_count_records_of_nothing_is_zero() -> None:
    assert _count_records("") == 0
    assert _count_records("\n\n\n") == 0
    assert _count_records("dn: cn=a,dc=x\ncn: a\n") == 1
    assert _count_records("dn: cn=a,dc=x\ncn: a\n\ndn: cn=b,dc=x\ncn: b\n\n") >= 2


def test_a_prepared_record_crosses_pickle_with_every_field() -> None:
    """Prepared pickles by its fields (a written-out __reduce__): one added later must be added there too."""
    import dataclasses
    import pickle

    from lightwave.ldifimport import Prepared
    from vmdir.proto import messages as m

    p = Prepared(7, "cn=a,dc=x", None, "refused", True, m.AddRequest("cn=a,dc=x", (("cn", (b"a",)),)))
    assert all(getattr(p, f.name) != f.default for f in dataclasses.fields(Prepared) if f.name != "add")
    assert pickle.loads(pickle.dumps(p, protocol=pickle.HIGHEST_PROTOCOL)) == p
    assert len(p.__reduce__()[1]) == len(dataclasses.fields(Prepared))


def test_the_files_blocks_pass_through_are_read_once_and_removed(tmp_path) -> None:
    path = _put(str(tmp_path), b"dn: cn=x\n")
    assert _take(path) == b"dn: cn=x\n"
    assert not list(tmp_path.iterdir())


def test_a_spool_that_cannot_be_written_says_where_and_why(tmp_path) -> None:
    gone = tmp_path / "gone"
    with pytest.raises(SpoolError, match=f"^{re.escape(str(gone))}: No such file or directory$"):
        _put(str(gone), b"x")
    with pytest.raises(SpoolError, match="No such file or directory"):
        _take(str(gone / "f"))


def test_spools_of_imports_that_died_are_removed_and_no_others(tmp_path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"{SPOOL_PREFIX}{dead.pid}-abc"
    stale.mkdir()
    (stale / "block").write_bytes(b"dn: cn=x\n")
    running = tmp_path / f"{SPOOL_PREFIX}{os.getpid()}-def"  # an import running meanwhile
    running.mkdir()
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_bytes(b"x")
    link = tmp_path / f"{SPOOL_PREFIX}{dead.pid}-lnk"  # not a directory of its own
    link.symlink_to(target)
    others = [tmp_path / f"{SPOOL_PREFIX}old", tmp_path / "unrelated-1"]
    for o in others:
        o.mkdir()
    assert remove_stale_spools(str(tmp_path)) == []  # all just changed: maybe a live import's
    long_ago = time.time() - SPOOL_IDLE - 1
    for p in (stale, running, target, *others):
        os.utime(p, (long_ago, long_ago))
    os.utime(link, (long_ago, long_ago), follow_symlinks=False)
    assert remove_stale_spools(str(tmp_path)) == [str(stale)]
    assert not stale.exists()
    assert running.is_dir() and link.is_symlink() and (target / "keep").exists()
    assert all(o.is_dir() for o in others)
    assert remove_stale_spools(str(tmp_path / "missing")) == []
