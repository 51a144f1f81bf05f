from typing import cast

from django import forms
from django.db.models import Count, F, Window

from registrar.models import Employee
from registrar.selectors import employee_active_list

from .contracts import THANKS_MAX_LENGTH


class ColleagueChoiceField(forms.ModelChoiceField):
    """Colleagues by name and department; namesakes also by email."""

    def label_from_instance(self, obj: Employee) -> str:
        label = f"{obj.full_name} — {obj.department.name}"
        if getattr(obj, "namesakes", 1) > 1:
            label += f", {obj.email}"
        return label


class ThanksForm(forms.Form):
    to_employee = ColleagueChoiceField(
        queryset=Employee.objects.none(), label="Colleague", empty_label="Choose…"
    )
    message = forms.CharField(
        max_length=THANKS_MAX_LENGTH,
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": "Thank you for…", "maxlength": 500}
        ),
    )

    def __init__(self, *args, sender: Employee, **kwargs):
        super().__init__(*args, **kwargs)
        # How many share each name, in the same query as the choices.
        cast(ColleagueChoiceField, self.fields["to_employee"]).queryset = (
            employee_active_list(excluding=sender)
            .select_related("department")
            .annotate(namesakes=Window(Count("id"), partition_by=[F("full_name")]))
        )
