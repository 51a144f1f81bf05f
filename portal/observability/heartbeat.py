"""Heartbeat files: a process that is looping says so, for its health probe.

The relay touches ``<HEARTBEAT_DIR>/relay`` after each pass, and a worker
touches ``<HEARTBEAT_DIR>/worker`` while its consumer is connected;
``manage.py portal_health relay|worker`` (the compose healthchecks) fails
when the file is older than ``--max-age`` seconds, or missing.
"""

import os
import time
from pathlib import Path

from django.conf import settings


def heartbeat_path(name: str) -> Path:
    return Path(settings.HEARTBEAT_DIR) / name


def heartbeat_touch(name: str) -> None:
    path = heartbeat_path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{os.getpid()} {time.time():.3f}\n")
    except OSError:
        pass  # a health probe will say so


def heartbeat_age(name: str) -> float | None:
    """Seconds since ``name`` last beat, or None if it never did."""
    try:
        return max(0.0, time.time() - heartbeat_path(name).stat().st_mtime)
    except FileNotFoundError:
        return None
