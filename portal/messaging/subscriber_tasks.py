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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import current_app, shared_task
from celery.worker import strategy
from celery.worker.request import Request
from django.conf import settings
from django.db import close_old_connections, connection

from portal.observability.logcontext import event_log_fields, log_context
from portal.observability.process import process_label
from portal.observability.tracing import trace_id_of

from . import metrics
from .batches import TRANSIENT_DATABASE_ERRORS
from .contracts import events_upcast, upcast_batch
from .dead_letter_records import (
    HEADER_ATTEMPTS,
    HEADER_ERROR,
    HEADER_OUTAGES,
    HEADER_QUEUE,
    HEADER_REASON,
    HEADER_SUBSCRIBER,
    REASON_INVALID_MESSAGE,
    REASON_RETRIES_EXHAUSTED,
)
from .journey import (
    HEADER_LOG_IDS,
    HEADER_LOGGED_AT,
    HEADER_REPAIR,
    BatchJourney,
    Hop,
    Key,
    batch_journey_begin,
    batch_journey_end,
    event_key,
    hops_record,
    journey_enabled,
    log_rows_for,
    log_rows_from_headers,
)
from .journey import now as journey_now
from .metrics import histogram_observe_many
from .models import EventHop
from .subscriptions import Subscription
from .task_messages import encode_event, outgoing_publish, task_message
from .topology import DEAD_LETTER_EXCHANGE

logger = logging.getLogger(__name__)


class BatchRequest(Request):
    """A subscriber's task request: its body is read once, in the pool process.

    Celery reads every task message's body in the worker's main process to
    fill the request's arguments, pickles those arguments to the pool process
    with the body, and the pool process reads the body again and overwrites
    them. A subscriber's arguments are a batch of events, which the main
    process never looks at: its logs and events use the ``argsrepr`` header.
    So the main process leaves the body unread until something there asks for
    the arguments (``inspect``, a failure's report), and hands the pool the
    body alone. A body that cannot be read fails in the pool process and is
    rejected to the dead-letter queue, as a task failure is.
    """

    def __init__(self, message, *args, **kwargs):
        # batch_strategy left the body unread (see there).
        unread = isinstance(message._decoded_cache, _Unread)
        try:
            super().__init__(message, *args, **kwargs)
        finally:
            if unread:
                message._decoded_cache = None
        self._unread = unread

    def _read(self) -> None:
        if getattr(self, "_unread", False):
            self._unread = False
            try:
                payload = self._message.payload
            except Exception:  # the pool process's failure reports it
                return
            self._Request__payload = payload
            args, kwargs, _ = payload
            self._args = self._request_dict["args"] = args
            self._kwargs = self._request_dict["kwargs"] = kwargs

    @property
    def _payload(self):
        self._read()
        return self._Request__payload

    @property
    def args(self):
        self._read()
        return self._args

    @property
    def kwargs(self):
        self._read()
        return self._kwargs

    def info(self, safe=False):
        self._read()
        return super().info(safe)

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


class _Unread(tuple):
    """Arguments, keyword arguments and options in place of a body not read
    yet: a new one per message, so that nothing shares its dictionaries."""

    def __new__(cls) -> "_Unread":
        return super().__new__(cls, ((), {}, {}))


