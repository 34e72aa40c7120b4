"""The directory domain layer (layer 3): LDAP operations over the store, synchronous.

Names are loaded on first use (PEP 562), so a command that only needs the configuration
types does not pay for importing the whole directory.
"""
from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "vmdir.directory._bootstrap": ("exists", "initialise", "is_initialised", "new_invocation", "node_identity",
                                   "write_secret"),
    "vmdir.directory._config": ("DEFAULT_INDEXES", "PER_VALUE_ATTRS", "DirectoryConfig"),
    "vmdir.directory._directory": ("MONITOR_DN", "OID_PASSWD", "OID_STARTTLS", "OID_WHOAMI", "RELAX_OID",
                                   "SUBSCHEMA_DN", "WRITES_PAUSED", "Directory", "Outcome", "PreparedAdd", "SearchRun",
                                   "SlowBind", "writes_paused"),
    "vmdir.directory._session": ("Session",),
    "vmdir.directory._tenants": ("OID_TENANT_CREATE", "OID_TENANT_DELETE", "SYSTEM_DN", "TENANTS_DN", "admin_dn",
                                 "admins_group_dn", "domain_dn", "encode_create", "encode_delete", "tenant_create",
                                 "tenant_delete"),
}
_MODULE_OF = {name: mod for mod, names in _WHERE.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    mod = _MODULE_OF.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
