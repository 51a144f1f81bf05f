"""The portal's Celery app plus one task that kills the process handling it.

Only scenario 7 starts a worker with ``-A bench.faults.poison``; production
code knows nothing of it.
"""

import os

from portal.celery import app

__all__ = ["app"]


@app.task(name="chaos.poison")
def poison(marker: str) -> None:
    """Die like a segfault in a C extension would: no cleanup, no ack."""
    os._exit(70)
