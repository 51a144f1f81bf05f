"""Routing committed log rows to their destinations: the relay's publishing half.

``route_pending`` is the one place log rows become messages. It locks the
rows it takes with ``SELECT … FOR UPDATE SKIP LOCKED``, so any number of
relays (and fast paths) can run it at once without routing a row twice at
once; builds, for each destination a row still owes, the messages:

* for each subscription, task messages for its Celery task on its queue,
  several events each (``task_messages.task_message_groups``);
* for ``portal.broadcast``, one message per event;

publishes them all with pipelined publisher confirms, and then records per
row which destinations confirmed (``LoggedEvent.undelivered`` loses them).
A destination that fails keeps its rows pending for the next pass; the
others are not sent again. Each event is JSON-encoded once, whatever the
number of destinations.
"""

import functools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Field, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils import timezone

from portal.observability.process import process_label

from . import metrics, topology
from .amqp_publish import (
    BrokerBlocked,
    OutgoingMessage,
    publish_confirmed,
    publisher_connection,
    publisher_declared,
    publisher_reset,
    publisher_reused,
)
from .journey import HEADER_LOG_IDS, HEADER_LOGGED_AT, journey_enabled
from .models import LoggedEvent
from .subscriptions import BROADCAST, subscription_named, subscriptions
from .task_messages import (
    broadcast_message,
    task_message,
    task_message_groups,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteResult:
    """Rows fully delivered (``sent``), rows still owed somewhere (``failed``)."""

    sent: int = 0
    failed: int = 0
    error: str = ""


@dataclass
class _Row:
    pk: int
    type: str
    event_id: str
    source: str
    body: bytes  # the stored envelope's JSON text, sent as it is
    undelivered: tuple[str, ...]
    logged_at: float = 0.0


@dataclass
class _Delivery:
    """What one pass got confirmed: destinations per row, the last error, and
    how long RabbitMQ took to confirm everything published."""

    delivered: dict[int, set[str]]
    error: str = ""
    confirm_seconds: float = 0.0
    published_at: datetime | None = None


def route_pending(
    *,
    ids: Sequence[int] | None = None,
    older_than: timedelta | None = None,
    limit: int | None = None,
) -> RouteResult:
    """Route pending log rows and record what each destination confirmed.

    Selects pending rows (only ``ids`` if given; only rows older than
    ``older_than`` if given), at most ``limit``, skipping rows another relay
    holds. Never raises for broker trouble: what could not be delivered
    stays owed, with ``attempts`` and ``last_error`` updated, and the result
    says so.
    """
    limit = limit or settings.OUTBOX_RELAY_BATCH_SIZE
    started = time.perf_counter()
    with transaction.atomic():
        # The envelope as the database's JSON text: spliced into the
        # messages, never decoded and encoded again. Rows mostly owe the
        # same destinations: each distinct list is decoded once.
        owed = _Decoded()
        taken = [
            _Row(
                pk,
                kind,
                event_id,
                source,
                body.encode(),
                owed[undelivered],
                at,
            )
            for pk, kind, event_id, source, body, undelivered, at in _select_pending(
                ids, older_than, limit
            )
        ]
        if not taken:
            return RouteResult()
        delivery = _deliver(taken)
        result = _record(taken, delivery)
    metrics.PASS_SECONDS.observe(time.perf_counter() - started)
    metrics.PASSES.labels("failed" if result.failed else "ok").inc()
    return result


def _select_pending(
    ids: Sequence[int] | None, older_than: timedelta | None, limit: int
) -> list[tuple]:
    """Lock and read pending rows, oldest first: (id, type, event_id,
    source, envelope text, undelivered text, created_at as seconds since the
    epoch).

    On PostgreSQL the statement is written once (a relay under a trickle of
    commits runs it for every few events, and building it through the ORM
    each time costs more than the database's work on it), and the time comes
    as a float: Django reads a ``timestamptz`` with a regular expression in
    Python, a few microseconds per row."""
    since = timezone.now() - older_than if older_than is not None else None
    if connection.vendor == "postgresql":
        sql = _pending_sql(ids is not None, since is not None)
        params: list[Any] = [LoggedEvent.Status.PENDING]
        if ids is not None:
            params.append(list(ids))
        if since is not None:
            params.append(since)
        with connection.cursor() as cursor:
            if ids is None:
                cursor.execute(_OLDEST_FIRST_PLAN)
            cursor.execute(sql, [*params, limit])
            return cursor.fetchall()
    rows = LoggedEvent.objects.select_for_update(skip_locked=True).filter(
        status=LoggedEvent.Status.PENDING
    )
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    if since is not None:
        rows = rows.filter(created_at__lte=since)
    return [
        (*row[:6], row[6].timestamp())
        for row in rows.order_by("id")
        .annotate(
            envelope_text=Cast("envelope", TextField()),
            undelivered_text=Cast("undelivered", TextField()),
        )
        .values_list(
            "id",
            "type",
            "event_id",
            "source",
            "envelope_text",
            "undelivered_text",
            "created_at",
        )[:limit]
    ]


def _column(name: str) -> str:
    """A ``LoggedEvent`` field's column, quoted."""
    field = LoggedEvent._meta.get_field(name)
    assert isinstance(field, Field)
    assert field.column is not None
    return connection.ops.quote_name(field.column)


# The oldest pending rows come from the partial index, read in id order and
# stopped at the limit. Left to its statistics, PostgreSQL often reads every
# pending row and sorts them instead: the log's statistics show few pending
# rows (most are sent when it is analyzed, and a burst of commits is not
# analyzed yet), and for a few rows that plan is the cheaper. For a backlog
# it is not: each pass would read and sort the whole backlog to take one
# batch of it, so a relay catching up after an outage would slow down the
# more it had to catch up. Scoped to the pass's transaction.
_OLDEST_FIRST_PLAN = "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_seqscan = off"


@functools.cache
def _pending_sql(by_ids: bool, by_age: bool) -> str:
    """The pending rows' SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL (the
    ORM's statement, written out)."""
    where = [f"{_column('status')} = %s"]
    if by_ids:
        where.append(f"{_column('id')} = ANY(%s)")
    if by_age:
        where.append(f"{_column('created_at')} <= %s")
    return (
        f"SELECT {_column('id')}, {_column('type')}, {_column('event_id')}, "
        f"{_column('source')}, {_column('envelope')}::text, "
        f"{_column('undelivered')}::text, "
        f"EXTRACT(EPOCH FROM {_column('created_at')})::float8 "
        f"FROM {connection.ops.quote_name(LoggedEvent._meta.db_table)} "
        f"WHERE {' AND '.join(where)} "
        f"ORDER BY {_column('id')} LIMIT %s FOR UPDATE SKIP LOCKED"
    )


class _Decoded(dict[str | None, tuple[str, ...]]):
    """JSON lists of destination names, decoded once each (as tuples: the
    rows share them)."""

    def __missing__(self, text: str | None) -> tuple[str, ...]:
        value = tuple(json.loads(text) or ()) if text else ()
        self[text] = value
        return value


def _deliver(rows: list[_Row]) -> _Delivery:
    """Publish what ``rows`` owe; returns what each row had confirmed, the
    last error met and the confirm time."""
    delivered: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        # A destination since removed (a subscriber no longer declared) is
        # owed nothing.
        gone = {d for d in row.undelivered if d != BROADCAST}
        gone -= {d for d in gone if subscription_named(d) is not None}
        delivered[row.pk] |= gone
    plan = _plan(rows)
    if not plan:
        return _Delivery(delivered)
    error = ""
    while True:
        try:
            _declare({destination for destination, _, _ in plan})
            published_at = timezone.now()
            started = time.perf_counter()
            results = publish_confirmed([message for _, message, _ in plan])
            confirm_seconds = time.perf_counter() - started
        except BrokerBlocked as exc:
            # Keep the connection: it is the one that will hear
            # connection.unblocked. The relay tries again after a pause.
            _count_failures(plan)
            return _Delivery(delivered, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - any broker failure keeps rows owed
            reused = publisher_reused()
            publisher_reset()
            if reused:
                continue  # went stale while idle: once more, fresh
            _count_failures(plan)
            return _Delivery(delivered, f"{type(exc).__name__}: {exc}")
        break
    metrics.CONFIRM_SECONDS.observe(confirm_seconds)
    routed: dict[str, int] = defaultdict(int)
    for (destination, _, pks), result in zip(plan, results, strict=True):
        if result is None:
            for pk in pks:
                delivered[pk].add(destination)
            routed[destination] += len(pks)
        else:
            error = f"{destination}: {result}"
            metrics.ROUTE_FAILURES.labels(destination).inc()
    for destination, count in routed.items():
        metrics.EVENTS_ROUTED.labels(destination).inc(count)
    return _Delivery(delivered, error, confirm_seconds, published_at)


def _count_failures(plan: list[tuple[str, OutgoingMessage, list[int]]]) -> None:
    for destination, _, _ in plan:
        metrics.ROUTE_FAILURES.labels(destination).inc()


def _plan(rows: list[_Row]) -> list[tuple[str, OutgoingMessage, list[int]]]:
    """(destination, message, row ids it carries) for everything owed."""
    plan: list[tuple[str, OutgoingMessage, list[int]]] = []
    for subscription in subscriptions():
        owed = [(row, row.body) for row in rows if subscription.name in row.undelivered]
        for group in task_message_groups(subscription, owed):
            # Each event's log row and commit time travel with it, for its
            # journey and the subscriber's lag.
            message = task_message(
                subscription,
                [body for _, body in group],
                headers={
                    HEADER_LOG_IDS: [row.pk for row, _ in group],
                    HEADER_LOGGED_AT: [round(row.logged_at, 3) for row, _ in group],
                },
            )
            plan.append((subscription.name, message, [row.pk for row, _ in group]))
    for row in rows:
        if BROADCAST in row.undelivered:
            plan.append(
                (
                    BROADCAST,
                    broadcast_message(row.type, row.event_id, row.source, row.body),
                    [row.pk],
                )
            )
    return plan


def _declare(destinations: set[str]) -> None:
    """Declare what this connection publishes to, once per connection."""
    connection = publisher_connection()
    declared = publisher_declared()
    for name in destinations:
        if name == BROADCAST:
            key = f"exchange:{topology.BROADCAST_EXCHANGE}"
            if key not in declared:
                topology.declare_broadcast(connection)
                declared.add(key)
            continue
        subscription = subscription_named(name)
        if subscription is not None and subscription.queue not in declared:
            topology.declare_subscription(connection, subscription)
            declared.add(subscription.queue)


def _record(rows: list[_Row], delivery: _Delivery) -> RouteResult:
    """One UPDATE per group of rows that end alike (sent, or still owing the
    same destinations) and were confirmed to the same destinations now; the
    latter are added to each row's ``routes``, its journey's routing hops."""
    now = timezone.now()
    delivered, error = delivery.delivered, delivery.error
    hop = {
        # When it was published; confirmed confirm_ms later.
        "at": (delivery.published_at or now).isoformat(),
        "confirm_ms": round(delivery.confirm_seconds * 1000, 2),
        "by": process_label(),
    }
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[int]] = defaultdict(list)
    for row in rows:
        remaining = tuple(d for d in row.undelivered if d not in delivered[row.pk])
        confirmed = tuple(d for d in row.undelivered if d in delivered[row.pk])
        groups[(remaining, confirmed)].append(row.pk)
    failed = 0
    sent = 0
    journey = journey_enabled()
    for (remaining, confirmed), pks in groups.items():
        if remaining:
            failed += len(pks)
        else:
            sent += len(pks)
        if connection.vendor == "postgresql":
            _update_routed(
                pks,
                now=now,
                routes=dict.fromkeys(confirmed, hop) if confirmed and journey else None,
                remaining=remaining,
                error=error,
            )
            continue
        changes: dict[str, Any] = {
            "attempts": F("attempts") + 1,
            "last_attempt_at": now,
        }
        if confirmed and journey:
            changes["routes"] = _routes_merged(dict.fromkeys(confirmed, hop))
        if remaining:
            changes.update(undelivered=list(remaining), last_error=error[:4000])
        else:
            changes.update(
                status=LoggedEvent.Status.SENT,
                undelivered=[],
                published_at=now,
                last_error="",
            )
        LoggedEvent.objects.filter(pk__in=pks).update(**changes)
    if failed:
        logger.warning(
            "Routing %d log row(s) failed, they stay owed: %s", failed, error
        )
    return RouteResult(sent=sent, failed=failed, error=error)


def _update_routed(
    pks: list[int],
    *,
    now: datetime,
    routes: dict[str, Any] | None,
    remaining: tuple[str, ...],
    error: str,
) -> None:
    """``_record``'s UPDATE on PostgreSQL, written once per shape (the ORM
    would build it anew for every pass)."""
    params: list[Any] = [now]
    if routes is not None:
        params.append(orjson.dumps(routes).decode())
    if remaining:
        params += [orjson.dumps(list(remaining)).decode(), error[:4000]]
    else:
        params += [LoggedEvent.Status.SENT, now]
    with connection.cursor() as cursor:
        cursor.execute(
            _update_sql(routes is not None, bool(remaining)), [*params, list(pks)]
        )


@functools.cache
def _update_sql(with_routes: bool, owing: bool) -> str:
    sets = [
        f"{_column('attempts')} = {_column('attempts')} + 1",
        f"{_column('last_attempt_at')} = %s",
    ]
    if with_routes:
        sets.append(f"{_column('routes')} = {_column('routes')} || %s::jsonb")
    if owing:
        sets += [
            f"{_column('undelivered')} = %s::jsonb",
            f"{_column('last_error')} = %s",
        ]
    else:
        sets += [
            f"{_column('status')} = %s",
            f"{_column('undelivered')} = '[]'::jsonb",
            f"{_column('published_at')} = %s",
            f"{_column('last_error')} = ''",
        ]
    return (
        f"UPDATE {connection.ops.quote_name(LoggedEvent._meta.db_table)} "
        f"SET {', '.join(sets)} "
        f"WHERE {_column('id')} = ANY(%s)"
    )


def _routes_merged(new: dict[str, Any]) -> RawSQL:
    """``routes`` with ``new``'s destinations added (or replaced), on SQLite
    (PostgreSQL's UPDATE is ``_update_sql``'s)."""
    return RawSQL("json_patch(routes, %s)", [orjson.dumps(new).decode()])
