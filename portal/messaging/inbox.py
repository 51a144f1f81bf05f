"""A subscriber's inbox: at most one effect per event, whatever the deliveries.

Delivery is at least once, so a subscriber sees an event again after a lost
ack or a requeue. ``inbox_claim`` records, in the subscriber's own
transaction, which events it has handled (``ProcessedEvent``) and returns
only those it had not: the subscriber acts on them, and the claim commits
with its effect or rolls back with it.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connection
from django.utils import timezone

from .journey import journey_note_duplicates
from .models import ProcessedEvent


def inbox_claim(
    *, subscriber: str, events: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The events ``subscriber`` has not handled before, now marked handled.

    Call inside the transaction that applies them. Events are told apart by
    (``source``, ``id``); a repeat within ``events`` counts once.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("inbox_claim() must run inside transaction.atomic()")
    events = list(events)
    keys = {(e["source"], e["id"]) for e in events}
    if not keys:
        return []
    claimed = _insert_new(subscriber, sorted(keys))
    seen: set[tuple[str, str]] = set()
    fresh = []
    for event in events:
        key = (event["source"], event["id"])
        if key in claimed and key not in seen:
            seen.add(key)
            fresh.append(event)
    journey_note_duplicates(keys - claimed)
    return fresh


def _insert_new(subscriber: str, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Insert the keys not yet there; return those inserted (one statement:
    PostgreSQL and SQLite both have ``ON CONFLICT … RETURNING``)."""
    table = connection.ops.quote_name(ProcessedEvent._meta.db_table)
    now = timezone.now()
    values = ", ".join(["(%s, %s, %s, %s)"] * len(keys))
    params: list[Any] = []
    for source, event_id in keys:
        params += [subscriber, source, event_id, now]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (subscriber, source, event_id, processed_at) "
            f"VALUES {values} "
            "ON CONFLICT (subscriber, source, event_id) DO NOTHING "
            "RETURNING source, event_id",
            params,
        )
        return {(source, event_id) for source, event_id in cursor.fetchall()}
