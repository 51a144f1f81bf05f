"""Baseline (a3): celery-batches, one COPY per flushed batch.

What a Celery user reaches for when one task per event is too slow: the
``Batches`` task class buffers single-event task messages in the worker's
main process and hands them to the pool ``FLUSH_EVERY`` at a time (or after
``FLUSH_INTERVAL`` seconds); the task writes the batch's feed rows (rendered
like ours) with one COPY and commits, and only then are the messages acked
(``acks_late``). No validation, no duplicate check: COPY cannot skip them.
"""

import json
import os
from datetime import UTC, datetime

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.benchsite.settings")
django.setup()

import psycopg  # noqa: E402
from celery import Celery  # noqa: E402
from celery_batches import Batches  # noqa: E402

from feed.rendering import department_of, render_text  # noqa: E402

QUEUE = "bench.batched"
FLUSH_EVERY = 1000
FLUSH_INTERVAL = 0.05
COLUMNS = (
    "source, event_id, type, time, data, text, department, traceparent, received_at"
)

app = Celery("bench_batched", broker=os.environ["CELERY_BROKER_URL"])
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    # Room for the next batch to arrive while one is written.
    worker_prefetch_multiplier=2 * FLUSH_EVERY,
    worker_concurrency=1,
)

_db: psycopg.Connection | None = None


def _connection() -> psycopg.Connection:
    """One connection per pool process, kept."""
    global _db
    if _db is None or _db.closed:
        _db = psycopg.connect(os.environ["DATABASE_URL"])
    return _db


@app.task(
    base=Batches,
    name="bench.batched.apply_events",
    flush_every=FLUSH_EVERY,
    flush_interval=FLUSH_INTERVAL,
    acks_late=True,
)
def apply_events(requests) -> None:
    db = _connection()
    now = datetime.now(UTC)
    with (
        db.cursor() as cur,
        cur.copy(f"COPY feed_feedevent ({COLUMNS}) FROM STDIN") as copy,
    ):
        for request in requests:
            env = request.args[0]
            data = env["data"]
            copy.write_row(
                (
                    env["source"],
                    env["id"],
                    env["type"],
                    env["time"],
                    json.dumps(data),
                    render_text(env["type"], data),
                    department_of(env["type"], data),
                    "",
                    now,
                )
            )
    db.commit()
