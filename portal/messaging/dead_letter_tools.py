"""Tools for the dead-letter store: select, requeue, purge, show.

The admin's actions and ``manage.py deadletters`` call these. A requeue
publishes each record again, confirmed and mandatory, to where it failed:
an event a subscriber gave up on goes back to that subscriber's task only;
an event from another service back to ``portal.events``; a raw message back,
byte for byte, to its exchange. A record is marked ``requeued`` only once
RabbitMQ confirmed it. Subscribers apply each event at most once, so
requeueing twice is harmless.
"""

import base64
import binascii
import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.db.models import F, QuerySet
from django.utils import timezone

from . import topology
from .amqp_publish import (
    OutgoingMessage,
    publish_confirmed,
    publisher_connection,
    publisher_reset,
)
from .contracts import CONTENT_TYPE
from .models import DeadLetter
from .subscriptions import subscription_named
from .task_messages import task_message

logger = logging.getLogger(__name__)

# What RabbitMQ (and we) add on the way to the store; dropped on requeue.
_DEATH_HEADERS = re.compile(
    r"^x-(death|first-death-|last-death-|delivery-count|portal-)"
)
_AGE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"3d"``, ``"1w"`` as a timedelta."""
    match = _AGE.match(text.strip().lower())
    if not match:
        raise ValueError(f"not an age like 2h or 3d: {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def dead_letters_select(
    *,
    reason: str | None = None,
    type: str | None = None,
    subscriber: str | None = None,
    older_than: timedelta | None = None,
    status: str | None = DeadLetter.Status.DEAD,
    ids: Iterable[int] | None = None,
) -> QuerySet[DeadLetter]:
    rows = DeadLetter.objects.all()
    if status:
        rows = rows.filter(status=status)
    if reason:
        rows = rows.filter(reason=reason)
    if type:
        rows = rows.filter(event_type=type)
    if subscriber:
        rows = rows.filter(subscriber=subscriber)
    if older_than is not None:
        rows = rows.filter(created_at__lte=timezone.now() - older_than)
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    return rows


def _requeue_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    clean = {k: v for k, v in headers.items() if not _DEATH_HEADERS.match(k)}
    if "task" in clean:  # a Celery task message starts over
        clean["retries"] = 0
        clean["eta"] = None
    return clean


class NowhereToRequeue(ValueError):
    """A record that says neither its subscriber nor where it came from."""


def requeue_message(record: DeadLetter) -> OutgoingMessage:
    """The message that puts ``record`` back where it failed."""
    subscription = subscription_named(record.subscriber)
    if record.subscriber and subscription is None:
        raise NowhereToRequeue(f"subscriber {record.subscriber!r} no longer exists")
    if record.kind == DeadLetter.Kind.EVENT:
        if subscription is not None:
            return task_message(subscription, [record.raw_body])
        if record.exchange == topology.EVENTS_EXCHANGE:
            return OutgoingMessage(
                exchange=topology.EVENTS_EXCHANGE,
                routing_key=record.routing_key or record.event_type,
                body=record.raw_body,
                content_type=CONTENT_TYPE,
                properties={
                    k: v
                    for k, v in (
                        ("message_id", record.event_id),
                        ("app_id", record.source),
                    )
                    if v
                },
            )
        raise NowhereToRequeue("the record names no subscriber and no exchange")
    properties = record.properties or {}
    if subscription is not None:
        exchange, routing_key = topology.TASKS_EXCHANGE, subscription.queue
    elif record.exchange or record.routing_key:
        exchange, routing_key = record.exchange, record.routing_key
    else:
        raise NowhereToRequeue("the record names no subscriber and no exchange")
    return OutgoingMessage(
        exchange=exchange,
        routing_key=routing_key,
        body=record.raw_body,
        content_type=record.content_type or "application/octet-stream",
        content_encoding=properties.get("content_encoding") or "binary",
        headers=_requeue_headers(record.headers or {}),
        properties={
            k: v
            for k, v in properties.items()
            if k in {"message_id", "app_id", "correlation_id", "type", "timestamp"}
            and v is not None
        },
    )


def dead_letters_requeue(records: Iterable[DeadLetter]) -> tuple[int, list[str]]:
    """Publish records again to where they failed; mark the confirmed ones.

    Returns (requeued count, errors); a record that could not be requeued
    stays dead.
    """
    records = list(records)
    errors: list[str] = []
    ready: list[tuple[DeadLetter, OutgoingMessage]] = []
    for record in records:
        try:
            ready.append((record, requeue_message(record)))
        except NowhereToRequeue as exc:
            errors.append(f"#{record.pk}: {exc}")
    if not ready:
        return 0, errors
    try:
        connection = publisher_connection()
        topology.declare(connection)
        topology.declare_ingest(connection)
        results = publish_confirmed([message for _, message in ready])
    except Exception as exc:  # noqa: BLE001 - reported, records stay dead
        publisher_reset()
        return 0, [*errors, f"broker unavailable: {type(exc).__name__}: {exc}"]
    done = []
    for (record, _), result in zip(ready, results, strict=True):
        if result is None:
            done.append(record.pk)
        else:
            errors.append(f"#{record.pk}: {result}")
            logger.warning("Requeue of dead letter %s failed: %s", record.pk, result)
    DeadLetter.objects.filter(pk__in=done).update(
        status=DeadLetter.Status.REQUEUED,
        requeued_at=timezone.now(),
        requeue_count=F("requeue_count") + 1,
    )
    return len(done), errors


def dead_letters_purge(records: QuerySet[DeadLetter]) -> int:
    """Delete records for good."""
    deleted, _ = records.delete()
    return deleted


def dead_letter_body_for_people(record: DeadLetter) -> str:
    """The body for people: pretty JSON when it is JSON, else as stored."""
    if record.body_encoding == DeadLetter.BodyEncoding.BASE64:
        try:
            raw = base64.b64decode(record.body)
        except (binascii.Error, ValueError):
            return record.body
        return f"(binary, {len(raw)} bytes, base64)\n{record.body}"
    try:
        return json.dumps(json.loads(record.body), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return record.body
