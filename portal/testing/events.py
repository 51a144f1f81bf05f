"""Event factories: a valid CloudEvent (v1, plain JSON types) of each type.

``event_data(type, n)`` makes the ``data`` of the n-th event of a type
(names, ids and departments derived from ``n``); ``cloud_event(type, ...)``
wraps it in a CloudEvents envelope. The types are written out here, not
imported, because the portal's layer imports no app; the harness's tests
check that every contract an app registers has a factory here and that each
factory's event passes validation.
"""

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from portal.messaging.contracts import DATA_CONTENT_TYPE, SPECVERSION

POSITIONS = ("Engineer", "Designer", "Analyst", "Manager", "Recruiter", "Writer")
DEPARTMENTS = tuple(f"Department {i:02d}" for i in range(20))


def _person(n: int) -> str:
    return f"Person {n}"


def _team(n: int) -> str:
    return f"Team {n % 100}"


def _employee_registered(n: int) -> dict[str, Any]:
    return {
        "employee_id": n,
        "full_name": _person(n),
        "position": POSITIONS[n % len(POSITIONS)],
        "department": DEPARTMENTS[n % len(DEPARTMENTS)],
        "team": _team(n),
    }


def _employee_position_changed(n: int) -> dict[str, Any]:
    return {
        "employee_id": n,
        "full_name": _person(n),
        "old_position": "Engineer",
        "new_position": "Senior Engineer",
    }


def _team_membership(n: int) -> dict[str, Any]:
    return {
        "team_id": n % 100,
        "team": _team(n),
        "employee_id": n,
        "full_name": _person(n),
    }


def _department_renamed(n: int) -> dict[str, Any]:
    department = DEPARTMENTS[n % len(DEPARTMENTS)]
    return {
        "department_id": n % len(DEPARTMENTS),
        "old_name": department,
        "new_name": f"{department} (renamed)",
    }


def _thanks_sent(n: int) -> dict[str, Any]:
    return {
        "from_employee_id": n,
        "from_name": _person(n),
        "to_employee_id": n + 1,
        "to_name": _person(n + 1),
        "message": "Thanks for the help with the release!",
    }


def _welcome_sent(n: int) -> dict[str, Any]:
    return {
        "employee_id": n,
        "email": f"person{n}@example.com",
        "message_id": f"<welcome-{n}@portal.example.com>",
    }


def _account_provisioned(n: int) -> dict[str, Any]:
    return {"employee_id": n, "account_id": f"acct-{n}"}


def _onboarding_failed(n: int) -> dict[str, Any]:
    return {
        "employee_id": n,
        "step": "account",
        "reason": "the directory refused the account (400)",
    }


def _onboarding_retry_requested(n: int) -> dict[str, Any]:
    return {"employee_id": n, "full_name": _person(n), "steps": ["account"]}


DATA_FACTORIES: dict[str, Callable[[int], dict[str, Any]]] = {
    "employee.registered": _employee_registered,
    "employee.position_changed": _employee_position_changed,
    "team.member_joined": _team_membership,
    "team.member_left": _team_membership,
    "department.renamed": _department_renamed,
    "thanks.sent": _thanks_sent,
    "employee.welcome_sent": _welcome_sent,
    "employee.account_provisioned": _account_provisioned,
    "employee.onboarding_failed": _onboarding_failed,
    "employee.onboarding_retry_requested": _onboarding_retry_requested,
}
EVENT_TYPES = tuple(DATA_FACTORIES)


def event_data(type: str, n: int = 1) -> dict[str, Any]:
    """Valid v1 ``data`` of the n-th event of ``type``."""
    try:
        factory = DATA_FACTORIES[type]
    except KeyError:
        raise ValueError(f"no factory for event type {type!r}") from None
    return factory(n)


def cloud_event(
    type: str = "employee.registered",
    *,
    n: int = 1,
    source: str = "/tests",
    event_id: str | None = None,
    time: datetime | None = None,
    data: Mapping[str, Any] | None = None,
    **attributes: Any,
) -> dict[str, Any]:
    """A valid CloudEvent of ``type``, round-tripped through JSON.

    ``data`` replaces the factory's data, ``attributes`` add or replace
    envelope attributes (``dataschemaversion=1``, ``traceparent=...``).
    """
    envelope = {
        "specversion": SPECVERSION,
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": type,
        "time": (time or datetime.now(UTC)).isoformat(),
        "datacontenttype": DATA_CONTENT_TYPE,
        "data": dict(data) if data is not None else event_data(type, n),
    }
    envelope.update(attributes)
    try:
        return orjson.loads(orjson.dumps(envelope))
    except (TypeError, orjson.JSONEncodeError):  # an int beyond 64 bits, say
        return json.loads(json.dumps(envelope))
