"""Which modules are compiled with mypyc (``tools/build_accel.py``), and a guard against
running a compiled module older than its source.

Python imports an extension module (``name.cpython-311-...so``) before ``name.py``. After
an edit, a stale one would silently run the old code, so ``check()`` (called when vmdir is
imported) refuses that with a sentence saying what to run.
"""
from __future__ import annotations

import glob
import os
from importlib.machinery import EXTENSION_SUFFIXES

GROUP = "vmdir._native"  # mypyc's shared library: vmdir/_native__mypyc.*.so

# the per-request path of the directory: codec, protocol core, model, store, directory, audit log
COMPILED = (
    "vmdir.ber._prim", "vmdir.ber._codec", "vmdir.ber._filter", "vmdir.ber._frame",
    "vmdir.proto.messages", "vmdir.proto.events", "vmdir.proto.connection",
    "vmdir.model.dn", "vmdir.model.match", "vmdir.model.ldif", "vmdir.model.password",
    "vmdir.model.schema._rules", "vmdir.model.schema._schema", "vmdir.model.schema._prep",
    "vmdir.model.schema._syntax",
    "vmdir.store._store", "vmdir.store._entrycodec",
    "vmdir.directory._directory", "vmdir.directory._dit", "vmdir.directory._acl",
    "vmdir.directory._session", "vmdir.directory._groups", "vmdir.directory._ppolicy",
    "vmdir.server.audit",
)


def source_of(root: str, module: str) -> str:
    return os.path.join(root, *module.split(".")) + ".py"


def compiled_files(root: str) -> list[str]:
    """The compiled files present under ``root`` (the project directory): every extension
    module in the package, so that one left from a module since taken off the list goes too
    (vmdir has no other native code)."""
    return glob.glob(os.path.join(root, "vmdir", "**", "*.so"), recursive=True)


class StaleBuild(ImportError):
    pass


def check(root: str = "") -> None:
    """Raise StaleBuild when a compiled module under ``root`` (default: this project) is
    older than its source."""
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    stale = []
    for mod in COMPILED:
        src = source_of(root, mod)
        for suffix in EXTENSION_SUFFIXES:
            try:
                if os.stat(src[:-3] + suffix).st_mtime < os.stat(src).st_mtime:
                    stale.append(mod)
            except FileNotFoundError:
                continue
    if stale:
        raise StaleBuild(
            f"{', '.join(stale)}: the compiled module is older than its source; run `make` "
            "(it recompiles), or `python tools/build_accel.py --clean` to run the source interpreted")
