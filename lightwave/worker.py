"""Entry point of one LDAP worker process (started by `lightwave up`)."""
from __future__ import annotations

import json
import sys

from lightwave.cli import _setup_logging, cfg_from_json
from lightwave.nodes import run_worker


def main() -> int:
    payload = json.loads(sys.argv[1])
    cfg = cfg_from_json(payload["config"])
    _setup_logging(cfg.log_level)
    return run_worker(cfg, payload["slot"], payload["slots"])


if __name__ == "__main__":
    sys.exit(main())
