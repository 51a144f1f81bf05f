"""Every write of the feed."""

import contextvars
import functools
import itertools
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Field, UniqueConstraint
from django.utils import timezone

from portal.messaging.batches import batch_apply
from portal.messaging.contracts import (
    ContractError,
    Event,
    unstorable_error,
    validate_event,
)
from portal.messaging.dead_letter_records import (
    REASON_DATABASE_REFUSED,
    dead_letter_for_contract_error,
    dead_letter_for_event,
    dead_letters_store,
)
from portal.messaging.eventlog import event_log_emit
from portal.messaging.journey import (
    batch_journey_while_waiting,
    journey_note_duplicates,
)
from portal.messaging.models import DeadLetter
from portal.messaging.topology import TASKS_EXCHANGE
from registrar.models import Employee

from .contracts import THANKS_MAX_LENGTH, THANKS_SENT
from .live import feed_live_announce_reactions
from .models import FeedEvent, Reaction, Thanks
from .rendering import department_id_of, department_of, people_of, render_text
from .subscriptions import FEED

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplyResult:
    created: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    # The feed ids of the events created (PostgreSQL; empty elsewhere).
    created_ids: tuple[int, ...] = ()


_DEPARTMENT_MAX = FeedEvent._meta.get_field("department").max_length


def _feed_event(event: Event) -> dict[str, Any]:
    """The feed row's fields for ``event`` (``_INSERT_COLUMNS``), JSON-ready."""
    env = event.envelope
    data = event.data.model_dump(mode="json")
    employee_id, from_employee_id = people_of(env.type, data)
    return dict(
        source=env.source,
        event_id=env.id,
        type=env.type,
        time=env.time.isoformat(),
        data=data,
        text=render_text(env.type, data),
        # The contract allows longer names than the feed's filter column.
        department=department_of(env.type, data)[:_DEPARTMENT_MAX],
        department_id=department_id_of(env.type, data),
        employee_id=employee_id,
        from_employee_id=from_employee_id,
        traceparent=env.traceparent or "",
    )


@dataclass
class _Row:
    """One valid event on its way into the feed, and what it came as."""

    fields: dict[str, Any]
    raw: Any


def feed_events_apply(*, envelopes: Iterable[Any], repair: bool = False) -> ApplyResult:
    """Validate CloudEvents and add the valid ones to the feed, in one transaction.

    Idempotent: an event whose (source, id) is already on the feed, or appears
    twice in ``envelopes``, is skipped. An event that can never be applied is
    stored as a ``DeadLetter`` of the feed's subscription with its reason
    instead, without failing the others: one that fails its contract, and
    one the database refuses for a reason the contract did not foresee
    (``batch_apply`` isolates it; reason "refused by database"). Transient
    database errors propagate (the caller retries the whole batch, which is
    safe because of the idempotency).

    With ``repair`` an event already on the feed is re-applied over its
    card: its text, data and department are rendered again from the event
    (``created`` then counts the cards inserted or changed), which is how a
    rendering bug is repaired (``feed_rebuild``, ``events_replay --repair``).
    Duplicates skipped are noted for the event's journey.

    On PostgreSQL the batch is first written as if every event were new,
    with one ``COPY`` that streams each row to the database as soon as it is
    validated (so the database stores one while the next is validated), and
    spares it a look-up per event. If one is on the feed already (a
    redelivery, a replay), that transaction is rolled back at the first such
    event and the batch applied again with ``INSERT … ON CONFLICT DO
    NOTHING``, ``FEED_INSERT_CHUNK`` events per statement, the statements
    pipelined; a repair always takes that path.
    """
    envelopes = list(envelopes)
    if not repair and connection.vendor == "postgresql":
        try:
            return _feed_events_apply(envelopes, repair=False, all_new=True)
        except _AlreadyOnFeed:
            pass
    return _feed_events_apply(envelopes, repair=repair, all_new=False)


class _AlreadyOnFeed(Exception):
    """An event inserted as new is on the feed already: apply the batch again,
    skipping such events. Not a database error, so that ``batch_apply``
    rolls back instead of isolating the event as a refusal."""


