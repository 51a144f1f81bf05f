"""Reads of the registrar shared by its pages, its API and the feed's pickers.

Each returns a lazy queryset (or one object) with what its callers render
already joined, so a page costs a fixed number of queries.
"""

from collections.abc import Callable
from typing import Any

from django.db.models import Count, Q, QuerySet

from portal.messaging.contracts import upcast_memo

from .models import Department, Employee, Team


def employee_search(
    *,
    query: str = "",
    department_id: int | None = None,
    team_id: int | None = None,
    onboarding: str | None = None,
) -> QuerySet[Employee]:
    """Employees by name, with their department, team and onboarding joined.

    ``query`` matches part of the name, email or position, ignoring case and
    surrounding spaces; the ids keep only one department's or one team's
    people; ``onboarding`` (``pending``, ``ready``, ``failed``) only those
    whose onboarding has that status. With no arguments: everyone.
    """
    employees = Employee.objects.select_related(
        "department", "team", "onboarding"
    ).order_by("full_name", "id")
    if query := query.strip():
        if "\x00" in query:
            # No stored text holds NUL, and PostgreSQL refuses to compare it.
            return employees.none()
        employees = employees.filter(
            Q(full_name__icontains=query)
            | Q(email__icontains=query)
            | Q(position__icontains=query)
        )
    if department_id is not None:
        employees = employees.filter(department_id=department_id)
    if team_id is not None:
        employees = employees.filter(team_id=team_id)
    if onboarding:
        employees = employees.filter(onboarding__status=onboarding)
    return employees


def employee_for_user(*, user) -> Employee | None:
    """The employee linked to ``user``'s login, or ``None`` (no link, or not
    logged in)."""
    if user is None or not user.is_authenticated:
        return None
    return Employee.objects.filter(user=user).first()


def employee_active_list(*, excluding: Employee | None = None) -> QuerySet[Employee]:
    """The people still at the company, by name: whom one can pick as a
    colleague. ``excluding`` leaves that person out (oneself)."""
    employees = Employee.objects.filter(is_active=True).order_by("full_name", "id")
    if excluding is not None:
        employees = employees.exclude(pk=excluding.pk)
    return employees


def department_list_with_counts() -> QuerySet[Department]:
    """Departments by name, each annotated with ``people`` (employees) and
    ``team_count``, in one query."""
    return Department.objects.annotate(
        people=Count("employees", distinct=True),
        team_count=Count("teams", distinct=True),
    ).order_by("name")


def department_name_list() -> QuerySet[Department, str]:
    """The department names, sorted: the choices of a department filter."""
    return Department.objects.order_by("name").values_list("name", flat=True)


def department_choice_list() -> QuerySet[Department, tuple[int, str]]:
    """(id, name) of every department, by name: the choices of a filter."""
    return Department.objects.order_by("name").values_list("pk", "name")


def team_list(*, department_id: int | None = None) -> QuerySet[Team]:
    """Teams by department name then name, with their department joined;
    ``department_id`` keeps only that department's."""
    teams = Team.objects.select_related("department").order_by(
        "department__name", "name"
    )
    if department_id is not None:
        teams = teams.filter(department_id=department_id)
    return teams


def employee_contact(*, employee_id: int) -> Employee | None:
    """The employee with that id and their department and team, or ``None``:
    what onboarding needs to welcome them and open their accounts."""
    return (
        Employee.objects.select_related("department", "team")
        .filter(pk=employee_id)
        .first()
    )


# --- Ids behind names, for the upcasters of v1 events (registrar/contracts.py).
# Inside a subscriber's batch the answers are remembered for that batch only
# (``upcast_batch``), so a batch of v1 events naming one department costs one
# query.


def _cached(kind: str, key: Any, find: Callable[[], int | None]) -> int | None:
    memo = upcast_memo()
    if memo is None:
        return find()
    if (kind, key) not in memo:
        memo[(kind, key)] = find()
    return memo[(kind, key)]


def department_id_named(name: str) -> int | None:
    """The id of the department called ``name`` now (ignoring case), or None."""
    return _cached(
        "department",
        name.strip().lower(),
        lambda: (
            Department.objects.filter(name__iexact=name.strip())
            .values_list("pk", flat=True)
            .first()
        ),
    )


def team_id_named(name: str, *, department_id: int) -> int | None:
    """The id of the team called ``name`` in that department, or None."""
    return _cached(
        "team",
        (department_id, name.strip().lower()),
        lambda: (
            Team.objects.filter(department_id=department_id, name__iexact=name.strip())
            .values_list("pk", flat=True)
            .first()
        ),
    )


def department_id_of_team(team_id: int) -> int | None:
    """The department a team belongs to (teams never move), or None."""
    return _cached(
        "team-department",
        team_id,
        lambda: (
            Team.objects.filter(pk=team_id)
            .values_list("department_id", flat=True)
            .first()
        ),
    )


def department_id_of_employee(employee_id: int) -> int | None:
    """The department an employee is in now, or None for an unknown id."""
    return _cached(
        "employee-department",
        employee_id,
        lambda: (
            Employee.objects.filter(pk=employee_id)
            .values_list("department_id", flat=True)
            .first()
        ),
    )
