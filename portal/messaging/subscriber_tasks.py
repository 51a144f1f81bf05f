"""A subscriber's Celery task: thin, acked after commit, retried by the broker.

``subscriber_task(SUBSCRIPTION)`` turns a function that applies a list of
CloudEvents (in its own transaction, idempotently) into the subscription's
Celery task. The task

* takes the events from a task message the relay (or a requeue) sent;
* is acked only after the function returned (``task_acks_late``), so a
  worker that dies mid-batch gets the message redelivered;
* retries a transient failure after the subscription's delays, held by
  RabbitMQ (Celery's native delayed delivery on a quorum queue), the attempt
  count travelling in the message;
* while the database cannot be reached at all, waits the outage out
  (``WORKER_OUTAGE_RETRY_SECONDS`` at a time, held by RabbitMQ) without
  using up its retries, so a long outage does not turn every batch in
  flight into a dead letter;
* after the last delay, hands the events to the subscription's dead-letter
  queue with the reason and error, to be stored in the dead-letter store.
"""

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from celery import current_app, shared_task
from celery.worker.request import Request
from django.conf import settings
from django.db import close_old_connections, connection

from .batches import TRANSIENT_DATABASE_ERRORS
from .contracts import events_upcast, upcast_batch
from .dead_letter_records import (
    HEADER_ATTEMPTS,
    HEADER_ERROR,
    HEADER_OUTAGES,
    HEADER_QUEUE,
    HEADER_REASON,
    HEADER_SUBSCRIBER,
    REASON_RETRIES_EXHAUSTED,
)
from .subscriptions import Subscription
from .task_messages import encode_event, outgoing_publish, task_message
from .topology import DEAD_LETTER_EXCHANGE

logger = logging.getLogger(__name__)


class BatchRequest(Request):
    """Hands a task to the pool with its body only, not a decoded copy too.

    Celery decodes the body in the worker's main process and puts the
    arguments in the request it pickles to the pool process, which decodes
    the body again and overwrites them. For a message of a thousand events
    that pickled copy was the biggest part of the hand-off. Left out, the
    pool process still gets everything from the body; the main process keeps
    its own copy for events and inspection.
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


def subscriber_task(
    subscription: Subscription,
    *,
    transient: tuple[type[BaseException], ...] = TRANSIENT_DATABASE_ERRORS,
) -> Callable[[Callable[[list[Any]], Any]], Any]:
    """Make ``apply(events)`` the Celery task of ``subscription``.

    ``apply`` receives the list of CloudEvents (as decoded JSON) and must be
    idempotent on (``source``, ``id``) and commit before returning; what it
    returns is the task's result (for logs). An exception in ``transient``
    (database errors by default; a subscriber calling another service adds
    its timeouts) retries the batch; anything else fails the task, which is
    rejected to the dead-letter queue.
    """

    def decorate(apply: Callable[[list[Any]], Any]):
        def run(self, events: Any) -> Any:
            if not isinstance(events, list):
                # A single envelope (or garbage): validation dead-letters it.
                events = [events]
            _check_connection()
            try:
                with upcast_batch():
                    # Older versions as the newest one (contracts.UPCASTERS):
                    # every subscriber sees what its code knows best.
                    return apply(events_upcast(events))
            except transient as exc:
                if not connection.in_atomic_block:
                    # Whatever broke, the retry starts on a new connection.
                    connection.close()
                outages = _outages(self.request)
                if database_unreachable():
                    # Not this batch's fault: wait the outage out, retries kept.
                    delay = settings.WORKER_OUTAGE_RETRY_SECONDS
                    logger.warning(
                        "Database unreachable; task %s waits %ss (subscriber %s)",
                        self.request.id,
                        delay,
                        subscription.name,
                    )
                    raise self.retry(
                        exc=exc,
                        countdown=delay,
                        headers={
                            **(self.request.as_execution_options()["headers"] or {}),
                            HEADER_OUTAGES: outages + 1,
                        },
                    ) from exc
                delays = subscription.delays
                attempt = self.request.retries - outages
                if attempt >= len(delays):
                    logger.error(
                        "Giving up on task %s after %d retries (subscriber %s)",
                        self.request.id,
                        attempt,
                        subscription.name,
                    )
                    subscription_give_up(subscription, events, exc, attempt + 1)
                    return {"dead_lettered": len(events)}
                logger.warning(
                    "Transient error, retry %d in %gs (subscriber %s): %s",
                    attempt + 1,
                    delays[attempt],
                    subscription.name,
                    exc,
                )
                raise self.retry(exc=exc, countdown=delays[attempt]) from exc
            finally:
                _last_task_at[0] = time.monotonic()

        run.__doc__ = apply.__doc__
        return shared_task(
            name=subscription.task,
            bind=True,
            max_retries=None,
            Request=f"{__name__}:BatchRequest",
        )(run)

    return decorate


def _outages(request) -> int:
    """Retries this task spent waiting out a database outage."""
    headers = request.headers or {}
    try:
        return int(headers.get(HEADER_OUTAGES) or 0)
    except (TypeError, ValueError):
        return 0


def database_unreachable() -> bool:
    """Can no connection to the database be made now (an outage, not a
    failing statement)?"""
    try:
        connection.ensure_connection()
    except TRANSIENT_DATABASE_ERRORS:
        connection.close()
        return True
    return False


# When this process last ran a task (one list per pool process).
_last_task_at = [0.0]


def _check_connection() -> None:
    """Drop the kept database connection if it broke while the worker idled.

    The worker keeps its connection between tasks (``CELERY_DB_REUSE_MAX``);
    after ``WORKER_DB_CHECK_AFTER_IDLE`` seconds without a task, the
    ``CONN_HEALTH_CHECKS`` ping (and ``CONN_MAX_AGE``) decide whether it is
    still good. Back-to-back tasks skip the round trip.
    """
    if time.monotonic() - _last_task_at[0] > settings.WORKER_DB_CHECK_AFTER_IDLE:
        close_old_connections()


def subscription_give_up(
    subscription: Subscription, events: list[Any], exc: BaseException, attempts: int
) -> None:
    """Hand ``events`` to the subscription's dead-letter queue with why,
    confirmed, before the task's ack.

    The database is what failed, so the store cannot be written now; the
    dead-letter consumer stores them once it can. If even this publish fails,
    the exception propagates and the message is rejected to the dead-letter
    queue by RabbitMQ instead (``task_acks_on_failure_or_timeout`` is off).
    """
    headers = {
        HEADER_REASON: REASON_RETRIES_EXHAUSTED,
        HEADER_ERROR: "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__)
        )[-4000:],
        HEADER_ATTEMPTS: attempts,
        HEADER_QUEUE: subscription.queue,
        HEADER_SUBSCRIBER: subscription.name,
    }
    message = task_message(
        subscription,
        [encode_event(event) for event in events],
        exchange=DEAD_LETTER_EXCHANGE,
        routing_key=subscription.dead_letter_queue,
        headers=headers,
    )
    with current_app.producer_or_acquire() as producer:
        outgoing_publish(
            producer, message, confirm_timeout=settings.OUTBOX_PUBLISH_TIMEOUT
        )
