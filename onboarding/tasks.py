"""Onboarding's Celery tasks: one per command, each on its own queue."""

from typing import Any

from portal.messaging.batches import TRANSIENT_DATABASE_ERRORS
from portal.messaging.subscriber_tasks import subscriber_task

from .directory import TRANSIENT_DIRECTORY_ERRORS
from .services import TRANSIENT_MAIL_ERRORS, accounts_provision, welcome_mails_send
from .subscriptions import ONBOARDING_ACCOUNTS, ONBOARDING_MAIL


@subscriber_task(
    ONBOARDING_MAIL, transient=(*TRANSIENT_DATABASE_ERRORS, *TRANSIENT_MAIL_ERRORS)
)
def send_welcome_mail(events: list[Any]) -> dict[str, int]:
    """Send the welcome mail of each registration, at most once per employee;
    a mail server that cannot take it now retries after
    ``ONBOARDING_MAIL_RETRY_DELAYS``."""
    return welcome_mails_send(envelopes=events)


@subscriber_task(
    ONBOARDING_ACCOUNTS,
    transient=(*TRANSIENT_DATABASE_ERRORS, *TRANSIENT_DIRECTORY_ERRORS),
)
def provision_accounts(events: list[Any]) -> dict[str, int]:
    """Create the directory account of each registration, once; timeouts,
    connection errors, 5xx and an open breaker retry after
    ``ONBOARDING_ACCOUNTS_RETRY_DELAYS``, 4xx answers fail the step."""
    return accounts_provision(envelopes=events)
