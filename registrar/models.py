from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from onboarding.contracts import STEP_ACCOUNT, STEP_WELCOME_MAIL


class Department(models.Model):
    name = models.CharField(max_length=120, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Team(models.Model):
    name = models.CharField(max_length=120)
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="teams"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["department__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["department", "name"], name="team_unique_name_per_department"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.department})"


class Employee(models.Model):
    full_name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)
    position = models.CharField(max_length=120)
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="employees"
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
    )
    hired_on = models.DateField(default=timezone.localdate)
    is_active = models.BooleanField(default=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="employee",
        help_text="The login of this person, if they have one.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["full_name", "id"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="employee_unique_email_ci")
        ]

    def __str__(self) -> str:
        return self.full_name

    def get_absolute_url(self) -> str:
        return reverse("registrar:employee_detail", args=[self.pk])


class Onboarding(models.Model):
    """Where an employee's onboarding stands, from onboarding's replies.

    Created ``PENDING`` with the registration (when onboarding is enabled);
    each step (the welcome mail, the directory account) is done once its
    success reply arrived, failed with the reason of its failure reply
    otherwise. ``READY`` when both are done, ``FAILED`` while a step failed
    (HR's retry puts the failed steps back to pending). A step that is done
    stays done: a failure reply arriving late changes nothing.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    employee = models.OneToOneField(
        Employee, on_delete=models.CASCADE, primary_key=True, related_name="onboarding"
    )
    registration_event_id = models.CharField(
        max_length=200,
        unique=True,
        help_text="The id of the employee.registered event: the replies' "
        "correlationid.",
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    welcome_sent_at = models.DateTimeField(null=True, blank=True)
    welcome_mail_error = models.TextField(blank=True, default="")
    account_id = models.CharField(max_length=200, blank=True, default="")
    account_provisioned_at = models.DateTimeField(null=True, blank=True)
    account_error = models.TextField(blank=True, default="")
    retries = models.PositiveIntegerField(default=0)
    ready_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"onboarding of {self.employee_id}: {self.status}"

    @property
    def journey_href(self) -> str:
        """The admin page that follows the registration to each subscriber."""
        from portal.messaging.views import journey_url

        return journey_url(event_id=self.registration_event_id)

    @property
    def failures(self) -> dict[str, str]:
        """The failed steps and why, e.g. ``{"account": "…"}``."""
        return {
            step: error
            for step, error in (
                (STEP_WELCOME_MAIL, self.welcome_mail_error),
                (STEP_ACCOUNT, self.account_error),
            )
            if error
        }

    def derive_status(self) -> str:
        if self.failures:
            return self.Status.FAILED
        if self.welcome_sent_at and self.account_provisioned_at:
            return self.Status.READY
        return self.Status.PENDING
