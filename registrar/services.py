"""Every write of the registrar. Each function is one transaction that stores
the change and logs its event(s) together (``event_log_emit``)."""

import datetime
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from onboarding.contracts import (
    CORRELATION_ID,
    EMPLOYEE_ACCOUNT_PROVISIONED,
    EMPLOYEE_ONBOARDING_FAILED,
    EMPLOYEE_WELCOME_SENT,
    STEP_ACCOUNT,
    STEP_WELCOME_MAIL,
)
from portal.messaging.contracts import ContractError, validate_event
from portal.messaging.dead_letter_records import (
    dead_letter_for_contract_error,
    dead_letters_store,
)
from portal.messaging.eventlog import event_log_emit
from portal.messaging.inbox import inbox_claim

from .contracts import (
    DEPARTMENT_RENAMED,
    EMPLOYEE_ONBOARDING_RETRY_REQUESTED,
    EMPLOYEE_POSITION_CHANGED,
    EMPLOYEE_REGISTERED,
    TEAM_MEMBER_JOINED,
    TEAM_MEMBER_LEFT,
)
from .models import Department, Employee, Onboarding, Team
from .subscriptions import REGISTRAR_ONBOARDING

logger = logging.getLogger(__name__)


class RegistrarError(Exception):
    """A registrar change that cannot be made, with the field it concerns."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _source() -> str:
    return f"{settings.PORTAL_EVENT_SOURCE}/registrar"


def _clean(value: str, *, field: str, label: str) -> str:
    value = (value or "").strip()
    if not value:
        raise RegistrarError(f"{label} must not be empty.", field=field)
    return value


def _check_team(team: Team | None, department: Department) -> None:
    if team is not None and team.department_id != department.pk:
        raise RegistrarError(
            f"Team {team.name!r} is not in department {department.name!r}.",
            field="team",
        )


@transaction.atomic
def department_create(*, name: str) -> Department:
    """Create a department. No event: the feed hears of departments through
    the people and renames in them."""
    name = _clean(name, field="name", label="Name")
    if Department.objects.filter(name__iexact=name).exists():
        raise RegistrarError(f"A department named {name!r} exists.", field="name")
    return Department.objects.create(name=name)


@transaction.atomic
def team_create(*, name: str, department: Department) -> Team:
    """Create a team in a department. No event."""
    name = _clean(name, field="name", label="Name")
    if department.teams.filter(name__iexact=name).exists():
        raise RegistrarError(
            f"{department.name} already has a team named {name!r}.", field="name"
        )
    return Team.objects.create(name=name, department=department)


@transaction.atomic
def employee_register(
    *,
    full_name: str,
    email: str,
    position: str,
    department: Department,
    team: Team | None = None,
    hired_on: datetime.date | None = None,
) -> Employee:
    """Register a new employee and emit ``employee.registered``.

    With onboarding enabled, the employee's onboarding starts ``pending``
    (``Onboarding``), correlated with that event's id. Raises
    ``RegistrarError`` for an empty name or position, a duplicate email
    (case-insensitive) or a team outside ``department``; nothing is stored then.
    """
    full_name = _clean(full_name, field="full_name", label="Name")
    position = _clean(position, field="position", label="Position")
    email = _clean(email, field="email", label="Email").lower()
    _check_team(team, department)
    # The unique index on the lower-cased email decides, whether the other
    # registration committed long ago or a moment ago: no look-up first.
    # No savepoint either: the failed insert ends in RegistrarError, which
    # rolls back this function's transaction (or, inside a caller's, its
    # savepoint) as a whole. Three round trips fewer per registration.
    try:
        with transaction.atomic(savepoint=False):
            employee = Employee.objects.create(
                full_name=full_name,
                email=email,
                position=position,
                department=department,
                team=team,
                hired_on=hired_on or timezone.localdate(),
            )
    except IntegrityError:
        raise RegistrarError(f"{email} is already registered.", field="email") from None
    entry = event_log_emit(
        type=EMPLOYEE_REGISTERED,
        source=_source(),
        data={
            "employee_id": employee.pk,
            "full_name": employee.full_name,
            "position": employee.position,
            "department_id": department.pk,
            "department": department.name,
            "team_id": team.pk if team else None,
            "team": team.name if team else None,
        },
        version=2,
    )
    if settings.ONBOARDING_ENABLED:
        Onboarding.objects.create(
            employee=employee, registration_event_id=entry.event_id
        )
    return employee


@transaction.atomic
def employee_change_position(*, employee: Employee, position: str) -> Employee:
    """Change an employee's position and emit ``employee.position_changed``.

    Changing to the same position is a no-op and emits nothing.
    """
    position = _clean(position, field="position", label="Position")
    employee = Employee.objects.select_for_update().get(pk=employee.pk)
    old_position = employee.position
    if old_position == position:
        return employee
    employee.position = position
    employee.save(update_fields=["position", "updated_at"])
    event_log_emit(
        type=EMPLOYEE_POSITION_CHANGED,
        source=_source(),
        data={
            "employee_id": employee.pk,
            "full_name": employee.full_name,
            "department_id": employee.department_id,
            "old_position": old_position,
            "new_position": position,
        },
        version=2,
    )
    return employee


def _membership_event(event_type: str, *, team: Team, employee: Employee) -> None:
    event_log_emit(
        type=event_type,
        source=_source(),
        data={
            "team_id": team.pk,
            "team": team.name,
            "department_id": team.department_id,
            "employee_id": employee.pk,
            "full_name": employee.full_name,
        },
        version=2,
    )


@transaction.atomic
def employee_move_to_team(*, employee: Employee, team: Team | None) -> Employee:
    """Move an employee to ``team`` (or out of any team with ``None``).

    Emits ``team.member_left`` for the old team and ``team.member_joined`` for
    the new one. Moving to another department's team moves the employee to
    that department. Moving to the current team emits nothing.
    """
    # Lock only the employee row: the team is on the nullable side of a join.
    employee = (
        Employee.objects.select_for_update(of=("self",))
        .select_related("team")
        .get(pk=employee.pk)
    )
    old_team = employee.team
    if (old_team and old_team.pk) == (team and team.pk):
        return employee
    employee.team = team
    fields = ["team", "updated_at"]
    if team is not None and team.department_id != employee.department_id:
        employee.department_id = team.department_id
        fields.append("department")
    employee.save(update_fields=fields)
    if old_team is not None:
        _membership_event(TEAM_MEMBER_LEFT, team=old_team, employee=employee)
    if team is not None:
        _membership_event(TEAM_MEMBER_JOINED, team=team, employee=employee)
    return employee


@transaction.atomic
def department_rename(*, department: Department, name: str) -> Department:
    """Rename a department and emit ``department.renamed``.

    Renaming to the current name is a no-op; a name another department has is
    refused with ``RegistrarError``.
    """
    name = _clean(name, field="name", label="Name")
    department = Department.objects.select_for_update().get(pk=department.pk)
    old_name = department.name
    if old_name == name:
        return department
    if Department.objects.filter(name__iexact=name).exclude(pk=department.pk).exists():
        raise RegistrarError(f"A department named {name!r} exists.", field="name")
    department.name = name
    department.save(update_fields=["name"])
    event_log_emit(
        type=DEPARTMENT_RENAMED,
        source=_source(),
        data={"department_id": department.pk, "old_name": old_name, "new_name": name},
    )
    return department


@transaction.atomic
def employee_link_user(*, employee: Employee, user: Any | None) -> Employee:
    """Link ``employee`` to the login ``user`` (or unlink with ``None``).

    The link decides whose name a logged-in person thanks with. No event: it
    is not news. Raises ``RegistrarError`` if ``user`` is linked to someone
    else.
    """
    employee = Employee.objects.select_for_update().get(pk=employee.pk)
    if user is not None:
        other = Employee.objects.filter(user=user).exclude(pk=employee.pk).first()
        if other is not None:
            raise RegistrarError(f"{user} is already linked to {other}.", field="user")
    if employee.user_id != (user.pk if user else None):
        employee.user = user
        employee.save(update_fields=["user", "updated_at"])
    return employee


@transaction.atomic
def employee_onboarding_retry(*, employee: Employee) -> Onboarding:
    """Run the failed steps of ``employee``'s onboarding again (HR's retry).

    Puts the failed steps back to pending and emits
    ``employee.onboarding_retry_requested`` (naming them, correlated with the
    registration) for onboarding to act on. Raises ``RegistrarError`` if the
    onboarding has not failed (nothing to retry).
    """
    onboarding = (
        Onboarding.objects.select_for_update().filter(employee_id=employee.pk).first()
    )
    if onboarding is None:
        raise RegistrarError(f"{employee.full_name} has no onboarding to retry.")
    steps = list(onboarding.failures)
    if not steps:
        raise RegistrarError(
            f"{employee.full_name}'s onboarding is {onboarding.status}: "
            "there is nothing to retry."
        )
    onboarding.welcome_mail_error = ""
    onboarding.account_error = ""
    onboarding.retries += 1
    onboarding.status = onboarding.derive_status()
    onboarding.save()
    event_log_emit(
        type=EMPLOYEE_ONBOARDING_RETRY_REQUESTED,
        source=_source(),
        data={
            "employee_id": employee.pk,
            "full_name": employee.full_name,
            "steps": steps,
        },
        extensions={CORRELATION_ID: onboarding.registration_event_id},
    )
    return onboarding


def onboarding_replies_apply(*, envelopes: Iterable[Any]) -> dict[str, int]:
    """Apply onboarding's replies to the employees' onboarding, in one
    transaction, each reply once.

    A reply finds its onboarding by its ``correlationid`` (the registration's
    event id); one for a registration the registrar did not make (another HR
    system's) is ignored. Invalid events are dead-lettered.
    """
    valid, dead = [], []
    for raw in envelopes:
        try:
            valid.append(validate_event(raw).as_json())
        except ContractError as error:
            dead.append(
                dead_letter_for_contract_error(
                    raw,
                    error,
                    subscriber=REGISTRAR_ONBOARDING.name,
                    queue=REGISTRAR_ONBOARDING.queue,
                )
            )
    applied = ignored = 0
    with transaction.atomic():
        dead_letters_store(dead)
        fresh = inbox_claim(subscriber=REGISTRAR_ONBOARDING.name, events=valid)
        by_id: dict[str | None, Onboarding] = {
            o.registration_event_id: o
            for o in Onboarding.objects.select_for_update().filter(
                registration_event_id__in=[e.get(CORRELATION_ID) for e in fresh]
            )
        }
        changed = set()
        for event in sorted(fresh, key=lambda e: e["time"]):
            onboarding = by_id.get(event.get(CORRELATION_ID))
            if onboarding is None or onboarding.employee_id != event["data"].get(
                "employee_id"
            ):
                ignored += 1
                continue
            _onboarding_apply_reply(onboarding, event)
            changed.add(onboarding.pk)
            applied += 1
        for pk in changed:
            onboarding = next(o for o in by_id.values() if o.pk == pk)
            onboarding.status = onboarding.derive_status()
            if onboarding.status == Onboarding.Status.READY and not onboarding.ready_at:
                onboarding.ready_at = timezone.now()
            onboarding.save()
    return {"applied": applied, "ignored": ignored, "dead_lettered": len(dead)}


def _onboarding_apply_reply(onboarding: Onboarding, event: Mapping[str, Any]) -> None:
    data = event["data"]
    when = datetime.datetime.fromisoformat(event["time"])
    if event["type"] == EMPLOYEE_WELCOME_SENT:
        onboarding.welcome_sent_at = onboarding.welcome_sent_at or when
        onboarding.welcome_mail_error = ""
    elif event["type"] == EMPLOYEE_ACCOUNT_PROVISIONED:
        onboarding.account_provisioned_at = onboarding.account_provisioned_at or when
        onboarding.account_id = data["account_id"]
        onboarding.account_error = ""
    elif event["type"] == EMPLOYEE_ONBOARDING_FAILED:
        # A step that is done stays done.
        if data["step"] == STEP_WELCOME_MAIL and not onboarding.welcome_sent_at:
            onboarding.welcome_mail_error = data["reason"]
        elif data["step"] == STEP_ACCOUNT and not onboarding.account_provisioned_at:
            onboarding.account_error = data["reason"]
