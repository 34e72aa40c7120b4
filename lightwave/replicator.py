"""Entry point of a node's replication process (started by `lightwave up`)."""
from __future__ import annotations

import json
import sys

from lightwave.cli import _setup_logging, cfg_from_json
from lightwave.nodes import run_replicator
from lightwave.worker import _die_with_parent


def main() -> int:
    _die_with_parent()
    cfg = cfg_from_json(json.loads(sys.argv[1])["config"])
    _setup_logging(cfg.log_level)
    return run_replicator(cfg)


if __name__ == "__main__":
    sys.exit(main())
