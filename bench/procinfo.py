"""Process and machine helpers for the benchmarks: /proc CPU and memory, free ports,
waiting for an LDAP listener, du, and installing OpenLDAP from Debian packages."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- /proc


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    return data[data.rindex(")") + 2:].split()  # fields[0] is state (field 3)


def tree_pids(root: int) -> list[int]:
    """``root`` and all its live descendants (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        f = _stat_fields(int(name))
        if f is not None:
            children.setdefault(int(f[1]), []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime of the given processes (all their threads), in seconds."""
    ticks = 0
    for p in pids:
        f = _stat_fields(p)
        if f is not None:
            ticks += int(f[11]) + int(f[12])  # fields 14 and 15: utime, stime
    return ticks / CLK_TCK


def cpu_snapshot(pids: list[int]) -> dict[tuple[int, int], int]:
    """{(pid, start time): utime+stime ticks} for the live processes among ``pids``.
    The start time tells a restarted process from an old one that had the same pid."""
    out = {}
    for p in pids:
        f = _stat_fields(p)
        if f is not None:
            out[(p, int(f[19]))] = int(f[11]) + int(f[12])  # fields 22, 14, 15
    return out


def cpu_delta(before: dict[tuple[int, int], int], after: dict[tuple[int, int], int]) -> tuple[float, int, int]:
    """(CPU seconds used between the snapshots, processes that exited, processes that
    appeared). An exited process's CPU since ``before`` is lost (not counted); a new
    one counts in full."""
    ticks = sum(v - before.get(k, 0) for k, v in after.items())
    gone = sum(1 for k in before if k not in after)
    new = sum(1 for k in after if k not in before)
    return ticks / CLK_TCK, gone, new


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all CPUs; not idle, not iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    # irq/softirq time (loopback TCP processing for the benchmark itself) and steal are left
    # out: they are not charged to any process, so they would look like foreign load.
    return (v[0] + v[1] + v[2]) / CLK_TCK


def tree_cpu_seconds(root: int) -> float:
    return cpu_seconds(tree_pids(root))


@dataclass(frozen=True)
class Memory:
    """Memory of a set of processes. VmRSS summed over processes counts pages they share
    (the same LMDB map in every worker, libraries) once per process; PSS divides each
    shared page among its sharers, so its sum is the memory the set really holds."""
    rss: int  # VmRSS bytes, summed
    pss: int  # Pss bytes, summed (from smaps_rollup; equals rss when unavailable)
    pss_anon: int  # heap, stacks: private to the server
    pss_file: int  # mapped files: the database map, libraries (page cache, reclaimable)
    processes: int
    detail: tuple[tuple[int, str, int], ...]  # (pid, command, rss)


def _kv_kib(path: str, keys: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0]) * 1024
    return out


def memory(pids: list[int]) -> Memory:
    rss = pss = anon = filem = 0
    detail = []
    for p in pids:
        try:
            st = _kv_kib(f"/proc/{p}/status", ("VmRSS", "RssAnon", "RssFile", "RssShmem"))
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        try:
            sm = _kv_kib(f"/proc/{p}/smaps_rollup", ("Pss", "Pss_Anon", "Pss_File", "Pss_Shmem"))
        except OSError:
            sm = {}
        if "Pss" not in sm:  # old kernel: fall back to RSS figures
            sm = {"Pss": st.get("VmRSS", 0), "Pss_Anon": st.get("RssAnon", 0),
                  "Pss_File": st.get("RssFile", 0) + st.get("RssShmem", 0)}
        rss += st.get("VmRSS", 0)
        pss += sm.get("Pss", 0)
        anon += sm.get("Pss_Anon", 0)
        filem += sm.get("Pss_File", 0) + sm.get("Pss_Shmem", 0)
        detail.append((p, cmd[:120], st.get("VmRSS", 0)))
    return Memory(rss, pss, anon, filem, len(detail), tuple(detail))


def du(path: str) -> int:
    """Bytes actually allocated on disk under ``path`` (like ``du -s``; sparse files count
    only their allocated blocks)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def apparent_size(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


# ---------------------------------------------------------------- network


_GIVEN: set[int] = set()


def free_port() -> int:
    """A port nobody listens on now, never the same one twice in this process: the kernel
    may hand a closed port out again at once, and a server given one port for two of its
    listeners would not notice (SO_REUSEPORT lets both bind it)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


# An anonymous simple bind, msgid 1: SEQUENCE { INTEGER 1, [APPLICATION 0] { 3, "", [0] "" } }
_ANON_BIND = bytes.fromhex("300c020101600702010304008000")


def ldap_ready(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """True when an anonymous bind on host:port gets a BindResponse (any result code)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(_ANON_BIND)
            data = b""
            while len(data) < 8:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                data += chunk
            # 30 LL 02 01 01 61 ...
            i = 2 if data[1] < 0x80 else 2 + (data[1] & 0x7F)
            i += 2 + data[i + 1]
            return data[i] == 0x61
    except OSError:
        return False


def wait_ldap(port: int, timeout: float, proc: subprocess.Popen | None = None,
              what: str = "server") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before listening")
        if ldap_ready(port):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not answer an LDAP bind on port {port} within {timeout:.0f}s")


def stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; also kills leftovers of its process group."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- OpenLDAP install

SLAPD_PATHS = ("/usr/sbin/slapd", "/usr/sbin/slapadd")


def find_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


def ensure_openldap(log=print) -> tuple[str, str]:
    """Return (slapd, slapadd) paths, installing the Debian packages slapd and ldap-utils
    with apt-get if either is missing. Raises RuntimeError if that is impossible."""
    slapd, slapadd = find_tool("slapd"), find_tool("slapadd")
    if slapd and slapadd:
        return slapd, slapadd
    if not shutil.which("apt-get"):
        raise RuntimeError("slapd/slapadd not found and apt-get is not available")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log("installing OpenLDAP (apt-get install slapd ldap-utils) ...")
    # Don't let the package create and start a system-wide directory: we run our own.
    subprocess.run(sudo + ["debconf-set-selections"], input=b"slapd slapd/no_configuration boolean true\n",
                   env=env, check=False)
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "slapd", "ldap-utils"]):
        r = subprocess.run(sudo + cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            tail = r.stdout.decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{tail}")
    slapd, slapadd = find_tool("slapd"), find_tool("slapadd")
    if not (slapd and slapadd):
        raise RuntimeError("slapd/slapadd still missing after apt-get install")
    return slapd, slapadd


def machine_summary() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    except OSError:
        model = "?"
    return f"{os.cpu_count()} CPUs ({model}), Python {sys.version.split()[0]}"
