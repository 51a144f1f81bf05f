"""Every write of the feed."""

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from portal.messaging import topology
from portal.messaging.contracts import ContractError, Event, validate_event
from portal.messaging.deadletters import (
    dead_letter_for_contract_error,
    dead_letters_store,
)
from portal.messaging.models import DeadLetter
from portal.messaging.outbox import outbox_emit
from registrar.models import Employee

from .models import FeedEvent, Reaction, Thanks
from .rendering import department_of, render_text

logger = logging.getLogger(__name__)

THANKS_MAX_LENGTH = 500


@dataclass(frozen=True)
class ApplyResult:
    created: int = 0
    duplicates: int = 0
    dead_lettered: int = 0


_DEPARTMENT_MAX = FeedEvent._meta.get_field("department").max_length


def _feed_event(event: Event) -> dict[str, Any]:
    """The feed row's fields for ``event`` (``_INSERT_COLUMNS``)."""
    env = event.envelope
    data = event.data.model_dump(mode="json")
    return dict(
        source=env.source,
        event_id=env.id,
        type=env.type,
        time=env.time,
        data=data,
        text=render_text(env.type, data),
        # The contract allows longer names than the feed's filter column.
        department=department_of(env.type, data)[:_DEPARTMENT_MAX],
        traceparent=env.traceparent or "",
    )


@transaction.atomic
def feed_events_apply(
    *,
    envelopes: Iterable[Any],
    origins: Iterable[Mapping[str, Any]] | None = None,
    dead_letters: Iterable[DeadLetter] = (),
) -> ApplyResult:
    """Validate CloudEvents and add the valid ones to the feed, in one transaction.

    Idempotent: an event whose (source, id) is already on the feed, or appears
    twice in ``envelopes``, is skipped. An event that can never be applied is
    stored as a ``DeadLetter`` with its reason instead, without failing the
    others; ``origins`` (one mapping per envelope: exchange, routing key,
    headers…) says where each came from, so that record can be requeued there.
    By default an event came from the feed task queue. ``dead_letters`` are
    stored in the same transaction (a consumer's undecodable messages), so a
    consumer acks everything it read once this returns. Database errors
    propagate (the caller retries the whole batch, which is safe because of
    the idempotency).
    """
    valid: dict[tuple[str, str], dict[str, Any]] = {}
    dead: list[DeadLetter] = list(dead_letters)
    duplicates = 0
    envelopes = list(envelopes)
    origins = list(origins) if origins is not None else [{}] * len(envelopes)
    for raw, origin in zip(envelopes, origins, strict=True):
        try:
            event = validate_event(raw)
        except ContractError as error:
            logger.warning("Dead-lettering event: %s", error)
            dead.append(
                dead_letter_for_contract_error(
                    raw, error, **({**_task_origin(), **origin})
                )
            )
            continue
        key = (event.envelope.source, event.envelope.id)
        if key in valid:
            duplicates += 1
            continue
        valid[key] = _feed_event(event)

    created = _feed_events_insert(list(valid.values())) if valid else 0
    duplicates += len(valid) - created
    if dead:
        dead_letters_store(dead)
    return ApplyResult(created=created, duplicates=duplicates, dead_lettered=len(dead))


_INSERT_COLUMNS = (
    "source",
    "event_id",
    "type",
    "time",
    "data",
    "text",
    "department",
    "traceparent",
)


_RECORD_TYPES = {"time": "timestamptz", "data": "jsonb"}


