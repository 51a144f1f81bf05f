"""Events other services publish on ``portal.events``, into the event log.

``IngestConsumerStep`` (in every worker, on RabbitMQ) consumes the quorum
queue ``INGEST_QUEUE``, bound to ``portal.events`` with ``#``. Each message
must be one CloudEvent as JSON (``application/cloudevents+json`` or
``application/json``) of at most ``MESSAGE_MAX_BYTES``, valid against its
contract and not claiming one of the portal's own sources. Valid events are
logged (once per source and id), refused ones stored as dead letters with
their reason, all in one transaction per batch, and the batch is acked
after that commit. From the log, the relay routes each event to every
subscriber that wants it, like the portal's own.
"""

import logging
from collections import Counter
from typing import Any

from django.conf import settings

from . import metrics
from .amqp_messages import (
    JSON_CONTENT_TYPES,
    content_type_of,
    delivery_count,
    message_headers,
    message_properties,
    raw_body,
)
from .batches import batch_apply
from .batching import BatchingConsumerStep
from .contracts import ContractError, Event, validate_event
from .dead_letter_records import (
    REASON_DATABASE_REFUSED,
    REASON_NOT_JSON,
    REASON_OVERSIZED,
    REASON_RESERVED_SOURCE,
    REASON_WRONG_CONTENT_TYPE,
    dead_letter_for_contract_error,
    dead_letter_for_event,
    dead_letter_for_message,
    dead_letters_store,
)
from .eventlog import event_log_accept_many
from .json_codec import exact_loads
from .models import DeadLetter, LoggedEvent
from .sources import source_is_reserved
from .topology import EVENTS_EXCHANGE, declare_ingest, ingest_queue

logger = logging.getLogger(__name__)


class IngestConsumerStep(BatchingConsumerStep):
    def batch_size(self) -> int:
        return settings.INGEST_BATCH_SIZE

    def queues(self):
        queue = ingest_queue()
        # Declared (or found) in start() (kombu types Exchange.no_declare only).
        queue.no_declare = True  # type: ignore[attr-defined]
        return [queue]

    def start(self, c):
        declare_ingest(c.connection)
        for outcome in ("accepted", "duplicate"):
            metrics.INGESTED.labels(outcome, "")
        super().start(c)

    def handle(self, messages: list[Any]) -> None:
        dead: list[DeadLetter] = []
        accepted: list[tuple[Event, Any]] = []
        for message in messages:
            outcome = ingest_decode(message)
            if isinstance(outcome, DeadLetter):
                dead.append(outcome)
            else:
                accepted.append((outcome, message))

        def refuse(item: tuple[Event, Any], exc: Exception) -> None:
            event, message = item
            dead.append(
                dead_letter_for_event(
                    event.as_json(),
                    reason=REASON_DATABASE_REFUSED,
                    error=f"{type(exc).__name__}: {exc}"[:8000],
                    **_origin(message),
                )
            )

        def store_dead_letters() -> None:
            if dead:
                dead_letters_store(dead)

        def count() -> None:
            logged = sum(len(ids) for ids in results)
            metrics.INGESTED.labels("accepted", "").inc(logged)
            metrics.INGESTED.labels("duplicate", "").inc(
                len(messages) - len(dead) - logged
            )
            for reason, n in Counter(record.reason for record in dead).items():
                metrics.INGESTED.labels("refused", reason).inc(n)

        results = batch_apply(
            accepted,
            apply=lambda part: event_log_accept_many(
                [event for event, _ in part], origin=LoggedEvent.Origin.AMQP
            ),
            refuse=refuse,
            finish=store_dead_letters,
        )
        count()
        logger.info(
            "Ingested %d message(s): %d new event(s) logged, %d dead-lettered",
            len(messages),
            sum(len(ids) for ids in results),
            len(dead),
        )


def _where(message) -> dict[str, Any]:
    """Where a message came from, for its dead letter."""
    info = message.delivery_info or {}
    return {
        "exchange": EVENTS_EXCHANGE,
        "routing_key": info.get("routing_key", "") or "",
        "queue": settings.INGEST_QUEUE,
        "attempts": delivery_count(message) + 1,
    }


def _origin(message) -> dict[str, Any]:
    """``_where``, with the message's content type, headers and properties."""
    return {
        **_where(message),
        "content_type": message.content_type or "",
        "headers": message_headers(message),
        "properties": message_properties(message),
    }


def ingest_decode(message) -> Event | DeadLetter:
    """The event a message from another service carries, or the dead letter
    that says why it can never be one (what it says of the message is
    worked out only then)."""
    body = raw_body(message)
    limit = settings.MESSAGE_MAX_BYTES
    reason = error = ""
    if len(body) > limit:
        reason, error = REASON_OVERSIZED, f"{len(body)} bytes > {limit}"
    elif (content_type := content_type_of(message)) not in JSON_CONTENT_TYPES:
        reason = REASON_WRONG_CONTENT_TYPE
        error = (
            f"content type {content_type!r}; expected one of "
            f"{sorted(JSON_CONTENT_TYPES)}"
        )
    else:
        try:
            decoded = exact_loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            reason, error = REASON_NOT_JSON, str(exc)
        except RecursionError:
            reason, error = REASON_NOT_JSON, "JSON nested too deeply to read"
    if reason:
        where = _where(message)
        record = dead_letter_for_message(
            message, reason=reason, error=error, queue=where["queue"]
        )
        record.exchange = where["exchange"]
        record.routing_key = where["routing_key"]
        record.attempts = where["attempts"]
        return record
    source = decoded.get("source") if isinstance(decoded, dict) else None
    if isinstance(source, str) and source_is_reserved(source):
        return dead_letter_for_event(
            decoded,
            reason=REASON_RESERVED_SOURCE,
            error=f"source {source!r}: sources under {settings.PORTAL_EVENT_SOURCE} "
            "are the portal's own and are not accepted from other services",
            **_where(message),
        )
    try:
        return validate_event(decoded)
    except ContractError as error_:
        return dead_letter_for_contract_error(decoded, error_, **_where(message))
