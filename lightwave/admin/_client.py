"""What every admin command shares: options, the connection, result messages, output.

The commands talk to a running server over LDAP (ldap3, imported only when a command
runs, so ``lightwave up`` does not pay for it). Every failure becomes a
:class:`lightwave.cli.CLIError` whose text is one readable line; ``lightwave.cli.main``
prints it as ``lightwave: <message>`` and exits 1. Usage errors found after parsing
are printed by :func:`usage` and exit 2, as argparse's own do.
"""
from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import re
import ssl
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote, unquote

from lightwave.cli import CLIError
from vmdir.directory import domain_dn

DEFAULT_SERVER = "ldap://localhost:10389"
DEFAULT_TENANT = "lightwave.local"
FOREST_ADMIN = "cn=Administrator,cn=Users,dc=lightwave,dc=local"
PAGE = 500

Attrs = dict[str, list[bytes]]


# ---------------------------------------------------------------------- options

def credentials(args: argparse.Namespace, default_user: str) -> tuple[str, str]:
    """(user, password) by the CLI contract: --password-file, $LIGHTWAVE_PASSWORD,
    $LIGHTWAVE_ADMIN_PASSWORD, else a prompt."""
    user = args.user or default_user
    if args.password_file:
        try:
            with open(args.password_file) as f:
                return user, f.read().rstrip("\n")
        except OSError as exc:
            raise CLIError(f"cannot read password file: {exc}") from None
    for var in ("LIGHTWAVE_PASSWORD", "LIGHTWAVE_ADMIN_PASSWORD"):
        if os.environ.get(var):
            return user, os.environ[var]
    if not sys.stdin.isatty():
        raise CLIError("no password: use --password-file, LIGHTWAVE_PASSWORD or a terminal")
    return user, getpass.getpass(f"Password for {user}: ")


def common_options() -> argparse.ArgumentParser:
    """The options every admin subcommand accepts (after its name), as an argparse parent."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("connection")
    g.add_argument("--server", metavar="URL", default=DEFAULT_SERVER,
                   help=f"server to talk to, ldap:// or ldaps:// (default {DEFAULT_SERVER}); "
                        "LDAPTLS_REQCERT=never skips certificate checks, LDAPTLS_CACERT=FILE trusts a CA; "
                        "ldapi://%%2Fpath%%2Fto%%2Fsocket (or ldapi:/// for the default configuration's socket) "
                        "binds with SASL EXTERNAL as the user the server maps your uid to (root and the "
                        "server's user: the forest administrator), no password")
    g.add_argument("--user", metavar="DN-or-UPN",
                   help="bind as this principal (default the forest administrator "
                        f"{FOREST_ADMIN})")
    g.add_argument("--password-file", metavar="FILE",
                   help="file holding the binding user's password (default: $LIGHTWAVE_PASSWORD, "
                        "then $LIGHTWAVE_ADMIN_PASSWORD, then a prompt)")
    g.add_argument("--json", action="store_true", help="print machine-readable JSON on standard output")
    return p


_BAD_TENANT = re.compile(r'[\s,+="\\<>;#/]')


def tenant_name(text: str) -> str:
    """argparse type for a tenant (DNS-style) name: ``acme.example``."""
    name = text.strip().strip(".")
    labels = name.split(".")
    if not name or any(not lab for lab in labels) or _BAD_TENANT.search(name):
        raise argparse.ArgumentTypeError(f"invalid tenant name {text!r} (expected a DNS-style name like acme.example)")
    return name


def object_name(text: str) -> str:
    """argparse type for a user, group or service account name (a cn)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a name must not be empty")
    return text


def tenant_of(args: argparse.Namespace) -> tuple[str, str]:
    """(tenant name, tenant DN) from --tenant, $LIGHTWAVE_TENANT, else lightwave.local."""
    name = args.tenant or os.environ.get("LIGHTWAVE_TENANT") or DEFAULT_TENANT
    try:
        name = tenant_name(name)
    except argparse.ArgumentTypeError as exc:
        raise CLIError(f"LIGHTWAVE_TENANT: {exc}") from None
    return name, domain_dn(name)


def usage(message: str) -> int:
    """Report a usage error found after parsing; returns exit status 2 (as argparse does)."""
    print(f"lightwave: {message}", file=sys.stderr)
    return 2


