"""gunicorn's settings file (read from the working directory by default).

Metrics in multiprocess mode: a fresh ``PROMETHEUS_MULTIPROC_DIR`` when the
server starts, before the workers import anything; a worker's live gauges
are dropped when it exits. (See ``portal/observability/multiproc.py``.)
"""

import os

from portal.observability.multiproc import multiproc_prepare, multiproc_process_dead


def on_starting(server):
    multiproc_prepare("web")
    os.environ["PORTAL_PROCESS_KIND"] = "web"


def child_exit(server, worker):
    multiproc_process_dead(worker.pid)
