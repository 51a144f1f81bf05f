"""Employees, departments and teams over the API: reads for staff members,
writes for HR through the registrar services (so each write emits its event)."""

import pytest

from portal.messaging.models import LoggedEvent
from registrar.models import Department, Employee
from tests.factories import DepartmentFactory, EmployeeFactory, TeamFactory

pytestmark = pytest.mark.django_db


def outbox_types() -> list[str]:
    return list(LoggedEvent.objects.order_by("id").values_list("type", flat=True))


# --- Reads ---------------------------------------------------------------------


def test_employee_list_is_paginated_and_sorted_by_name(staff_client):
    team = TeamFactory(name="Core", department__name="Platform")
    EmployeeFactory(full_name="Olga Smirnova", department=team.department, team=team)
    EmployeeFactory(full_name="Anna Petrova", department=team.department)
    response = staff_client.get("/api/employees/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [e["full_name"] for e in body["results"]] == [
        "Anna Petrova",
        "Olga Smirnova",
    ]
    olga = body["results"][1]
    assert olga["department"] == {"id": team.department.pk, "name": "Platform"}
    assert olga["team"] == {"id": team.pk, "name": "Core"}
    assert body["results"][0]["team"] is None


def test_employee_list_search_and_filters(staff_client):
    platform = TeamFactory(name="Core", department__name="Platform")
    finance = DepartmentFactory(name="Finance")
    anna = EmployeeFactory(
        full_name="Anna Petrova",
        position="Backend Engineer",
        department=platform.department,
        team=platform,
    )
    olga = EmployeeFactory(full_name="Olga Smirnova", department=finance)

    def names(query: str) -> list[str]:
        response = staff_client.get(f"/api/employees/?{query}")
        assert response.status_code == 200, response.json()
        return [e["full_name"] for e in response.json()["results"]]

    assert names("search=backend") == [anna.full_name]
    assert names("search=SMIRN") == [olga.full_name]
    assert names(f"department={finance.pk}") == [olga.full_name]
    assert names(f"team={platform.pk}") == [anna.full_name]
    assert names("search=nobody-like-this") == []
    assert names("team=99999999999999999999999") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("department=abc", "department"),
        ("team=-1", "team"),
        ("search=%00", "search"),
    ],
)
def test_employee_list_refuses_bad_filters(staff_client, query, field):
    response = staff_client.get(f"/api/employees/?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_employee_retrieve_and_unknown_id(staff_client):
    employee = EmployeeFactory(full_name="Anna Petrova")
    response = staff_client.get(f"/api/employees/{employee.pk}/")
    assert response.status_code == 200
    assert response.json()["full_name"] == "Anna Petrova"
    assert response.json()["email"] == employee.email
    for bad in (employee.pk + 1000, "abc", 10**25):
        response = staff_client.get(f"/api/employees/{bad}/")
        assert response.status_code == 404
        assert "detail" in response.json()


def test_department_and_team_lists(staff_client):
    core = TeamFactory(name="Core", department__name="Platform")
    TeamFactory(name="Payroll", department__name="Finance")
    departments = staff_client.get("/api/departments/").json()
    assert [d["name"] for d in departments] == ["Finance", "Platform"]
    teams = staff_client.get("/api/teams/").json()
    assert [(t["name"], t["department"]["name"]) for t in teams] == [
        ("Payroll", "Finance"),
        ("Core", "Platform"),
    ]
    only = staff_client.get(f"/api/teams/?department={core.department.pk}").json()
    assert [t["name"] for t in only] == ["Core"]
    assert staff_client.get("/api/teams/?department=x").status_code == 400
    detail = staff_client.get(f"/api/departments/{core.department.pk}/")
    assert detail.json()["name"] == "Platform"
    assert staff_client.get(f"/api/teams/{core.pk}/").json()["name"] == "Core"


# --- Register ------------------------------------------------------------------


def test_hr_registers_an_employee_and_its_event_is_in_the_outbox(hr_client):
    team = TeamFactory(name="Core", department__name="Platform")
    response = hr_client.post(
        "/api/employees/",
        {
            "full_name": "Anna Petrova",
            "email": "Anna@Example.com",
            "position": "Backend Engineer",
            "department": team.department.pk,
            "team": team.pk,
            "hired_on": "2026-11-02",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    employee = Employee.objects.get()
    assert body["id"] == employee.pk
    assert body["email"] == "anna@example.com"
    assert body["team"] == {"id": team.pk, "name": "Core"}
    assert body["hired_on"] == "2026-11-02"
    assert outbox_types() == ["employee.registered"]
    row = LoggedEvent.objects.get()
    assert row.envelope["data"]["full_name"] == "Anna Petrova"


def test_register_without_a_team(hr_client):
    department = DepartmentFactory()
    response = hr_client.post(
        "/api/employees/",
        {
            "full_name": "Anna Petrova",
            "email": "anna@example.com",
            "position": "Analyst",
            "department": department.pk,
            "team": None,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["team"] is None


def _register_body(**overrides):
    body = {
        "full_name": "Anna Petrova",
        "email": "anna@example.com",
        "position": "Backend Engineer",
        "department": Department.objects.get_or_create(name="Platform")[0].pk,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"full_name": ...}, "full_name"),
        ({"full_name": ""}, "full_name"),
        ({"full_name": "   "}, "full_name"),
        ({"full_name": "x" * 201}, "full_name"),
        ({"full_name": 42}, "full_name"),
        ({"department": "1"}, "department"),
        ({"full_name": ["Anna"]}, "full_name"),
        ({"full_name": "Anna\x00Petrova"}, "full_name"),
        ({"email": "not-an-email"}, "email"),
        ({"email": None}, "email"),
        ({"position": "p" * 121}, "position"),
        ({"department": 999999}, "department"),
        ({"department": "Platform"}, "department"),
        ({"department": 10**30}, "department"),
        ({"department": True}, "department"),
        ({"team": 999999}, "team"),
        ({"hired_on": "yesterday"}, "hired_on"),
        ({"salary": 100}, "salary"),
    ],
)
def test_register_validation_errors_name_the_field(hr_client, overrides, field):
    response = hr_client.post(
        "/api/employees/", _register_body(**overrides), format="json"
    )
    assert response.status_code == 400
    errors = response.json()
    assert field in errors, errors
    assert isinstance(errors[field], list)
    assert errors[field]
    assert isinstance(errors[field][0], str)
    assert not Employee.objects.exists()
    assert not LoggedEvent.objects.exists()


def test_register_refusals_of_the_registrar_become_field_errors(hr_client):
    EmployeeFactory(email="anna@example.com")
    other_team = TeamFactory(name="Elsewhere")
    duplicate = hr_client.post(
        "/api/employees/", _register_body(email="ANNA@example.com"), format="json"
    )
    assert duplicate.status_code == 400
    assert duplicate.json() == {"email": ["anna@example.com is already registered."]}
    wrong_team = hr_client.post(
        "/api/employees/",
        _register_body(email="new@example.com", team=other_team.pk),
        format="json",
    )
    assert wrong_team.status_code == 400
    assert list(wrong_team.json()) == ["team"]
    assert "not in department" in wrong_team.json()["team"][0]
    assert Employee.objects.count() == 1
    assert not LoggedEvent.objects.exists()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"full_name": "Anna",', "application/json"),
        ("[1, 2, 3]", "application/json"),
        ('"just a string"', "application/json"),
        ("null", "application/json"),
        ("full_name=Anna", "application/x-www-form-urlencoded"),
        ("\xff\xfe", "application/json"),
    ],
)
def test_register_refuses_malformed_bodies_with_json(hr_client, body, content_type):
    response = hr_client.generic(
        "POST", "/api/employees/", body.encode("latin-1"), content_type=content_type
    )
    assert response.status_code in (400, 415)
    assert response["Content-Type"].startswith("application/json")
    assert response.json()
    assert not Employee.objects.exists()


