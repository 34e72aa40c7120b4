"""The admin command line: `lightwave tenant ...` and `lightwave dir ...`.

These commands talk to a running server over LDAP; ``register`` adds them to the
``lightwave`` argument parser (``lightwave.cli.build_parser``).
"""
from __future__ import annotations

from typing import Any

from lightwave.admin import directory, repl, tenant
from lightwave.admin._client import common_options


def register(subparsers: Any) -> None:
    """Add the ``tenant`` and ``dir`` commands to ``subparsers`` (from ``add_subparsers``)."""
    common = common_options()
    tenant.register(subparsers, common)
    directory.register(subparsers, common)
    repl.register(subparsers, common)


__all__ = ["register"]
