import base64

from django.db import models


class LoggedEvent(models.Model):
    """One event of the event log, written in the same transaction as its cause.

    Every event the portal accepts is a row here: the portal's own (written
    by the apps' services with ``event_log_emit``), and those of other
    services, posted over HTTP or published on ``portal.events``
    (``event_log_accept``). The relay routes each row to its destinations,
    the subscribers whose patterns match its type and the
    ``portal.broadcast`` exchange, listed in ``undelivered`` when the row is
    written; a destination leaves the list once RabbitMQ confirmed the
    message carrying the event to it, and the row is ``SENT`` when the list
    is empty. One (``source``, ``event_id``) is logged once.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"

    class Origin(models.TextChoices):
        PORTAL = "portal", "The portal's own"
        HTTP = "http", "POST /api/events/"
        AMQP = "amqp", "AMQP portal.events"

    event_id = models.CharField(max_length=200)
    source = models.CharField(max_length=200)
    type = models.CharField(max_length=100)
    envelope = models.JSONField(help_text="The CloudEvents 1.0 envelope, as sent.")
    origin = models.CharField(
        max_length=10, choices=Origin.choices, default=Origin.PORTAL
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING
    )
    undelivered = models.JSONField(
        default=list,
        blank=True,
        help_text="Destinations still owed this event: subscriber names, "
        "and 'broadcast' for the portal.broadcast exchange.",
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last destination confirmed it."
    )
    logged_by = models.CharField(
        max_length=200,
        blank=True,
        default="",
        db_default="",
        help_text="The process that logged it (kind host:pid).",
    )
    routes = models.JSONField(
        default=dict,
        db_default=models.Value({}, output_field=models.JSONField()),
        blank=True,
        help_text="Per destination, when RabbitMQ confirmed it, the confirm "
        "time and the process that routed it (the journey's routing hops).",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            # An event is logged once per (source, id). The id leads, so the
            # same index finds an event by its id alone (the journey page's
            # search): every index here is written again by each row's
            # routing UPDATE, so the log keeps no other.
            models.UniqueConstraint(
                fields=["event_id", "source"], name="outbox_unique_event_id_source"
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


class ProcessedEvent(models.Model):
    """An event a subscriber has handled: its inbox, for at-most-once effects.

    ``inbox_claim`` inserts a row per (subscriber, source, event id) in the
    subscriber's own transaction and hands back only the events it had not
    seen, so a redelivered event causes no second effect. (The feed needs no
    such row: its own unique index on (source, id) does the same.)
    """

    subscriber = models.CharField(max_length=100)
    source = models.CharField(max_length=200)
    event_id = models.CharField(max_length=200)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "source", "event_id"],
                name="processed_event_once_per_subscriber",
            )
        ]

    def __str__(self) -> str:
        return f"{self.subscriber}: {self.source} {self.event_id}"


class DeadLetter(models.Model):
    """A message that can never be processed, kept with why (the dead-letter store).

    Two kinds of record: an ``EVENT`` holds one CloudEvent (its body is that
    event's JSON); a ``MESSAGE`` holds a whole AMQP message as RabbitMQ
    dead-lettered it (body byte for byte, headers, properties). ``subscriber``
    names the subscriber that gave up on it (requeue sends it back to that
    one only); without one, ``exchange`` and ``routing_key`` say where it came
    from, which is where ``dead_letters_requeue`` publishes it again.
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
    subscriber = models.CharField(
        max_length=100,
        blank=True,
        default="",
        db_index=True,
        help_text="The subscriber that gave up on it; requeue goes back to "
        "that subscriber only. Empty for what failed on the way in.",
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
        indexes = [
            models.Index(fields=["event_type"], name="deadletter_type_idx"),
            # The journey page shows an event's dead letters.
            models.Index(fields=["event_id"], name="deadletter_event_idx"),
        ]

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


# The most events one ``EventHop`` row covers: a lookup by log id reads the
# rows that start at most this many ids before it.
HOP_RUN_MAX = 1000


class EventHopQuerySet(models.QuerySet):
    def covering(self, low: int, high: int | None = None) -> "EventHopQuerySet":
        """The rows covering any log id from ``low`` to ``high`` (inclusive;
        one id if ``high`` is None): found through the index on ``log_id``,
        since no row covers more than ``HOP_RUN_MAX`` ids."""
        high = low if high is None else high
        return self.filter(
            log_id__gt=low - HOP_RUN_MAX, log_id__lte=high, log_id_last__gte=low
        )

    def events(self) -> int:
        """How many events' hops the rows hold."""
        total = self.aggregate(
            n=models.Sum(models.F("log_id_last") - models.F("log_id") + 1)
        )["n"]
        return total or 0


class EventHop(models.Model):
    """One subscriber's handling of a run of logged events: a hop of each
    one's journey.

    Written by the subscriber's task after each task message, one statement
    for the whole batch: delivered (attempt n) and then applied, skipped as
    a duplicate, retried (with the error) or given up. A row covers the log
    ids from ``log_id`` to ``log_id_last`` that went alike in one task
    message (at most ``HOP_RUN_MAX``): a batch of consecutive events applied
    together is one row, not one per event. The hops before (the commit to
    the log, the routing to each destination with its confirm time) are on
    the ``LoggedEvent`` row itself, and a dead letter is its own record, so
    the journey page reads all three. ``log_id`` is no foreign key: the
    journey outlives the log row by its own retention.
    """

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied"
        DUPLICATE = "duplicate", "Skipped as duplicate"
        RETRIED = "retried", "Retried"
        DEAD_LETTERED = "dead_lettered", "Dead-lettered"

    log_id = models.BigIntegerField(
        db_index=True, help_text="The first log id of the run."
    )
    log_id_last = models.BigIntegerField(
        help_text="The last log id of the run (equal to log_id for one event)."
    )
    subscriber = models.CharField(max_length=100)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    attempt = models.PositiveIntegerField(default=1)
    delivered_at = models.DateTimeField(help_text="When the task started.")
    finished_at = models.DateTimeField()
    process = models.CharField(max_length=200, blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    detail = models.TextField(blank=True, default="")

    objects = EventHopQuerySet.as_manager()

    class Meta:
        ordering = ["log_id", "delivered_at", "id"]

    def __str__(self) -> str:
        ids = f"#{self.log_id}"
        if self.log_id_last != self.log_id:
            ids += f"-{self.log_id_last}"
        return f"{self.subscriber} {self.outcome} {ids}"

    def save(self, *args, **kwargs) -> None:
        if self.log_id_last is None:
            self.log_id_last = self.log_id
        super().save(*args, **kwargs)


class RelayHeartbeat(models.Model):
    """When each relay last finished a pass: what "the relay is alive" means.

    A relay writes its row at most every few seconds; the metrics, the
    health command and ``portal_doctor`` read it. Rows of relays long gone
    are removed by retention.
    """

    relay = models.CharField(max_length=200, unique=True, help_text="host:pid")
    started_at = models.DateTimeField()
    last_pass_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_pass_at"]

    def __str__(self) -> str:
        return f"{self.relay} ({self.last_pass_at:%Y-%m-%d %H:%M:%S})"
