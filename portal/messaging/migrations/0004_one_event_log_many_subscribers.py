from django.db import migrations, models
from django.db.models import Q


def route_pending_rows_to_the_feed(apps, schema_editor):
    """Rows pending before subscribers existed were owed to the feed alone;
    events the portal did not write itself came in over HTTP."""
    LoggedEvent = apps.get_model("messaging", "LoggedEvent")
    LoggedEvent.objects.filter(status="pending").update(undelivered=["feed"])
    LoggedEvent.objects.exclude(
        Q(source="/portal") | Q(source__startswith="/portal/")
    ).update(origin="http")
    DeadLetter = apps.get_model("messaging", "DeadLetter")
    DeadLetter.objects.filter(queue="feed").update(subscriber="feed")


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0003_service_tokens_bound_to_sources"),
    ]

    operations = [
        migrations.RenameModel(old_name="OutboxMessage", new_name="LoggedEvent"),
        migrations.RemoveField(model_name="loggedevent", name="routing_key"),
        migrations.AddField(
            model_name="loggedevent",
            name="origin",
            field=models.CharField(
                choices=[
                    ("portal", "The portal's own"),
                    ("http", "POST /api/events/"),
                    ("amqp", "AMQP portal.events"),
                ],
                default="portal",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="loggedevent",
            name="undelivered",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Destinations still owed this event: subscriber names, and 'broadcast' for the portal.broadcast exchange.",
            ),
        ),
        migrations.AlterField(
            model_name="loggedevent",
            name="published_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the last destination confirmed it.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="deadletter",
            name="subscriber",
            field=models.CharField(
                blank=True,
                db_index=True,
                default="",
                help_text="The subscriber that gave up on it; requeue goes back to that subscriber only. Empty for what failed on the way in.",
                max_length=100,
            ),
        ),
        migrations.CreateModel(
            name="ProcessedEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("subscriber", models.CharField(max_length=100)),
                ("source", models.CharField(max_length=200)),
                ("event_id", models.CharField(max_length=200)),
                ("processed_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("subscriber", "source", "event_id"),
                        name="processed_event_once_per_subscriber",
                    )
                ],
            },
        ),
        migrations.RunPython(route_pending_rows_to_the_feed, migrations.RunPython.noop),
    ]
