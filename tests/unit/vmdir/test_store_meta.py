"""Meta values (generations, counters) read through the per-snapshot memo of Store.read."""
from __future__ import annotations

import pytest

from vmdir.store import Store


def test_each_snapshot_reads_its_own_meta_values(tmp_path) -> None:
    store = Store(str(tmp_path / "db"), map_size=1 << 24)
    with store.write() as w:
        w.set_meta_int("gen", 1)
    with store.read() as old:
        assert old.meta_int("gen") == 1
        with store.write() as w:
            w.set_meta_int("gen", 2)
        with store.read() as new:
            assert new.meta_int("gen") == 2
            assert new.meta_int("absent", 7) == 7 and new.meta("absent") is None
            assert new.meta_int("absent", 9) == 9  # a default is the caller's: never remembered
            assert new.meta_int("gen") == 2  # from the memo of integers now
        assert old.meta_int("gen") == 1  # still its snapshot's value
        with store.read() as again:
            assert again.meta_int("gen") == 2
    with pytest.raises(RuntimeError):
        with store.write() as w:  # an aborted write leaves nothing behind, in the memo either
            w.set_meta_int("gen", 3)
            assert w.meta_int("gen") == 3
            raise RuntimeError("abort")
    with store.read() as r:
        assert r.meta_int("gen") == 2
    with store.write() as w:
        w.set_meta_int("gen", 4)
        w.set_meta("absent", b"\x00" * 8)
    with store.read() as r:
        assert r.meta_int("gen") == 4 and r.meta("absent") == b"\x00" * 8
    store.close()
