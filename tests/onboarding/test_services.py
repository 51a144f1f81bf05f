"""Onboarding's commands in this process: the welcome mail (Django's locmem
backend, or a real SMTP server process), the directory account (the real
stand-in directory process), and their replies in the event log."""

import pytest
from django.core import mail
from django.utils import timezone

from onboarding.contracts import (
    CORRELATION_ID,
    EMPLOYEE_ACCOUNT_PROVISIONED,
    EMPLOYEE_ONBOARDING_FAILED,
    EMPLOYEE_WELCOME_SENT,
)
from onboarding.models import DirectoryAccount, WelcomeMail
from onboarding.services import (
    REASON_DIRECTORY_REFUSED,
    MailInProgress,
    MailServerUnavailable,
    accounts_provision,
    welcome_mails_send,
)
from portal.messaging.contracts import validate_event
from portal.messaging.models import DeadLetter, LoggedEvent
from registrar.contracts import EMPLOYEE_REGISTERED
from registrar.models import Onboarding
from registrar.services import (
    employee_change_position,
    employee_onboarding_retry,
    employee_register,
    onboarding_replies_apply,
)
from tests.factories import DepartmentFactory

pytestmark = pytest.mark.django_db


def register(name: str = "Anna Petrova", **kwargs):
    department = kwargs.pop("department", None) or DepartmentFactory(name="Platform")
    employee = employee_register(
        full_name=name,
        email=kwargs.pop("email", f"{name.split()[0].lower()}@example.com"),
        position=kwargs.pop("position", "Backend Engineer"),
        department=department,
        **kwargs,
    )
    row = LoggedEvent.objects.filter(type=EMPLOYEE_REGISTERED).latest("id")
    return employee, row.envelope


def replies(type_: str | None = None) -> list[dict]:
    rows = LoggedEvent.objects.filter(source="/portal/onboarding").order_by("id")
    if type_:
        rows = rows.filter(type=type_)
    return [row.envelope for row in rows]


def test_registration_starts_a_pending_onboarding_owed_to_both_commands(
    onboarding_enabled,
):
    employee, envelope = register()
    onboarding = Onboarding.objects.get(employee=employee)
    assert onboarding.status == Onboarding.Status.PENDING
    assert onboarding.registration_event_id == envelope["id"]
    row = LoggedEvent.objects.get(event_id=envelope["id"])
    assert {"onboarding_mail", "onboarding_accounts"} <= set(row.undelivered)
    assert "registrar_onboarding" not in row.undelivered


def test_without_onboarding_a_registration_tracks_nothing():
    employee, envelope = register()
    assert not Onboarding.objects.filter(employee=employee).exists()
    row = LoggedEvent.objects.get(event_id=envelope["id"])
    assert "onboarding_mail" not in row.undelivered


# --- Welcome mail ---------------------------------------------------------------


def test_the_welcome_mail_has_text_and_html_and_goes_once(onboarding_enabled):
    employee, envelope = register()
    assert welcome_mails_send(envelopes=[envelope]) == {"sent": 1}
    assert welcome_mails_send(envelopes=[envelope, envelope]) == {}
    [message] = mail.outbox
    assert message.to == ["anna@example.com"]
    assert "Anna" in message.subject
    assert "Backend Engineer" in message.body
    [(html, kind)] = message.alternatives
    assert kind == "text/html"
    assert "<strong>Backend Engineer</strong>" in html
    record = WelcomeMail.objects.get(employee_id=employee.pk)
    assert record.state == WelcomeMail.State.SENT
    assert message.extra_headers["Message-ID"] == record.message_id
    [reply] = replies()
    assert reply["type"] == EMPLOYEE_WELCOME_SENT
    assert reply[CORRELATION_ID] == envelope["id"]
    assert reply["data"] == {
        "employee_id": employee.pk,
        "email": "anna@example.com",
        "message_id": record.message_id,
    }
    validate_event(reply)


def test_a_mail_being_sent_elsewhere_is_retried_not_sent(onboarding_enabled):
    employee, envelope = register()
    WelcomeMail.objects.create(
        employee_id=employee.pk,
        registration_id=envelope["id"],
        state=WelcomeMail.State.SENDING,
        sending_since=timezone.now(),
    )
    with pytest.raises(MailInProgress):
        welcome_mails_send(envelopes=[envelope])
    assert mail.outbox == []


def test_a_sender_that_died_mid_send_leaves_the_mail_uncertain_never_resent(
    onboarding_enabled, settings
):
    employee, envelope = register()
    WelcomeMail.objects.create(
        employee_id=employee.pk,
        registration_id=envelope["id"],
        state=WelcomeMail.State.SENDING,
        sending_since=timezone.now()
        - timezone.timedelta(seconds=settings.ONBOARDING_MAIL_SENDING_TIMEOUT + 1),
    )
    assert welcome_mails_send(envelopes=[envelope]) == {"uncertain": 1}
    assert mail.outbox == []
    [reply] = replies()
    assert reply["type"] == EMPLOYEE_ONBOARDING_FAILED
    assert reply["data"]["step"] == "welcome_mail"
    assert "may or may not" in reply["data"]["reason"]
    # Delivered again: still not sent.
    assert welcome_mails_send(envelopes=[envelope]) == {}
    assert mail.outbox == []


