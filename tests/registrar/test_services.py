"""Registrar services store the change and its event in one transaction."""

import pytest
from django.db import transaction

from portal.messaging.contracts import ContractError, validate_event
from portal.messaging.eventlog import EventLogError, event_log_emit
from portal.messaging.models import LoggedEvent
from registrar.models import Employee
from registrar.services import (
    RegistrarError,
    department_rename,
    employee_change_position,
    employee_move_to_team,
    employee_register,
)
from tests.factories import DepartmentFactory, EmployeeFactory, TeamFactory

pytestmark = pytest.mark.django_db


def outbox_types() -> list[str]:
    return list(LoggedEvent.objects.order_by("id").values_list("type", flat=True))


def test_register_stores_employee_and_one_valid_event():
    team = TeamFactory(name="Core", department__name="Platform")
    employee = employee_register(
        full_name="  Anna Petrova ",
        email="Anna@Example.com",
        position="Backend Engineer",
        department=team.department,
        team=team,
    )
    [row] = LoggedEvent.objects.all()
    assert row.type == "employee.registered"
    assert (row.status, row.origin) == (LoggedEvent.Status.PENDING, "portal")
    # Owed to every subscriber that wants it (the feed, the tests' audit app).
    assert row.undelivered[:2] == ["feed", "audit"]
    assert row.source == "/portal/registrar"
    event = validate_event(row.envelope)  # the stored envelope obeys the contract
    assert event.envelope.id == row.event_id
    assert row.envelope["data"] == {
        "employee_id": employee.pk,
        "full_name": "Anna Petrova",
        "position": "Backend Engineer",
        "department_id": team.department.pk,
        "department": "Platform",
        "team_id": team.pk,
        "team": "Core",
    }
    assert row.envelope["dataschemaversion"] == 2
    assert employee.email == "anna@example.com"


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("full_name", {"full_name": "   "}),
        ("position", {"position": ""}),
        ("email", {"email": "TAKEN@example.com"}),
    ],
)
def test_register_refuses_bad_input_and_stores_nothing(field, kwargs):
    department = DepartmentFactory()
    EmployeeFactory(email="taken@example.com", department=department)
    arguments = {
        "full_name": "Ivan Ivanov",
        "email": "ivan@example.com",
        "position": "Analyst",
        "department": department,
    } | kwargs
    with pytest.raises(RegistrarError) as caught:
        employee_register(**arguments)
    assert caught.value.field == field
    assert Employee.objects.count() == 1
    assert LoggedEvent.objects.count() == 0


def test_register_refuses_a_team_of_another_department():
    team = TeamFactory()
    with pytest.raises(RegistrarError) as caught:
        employee_register(
            full_name="Olga",
            email="olga@example.com",
            position="Designer",
            department=DepartmentFactory(),
            team=team,
        )
    assert caught.value.field == "team"
    assert LoggedEvent.objects.count() == 0


def test_rolled_back_registration_leaves_no_event_and_schedules_no_publish(
    django_capture_on_commit_callbacks,
):
    department = DepartmentFactory()

    def register_then_fail():
        with transaction.atomic():
            employee_register(
                full_name="Olga",
                email="olga@example.com",
                position="Designer",
                department=department,
            )
            raise RuntimeError("the caller's transaction fails later")

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
        register_then_fail()
    assert Employee.objects.count() == 0
    assert LoggedEvent.objects.count() == 0
    assert callbacks == []