# --- Update ----------------------------------------------------------------------


def test_hr_changes_position_and_moves_team_in_one_request(hr_client):
    old = TeamFactory(name="Old", department__name="Platform")
    new = TeamFactory(name="New", department__name="Finance")
    employee = EmployeeFactory(team=old, department=old.department, position="Dev")
    response = hr_client.patch(
        f"/api/employees/{employee.pk}/",
        {"position": "Lead", "team": new.pk},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["position"] == "Lead"
    assert body["team"] == {"id": new.pk, "name": "New"}
    assert body["department"]["name"] == "Finance"
    assert outbox_types() == [
        "employee.position_changed",
        "team.member_left",
        "team.member_joined",
    ]


def test_hr_moves_an_employee_out_of_any_team(hr_client):
    team = TeamFactory()
    employee = EmployeeFactory(team=team, department=team.department)
    response = hr_client.patch(
        f"/api/employees/{employee.pk}/", {"team": None}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["team"] is None
    assert outbox_types() == ["team.member_left"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "non_field_errors"),
        ({"position": ""}, "position"),
        ({"position": "p" * 121}, "position"),
        ({"team": "Core"}, "team"),
        ({"team": 999999}, "team"),
        ({"full_name": "New Name"}, "full_name"),
        ({"position": "Lead", "email": "x@example.com"}, "email"),
    ],
)
def test_update_validation_errors_change_nothing(hr_client, body, field):
    employee = EmployeeFactory(position="Dev", full_name="Anna Petrova")
    response = hr_client.patch(f"/api/employees/{employee.pk}/", body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    employee.refresh_from_db()
    assert (employee.position, employee.full_name) == ("Dev", "Anna Petrova")
    assert not LoggedEvent.objects.exists()


def test_update_of_an_unknown_employee_is_404(hr_client):
    response = hr_client.patch("/api/employees/999999/", {"position": "Lead"})
    assert response.status_code == 404
    assert "detail" in response.json()


def test_put_and_delete_are_not_offered(hr_client):
    employee = EmployeeFactory()
    assert hr_client.put(f"/api/employees/{employee.pk}/", {}).status_code == 405
    assert hr_client.delete(f"/api/employees/{employee.pk}/").status_code == 405
    assert Employee.objects.filter(pk=employee.pk).exists()


# --- Departments ------------------------------------------------------------------


def test_hr_renames_a_department(hr_client):
    department = DepartmentFactory(name="Finance")
    response = hr_client.patch(
        f"/api/departments/{department.pk}/",
        {"name": "Finance & Accounting"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Finance & Accounting"
    assert outbox_types() == ["department.renamed"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": "Platform"}, {"name": ["A department named 'Platform' exists."]}),
        ({"name": ""}, None),
        ({"name": "n" * 121}, None),
        ({}, None),
        ({"name": {"x": 1}}, None),
    ],
)
def test_department_rename_errors(hr_client, body, expected):
    DepartmentFactory(name="Platform")
    finance = DepartmentFactory(name="Finance")
    response = hr_client.patch(f"/api/departments/{finance.pk}/", body, format="json")
    assert response.status_code == 400
    assert "name" in response.json()
    if expected is not None:
        assert response.json() == expected
    finance.refresh_from_db()
    assert finance.name == "Finance"
    assert not LoggedEvent.objects.exists()
