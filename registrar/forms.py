from typing import Any

from django import forms

from .models import Department, Onboarding
from .selectors import team_list


class TeamSelect(forms.Select):
    """Team options that say their department (``data-department``), so the
    page shows only the chosen department's teams (static/portal/portal.js)."""

    def create_option(
        self,
        name: str,
        value: Any,
        label: int | str,
        selected: bool,
        index: int,
        subindex: int | None = None,
        attrs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        option = super().create_option(
            name, value, label, selected, index, subindex=subindex, attrs=attrs
        )
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-department"] = str(instance.department_id)
        return option


class EmployeeRegisterForm(forms.Form):
    full_name = forms.CharField(max_length=200, label="Full name")
    email = forms.EmailField()
    position = forms.CharField(max_length=120)
    department = forms.ModelChoiceField(queryset=Department.objects.all())
    team = forms.ModelChoiceField(
        queryset=team_list(),
        required=False,
        widget=TeamSelect,
        help_text="Optional; must belong to the department.",
    )
    hired_on = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


class EmployeeSearchForm(forms.Form):
    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(
            attrs={"placeholder": "Name, email or position", "type": "search"}
        ),
    )
    onboarding = forms.ChoiceField(
        required=False,
        label="Onboarding",
        choices=[("", "Any onboarding"), *Onboarding.Status.choices],
    )


class ChangePositionForm(forms.Form):
    position = forms.CharField(max_length=120, label="New position")


class MoveToTeamForm(forms.Form):
    team = forms.ModelChoiceField(
        queryset=team_list(),
        required=False,
        empty_label="No team",
        help_text="A team in another department moves the person there too.",
    )


class DepartmentRenameForm(forms.Form):
    name = forms.CharField(max_length=120, label="New name")