def epilog(*examples: str) -> str:
    return "example" + ("s" if len(examples) > 1 else "") + ":\n" + "\n".join(f"  {e}" for e in examples)


# ---------------------------------------------------------------------- results -> messages

@dataclass(frozen=True, slots=True)
class Target:
    """What an operation is about, so a result code becomes a sentence."""
    kind: str              # "user", "group", "tenant", ...
    name: str
    tenant: str = ""
    tenant_dn: str = ""


def _ndn(dn: str) -> list[str]:
    from ldap3.utils.dn import parse_dn
    try:
        return [f"{a.strip().lower()}={v.strip().lower()}" for a, v, _ in parse_dn(dn)]
    except Exception:
        return [dn.lower()]


def same_dn(a: str, b: str) -> bool:
    return _ndn(a) == _ndn(b)


def within(dn: str, base: str) -> bool:
    """Whether ``dn`` is ``base`` or below it."""
    d, b = _ndn(dn), _ndn(base)
    return bool(dn) and len(d) >= len(b) and d[len(d) - len(b):] == b


def describe(result: dict[str, Any], action: str, target: Target | None) -> str:
    """One line for a failed LDAP result (``conn.result`` of ldap3)."""
    code = int(result.get("result", 80))
    name = result.get("description") or "other"
    diag = " ".join((result.get("message") or "").split())  # one line, whatever the server sent
    matched = result.get("dn") or ""
    if target is not None:
        if code == 68:
            return f"{target.kind} {target.name} already exists in {target.tenant or 'the directory'}"
        if code == 32 and target.tenant_dn:
            if not within(matched, target.tenant_dn):
                return f"no such tenant {target.tenant}"
            return f"no {target.kind} {target.name} in tenant {target.tenant}"
    if code == 50:
        return f"permission denied (insufficientAccessRights): {diag or action}"
    tail = f": {diag}" if diag else ""
    return f"{action}: {name} ({code}){tail}"


def unreachable(url: str, exc: BaseException) -> str:
    """One line for a failure to connect (ldap3's exceptions also inherit the OSError)."""
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot reach {url}: connection refused (is the server running?)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        m = re.search(r"certificate verify failed: ([^(]*)", str(exc))
        why = m.group(1).strip() if m else "certificate not trusted"
        return (f"cannot reach {url}: TLS certificate check failed ({why}); "
                "trust its CA with LDAPTLS_CACERT=FILE or skip the check with LDAPTLS_REQCERT=never")
    if isinstance(exc, TimeoutError):
        return f"cannot reach {url}: timed out"
    if isinstance(exc, FileNotFoundError):
        return f"cannot reach {url}: no such socket (is the server running?)"
    if isinstance(exc, PermissionError):
        return f"cannot reach {url}: permission denied (only the server's user and root may use its socket)"
    text = str(exc.args[0] if exc.args else exc).strip("()',\"")
    if "invalid server address" in text:
        return f"cannot reach {url}: unknown host or bad address"
    return f"cannot reach {url}: {text}"


# ---------------------------------------------------------------------- the connection

def ldapi_socket(url: str) -> str:
    """The socket path of an ldapi:// URL: ``ldapi://%2Fvar%2Fldapi`` (OpenLDAP's form, the path
    URL-encoded as the host) or ``ldapi:///var/ldapi``. ``ldapi:///`` alone is the socket of
    the default configuration (conf/lightwave.toml, relative to the current directory:
    ``./var/ldapi``), as OpenLDAP's tools use their built-in socket."""
    rest = unquote(url[len("ldapi://"):])
    if rest.strip("/"):
        return os.path.abspath(rest)
    from lightwave.cli import node_config
    path: str = node_config(argparse.Namespace(config=None, data_dir=None)).ldapi_socket
    if not path:
        raise CLIError(f"{url} names the default configuration's socket, but it has ldapi_path = \"\" (off)")
    return path


