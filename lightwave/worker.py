"""Entry point of one LDAP worker process (started by `lightwave up`)."""
from __future__ import annotations

import json
import os
import sys

from lightwave.cli import CLIError, _setup_logging, cfg_from_json
from lightwave.nodes import run_worker


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker when the supervisor dies, even by kill -9,
    so no orphaned worker keeps serving the port."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != int(os.environ.get("LIGHTWAVE_SUPERVISOR_PID", os.getppid())):
            sys.exit(0)  # the supervisor died before prctl took effect
    except (OSError, AttributeError):
        pass


def main() -> int:
    _die_with_parent()
    payload = json.loads(sys.argv[1])
    cfg = cfg_from_json(payload["config"])
    _setup_logging(cfg.log_level)
    try:
        return run_worker(cfg, payload["slot"], payload["slots"], payload.get("ldapi_fd"), payload.get("ready_fd"))
    except CLIError as exc:
        print(f"lightwave: worker {payload['slot']}: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
