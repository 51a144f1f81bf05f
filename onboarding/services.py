"""Every write of onboarding: the two commands and their replies.

Each command takes the ``employee.registered`` events (and HR's
``employee.onboarding_retry_requested``) of one task message, one at a time.
For each it records its own outcome and logs the reply event in one
transaction, together with the inbox row that marks the event handled, so a
redelivered message does nothing twice. A transient failure (mail server or
directory unreachable, slow, failing, breaker open) propagates after the
step's state was put back: the task retries the whole message later, and the
events already handled are skipped.

The network is never called inside a transaction.
"""

import logging
import smtplib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from email.utils import make_msgid
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from portal.messaging.contracts import ContractError, validate_event
from portal.messaging.dead_letter_records import (
    dead_letter_for_contract_error,
    dead_letter_for_event,
    dead_letters_store,
)
from portal.messaging.eventlog import event_log_emit
from portal.messaging.inbox import inbox_claim
from portal.messaging.models import ProcessedEvent
from portal.messaging.subscriptions import Subscription
from registrar.contracts import EMPLOYEE_ONBOARDING_RETRY_REQUESTED
from registrar.models import Employee
from registrar.selectors import employee_contact

from .contracts import (
    CORRELATION_ID,
    EMPLOYEE_ACCOUNT_PROVISIONED,
    EMPLOYEE_ONBOARDING_FAILED,
    EMPLOYEE_WELCOME_SENT,
    REASON_MAX_LENGTH,
    STEP_ACCOUNT,
    STEP_WELCOME_MAIL,
    STEPS,
)
from .directory import DirectoryRefused, directory_account_create
from .models import DirectoryAccount, WelcomeMail
from .subscriptions import ONBOARDING_ACCOUNTS, ONBOARDING_MAIL

logger = logging.getLogger(__name__)

# The dead-letter reason of a registration the directory refused (4xx).
REASON_DIRECTORY_REFUSED = "refused by directory"


class MailServerUnavailable(Exception):
    """The mail server could not take the mail now; it was not sent."""


class MailInProgress(Exception):
    """Another run is sending this mail right now."""


TRANSIENT_MAIL_ERRORS: tuple[type[BaseException], ...] = (
    MailServerUnavailable,
    MailInProgress,
)


@dataclass(frozen=True)
class Command:
    """One registration (or HR's retry of it) for a command to act on."""

    raw: Any
    source: str
    id: str
    employee_id: int
    registration_id: str
    steps: tuple[str, ...]
    retry: bool


def _command(raw: Any) -> Command:
    event = validate_event(raw)
    envelope = event.envelope
    data = event.data
    if envelope.type == EMPLOYEE_ONBOARDING_RETRY_REQUESTED:
        registration_id = (envelope.__pydantic_extra__ or {}).get(CORRELATION_ID)
        if not isinstance(registration_id, str) or not registration_id:
            raise ContractError(
                "invalid envelope",
                ({"loc": [CORRELATION_ID], "msg": "a retry needs its correlationid"},),
            )
        steps = tuple(s for s in STEPS if s in data.steps)  # type: ignore[attr-defined]
        retry = True
    else:
        registration_id, steps, retry = envelope.id, STEPS, False
    return Command(
        raw=raw,
        source=envelope.source,
        id=envelope.id,
        employee_id=data.employee_id,  # type: ignore[attr-defined]
        registration_id=registration_id,
        steps=steps,
        retry=retry,
    )


def _source() -> str:
    return f"{settings.PORTAL_EVENT_SOURCE}/onboarding"


def _reply(type: str, registration_id: str, data: dict[str, Any]) -> None:
    event_log_emit(
        type=type,
        source=_source(),
        data=data,
        extensions={CORRELATION_ID: registration_id},
    )


def _reply_failed(command: Command, step: str, reason: str) -> None:
    _reply(
        EMPLOYEE_ONBOARDING_FAILED,
        command.registration_id,
        {
            "employee_id": command.employee_id,
            "step": step,
            "reason": reason[:REASON_MAX_LENGTH] or "unknown",
        },
    )


