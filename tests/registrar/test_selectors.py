"""Registrar reads shared by the pages, the API and the feed's pickers."""

import pytest
from django.contrib.auth.models import AnonymousUser

from registrar.selectors import (
    department_list_with_counts,
    department_name_list,
    employee_active_list,
    employee_for_user,
    employee_search,
    team_list,
)
from tests.factories import DepartmentFactory, EmployeeFactory, TeamFactory
from tests.web.factories import UserFactory

pytestmark = pytest.mark.django_db


def names(employees) -> list[str]:
    return [e.full_name for e in employees]


def test_employee_search_matches_name_email_or_position_ignoring_case():
    anna = EmployeeFactory(
        full_name="Anna Petrova", email="anna@corp.example", position="Backend"
    )
    olga = EmployeeFactory(
        full_name="Olga Smirnova", email="olga@example.com", position="Designer"
    )
    assert names(employee_search(query="SMIRN")) == [olga.full_name]
    assert names(employee_search(query="corp.exam")) == [anna.full_name]
    assert names(employee_search(query="backend")) == [anna.full_name]
    assert names(employee_search(query="  design  ")) == [olga.full_name]
    assert names(employee_search(query="nobody-like-this")) == []


def test_employee_search_without_arguments_is_everyone_sorted_by_name():
    for name in ("Zoe Adams", "Anna Petrova", "Mia Brown"):
        EmployeeFactory(full_name=name)
    assert names(employee_search()) == ["Anna Petrova", "Mia Brown", "Zoe Adams"]
    assert names(employee_search(query="   ")) == names(employee_search())


def test_employee_search_with_nul_finds_nobody_instead_of_failing():
    EmployeeFactory(full_name="Anna Petrova")
    assert list(employee_search(query="An\x00na")) == []


def test_employee_search_filters_by_department_and_team_together_with_the_query():
    core = TeamFactory(name="Core", department__name="Platform")
    finance = DepartmentFactory(name="Finance")
    anna = EmployeeFactory(
        full_name="Anna Petrova", department=core.department, team=core
    )
    EmployeeFactory(full_name="Anna Ivanova", department=finance)
    EmployeeFactory(full_name="Petr Sidorov", department=core.department)
    assert names(employee_search(department_id=finance.pk)) == ["Anna Ivanova"]
    assert names(employee_search(team_id=core.pk)) == [anna.full_name]
    assert names(employee_search(query="anna", department_id=core.department.pk)) == [
        anna.full_name
    ]
    assert names(employee_search(query="petr", team_id=core.pk)) == [anna.full_name]


def test_employee_search_joins_department_and_team(django_assert_num_queries):
    core = TeamFactory(name="Core")
    for i in range(5):
        EmployeeFactory(department=core.department, team=core if i % 2 else None)
    with django_assert_num_queries(1):
        rows = [(e.department.name, e.team and e.team.name) for e in employee_search()]
    assert len(rows) == 5


def test_employee_for_user_is_the_linked_employee_or_none():
    user = UserFactory()
    assert employee_for_user(user=user) is None
    anna = EmployeeFactory(user=user)
    EmployeeFactory(user=UserFactory())
    assert employee_for_user(user=user) == anna
    assert employee_for_user(user=AnonymousUser()) is None
    assert employee_for_user(user=None) is None


def test_employee_active_list_leaves_out_who_left_and_the_excluded_person():
    anna = EmployeeFactory(full_name="Anna Petrova")
    olga = EmployeeFactory(full_name="Olga Smirnova")
    EmployeeFactory(full_name="Ivan Gone", is_active=False)
    assert list(employee_active_list()) == [anna, olga]
    assert list(employee_active_list(excluding=anna)) == [olga]


def test_departments_are_listed_with_people_and_team_counts(
    django_assert_num_queries,
):
    platform = DepartmentFactory(name="Platform")
    core, api = TeamFactory(department=platform), TeamFactory(department=platform)
    EmployeeFactory(department=platform, team=core)
    EmployeeFactory(department=platform, team=core)
    EmployeeFactory(department=platform, team=api)
    DepartmentFactory(name="Finance")
    with django_assert_num_queries(1):
        counts = [
            (d.name, d.people, d.team_count) for d in department_list_with_counts()
        ]
    # distinct counts: joining teams must not multiply the people, nor the reverse
    assert counts == [("Finance", 0, 0), ("Platform", 3, 2)]


def test_department_name_list_is_the_sorted_names():
    for name in ("Sales", "Finance", "Platform"):
        DepartmentFactory(name=name)
    assert list(department_name_list()) == ["Finance", "Platform", "Sales"]


def test_team_list_is_sorted_by_department_then_name_and_filters(
    django_assert_num_queries,
):
    platform = DepartmentFactory(name="Platform")
    finance = DepartmentFactory(name="Finance")
    TeamFactory(name="Core", department=platform)
    TeamFactory(name="API", department=platform)
    TeamFactory(name="Payroll", department=finance)
    with django_assert_num_queries(1):
        teams = [(t.department.name, t.name) for t in team_list()]
    assert teams == [("Finance", "Payroll"), ("Platform", "API"), ("Platform", "Core")]
    only = team_list(department_id=platform.pk)
    assert [t.name for t in only] == ["API", "Core"]
