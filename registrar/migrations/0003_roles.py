"""The portal's roles as groups: HR (registrar actions) and Staff (feed)."""

from django.db import migrations

ROLES = {
    "HR": [
        ("registrar", "add_employee"),
        ("registrar", "change_employee"),
        ("registrar", "view_employee"),
        ("registrar", "add_department"),
        ("registrar", "change_department"),
        ("registrar", "view_department"),
        ("registrar", "add_team"),
        ("registrar", "change_team"),
        ("registrar", "view_team"),
        ("feed", "view_feedevent"),
        ("feed", "add_reaction"),
        ("feed", "delete_reaction"),
        ("feed", "add_thanks"),
    ],
    "Staff": [
        ("registrar", "view_employee"),
        ("registrar", "view_department"),
        ("registrar", "view_team"),
        ("feed", "view_feedevent"),
        ("feed", "add_reaction"),
        ("feed", "delete_reaction"),
        ("feed", "add_thanks"),
    ],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure the
    # ones the roles need exist now.
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in perms:
            group.permissions.add(
                Permission.objects.get(
                    content_type__app_label=app_label, codename=codename
                )
            )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("registrar", "0002_employee_user"),
        ("feed", "0002_reactions_thanks"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
