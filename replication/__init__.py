"""Multi-master, state-based replication between directory nodes (DESIGN section 4).

Public surface: the wire constants (the OIDs a client needs). Modules:
``_wire`` (L1, the control, operation and record encodings), ``_merge`` (L1, the conflict
rule), ``_state`` (L2, bookkeeping in the store's meta), ``_partner`` (L2, the client of a
supplier, with the check of its certificate), ``_supplier`` / ``_consumer`` / ``_puller`` / ``topology`` /
``join`` / ``agent`` (L3), ``service`` (L4, the supplier in the Twisted LDAP front end).
"""
from __future__ import annotations

from replication._wire import PULL_OID, STATUS_OID

__all__ = ["PULL_OID", "STATUS_OID"]
