"""An event's journey: what each hop did to it, recorded in batches.

The hops of one logged event, in order:

1. **committed** to the log: the ``LoggedEvent`` row (``created_at``,
   ``origin``, ``logged_by``);
2. **routed** to each destination, the subscribers and ``broadcast``: the
   row's ``routes`` (when RabbitMQ confirmed it, the confirm time, the
   process), written by the router in the UPDATE it makes anyway;
3. per subscriber, **delivered** (attempt n) and then **applied**, **skipped
   as a duplicate**, **retried** (with the error) or **dead-lettered**:
   written by the subscriber's task after each task message in one
   statement for the whole batch (``BatchJourney``), one ``EventHop`` row
   per run of consecutive log ids that went alike (a batch of the relay's
   applied in full is one row);
4. a **dead letter**, if one was stored: the ``DeadLetter`` record itself.

Recording never fails the work it describes: a hop that cannot be written is
logged and dropped. ``EVENT_JOURNEY=0`` turns steps 2 and 3 off (the bench
measures what they cost). ``journey_of`` reads the whole journey of an
event for the page.
"""

import contextvars
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from .models import HOP_RUN_MAX, EventHop

logger = logging.getLogger(__name__)

# Task message headers the router sets: per event of the message, in order,
# its log row's id and when it was committed (epoch seconds).
HEADER_LOG_IDS = "x-portal-log-ids"
HEADER_LOGGED_AT = "x-portal-logged-at"
# Set by ``events_replay --repair``: re-apply over earlier effects.
HEADER_REPAIR = "x-portal-repair"

Key = tuple[str, str]


def journey_enabled() -> bool:
    return bool(getattr(settings, "EVENT_JOURNEY", True))


@dataclass
class BatchJourney:
    """What happened to the events of one task message, gathered while the
    subscriber works and written once at the end."""

    subscriber: str
    duplicates: set[Key] = field(default_factory=set)
    dead: set[Key] = field(default_factory=set)
    repair: bool = False
    # Per-event bookkeeping that needs no outcome yet, for spare time.
    prepare: Callable[[], None] | None = None


_current: contextvars.ContextVar[BatchJourney | None] = contextvars.ContextVar(
    "batch_journey", default=None
)


def batch_journey_begin(journey: BatchJourney) -> contextvars.Token:
    return _current.set(journey)


def batch_journey_end(token: contextvars.Token) -> None:
    _current.reset(token)


def journey_note_duplicates(keys: Iterable[Key]) -> None:
    """A subscriber says these (source, id) were applied before: skipped."""
    journey = _current.get()
    if journey is not None:
        journey.duplicates.update(keys)


def journey_note_dead(keys: Iterable[Key]) -> None:
    """These events of the batch went to the dead-letter store."""
    journey = _current.get()
    if journey is not None:
        journey.dead.update(keys)


def batch_journey_while_waiting() -> None:
    """The subscriber has sent its writes and waits for the database: the
    batch's own per-event bookkeeping is done now (once), on a process that
    would otherwise idle, instead of after the commit, when the database
    idles in turn. Uses no database connection."""
    journey = _current.get()
    if journey is not None and journey.prepare is not None:
        prepare, journey.prepare = journey.prepare, None
        prepare()


def repair_requested() -> bool:
    """Is the current task message a repair (``events_replay --repair``)? A
    subscriber that can re-apply an event over its earlier effect (the feed
    re-renders its card) does so then; others apply as usual."""
    journey = _current.get()
    return journey is not None and journey.repair


def event_key(event: Any) -> Key | None:
    if type(event) is not dict and not isinstance(event, Mapping):
        return None
    source, event_id = event.get("source"), event.get("id")
    if isinstance(source, str) and isinstance(event_id, str):
        return source, event_id
    return None


def log_rows_for(
    events: Sequence[Any], log_ids: Any, logged_at: Any, *, lookup: bool = True
) -> list[tuple[int, float] | None]:
    """Each event's (log row id, commit time), from the headers the router
    set, or else, if ``lookup``, looked up (a requeued message has none):
    one query for the whole batch. Unknown ones are None."""
    rows = log_rows_from_headers(events, log_ids, logged_at)
    if rows is not None:
        return rows
    keys = {key for key in map(event_key, events) if key}
    found: dict[Key, tuple[int, float]] = {}
    if lookup and keys:
        try:
            found = _log_rows_by_key(keys)
        except DatabaseError as exc:
            logger.warning("Log rows of a batch not found for its journey: %s", exc)
    return [found.get(key) if (key := event_key(event)) else None for event in events]


