from django.db import migrations, models


def deactivate_unbound_tokens(apps, schema_editor):
    """A token without a source prefix could send any source: switch it off
    until an admin binds it to one (and switches it on again)."""
    ServiceToken = apps.get_model("messaging", "ServiceToken")
    ServiceToken.objects.filter(source_prefix="").update(active=False)


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0002_dead_letter_store_and_service_tokens"),
    ]

    operations = [
        migrations.RunPython(deactivate_unbound_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="servicetoken",
            name="source_prefix",
            field=models.CharField(
                help_text="Events must have this source or one below it, by path segment: /hr-import admits /hr-import/eu, not /hr-importer.",
                max_length=200,
            ),
        ),
        migrations.AddField(
            model_name="servicetoken",
            name="event_types",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Event-type patterns this token may send (employee.*, thanks.sent, #); empty = any type.",
            ),
        ),
    ]