class Client:
    """An authenticated ldap3 connection whose failures raise :class:`CLIError`.

    Use as a context manager; leaving it unbinds. Methods return values; a failed
    operation raises with a message built by :func:`describe`.
    """

    def __init__(self, conn: Any, url: str) -> None:
        self.conn = conn
        self.url = url

    @classmethod
    def open(cls, args: argparse.Namespace, hint: str = "") -> "Client":
        import ldap3
        from ldap3.core.exceptions import LDAPException

        url = args.server
        if re.match(r"ldapi://", url, re.I):
            return cls._open_ldapi(url, args)
        if not re.match(r"ldaps?://", url, re.I):
            raise CLIError(f"bad server URL {url!r}: use ldap://HOST:PORT, ldaps://HOST:PORT or ldapi://PATH")
        user, password = credentials(args, FOREST_ADMIN)
        reqcert = os.environ.get("LDAPTLS_REQCERT", "").lower()
        try:
            tls = ldap3.Tls(validate=ssl.CERT_NONE if reqcert in ("never", "allow") else ssl.CERT_REQUIRED,
                            ca_certs_file=os.environ.get("LDAPTLS_CACERT") or None)
        except LDAPException as exc:
            raise CLIError(f"bad TLS settings (LDAPTLS_CACERT): {exc}") from None
        try:
            server = ldap3.Server(url, tls=tls, get_info=ldap3.NONE, connect_timeout=10)
        except LDAPException as exc:
            raise CLIError(f"bad server URL {url!r}: {exc}") from None
        conn = ldap3.Connection(server, user, password, raise_exceptions=False, receive_timeout=120,
                                auto_referrals=False)
        return cls._bound(conn, url, f"bind as {user} failed",
                          f"invalid credentials (wrong user or password){hint}")

    @classmethod
    def _bound(cls, conn: Any, url: str, failed: str, invalid: str) -> "Client":
        """Bind ``conn``; a failure becomes a CLIError saying ``failed`` (and ``invalid`` for code 49)."""
        from ldap3.core.exceptions import LDAPException

        try:
            ok = conn.bind()
        except LDAPException as exc:
            raise CLIError(unreachable(url, exc)) from None
        if not ok:
            r = conn.result
            if r.get("result") == 49:
                raise CLIError(f"{failed}: {invalid}")
            raise CLIError(describe(r, failed, None))
        return cls(conn, url)

    @classmethod
    def _open_ldapi(cls, url: str, args: argparse.Namespace) -> "Client":
        """Over the server's unix socket with SASL EXTERNAL: the server knows our uid, no password."""
        import ldap3

        if args.user or args.password_file:
            raise CLIError("--user and --password-file do not apply to ldapi://: the server maps your "
                           "uid (root and the server's own user bind as the forest administrator)")
        path = ldapi_socket(url)
        server = ldap3.Server("ldapi://" + quote(path, safe=""), get_info=ldap3.NONE, connect_timeout=10)
        conn = ldap3.Connection(server, authentication=ldap3.SASL, sasl_mechanism=ldap3.EXTERNAL,
                                raise_exceptions=False, receive_timeout=120, auto_referrals=False)
        return cls._bound(conn, url, f"SASL EXTERNAL bind over {url} failed",
                          f"uid {os.getuid()} is not mapped to an administrator (run as root or as the server's user)")

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.conn.unbind()
        except Exception:
            pass

    def _do(self, fn: Any, *a: Any, **kw: Any) -> Any:
        from ldap3.core.exceptions import LDAPException
        try:
            return fn(*a, **kw)
        except LDAPException as exc:
            raise CLIError(f"lost the connection to {self.url}: {exc}") from None

    @property
    def ok(self) -> bool:
        """Whether the last operation succeeded."""
        return bool(self.conn.result) and self.conn.result.get("result") == 0

    @property
    def result(self) -> dict[str, Any]:
        return dict(self.conn.result or {})

    def fail(self, action: str, target: Target | None = None) -> NoReturn:
        """Raise the CLIError for the last (failed) result. For noSuchObject in a tenant, look
        whether the tenant itself exists (not every answer carries a matched DN)."""
        r = self.result
        if r.get("result") == 32 and target is not None and target.tenant_dn and not within(
                r.get("dn") or "", target.tenant_dn):
            saved = r
            exists = self.read_opt(target.tenant_dn, ["1.1"]) is not None
            r = dict(saved, dn=target.tenant_dn if exists else "")
        raise CLIError(describe(r, action, target))

    # reads

    def read(self, dn: str, attrs: Sequence[str], target: Target | None = None,
             action: str = "read") -> Attrs:
        """The attributes of entry ``dn``; raises (e.g. "no user x in tenant t") if it is absent."""
        e = self.read_opt(dn, attrs)
        if e is None:
            self.fail(f"{action} {dn}", target)
        return e

    def read_opt(self, dn: str, attrs: Sequence[str]) -> Attrs | None:
        """The attributes of entry ``dn``, or None if there is no such entry (result kept in ``result``)."""
        self._do(self.conn.search, dn, "(objectClass=*)", search_scope="BASE", attributes=list(attrs))
        if self.conn.result.get("result") != 0:
            return None
        for e in self.conn.response or ():
            if e.get("type") == "searchResEntry":
                return {k: list(v) for k, v in e["raw_attributes"].items() if v}
        return None

    def search(self, base: str, filt: str, attrs: Sequence[str], scope: str = "LEVEL",
               target: Target | None = None, action: str = "search") -> list[tuple[str, Attrs]]:
        """Every entry found, all pages; raises on a failed search."""
        return list(self.entries(base, filt, attrs, scope, target, action))

    def entries(self, base: str, filt: str, attrs: Sequence[str], scope: str = "LEVEL",
                target: Target | None = None, action: str = "search") -> Iterator[tuple[str, Attrs]]:
        """``search``, a page at a time, in the server's order. (ldap3's own paged_search
        generator yields each page backwards.)"""
        cookie: bytes | None = None
        while True:
            self._do(self.conn.search, base, filt, search_scope=scope, attributes=list(attrs),
                     paged_size=PAGE, paged_cookie=cookie)
            for e in self.conn.response or ():
                if e.get("type") == "searchResEntry":
                    yield e["dn"], {k: list(v) for k, v in e["raw_attributes"].items() if v}
            if self.conn.result.get("result") != 0:
                self.fail(f"{action} under {base}", target)
            try:
                cookie = self.conn.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
            except (KeyError, TypeError):
                cookie = None
            if not cookie:
                return

    def count(self, base: str, scope: str = "LEVEL") -> int | None:
        """How many entries lie under ``base`` (None if it cannot be searched)."""
        try:
            return len(self.search(base, "(objectClass=*)", ["1.1"], scope=scope))
        except CLIError:
            return None

    # writes

    def add(self, dn: str, attrs: dict[str, Any], target: Target, action: str) -> None:
        self._do(self.conn.add, dn, attributes=attrs)
        if not self.ok:
            self.fail(action, target)

    def modify(self, dn: str, changes: dict[str, Any]) -> bool:
        """Apply ``changes``; True, or False on failure (see ``result``): the caller words the message."""
        self._do(self.conn.modify, dn, changes)
        return self.ok

    def try_add(self, dn: str, attrs: dict[str, Any]) -> bool:
        """Add ``dn``; True, or False on failure (see ``result``): the caller words the message."""
        self._do(self.conn.add, dn, attributes=attrs)
        return self.ok

    def try_delete(self, dn: str) -> bool:
        """Delete ``dn``; True, or False on failure (see ``result``)."""
        self._do(self.conn.delete, dn)
        return self.ok

    def delete(self, dn: str, target: Target, action: str) -> None:
        self._do(self.conn.delete, dn)
        if not self.ok:
            self.fail(action, target)

    def extended(self, oid: str, value: bytes | None) -> bool:
        self._do(self.conn.extended, oid, value)
        return self.ok

    def modify_password(self, dn: str, new: str | None) -> str | None:
        """RFC 3062 Password Modify on ``dn``; returns the server-generated password if ``new`` is None."""
        kw = {} if new is None else {"new_password": new}
        got = self._do(self.conn.extend.standard.modify_password, dn, **kw)
        if not self.ok:
            return None
        return got if isinstance(got, str) else None


