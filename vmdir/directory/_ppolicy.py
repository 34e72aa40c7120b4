"""Password policy (draft-behera-ldap-password-policy, as OpenLDAP's ppolicy overlay applies
it), one policy entry per tenant: ``cn=Password Policy,cn=Policies,<tenant>``.

Pure decisions; the Directory reads the policy and the account's state and writes the
outcome (failure times, lockout) in the same transactions as everything else.
"""
from __future__ import annotations

import calendar
import time
from dataclasses import dataclass

from vmdir.proto import controls as ctl
from vmdir.proto import messages as m

POLICY_RDN = "cn=Password Policy,cn=Policies"

# draft-behera error codes
EXPIRED, LOCKED, CHANGE_AFTER_RESET, MOD_NOT_ALLOWED, MUST_SUPPLY_OLD = 0, 1, 2, 3, 4
INSUFFICIENT_QUALITY, TOO_SHORT, TOO_YOUNG, IN_HISTORY = 5, 6, 7, 8

DEFAULTS: dict[str, list[bytes]] = {
    "pwdattribute": [b"userPassword"],
    "pwdminlength": [b"8"],
    "lightwavepwdminclasses": [b"3"],
    "pwdcheckquality": [b"2"],
    "pwdinhistory": [b"5"],
    "pwdmaxage": [b"0"],
    "pwdlockout": [b"TRUE"],
    "pwdmaxfailure": [b"5"],
    "pwdlockoutduration": [b"900"],
    "pwdfailurecountinterval": [b"900"],
}


# every attribute PasswordPolicy.from_attrs reads: a write to one changes the policy in force
POLICY_ATTRS = ("pwdminlength", "lightwavepwdminclasses", "pwdcheckquality", "pwdinhistory", "pwdmaxage",
                "pwdexpirewarning", "pwdlockout", "pwdmaxfailure", "pwdlockoutduration", "pwdfailurecountinterval",
                "pwdmustchange", "pwdgraceauthnlimit", "lightwavepwdscheme", "lightwavepwdcost")

# what a session bound with a reset password may still do (OpenLDAP's wording)
RESTRICTED = "Operations are restricted to bind/unbind/abandon/StartTLS/modify password"


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    min_length: int = 0
    min_classes: int = 0
    check_quality: int = 0  # 0 off, 1 check what can be checked, 2 also refuse pre-hashed values
    history: int = 0
    max_age: int = 0  # seconds, 0 = never expires
    expire_warning: int = 0
    lockout: bool = False
    max_failure: int = 0
    lockout_duration: int = 0  # seconds, 0 = until an administrator unlocks
    failure_interval: int = 0  # seconds, 0 = failures never expire
    must_change: bool = False  # a password set by an administrator must be changed at the next bind
    grace_limit: int = 0  # binds allowed with an expired password (to change it)
    scheme: str | None = None  # hashing scheme for new passwords (else the server's)
    cost: int | None = None  # its cost: argon2 time cost, PBKDF2 iterations

    @classmethod
    def from_attrs(cls, attrs: dict[str, list[bytes]]) -> "PasswordPolicy":
        def num(name: str) -> int:
            v = attrs.get(name)
            try:
                return max(0, int(v[0])) if v else 0
            except ValueError:
                return 0

        def flag(name: str) -> bool:
            v = attrs.get(name)
            return bool(v and v[0].upper() == b"TRUE")

        scheme = attrs.get("lightwavepwdscheme")
        return cls(
            min_length=num("pwdminlength"), min_classes=min(4, num("lightwavepwdminclasses")),
            check_quality=num("pwdcheckquality"), history=num("pwdinhistory"), max_age=num("pwdmaxage"),
            expire_warning=num("pwdexpirewarning"), lockout=flag("pwdlockout"), max_failure=num("pwdmaxfailure"),
            lockout_duration=num("pwdlockoutduration"), failure_interval=num("pwdfailurecountinterval"),
            must_change=flag("pwdmustchange"), grace_limit=num("pwdgraceauthnlimit"),
            scheme=scheme[0].decode("ascii", "replace").upper() if scheme else None,
            cost=num("lightwavepwdcost") or None,
        )

    def quality_error(self, password: bytes) -> tuple[int, str] | None:
        """(ppolicy error, message) if a clear-text password breaks this policy."""
        if not self.check_quality:
            return None
        text = password.decode("utf-8", "replace")
        if len(text) < self.min_length:
            return TOO_SHORT, f"Password is too short for policy (at least {self.min_length} characters)"
        if self.min_classes and character_classes(text) < self.min_classes:
            return INSUFFICIENT_QUALITY, (f"Password fails quality checking policy (needs {self.min_classes} of: "
                                          "lower case, upper case, digits, other characters)")
        return None


