"""The dead-letter store: what can never be processed, kept with why, and its tools.

Everything that gives up on a message ends here, in ``DeadLetter`` rows:

* the feed task, for events that fail their contract (``feed_events_apply``);
* the ingest consumer, for messages from other services that are oversized,
  of the wrong content type, not JSON, or fail their contract;
* the dead-letter consumer, for whatever RabbitMQ moves to ``feed.dead``: a
  message past the queue's delivery limit (it killed its worker every time), a
  rejected undecodable message, a task whose retries ran out.

``deadletters_requeue`` publishes records again to where they came from and
``deadletters_purge`` deletes them; the admin and ``manage.py deadletters``
call these two.
"""

import base64
import binascii
import contextlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import F, QuerySet
from django.utils import timezone

from . import topology
from .contracts import CONTENT_TYPE, ContractError
from .models import DeadLetter

logger = logging.getLogger(__name__)

REASON_NOT_JSON = "not JSON"
REASON_WRONG_CONTENT_TYPE = "wrong content type"
REASON_OVERSIZED = "oversized"
REASON_DELIVERY_LIMIT = "delivery limit"
REASON_RETRIES_EXHAUSTED = "retries exhausted"
REASON_INVALID_MESSAGE = "invalid message"
REASON_DATABASE_REFUSED = "refused by database"
REASON_RESERVED_SOURCE = "reserved source"

# Headers the feed task sets when it gives up on a message itself.
HEADER_REASON = "x-portal-reason"
HEADER_ERROR = "x-portal-error"
HEADER_ATTEMPTS = "x-portal-attempts"
HEADER_QUEUE = "x-portal-queue"

JSON_CONTENT_TYPES = frozenset({CONTENT_TYPE, "application/json"})
# What RabbitMQ (and we) add on the way to the store; dropped on requeue.
_DEATH_HEADERS = re.compile(
    r"^x-(death|first-death-|last-death-|delivery-count|portal-)"
)
# Native delayed delivery prefixes routing keys with 28 bits ("0.1.0.…").
_DELAY_PREFIX = re.compile(r"^(?:[01]\.){28}")


def raw_body(message) -> bytes:
    """A kombu message's body as bytes (py-amqp decodes bodies that declare
    a ``content_encoding``, so it may arrive as ``str``)."""
    body = message.body
    if isinstance(body, str):
        return body.encode(message.content_encoding or "utf-8", errors="replace")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    return b""


def max_message_bytes(queue: str = "") -> int:
    """The biggest body accepted from ``queue``: a feed task message carries
    a batch of events, any other message one event."""
    if queue and queue == topology.feed_queue_name():
        return settings.FEED_TASK_MAX_BYTES
    return settings.MESSAGE_MAX_BYTES


