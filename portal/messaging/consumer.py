"""The worker's consumers.

* ``FeedConsumer``: Celery's own consumer of the ``feed`` task queue, minus
  the habit of dropping bad bytes; oversized or non-JSON task messages are
  rejected to ``feed.dead`` unread.
* ``IngestConsumerStep``: events from other services on ``portal.events``
  (queue ``feed.ingest``), applied to the feed in batches.
* ``DeadLetterConsumerStep``: moves whatever RabbitMQ dead-letters to
  ``feed.dead`` into the dead-letter store.

The two steps run in the worker's main process (``celery.bootsteps.
ConsumerStep``), so no extra process is needed. Each acks a message only after
the database transaction holding its outcome committed; while the database is
unavailable they keep what they hold unacked and try again with growing pauses
(a timer, not recursion). Messages not yet acked when the worker stops or the
connection drops go back to the queue: at least once, and the feed applies
each event at most once.
"""

import json
import logging
import time
import traceback
from typing import Any

from amqp.exceptions import PreconditionFailed
from celery import bootsteps
from celery.worker.consumer import Consumer
from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from kombu import Consumer as KombuConsumer

from . import deadletters, topology
from .sources import source_is_reserved

logger = logging.getLogger(__name__)

# The database restarting, unreachable, a deadlock: worth waiting for.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


class FeedConsumer(Consumer):
    def create_task_handler(self, *args, **kwargs):
        handle = super().create_task_handler(*args, **kwargs)

        def on_task_received(message):
            # Refuse before Celery parses anything: a huge or non-JSON body
            # would otherwise be handed to a pool process to fail there.
            size = len(message.body or b"")
            content_type = (message.content_type or "").split(";")[0].strip()
            if (
                size > deadletters.max_message_bytes(topology.feed_queue_name())
                or content_type != "application/json"
                or not _task_body_well_formed(message)
            ):
                logger.error(
                    "Refusing task message (%s bytes, content type %r); "
                    "dead-lettering it",
                    size,
                    content_type,
                )
                message.reject(requeue=False)
                return None
            return handle(message)

        return on_task_received

    def on_decode_error(self, message, exc):
        """Reject an undecodable message so the queue dead-letters it.

        Celery's default acks (drops) it; rejecting without requeue sends it
        to the dead-letter exchange with its body intact, so nothing is lost
        and nothing loops.
        """
        logger.error(
            "Undecodable message (content type %r): %s; dead-lettering it",
            message.content_type,
            exc,
        )
        message.reject(requeue=False)


def _task_body_well_formed(message) -> bool:
    """Is the body Celery's ``[args, kwargs, embed]``?

    Celery unpacks it in the worker's main process, where a ValueError is an
    "unrecoverable error" that stops the whole worker: check first.
    """
    headers = message.headers if isinstance(message.headers, dict) else {}
    if "task" not in headers or headers.get("compression"):
        return True  # not protocol 2 JSON: Celery's own checks apply
    try:
        # kombu keeps the decoded body: Celery's own unpacking reuses it.
        body = message.decode()
    except Exception:  # noqa: BLE001 - any failure to decode is a bad body
        return False
    return (
        isinstance(body, list)
        and len(body) == 3
        and isinstance(body[0], list)
        and isinstance(body[1], dict)
        and isinstance(body[2], dict | None)
    )