NO_POLICY = PasswordPolicy()


def character_classes(text: str) -> int:
    lower = any(c.islower() for c in text)
    upper = any(c.isupper() for c in text)
    digit = any(c.isdigit() for c in text)
    other = any(not c.isalnum() for c in text)
    return lower + upper + digit + other


def parse_gentime(v: bytes) -> float | None:
    """Seconds since the epoch of a GeneralizedTime like 20261122031500Z (None if unreadable)."""
    try:
        s = v.decode("ascii").rstrip("Z")
        s = s.split(".", 1)[0]
        return float(calendar.timegm(time.strptime(s[:14], "%Y%m%d%H%M%S")))
    except (ValueError, UnicodeDecodeError):
        return None


def locked(policy: PasswordPolicy, attrs: dict[str, list[bytes]], now: float) -> bool:
    """Whether the account is locked now (an administrator's lock, or too many failures)."""
    v = attrs.get("pwdaccountlockedtime")
    if not v:
        return False
    if v[0] == b"000001010000Z":  # OpenLDAP's "locked by an administrator, forever"
        return True
    t = parse_gentime(v[0])
    if t is None:
        return True
    return not policy.lockout_duration or now < t + policy.lockout_duration


def recent_failures(policy: PasswordPolicy, attrs: dict[str, list[bytes]], now: float) -> list[bytes]:
    """The failure times still counting towards a lockout."""
    out = []
    for v in attrs.get("pwdfailuretime", []):
        t = parse_gentime(v)
        if t is None:
            continue
        if policy.failure_interval and now - t > policy.failure_interval:
            continue
        out.append(v)
    return out


def expired(policy: PasswordPolicy, attrs: dict[str, list[bytes]], now: float) -> tuple[bool, int | None]:
    """(expired, seconds left before expiry if within the warning period)."""
    if not policy.max_age:
        return False, None
    v = attrs.get("pwdchangedtime") or attrs.get("createtimestamp")
    t = parse_gentime(v[0]) if v else None
    if t is None:
        return False, None
    left = t + policy.max_age - now
    if left <= 0:
        return True, None
    if policy.expire_warning and left <= policy.expire_warning:
        return False, int(left)
    return False, None


def must_change(policy: PasswordPolicy, attrs: dict[str, list[bytes]]) -> bool:
    """Whether the account's password was set by an administrator and must be changed before
    anything else (pwdMustChange in the policy, pwdReset on the account)."""
    v = attrs.get("pwdreset")
    return policy.must_change and bool(v and v[0].upper() == b"TRUE")


def grace_left(policy: PasswordPolicy, attrs: dict[str, list[bytes]]) -> int:
    """Binds still allowed with the account's expired password (pwdGraceAuthNLimit less the
    pwdGraceUseTime values recorded)."""
    return max(0, policy.grace_limit - len(attrs.get("pwdgraceusetime", ())))


def response_control(error: int | None = None, time_before_expiration: int | None = None,
                     grace: int | None = None) -> m.Control:
    """The ppolicy response control for a bind or a password change (at most one warning:
    the time before expiry, or the grace binds remaining)."""
    value = ctl.encode_ppolicy_response(ctl.PasswordPolicyResponse(
        time_before_expiration=time_before_expiration if grace is None else None,
        grace_authns_remaining=grace, error=error))
    return m.Control(ctl.PPOLICY_OID, False, value)


def history_value(hashed: bytes, when: bytes) -> bytes:
    """One pwdHistory value, in OpenLDAP's format: time#syntax#length#value."""
    return when + b"#1.3.6.1.4.1.1466.115.121.1.40#" + str(len(hashed)).encode() + b"#" + hashed


def history_hash(value: bytes) -> bytes | None:
    parts = value.split(b"#", 3)
    return parts[3] if len(parts) == 4 else None
