from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, redirect, render

from .forms import EmployeeRegisterForm
from .models import Employee
from .services import RegistrarError, employee_register


def _show_error(form, error: RegistrarError) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


@login_required
@permission_required("registrar.add_employee", raise_exception=True)
def employee_register_view(request):
    form = EmployeeRegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            employee = employee_register(**form.cleaned_data)
        except RegistrarError as error:
            _show_error(form, error)
        else:
            messages.success(
                request,
                f"{employee.full_name} was registered. "
                "The news will appear in the feed shortly.",
            )
            return redirect(employee)
    return render(request, "registrar/employee_register.html", {"form": form})


@login_required
@permission_required("registrar.view_employee", raise_exception=True)
def employee_detail(request, pk: int):
    employee = get_object_or_404(
        Employee.objects.select_related("department", "team"), pk=pk
    )
    return render(request, "registrar/employee_detail.html", {"employee": employee})
