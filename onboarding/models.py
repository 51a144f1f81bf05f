"""Onboarding's own records: one per employee and step, and the shared state
of the directory client (circuit breaker, rate limit) across worker processes."""

from django.db import models


class WelcomeMail(models.Model):
    """The welcome mail of one employee: sent at most once.

    The row is claimed (``SENDING``) and committed before the SMTP server is
    contacted, and marked ``SENT`` in the transaction that logs
    ``employee.welcome_sent``. A run that finds it ``SENDING`` after the
    sender's time is up cannot know whether the server took the mail: it
    marks it ``UNCERTAIN`` and never sends it on its own (HR's retry does).
    """

    class State(models.TextChoices):
        PENDING = "pending", "Not sent yet"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        UNCERTAIN = "uncertain", "Uncertain (sender stopped mid-send)"
        FAILED = "failed", "Refused by the mail server"

    employee_id = models.BigIntegerField(unique=True)
    registration_id = models.CharField(
        max_length=200, help_text="The id of the employee.registered event."
    )
    recipient = models.CharField(max_length=254, blank=True, default="")
    message_id = models.CharField(max_length=200, blank=True, default="")
    state = models.CharField(
        max_length=10, choices=State.choices, default=State.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(
        default=0, help_text="Times a worker started sending it."
    )
    sending_since = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"welcome mail of employee {self.employee_id}: {self.state}"


class DirectoryAccount(models.Model):
    """The directory account of one employee.

    ``idempotency_key`` is fixed the first time the employee is seen (the
    registration's event id) and sent with every call, so a call repeated
    after a lost answer or a killed worker makes no second account.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Not provisioned yet"
        PROVISIONED = "provisioned", "Provisioned"
        FAILED = "failed", "Refused by the directory"

    employee_id = models.BigIntegerField(unique=True)
    idempotency_key = models.CharField(max_length=200)
    state = models.CharField(
        max_length=12, choices=State.choices, default=State.PENDING, db_index=True
    )
    account_id = models.CharField(max_length=200, blank=True, default="")
    calls = models.PositiveIntegerField(
        default=0, help_text="Calls made to the directory for it."
    )
    last_error = models.TextField(blank=True, default="")
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, default="")
    provisioned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"directory account of employee {self.employee_id}: {self.state}"


class BreakerState(models.Model):
    """A circuit breaker's state, shared by every worker process (pybreaker
    storage: ``onboarding.breaker.DatabaseBreakerStorage``)."""

    name = models.CharField(max_length=100, primary_key=True)
    state = models.CharField(max_length=10, default="closed")
    fail_counter = models.IntegerField(default=0)
    success_counter = models.IntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    half_opened_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker took the trial call."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.state}"


class RateWindow(models.Model):
    """Calls made in the current one-second window, shared by every worker
    process (``onboarding.ratelimit``)."""

    name = models.CharField(max_length=100, primary_key=True)
    second = models.BigIntegerField(
        default=0, help_text="The Unix second the count is for."
    )
    count = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.count} in second {self.second}"
