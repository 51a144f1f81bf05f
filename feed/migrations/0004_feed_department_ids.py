"""Feed events are filtered by department id, which survives renames.

Existing rows are backfilled where the registrar can tell the department:
by the id an event carries (a rename), by the team's department, by the
people's department now (position changes, thanks) and by name (a
registration), the names including every earlier name of a department the
feed saw renamed. Rows it cannot place keep no department id.
"""

from django.db import migrations, models

CHUNK = 2000


def backfill_department_ids(apps, schema_editor):
    FeedEvent = apps.get_model("feed", "FeedEvent")
    Department = apps.get_model("registrar", "Department")
    Team = apps.get_model("registrar", "Team")
    Employee = apps.get_model("registrar", "Employee")

    by_name = {
        name.lower(): pk for pk, name in Department.objects.values_list("pk", "name")
    }
    renames = FeedEvent.objects.filter(type="department.renamed").order_by("-time")
    for data in renames.values_list("data", flat=True).iterator():
        department_id = data.get("department_id") if isinstance(data, dict) else None
        if isinstance(department_id, int):
            for key in ("old_name", "new_name"):
                name = data.get(key)
                if isinstance(name, str):
                    by_name.setdefault(name.lower(), department_id)
    team_department = dict(Team.objects.values_list("pk", "department_id"))
    employee_department = dict(Employee.objects.values_list("pk", "department_id"))

    def department_id(event_type, data):
        if not isinstance(data, dict):
            return None
        if isinstance(data.get("department_id"), int):
            return data["department_id"]
        if event_type == "employee.registered":
            name = data.get("department")
            return by_name.get(name.lower()) if isinstance(name, str) else None
        if event_type.startswith("team."):
            return team_department.get(data.get("team_id"))
        if event_type == "employee.position_changed":
            return employee_department.get(data.get("employee_id"))
        if event_type == "thanks.sent":
            return employee_department.get(data.get("to_employee_id"))
        return None

    pending = []
    rows = FeedEvent.objects.filter(department_id__isnull=True).only(
        "pk", "type", "data"
    )
    for event in rows.iterator(chunk_size=CHUNK):
        found = department_id(event.type, event.data)
        if found is not None:
            event.department_id = found
            pending.append(event)
        if len(pending) >= CHUNK:
            FeedEvent.objects.bulk_update(pending, ["department_id"])
            pending = []
    if pending:
        FeedEvent.objects.bulk_update(pending, ["department_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("feed", "0003_feed_indexes_for_reads"),
        ("registrar", "0003_roles"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="feedevent",
            name="feed_event_dept_time_idx",
        ),
        migrations.AddField(
            model_name="feedevent",
            name="department_id",
            field=models.BigIntegerField(
                blank=True,
                help_text="The registrar's department the event concerns (filters).",
                null=True,
                verbose_name="department id",
            ),
        ),
        migrations.AlterField(
            model_name="feedevent",
            name="department",
            field=models.CharField(
                blank=True,
                default="",
                help_text="The department's name when it happened (display only).",
                max_length=120,
            ),
        ),
        migrations.AddIndex(
            model_name="feedevent",
            index=models.Index(
                fields=["department_id", "-time", "-id"],
                name="feed_event_deptid_time_idx",
            ),
        ),
        migrations.RunPython(backfill_department_ids, migrations.RunPython.noop),
    ]
