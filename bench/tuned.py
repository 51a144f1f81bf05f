"""Baseline (a2): plain Celery, one task per event, tuned as its docs suggest.

The fair version of ``bench/naive.py``: the database connection is kept
between tasks (``CELERY_DB_REUSE_MAX``, read by Celery's Django fixup, which
otherwise closes it around every task), late acks (acked after the task's
transaction committed, as ours), a prefork pool of ``CONCURRENCY`` processes
and a prefetch of ``PREFETCH`` messages per worker. Each task applies its
one event with the feed's own service, the way ours inserts the feed row.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.benchsite.settings")
django.setup()

from celery import Celery  # noqa: E402

from feed.services import feed_events_apply  # noqa: E402

QUEUE = "bench.tuned"
CONCURRENCY = 2
PREFETCH = 64

app = Celery("bench_tuned", broker=os.environ["CELERY_BROKER_URL"])
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    task_acks_late=True,
    # Celery's prefetch is per pool process: 32 x 2 processes = 64 unacked.
    worker_prefetch_multiplier=PREFETCH // CONCURRENCY,
    worker_concurrency=CONCURRENCY,
)
# Read by the Django fixup as it is (no namespace): keep the connection for
# up to this many tasks instead of reconnecting per task.
app.conf["CELERY_DB_REUSE_MAX"] = 1000


@app.task(name="bench.tuned.apply_event")
def apply_event(envelope: dict) -> None:
    feed_events_apply(envelopes=[envelope])
