"""What RabbitMQ dead-letters, into the dead-letter store.

RabbitMQ moves to ``<queue>.dead`` what a queue gave up on: a message past
the queue's delivery limit (it killed its consumer every time), a rejected
undecodable or oversized message; a subscriber's task sends there what it
stopped retrying. A retry held by RabbitMQ whose queue was gone when its
delay ended lands in ``portal.delayed.unroutable`` (``delayed_delivery``).
``DeadLetterConsumerStep`` (in every worker) reads those queues and stores
each message as ``DeadLetter`` records with its reason, the subscriber that
failed and where it came from; the message is acked after that commit.
"""

import contextlib
import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .amqp_messages import (
    JSON_CONTENT_TYPES,
    content_type_of,
    json_safe,
    message_headers,
    message_properties,
    raw_body,
)
from .batching import BatchingConsumerStep
from .dead_letter_records import (
    HEADER_ATTEMPTS,
    HEADER_ERROR,
    HEADER_QUEUE,
    HEADER_REASON,
    HEADER_SUBSCRIBER,
    REASON_DELIVERY_LIMIT,
    REASON_INVALID_MESSAGE,
    REASON_NO_QUEUE,
    REASON_NOT_JSON,
    REASON_OVERSIZED,
    REASON_WRONG_CONTENT_TYPE,
    dead_letter_for_event,
    dead_letter_for_message,
    dead_letters_store,
    event_fields,
)
from .delayed_delivery import DELIVERY_EXCHANGE, unroutable_queue
from .models import DeadLetter
from .subscriptions import (
    Subscription,
    subscription_for_queue,
    subscription_for_task,
    subscription_named,
)
from .topology import (
    EVENTS_EXCHANGE,
    TASKS_EXCHANGE,
    dead_letter_queue,
    dead_letter_queue_names,
    ingest_queue_name,
    max_message_bytes,
)

logger = logging.getLogger(__name__)

# Native delayed delivery prefixes routing keys with 28 bits ("0.1.0.…").
_DELAY_PREFIX = re.compile(r"^(?:[01]\.){28}")


