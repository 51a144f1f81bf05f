"""Reading an event's journey: finding events, and their hops in order.

``journey_search`` finds logged events by id, by a subject of their data
(``employee`` 42 matches ``employee_id``, ``from_employee_id``,
``to_employee_id``… = 42, by the registered contracts' fields), or by type
and time. ``journey_of`` puts together, for one event, the hops the log
row, the journey hops and the dead letters record (see ``journey``), per
destination, with the time each took since the one before.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from .contracts import CONTRACTS
from .models import DeadLetter, EventHop, LoggedEvent
from .subscriptions import BROADCAST, subscription_named


def journey_subjects() -> dict[str, list[str]]:
    """Subject kinds and the data fields that name one: ``{"employee":
    ["employee_id", "from_employee_id", "to_employee_id"], …}``."""
    fields: set[str] = set()
    for contract in CONTRACTS.values():
        fields.update(contract.data.model_fields)
    subjects: dict[str, list[str]] = {}
    for name in sorted(fields):
        if name.endswith("_id"):
            kind = name[: -len("_id")].rsplit("_", 1)[-1]
            subjects.setdefault(kind, []).append(name)
    return subjects


def journey_search(
    *,
    event_id: str = "",
    subject: str = "",
    subject_id: str = "",
    type: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
) -> QuerySet[LoggedEvent]:
    """Logged events matching every filter given, newest first."""
    events = LoggedEvent.objects.all()
    if event_id:
        events = events.filter(event_id=event_id.strip())
    if subject and subject_id:
        keys = journey_subjects().get(subject, [])
        value: Any = int(subject_id) if subject_id.isdigit() else subject_id
        match = Q()
        for key in keys:
            match |= Q(**{f"envelope__data__{key}": value})
        events = events.filter(match) if keys else events.none()
    if type:
        events = events.filter(type=type)
    if since:
        events = events.filter(created_at__gte=since)
    if until:
        events = events.filter(created_at__lte=until)
    return events.order_by("-id")[:limit]


@dataclass
class Step:
    """One hop: what happened, when, how long after the hop before."""

    what: str
    at: datetime | None
    by: str = ""
    detail: str = ""
    outcome: str = ""  # ok, waiting, duplicate, retried, dead
    took_ms: float | None = None  # since the step before
    duration_ms: float | None = None  # the hop's own work


@dataclass
class Lane:
    """The journey towards one destination."""

    destination: str
    kind: str  # subscriber, broadcast
    status: str
    steps: list[Step] = field(default_factory=list)


@dataclass
class Journey:
    event: LoggedEvent
    committed: Step
    lanes: list[Lane]
    dead_letters: list[DeadLetter]


def journey_of(event: LoggedEvent) -> Journey:
    committed = Step(
        what=f"committed to the log ({event.get_origin_display()})",
        at=event.created_at,
        by=event.logged_by,
        outcome="ok",
    )
    routes: dict[str, Any] = event.routes or {}
    hops = list(EventHop.objects.covering(event.pk).order_by("delivered_at", "id"))
    dead = list(
        DeadLetter.objects.filter(
            event_id=event.event_id, source=event.source
        ).order_by("created_at", "id")
    )
    destinations = _ordered(
        [*routes, *(event.undelivered or []), *(h.subscriber for h in hops),
         *(d.subscriber for d in dead if d.subscriber)]
    )  # fmt: skip
    lanes = []
    for destination in destinations:
        lane = Lane(
            destination,
            "broadcast" if destination == BROADCAST else "subscriber",
            status="",
        )
        steps = [committed]
        route = routes.get(destination)
        if route:
            steps.append(
                Step(
                    what="routed: published, confirmed by RabbitMQ",
                    at=parse_datetime(route.get("at", "")),
                    by=route.get("by", ""),
                    detail=f"confirm {route.get('confirm_ms', '?')} ms",
                    outcome="ok",
                    duration_ms=route.get("confirm_ms"),
                )
            )
        elif destination in (event.undelivered or []):
            steps.append(
                Step(
                    what="waiting to be routed",
                    at=None,
                    detail=f"{event.attempts} attempt(s); {event.last_error}".strip(
                        "; "
                    ),
                    outcome="waiting",
                )
            )
        for hop in (h for h in hops if h.subscriber == destination):
            steps.append(
                Step(
                    what=f"delivered (attempt {hop.attempt})",
                    at=hop.delivered_at,
                    by=hop.process,
                    detail=f"task {hop.task_id}" if hop.task_id else "",
                    outcome="ok",
                )
            )
            steps.append(
                Step(
                    what=hop.get_outcome_display().lower(),
                    at=hop.finished_at,
                    by=hop.process,
                    detail=hop.detail,
                    outcome=_OUTCOME_CLASS[hop.outcome],
                    duration_ms=(hop.finished_at - hop.delivered_at).total_seconds()
                    * 1000,
                )
            )
        for letter in (d for d in dead if d.subscriber == destination):
            steps.append(
                Step(
                    what=f"dead letter stored: {letter.reason}",
                    at=letter.created_at,
                    detail=(letter.error or "")[:300],
                    outcome="dead",
                )
            )
        _latencies(steps)
        lane.steps = steps[1:]
        lane.status = _status(lane, event)
        lanes.append(lane)
    return Journey(event, committed, lanes, [d for d in dead if not d.subscriber])


_OUTCOME_CLASS: dict[str, str] = {
    EventHop.Outcome.APPLIED: "ok",
    EventHop.Outcome.DUPLICATE: "duplicate",
    EventHop.Outcome.RETRIED: "retried",
    EventHop.Outcome.DEAD_LETTERED: "dead",
}


def _ordered(names: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(name, None)
    # Subscribers first (as registered), broadcast last.
    return sorted(seen, key=lambda n: (n == BROADCAST, subscription_named(n) is None))


def _latencies(steps: list[Step]) -> None:
    previous = None
    for step in steps:
        if step.at is not None and previous is not None:
            step.took_ms = (step.at - previous).total_seconds() * 1000
        if step.at is not None:
            previous = step.at


def _status(lane: Lane, event: LoggedEvent) -> str:
    outcomes = [s.outcome for s in lane.steps]
    if lane.destination in (event.undelivered or []):
        return "owed: not yet routed"
    if "dead" in outcomes:
        return "dead-lettered"
    if lane.kind == "broadcast":
        return "published" if outcomes else "not published"
    last = next((s for s in reversed(lane.steps) if s.what.startswith(
        ("applied", "skipped", "retried"))), None)  # fmt: skip
    if last is None:
        return "routed, not yet applied"
    return {"ok": "applied", "duplicate": "applied (then a duplicate skipped)",
            "retried": "retrying"}.get(last.outcome, last.outcome)  # fmt: skip
