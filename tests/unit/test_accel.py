"""The mypyc build of the hot path (tools/build_accel.py, vmdir/_accel.py)."""
from __future__ import annotations

import importlib
import os
from importlib.machinery import EXTENSION_SUFFIXES

import pytest

from vmdir import _accel


def _tree(tmp_path, so_age: float) -> str:
    src = tmp_path / "vmdir" / "ber" / "_prim.py"
    src.parent.mkdir(parents=True)
    src.write_text("X = 1\n")
    so = tmp_path / "vmdir" / "ber" / ("_prim" + EXTENSION_SUFFIXES[0])
    so.write_bytes(b"")
    t = os.stat(src).st_mtime
    os.utime(so, (t + so_age, t + so_age))
    return str(tmp_path)


def test_a_compiled_module_older_than_its_source_is_refused(tmp_path) -> None:
    root = _tree(tmp_path, so_age=-10)
    with pytest.raises(_accel.StaleBuild, match=r"vmdir\.ber\._prim: the compiled module is older than its source; run `make`"):
        _accel.check(root)


def test_a_fresh_build_and_no_build_pass(tmp_path) -> None:
    _accel.check(_tree(tmp_path, so_age=10))
    _accel.check(str(tmp_path / "nothing-here"))


@pytest.mark.skipif(os.environ.get("LIGHTWAVE_PURE_PYTHON") == "1", reason="interpreted on purpose")
def test_the_suite_runs_the_compiled_hot_path() -> None:
    """`make test` compiles first: a build that silently produced nothing would leave the
    suite testing the interpreted source only."""
    interpreted = [m for m in _accel.COMPILED if not importlib.import_module(m).__file__.endswith(".so")]
    assert not interpreted, f"not compiled: {interpreted}; run `make` (or set LIGHTWAVE_PURE_PYTHON=1)"
