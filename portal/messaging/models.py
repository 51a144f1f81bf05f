import base64

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
    """A message that can never be processed, kept with why (the dead-letter store).

    Two kinds of record: an ``EVENT`` holds one CloudEvent that failed its
    contract (its body is that event's JSON); a ``MESSAGE`` holds a whole AMQP
    message as RabbitMQ dead-lettered it (body byte for byte, headers,
    properties). ``exchange`` and ``routing_key`` say where it came from, which
    is where ``deadletter_requeue`` publishes it again.
    """

    class Kind(models.TextChoices):
        EVENT = "event", "Event"
        MESSAGE = "message", "Message"

    class Status(models.TextChoices):
        DEAD = "dead", "Dead"
        REQUEUED = "requeued", "Requeued"

    class BodyEncoding(models.TextChoices):
        TEXT = "text", "Text (UTF-8)"
        BASE64 = "base64", "Base64 (binary)"

    reason = models.CharField(max_length=100, db_index=True)
    error = models.TextField(
        blank=True, default="", help_text="The error, or traceback, that killed it."
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EVENT)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.DEAD, db_index=True
    )
    event_type = models.CharField(max_length=100, blank=True, default="")
    source = models.CharField(max_length=200, blank=True, default="")
    event_id = models.CharField(max_length=200, blank=True, default="")
    body = models.TextField(help_text="The message body as received.")
    body_encoding = models.CharField(
        max_length=10, choices=BodyEncoding.choices, default=BodyEncoding.TEXT
    )
    size = models.PositiveIntegerField(default=0, help_text="Body size in bytes.")
    content_type = models.CharField(max_length=200, blank=True, default="")
    headers = models.JSONField(default=dict, blank=True)
    properties = models.JSONField(
        default=dict, blank=True, help_text="AMQP properties (message id, app id…)."
    )
    exchange = models.CharField(
        max_length=200, blank=True, default="", help_text="Where it was published."
    )
    routing_key = models.CharField(max_length=300, blank=True, default="")
    queue = models.CharField(
        max_length=200, blank=True, default="", help_text="Where it failed."
    )
    attempts = models.PositiveIntegerField(
        default=1, help_text="Deliveries or retries before it was given up."
    )
    first_failed_at = models.DateTimeField(null=True, blank=True)
    last_failed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    requeued_at = models.DateTimeField(null=True, blank=True)
    requeue_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["event_type"], name="deadletter_type_idx")]

    def __str__(self) -> str:
        return f"{self.reason}: {self.event_type or '?'} {self.event_id or ''}".strip()

    @property
    def raw_body(self) -> bytes:
        """The body as bytes, exactly as received."""
        if self.body_encoding == self.BodyEncoding.BASE64:
            return base64.b64decode(self.body)
        return self.body.encode("utf-8")


class ServiceToken(models.Model):
    """A credential with which another service posts events over HTTP.

    Only a SHA-256 hash of the token is stored: tokens are long random
    strings, so a fast hash is enough and a leaked table reveals none of them.
    Every token is bound to a source prefix (``sources.source_within``) and
    may be limited to event-type patterns; the portal's own sources are
    refused to every token.
    """

    name = models.CharField(max_length=100, unique=True)
    source_prefix = models.CharField(
        max_length=200,
        help_text="Events must have this source or one below it, by path "
        "segment: /hr-import admits /hr-import/eu, not /hr-importer.",
    )
    event_types = models.JSONField(
        default=list,
        blank=True,
        help_text="Event-type patterns this token may send (employee.*, "
        "thanks.sent, #); empty = any type.",
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from .patterns import pattern_problem
        from .sources import source_prefix_problem

        errors = {}
        if problem := source_prefix_problem(self.source_prefix):
            errors["source_prefix"] = problem
        if not isinstance(self.event_types, list) or not all(
            isinstance(p, str) for p in self.event_types
        ):
            errors["event_types"] = "a list of event-type patterns"
        else:
            problems = [pattern_problem(p) for p in self.event_types]
            if any(problems):
                errors["event_types"] = "; ".join(p for p in problems if p)
        if errors:
            raise ValidationError(errors)

    def refusal(self, *, source: str, event_type: str) -> str | None:
        """Why this token may not send an event of ``event_type`` from
        ``source``, or None if it may."""
        from .patterns import types_match
        from .sources import source_is_reserved, source_within

        if source_is_reserved(source):
            return f"the source {source!r} is reserved for the portal's own events"
        if not self.source_prefix:
            return (
                "this token has no source prefix; an admin must set one "
                "before it can send events"
            )
        if not source_within(source, self.source_prefix):
            return (
                f"this token may only send events whose source is "
                f"{self.source_prefix!r} or below it"
            )
        if self.event_types and not types_match(self.event_types, event_type):
            return (
                f"this token may not send {event_type!r} events "
                f"(allowed: {', '.join(self.event_types)})"
            )
        return None