def _deaths(headers: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    deaths = headers.get("x-death") or []
    return [d for d in deaths if isinstance(d, Mapping)]


def _origin_queue(headers: Mapping[str, Any]) -> str:
    if headers.get(HEADER_QUEUE):
        return str(headers[HEADER_QUEUE])
    first = headers.get("x-first-death-queue")
    if first:
        return json_safe(first)
    deaths = _deaths(headers)
    return json_safe(deaths[-1].get("queue", "")) if deaths else ""


def _origin_routing_key(headers: Mapping[str, Any], fallback: str) -> str:
    for death in _deaths(headers):
        keys = death.get("routing-keys") or []
        if keys:
            return _DELAY_PREFIX.sub("", json_safe(keys[0]))
    return _DELAY_PREFIX.sub("", fallback)


def _first_death_time(headers: Mapping[str, Any]) -> datetime | None:
    times = [
        t for t in (d.get("time") for d in _deaths(headers)) if isinstance(t, datetime)
    ]
    if not times:
        return None
    first = min(times)
    return first if timezone.is_aware(first) else timezone.make_aware(first)


def _subscriber_of(headers: Mapping[str, Any], queue: str) -> Subscription | None:
    """The subscription a dead message belongs to: as its task said, else by
    the queue it died in, else by the task its message is for."""
    return (
        subscription_named(str(headers.get(HEADER_SUBSCRIBER) or ""))
        or subscription_for_queue(queue)
        or subscription_for_task(str(headers.get("task") or ""))
    )


def _unroutable_retry(message) -> bool:
    """Whether ``message`` is a retry that no queue took when its delay ended
    (the delivery exchange's alternate exchange brought it)."""
    return (message.delivery_info or {}).get("exchange") == DELIVERY_EXCHANGE


def dead_message_reason(message) -> tuple[str, str]:
    """Why RabbitMQ (or a subscriber's task) gave up on a message: reason and detail."""
    headers = message.headers or {}
    if _unroutable_retry(message):
        key = _origin_routing_key(headers, message.delivery_info.get("routing_key", ""))
        return (
            REASON_NO_QUEUE,
            f"its retry delay ended and no queue was bound for {key!r} (deleted "
            "or renamed meanwhile): requeue it once its queue is back",
        )
    if headers.get(HEADER_REASON):
        return str(headers[HEADER_REASON]), str(headers.get(HEADER_ERROR, ""))
    first = json_safe(headers.get("x-first-death-reason", ""))
    if not first:
        deaths = _deaths(headers)
        first = json_safe(deaths[-1].get("reason", "")) if deaths else ""
    queue = _origin_queue(headers)
    if first == "delivery_limit":
        subscription = _subscriber_of(headers, queue)
        limit = f" ({subscription.max_deliveries})" if subscription else ""
        return (
            REASON_DELIVERY_LIMIT,
            f"delivered more often than the queue's x-delivery-limit{limit}: it "
            "killed or crashed its consumer every time",
        )
    body = raw_body(message)
    max_bytes = max_message_bytes(queue)
    if len(body) > max_bytes:
        return REASON_OVERSIZED, f"{len(body)} bytes > {max_bytes}"
    content_type = content_type_of(message)
    if content_type not in JSON_CONTENT_TYPES:
        return REASON_WRONG_CONTENT_TYPE, f"content type {content_type!r}"
    try:
        json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        return REASON_NOT_JSON, str(exc)
    except RecursionError:
        return REASON_NOT_JSON, "JSON nested too deeply to read"
    return REASON_INVALID_MESSAGE, f"rejected by its consumer ({first or 'unknown'})"


def _task_events(message) -> list[Any] | None:
    """The events of a subscriber's task message, or None if it is not one."""
    headers = message.headers or {}
    if subscription_for_task(str(headers.get("task") or "")) is None:
        return None
    if content_type_of(message) != "application/json":
        return None
    try:
        args, _kwargs, _embed = json.loads(raw_body(message))
        events = args[0]
    except (ValueError, TypeError, IndexError, UnicodeDecodeError, RecursionError):
        return None
    return events if isinstance(events, list) and events else None


def dead_letters_for_dead_message(message) -> list[DeadLetter]:
    """The records for one message from a dead-letter queue: one per event
    when it is a subscriber's task message, so each can be found by its id
    and type and requeued on its own (subscribers apply each event at most
    once, so splitting a batch is safe). Anything else is kept whole."""
    headers = message.headers or {}
    reason, error = dead_message_reason(message)
    info = message.delivery_info or {}
    routing_key = _origin_routing_key(headers, info.get("routing_key", "") or "")
    # An unroutable retry died in a delay queue; it was meant for its key's queue.
    queue = routing_key if reason == REASON_NO_QUEUE else _origin_queue(headers)
    subscription = _subscriber_of(headers, queue)
    if subscription is not None:
        exchange, routing_key = TASKS_EXCHANGE, subscription.queue
    elif queue == ingest_queue_name():
        exchange = EVENTS_EXCHANGE
    else:
        exchange = json_safe(info.get("exchange", "")) or ""
    attempts = headers.get(HEADER_ATTEMPTS) or headers.get("x-delivery-count")
    if not attempts and reason == REASON_DELIVERY_LIMIT:
        # RabbitMQ 3.10 does not say how often; the limit says it.
        attempts = (subscription.max_deliveries + 1) if subscription else 0
    attempts = attempts or sum(int(d.get("count", 1) or 1) for d in _deaths(headers))
    common = {
        "queue": queue,
        "subscriber": subscription.name if subscription else "",
        "exchange": exchange,
        "routing_key": routing_key,
        "attempts": int(attempts or 1),
        "first_failed_at": _first_death_time(headers) or timezone.now(),
    }
    events = _task_events(message) if reason != REASON_OVERSIZED else None
    if events is not None:
        return [
            dead_letter_for_event(
                event,
                reason=reason,
                error=error,
                headers=message_headers(message),
                properties=message_properties(message),
                **common,
            )
            for event in events
        ]
    record = dead_letter_for_message(message, reason=reason, error=error, queue=queue)
    for name, value in common.items():
        setattr(record, name, value)
    if reason != REASON_OVERSIZED:
        with contextlib.suppress(
            ValueError, TypeError, UnicodeDecodeError, RecursionError
        ):
            record.__dict__.update(event_fields(json.loads(raw_body(message))))
    return [record]


class DeadLetterConsumerStep(BatchingConsumerStep):
    """Moves every message of every dead-letter queue into the store."""

    def batch_size(self) -> int:
        return 50

    def queues(self):
        queues = [dead_letter_queue(name) for name in dead_letter_queue_names()]
        if settings.DELAYED_UNROUTABLE_INTAKE:
            queues.append(unroutable_queue())
        for queue in queues:
            # Declared by DeclareTopology (kombu types Exchange.no_declare only).
            queue.no_declare = True  # type: ignore[attr-defined]
        return queues

    def handle(self, messages: list[Any]) -> None:
        records = []
        for message in messages:
            records.extend(dead_letters_for_dead_message(message))
        with transaction.atomic():
            dead_letters_store(records)
        for record in records:
            logger.warning("Dead letter stored: %s", record)