def json_safe(value: Any) -> Any:
    """AMQP header values (datetimes, bytes, decimals) as JSON primitives."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")  # jsonb cannot hold U+0000
    if isinstance(value, Decimal):
        return float(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _body_fields(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {
            "body": base64.b64encode(raw).decode("ascii"),
            "body_encoding": DeadLetter.BodyEncoding.BASE64,
            "size": len(raw),
        }
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
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


def _event_fields(raw: Any) -> dict[str, str]:
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
    """An unsaved record for one decoded event; ``origin`` sets its other fields."""
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
        **_event_fields(raw),
        **_body_fields(body.encode("utf-8")),
    )
    if "content_type" not in origin:
        record.content_type = CONTENT_TYPE
    for name, value in origin.items():
        setattr(record, name, value)
    return record


def dead_letter_for_contract_error(raw: Any, error: ContractError, **origin: Any):
    return dead_letter_for_event(raw, reason=error.reason, error=str(error), **origin)


def _properties(message) -> dict[str, Any]:
    props = dict(message.properties or {})
    props.pop("application_headers", None)
    return json_safe(props)


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
        headers=json_safe(message.headers or {}),
        properties=_properties(message),
        exchange=info.get("exchange", "") or "",
        routing_key=info.get("routing_key", "") or "",
        queue=queue,
        first_failed_at=now,
        last_failed_at=now,
        **_body_fields(raw_body(message)),
    )


# --- What arrives in feed.dead -------------------------------------------------


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


def _where_from(queue: str, routing_key: str) -> tuple[str, str]:
    """The exchange and routing key that lead (again) to ``queue``."""
    if queue == topology.ingest_queue_name():
        return topology.EVENTS_EXCHANGE, routing_key
    return topology.FEED_EXCHANGE, topology.feed_queue_name()


def _first_death_time(headers: Mapping[str, Any]) -> datetime | None:
    times = [d.get("time") for d in _deaths(headers)]
    times = [t for t in times if isinstance(t, datetime)]
    if not times:
        return None
    first = min(times)
    return first if timezone.is_aware(first) else timezone.make_aware(first)


def classify(message) -> tuple[str, str]:
    """Why RabbitMQ (or the feed task) gave up on a message: reason and detail."""
    headers = message.headers or {}
    if headers.get(HEADER_REASON):
        return str(headers[HEADER_REASON]), str(headers.get(HEADER_ERROR, ""))
    first = json_safe(headers.get("x-first-death-reason", ""))
    if not first:
        deaths = _deaths(headers)
        first = json_safe(deaths[-1].get("reason", "")) if deaths else ""
    if first == "delivery_limit":
        return (
            REASON_DELIVERY_LIMIT,
            "delivered more often than the queue's x-delivery-limit "
            f"({settings.FEED_DELIVERY_LIMIT}): it killed or crashed its consumer "
            "every time",
        )
    body = raw_body(message)
    limit = max_message_bytes(json_safe(headers.get("x-first-death-queue", "")))
    if len(body) > limit:
        return REASON_OVERSIZED, f"{len(body)} bytes > {limit}"
    content_type = (message.content_type or "").split(";")[0].strip()
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
    """The events of a ``feed.apply_events`` task message, or None if it is not one."""
    headers = message.headers or {}
    if headers.get("task") != topology.FEED_TASK:
        return None
    content_type = (message.content_type or "").split(";")[0].strip()
    if content_type != "application/json":
        return None
    try:
        args, _kwargs, _embed = json.loads(raw_body(message))
        events = args[0]
    except (ValueError, TypeError, IndexError, UnicodeDecodeError, RecursionError):
        return None
    return events if isinstance(events, list) and events else None


def dead_letters_for_dead_message(message) -> list[DeadLetter]:
    """The records for one message from ``feed.dead``: per event when possible.

    A feed task message becomes one ``EVENT`` record per event it carries, so
    each can be found by its id and type and requeued on its own (the feed
    applies each at most once, so splitting a batch is safe). Anything else is
    kept whole as a ``MESSAGE``.
    """
    headers = message.headers or {}
    reason, error = classify(message)
    queue = _origin_queue(headers)
    info = message.delivery_info or {}
    routing_key = _origin_routing_key(headers, info.get("routing_key", "") or "")
    exchange, routing_key = _where_from(queue, routing_key)
    attempts = headers.get(HEADER_ATTEMPTS) or headers.get("x-delivery-count")
    if not attempts and reason == REASON_DELIVERY_LIMIT:
        # RabbitMQ 3.10 does not say how often; the limit says it.
        attempts = settings.FEED_DELIVERY_LIMIT + 1
    attempts = attempts or sum(int(d.get("count", 1) or 1) for d in _deaths(headers))
    first_failed = _first_death_time(headers) or timezone.now()
    common = {
        "queue": queue,
        "exchange": exchange,
        "routing_key": routing_key,
        "attempts": int(attempts),
        "first_failed_at": first_failed,
    }
    events = _task_events(message) if reason != REASON_OVERSIZED else None
    if events is not None:
        return [
            dead_letter_for_event(
                event,
                reason=reason,
                error=error,
                headers=json_safe(headers),
                properties=_properties(message),
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
            record.__dict__.update(_event_fields(json.loads(raw_body(message))))
    return [record]


def fit(record: DeadLetter) -> DeadLetter:
    """Cut text fields to their column sizes: a record must always be storable."""
    for field in DeadLetter._meta.concrete_fields:
        limit = getattr(field, "max_length", None)
        value = getattr(record, field.attname)
        if limit and isinstance(value, str):
            setattr(record, field.attname, value.replace("\x00", "")[:limit])
    return record


def dead_letters_store(records: Iterable[DeadLetter]) -> int:
    """Insert records (one statement); call inside the caller's transaction."""
    records = [fit(record) for record in records]
    DeadLetter.objects.bulk_create(records)
    return len(records)


