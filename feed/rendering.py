"""The human sentence for each event type."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from registrar.contracts import (
    DEPARTMENT_RENAMED,
    EMPLOYEE_POSITION_CHANGED,
    EMPLOYEE_REGISTERED,
    TEAM_MEMBER_JOINED,
    TEAM_MEMBER_LEFT,
)

from .contracts import THANKS_SENT


def _registered(d: Mapping[str, Any]) -> str:
    where = f"{d['team']}, {d['department']}" if d.get("team") else d["department"]
    return f"{d['full_name']} joined the company as {d['position']} in {where}"


_RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    EMPLOYEE_REGISTERED: _registered,
    EMPLOYEE_POSITION_CHANGED: lambda d: (
        f"{d['full_name']} is now {d['new_position']} (was {d['old_position']})"
    ),
    TEAM_MEMBER_JOINED: lambda d: f"{d['full_name']} joined the {d['team']} team",
    TEAM_MEMBER_LEFT: lambda d: f"{d['full_name']} left the {d['team']} team",
    DEPARTMENT_RENAMED: lambda d: f"{d['old_name']} was renamed to {d['new_name']}",
    THANKS_SENT: lambda d: f"{d['from_name']} thanked {d['to_name']}: {d['message']}",
}


def render_text(event_type: str, data: Mapping[str, Any]) -> str:
    renderer = _RENDERERS.get(event_type)
    return renderer(data) if renderer else event_type


def department_of(event_type: str, data: Mapping[str, Any]) -> str:
    """The name of the department an event concerns when it happened, for
    display (empty if the event does not say)."""
    if event_type == EMPLOYEE_REGISTERED:
        return data["department"]
    if event_type == DEPARTMENT_RENAMED:
        return data["new_name"]
    return ""


def people_of(event_type: str, data: Mapping[str, Any]) -> tuple[Any, Any]:
    """(whom the event is about, who sent it) as employee ids, for profile
    timelines: the employee, or for thanks the one thanked and the sender."""

    def known(value: Any) -> int | None:
        return value if isinstance(value, int) else None

    if event_type == THANKS_SENT:
        return known(data.get("to_employee_id")), known(data.get("from_employee_id"))
    return known(data.get("employee_id")), None


def people_named(event_type: str, data: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The people a card names, as (name, employee id), for profile links."""
    if not isinstance(data, Mapping):
        return []
    pairs = (
        [("from_name", "from_employee_id"), ("to_name", "to_employee_id")]
        if event_type == THANKS_SENT
        else [("full_name", "employee_id")]
    )
    found = []
    for name_key, id_key in pairs:
        name, employee_id = data.get(name_key), data.get(id_key)
        if isinstance(name, str) and name and isinstance(employee_id, int):
            found.append((name, employee_id))
    return found


def department_id_of(event_type: str, data: Mapping[str, Any]) -> int | None:
    """The id of the department an event concerns, for filtering: v2 events
    of the registrar carry it, thanks the recipient's, a rename its own;
    None when the event does not say (a v1 event no upcaster could turn)."""
    if event_type == THANKS_SENT:
        value = data.get("to_department_id")
    else:
        value = data.get("department_id")
    return value if isinstance(value, int) else None


_LABELS = {
    EMPLOYEE_REGISTERED: "Joined",
    EMPLOYEE_POSITION_CHANGED: "New position",
    TEAM_MEMBER_JOINED: "Joined a team",
    TEAM_MEMBER_LEFT: "Left a team",
    DEPARTMENT_RENAMED: "Department renamed",
    THANKS_SENT: "Thanks",
}
EVENT_TYPES = list(_LABELS)


def type_label(event_type: str) -> str:
    """A short label for an event type, for badges and filters."""
    return _LABELS.get(event_type, event_type)


def actor_name(event_type: str, data: Mapping[str, Any]) -> str:
    """The person or thing a card is about, for its avatar."""
    if not isinstance(data, Mapping):
        return ""
    for key in ("from_name", "full_name", "new_name"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def initials(name: str) -> str:
    """Up to two initials: "Anna Petrova" -> "AP"; "Finance & Accounting" -> "FA"."""
    words = [w for w in name.split() if w[:1].isalnum()]
    if not words:
        return "·"
    letters = words[0][0] + (words[-1][0] if len(words) > 1 else "")
    return letters.upper()


# --- Aggregated cards ---------------------------------------------------------------
# Several events of one kind close together make one card ("Anna, Ben and 3
# others joined Engineering this week"): registrations into one department,
# arrivals in one team.
GROUP_MIN = 3
GROUP_WINDOW = timedelta(days=7)


def group_key(event_type: str, data: Mapping[str, Any], department_id: Any) -> str:
    """What an event may be grouped with ("" for events never grouped)."""
    if not isinstance(data, Mapping):
        return ""
    if event_type == EMPLOYEE_REGISTERED and department_id is not None:
        return f"{event_type}:{department_id}"
    if event_type == TEAM_MEMBER_JOINED and isinstance(data.get("team_id"), int):
        return f"{event_type}:{data['team_id']}"
    return ""


def group_predicate(event_type: str, data: Mapping[str, Any]) -> str:
    """What the people of a group did: "joined Platform"."""
    if event_type == EMPLOYEE_REGISTERED:
        return f"joined {data['department']}"
    if event_type == TEAM_MEMBER_JOINED:
        return f"joined the {data['team']} team"
    return type_label(event_type).lower()


def names_sentence(names: list[str]) -> str:
    """ "Anna", "Anna and Ben", "Anna, Ben and Cy", "Anna, Ben and 3 others"."""
    if len(names) <= 1:
        return "".join(names)
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    if len(names) == 3:
        return f"{names[0]}, {names[1]} and {names[2]}"
    return f"{names[0]}, {names[1]} and {len(names) - 2} others"


@dataclass
class CardGroup:
    """Events of one kind close together, shown as one card (newest first)."""

    key: str
    events: list[Any] = field(default_factory=list)

    @property
    def newest(self) -> Any:
        return self.events[0]

    @property
    def predicate(self) -> str:
        return group_predicate(self.newest.type, self.newest.data)

    @property
    def summary(self) -> str:
        names = [actor_name(e.type, e.data) for e in self.events]
        span = self.newest.time - self.events[-1].time
        when = " this week" if span <= GROUP_WINDOW else ""
        return f"{names_sentence(names)} {self.predicate}{when}"

    @property
    def like_total(self) -> int:
        return sum(getattr(e, "like_count", 0) for e in self.events)

    @property
    def fire_total(self) -> int:
        return sum(getattr(e, "fire_count", 0) for e in self.events)


def cards_grouped(events: list[Any]) -> list[Any]:
    """A page of events (newest first) as cards: runs of ``GROUP_MIN`` or more
    neighbouring events with one ``group_key``, within ``GROUP_WINDOW`` of
    the run's newest, become one ``CardGroup``; the rest stay as they are.
    Pure: grouping costs no query."""
    cards: list[Any] = []
    run: list[Any] = []
    run_key = ""

    def flush() -> None:
        if run_key and len(run) >= GROUP_MIN:
            cards.append(CardGroup(run_key, list(run)))
        else:
            cards.extend(run)
        run.clear()

    for event in events:
        key = group_key(event.type, event.data, event.department_id)
        if run and key and key == run_key and run[0].time - event.time <= GROUP_WINDOW:
            run.append(event)
            continue
        flush()
        run.append(event)
        run_key = key
    flush()
    return cards
