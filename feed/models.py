from django.conf import settings
from django.db import models


class FeedEvent(models.Model):
    """One event on the company feed, applied at most once per (source, id)."""

    source = models.CharField(max_length=200)
    event_id = models.CharField("event id", max_length=200)
    type = models.CharField(max_length=100)
    time = models.DateTimeField(help_text="When it happened (the CloudEvent time).")
    data = models.JSONField()
    text = models.TextField(help_text="The sentence shown on the feed.")
    department = models.CharField(
        max_length=120,
        blank=True,
        default="",
        help_text="The department's name when it happened (display only).",
    )
    department_id = models.BigIntegerField(
        "department id",
        null=True,
        blank=True,
        help_text="The registrar's department the event concerns (filters).",
    )
    employee_id = models.BigIntegerField(
        "employee id",
        null=True,
        blank=True,
        help_text="Whom the event is about (the one thanked): their profile.",
    )
    from_employee_id = models.BigIntegerField(
        "from employee id",
        null=True,
        blank=True,
        help_text="Who sent the thanks: on their profile too.",
    )
    traceparent = models.CharField(max_length=55, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-time", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "event_id"], name="feed_event_unique_per_source"
            )
        ]
        # Every index costs each insert: these are the ones the reads use.
        # A page, filtered or not, walks one of the first three in order and
        # stops at its LIMIT; polling for arrivals uses the id and this
        # received_at index.
        indexes = [
            models.Index(fields=["-time", "-id"], name="feed_event_time_idx"),
            models.Index(
                fields=["type", "-time", "-id"], name="feed_event_type_time_idx"
            ),
            models.Index(
                fields=["department_id", "-time", "-id"],
                name="feed_event_deptid_time_idx",
            ),
            models.Index(fields=["received_at"], name="feed_event_received_idx"),
            # A person's timeline (profile pages).
            models.Index(
                fields=["employee_id", "-time", "-id"], name="feed_event_person_idx"
            ),
            models.Index(
                fields=["from_employee_id", "-time", "-id"],
                name="feed_event_sender_idx",
                condition=models.Q(from_employee_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.text


class Reaction(models.Model):
    """One person's reaction of one kind to one feed event."""

    class Kind(models.TextChoices):
        LIKE = "like", "Like"
        FIRE = "fire", "Fire"

    feed_event = models.ForeignKey(
        FeedEvent, on_delete=models.CASCADE, related_name="reactions"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reactions"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["feed_event", "user", "kind"],
                name="reaction_one_per_kind_per_person",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.kind} on {self.feed_event_id}"


class Thanks(models.Model):
    """A thank-you from one colleague to another; it reaches the feed as
    ``thanks.sent`` through the outbox."""

    from_employee = models.ForeignKey(
        "registrar.Employee", on_delete=models.CASCADE, related_name="thanks_sent"
    )
    to_employee = models.ForeignKey(
        "registrar.Employee", on_delete=models.CASCADE, related_name="thanks_received"
    )
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "thanks"

    def __str__(self) -> str:
        return f"{self.from_employee} → {self.to_employee}"
