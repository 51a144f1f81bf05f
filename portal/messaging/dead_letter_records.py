"""Dead-letter records: what can never be processed, kept with why.

Everything that gives up on a message stores ``DeadLetter`` rows built here:
a subscriber for events it can never apply, the ingest consumer for messages
from other services it refuses, the dead-letter consumer for what RabbitMQ
moved to a dead-letter queue (``dead_letter_intake``). The reasons below are
the vocabulary operators filter by.
"""

import base64
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import metrics
from .amqp_messages import message_headers, message_properties, raw_body
from .contracts import CONTENT_TYPE, ContractError
from .journey import journey_note_dead
from .models import DeadLetter

REASON_NOT_JSON = "not JSON"
REASON_WRONG_CONTENT_TYPE = "wrong content type"
REASON_OVERSIZED = "oversized"
REASON_DELIVERY_LIMIT = "delivery limit"
REASON_RETRIES_EXHAUSTED = "retries exhausted"
REASON_INVALID_MESSAGE = "invalid message"
REASON_DATABASE_REFUSED = "refused by database"
REASON_RESERVED_SOURCE = "reserved source"
REASON_NO_QUEUE = "no queue for its retry"
# (The contract's reasons: contracts.REASON_INVALID_ENVELOPE, …_INVALID_DATA,
# …_UNKNOWN_TYPE.)

# Headers a subscriber's task sets when it gives up on a message itself.
HEADER_REASON = "x-portal-reason"
HEADER_ERROR = "x-portal-error"
HEADER_ATTEMPTS = "x-portal-attempts"
HEADER_QUEUE = "x-portal-queue"
HEADER_SUBSCRIBER = "x-portal-subscriber"
# Retries a task spent waiting out a database outage (not counted as attempts).
HEADER_OUTAGES = "x-portal-outages"


def _body_fields(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:  # PostgreSQL text cannot hold NUL
        return {
            "body": base64.b64encode(raw).decode("ascii"),
            "body_encoding": DeadLetter.BodyEncoding.BASE64,
            "size": len(raw),
        }
    return {
        "body": text,
        "body_encoding": DeadLetter.BodyEncoding.TEXT,
        "size": len(raw),
    }


def event_fields(raw: Any) -> dict[str, str]:
    """The type, source and id of what may be an event, for finding it."""
    fields = raw if isinstance(raw, Mapping) else {}

    def text(key: str, limit: int) -> str:
        value = fields.get(key)
        return value[:limit] if isinstance(value, str) else ""

    return {
        "event_type": text("type", 100),
        "source": text("source", 200),
        "event_id": text("id", 200),
    }


def dead_letter_for_event(
    raw: Any, *, reason: str, error: str = "", **origin: Any
) -> DeadLetter:
    """An unsaved record for one decoded event; ``origin`` sets its other
    fields (``subscriber``, ``queue``, ``exchange``, ``routing_key``…)."""
    try:
        body = json.dumps(raw, sort_keys=True, default=str)
    except (TypeError, ValueError, RecursionError):
        body = repr(raw)
    now = timezone.now()
    record = DeadLetter(
        kind=DeadLetter.Kind.EVENT,
        reason=reason,
        error=error,
        first_failed_at=now,
        last_failed_at=now,
        content_type=CONTENT_TYPE,
        **event_fields(raw),
        **_body_fields(body.encode("utf-8", errors="surrogatepass")),
    )
    for name, value in origin.items():
        setattr(record, name, value)
    return record


def dead_letter_for_contract_error(
    raw: Any, error: ContractError, **origin: Any
) -> DeadLetter:
    return dead_letter_for_event(raw, reason=error.reason, error=str(error), **origin)


def dead_letter_for_message(
    message, *, reason: str, error: str = "", queue: str = ""
) -> DeadLetter:
    """An unsaved record for a raw AMQP message (a kombu ``Message``), byte exact."""
    info = message.delivery_info or {}
    now = timezone.now()
    return DeadLetter(
        kind=DeadLetter.Kind.MESSAGE,
        reason=reason,
        error=error,
        content_type=message.content_type or "",
        headers=message_headers(message),
        properties=message_properties(message),
        exchange=info.get("exchange", "") or "",
        routing_key=info.get("routing_key", "") or "",
        queue=queue,
        first_failed_at=now,
        last_failed_at=now,
        **_body_fields(raw_body(message)),
    )


def dead_letter_fit(record: DeadLetter) -> DeadLetter:
    """Cut text fields to their column sizes: a record must always be storable."""
    for field in DeadLetter._meta.concrete_fields:
        limit = getattr(field, "max_length", None)
        value = getattr(record, field.attname)
        if limit and isinstance(value, str):
            setattr(record, field.attname, value.replace("\x00", "")[:limit])
    if isinstance(record.error, str):
        record.error = record.error.encode("utf-8", "replace").decode("utf-8")
        record.error = record.error.replace("\x00", "")
    return record


def dead_letters_store(records: Iterable[DeadLetter]) -> int:
    """Insert records (one statement); call inside the caller's transaction.

    They are counted (``portal_dead_letters_stored_total``) once that
    transaction commits, and a subscriber's task notes them for its journey.
    """
    records = [dead_letter_fit(record) for record in records]
    DeadLetter.objects.bulk_create(records)
    journey_note_dead((r.source, r.event_id) for r in records if r.event_id)
    counts = Counter((r.subscriber, r.reason) for r in records)

    def count() -> None:
        for (subscriber, reason), n in counts.items():
            metrics.DEAD_LETTERS.labels(subscriber, reason).inc(n)

    transaction.on_commit(count)
    return len(records)