def test_smtp_server_down_sends_nothing_and_retries_later(
    onboarding_enabled, settings, smtp_server
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    settings.EMAIL_TIMEOUT = 3
    employee, envelope = register()
    smtp_server.stop()
    with pytest.raises(MailServerUnavailable):
        welcome_mails_send(envelopes=[envelope])
    record = WelcomeMail.objects.get(employee_id=employee.pk)
    assert record.state == WelcomeMail.State.PENDING
    assert "Connection refused" in record.last_error
    assert replies() == []
    smtp_server.start()
    assert welcome_mails_send(envelopes=[envelope]) == {"sent": 1}
    [received] = smtp_server.messages()
    assert received["To"] == "anna@example.com"
    assert received.is_multipart()
    assert {part.get_content_type() for part in received.walk()} >= {
        "text/plain",
        "text/html",
    }


def test_hr_retry_sends_an_uncertain_mail_again(onboarding_enabled):
    employee, envelope = register()
    WelcomeMail.objects.create(
        employee_id=employee.pk,
        registration_id=envelope["id"],
        state=WelcomeMail.State.UNCERTAIN,
        last_error="uncertain",
    )
    Onboarding.objects.filter(employee=employee).update(
        welcome_mail_error="uncertain", status="failed"
    )
    employee_onboarding_retry(employee=employee)
    retry = LoggedEvent.objects.latest("id").envelope
    assert retry["type"] == "employee.onboarding_retry_requested"
    assert retry[CORRELATION_ID] == envelope["id"]
    assert retry["data"]["steps"] == ["welcome_mail"]
    assert welcome_mails_send(envelopes=[retry]) == {"sent": 1}
    assert accounts_provision(envelopes=[retry]) == {"not asked": 1}
    assert len(mail.outbox) == 1


# --- Directory account ----------------------------------------------------------


def test_an_account_is_made_once_with_the_registration_as_idempotency_key(
    use_directory,
):
    employee, envelope = register()
    assert accounts_provision(envelopes=[envelope]) == {"provisioned": 1}
    assert accounts_provision(envelopes=[envelope]) == {}
    stats = use_directory.stats()
    assert stats["calls_by_key"] == {envelope["id"]: 1}
    assert stats["accounts_by_key"] == {envelope["id"]: 1}
    record = DirectoryAccount.objects.get(employee_id=employee.pk)
    assert record.state == DirectoryAccount.State.PROVISIONED
    assert record.account_id == "acct-000001"
    [reply] = replies()
    assert reply["type"] == EMPLOYEE_ACCOUNT_PROVISIONED
    assert reply[CORRELATION_ID] == envelope["id"]
    assert reply["data"] == {"employee_id": employee.pk, "account_id": "acct-000001"}


def test_a_refusal_fails_the_step_dead_letters_it_and_hr_retry_after_a_fix_works(
    use_directory,
):
    use_directory.control(refuse={"position": ["Contractor"]})
    employee, envelope = register(position="Contractor")
    assert accounts_provision(envelopes=[envelope]) == {"refused": 1}
    record = DirectoryAccount.objects.get(employee_id=employee.pk)
    assert (record.state, record.response_status) == ("failed", 400)
    assert "has no place in the directory" in record.response_body
    [dead] = DeadLetter.objects.all()
    assert (dead.reason, dead.subscriber) == (
        REASON_DIRECTORY_REFUSED,
        "onboarding_accounts",
    )
    assert dead.event_id == envelope["id"]
    assert "HTTP 400" in dead.error
    [reply] = replies()
    assert reply["data"]["step"] == "account"
    assert "Contractor" in reply["data"]["reason"]

    # Delivered again: no second call, the step stays failed.
    assert accounts_provision(envelopes=[envelope]) == {}
    assert use_directory.stats()["calls"] == 1

    # HR fixes the position and retries.
    onboarding_replies_apply(envelopes=replies())
    assert Onboarding.objects.get(employee=employee).status == "failed"
    employee_change_position(employee=employee, position="Engineer")
    employee_onboarding_retry(employee=employee)
    retry = LoggedEvent.objects.latest("id").envelope
    assert retry["data"]["steps"] == ["account"]
    assert accounts_provision(envelopes=[retry]) == {"provisioned": 1}
    stats = use_directory.stats()
    assert stats["calls_by_key"] == {envelope["id"]: 2}
    assert stats["accounts_by_key"] == {envelope["id"]: 1}


def test_a_server_error_is_transient_and_records_the_error(use_directory):
    import onboarding.directory as directory

    use_directory.control(error_rate=1.0)
    employee, envelope = register()
    with pytest.raises(directory.DirectoryUnavailable, match="500"):
        accounts_provision(envelopes=[envelope])
    record = DirectoryAccount.objects.get(employee_id=employee.pk)
    assert record.state == DirectoryAccount.State.PENDING
    assert "500" in record.last_error
    assert replies() == []
