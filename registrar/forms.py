from django import forms

from .models import Department, Team


class EmployeeRegisterForm(forms.Form):
    full_name = forms.CharField(max_length=200)
    email = forms.EmailField()
    position = forms.CharField(max_length=120)
    department = forms.ModelChoiceField(queryset=Department.objects.all())
    team = forms.ModelChoiceField(
        queryset=Team.objects.select_related("department"), required=False
    )
    hired_on = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
