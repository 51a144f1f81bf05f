"""Reads of the registrar shared by its pages, its API and the feed's pickers.

Each returns a lazy queryset (or one object) with what its callers render
already joined, so a page costs a fixed number of queries.
"""

from django.db.models import Count, Q, QuerySet

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


def department_name_list() -> QuerySet[str]:
    """The department names, sorted: the choices of a department filter."""
    return Department.objects.order_by("name").values_list("name", flat=True)


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