# ---------------------------------------------------------------------- secrets in and out

def read_secret(path: str, what: str) -> str:
    """The first line of ``path`` (a password file); raises CLIError if unreadable or empty."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"cannot read {what} from {path}: {exc}") from None
    if not text:
        raise CLIError(f"{what} file {path} is empty")
    return text


def prompt_new_password(who: str) -> str:
    """Ask twice on the terminal; raises CLIError if the two differ or it is empty."""
    try:
        a = getpass.getpass(f"New password for {who}: ")
        b = getpass.getpass("Again: ")
    except EOFError:
        raise CLIError("no password given") from None
    if a != b:
        raise CLIError("the two passwords differ; nothing changed")
    if not a:
        raise CLIError("empty password; nothing changed")
    return a


class SecretOut:
    """A mode-0600 file for a generated password: opened (and so checked) before the
    entry is created, written after, removed again if the creation failed."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.fd: int | None = None
        self.created = False
        if path:
            self.created = not os.path.exists(path)
            try:
                self.fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                os.fchmod(self.fd, 0o600)
            except OSError as exc:
                raise CLIError(f"cannot write the password to {path}: {exc}") from None

    def write(self, secret: str) -> None:
        assert self.fd is not None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, (secret + "\n").encode())
        os.close(self.fd)
        self.fd = None

    def abandon(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            if self.created and self.path:
                try:
                    os.unlink(self.path)
                except OSError:
                    pass


# ---------------------------------------------------------------------- output

def text(value: bytes) -> str:
    """A value as text: UTF-8, else ``base64:<...>``."""
    try:
        s = value.decode("utf-8")
        if s.isprintable():
            return s
    except UnicodeDecodeError:
        pass
    return "base64:" + base64.b64encode(value).decode()


def first(attrs: Attrs, name: str, default: str = "") -> str:
    for k, v in attrs.items():
        if k.lower() == name.lower() and v:
            return text(v[0])
    return default


def values(attrs: Attrs, name: str) -> list[str]:
    for k, v in attrs.items():
        if k.lower() == name.lower():
            return [text(x) for x in v]
    return []


def json_attrs(attrs: Attrs, hide: Sequence[str] = ("userPassword",)) -> dict[str, list[str]]:
    low = {h.lower() for h in hide}
    return {k: [text(x) for x in v] for k, v in _ordered(attrs) if k.lower() not in low}


def _ordered(attrs: Attrs) -> list[tuple[str, list[bytes]]]:
    return sorted(attrs.items(), key=lambda kv: (kv[0].lower() != "objectclass", kv[0].lower()))


def when(gt: str) -> str:
    """``20261122031914Z`` -> ``2026-11-22 03:19:14 UTC`` (unchanged if it is not a GeneralizedTime)."""
    m = re.fullmatch(r"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:[.,]\d+)?Z", gt)
    if not m:
        return gt
    y, mo, d, h, mi, s = m.groups()
    return f"{y}-{mo}-{d} {h}:{mi}:{s} UTC"


def emit_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def report(args: argparse.Namespace, obj: Any, text: str) -> int:
    """A command's result: ``obj`` as JSON with ``--json``, else the line ``text``. Returns 0."""
    if args.json:
        emit_json(obj)
    else:
        print(text)
    return 0


def print_entry(dn: str, attrs: Attrs, hide: Sequence[str] = ("userPassword",), indent: str = "") -> None:
    """``dn: ...`` then ``attribute: value`` lines (objectClass first, then by name)."""
    print(f"{indent}dn: {dn}")
    for k, vs in json_attrs(attrs, hide).items():
        for v in vs:
            print(f"{indent}{k}: {when(v) if k.lower().endswith(('timestamp', 'time')) else v}")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> None:
    if not rows:
        print(empty)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip())
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def confirm(question: str) -> bool:
    """Ask yes/no on the terminal (default no)."""
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def rdn_value(dn: str) -> str:
    """The value of the first RDN of ``dn``, unescaped (``cn=a\\,b,...`` -> ``a,b``)."""
    from ldap3.utils.dn import parse_dn
    try:
        v = parse_dn(dn)[0][1]
    except Exception:
        return dn
    out = bytearray()
    i = 0
    while i < len(v):
        c = v[i]
        if c == "\\" and re.fullmatch(r"[0-9a-fA-F]{2}", v[i + 1:i + 3]):
            out.append(int(v[i + 1:i + 3], 16))
            i += 3
        elif c == "\\" and i + 1 < len(v):
            out += v[i + 1].encode()
            i += 2
        else:
            out += c.encode()
            i += 1
    return out.decode("utf-8", "replace")


def escape(value: str) -> str:
    """``value`` escaped for use as an RDN value."""
    from ldap3.utils.dn import escape_rdn
    return str(escape_rdn(value))


__all__ = [
    "Attrs", "Client", "DEFAULT_SERVER", "DEFAULT_TENANT", "FOREST_ADMIN", "SecretOut", "Target",
    "common_options", "confirm", "describe", "emit_json", "epilog", "escape", "first", "json_attrs",
    "object_name", "print_entry", "print_table", "prompt_new_password", "rdn_value", "read_secret", "same_dn",
    "tenant_name", "tenant_of", "text", "unreachable", "usage", "values", "when", "within",
]