def log_rows_from_headers(
    events: Sequence[Any], log_ids: Any, logged_at: Any
) -> list[tuple[int, float] | None] | None:
    """Each event's (log row id, commit time) as the router's headers give
    them, or None if they do not (a requeued message)."""
    if not (
        isinstance(log_ids, list)
        and isinstance(logged_at, list)
        and len(log_ids) == len(events) == len(logged_at)
    ):
        return None
    return [
        (int(pk), float(at))
        if isinstance(pk, int) and isinstance(at, int | float)
        else None
        for pk, at in zip(log_ids, logged_at, strict=True)
    ]


def _log_rows_by_key(keys: set[Key]) -> dict[Key, tuple[int, float]]:
    from .models import LoggedEvent

    found: dict[Key, tuple[int, float]] = {}
    by_source: dict[str, list[str]] = {}
    for source, event_id in keys:
        by_source.setdefault(source, []).append(event_id)
    for source, ids in by_source.items():
        rows = LoggedEvent.objects.filter(source=source, event_id__in=ids).values_list(
            "event_id", "id", "created_at"
        )
        for event_id, pk, created in rows:
            found[(source, event_id)] = (pk, created.timestamp())
    return found


class Hop(NamedTuple):
    """One event's outcome at one subscriber (a thousand per batch: a tuple)."""

    log_id: int
    outcome: str
    detail: str = ""


def hops_record(
    hops: Sequence[Hop],
    *,
    subscriber: str,
    attempt: int,
    delivered_at: datetime,
    finished_at: datetime,
    process: str,
    task_id: str,
) -> None:
    """Write the hops of one task message: one statement, outside any
    transaction of the subscriber's (a retried batch rolled back, its
    hops did not). Never raises."""
    if not hops or not journey_enabled():
        return
    runs = hop_runs(hops)
    try:
        if connection.vendor == "postgresql":
            _insert_pg(
                runs, subscriber, attempt, delivered_at, finished_at, process, task_id
            )
        else:
            EventHop.objects.bulk_create(
                EventHop(
                    log_id=first,
                    log_id_last=last,
                    subscriber=subscriber,
                    outcome=outcome,
                    attempt=attempt,
                    delivered_at=delivered_at,
                    finished_at=finished_at,
                    process=process,
                    task_id=task_id,
                    detail=detail,
                )
                for first, last, outcome, detail in runs
            )
    except DatabaseError as exc:
        logger.warning("Journey hops of %d event(s) not recorded: %s", len(hops), exc)
        if not connection.in_atomic_block:
            connection.close()


Run = tuple[int, int, str, str]  # first and last log id, outcome, detail


def hop_runs(hops: Sequence[Hop]) -> list[Run]:
    """The hops as runs of consecutive log ids with one outcome and detail,
    in their order, each at most ``HOP_RUN_MAX`` long."""
    runs: list[Run] = []
    first = last = -1
    outcome = detail = ""
    for hop in hops:
        hop_detail = hop.detail[:2000]
        if (
            hop.log_id == last + 1
            and hop.outcome == outcome
            and hop_detail == detail
            and last - first + 1 < HOP_RUN_MAX
        ):
            last = hop.log_id
            continue
        if first >= 0:
            runs.append((first, last, outcome, detail))
        first = last = hop.log_id
        outcome, detail = hop.outcome, hop_detail
    if first >= 0:
        runs.append((first, last, outcome, detail))
    return runs


def _insert_pg(
    runs: Sequence[Run],
    subscriber: str,
    attempt: int,
    delivered_at: datetime,
    finished_at: datetime,
    process: str,
    task_id: str,
) -> None:
    """Insert the rows, in a transaction that does not wait for its WAL
    flush: a journey is for people to read, and losing the last instant's
    hops to a database crash costs nothing the portal relies on (retention
    reads them, and only ever keeps an event longer for a missing one).

    The statements go out together (pipeline mode): two round trips, with
    the commit, after every batch a worker applies."""
    table = connection.ops.quote_name(EventHop._meta.db_table)
    first, last, outcome, detail = (list(column) for column in zip(*runs, strict=True))
    with (
        transaction.atomic(),
        connection.cursor() as cursor,  # connected from here on
        connection.wrap_database_errors,
        connection.connection.pipeline(),
    ):
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(
            f"INSERT INTO {table} (log_id, log_id_last, outcome, detail, "
            "subscriber, attempt, delivered_at, finished_at, process, task_id) "
            "SELECT r.first, r.last, r.outcome, r.detail, %s, %s, %s, %s, %s, %s "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[]) "
            "AS r(first, last, outcome, detail)",
            [
                subscriber,
                attempt,
                delivered_at,
                finished_at,
                process,
                task_id,
                first,
                last,
                outcome,
                detail,
            ],
        )


def now() -> datetime:
    return timezone.now()
