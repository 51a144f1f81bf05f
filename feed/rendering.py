"""The human sentence for each event type."""

from collections.abc import Callable, Mapping
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
