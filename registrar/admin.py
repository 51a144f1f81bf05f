from django.contrib import admin

from .models import Department, Employee, Team


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "department"]
    list_filter = ["department"]
    search_fields = ["name"]


@admin.register(Employee)
class EmployeeAdmin(admin.ModelAdmin):
    list_display = ["full_name", "email", "position", "department", "team", "is_active"]
    list_filter = ["department", "is_active"]
    search_fields = ["full_name", "email"]
    list_select_related = ["department", "team"]
    # Changes must go through the registrar services so they emit events.
    readonly_fields = [
        "full_name",
        "email",
        "position",
        "department",
        "team",
        "hired_on",
    ]

    def has_add_permission(self, request):
        return False
