from django.urls import path

from . import views

app_name = "registrar"
urlpatterns = [
    path("employees/new/", views.employee_register_view, name="employee_register"),
    path("employees/<int:pk>/", views.employee_detail, name="employee_detail"),
]