def _claim(subscription: Subscription, command: Command) -> bool:
    """Mark ``command`` handled by ``subscription`` (inside the caller's
    transaction); False if it was already."""
    return bool(inbox_claim(subscriber=subscription.name, events=[command.raw]))


def _fresh_commands(
    subscription: Subscription, envelopes: Iterable[Any]
) -> list[Command]:
    """The valid commands of a message not handled before; invalid events
    are dead-lettered with their reason."""
    commands, dead = [], []
    for raw in envelopes:
        try:
            commands.append(_command(raw))
        except ContractError as error:
            logger.warning("Dead-lettering onboarding event: %s", error)
            dead.append(
                dead_letter_for_contract_error(
                    raw, error, subscriber=subscription.name, queue=subscription.queue
                )
            )
    if dead:
        with transaction.atomic():
            dead_letters_store(dead)
    handled = set(
        ProcessedEvent.objects.filter(
            subscriber=subscription.name, event_id__in=[c.id for c in commands]
        ).values_list("source", "event_id")
    )
    return [c for c in commands if (c.source, c.id) not in handled]


def _run(
    subscription: Subscription,
    envelopes: Iterable[Any],
    step: str,
    act: Callable[[Command, Employee], str],
) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    for command in _fresh_commands(subscription, envelopes):
        if step not in command.steps:
            with transaction.atomic():
                _claim(subscription, command)
            outcome = "not asked"
        else:
            employee = employee_contact(employee_id=command.employee_id)
            if employee is None:
                with transaction.atomic():
                    if _claim(subscription, command):
                        _reply_failed(
                            command,
                            step,
                            f"employee {command.employee_id} is not in the registrar",
                        )
                outcome = "failed"
            else:
                outcome = act(command, employee)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


# --- The welcome mail -----------------------------------------------------------


def welcome_mails_send(*, envelopes: Iterable[Any]) -> dict[str, int]:
    """Send each new employee's welcome mail, at most once per employee.

    Returns how many events ended how (``sent``, ``failed``, ``uncertain``,
    ``already sent``…). Raises a ``TRANSIENT_MAIL_ERRORS`` error (or a
    database error) when the mail server cannot take a mail now: nothing was
    sent for that event, and the events handled before it stay handled.
    """
    return _run(ONBOARDING_MAIL, envelopes, STEP_WELCOME_MAIL, _welcome_mail)


def _sending_timeout() -> timedelta:
    return timedelta(seconds=settings.ONBOARDING_MAIL_SENDING_TIMEOUT)


def _welcome_mail(command: Command, employee: Employee) -> str:
    with transaction.atomic():
        mail, _ = WelcomeMail.objects.select_for_update().get_or_create(
            employee_id=command.employee_id,
            defaults={
                "registration_id": command.registration_id,
                "message_id": make_msgid(
                    idstring=f"welcome.{command.employee_id}",
                    domain=_mail_domain(),
                ),
            },
        )
        now = timezone.now()
        if mail.state == WelcomeMail.State.SENT:
            if _claim(ONBOARDING_MAIL, command):
                _reply_sent(command, mail)
            return "already sent"
        if mail.state == WelcomeMail.State.SENDING:
            if mail.sending_since and now - mail.sending_since < _sending_timeout():
                raise MailInProgress(
                    f"the welcome mail of employee {mail.employee_id} is being sent"
                )
            mail.state = WelcomeMail.State.UNCERTAIN
            mail.last_error = (
                "the worker sending it stopped before recording the outcome: the "
                "mail server may or may not have taken the mail, so it is not "
                "sent again automatically"
            )
            mail.save(update_fields=["state", "last_error", "updated_at"])
            if _claim(ONBOARDING_MAIL, command):
                _reply_failed(command, STEP_WELCOME_MAIL, mail.last_error)
            return "uncertain"
        if (
            mail.state in (WelcomeMail.State.UNCERTAIN, WelcomeMail.State.FAILED)
            and not command.retry
        ):
            if _claim(ONBOARDING_MAIL, command):
                _reply_failed(command, STEP_WELCOME_MAIL, mail.last_error)
            return "failed before"
        # Claimed: from this commit on, no other run sends it.
        mail.state = WelcomeMail.State.SENDING
        mail.sending_since = now
        mail.attempts += 1
        mail.recipient = employee.email
        mail.save()

    try:
        _deliver(mail, employee)
    except MailServerUnavailable as exc:
        WelcomeMail.objects.filter(pk=mail.pk).update(
            state=WelcomeMail.State.PENDING, last_error=str(exc)[:4000]
        )
        raise
    except _Refused as refused:
        return _welcome_mail_done(
            command,
            mail,
            WelcomeMail.State.FAILED,
            f"the mail server refused it: {refused}",
        )
    except _Uncertain as uncertain:
        return _welcome_mail_done(
            command,
            mail,
            WelcomeMail.State.UNCERTAIN,
            f"the connection to the mail server broke while sending, so the mail "
            f"may or may not have been taken; not sent again automatically: "
            f"{uncertain}",
        )
    return _welcome_mail_done(command, mail, WelcomeMail.State.SENT, "")


