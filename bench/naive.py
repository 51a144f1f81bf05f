"""The naive consumer: one plain Celery task per event, Celery's default settings.

A bench-only Celery app (default prefetch, early ack, classic queue) whose
task applies one event with one insert, for comparison with
``feed.apply_events``.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.benchsite.settings")
django.setup()

from celery import Celery  # noqa: E402

from feed.services import feed_events_apply  # noqa: E402

QUEUE = "bench.naive"

app = Celery("bench_naive", broker=os.environ["CELERY_BROKER_URL"])
app.conf.task_default_queue = QUEUE
app.conf.task_ignore_result = True


@app.task(name="bench.naive.apply_event")
def apply_event(envelope: dict) -> None:
    feed_events_apply(envelopes=[envelope])
