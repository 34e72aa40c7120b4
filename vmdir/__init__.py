"""vmdir: the LDAP directory."""
from vmdir._accel import check as _check

_check()
