"""The registrar keeps each new employee's onboarding status from
onboarding's replies: pending -> ready, or failed (which step, why) and
HR's retry."""

import pytest

from onboarding.contracts import (
    CORRELATION_ID,
    EMPLOYEE_ACCOUNT_PROVISIONED,
    EMPLOYEE_ONBOARDING_FAILED,
    EMPLOYEE_WELCOME_SENT,
)
from portal.messaging.contracts import build_event
from portal.messaging.models import DeadLetter, LoggedEvent
from registrar.models import Onboarding
from registrar.selectors import employee_search
from registrar.services import (
    RegistrarError,
    employee_onboarding_retry,
    employee_register,
    onboarding_replies_apply,
)
from tests.factories import DepartmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def anna(onboarding_enabled):
    return employee_register(
        full_name="Anna Petrova",
        email="anna@example.com",
        position="Engineer",
        department=DepartmentFactory(),
    )


def reply(employee, type_: str, correlation: str | None = None, **data) -> dict:
    correlation = correlation or employee.onboarding.registration_event_id
    return build_event(
        type=type_,
        source="/portal/onboarding",
        data={"employee_id": employee.pk, **data},
        extensions={CORRELATION_ID: correlation},
    ).as_json()


def sent(employee, **kw):
    return reply(employee, EMPLOYEE_WELCOME_SENT, email="a@x", message_id="<m@x>", **kw)


def provisioned(employee, **kw):
    return reply(employee, EMPLOYEE_ACCOUNT_PROVISIONED, account_id="acct-1", **kw)


def failed(employee, step: str, reason: str = "nope", **kw):
    return reply(employee, EMPLOYEE_ONBOARDING_FAILED, step=step, reason=reason, **kw)


def status(employee) -> Onboarding:
    return Onboarding.objects.get(employee=employee)


def test_pending_until_both_steps_are_done_then_ready(anna):
    assert status(anna).status == "pending"
    onboarding_replies_apply(envelopes=[sent(anna)])
    assert status(anna).status == "pending"
    assert onboarding_replies_apply(envelopes=[provisioned(anna)])["applied"] == 1
    onboarding = status(anna)
    assert onboarding.status == "ready"
    assert onboarding.account_id == "acct-1"
    assert onboarding.ready_at is not None


def test_a_reply_applies_once(anna):
    event = failed(anna, "account")
    assert onboarding_replies_apply(envelopes=[event, event])["applied"] == 1
    assert onboarding_replies_apply(envelopes=[event])["applied"] == 0


def test_a_failed_step_fails_the_onboarding_with_why_and_a_done_step_stays_done(anna):
    onboarding_replies_apply(envelopes=[sent(anna)])
    onboarding_replies_apply(
        envelopes=[
            failed(anna, "account", "position has no place"),
            failed(anna, "welcome_mail"),
        ]
    )
    onboarding = status(anna)
    assert onboarding.status == "failed"
    assert onboarding.failures == {"account": "position has no place"}


def test_hr_retry_asks_again_for_the_failed_steps_only(anna):
    onboarding_replies_apply(envelopes=[sent(anna), failed(anna, "account", "x")])
    bo = employee_register(
        full_name="Bo",
        email="bo@example.com",
        position="QA",
        department=DepartmentFactory(),
    )
    with pytest.raises(RegistrarError, match="nothing to retry"):
        employee_onboarding_retry(employee=bo)
    onboarding = employee_onboarding_retry(employee=anna)
    assert (onboarding.status, onboarding.retries, onboarding.failures) == (
        "pending",
        1,
        {},
    )
    retry = LoggedEvent.objects.latest("id")
    assert retry.type == "employee.onboarding_retry_requested"
    assert retry.envelope["data"]["steps"] == ["account"]
    assert retry.envelope[CORRELATION_ID] == onboarding.registration_event_id
    onboarding_replies_apply(envelopes=[provisioned(anna)])
    assert status(anna).status == "ready"


def test_replies_to_registrations_the_registrar_did_not_make_are_ignored(anna):
    result = onboarding_replies_apply(envelopes=[sent(anna, correlation="elsewhere")])
    assert result == {"applied": 0, "ignored": 1, "dead_lettered": 0}
    assert status(anna).status == "pending"


def test_an_invalid_reply_is_dead_lettered(anna):
    bad = sent(anna)
    bad["data"]["employee_id"] = "42"
    assert onboarding_replies_apply(envelopes=[bad])["dead_lettered"] == 1
    assert DeadLetter.objects.get().subscriber == "registrar_onboarding"


def test_employees_filter_by_onboarding_status(anna):
    other = employee_register(
        full_name="Bo",
        email="bo@example.com",
        position="QA",
        department=DepartmentFactory(),
    )
    onboarding_replies_apply(envelopes=[sent(other), provisioned(other)])
    assert list(employee_search(onboarding="ready")) == [other]
    assert list(employee_search(onboarding="pending")) == [anna]
    assert list(employee_search(onboarding="failed")) == []
