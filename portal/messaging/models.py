from django.db import models


class OutboxMessage(models.Model):
    """An event written in the same transaction as the change it describes.

    Rows are published to RabbitMQ after commit (fast path) or by the relay,
    and marked ``SENT`` only once the broker confirmed them.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"

    event_id = models.CharField(max_length=200)
    source = models.CharField(max_length=200)
    type = models.CharField(max_length=100)
    routing_key = models.CharField(max_length=200)
    envelope = models.JSONField(help_text="The CloudEvents 1.0 envelope, as sent.")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "event_id"], name="outbox_unique_event_per_source"
            )
        ]
        indexes = [
            # The relay only ever scans pending rows, oldest first.
            models.Index(
                fields=["id"],
                name="outbox_pending_idx",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id} ({self.status})"


class DeadLetter(models.Model):
    """A message that can never be processed, kept with why (the dead-letter store)."""

    reason = models.CharField(max_length=100, db_index=True)
    error = models.TextField(blank=True, default="")
    event_type = models.CharField(max_length=100, blank=True, default="")
    source = models.CharField(max_length=200, blank=True, default="")
    event_id = models.CharField(max_length=200, blank=True, default="")
    body = models.TextField(help_text="The message body as received.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.reason}: {self.event_type or '?'} {self.event_id or ''}".strip()
