"""Version 2 of the employee, team and thanks types, and the upcasters that
turn a v1 event into v2 on its way to a subscriber."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.messaging import contracts
from portal.messaging.contracts import (
    UPCASTERS,
    contract_upcaster_register,
    event_upcast,
    events_upcast,
    upcast_batch,
    validate_event,
)
from tests.factories import DepartmentFactory, EmployeeFactory, TeamFactory
from tests.helpers import make_envelope

pytestmark = pytest.mark.django_db


def registered_v1(department: str, team: str | None = None, **data) -> dict:
    return make_envelope(
        data={
            "employee_id": 7,
            "full_name": "Anna Petrova",
            "position": "Engineer",
            "department": department,
            "team": team,
            **data,
        }
    )


def test_every_employee_team_and_thanks_type_has_a_v2_and_an_upcaster():
    for type_ in (
        "employee.registered",
        "employee.position_changed",
        "team.member_joined",
        "team.member_left",
        "thanks.sent",
    ):
        assert (type_, 1) in contracts.EVENT_TYPES
        assert (type_, 2) in contracts.EVENT_TYPES
        assert (type_, 1) in UPCASTERS
    # A rename carried the department's id from the start.
    assert ("department.renamed", 2) not in contracts.EVENT_TYPES


def test_a_v1_registration_becomes_v2_with_the_ids_its_names_lead_to():
    core = TeamFactory(name="Core", department=DepartmentFactory(name="Platform"))
    [upcast] = events_upcast([registered_v1("platform", "Core")])
    assert upcast["dataschemaversion"] == 2
    assert upcast["data"]["department_id"] == core.department_id
    assert upcast["data"]["team_id"] == core.pk
    # Still the same event, and valid as v2.
    event = validate_event(upcast)
    assert event.envelope.version == 2
    assert event.data.department == "platform"


def test_a_v1_event_the_registrar_cannot_place_stays_v1_and_valid():
    raw = registered_v1("Nowhere")
    [kept] = events_upcast([raw])
    assert kept is raw
    assert validate_event(kept).envelope.version == 1


def test_v2_events_and_invalid_ones_pass_through_untouched():
    v2 = make_envelope(
        dataschemaversion=2,
        data={
            "employee_id": 1,
            "full_name": "A",
            "position": "B",
            "department_id": 3,
            "department": "C",
        },
    )
    invalid = make_envelope(data={"employee_id": "seven"})
    assert events_upcast([v2, invalid, "garbage"]) == [v2, invalid, "garbage"]


def test_position_changes_memberships_and_thanks_take_the_registrar_ids():
    team = TeamFactory()
    anna = EmployeeFactory(department=team.department)
    ivan = EmployeeFactory()
    position = make_envelope(
        type="employee.position_changed",
        data={
            "employee_id": anna.pk,
            "full_name": "Anna",
            "old_position": "A",
            "new_position": "B",
        },
    )
    joined = make_envelope(
        type="team.member_joined",
        data={"team_id": team.pk, "team": "T", "employee_id": 9, "full_name": "X"},
    )
    thanks = make_envelope(
        type="thanks.sent",
        data={
            "from_employee_id": ivan.pk,
            "from_name": "Ivan",
            "to_employee_id": anna.pk,
            "to_name": "Anna",
            "message": "thanks",
        },
    )
    upcast = events_upcast([position, joined, thanks])
    assert [e["dataschemaversion"] for e in upcast] == [2, 2, 2]
    assert upcast[0]["data"]["department_id"] == anna.department_id
    assert upcast[1]["data"]["department_id"] == team.department_id
    assert upcast[2]["data"]["to_department_id"] == anna.department_id
    assert upcast[2]["data"]["from_department_id"] == ivan.department_id


def test_a_batch_of_v1_events_naming_one_department_costs_one_look_up():
    DepartmentFactory(name="Platform")
    events = [registered_v1("Platform", employee_id=n) for n in range(50)]
    with CaptureQueriesContext(connection) as queries, upcast_batch():
        upcast = events_upcast(events)
    assert {e["dataschemaversion"] for e in upcast} == {2}
    assert len(queries) == 1
    # Outside a batch nothing is remembered: a new department is found.
    DepartmentFactory(name="Sales")
    [sales] = events_upcast([registered_v1("Sales")])
    assert sales["dataschemaversion"] == 2


def test_an_upcaster_whose_answer_fails_the_next_version_keeps_the_event(
    monkeypatch,
):
    monkeypatch.setitem(
        UPCASTERS, ("employee.registered", 1), lambda data: {"nonsense": True}
    )
    event = validate_event(registered_v1("Platform"))
    assert event_upcast(event) is event


def test_only_the_owner_registers_an_upcaster_after_both_versions():
    with pytest.raises(ValueError, match="belongs to registrar"):
        contract_upcaster_register(
            "employee.registered", 1, lambda data: data, owner="feed"
        )
    with pytest.raises(ValueError, match="before its upcaster"):
        contract_upcaster_register(
            "department.renamed", 1, lambda data: data, owner="registrar"
        )
