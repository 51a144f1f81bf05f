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

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from . import topology
from .amqp_publish import (
    BrokerBlocked,
    OutgoingMessage,
    publish_confirmed,
    publisher_connection,
    publisher_declared,
    publisher_reset,
    publisher_reused,
)
from .models import LoggedEvent
from .subscriptions import BROADCAST, subscription_named, subscriptions
from .task_messages import (
    broadcast_message,
    encode_event,
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
    envelope: dict[str, Any]
    undelivered: list[str]
    body: bytes = b""


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
    with transaction.atomic():
        rows = LoggedEvent.objects.select_for_update(skip_locked=True).filter(
            status=LoggedEvent.Status.PENDING
        )
        if ids is not None:
            rows = rows.filter(pk__in=list(ids))
        if older_than is not None:
            rows = rows.filter(created_at__lte=timezone.now() - older_than)
        taken = [
            _Row(pk, envelope, list(undelivered or []))
            for pk, envelope, undelivered in rows.order_by("id").values_list(
                "id", "envelope", "undelivered"
            )[:limit]
        ]
        if not taken:
            return RouteResult()
        delivered, error = _deliver(taken)
        return _record(taken, delivered, error)


def _deliver(rows: list[_Row]) -> tuple[dict[int, set[str]], str]:
    """Publish what ``rows`` owe; returns what each row had confirmed, and
    the last error met."""
    delivered: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        # A destination since removed (a subscriber no longer declared) is
        # owed nothing.
        gone = {d for d in row.undelivered if d != BROADCAST}
        gone -= {d for d in gone if subscription_named(d) is not None}
        delivered[row.pk] |= gone
    plan = _plan(rows)
    if not plan:
        return delivered, ""
    error = ""
    while True:
        try:
            _declare({destination for destination, _, _ in plan})
            results = publish_confirmed([message for _, message, _ in plan])
        except BrokerBlocked as exc:
            # Keep the connection: it is the one that will hear
            # connection.unblocked. The relay tries again after a pause.
            return delivered, f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - any broker failure keeps rows owed
            reused = publisher_reused()
            publisher_reset()
            if reused:
                continue  # went stale while idle: once more, fresh
            return delivered, f"{type(exc).__name__}: {exc}"
        break
    for (destination, _, pks), result in zip(plan, results, strict=True):
        if result is None:
            for pk in pks:
                delivered[pk].add(destination)
        else:
            error = f"{destination}: {result}"
    return delivered, error


def _plan(rows: list[_Row]) -> list[tuple[str, OutgoingMessage, list[int]]]:
    """(destination, message, row ids it carries) for everything owed."""
    for row in rows:
        if row.undelivered:
            row.body = encode_event(row.envelope)
    plan: list[tuple[str, OutgoingMessage, list[int]]] = []
    for subscription in subscriptions():
        owed = [
            (row.pk, row.body) for row in rows if subscription.name in row.undelivered
        ]
        for group in task_message_groups(subscription, owed):
            message = task_message(subscription, [body for _, body in group])
            plan.append((subscription.name, message, [pk for pk, _ in group]))
    for row in rows:
        if BROADCAST in row.undelivered:
            plan.append(
                (BROADCAST, broadcast_message(row.envelope, row.body), [row.pk])
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


def _record(
    rows: list[_Row], delivered: dict[int, set[str]], error: str
) -> RouteResult:
    now = timezone.now()
    done = [row.pk for row in rows if set(row.undelivered) <= delivered[row.pk]]
    if done:
        LoggedEvent.objects.filter(pk__in=done).update(
            status=LoggedEvent.Status.SENT,
            undelivered=[],
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            published_at=now,
            last_error="",
        )
    still_owed: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for row in rows:
        remaining = [d for d in row.undelivered if d not in delivered[row.pk]]
        if remaining:
            still_owed[tuple(remaining)].append(row.pk)
    for remaining, pks in still_owed.items():
        LoggedEvent.objects.filter(pk__in=pks).update(
            undelivered=list(remaining),
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            last_error=error[:4000],
        )
    failed = sum(len(pks) for pks in still_owed.values())
    if failed:
        logger.warning(
            "Routing %d log row(s) failed, they stay owed: %s", failed, error
        )
    return RouteResult(sent=len(done), failed=failed, error=error)
