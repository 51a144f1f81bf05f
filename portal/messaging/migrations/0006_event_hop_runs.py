from django.db import migrations, models


class Migration(migrations.Migration):
    """A journey hop covers a run of log ids (log_id … log_id_last); the
    rows written before cover one event each."""

    dependencies = [
        ("messaging", "0005_event_journey_and_relay_heartbeat"),
    ]

    operations = [
        migrations.AddField(
            model_name="eventhop",
            name="log_id_last",
            field=models.BigIntegerField(
                default=0,
                help_text="The last log id of the run (equal to log_id for one event).",
            ),
            preserve_default=False,
        ),
        migrations.RunSQL(
            "UPDATE messaging_eventhop SET log_id_last = log_id",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="eventhop",
            name="log_id",
            field=models.BigIntegerField(
                db_index=True, help_text="The first log id of the run."
            ),
        ),
    ]