# --- Tools: select, requeue, purge ---------------------------------------------

_AGE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"3d"``, ``"1w"`` as a timedelta."""
    match = _AGE.match(text.strip().lower())
    if not match:
        raise ValueError(f"not an age like 2h or 3d: {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def deadletters_select(
    *,
    reason: str | None = None,
    type: str | None = None,
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


def _publish_one(producer, record: DeadLetter) -> None:
    common = {"mandatory": True, "retry": False, "delivery_mode": 2}
    timeout = settings.OUTBOX_PUBLISH_TIMEOUT
    if record.kind == DeadLetter.Kind.MESSAGE:
        props = {
            k: v
            for k, v in (record.properties or {}).items()
            if k in {"message_id", "app_id", "correlation_id", "type", "timestamp"}
            and v is not None
        }
        producer.publish(
            record.raw_body,
            exchange=record.exchange,
            routing_key=record.routing_key,
            content_type=record.content_type or "application/octet-stream",
            content_encoding=(record.properties or {}).get("content_encoding")
            or "binary",
            headers=_requeue_headers(record.headers or {}),
            timeout=timeout,
            **props,
            **common,
        )
        return
    event = json.loads(record.body)
    if record.exchange == topology.EVENTS_EXCHANGE:
        producer.publish(
            record.raw_body,
            exchange=topology.EVENTS_EXCHANGE,
            routing_key=record.routing_key or record.event_type,
            content_type=CONTENT_TYPE,
            content_encoding="utf-8",
            message_id=record.event_id or None,
            app_id=record.source or None,
            timeout=timeout,
            **common,
        )
        return
    from portal.celery import app

    app.send_task(
        topology.FEED_TASK,
        args=[[event]],
        queue=topology.feed_queue(),
        producer=producer,
        mandatory=True,
        retry=False,
        confirm_timeout=timeout,
    )


def deadletters_requeue(records: Iterable[DeadLetter]) -> tuple[int, list[str]]:
    """Publish records again to where they came from; mark the confirmed ones.

    Internal feed events go back to ``feed`` as a ``feed.apply_events`` task;
    events from other services go back to ``portal.events`` with their routing
    key; raw messages go back byte for byte to their exchange. Each publish is
    mandatory and confirmed; a record is marked ``requeued`` only after that.
    The feed applies each event at most once, so requeueing twice is harmless.
    Returns (requeued count, errors).
    """
    from portal.celery import app

    records = list(records)
    done = 0
    errors: list[str] = []
    conn = app.connection_for_write(settings.CELERY_BROKER_URL)
    try:
        try:
            conn.ensure_connection(max_retries=1)
            topology.declare(conn)
            topology.declare_ingest(conn)
        except Exception as exc:  # noqa: BLE001 - reported, records stay dead
            return 0, [f"broker unavailable: {type(exc).__name__}: {exc}"]
        producer = conn.Producer()
        for record in records:
            try:
                _publish_one(producer, record)
            except Exception as exc:  # noqa: BLE001 - reported per record
                errors.append(f"#{record.pk}: {type(exc).__name__}: {exc}")
                logger.warning("Requeue of dead letter %s failed: %s", record.pk, exc)
                conn.collect()
                conn = app.connection_for_write(settings.CELERY_BROKER_URL)
                try:
                    conn.ensure_connection(max_retries=1)
                except Exception as again:  # noqa: BLE001 - the broker went away
                    errors.append(f"broker unavailable: {again}")
                    break
                producer = conn.Producer()
                continue
            DeadLetter.objects.filter(pk=record.pk).update(
                status=DeadLetter.Status.REQUEUED,
                requeued_at=timezone.now(),
                requeue_count=F("requeue_count") + 1,
            )
            done += 1
    finally:
        conn.collect()
    return done, errors


def deadletters_purge(records: QuerySet[DeadLetter]) -> int:
    """Delete records for good."""
    deleted, _ = records.delete()
    return deleted


def decoded_body(record: DeadLetter) -> str:
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
