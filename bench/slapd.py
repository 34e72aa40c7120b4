"""A throwaway OpenLDAP slapd for side-by-side benchmarks.

Configuration is generated on the fly (``slapd.conf`` in a temporary directory):
back-mdb, suffix ``dc=lightwave,dc=local``, rootdn
``cn=Administrator,cn=Users,dc=lightwave,dc=local``, the core/cosine/inetorgperson/nis
schemas from /etc/ldap/schema, and the same indexes Lightwave is configured with (read
from conf/lightwave.toml ``[vmdir.index]``; attributes slapd's schemas lack, such as
userPrincipalName, are left out). Commits are durable (no
``dbnosync``) unless ``nosync=True``. Logging is off (``loglevel 0``), as in Debian's
default slapd configuration.

    s = Slapd(workdir)                 # writes slapd.conf, creates the db directory
    secs = s.slapadd("people.ldif")    # offline load, timed
    s.start()                          # foreground slapd on a free 127.0.0.1 port
    ... s.pid, s.port, s.url ...
    s.stop()
"""
from __future__ import annotations

import atexit
import os
import re
import subprocess
import time
import tomllib

from bench.data import ADMIN_DN, ADMIN_PASSWORD, SUFFIX, ssha
from bench.procinfo import ensure_openldap, free_port, stop_process, wait_ldap

SCHEMA_DIR = "/etc/ldap/schema"
MODULE_DIR = "/usr/lib/ldap"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
# (attribute, index types) used when conf/lightwave.toml cannot be read.
INDEXES = (("objectClass", "eq"), ("uid", "eq"), ("cn", "eq,sub"), ("mail", "eq,sub"),
           ("member", "eq"))
LIGHTWAVE_CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf",
                              "lightwave.toml")
_BUILTIN_ATTRS = ("objectClass", "entryUUID", "entryCSN", "createTimestamp", "modifyTimestamp",
                  "creatorsName", "modifiersName")


def schema_attributes() -> dict[str, str]:
    """Attribute names slapd knows with our schemas (lower-case -> spelling)."""
    names = {a.lower(): a for a in _BUILTIN_ATTRS}
    for s in SCHEMAS:
        try:
            text = open(os.path.join(SCHEMA_DIR, f"{s}.schema")).read()
        except OSError:
            continue
        for m in re.finditer(r"attributetype\s*\((.*?)\n\s*\n", text + "\n\n", re.S | re.I):
            nm = re.search(r"NAME\s+(\(\s*([^)]*)\)|'([^']+)')", m.group(1))
            if nm:
                for n in re.findall(r"'([^']+)'", nm.group(1)):
                    names.setdefault(n.lower(), n)
    return names


def lightwave_indexes(conf: str = LIGHTWAVE_CONF) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The indexes of Lightwave's configuration, as slapd ``index`` lines: returns
    ((attribute, "eq,sub"), ...) for the attributes slapd's schemas define, and the
    names of configured attributes slapd does not know (not indexed there: no entry in
    the benchmark data uses them)."""
    try:
        with open(conf, "rb") as f:
            cfg = tomllib.load(f)
        idx = cfg["vmdir"]["index"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return INDEXES, ()
    known = schema_attributes()
    out, skipped = [], []
    for attr, kinds in idx.items():
        name = known.get(attr.lower())
        if name is None:
            skipped.append(attr)
            continue
        order = [k for k in ("pres", "eq", "sub") if k in kinds]
        if order:
            out.append((name, ",".join(order)))
    return tuple(out), tuple(skipped)
MAXSIZE = 32 << 30  # mdb map size (address space only)


class Slapd:
    def __init__(self, workdir: str, *, nosync: bool = False, threads: int | None = None,
                 log=print) -> None:
        self.slapd_bin, self.slapadd_bin = ensure_openldap(log)
        self.workdir = os.path.abspath(workdir)
        self.db_dir = os.path.join(self.workdir, "db")
        self.conf = os.path.join(self.workdir, "slapd.conf")
        self.nosync = nosync
        self.threads = threads
        self.indexes, self.unindexed = lightwave_indexes()
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        os.makedirs(self.db_dir, exist_ok=True)
        self._write_conf()

    # ------------------------------------------------------------ config

    def _write_conf(self) -> None:
        lines = [f"include {SCHEMA_DIR}/{s}.schema" for s in SCHEMAS]
        lines += [
            f"pidfile {self.workdir}/slapd.pid",
            f"argsfile {self.workdir}/slapd.args",
            f"modulepath {MODULE_DIR}",
            "moduleload back_mdb",
            "loglevel 0",
            "sizelimit 500",
        ]
        if self.threads:
            lines.append(f"threads {self.threads}")
        lines += [
            "",
            "database mdb",
            f"maxsize {MAXSIZE}",
            f'suffix "{SUFFIX}"',
            f'rootdn "{ADMIN_DN}"',
            f"rootpw {ssha(ADMIN_PASSWORD.encode(), b'benchslt')}",
            f"directory {self.db_dir}",
        ]
        lines += [f"index {attr} {kinds}" for attr, kinds in self.indexes]
        if self.nosync:
            lines.append("dbnosync")
        # Same access as Debian's default: users may authenticate and change their own
        # password, authenticated users read everything.
        lines += [
            "access to attrs=userPassword by self write by anonymous auth by * none",
            "access to * by users read by * none",
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    # ------------------------------------------------------------ offline load

    def slapadd(self, ldif: str, *, quick: bool = False) -> float:
        """Load ``ldif`` into the (stopped) database; return elapsed seconds."""
        cmd = [self.slapadd_bin, "-f", self.conf, "-l", ldif]
        if quick:
            cmd.append("-q")
        return self._run_tool(cmd, "slapadd")

    @staticmethod
    def _run_tool(cmd: list[str], what: str) -> float:
        """Run an OpenLDAP tool; return elapsed seconds. Raises RuntimeError with its output."""
        t0 = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"{what} failed ({r.returncode}): {r.stdout.decode(errors='replace')[-2000:]}")
        return dt

    # ------------------------------------------------------------ run

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}/"

    def start(self, port: int | None = None, timeout: float = 60.0) -> int:
        """Start slapd in the foreground (``-d 0``) and wait until it answers a bind."""
        self.port = port or free_port()
        atexit.register(self.stop)  # never leave a slapd behind if the caller dies
        self._log = open(os.path.join(self.workdir, "slapd.log"), "ab")
        self.proc = subprocess.Popen(
            [self.slapd_bin, "-f", self.conf, "-h", self.url, "-d", "0"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        try:
            wait_ldap(self.port, timeout, self.proc, "slapd")
        except Exception:
            self.stop()
            raise
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def __enter__(self) -> "Slapd":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
