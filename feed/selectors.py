"""Reads of the feed shared by views and the API."""

import base64
import binascii
from datetime import datetime, timedelta

from django.db.models import (
    Count,
    Exists,
    Field,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import FeedEvent, Reaction

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
ARRIVAL_OVERLAP = timedelta(seconds=30)
ARRIVALS_LIMIT = 100


class BadFilter(ValueError):
    """A filter no event can match and the database cannot even compare."""


# Feed ids and department ids are PostgreSQL bigints.
MAX_ID = 2**63 - 1
# The department id of a filter that names no department: matches nothing.
NO_DEPARTMENT = -1


def feed_department_filter(value: str | int | None) -> int | None:
    """The department id a filter means: an id (``"5"``), or a department's
    name now (``"Platform"``, for links and API clients of before ids), or
    None for none. A name no department has gives ``NO_DEPARTMENT``, which
    matches nothing. Raises ``BadFilter`` for text the database cannot hold.
    """
    from registrar.selectors import department_id_named

    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = value.strip()
    if "\x00" in text:
        raise BadFilter("Filters cannot hold the NUL character.")
    if not text:
        return None
    if text.isascii() and text.isdigit():
        number = int(text)
        return number if number <= MAX_ID else NO_DEPARTMENT
    found = department_id_named(text)
    return NO_DEPARTMENT if found is None else found


class InvalidCursor(ValueError):
    """A pagination cursor that this feed did not hand out."""


class FeedEventNotFound(LookupError):
    """No event on the feed has this id (from this source)."""


class AmbiguousEventId(LookupError):
    """Several sources used this event id; the caller must name the source."""


def feed_events_list(
    *,
    event_type: str | None = None,
    department_id: int | None = None,
    person_id: int | None = None,
) -> QuerySet[FeedEvent]:
    """Feed events newest first by when they happened, optionally filtered by
    type, by department id (which a rename does not change) and by person
    (the events about an employee, and the thanks they sent)."""
    events = FeedEvent.objects.order_by("-time", "-id")
    if person_id is not None:
        events = events.filter(Q(employee_id=person_id) | Q(from_employee_id=person_id))
    if event_type:
        events = events.filter(type=event_type)
    if department_id is not None:
        events = events.filter(department_id=department_id)
    return events


def encode_cursor(event: FeedEvent) -> str:
    """An opaque cursor naming ``event``'s place in the feed (time, id)."""
    raw = f"{event.time.isoformat()}|{event.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (time, id) inside a cursor; ``InvalidCursor`` if it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode()).decode()
        time_text, id_text = raw.rsplit("|", 1)
        time = datetime.fromisoformat(time_text)
        pk = int(id_text)
    except (ValueError, binascii.Error, UnicodeError) as error:
        raise InvalidCursor("Invalid cursor.") from error
    if time.tzinfo is None:
        raise InvalidCursor("Invalid cursor.")
    return time, pk


def _reaction_count(kind: str) -> Coalesce:
    counts = (
        Reaction.objects.filter(feed_event=OuterRef("pk"), kind=kind)
        .order_by()
        .values("feed_event")
        .annotate(total=Count("pk"))
        .values("total")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def with_reactions(events: QuerySet[FeedEvent], *, user=None) -> QuerySet[FeedEvent]:
    """Annotate ``like_count``/``fire_count`` and, for ``user``, ``liked``/
    ``fired``, so a page of cards costs one query."""
    # Correlated subqueries, not a JOIN + GROUP BY: PostgreSQL then walks the
    # (time, id) index, stops at the page's LIMIT and counts reactions for
    # those rows only, instead of aggregating the whole feed first.
    events = events.annotate(
        like_count=_reaction_count(Reaction.Kind.LIKE),
        fire_count=_reaction_count(Reaction.Kind.FIRE),
    )
    if user is not None and user.is_authenticated:
        mine = Reaction.objects.filter(feed_event=OuterRef("pk"), user=user)
        events = events.annotate(
            liked=Exists(mine.filter(kind=Reaction.Kind.LIKE)),
            fired=Exists(mine.filter(kind=Reaction.Kind.FIRE)),
        )
    return events


def feed_page(
    *,
    user=None,
    before: str | None = None,
    event_type: str | None = None,
    department_id: int | None = None,
    person_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> tuple[list[FeedEvent], str | None]:
    """One page of the feed, newest first by event time, older than ``before``.

    Keyset pagination on (time, id): no offsets, stable while events arrive.
    Returns the events (with reaction annotations, see ``with_reactions``) and
    the cursor of the next, older page, or ``None`` on the last page. Raises
    ``InvalidCursor`` for a cursor this function did not hand out.
    """
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    events = feed_events_list(
        event_type=event_type, department_id=department_id, person_id=person_id
    )
    if before:
        time, pk = decode_cursor(before)
        events = events.filter(Q(time__lt=time) | Q(time=time, pk__lt=pk))
    items = list(with_reactions(events, user=user)[: limit + 1])
    next_cursor = encode_cursor(items[limit - 1]) if len(items) > limit else None
    return items[:limit], next_cursor


def feed_newest_id() -> int:
    """The id of the latest event to arrive (0 if none): where a page that
    shows the feed from now on starts asking ``feed_arrived_since``."""
    return FeedEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def feed_arrived_since(
    *,
    user=None,
    since_id: int,
    event_type: str | None = None,
    department_id: int | None = None,
    limit: int = ARRIVALS_LIMIT,
) -> tuple[list[FeedEvent], int, bool]:
    """What a page already showing the feed is missing: events that reached
    the feed after the one with id ``since_id``.

    Returns the events, the id to ask from next time, and whether more
    arrived than ``limit`` (ask again at once). The events come in arrival
    order (the id), so a burst bigger than ``limit`` is read in full over a
    few calls; the page places each card where its ``time`` puts it, which
    is not where it arrived: an event may arrive after a newer one.

    Ids are handed out at insert, not at commit, so a worker may commit a
    lower id after another's higher one was read. Events that arrived in the
    last ``ARRIVAL_OVERLAP`` below ``since_id`` are therefore returned again
    (up to ``limit`` of them); callers skip the ones they already show.
    """
    events = feed_events_list(event_type=event_type, department_id=department_id)
    newer = list(
        with_reactions(events.filter(pk__gt=since_id), user=user).order_by("pk")[
            : limit + 1
        ]
    )
    more = len(newer) > limit
    newer = newer[:limit]
    recent = timezone.now() - ARRIVAL_OVERLAP
    again = list(
        with_reactions(
            events.filter(pk__lte=since_id, received_at__gte=recent), user=user
        ).order_by("-pk")[:limit]
    )
    next_since = max([since_id, *(e.pk for e in newer)])
    return [*again, *newer], next_since, more


def _max_length(name: str) -> int:
    field = FeedEvent._meta.get_field(name)
    assert isinstance(field, Field)
    assert field.max_length is not None  # both are CharFields
    return field.max_length


_EVENT_ID_MAX = _max_length("event_id")
_SOURCE_MAX = _max_length("source")


def feed_event_get(*, event_id: str, source: str | None = None) -> FeedEvent:
    """The feed event with CloudEvent id ``event_id``.

    Ids are unique per source only: when two sources used ``event_id``, give
    ``source`` or get ``AmbiguousEventId``. Raises ``FeedEventNotFound`` when
    no event matches, including for an id or source no event can have (too
    long, or holding NUL, which the database would refuse to compare).
    """
    if _unstorable(event_id, _EVENT_ID_MAX) or (
        source and _unstorable(source, _SOURCE_MAX)
    ):
        raise FeedEventNotFound(event_id)
    events = FeedEvent.objects.filter(event_id=event_id)
    if source:
        events = events.filter(source=source)
    found = list(events[:2])
    if not found:
        raise FeedEventNotFound(event_id)
    if len(found) > 1:
        raise AmbiguousEventId(event_id)
    return found[0]


def _unstorable(value: str, max_length: int) -> bool:
    return "\x00" in value or len(value) > max_length
