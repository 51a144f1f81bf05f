"""The events the registrar publishes: their types and the data of each.

Registered with the portal's contract registry in ``RegistrarConfig.ready``;
``docs/events.md`` and ``/api/asyncapi.json`` are generated from them. A
published contract never changes in place: a change is a new version.
"""

from pydantic import Field, StrictStr

from onboarding.contracts import Step
from portal.messaging.contracts import EventData, Id, NonEmpty, contract_register

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
