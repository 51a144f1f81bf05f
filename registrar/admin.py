"""Admin for the registrar. Adds and changes go through the registrar
services, so they emit events to the feed like the HR pages do."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.utils.html import format_html

from .models import Department, Employee, Onboarding, Team
from .services import (
    RegistrarError,
    department_create,
    department_rename,
    employee_change_position,
    employee_link_user,
    employee_move_to_team,
    employee_onboarding_retry,
    employee_register,
    team_create,
)


def _copy(target, source) -> None:
    """Give the admin's unsaved instance the saved row's state (pk included),
    so its success message and redirect point at the right object."""
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db


class EmployeeAdminForm(forms.ModelForm):
    class Meta:
        model = Employee
        fields = ["full_name", "email", "position", "department", "team", "user"]

    def clean(self):
        # The rules the services enforce, checked first so the admin shows
        # them as form errors; the services check again when saving.
        super().clean()
        data = self.cleaned_data
        team, department = data.get("team"), data.get("department")
        adding = self.instance.pk is None
        if adding and team and department and team.department_id != department.pk:
            self.add_error("team", f"{team.name} is not in {department.name}.")
        user = data.get("user")
        if user is not None:
            taken = Employee.objects.filter(user=user).exclude(pk=self.instance.pk)
            if taken.exists():
                self.add_error("user", f"{user} is already linked to {taken.first()}.")
        email = data.get("email")
        if adding and email and Employee.objects.filter(email__iexact=email).exists():
            self.add_error("email", f"{email} is already registered.")
        return data


class DepartmentAdminForm(forms.ModelForm):
    class Meta:
        model = Department
        fields = ["name"]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        others = Department.objects.exclude(pk=self.instance.pk)
        if others.filter(name__iexact=name).exists():
            raise forms.ValidationError(f"A department named {name!r} exists.")
        return name


class TeamAdminForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name", "department"]

    def clean(self):
        super().clean()
        data = self.cleaned_data
        name, department = data.get("name"), data.get("department")
        if name and department and department.teams.filter(name__iexact=name).exists():
            self.add_error("name", f"{department} already has a team named {name!r}.")
        return data


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    form = DepartmentAdminForm
    list_display = ["name", "employee_count", "team_count", "created_at"]
    search_fields = ["name"]
    fields = ["name"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                employee_count=Count("employees", distinct=True),
                team_count=Count("teams", distinct=True),
            )
        )

    @admin.display(ordering="employee_count", description="people")
    def employee_count(self, obj):
        return obj.employee_count

    @admin.display(ordering="team_count", description="teams")
    def team_count(self, obj):
        return obj.team_count

    def save_model(self, request, obj, form, change):
        if change:
            saved = department_rename(
                department=Department.objects.get(pk=obj.pk), name=obj.name
            )
        else:
            saved = department_create(name=obj.name)
        _copy(obj, saved)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    form = TeamAdminForm
    list_display = ["name", "department", "member_count", "created_at"]
    list_filter = ["department"]
    search_fields = ["name", "department__name"]
    list_select_related = ["department"]
    fields = ["name", "department"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(ordering="member_count", description="members")
    def member_count(self, obj):
        return obj.member_count

    def get_readonly_fields(self, request, obj=None):
        # Renaming or moving a team has no event (and no service) yet.
        return ["name", "department"] if obj else []

    def save_model(self, request, obj, form, change):
        if not change:
            _copy(obj, team_create(name=obj.name, department=obj.department))

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    form = EmployeeAdminForm
    list_display = [
        "full_name",
        "email",
        "position",
        "department",
        "team",
        "user",
        "hired_on",
        "is_active",
        "onboarding_status",
    ]
    list_filter = ["department", "team", "is_active", "hired_on", "onboarding__status"]
    search_fields = ["full_name", "email", "position"]
    list_select_related = ["department", "team", "user", "onboarding"]
    actions = ["retry_onboarding"]

    @admin.display(description="onboarding", ordering="onboarding__status")
    def onboarding_status(self, obj):
        onboarding = getattr(obj, "onboarding", None)
        return onboarding.get_status_display() if onboarding else "—"

    @admin.action(description="Retry the failed onboarding steps")
    def retry_onboarding(self, request, queryset):
        _retry_onboarding(self, request, queryset)

    autocomplete_fields = ["user"]
    date_hierarchy = "hired_on"

    def get_readonly_fields(self, request, obj=None):
        # Name, email and department have no change service (the department
        # follows the team); they are set at registration.
        return ["full_name", "email", "department"] if obj else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if not change:
                saved = employee_register(
                    full_name=data["full_name"],
                    email=data["email"],
                    position=data["position"],
                    department=data["department"],
                    team=data.get("team"),
                )
            else:
                saved = Employee.objects.get(pk=obj.pk)
                if "position" in form.changed_data:
                    saved = employee_change_position(
                        employee=saved, position=data["position"]
                    )
                if "team" in form.changed_data:
                    saved = employee_move_to_team(employee=saved, team=data["team"])
            if "user" in form.changed_data or (not change and data.get("user")):
                saved = employee_link_user(employee=saved, user=data.get("user"))
        except RegistrarError as error:
            # Only a race with another change gets here; the form checked first.
            messages.error(request, error.message)
            raise
        _copy(obj, saved)

    def has_delete_permission(self, request, obj=None):
        return False


def _retry_onboarding(model_admin, request, employees) -> None:
    retried = 0
    for employee in employees:
        try:
            employee_onboarding_retry(employee=employee)
        except RegistrarError as error:
            model_admin.message_user(request, error.message, messages.WARNING)
        else:
            retried += 1
    if retried:
        model_admin.message_user(
            request, f"Retrying the onboarding of {retried} employee(s)."
        )


@admin.register(Onboarding)
class OnboardingAdmin(admin.ModelAdmin):
    """Read-only: the status comes from onboarding's replies; HR's action is
    the retry."""

    list_display = [
        "employee",
        "status",
        "welcome_sent_at",
        "account_id",
        "failed_steps",
        "retries",
        "created_at",
        "journey",
    ]
    list_filter = ["status"]
    search_fields = ["employee__full_name", "employee__email", "registration_event_id"]
    list_select_related = ["employee"]
    actions = ["retry_onboarding"]

    @admin.display(description="journey")
    def journey(self, obj):
        return format_html('<a href="{}">registration</a>', obj.journey_href)

    @admin.display(description="failed")
    def failed_steps(self, obj):
        return "; ".join(f"{step}: {why}" for step, why in obj.failures.items()) or "—"

    @admin.action(description="Retry the failed onboarding steps")
    def retry_onboarding(self, request, queryset):
        _retry_onboarding(
            self,
            request,
            Employee.objects.filter(pk__in=queryset.values("employee_id")),
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
