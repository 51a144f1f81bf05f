"""The admin writes through the registrar services, so it emits events."""

import pytest
from django.urls import reverse

from portal.messaging.models import LoggedEvent
from registrar.models import Department, Employee
from tests.factories import DepartmentFactory, EmployeeFactory, TeamFactory
from tests.web.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _types():
    return list(LoggedEvent.objects.order_by("id").values_list("type", flat=True))


def test_adding_an_employee_in_the_admin_registers_them(admin_client_):
    team = TeamFactory()
    response = admin_client_.post(
        reverse("admin:registrar_employee_add"),
        {
            "full_name": "Anna Petrova",
            "email": "anna@example.com",
            "position": "Engineer",
            "department": team.department.pk,
            "team": team.pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    anna = Employee.objects.get(email="anna@example.com")
    assert anna.team == team
    assert _types() == ["employee.registered"]


def test_admin_add_shows_duplicate_email_and_foreign_team(admin_client_):
    EmployeeFactory(email="anna@example.com")
    other_team = TeamFactory()
    response = admin_client_.post(
        reverse("admin:registrar_employee_add"),
        {
            "full_name": "Anna",
            "email": "ANNA@example.com",
            "position": "Engineer",
            "department": DepartmentFactory().pk,
            "team": other_team.pk,
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "email" in errors
    assert "team" in errors
    assert _types() == []


def test_changing_position_and_team_in_the_admin_emits_events(admin_client_):
    old, new = TeamFactory(), TeamFactory()
    anna = EmployeeFactory(team=old, department=old.department, position="Engineer")
    response = admin_client_.post(
        reverse("admin:registrar_employee_change", args=[anna.pk]),
        {"position": "Team Lead", "team": new.pk, "user": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    anna.refresh_from_db()
    assert (anna.position, anna.team, anna.department) == (
        "Team Lead",
        new,
        new.department,
    )
    assert _types() == [
        "employee.position_changed",
        "team.member_left",
        "team.member_joined",
    ]


def test_renaming_a_department_in_the_admin_emits_an_event(admin_client_):
    department = DepartmentFactory(name="Finance")
    response = admin_client_.post(
        reverse("admin:registrar_department_change", args=[department.pk]),
        {"name": "Finance & Accounting"},
    )
    assert response.status_code == 302
    assert Department.objects.get().name == "Finance & Accounting"
    assert _types() == ["department.renamed"]


def test_republish_action_resets_rows_and_publishes(admin_client_, settings):
    from registrar.services import department_rename

    department = DepartmentFactory(name="Finance")
    department_rename(department=department, name="Money")
    row = LoggedEvent.objects.get()
    LoggedEvent.objects.filter(pk=row.pk).update(status="sent")
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"
    response = admin_client_.post(
        reverse("admin:messaging_loggedevent_changelist"),
        {"action": "republish", "_selected_action": [row.pk]},
        follow=True,
    )
    assert response.status_code == 200
    row.refresh_from_db()
    # The broker is unreachable here, so the row is pending again with the error.
    assert row.status == "pending"
    assert row.attempts == 1
    assert row.last_error


@pytest.mark.parametrize(
    "name",
    [
        "registrar_employee",
        "registrar_department",
        "registrar_team",
        "feed_feedevent",
        "feed_reaction",
        "feed_thanks",
        "messaging_loggedevent",
    ],
)
def test_every_model_has_a_working_changelist(admin_client_, name):
    EmployeeFactory()
    response = admin_client_.get(reverse(f"admin:{name}_changelist") + "?q=a")
    assert response.status_code == 200


def test_admin_refuses_a_department_name_that_differs_only_in_case(admin_client_):
    DepartmentFactory(name="Sales")
    finance = DepartmentFactory(name="Finance")
    response = admin_client_.post(
        reverse("admin:registrar_department_change", args=[finance.pk]),
        {"name": "sales"},
    )
    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors
    assert _types() == []


def test_admin_adds_teams_through_the_service(admin_client_):
    department = DepartmentFactory()
    url = reverse("admin:registrar_team_add")
    response = admin_client_.post(url, {"name": "Core", "department": department.pk})
    assert response.status_code == 302
    response = admin_client_.post(url, {"name": "core", "department": department.pk})
    assert response.status_code == 200
    assert department.teams.count() == 1


@pytest.mark.parametrize(
    "name", ["registrar_employee", "registrar_department", "registrar_team"]
)
def test_admin_add_forms_render(admin_client_, name):
    assert admin_client_.get(reverse(f"admin:{name}_add")).status_code == 200
