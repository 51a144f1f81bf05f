"""The human sentence for each event type."""

from collections.abc import Callable, Mapping
from typing import Any


def _registered(d: Mapping[str, Any]) -> str:
    where = f"{d['team']}, {d['department']}" if d.get("team") else d["department"]
    return f"{d['full_name']} joined the company as {d['position']} in {where}"


_RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "employee.registered": _registered,
    "employee.position_changed": lambda d: (
        f"{d['full_name']} is now {d['new_position']} (was {d['old_position']})"
    ),
    "team.member_joined": lambda d: f"{d['full_name']} joined the {d['team']} team",
    "team.member_left": lambda d: f"{d['full_name']} left the {d['team']} team",
    "department.renamed": lambda d: f"{d['old_name']} was renamed to {d['new_name']}",
    "thanks.sent": lambda d: f"{d['from_name']} thanked {d['to_name']}: {d['message']}",
}


def render_text(event_type: str, data: Mapping[str, Any]) -> str:
    renderer = _RENDERERS.get(event_type)
    return renderer(data) if renderer else event_type


def department_of(event_type: str, data: Mapping[str, Any]) -> str:
    """The department an event concerns, for filtering (empty if none)."""
    if event_type == "employee.registered":
        return data["department"]
    if event_type == "department.renamed":
        return data["new_name"]
    return ""