def test_committed_registration_schedules_exactly_one_publish(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as callbacks:
        employee_register(
            full_name="Olga",
            email="olga@example.com",
            position="Designer",
            department=DepartmentFactory(),
        )
    assert len(callbacks) == 1


def test_change_position_emits_old_and_new():
    employee = EmployeeFactory(position="Engineer")
    employee_change_position(employee=employee, position="Lead Engineer")
    [row] = LoggedEvent.objects.all()
    assert row.type == "employee.position_changed"
    assert row.envelope["data"] == {
        "employee_id": employee.pk,
        "full_name": employee.full_name,
        "department_id": employee.department_id,
        "old_position": "Engineer",
        "new_position": "Lead Engineer",
    }
    employee.refresh_from_db()
    assert employee.position == "Lead Engineer"


def test_change_to_the_same_position_emits_nothing():
    employee = EmployeeFactory(position="Engineer")
    employee_change_position(employee=employee, position="Engineer")
    assert LoggedEvent.objects.count() == 0


def test_move_between_teams_emits_left_then_joined():
    old = TeamFactory(name="Old")
    new = TeamFactory(name="New", department=old.department)
    employee = EmployeeFactory(team=old, department=old.department)
    employee_move_to_team(employee=employee, team=new)
    assert outbox_types() == ["team.member_left", "team.member_joined"]
    left, joined = LoggedEvent.objects.order_by("id")
    assert left.envelope["data"]["team"] == "Old"
    assert joined.envelope["data"]["team_id"] == new.pk
    employee.refresh_from_db()
    assert employee.team == new


def test_move_into_another_departments_team_moves_the_department_too():
    employee = EmployeeFactory()
    team = TeamFactory()
    employee_move_to_team(employee=employee, team=team)
    employee.refresh_from_db()
    assert employee.department == team.department
    assert outbox_types() == ["team.member_joined"]


def test_leaving_all_teams_emits_only_left_and_same_team_emits_nothing():
    team = TeamFactory()
    employee = EmployeeFactory(team=team, department=team.department)
    employee_move_to_team(employee=employee, team=team)
    assert outbox_types() == []
    employee_move_to_team(employee=employee, team=None)
    assert outbox_types() == ["team.member_left"]


def test_rename_department_emits_old_and_new_name():
    department = DepartmentFactory(name="Finance")
    department_rename(department=department, name="Finance & Accounting")
    [row] = LoggedEvent.objects.all()
    assert row.type == "department.renamed"
    assert row.envelope["data"] == {
        "department_id": department.pk,
        "old_name": "Finance",
        "new_name": "Finance & Accounting",
    }


def test_rename_to_a_taken_name_is_refused_without_event():
    DepartmentFactory(name="Sales")
    department = DepartmentFactory(name="Finance")
    with pytest.raises(RegistrarError):
        department_rename(department=department, name="sales")
    department.refresh_from_db()
    assert department.name == "Finance"
    assert LoggedEvent.objects.count() == 0


def test_outbox_refuses_an_event_that_breaks_its_contract():
    with pytest.raises(ContractError) as caught, transaction.atomic():
        event_log_emit(
            type="department.renamed", source="/tests", data={"old_name": "A"}
        )
    assert caught.value.reason == "invalid data"
    assert LoggedEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_outbox_refuses_to_write_outside_a_transaction():
    with pytest.raises(EventLogError):
        event_log_emit(
            type="department.renamed",
            source="/tests",
            data={"department_id": 1, "old_name": "A", "new_name": "B"},
        )
    assert LoggedEvent.objects.count() == 0


def test_a_logged_event_reads_back_as_it_was_emitted():
    # On PostgreSQL the row is written by one SQL statement of its own, not
    # the ORM's save: every column must come back as the ORM would store it.
    data = {"department_id": 2**63 - 1, "old_name": "Ä\u2028", "new_name": "B"}
    with transaction.atomic():
        entry = event_log_emit(type="department.renamed", source="/tests", data=data)
    stored = LoggedEvent.objects.get(pk=entry.pk)
    assert stored.envelope == entry.envelope
    assert stored.envelope["data"] == data
    assert (stored.event_id, stored.source, stored.type) == (
        entry.envelope["id"],
        "/tests",
        "department.renamed",
    )
    assert stored.status == LoggedEvent.Status.PENDING
    assert stored.undelivered == entry.undelivered
    assert "feed" in stored.undelivered
    assert (stored.attempts, stored.last_error, stored.routes) == (0, "", {})
    assert stored.created_at == entry.created_at
    assert stored.logged_by == entry.logged_by != ""
    assert stored.origin == LoggedEvent.Origin.PORTAL


def _stored_upper_case(email: str) -> None:
    """An employee whose email is stored as typed, bypassing the service's
    lower-casing (as a concurrent registration's row, not yet visible to
    the service's check, would look to the unique index)."""
    EmployeeFactory(email=email.upper())


def _register(email: str, department) -> Employee:
    return employee_register(
        full_name=email.split("@")[0].title(),
        email=email,
        position="Engineer",
        department=department,
    )


def test_a_registration_that_loses_the_race_for_its_email_stores_nothing():
    department = DepartmentFactory()
    _stored_upper_case("anna@example.com")
    before = (Employee.objects.count(), LoggedEvent.objects.count())
    with pytest.raises(RegistrarError) as raised:
        _register("anna@example.com", department)
    assert raised.value.field == "email"
    assert (Employee.objects.count(), LoggedEvent.objects.count()) == before


def test_a_callers_transaction_goes_on_after_a_registration_lost_the_race():
    department = DepartmentFactory()
    _stored_upper_case("anna@example.com")
    with transaction.atomic():
        with pytest.raises(RegistrarError):
            _register("anna@example.com", department)
        boris = _register("boris@example.com", department)
    assert Employee.objects.filter(pk=boris.pk).exists()
    assert outbox_types() == ["employee.registered"]


@pytest.mark.django_db(transaction=True)
def test_a_registration_writes_in_one_transaction_without_reads_or_savepoints():
    """The unique index, not a look-up, refuses a taken email (the tests
    above), so a registration only writes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    department = DepartmentFactory()
    with CaptureQueriesContext(connection) as queries:
        _register("anna@example.com", department)
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert "SAVEPOINT" not in statements, statements
    assert "SELECT" not in statements, statements
    assert Employee.objects.filter(email="anna@example.com").exists()
