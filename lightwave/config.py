"""Configuration: TOML files -> frozen, validated dataclasses.

Precedence: built-in defaults < the TOML file < command-line options.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from dataclasses import dataclass, field
from typing import Any

from vmdir.directory import DEFAULT_INDEXES, DirectoryConfig


class ConfigError(ValueError):
    """The configuration is invalid; the message says which setting and what to do."""


DEFAULT_LDAPI = "ldapi"
WILDCARDS = ("", "0.0.0.0", "::")  # --listen values that mean every address of this machine


@dataclass(frozen=True, slots=True)
class NodeConfig:
    data_dir: str = "./var"
    domain: str = "lightwave.local"
    listen: str = "127.0.0.1"
    ldap_port: int = 10389
    ldaps_port: int = 10636
    https_port: int = 8443
    ldapi_path: str = DEFAULT_LDAPI  # unix socket for ldapi://, relative to data_dir; "" = off
    workers: int = 0  # 0 = one per core
    server_id: int = 1
    # replication: this node's name in cn=Nodes,cn=System ("" = <host>:<ldap port>), the URL
    # other nodes reach it at ("" = ldap://<listen>:<ldap port>), and a partner to join
    node_name: str = ""
    advertise_url: str = ""
    join: str = ""
    join_user: str = ""
    # the SHA-256 fingerprint of the --join partner's certificate ("" = trust the first one
    # seen, and print its fingerprint)
    join_fingerprint: str = ""
    # seconds a delete is remembered (tombstones) before it is purged; a node out of touch
    # for longer is refused until it joins again
    tombstone_lifetime: float = 60 * 86400
    # LDAP limits
    max_pdu_size: int = 1 << 20
    max_connections: int = 4096
    idle_timeout: int = 900
    max_outstanding: int = 256
    max_filter_depth: int = 64
    max_filter_terms: int = 1024
    # store
    map_size_gb: int = 64
    sync: bool = True
    # TLS (empty = self-signed files under <data_dir>/tls)
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    log_level: str = "info"
    log_ops: bool = True
    directory: DirectoryConfig = field(default_factory=DirectoryConfig)

    def __post_init__(self) -> None:
        taken: dict[int, str] = {}
        for name in ("ldap_port", "ldaps_port", "https_port"):
            v = getattr(self, name)
            if not 0 <= v <= 65535:
                raise ConfigError(f"{name} must be a port number (0-65535), not {v}")
            if v and v in taken:  # SO_REUSEPORT would let both listeners bind it and share its connections
                raise ConfigError(f"{taken[v]} and {name} are both {v}: give each listener its own port (0 turns one off)")
            taken[v] = name
        if "\0" in self.ldapi_path:
            raise ConfigError("ldapi_path must not contain NUL")
        if self.join and not self.join.lower().startswith(("ldap://", "ldaps://")):
            raise ConfigError(f"join must be an ldap:// or ldaps:// URL, not {self.join!r}")
        if self.join_fingerprint:
            from replication.join import parse_fingerprint
            try:
                parse_fingerprint(self.join_fingerprint)
            except ValueError:
                raise ConfigError(f"join_fingerprint must be a SHA-256 fingerprint (AB:CD:... as 'openssl x509 "
                                  f"-noout -fingerprint -sha256' prints it), not {self.join_fingerprint!r}") from None
        if self.tombstone_lifetime <= 0:
            raise ConfigError("tombstone_lifetime must be a positive number of seconds")
        if self.workers < 0:
            raise ConfigError("workers must be >= 0 (0 = one per core)")
        if self.max_pdu_size < 1024:
            raise ConfigError("max_pdu_size must be at least 1024 bytes")
        if self.log_level not in ("debug", "info", "warn", "error"):
            raise ConfigError("log_level must be one of debug, info, warn, error")

    @property
    def effective_workers(self) -> int:
        return self.workers or (os.cpu_count() or 1)

    @property
    def effective_node_name(self) -> str:
        return self.node_name or f"{socket.gethostname()}:{self.ldap_port or self.ldaps_port}"

    @property
    def effective_url(self) -> str:
        if self.advertise_url:
            return self.advertise_url
        # listening on every address: other machines reach it by its host name, not 0.0.0.0
        # (which a partner would take for itself)
        host = socket.gethostname() if self.listen in WILDCARDS else None
        if self.ldap_port:
            return self.url("ldap", self.ldap_port, host=host)
        return self.url("ldaps", self.ldaps_port, host=host)

    def url(self, scheme: str, port: int, path: str = "", *, local: bool = False, host: str | None = None) -> str:
        """``scheme://<listen>:port<path>``, an IPv6 address in brackets (RFC 3986).
        ``local``: the URL for a client on this machine: ``localhost`` (which the node's
        certificate names) when that reaches the listener (a wildcard or 127.0.0.1).
        ``host``: another host part than the listen address."""
        host = host or self.listen
        if local and host in WILDCARDS + ("127.0.0.1", "localhost"):
            host = "localhost"
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{port}{path}"

    @property
    def store_dir(self) -> str:
        return os.path.join(self.data_dir, "db")

    @property
    def ldapi_socket(self) -> str:
        """Absolute path of the ldapi socket ("" when off): ldapi_path, under data_dir if relative."""
        return os.path.abspath(os.path.join(self.data_dir, self.ldapi_path)) if self.ldapi_path else ""

    @property
    def cert_file(self) -> str:
        return self.tls_cert or os.path.join(self.data_dir, "tls", "server.crt")

    @property
    def key_file(self) -> str:
        return self.tls_key or os.path.join(self.data_dir, "tls", "server.key")

    def with_overrides(self, **kw: Any) -> "NodeConfig":
        kw = {k: v for k, v in kw.items() if v is not None}
        return dataclasses.replace(self, **kw)


_NODE_KEYS = {f.name for f in dataclasses.fields(NodeConfig)} - {"directory"}
_DIR_KEYS = {f.name for f in dataclasses.fields(DirectoryConfig)} - {"indexes", "password_params"}


def load(path: str | None) -> NodeConfig:
    """Read ``path`` (TOML). Unknown keys are errors, so typos do not pass silently."""
    if not path:
        return NodeConfig()
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    node: dict[str, Any] = {}
    for section in ("node", "ldap", "tls", "store", "log", "replication"):
        for k, v in doc.get(section, {}).items():
            if k not in _NODE_KEYS:
                raise ConfigError(f"{path}: unknown setting [{section}] {k}")
            node[k] = v
    vd = dict(doc.get("vmdir", {}))
    idx = vd.pop("index", None)
    params = vd.pop("password_params", None)
    for k in vd:
        if k not in _DIR_KEYS:
            raise ConfigError(f"{path}: unknown setting [vmdir] {k}")
    if idx is not None:
        vd["indexes"] = {k.lower(): frozenset(v) for k, v in idx.items()}
    else:
        vd["indexes"] = dict(DEFAULT_INDEXES)
    if params:
        vd["password_params"] = tuple(sorted(params.items()))
    extra = set(doc) - {"node", "ldap", "tls", "store", "log", "replication", "vmdir"}
    if extra:
        raise ConfigError(f"{path}: unknown section(s) {sorted(extra)}")
    try:
        return NodeConfig(directory=DirectoryConfig(**vd), **node)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
