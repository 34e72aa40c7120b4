"""Access decisions: the one place that says who may do what.

Baseline policy (issue 2; full rules stored in the directory come later):
- anonymous: the root DSE and the subschema only;
- administrators: everything;
- an authenticated principal: read its own naming context, except secrets;
  change its own password; nothing else.
Secrets (password hashes, later private keys) are visible to administrators only,
and cannot be used in filters or compares by anyone else.
"""
from __future__ import annotations

from vmdir.directory._session import Session
from vmdir.proto.results import LDAPError, ResultCode

SECRET_ATTRS = frozenset({"userpassword", "lightwaveprivatekey"})
SELF_WRITABLE = frozenset({"userpassword"})


class AccessPolicy:
    """Decides reads and writes. Stateless: everything it needs is in the session and target."""

    def can_read_entry(self, s: Session, entry_root_id: int) -> bool:
        if s.is_admin:
            return True
        if s.anonymous:
            return False
        return entry_root_id == s.root_id

    def visible_attr(self, s: Session, attr_key: str) -> bool:
        if s.is_admin:
            return True
        return attr_key.split(";", 1)[0] not in SECRET_ATTRS

    def visible_attrs(self, s: Session, attrs: dict[str, list[bytes]]) -> dict[str, list[bytes]]:
        """``attrs`` without the attributes ``s`` may not see (nor use in filters)."""
        if s.is_admin:
            return attrs
        return {k: v for k, v in attrs.items() if self.visible_attr(s, k)}

    def check_write(self, s: Session, target_id: int, attrs: set[str] | None, what: str) -> None:
        """Raise insufficientAccessRights unless ``s`` may make this write.

        ``attrs`` are the attribute keys a modify touches (None for add/delete/rename).
        """
        if s.is_admin:
            return
        if s.anonymous:
            raise LDAPError(ResultCode.insufficientAccessRights, f"no write access to {what}: authentication required")
        if attrs is not None and target_id == s.entry_id and attrs <= SELF_WRITABLE:
            return
        raise LDAPError(ResultCode.insufficientAccessRights, f"no write access to {what}")