def _welcome_mail_done(
    command: Command, mail: WelcomeMail, state: str, error: str
) -> str:
    with transaction.atomic():
        fields: dict[str, Any] = {"state": state, "last_error": error[:4000]}
        if state == WelcomeMail.State.SENT:
            fields["sent_at"] = timezone.now()
        WelcomeMail.objects.filter(pk=mail.pk).update(**fields)
        mail.refresh_from_db()
        if _claim(ONBOARDING_MAIL, command):
            if state == WelcomeMail.State.SENT:
                _reply_sent(command, mail)
            else:
                _reply_failed(command, STEP_WELCOME_MAIL, error)
    return str(state)


def _reply_sent(command: Command, mail: WelcomeMail) -> None:
    _reply(
        EMPLOYEE_WELCOME_SENT,
        command.registration_id,
        {
            "employee_id": command.employee_id,
            "email": mail.recipient or "unknown",
            "message_id": mail.message_id or "unknown",
        },
    )


def _mail_domain() -> str:
    return settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ") or "localhost"


class _Refused(Exception):
    """The mail server refused the mail for good (5xx)."""


class _Uncertain(Exception):
    """The conversation broke off: the mail may or may not have been taken."""


def welcome_mail_message(employee: Employee, message_id: str) -> EmailMultiAlternatives:
    """The welcome mail: a plain-text and an HTML part."""
    context = {
        "employee": employee,
        "first_name": employee.full_name.split()[0],
        "portal_url": settings.PORTAL_URL,
    }
    message = EmailMultiAlternatives(
        subject=f"Welcome aboard, {context['first_name']}!",
        body=render_to_string("onboarding/welcome_mail.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[employee.email],
        headers={"Message-ID": message_id},
    )
    message.attach_alternative(
        render_to_string("onboarding/welcome_mail.html", context), "text/html"
    )
    return message


def _deliver(mail: WelcomeMail, employee: Employee) -> None:
    """Hand the mail to the mail server (Django's email API).

    Tells apart what certainly did not send it (no connection; an answer
    that refuses the sender, the recipients or the data) from a conversation
    that broke off, after which nobody knows.
    """
    message = welcome_mail_message(employee, mail.message_id)
    connection = get_connection(fail_silently=False)
    try:
        connection.open()
    except (OSError, smtplib.SMTPException) as exc:
        raise MailServerUnavailable(f"{type(exc).__name__}: {exc}") from exc
    try:
        connection.send_messages([message])
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if all(400 <= code < 500 for code in codes):
            raise MailServerUnavailable(f"recipients refused for now: {exc}") from exc
        raise _Refused(f"recipients refused: {exc.recipients}") from exc
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        if 400 <= exc.smtp_code < 500:
            raise MailServerUnavailable(
                f"{type(exc).__name__}: {exc.smtp_code} {exc.smtp_error!r}"
            ) from exc
        raise _Refused(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise _Uncertain(f"{type(exc).__name__}: {exc}") from exc
    finally:
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - the outcome is already known
            logger.debug("closing the mail connection failed", exc_info=True)


# --- The directory account ------------------------------------------------------


def accounts_provision(*, envelopes: Iterable[Any]) -> dict[str, int]:
    """Create each new employee's directory account, exactly once.

    Returns how many events ended how (``provisioned``, ``refused``,
    ``already provisioned``…). A transient error (``TRANSIENT_DIRECTORY_ERRORS``
    or a database error) propagates: the directory was not reached, answered
    "not now", or its answer was lost; the retry sends the same idempotency
    key, so the directory makes no second account.
    """
    return _run(ONBOARDING_ACCOUNTS, envelopes, STEP_ACCOUNT, _account)


def _account_data(employee: Employee) -> dict[str, Any]:
    return {
        "employee_id": employee.pk,
        "email": employee.email,
        "full_name": employee.full_name,
        "position": employee.position,
        "department": employee.department.name,
        "team": employee.team.name if employee.team else None,
    }


def _account(command: Command, employee: Employee) -> str:
    with transaction.atomic():
        account, _ = DirectoryAccount.objects.get_or_create(
            employee_id=command.employee_id,
            defaults={"idempotency_key": command.registration_id},
        )
        if account.state == DirectoryAccount.State.PROVISIONED:
            if _claim(ONBOARDING_ACCOUNTS, command):
                _reply_provisioned(command, account)
            return "already provisioned"
        if account.state == DirectoryAccount.State.FAILED and not command.retry:
            if _claim(ONBOARDING_ACCOUNTS, command):
                _reply_failed(command, STEP_ACCOUNT, account.last_error)
            return "failed before"

    rows = DirectoryAccount.objects.filter(pk=account.pk)
    rows.update(calls=F("calls") + 1)
    try:
        answer = directory_account_create(
            idempotency_key=account.idempotency_key, account=_account_data(employee)
        )
    except DirectoryRefused as refusal:
        return _account_refused(command, account, refusal)
    except Exception as exc:
        rows.update(last_error=f"{type(exc).__name__}: {exc}"[:4000])
        raise

    with transaction.atomic():
        account = DirectoryAccount.objects.select_for_update().get(pk=account.pk)
        if account.state != DirectoryAccount.State.PROVISIONED:
            account.state = DirectoryAccount.State.PROVISIONED
            account.account_id = answer.account_id
            account.response_status = answer.status
            account.provisioned_at = timezone.now()
            account.last_error = ""
            account.save()
        if _claim(ONBOARDING_ACCOUNTS, command):
            _reply_provisioned(command, account)
    return "provisioned"


def _account_refused(
    command: Command, account: DirectoryAccount, refusal: DirectoryRefused
) -> str:
    reason = f"the directory refused the account ({refusal.status}): {refusal.message}"
    with transaction.atomic():
        account = DirectoryAccount.objects.select_for_update().get(pk=account.pk)
        if account.state == DirectoryAccount.State.PROVISIONED:
            # Another run got the account first; its answer stands.
            if _claim(ONBOARDING_ACCOUNTS, command):
                _reply_provisioned(command, account)
            return "already provisioned"
        account.state = DirectoryAccount.State.FAILED
        account.response_status = refusal.status
        account.response_body = refusal.body[:10000]
        account.last_error = reason
        account.save()
        if _claim(ONBOARDING_ACCOUNTS, command):
            _reply_failed(command, STEP_ACCOUNT, reason)
            dead_letters_store(
                [
                    dead_letter_for_event(
                        command.raw,
                        reason=REASON_DIRECTORY_REFUSED,
                        error=f"HTTP {refusal.status}\n{refusal.body}",
                        subscriber=ONBOARDING_ACCOUNTS.name,
                        queue=ONBOARDING_ACCOUNTS.queue,
                    )
                ]
            )
    return "refused"


def _reply_provisioned(command: Command, account: DirectoryAccount) -> None:
    _reply(
        EMPLOYEE_ACCOUNT_PROVISIONED,
        command.registration_id,
        {"employee_id": command.employee_id, "account_id": account.account_id},
    )