def _feed_events_apply(
    envelopes: list[Any], *, repair: bool, all_new: bool
) -> ApplyResult:
    refused: list[DeadLetter] = []

    def refuse(raw: Any, exc: Exception) -> None:
        refused.append(
            dead_letter_for_event(
                raw,
                reason=REASON_DATABASE_REFUSED,
                error=f"{type(exc).__name__}: {exc}"[:8000],
                **_origin(),
            )
        )

    def store_dead_letters() -> None:
        if refused:
            dead_letters_store(refused)

    results = batch_apply(
        envelopes,
        apply=functools.partial(
            _feed_events_apply_part, repair=repair, all_new=all_new
        ),
        refuse=refuse,
        finish=store_dead_letters,
    )
    return ApplyResult(
        created=sum(r.created for r in results),
        duplicates=sum(r.duplicates for r in results),
        dead_lettered=sum(r.dead_lettered for r in results) + len(refused),
        created_ids=tuple(i for r in results for i in r.created_ids),
    )


def _feed_events_apply_part(
    items: Sequence[Any], *, repair: bool = False, all_new: bool = False
) -> ApplyResult:
    """Apply envelopes inside the caller's transaction."""
    batch = _Batch(dead=[])
    rows = batch.valid_rows(items)
    kept: list[_Row] = []
    if all_new:
        created, stored, ids = _feed_events_copy(rows, len(items), batch.dead, kept)
    else:
        created, stored, ids = _feed_events_insert(
            _chunks(rows), batch.dead, kept=kept, repair=repair
        )
    if stored > created and not repair:
        # None inserted (a replay, a redelivery): all were there; else ask.
        journey_note_duplicates(
            {(r.fields["source"], r.fields["event_id"]) for r in kept}
            if created == 0
            else _already_there(kept)
        )
    if batch.dead:
        dead_letters_store(batch.dead)
    return ApplyResult(
        created=created,
        duplicates=batch.repeats + stored - created,
        dead_lettered=len(batch.dead),
        created_ids=tuple(ids),
    )


@dataclass
class _Batch:
    """What validating a batch sets aside: dead letters, repeats within it."""

    dead: list[DeadLetter]
    repeats: int = 0

    def valid_rows(self, items: Iterable[Any]) -> Iterator[_Row]:
        """The feed rows of the valid events, lazily, so that validating the
        next chunk overlaps inserting the previous one."""
        seen: set[tuple[str, str]] = set()
        for raw in items:
            try:
                event = validate_event(raw, check_storable=False)
            except ContractError as error:
                self.dead.append(_dead_letter(raw, error))
                continue
            key = (event.envelope.source, event.envelope.id)
            if key in seen:
                self.repeats += 1
                continue
            seen.add(key)
            yield _Row(_feed_event(event), raw)


def _dead_letter(raw: Any, error: ContractError) -> DeadLetter:
    logger.warning("Dead-lettering event: %s", error)
    return dead_letter_for_contract_error(raw, error, **_origin())


