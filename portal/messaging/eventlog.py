"""The event log: the only way an event enters the portal.

* ``event_log_emit``: an app's service logs its own event, validated, in the
  caller's transaction, together with the change it describes (the
  transactional outbox).
* ``event_log_accept``: an event another service posted over HTTP, logged
  once per (``source``, ``id``), committed before returning.
* ``event_log_accept_many``: events another service published on
  ``portal.events``, logged once each, in the ingest consumer's transaction.

Each row lists the destinations it is owed (``subscriptions.destinations_for``)
and, after the commit, the relay is woken (``wakeup``) to route it.
Nothing is published before the commit.
"""

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

import orjson
from django.db import connection, transaction
from django.utils import timezone

from portal.observability.process import process_label
from portal.observability.tracing import traceparent_current

from . import metrics, wakeup
from .contracts import Event, build_event
from .models import LoggedEvent
from .subscriptions import destinations_for

logger = logging.getLogger(__name__)


class EventLogError(RuntimeError):
    """The log was used outside a transaction."""


_backdated: ContextVar[datetime | None] = ContextVar("event_log_time", default=None)


@contextmanager
def event_log_backdated(time: datetime) -> Iterator[None]:
    """Events emitted inside (without a ``time`` of their own) say they
    happened at ``time``: for recording history that happened elsewhere or
    earlier (an import, a demo), through the same services."""
    token = _backdated.set(time)
    try:
        yield
    finally:
        _backdated.reset(token)


def event_log_emit(
    *,
    type: str,
    data: Mapping[str, Any],
    source: str,
    time: datetime | None = None,
    event_id: str | None = None,
    version: int = 1,
    traceparent: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> LoggedEvent:
    """Log a new event of the portal's own, in the caller's transaction.

    Must be called inside ``transaction.atomic()`` together with the change
    the event describes: both commit or neither does. Raises
    ``ContractError`` if the event does not satisfy its contract, so the
    caller's transaction fails loudly instead of committing half a change.
    """
    if not connection.in_atomic_block:
        raise EventLogError("event_log_emit() must run inside transaction.atomic()")
    if traceparent is None:
        # The web request's trace (TraceparentMiddleware), if there is one.
        traceparent = traceparent_current()
    event = build_event(
        type=type,
        data=data,
        source=source,
        id=event_id,
        time=time or _backdated.get(),
        version=version,
        traceparent=traceparent,
        extensions=extensions,
    )
    envelope = event.as_json()
    entry = LoggedEvent(
        event_id=envelope["id"],
        source=envelope["source"],
        type=envelope["type"],
        envelope=envelope,
        origin=LoggedEvent.Origin.PORTAL,
        undelivered=destinations_for(envelope["type"]),
        logged_by=process_label(),
    )
    if connection.vendor == "postgresql":
        _insert_one(entry)
    else:
        entry.save(force_insert=True)
    transaction.on_commit(lambda: _committed([entry.pk], LoggedEvent.Origin.PORTAL))
    return entry


def _insert_one(entry: LoggedEvent) -> None:
    """``entry.save()`` on PostgreSQL in one statement written once: a
    registration request logs one event, and the ORM's insert cost about as
    much CPU again as the rest of logging it."""
    entry.created_at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_ONE_SQL,
            [
                entry.event_id,
                entry.source,
                entry.type,
                # The contract refused what orjson cannot write (integers
                # beyond 64 bits, unpaired surrogates).
                orjson.dumps(entry.envelope).decode(),
                entry.origin,
                entry.status,
                orjson.dumps(entry.undelivered).decode(),
                entry.created_at,
                entry.logged_by,
            ],
        )
        entry.pk = cursor.fetchone()[0]
    entry._state.adding = False
    entry._state.db = connection.alias


_INSERT_ONE_SQL = f"""
    INSERT INTO {LoggedEvent._meta.db_table}
        (event_id, source, type, envelope, origin, status, undelivered,
         attempts, last_error, created_at, logged_by, routes)
    VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s::jsonb, 0, '', %s, %s, '{{}}'::jsonb)
    RETURNING id
"""


def _committed(ids: list[int], origin: str) -> None:
    metrics.EVENTS_LOGGED.labels(origin).inc(len(ids))
    wakeup.after_commit(ids)


def event_log_accept(
    *, event: Event, origin: str = LoggedEvent.Origin.HTTP
) -> tuple[LoggedEvent, bool]:
    """Log an event another service sent, once; returns the row and whether
    it is new. Commits before returning, so the caller may tell the sender
    the event is durably stored. The event keeps its own ``source`` and
    ``id``: from the log it takes the same road as the portal's own."""
    envelope = event.as_json()
    with transaction.atomic():
        entry, created = LoggedEvent.objects.get_or_create(
            source=envelope["source"],
            event_id=envelope["id"],
            defaults={
                "type": envelope["type"],
                "envelope": envelope,
                "origin": origin,
                "undelivered": destinations_for(envelope["type"]),
                "logged_by": process_label(),
            },
        )
        if created:
            transaction.on_commit(lambda: _committed([entry.pk], origin))
    return entry, created


def event_log_accept_many(
    events: Sequence[Event], *, origin: str = LoggedEvent.Origin.AMQP
) -> list[int]:
    """Log events other services sent, each once, in the caller's transaction.

    Returns the ids of the rows that are new (an event already logged under
    its (source, id) is skipped, also within ``events``). On PostgreSQL one
    statement logs them all.
    """
    if not connection.in_atomic_block:
        raise EventLogError("event_log_accept_many() must run in transaction.atomic()")
    envelopes = [event.as_json() for event in events]
    if not envelopes:
        return []
    if connection.vendor == "postgresql":
        ids = _insert_new(envelopes, origin)
    else:
        ids = []
        for envelope in envelopes:
            entry, created = LoggedEvent.objects.get_or_create(
                source=envelope["source"],
                event_id=envelope["id"],
                defaults={
                    "type": envelope["type"],
                    "envelope": envelope,
                    "origin": origin,
                    "undelivered": destinations_for(envelope["type"]),
                    "logged_by": process_label(),
                },
            )
            if created:
                ids.append(entry.pk)
    if ids:
        transaction.on_commit(lambda: _committed(ids, origin))
    return ids


def _insert_new(envelopes: list[dict[str, Any]], origin: str) -> list[int]:
    owed: dict[str, list[str]] = {}  # destinations per type, found once
    rows = [
        {
            "event_id": envelope["id"],
            "source": envelope["source"],
            "type": envelope["type"],
            "envelope": envelope,
            "undelivered": owed.get(envelope["type"])
            or owed.setdefault(envelope["type"], destinations_for(envelope["type"])),
        }
        for envelope in envelopes
    ]
    table = LoggedEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {connection.ops.quote_name(table)}
                (event_id, source, type, envelope, origin, status, undelivered,
                 attempts, last_error, created_at, logged_by, routes)
            SELECT r.event_id, r.source, r.type, r.envelope, %s, %s,
                   r.undelivered, 0, '', %s, %s, '{{}}'::jsonb
            FROM jsonb_to_recordset(%s::jsonb) AS r(
                event_id text, source text, type text, envelope jsonb,
                undelivered jsonb)
            ON CONFLICT (source, event_id) DO NOTHING
            RETURNING id
            """,
            [
                origin,
                LoggedEvent.Status.PENDING,
                timezone.now(),
                process_label(),
                orjson.dumps(rows).decode(),
            ],
        )
        return [row[0] for row in cursor.fetchall()]
