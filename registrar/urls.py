from django.urls import path

from . import views

app_name = "registrar"
urlpatterns = [
    path("", views.employee_list, name="employee_list"),
    path("employees/new/", views.employee_register_view, name="employee_register"),
    path("employees/<int:pk>/", views.employee_detail, name="employee_detail"),
    path(
        "employees/<int:pk>/position/",
        views.employee_change_position_view,
        name="employee_change_position",
    ),
    path("employees/<int:pk>/team/", views.employee_move_view, name="employee_move"),
    path(
        "employees/<int:pk>/onboarding/retry/",
        views.employee_onboarding_retry_view,
        name="employee_onboarding_retry",
    ),
    path("departments/", views.department_list, name="department_list"),
    path(
        "departments/<int:pk>/rename/",
        views.department_rename_view,
        name="department_rename",
    ),
]
