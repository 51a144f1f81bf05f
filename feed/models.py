from django.db import models


class FeedEvent(models.Model):
    """One event on the company feed, applied at most once per (source, id)."""

    source = models.CharField(max_length=200)
    event_id = models.CharField("event id", max_length=200)
    type = models.CharField(max_length=100, db_index=True)
    time = models.DateTimeField(help_text="When it happened (the CloudEvent time).")
    data = models.JSONField()
    text = models.TextField(help_text="The sentence shown on the feed.")
    department = models.CharField(max_length=120, blank=True, default="", db_index=True)
    traceparent = models.CharField(max_length=55, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-time", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "event_id"], name="feed_event_unique_per_source"
            )
        ]
        indexes = [models.Index(fields=["-time", "-id"], name="feed_event_time_idx")]

    def __str__(self) -> str:
        return self.text
