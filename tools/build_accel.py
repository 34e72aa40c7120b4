"""Compile the directory's hot-path modules to C extensions with mypyc.

``make`` runs this after installing (``make run``, ``make test``). The modules stay
ordinary, typed Python source: the compiled ``.so`` files sit beside them and Python
imports those first. With ``LIGHTWAVE_PURE_PYTHON=1`` make skips this and the same
source runs interpreted. ``vmdir._accel.check()`` refuses to import a compiled module
older than its source, so an edit is never silently ignored.

    python tools/build_accel.py            # compile, in place (about 1.5 min on 2 cores)
    python tools/build_accel.py --clean    # remove the compiled files: run interpreted
    python tools/build_accel.py --sources  # the compiled modules' source files (for make)
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join("build", "accel")


def _accel() -> Any:
    """vmdir/_accel.py by its path: importing the package would run its staleness check."""
    spec = importlib.util.spec_from_file_location("_lightwave_accel", os.path.join(ROOT, "vmdir", "_accel.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_A = _accel()


def sources() -> list[str]:
    return [os.path.relpath(_A.source_of(ROOT, m), ROOT) for m in _A.COMPILED]


def clean(keep_log: bool = False) -> None:
    for path in _A.compiled_files(ROOT):
        os.remove(path)
    if keep_log:  # a failed build: its log stays for reading
        for name in os.listdir(os.path.join(ROOT, BUILD)):
            if name != "build.log":
                path = os.path.join(ROOT, BUILD, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    else:
        shutil.rmtree(os.path.join(ROOT, BUILD), ignore_errors=True)


def build() -> int:
    from mypyc.build import mypycify
    from setuptools import setup

    clean()
    os.chdir(ROOT)
    os.makedirs(BUILD, exist_ok=True)
    log_path = os.path.join(BUILD, "build.log")
    # the compiler's chatter goes to the log; on failure its tail is shown
    with open(log_path, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        fd_out, fd_err = os.dup(1), os.dup(2)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            setup(
                name="lightwave-accel",
                # mypy checks the compiled modules; what they import is read, not checked
                ext_modules=mypycify(["--follow-imports=silent", "--ignore-missing-imports", *sources()],
                                     opt_level="3", group_name=_A.GROUP, target_dir=BUILD),
                script_args=["-q", "build_ext", "--inplace", "--build-temp", os.path.join(BUILD, "temp")],
            )
            failed = 0
        except (SystemExit, Exception) as exc:  # noqa: BLE001 - reported below with the log
            failed = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 1
            print(f"build failed: {exc!r}")
        finally:
            os.dup2(fd_out, 1)
            os.dup2(fd_err, 2)
            os.close(fd_out)
            os.close(fd_err)
    if failed or len(_A.compiled_files(ROOT)) != len(_A.COMPILED) + 1:
        with open(log_path) as f:
            lines = f.read().splitlines()
        tail = [ln for ln in lines if not ln.startswith(("gcc ", "copying ", "building ", "creating "))][-25:]
        print("\n".join(tail), file=sys.stderr)
        print(f"lightwave: compiling the hot path with mypyc failed (full log: {log_path}). Fix the error above, "
              "or set LIGHTWAVE_PURE_PYTHON=1 to run the source interpreted.", file=sys.stderr)
        clean(keep_log=True)
        return 1
    return 0


def main(argv: list[str]) -> int:
    if "--clean" in argv:
        clean()
        return 0
    if "--sources" in argv:
        print(" ".join(sources()))
        return 0
    return build()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
