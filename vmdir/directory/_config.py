"""Directory settings: a frozen, validated value built by lightwave.config."""
from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_INDEXES: dict[str, frozenset[str]] = {
    "objectclass": frozenset({"eq"}),
    "uid": frozenset({"eq", "sub"}),
    "cn": frozenset({"eq", "sub"}),
    "sn": frozenset({"eq"}),
    "mail": frozenset({"eq", "sub"}),
    "member": frozenset({"eq"}),
    "uniquemember": frozenset({"eq"}),
    "memberuid": frozenset({"eq"}),
    "uidnumber": frozenset({"eq"}),
    "gidnumber": frozenset({"eq"}),
    "userprincipalname": frozenset({"eq"}),
    "entryuuid": frozenset({"eq"}),
    "dnshostname": frozenset({"eq"}),
}

# Indexes the directory itself relies on (bind by UPN, group membership, access rules):
# always maintained, whatever the configuration lists.
REQUIRED_INDEXES: dict[str, frozenset[str]] = {
    "objectclass": frozenset({"eq"}),
    "member": frozenset({"eq"}),
    "uniquemember": frozenset({"eq"}),
    "userprincipalname": frozenset({"eq"}),
    "lightwaveaci": frozenset({"pres"}),
}
DEFAULT_INDEXES["lightwaveaci"] = frozenset({"pres"})

# Attributes whose values carry their own replication metadata (DESIGN section 4).
PER_VALUE_ATTRS = frozenset({"member", "uniquemember", "memberuid"})


@dataclass(frozen=True, slots=True)
class DirectoryConfig:
    size_limit: int = 500  # entries per search for non-administrators (0 = none)
    time_limit: int = 3600  # seconds per search for non-administrators (0 = none)
    unindexed_limit: int = 5000  # entries an unindexed search of a non-administrator may scan
    password_scheme: str = "ARGON2"
    password_params: tuple[tuple[str, int], ...] = ()
    indexes: dict[str, frozenset[str]] = field(default_factory=lambda: dict(DEFAULT_INDEXES))
    vendor_version: str = "0.1.0"

    def __post_init__(self) -> None:
        merged = dict(self.indexes)
        for attr, kinds in REQUIRED_INDEXES.items():
            merged[attr] = merged.get(attr, frozenset()) | kinds
        object.__setattr__(self, "indexes", merged)
        for name in ("size_limit", "time_limit", "unindexed_limit"):
            if getattr(self, name) < 0:
                raise ValueError(f"vmdir.{name} must be >= 0")
        for attr, kinds in self.indexes.items():
            bad = set(kinds) - {"eq", "pres", "sub"}
            if bad:
                raise ValueError(f"index {attr}: unknown kinds {sorted(bad)} (use eq, pres, sub)")
