"""Registrar pages, for HR only. Every change goes through the services; the
page says the feed will show it shortly and never waits for it."""

from urllib.parse import quote

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.roles import hr_required

from .forms import (
    ChangePositionForm,
    DepartmentRenameForm,
    EmployeeRegisterForm,
    EmployeeSearchForm,
    MoveToTeamForm,
)
from .models import Department, Employee
from .selectors import department_list_with_counts, employee_search
from .services import (
    RegistrarError,
    department_rename,
    employee_change_position,
    employee_move_to_team,
    employee_onboarding_retry,
    employee_register,
)

PER_PAGE = 25
SAVED = "will appear in the feed shortly"


def _show_error(form, error: RegistrarError) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


@hr_required
def employee_list(request):
    search = EmployeeSearchForm(request.GET or None)
    valid = search.is_valid()
    query = search.cleaned_data["q"].strip() if valid else ""
    onboarding = search.cleaned_data["onboarding"] if valid else ""
    employees = employee_search(query=query, onboarding=onboarding or None)
    page = Paginator(employees, PER_PAGE).get_page(request.GET.get("page"))
    filters = "&".join(
        f"{name}={value}"
        for name, value in (("q", quote(query)), ("onboarding", onboarding))
        if value
    )
    context = {
        "search": search,
        "page": page,
        "query": query,
        "onboarding": onboarding,
        "filters": f"{filters}&" if filters else "",
    }
    return render(request, "registrar/employee_list.html", context)


@hr_required
def employee_register_view(request):
    form = EmployeeRegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            employee = employee_register(**form.cleaned_data)
        except RegistrarError as error:
            _show_error(form, error)
        else:
            messages.success(
                request, f"Saved: {employee.full_name} was registered; {SAVED}."
            )
            return redirect(employee)
    return render(request, "registrar/employee_register.html", {"form": form})


@hr_required
def employee_detail(request, pk: int):
    employee = get_object_or_404(
        Employee.objects.select_related("department", "team", "user", "onboarding"),
        pk=pk,
    )
    return render(request, "registrar/employee_detail.html", {"employee": employee})


@require_POST
@hr_required
def employee_onboarding_retry_view(request, pk: int):
    employee = get_object_or_404(Employee, pk=pk)
    try:
        onboarding = employee_onboarding_retry(employee=employee)
    except RegistrarError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            f"Retrying {employee.full_name}'s onboarding (attempt "
            f"{onboarding.retries + 1}); the status updates by itself.",
        )
    return redirect(employee)


def _employee_change(request, pk, *, form_class, initial, apply, done, title):
    employee = get_object_or_404(
        Employee.objects.select_related("department", "team"), pk=pk
    )
    form = form_class(request.POST or None, initial=initial(employee))
    if request.method == "POST" and form.is_valid():
        try:
            employee = apply(employee, form.cleaned_data)
        except RegistrarError as error:
            _show_error(form, error)
        else:
            messages.success(request, f"Saved: {done(employee)}; {SAVED}.")
            return redirect(employee)
    context = {"employee": employee, "form": form, "title": title}
    return render(request, "registrar/employee_change.html", context)


@hr_required
def employee_change_position_view(request, pk: int):
    return _employee_change(
        request,
        pk,
        form_class=ChangePositionForm,
        initial=lambda e: {"position": e.position},
        apply=lambda e, data: employee_change_position(
            employee=e, position=data["position"]
        ),
        done=lambda e: f"{e.full_name} is now {e.position}",
        title="Change position",
    )


@hr_required
def employee_move_view(request, pk: int):
    return _employee_change(
        request,
        pk,
        form_class=MoveToTeamForm,
        initial=lambda e: {"team": e.team_id},
        apply=lambda e, data: employee_move_to_team(employee=e, team=data["team"]),
        done=lambda e: f"{e.full_name} moved to {e.team.name if e.team else 'no team'}",
        title="Move to team",
    )


@hr_required
def department_list(request):
    departments = department_list_with_counts()
    return render(
        request, "registrar/department_list.html", {"departments": departments}
    )


@hr_required
def department_rename_view(request, pk: int):
    department = get_object_or_404(Department, pk=pk)
    form = DepartmentRenameForm(request.POST or None, initial={"name": department.name})
    if request.method == "POST" and form.is_valid():
        old_name = department.name
        try:
            department = department_rename(
                department=department, name=form.cleaned_data["name"]
            )
        except RegistrarError as error:
            _show_error(form, error)
        else:
            messages.success(
                request, f"Saved: {old_name} is now {department.name}; {SAVED}."
            )
            return redirect("registrar:department_list")
    context = {"department": department, "form": form}
    return render(request, "registrar/department_rename.html", context)