def _chunks(rows: Iterable[_Row]) -> Iterator[list[_Row]]:
    """``FEED_INSERT_CHUNK`` rows at a time; the first chunk a quarter of
    that, so that the database starts inserting sooner."""
    size = max(1, settings.FEED_INSERT_CHUNK)
    rows = iter(rows)
    first = max(1, size // 4)
    if chunk := list(itertools.islice(rows, first)):
        yield chunk
    while chunk := list(itertools.islice(rows, size)):
        yield chunk


def _payload(rows: list[_Row], dead: list[DeadLetter]) -> tuple[str, list[_Row]]:
    """``rows`` as one JSON array for ``jsonb_to_recordset``, and the rows in it.

    PostgreSQL cannot store U+0000, which JSON always writes escaped, so one
    search of the serialized chunk finds any; orjson refuses unpaired
    surrogates (which PostgreSQL cannot store either) and deep nesting. Only
    then is each row looked at, and the ones the database could not take are
    dead-lettered instead of inserted. (orjson: serializing is most of the
    consumer's own work per event otherwise.)
    """
    try:
        payload = orjson.dumps([row.fields for row in rows]).decode()
    except orjson.JSONEncodeError:
        pass
    else:
        if "\\u0000" not in payload:
            return payload, rows
    keep = []
    for row in rows:
        error = unstorable_error(row.fields)
        if error is None:
            keep.append(row)
        else:
            error = unstorable_error(row.raw) or error
            dead.append(_dead_letter(row.raw, error))
    return _json([row.fields for row in keep]), keep


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits: valid JSON all the same.
        return json.dumps(value)


_INSERT_COLUMNS = (
    "source",
    "event_id",
    "type",
    "time",
    "data",
    "text",
    "department",
    "department_id",
    "employee_id",
    "from_employee_id",
    "traceparent",
)


_RECORD_TYPES = {
    "time": "timestamptz",
    "data": "jsonb",
    "department_id": "bigint",
    "employee_id": "bigint",
    "from_employee_id": "bigint",
}


def _already_there(rows: list[_Row]) -> set[tuple[str, str]]:
    """Which of ``rows`` were on the feed before this batch (its inserts
    all have one ``received_at``, ``timezone.now()`` of the batch; only
    asked when some row was not inserted)."""
    by_source: dict[str, list[str]] = {}
    for row in rows:
        by_source.setdefault(row.fields["source"], []).append(row.fields["event_id"])
    inserted_at = _batch_time.get()
    found: set[tuple[str, str]] = set()
    for source, ids in by_source.items():
        cards = FeedEvent.objects.filter(source=source, event_id__in=ids)
        if connection.vendor == "postgresql":
            cards = cards.exclude(received_at=inserted_at)
        else:  # each card got its own time, after this one
            cards = cards.filter(received_at__lt=inserted_at)
        found.update(cards.values_list("source", "event_id"))
    return found


_batch_time: contextvars.ContextVar[Any] = contextvars.ContextVar("feed_batch_time")


def _feed_events_copy(
    rows: Iterable[_Row], most: int, dead: list[DeadLetter], kept: list[_Row]
) -> tuple[int, int, list[int]]:
    """Write ``rows``, none of them on the feed yet, with one ``COPY``: (how
    many were inserted, how many were sent, their ids), as
    ``_feed_events_insert``. The ids are taken from the table's sequence
    first (``most`` of them, one for each event the batch could hold), since
    ``COPY`` returns none. One that is on the feed already raises
    ``_AlreadyOnFeed``; rows the database could not store go to ``dead``.
    PostgreSQL only (``feed_events_apply`` tries "all new" only there).
    """
    now = timezone.now()
    _batch_time.set(now)
    ids: list[int] = []
    connection.ensure_connection()
    cursor = psycopg.Cursor(connection.connection)
    try:
        with connection.wrap_database_errors:
            free = iter(_feed_ids(cursor, most))
            with cursor.copy(_copy_sql()) as copy:
                for row in rows:
                    values = _copy_values(row, dead)
                    if values is None:
                        continue
                    feed_id = next(free)
                    copy.write_row((feed_id, *values, now))
                    ids.append(feed_id)
                    kept.append(row)
                # The database stores the last rows meanwhile.
                batch_journey_while_waiting()
    except IntegrityError as exc:
        if _on_feed_already(exc):
            raise _AlreadyOnFeed from exc
        raise
    return len(ids), len(ids), ids


def _feed_ids(cursor: psycopg.Cursor[Any], count: int) -> list[int]:
    """``count`` new ids from the feed table's own sequence."""
    cursor.execute(
        "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
        [_feed_id_sequence(), count],
    )
    return [row[0] for row in cursor.fetchall()]


@functools.cache
def _feed_id_sequence() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_serial_sequence(%s, %s)",
            [FeedEvent._meta.db_table, _column("id")],
        )
        (name,) = cursor.fetchone()
    return str(name)


# The string columns a row writes as they are (``data`` is serialized).
_TEXT_COLUMNS = tuple(
    name for name in _INSERT_COLUMNS if _RECORD_TYPES.get(name, "text") == "text"
)