class _BatchingConsumerStep(bootsteps.ConsumerStep):
    """Consume raw messages, handle them in batches, ack after commit.

    Messages collect until ``batch_size`` or the next ``tick``; ``handle``
    then stores the outcome of all of them in one transaction, and only then
    are they acked. A database error keeps the batch (unacked) and pauses the
    step for 1, 2, 4 … ``max_backoff`` seconds; the broker's prefetch limit
    stops delivery meanwhile, so nothing piles up in memory.
    """

    requires = ("portal.messaging.bootsteps:DeclareTopology",)
    tick = 0.2
    max_backoff = 30.0

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.pending: list[Any] = []
        self.failures = 0
        self.paused_until = 0.0
        self._tref = None

    def batch_size(self) -> int:
        return settings.FEED_INGEST_BATCH_SIZE

    def queue(self):
        raise NotImplementedError

    def handle(self, messages: list[Any]) -> None:
        raise NotImplementedError

    def get_consumers(self, channel):
        return [
            KombuConsumer(
                channel,
                queues=[self.queue()],
                on_message=self.on_message,
                prefetch_count=self.batch_size(),
                no_ack=False,
            )
        ]

    def start(self, c):
        # Anything held from a previous connection is back in its queue.
        self.pending = []
        super().start(c)
        self._tref = c.timer.call_repeatedly(self.tick, self.flush)

    def stop(self, c):
        self._cancel_timer()
        super().stop(c)

    def shutdown(self, c):
        self._cancel_timer()
        super().shutdown(c)

    def _cancel_timer(self) -> None:
        if self._tref is not None:
            self._tref.cancel()
            self._tref = None

    def on_message(self, message) -> None:
        self.pending.append(message)
        if len(self.pending) >= self.batch_size():
            self.flush()

    def flush(self) -> None:
        if not self.pending or time.monotonic() < self.paused_until:
            return
        batch, self.pending = self.pending, []
        try:
            close_old_connections()
            self.handle(batch)
        except TRANSIENT_ERRORS as exc:
            self._pause(batch, exc)
            return
        except Exception:
            # Something in this batch cannot be stored (a bug, or data the
            # database refuses): find it, one message at a time.
            logger.exception("%s: batch failed; one by one", type(self).__name__)
            self._one_by_one(batch)
            return
        self.failures = 0
        _ack(batch)

    def _pause(self, batch: list[Any], exc: BaseException) -> None:
        """Keep every message unacked and try again after a growing pause."""
        self.pending = batch + self.pending
        self.failures += 1
        delay = min(2 ** (self.failures - 1), self.max_backoff)
        self.paused_until = time.monotonic() + delay
        logger.warning(
            "%s: storing %d message(s) failed, retrying in %.0fs: %s",
            type(self).__name__,
            len(batch),
            delay,
            exc,
        )
        connection.close()

    def _one_by_one(self, batch: list[Any]) -> None:
        for index, message in enumerate(batch):
            try:
                try:
                    self.handle([message])
                except TRANSIENT_ERRORS:
                    raise
                except Exception as exc:  # noqa: BLE001 - quarantined with the error
                    self.quarantine(message, exc)
            except Exception as exc:  # noqa: BLE001 - nothing stored: keep it
                self._pause(batch[index:], exc)
                return
            _ack([message])
        self.failures = 0

    def quarantine(self, message, exc: BaseException) -> None:
        """Store a message that broke its handler, whole, as "invalid message"."""
        record = deadletters.dead_letter_for_message(
            message,
            reason=deadletters.REASON_INVALID_MESSAGE,
            error="".join(traceback.format_exception(exc))[-8000:],
            queue=self.queue().name,
        )
        with transaction.atomic():
            deadletters.dead_letters_store([record])
        logger.error(
            "%s: stored an unprocessable message: %s", type(self).__name__, exc
        )


def _ack(messages: list[Any]) -> None:
    for message in messages:
        try:
            message.ack()
        except Exception:  # noqa: BLE001 - the channel is gone; it is redelivered
            logger.warning("Could not ack a stored message; it will come again")


