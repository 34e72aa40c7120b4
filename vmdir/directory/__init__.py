"""The directory domain layer (layer 3): LDAP operations over the store, synchronous."""
from __future__ import annotations

from vmdir.directory._bootstrap import (
    admin_dn, domain_dn, exists, initialise, is_initialised, new_invocation, node_identity, write_secret,
)
from vmdir.directory._config import DEFAULT_INDEXES, PER_VALUE_ATTRS, DirectoryConfig
from vmdir.directory._directory import (
    MONITOR_DN, OID_PASSWD, OID_STARTTLS, OID_WHOAMI, RELAX_OID, SUBSCHEMA_DN, Directory, Outcome, SearchRun, SlowBind,
)
from vmdir.directory._session import Session
from vmdir.directory._tenants import (
    OID_TENANT_CREATE, OID_TENANT_DELETE, SYSTEM_DN, TENANTS_DN, admins_group_dn, encode_create, encode_delete,
    tenant_create, tenant_delete,
)

__all__ = [
    "admin_dn", "domain_dn", "exists", "initialise", "is_initialised", "new_invocation", "node_identity",
    "write_secret", "DEFAULT_INDEXES", "PER_VALUE_ATTRS", "DirectoryConfig", "MONITOR_DN",
    "OID_PASSWD", "RELAX_OID", "OID_STARTTLS", "OID_WHOAMI", "SUBSCHEMA_DN", "Directory", "Outcome", "SearchRun", "SlowBind",
    "Session", "OID_TENANT_CREATE", "OID_TENANT_DELETE", "SYSTEM_DN", "TENANTS_DN", "admins_group_dn",
    "encode_create", "encode_delete", "tenant_create", "tenant_delete",
]