def _copy_values(row: _Row, dead: list[DeadLetter]) -> tuple[Any, ...] | None:
    """``row``'s values in ``_INSERT_COLUMNS`` order, for ``COPY``; None if
    the database could not store it (then dead-lettered into ``dead``, as
    ``_payload`` does)."""
    fields = row.fields
    try:
        data: str | None = orjson.dumps(fields["data"]).decode()
    except orjson.JSONEncodeError:
        data = None
    if data is None or "\\u0000" in data or not _storable_texts(fields):
        if not _payload([row], dead)[1]:
            return None
        data = _json(fields["data"])  # an integer beyond 64 bits, say
    return tuple(data if name == "data" else fields[name] for name in _INSERT_COLUMNS)


def _storable_texts(fields: dict[str, Any]) -> bool:
    """No U+0000 and no lone surrogate in the row's string columns."""
    for name in _TEXT_COLUMNS:
        value = fields[name]
        if "\x00" in value:
            return False
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                return False
    return True


@functools.cache
def _copy_sql() -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(_column(name)) for name in ("id", *_INSERT_COLUMNS, "received_at")
    )
    return f"COPY {quote(FeedEvent._meta.db_table)} ({columns}) FROM STDIN"


def _feed_events_insert(
    chunks: Iterable[list[_Row]],
    dead: list[DeadLetter],
    *,
    kept: list[_Row] | None = None,
    repair: bool = False,
) -> tuple[int, int, list[int]]:
    """Insert the rows unless already on the feed: (how many were new, or
    with ``repair`` new or rewritten; how many were sent; the ids of those
    rows on PostgreSQL).

    The unique index on (source, event_id) decides: ``ON CONFLICT DO NOTHING``
    skips an event already there (or inserted by a concurrent worker), so no
    look-up comes first. On PostgreSQL each chunk is one statement, its rows
    travelling as one JSON parameter (``jsonb_to_recordset``: quoting one
    string is far cheaper than one parameter per value), and the statements
    go out in pipeline mode: the next chunk is prepared while the database
    inserts the previous one. Rows holding U+0000 go to ``dead`` instead.
    """
    kept = kept if kept is not None else []
    if connection.vendor != "postgresql":
        rows = [row for chunk in chunks for row in _payload(chunk, dead)[1]]
        kept.extend(rows)
        now = timezone.now()
        _batch_time.set(now)
        before = FeedEvent.objects.count()
        events = [FeedEvent(**row.fields) for row in rows]
        if repair:
            FeedEvent.objects.bulk_create(
                events,
                update_conflicts=True,
                unique_fields=["source", "event_id"],
                update_fields=list(_REPAIRED_COLUMNS),
            )
            return len(rows), len(rows), []
        FeedEvent.objects.bulk_create(events, ignore_conflicts=True)
        return FeedEvent.objects.count() - before, len(rows), []
    sql = _insert_sql(repair)
    now = timezone.now()
    _batch_time.set(now)
    stored = 0
    cursors = []
    connection.ensure_connection()
    raw_connection = connection.connection
    with connection.wrap_database_errors, raw_connection.pipeline():
        for chunk in chunks:
            payload, storable = _payload(chunk, dead)
            if not storable:
                continue
            cursor = psycopg.Cursor(raw_connection)
            cursor.execute(sql, [now, payload])
            cursors.append(cursor)
            stored += len(storable)
            kept.extend(storable)
        # The database works through the last chunks meanwhile.
        batch_journey_while_waiting()
    # Leaving the pipeline waited for every result.
    ids = [row[0] for cursor in cursors for row in cursor.fetchall()]
    return len(ids), stored, ids


# What a repair renders again (and the event's own fields, in case a
# contract's upcasting changed them).
_REPAIRED_COLUMNS = tuple(
    column for column in _INSERT_COLUMNS if column not in ("source", "event_id")
)


def _column(name: str) -> str:
    """A FeedEvent field's column (``get_field`` may answer a relation too)."""
    field = FeedEvent._meta.get_field(name)
    assert isinstance(field, Field)
    assert field.column is not None
    return field.column


def _on_feed_already(exc: IntegrityError) -> bool:
    """Is ``exc`` an insert refused by the feed's unique (source, event_id)?"""
    cause = exc.__cause__
    return (
        isinstance(cause, psycopg.errors.UniqueViolation)
        and cause.diag.constraint_name == _UNIQUE_PER_SOURCE
    )


