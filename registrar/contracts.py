"""The events the registrar publishes: their types and the data of each.

Registered with the portal's contract registry in ``RegistrarConfig.ready``;
``docs/events.md`` and ``/api/asyncapi.json`` are generated from them. A
published contract never changes in place: a change is a new version.

Version 2 of the employee and team types carries ids as well as display
names (``department_id``, ``team_id``): ids plus the minimum of fields, so a
subscriber can follow a department across renames. The registrar emits v2;
v1 stays accepted, and its upcasters (registered here, reading the
registrar through ``registrar.selectors``) turn a v1 event into v2 where the
names or ids it carries still lead to a department.
"""

from typing import Any

from pydantic import Field, StrictStr

from onboarding.contracts import Step
from portal.messaging.contracts import (
    EventData,
    Id,
    NonEmpty,
    contract_register,
    contract_upcaster_register,
)

EMPLOYEE_REGISTERED = "employee.registered"
EMPLOYEE_POSITION_CHANGED = "employee.position_changed"
TEAM_MEMBER_JOINED = "team.member_joined"
TEAM_MEMBER_LEFT = "team.member_left"
DEPARTMENT_RENAMED = "department.renamed"
EMPLOYEE_ONBOARDING_RETRY_REQUESTED = "employee.onboarding_retry_requested"


class EmployeeRegisteredV1(EventData):
    employee_id: Id
    full_name: StrictStr = NonEmpty
    position: StrictStr = NonEmpty
    department: StrictStr = NonEmpty
    team: StrictStr | None = None


class EmployeePositionChangedV1(EventData):
    employee_id: Id
    full_name: StrictStr = NonEmpty
    old_position: StrictStr = NonEmpty
    new_position: StrictStr = NonEmpty


class TeamMembershipV1(EventData):
    team_id: Id
    team: StrictStr = NonEmpty
    employee_id: Id
    full_name: StrictStr = NonEmpty


class EmployeeRegisteredV2(EventData):
    employee_id: Id
    full_name: StrictStr = NonEmpty
    position: StrictStr = NonEmpty
    department_id: Id
    department: StrictStr = NonEmpty
    team_id: Id | None = None
    team: StrictStr | None = None


class EmployeePositionChangedV2(EventData):
    employee_id: Id
    full_name: StrictStr = NonEmpty
    department_id: Id
    old_position: StrictStr = NonEmpty
    new_position: StrictStr = NonEmpty


class TeamMembershipV2(EventData):
    team_id: Id
    team: StrictStr = NonEmpty
    department_id: Id
    employee_id: Id
    full_name: StrictStr = NonEmpty


class DepartmentRenamedV1(EventData):
    department_id: Id
    old_name: StrictStr = NonEmpty
    new_name: StrictStr = NonEmpty


class OnboardingRetryRequestedV1(EventData):
    employee_id: Id
    full_name: StrictStr = NonEmpty
    steps: list[Step] = Field(min_length=1, max_length=2)


def register_contracts() -> None:
    owner = "registrar"
    contract_register(
        EMPLOYEE_REGISTERED,
        1,
        EmployeeRegisteredV1,
        owner=owner,
        description="A new employee was registered.",
    )
    contract_register(
        EMPLOYEE_POSITION_CHANGED,
        1,
        EmployeePositionChangedV1,
        owner=owner,
        description="An employee's position changed.",
    )
    contract_register(
        TEAM_MEMBER_JOINED,
        1,
        TeamMembershipV1,
        owner=owner,
        description="An employee joined a team.",
    )
    contract_register(
        TEAM_MEMBER_LEFT,
        1,
        TeamMembershipV1,
        owner=owner,
        description="An employee left a team.",
    )
    contract_register(
        EMPLOYEE_REGISTERED,
        2,
        EmployeeRegisteredV2,
        owner=owner,
        description="A new employee was registered (with department and team ids).",
    )
    contract_register(
        EMPLOYEE_POSITION_CHANGED,
        2,
        EmployeePositionChangedV2,
        owner=owner,
        description="An employee's position changed (with their department's id).",
    )
    for type_, what in ((TEAM_MEMBER_JOINED, "joined"), (TEAM_MEMBER_LEFT, "left")):
        contract_register(
            type_,
            2,
            TeamMembershipV2,
            owner=owner,
            description=f"An employee {what} a team (with the team's department id).",
        )
    contract_upcaster_register(EMPLOYEE_REGISTERED, 1, _registered_v2, owner=owner)
    contract_upcaster_register(
        EMPLOYEE_POSITION_CHANGED, 1, _position_changed_v2, owner=owner
    )
    for type_ in (TEAM_MEMBER_JOINED, TEAM_MEMBER_LEFT):
        contract_upcaster_register(type_, 1, _membership_v2, owner=owner)
    contract_register(
        DEPARTMENT_RENAMED,
        1,
        DepartmentRenamedV1,
        owner=owner,
        description="A department was renamed.",
    )
    contract_register(
        EMPLOYEE_ONBOARDING_RETRY_REQUESTED,
        1,
        OnboardingRetryRequestedV1,
        owner=owner,
        description="HR asked onboarding to run the failed `steps` of an "
        "employee's onboarding again (`welcome_mail`, `account`). Carries the "
        "extension attribute `correlationid`: the `id` of the employee's "
        "`employee.registered` event.",
    )


# --- Upcasters: v1 -> v2 where the registrar can tell the ids ----------------


def _registered_v2(data: dict[str, Any]) -> dict[str, Any] | None:
    """v1 names the department (and team): look the ids up by name."""
    from .selectors import department_id_named, team_id_named

    department_id = department_id_named(data["department"])
    if department_id is None:
        return None
    team_id = None
    if data.get("team"):
        team_id = team_id_named(data["team"], department_id=department_id)
    return {**data, "department_id": department_id, "team_id": team_id}


def _position_changed_v2(data: dict[str, Any]) -> dict[str, Any] | None:
    """v1 has no department: the employee's, as the registrar knows it."""
    from .selectors import department_id_of_employee

    department_id = department_id_of_employee(data["employee_id"])
    if department_id is None:
        return None
    return {**data, "department_id": department_id}


def _membership_v2(data: dict[str, Any]) -> dict[str, Any] | None:
    """A team never leaves its department: the team's department."""
    from .selectors import department_id_of_team

    department_id = department_id_of_team(data["team_id"])
    if department_id is None:
        return None
    return {**data, "department_id": department_id}
