"""prometheus_client's multiprocess mode for the servers that fork.

gunicorn's workers and Celery's prefork pool are separate processes, each
counting in its own memory-mapped files under ``PROMETHEUS_MULTIPROC_DIR``;
the process that answers a scrape adds them up (``MultiProcessCollector``).
The directory must be set before ``prometheus_client`` is imported, must be
emptied when the server starts (old files would be counted again), and a
dead process's live gauges must be dropped (``mark_process_dead``):

* gunicorn: ``gunicorn.conf.py`` calls ``multiproc_prepare("web")`` when it
  starts and ``multiproc_process_dead(pid)`` when a worker exits;
* Celery: ``portal/celery.py`` calls ``multiproc_prepare("worker")`` for
  ``celery worker``, and a pool process marks itself dead at shutdown.

Without ``PROMETHEUS_MULTIPROC_DIR`` set by the environment a fresh
directory of the process's own is made under ``var/metrics/``.
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiproc_prepare(kind: str) -> Path:
    """Set up (and empty) the multiprocess directory of a server starting now.

    Must run before ``prometheus_client`` is imported. A directory named by
    the environment is emptied (it belongs to this server); otherwise one is
    made for this server under ``PORTAL_VAR_DIR/metrics``.
    """
    given = os.environ.get(ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for child in path.iterdir():
            if child.is_file() and child.suffix == ".db":
                child.unlink()
    else:
        base = Path(os.environ.get("PORTAL_VAR_DIR", Path.cwd() / "var")) / "metrics"
        base.mkdir(parents=True, exist_ok=True)
        _remove_stale(base)
        path = Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-", dir=base))
        os.environ[ENV] = str(path)
    _value_class_refresh()
    return path


def _value_class_refresh() -> None:
    """prometheus_client picks how values are kept when it is imported; a
    program may have imported it already (Celery's command line loads
    Flower's, which does). Metrics made from now on use the files."""
    import sys

    values: Any = sys.modules.get("prometheus_client.values")
    if values is not None:
        values.ValueClass = values.get_value_class()


def _remove_stale(base: Path) -> None:
    """Directories of servers that are gone (their pid no longer runs)."""
    for child in base.iterdir():
        try:
            pid = int(child.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if not _alive(pid):
            shutil.rmtree(child, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def multiproc_enabled() -> bool:
    return bool(os.environ.get(ENV))


def multiproc_process_dead(pid: int) -> None:
    """Drop the live gauges of a process that exited (its counters stay)."""
    if multiproc_enabled():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