_UNIQUE_PER_SOURCE = next(
    c.name
    for c in FeedEvent._meta.constraints
    if isinstance(c, UniqueConstraint) and c.fields == ("source", "event_id")
)


@functools.cache
def _insert_sql(repair: bool = False) -> str:
    meta = FeedEvent._meta
    quote = connection.ops.quote_name
    columns = ", ".join(
        quote(_column(name)) for name in (*_INSERT_COLUMNS, "received_at")
    )
    record = ", ".join(
        f"{quote(name)} {_RECORD_TYPES.get(name, 'text')}" for name in _INSERT_COLUMNS
    )
    selected = ", ".join(f"r.{quote(name)}" for name in _INSERT_COLUMNS)
    insert = (
        f"INSERT INTO {quote(meta.db_table)} AS f ({columns}) "
        f"SELECT {selected}, %s FROM jsonb_to_recordset(%s::jsonb) AS r({record}) "
    )
    if not repair:
        return insert + "ON CONFLICT (source, event_id) DO NOTHING RETURNING id"
    repaired = [quote(_column(name)) for name in _REPAIRED_COLUMNS]
    changes = ", ".join(f"{c} = EXCLUDED.{c}" for c in repaired)
    old = ", ".join(f"f.{c}" for c in repaired)
    new = ", ".join(f"EXCLUDED.{c}" for c in repaired)
    # Only cards that differ are written (and counted).
    return (
        insert + f"ON CONFLICT (source, event_id) DO UPDATE SET {changes} "
        f"WHERE ({old}) IS DISTINCT FROM ({new}) RETURNING id"
    )


def _origin() -> dict[str, str]:
    """Where a dead letter of the feed goes back to: the feed's task."""
    return {
        "subscriber": FEED.name,
        "exchange": TASKS_EXCHANGE,
        "routing_key": FEED.queue,
        "queue": FEED.queue,
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
    kind; after the commit, open pages are told the new counts. One reaction
    of a kind per person per event (a database constraint); two concurrent
    toggles end in one state, never two rows.
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
    counts = reaction_counts(feed_event=feed_event)
    feed_live_announce_reactions(feed_event=feed_event, counts=counts)
    return active, counts


@transaction.atomic
def thanks_send(
    *, from_employee: Employee, to_employee: Employee, message: str
) -> Thanks:
    """Store a thank-you and log ``thanks.sent``, in one transaction.

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
    event_log_emit(
        type=THANKS_SENT,
        source=f"{settings.PORTAL_EVENT_SOURCE}/feed",
        data={
            "from_employee_id": from_employee.pk,
            "from_name": from_employee.full_name,
            "from_department_id": from_employee.department_id,
            "to_employee_id": to_employee.pk,
            "to_name": to_employee.full_name,
            "to_department_id": to_employee.department_id,
            "message": message,
        },
        version=2,
    )
    return thanks


@transaction.atomic
def reaction_set(
    *, feed_event: FeedEvent, user: Any, kind: str, active: bool
) -> dict[str, int]:
    """Make ``user``'s reaction of ``kind`` to ``feed_event`` present
    (``active``) or absent, and return the event's counts per kind.

    Idempotent, unlike ``reaction_toggle``: adding a reaction that exists or
    removing one that does not changes nothing, also when the same request
    races with itself (the one-per-kind-per-person constraint decides, no
    lock is taken). Raises ``FeedError`` for an unknown kind.
    """
    if kind not in Reaction.Kind.values:
        raise FeedError(
            f"Unknown reaction {kind!r}: one of {', '.join(Reaction.Kind.values)}.",
            field="kind",
        )
    if active:
        # ON CONFLICT DO NOTHING: no error, and no savepoint, when it exists.
        Reaction.objects.bulk_create(
            [Reaction(feed_event=feed_event, user=user, kind=kind)],
            ignore_conflicts=True,
        )
    else:
        Reaction.objects.filter(feed_event=feed_event, user=user, kind=kind).delete()
    counts = reaction_counts(feed_event=feed_event)
    feed_live_announce_reactions(feed_event=feed_event, counts=counts)
    return counts
