"""The feed's Celery task: thin, validating, idempotent, acked after commit."""

import logging
import time
import traceback
from dataclasses import asdict
from typing import Any

from celery import shared_task
from celery.worker.request import Request
from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
)

from portal.messaging import deadletters, topology

from .services import feed_events_apply

logger = logging.getLogger(__name__)

# Errors that may pass: the database restarting, a deadlock, a timeout.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


class BatchRequest(Request):
    """Hands a task to the pool with its body only, not a decoded copy too.

    Celery decodes the body in the worker's main process and puts the
    arguments in the request it pickles to the pool process, which decodes
    the body again and overwrites them. For a message of a thousand events
    that pickled copy was the biggest part of the hand-off (a tenth of the
    worker's CPU). Left out, the pool process still gets everything from the
    body; the main process keeps its own copy for events and inspection.
    """

    @property
    def request_dict(self):
        # What execute_using_pool pickles to the pool process.
        if not self._content_type:  # a body Celery decoded: it is the arguments
            return self._request_dict
        return {
            key: value
            for key, value in self._request_dict.items()
            if key not in ("args", "kwargs")
        }


@shared_task(
    name="feed.apply_events",
    bind=True,
    max_retries=None,
    Request=f"{__name__}:BatchRequest",
)
def apply_events(self, events: Any) -> dict[str, int]:
    """Apply a batch of CloudEvents to the feed.

    The message is acked only after ``feed_events_apply`` committed
    (``task_acks_late``). Invalid events are dead-lettered inside that
    transaction and never retried; a transient database error retries the
    whole batch after ``FEED_RETRY_DELAYS``, held by RabbitMQ (native delayed
    delivery, so a delay never ties up a worker and survives restarts); the
    attempt count travels in the message (``retries``). After the last delay
    the events go to ``feed.dead`` with reason "retries exhausted" and the
    error, and from there into the dead-letter store.
    """
    if not isinstance(events, list):
        # A single envelope (or garbage): validation dead-letters what it is.
        events = [events]
    _check_connection()
    try:
        result = feed_events_apply(envelopes=events)
    except TRANSIENT_ERRORS as exc:
        if not connection.in_atomic_block:
            # Whatever broke, the retry starts on a new connection.
            connection.close()
        delays = settings.FEED_RETRY_DELAYS
        attempt = self.request.retries
        if attempt >= len(delays):
            logger.error(
                "Giving up on task %s after %d retries", self.request.id, attempt
            )
            _give_up(self, events, exc)
            return {"created": 0, "duplicates": 0, "dead_lettered": len(events)}
        logger.warning(
            "Transient error, retry %d in %ss: %s", attempt + 1, delays[attempt], exc
        )
        raise self.retry(exc=exc, countdown=delays[attempt]) from exc
    finally:
        _last_task_at[0] = time.monotonic()
    return asdict(result)


# When this process last ran the task (one list per pool process).
_last_task_at = [0.0]


def _check_connection() -> None:
    """Drop the kept database connection if it broke while the worker idled.

    The worker keeps its connection between tasks (``CELERY_DB_REUSE_MAX``);
    after ``FEED_DB_CHECK_AFTER_IDLE`` seconds without a task, the
    ``CONN_HEALTH_CHECKS`` ping (and ``CONN_MAX_AGE``) decide whether it is
    still good. Back-to-back tasks skip the round trip.
    """
    if time.monotonic() - _last_task_at[0] > settings.FEED_DB_CHECK_AFTER_IDLE:
        close_old_connections()


def _give_up(task, events: list[Any], exc: BaseException) -> None:
    """Hand the events to ``feed.dead`` with why, confirmed, before the ack.

    The database is what failed, so the store cannot be written now; the
    dead-letter consumer stores them once it can. If even this publish fails,
    the exception propagates and the message is rejected to ``feed.dead``
    by the queue instead (``task_acks_on_failure_or_timeout`` is off).
    """
    attempts = task.request.retries + 1
    headers = {
        deadletters.HEADER_REASON: deadletters.REASON_RETRIES_EXHAUSTED,
        deadletters.HEADER_ERROR: "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__)
        )[-4000:],
        deadletters.HEADER_ATTEMPTS: attempts,
        deadletters.HEADER_QUEUE: topology.feed_queue_name(),
    }
    with task.app.producer_or_acquire() as producer:
        task.app.send_task(
            topology.FEED_TASK,
            args=[events],
            exchange=topology.DEAD_LETTER_EXCHANGE,
            routing_key=topology.dead_letter_queue_name(),
            queue=topology.dead_letter_queue(),
            headers=headers,
            producer=producer,
            mandatory=True,
            retry=False,
            confirm_timeout=settings.OUTBOX_PUBLISH_TIMEOUT,
        )