class IngestConsumerStep(_BatchingConsumerStep):
    """Events from any service, published to ``portal.events``, into the feed.

    Each message must be one CloudEvent as JSON (``application/cloudevents+json``
    or ``application/json``) of at most ``MESSAGE_MAX_BYTES``. What is not is
    dead-lettered with its reason, never retried; valid events are applied by
    ``feed_events_apply`` (validated again, idempotent by source + id).
    """

    def queue(self):
        queue = topology.ingest_queue()
        queue.no_declare = True  # declared (or found) in start()
        return queue

    def start(self, c):
        try:
            topology.declare_ingest(c.connection)
        except PreconditionFailed as exc:
            # Declared earlier with other arguments (another delivery limit,
            # say): consume it as it is rather than not at all.
            logger.error(
                "Queue %s exists with other arguments; consuming it as it is: %s",
                topology.ingest_queue_name(),
                exc,
            )
        super().start(c)

    def handle(self, messages: list[Any]) -> None:
        from feed.services import feed_events_apply

        envelopes: list[Any] = []
        origins: list[dict[str, Any]] = []
        dead = []
        for message in messages:
            origin = _ingest_origin(message)
            reason, error, decoded = _decode_event(message)
            if not reason and _claims_a_reserved_source(decoded):
                dead.append(
                    deadletters.dead_letter_for_event(
                        decoded,
                        reason=deadletters.REASON_RESERVED_SOURCE,
                        error=f"source {decoded['source']!r}: sources under "
                        f"{settings.PORTAL_EVENT_SOURCE} are the portal's own "
                        "and are not accepted from other services",
                        **{
                            key: origin[key]
                            for key in ("exchange", "routing_key", "queue")
                        },
                    )
                )
                continue
            if reason:
                record = deadletters.dead_letter_for_message(
                    message, reason=reason, error=error, queue=origin["queue"]
                )
                record.exchange = origin["exchange"]
                record.routing_key = origin["routing_key"]
                dead.append(record)
                continue
            envelopes.append(decoded)
            origins.append(origin)
        result = feed_events_apply(
            envelopes=envelopes, origins=origins, dead_letters=dead
        )
        if messages:
            logger.info(
                "Ingested %d event(s): %d new, %d duplicate, %d dead-lettered",
                len(messages),
                result.created,
                result.duplicates,
                result.dead_lettered,
            )


def _ingest_origin(message) -> dict[str, Any]:
    info = message.delivery_info or {}
    return {
        "exchange": topology.EVENTS_EXCHANGE,
        "routing_key": info.get("routing_key", "") or "",
        "queue": topology.ingest_queue_name(),
        "content_type": message.content_type or "",
        "headers": deadletters.json_safe(message.headers or {}),
        "properties": deadletters._properties(message),
        "attempts": int((message.headers or {}).get("x-delivery-count") or 0) + 1,
    }


def _claims_a_reserved_source(decoded: Any) -> bool:
    source = decoded.get("source") if isinstance(decoded, dict) else None
    return isinstance(source, str) and source_is_reserved(source)


def _decode_event(message) -> tuple[str, str, Any]:
    """(reason, error, event): a reason when the message can never be an event."""
    body = deadletters.raw_body(message)
    limit = deadletters.max_message_bytes()
    if len(body) > limit:
        return deadletters.REASON_OVERSIZED, f"{len(body)} bytes > {limit}", None
    content_type = (message.content_type or "").split(";")[0].strip()
    if content_type not in deadletters.JSON_CONTENT_TYPES:
        return (
            deadletters.REASON_WRONG_CONTENT_TYPE,
            f"content type {content_type!r}; expected one of "
            f"{sorted(deadletters.JSON_CONTENT_TYPES)}",
            None,
        )
    try:
        return "", "", json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        return deadletters.REASON_NOT_JSON, str(exc), None
    except RecursionError:
        return deadletters.REASON_NOT_JSON, "JSON nested too deeply to read", None


class DeadLetterConsumerStep(_BatchingConsumerStep):
    """Moves every message in ``feed.dead`` into the dead-letter store.

    RabbitMQ puts there what the queues gave up on (delivery limit, rejected
    undecodable messages) and the feed task what it stopped retrying. Each
    becomes ``DeadLetter`` record(s) with its reason, headers and raw body;
    the message is acked after that commit.
    """

    def batch_size(self) -> int:
        return 50

    def queue(self):
        return topology.dead_letter_queue()

    def handle(self, messages: list[Any]) -> None:
        records = []
        for message in messages:
            records.extend(deadletters.dead_letters_for_dead_message(message))
        with transaction.atomic():
            deadletters.dead_letters_store(records)
        for record in records:
            logger.warning("Dead letter stored: %s", record)