def _feed_events_insert(events: list[dict[str, Any]]) -> int:
    """Insert ``events`` unless already on the feed; how many were new.

    The unique index on (source, event_id) decides: ``ON CONFLICT DO NOTHING``
    skips an event already there (or inserted by a concurrent worker), so no
    look-up comes first. On PostgreSQL the whole batch is one statement, its
    rows travelling as one JSON parameter (``jsonb_to_recordset``: quoting one
    string is far cheaper than one parameter per value), and ``RETURNING``
    counts the new rows.
    """
    if connection.vendor != "postgresql":
        before = FeedEvent.objects.count()
        FeedEvent.objects.bulk_create(
            [FeedEvent(**event) for event in events], ignore_conflicts=True
        )
        return FeedEvent.objects.count() - before
    meta = FeedEvent._meta
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(meta.get_field(name).column) for name in (*_INSERT_COLUMNS, "received_at")
    )
    record = ", ".join(
        f"{quote(name)} {_RECORD_TYPES.get(name, 'text')}" for name in _INSERT_COLUMNS
    )
    selected = ", ".join(f"r.{quote(name)}" for name in _INSERT_COLUMNS)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "
        f"SELECT {selected}, %s FROM jsonb_to_recordset(%s::jsonb) AS r({record}) "
        "ON CONFLICT (source, event_id) DO NOTHING RETURNING 1"
    )
    rows = json.dumps(
        [{**event, "time": event["time"].isoformat()} for event in events]
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [timezone.now(), rows])
        return len(cursor.fetchall())


def _task_origin() -> dict[str, str]:
    return {
        "exchange": topology.FEED_EXCHANGE,
        "routing_key": topology.feed_queue_name(),
        "queue": topology.feed_queue_name(),
    }


class FeedError(Exception):
    """A feed write that cannot be made, with the field it concerns."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def reaction_counts(*, feed_event: FeedEvent) -> dict[str, int]:
    """How many reactions of each kind ``feed_event`` has (every kind present)."""
    counts = dict.fromkeys(Reaction.Kind.values, 0)
    rows = (
        Reaction.objects.filter(feed_event=feed_event)
        .values_list("kind")
        .annotate(n=Count("id"))
    )
    counts.update(dict(rows))
    return counts


@transaction.atomic
def reaction_toggle(
    *, feed_event: FeedEvent, user: Any, kind: str
) -> tuple[bool, dict[str, int]]:
    """Add ``user``'s reaction of ``kind`` to ``feed_event``, or take it back.

    Returns whether the reaction is now active and the event's counts per
    kind. One reaction of a kind per person per event (a database
    constraint); two concurrent toggles end in one state, never two rows.
    Raises ``FeedError`` for an unknown kind.
    """
    if kind not in Reaction.Kind.values:
        raise FeedError(f"Unknown reaction {kind!r}.", field="kind")
    deleted, _ = Reaction.objects.filter(
        feed_event=feed_event, user=user, kind=kind
    ).delete()
    active = not deleted
    if active:
        try:
            with transaction.atomic():
                Reaction.objects.create(feed_event=feed_event, user=user, kind=kind)
        except IntegrityError:
            # A concurrent toggle of the same reaction added it first.
            pass
    return active, reaction_counts(feed_event=feed_event)


@transaction.atomic
def thanks_send(
    *, from_employee: Employee, to_employee: Employee, message: str
) -> Thanks:
    """Store a thank-you and emit ``thanks.sent`` through the outbox, together.

    Raises ``FeedError`` when thanking oneself or when the message is empty
    or longer than 500 characters; nothing is stored then.
    """
    message = (message or "").strip()
    if not message:
        raise FeedError("Say what you are thanking them for.", field="message")
    if len(message) > THANKS_MAX_LENGTH:
        raise FeedError(
            f"Keep it to {THANKS_MAX_LENGTH} characters ({len(message)} now).",
            field="message",
        )
    if from_employee.pk == to_employee.pk:
        raise FeedError("You cannot thank yourself.", field="to_employee")
    thanks = Thanks.objects.create(
        from_employee=from_employee, to_employee=to_employee, message=message
    )
    outbox_emit(
        type="thanks.sent",
        source=f"{settings.PORTAL_EVENT_SOURCE}/feed",
        data={
            "from_employee_id": from_employee.pk,
            "from_name": from_employee.full_name,
            "to_employee_id": to_employee.pk,
            "to_name": to_employee.full_name,
            "message": message,
        },
    )
    return thanks
