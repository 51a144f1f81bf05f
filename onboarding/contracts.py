"""The events onboarding publishes: its replies to a registration.

Each reply carries the CloudEvents extension attribute ``correlationid``:
the ``id`` of the ``employee.registered`` event it answers (also when it
answers HR's ``employee.onboarding_retry_requested``, which carries the same
``correlationid``). A reply is written to the event log in the same
transaction as onboarding's own record of the step, so the reply exists if
and only if the step's outcome was recorded.

Registered with the portal's contract registry in ``OnboardingConfig.ready``.
"""

from typing import Literal

from pydantic import Field, StrictStr

from portal.messaging.contracts import EventData, Id, NonEmpty, contract_register

EMPLOYEE_WELCOME_SENT = "employee.welcome_sent"
EMPLOYEE_ACCOUNT_PROVISIONED = "employee.account_provisioned"
EMPLOYEE_ONBOARDING_FAILED = "employee.onboarding_failed"
REPLY_TYPES = (
    EMPLOYEE_WELCOME_SENT,
    EMPLOYEE_ACCOUNT_PROVISIONED,
    EMPLOYEE_ONBOARDING_FAILED,
)

# The CloudEvents extension attribute naming the registration a reply answers.
CORRELATION_ID = "correlationid"

# The steps of onboarding, as ``employee.onboarding_failed`` names them.
STEP_WELCOME_MAIL = "welcome_mail"
STEP_ACCOUNT = "account"
STEPS = (STEP_WELCOME_MAIL, STEP_ACCOUNT)
Step = Literal["welcome_mail", "account"]

REASON_MAX_LENGTH = 2000

_CORRELATION = (
    " Carries the extension attribute `correlationid`: the `id` of the "
    "`employee.registered` event it answers."
)


class WelcomeSentV1(EventData):
    employee_id: Id
    email: StrictStr = NonEmpty
    message_id: StrictStr = NonEmpty


class AccountProvisionedV1(EventData):
    employee_id: Id
    account_id: StrictStr = NonEmpty


class OnboardingFailedV1(EventData):
    employee_id: Id
    step: Step
    reason: StrictStr = Field(min_length=1, max_length=REASON_MAX_LENGTH)


def register_contracts() -> None:
    owner = "onboarding"
    contract_register(
        EMPLOYEE_WELCOME_SENT,
        1,
        WelcomeSentV1,
        owner=owner,
        description="The welcome mail went to the new employee's address "
        "(at most once per employee)." + _CORRELATION,
    )
    contract_register(
        EMPLOYEE_ACCOUNT_PROVISIONED,
        1,
        AccountProvisionedV1,
        owner=owner,
        description="The directory service created the employee's account "
        "(`account_id` is the directory's)." + _CORRELATION,
    )
    contract_register(
        EMPLOYEE_ONBOARDING_FAILED,
        1,
        OnboardingFailedV1,
        owner=owner,
        description="A step of onboarding (`welcome_mail` or `account`) failed "
        "for good, with the reason (a refusal's message, or a mail whose "
        "delivery is uncertain); HR's retry runs it again." + _CORRELATION,
    )
