from django.db import migrations, models


class Migration(migrations.Migration):
    """The log's unique index becomes (event_id, source), which also serves
    the look-up by id alone, and the separate event_id index goes: each
    routing UPDATE writes every index of the log again (it changes
    ``status``, which the pending index's condition reads), so one index
    fewer is less work on every row routed. The new constraint is added
    before the old one is dropped, so (source, id) stays unique throughout."""

    dependencies = [
        ("messaging", "0006_event_hop_runs"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="loggedevent",
            constraint=models.UniqueConstraint(
                fields=("event_id", "source"), name="outbox_unique_event_id_source"
            ),
        ),
        migrations.RemoveConstraint(
            model_name="loggedevent",
            name="outbox_unique_event_per_source",
        ),
        migrations.RemoveIndex(
            model_name="loggedevent",
            name="outbox_event_id_idx",
        ),
    ]
