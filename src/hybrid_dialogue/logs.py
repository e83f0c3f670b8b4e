"""Logging set-up for the command line; library modules only call `logging.getLogger`."""

from __future__ import annotations

import logging
import os

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str | int | None = None) -> None:
    """Configure the root logger once, at `level` or $HYBRID_DIALOGUE_LOG_LEVEL (default INFO)."""
    level = level or os.environ.get("HYBRID_DIALOGUE_LOG_LEVEL", "INFO")
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt="%H:%M:%S", force=True)

    # TensorFlow's C++ logging is set by environment before its import; its
    # Python logger and absl's are too chatty at INFO for pipeline logs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for noisy in ("tensorflow", "absl", "urllib3", "botocore", "alembic", "git", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
