from django import forms

from registrar.models import Employee
from registrar.selectors import employee_active_list

from .contracts import THANKS_MAX_LENGTH


class ThanksForm(forms.Form):
    to_employee = forms.ModelChoiceField(
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
        self.fields["to_employee"].queryset = employee_active_list(excluding=sender)