def batch_strategy(task, app, consumer, **options):
    """Celery's default strategy, which first reads the body to tell an old
    protocol's message from the current one: for a message of the current
    protocol (task headers, a JSON array for a body), the body stays unread
    and ``BatchRequest`` leaves it to the pool process."""
    handle = strategy.default(task, app, consumer, **options)

    def task_message_handler(message, body, *args, **kwargs):
        if (
            body is None
            and message._decoded_cache is None
            and "task" in message.headers
            and message.content_type == "application/json"
            and message.body[:1] in (b"[", "[")
        ):
            message._decoded_cache = _Unread()
        return handle(message, body, *args, **kwargs)

    return task_message_handler


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
            batch = _Batch(self, subscription, events)
            with batch:
                try:
                    with upcast_batch():
                        # Older versions as the newest one (contracts.UPCASTERS):
                        # every subscriber sees what its code knows best.
                        result = apply(events_upcast(events))
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
                        metrics.RETRIES.labels(subscription.name).inc()
                        batch.finish(
                            EventHop.Outcome.RETRIED,
                            f"database unreachable, waiting {delay}s: {exc}",
                        )
                        headers = self.request.as_execution_options()["headers"]
                        raise self.retry(
                            exc=exc,
                            countdown=delay,
                            headers={**(headers or {}), HEADER_OUTAGES: outages + 1},
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
                        batch.finish(
                            EventHop.Outcome.DEAD_LETTERED,
                            f"{REASON_RETRIES_EXHAUSTED}: {exc}",
                        )
                        return {"dead_lettered": len(events)}
                    logger.warning(
                        "Transient error, retry %d in %gs (subscriber %s): %s",
                        attempt + 1,
                        delays[attempt],
                        subscription.name,
                        exc,
                    )
                    metrics.RETRIES.labels(subscription.name).inc()
                    batch.finish(
                        EventHop.Outcome.RETRIED,
                        f"retry {attempt + 1} in {delays[attempt]}s: {exc}",
                    )
                    raise self.retry(exc=exc, countdown=delays[attempt]) from exc
                except Exception as exc:
                    batch.finish(
                        EventHop.Outcome.DEAD_LETTERED,
                        f"{REASON_INVALID_MESSAGE}: {type(exc).__name__}: {exc}",
                    )
                    raise
                finally:
                    _last_task_at[0] = time.monotonic()
                batch.finish(EventHop.Outcome.APPLIED, "")
                return result

        run.__doc__ = apply.__doc__
        metrics.metrics_initialize_subscriber(subscription.name)
        return shared_task(
            name=subscription.task,
            bind=True,
            max_retries=None,
            Request=f"{__name__}:BatchRequest",
            Strategy=f"{__name__}:batch_strategy",
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


class _Batch:
    """One task message's worth of events: log context, metrics and journey.

    Entered around the subscriber's ``apply``; ``finish`` (once) counts the
    outcome per event (applied, or a duplicate or dead letter the subscriber
    noted) and writes the batch's journey hops in one statement.
    """

    def __init__(self, task, subscription: Subscription, events: list[Any]) -> None:
        self.task = task
        self.subscription = subscription
        self.events = events
        request = task.request
        self.journey = BatchJourney(
            subscription.name, repair=bool(_header(request, HEADER_REPAIR))
        )
        self.attempt = int(request.retries or 0) + 1
        self.delivered_at = journey_now()
        self.started = time.perf_counter()
        self.finished = False
        self._facts: _EventFacts | None = None
        self.journey.prepare = self._prepare
        fields = event_log_fields(events[0]) if len(events) == 1 else {}
        trace = _one_trace(events)
        if trace is not None:
            fields["trace_id"] = trace
        self._log = log_context(
            subscriber=subscription.name, task_id=request.id or "", **fields
        )

    def _prepare(self) -> None:
        """What ``_record`` needs of each event whatever the outcome: its key,
        its time and, from the router's headers, its log row (a requeued
        message's are looked up in ``_record``)."""
        request = self.task.request
        self._facts = _EventFacts(
            keys=[event_key(event) for event in self.events],
            times=[_event_time(event) for event in self.events],
            rows=log_rows_from_headers(
                self.events,
                _header(request, HEADER_LOG_IDS),
                _header(request, HEADER_LOGGED_AT),
            ),
        )

    def __enter__(self) -> "_Batch":
        self._token = batch_journey_begin(self.journey)
        self._log.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._log.__exit__(*exc_info)
        batch_journey_end(self._token)

    def finish(self, outcome: str, detail: str) -> None:
        if self.finished:
            return
        self.finished = True
        name = self.subscription.name
        elapsed = time.perf_counter() - self.started
        metrics.BATCH_SECONDS.labels(name).observe(elapsed)
        metrics.BATCH_EVENTS.labels(name).observe(len(self.events))
        try:
            self._record(outcome, detail)
        except Exception:  # noqa: BLE001 - observing must never fail the task
            logger.exception(
                "Recording the outcome of task %s failed", self.task.request.id
            )

    def _record(self, outcome: str, detail: str) -> None:
        name = self.subscription.name
        request = self.task.request
        if self._facts is None:  # the subscriber never waited for a database
            self._prepare()
        assert self._facts is not None
        rows = self._facts.rows
        if rows is None:
            rows = log_rows_for(
                self.events,
                None,
                None,
                lookup=journey_enabled() and outcome != EventHop.Outcome.RETRIED,
            )
        finished_at = journey_now()
        now = finished_at.timestamp()
        hops: list[Hop] = []
        applied = duplicates = 0
        event_lags: list[float] = []
        commit_lags: list[float] = []
        dead, repeated = self.journey.dead, self.journey.duplicates
        for key, at, row in zip(self._facts.keys, self._facts.times, rows, strict=True):
            event_outcome = outcome
            if outcome == EventHop.Outcome.APPLIED:
                if key is None or key in dead:
                    continue  # its dead letter is its hop
                if key in repeated:
                    event_outcome = EventHop.Outcome.DUPLICATE
                    duplicates += 1
                else:
                    applied += 1
                    if at is not None:
                        event_lags.append(max(0.0, now - at))
                    if row is not None:
                        commit_lags.append(max(0.0, now - row[1]))
            if row is not None:
                hops.append(Hop(row[0], event_outcome, detail))
        if applied:
            metrics.APPLIED.labels(name).inc(applied)
            histogram_observe_many(metrics.EVENT_TIME_LAG.labels(name), event_lags)
            histogram_observe_many(metrics.COMMIT_LAG.labels(name), commit_lags)
        if duplicates:
            metrics.DUPLICATES.labels(name).inc(duplicates)
        if outcome == EventHop.Outcome.APPLIED:
            logger.info(
                "Applied %d event(s), %d duplicate(s), %d dead-lettered",
                applied,
                duplicates,
                len(self.journey.dead),
            )
        hops_record(
            hops,
            subscriber=name,
            attempt=self.attempt,
            delivered_at=self.delivered_at,
            finished_at=finished_at,
            process=process_label(),
            task_id=request.id or "",
        )


@dataclass
class _EventFacts:
    keys: list[Key | None]
    times: list[float | None]
    rows: list[tuple[int, float] | None] | None


def _one_trace(events: list[Any]) -> str | None:
    """The trace id every event of the batch carries, if there is one (a
    batch of one request's events); stops at the second it finds."""
    found: set[str] = set()
    for event in events:
        if isinstance(event, dict):
            found.add(trace_id_of(event.get("traceparent")))
            if len(found) > 1:
                return None
    return found.pop() if found else None


def _header(request: Any, name: str) -> Any:
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value


def _event_time(event: Any) -> float | None:
    if not isinstance(event, dict) or not isinstance(event.get("time"), str):
        return None
    try:
        return datetime.fromisoformat(event["time"]).timestamp()
    except ValueError:
        return None


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
