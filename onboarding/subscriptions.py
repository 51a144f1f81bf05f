"""What onboarding subscribes to: one subscription per command, each on its
own queue, so a slow directory never holds back the welcome mail (or the
feed), and a mail server that is down never holds back the accounts.

Both take every ``employee.registered`` (the registrar's and other HR
systems') and HR's ``employee.onboarding_retry_requested``. Their knobs come
from ``ONBOARDING_MAIL_*`` and ``ONBOARDING_ACCOUNTS_*`` (``_QUEUE``,
``_RETRY_DELAYS``, ``_DELIVERY_LIMIT``, ``_EVENTS_PER_MESSAGE``…).
"""

from portal.messaging.subscriptions import Subscription
from registrar.contracts import (
    EMPLOYEE_ONBOARDING_RETRY_REQUESTED,
    EMPLOYEE_REGISTERED,
)

# Long enough together (about an hour) to outlast an outage of the mail
# server or the directory; each retry is held by RabbitMQ, not by a worker.
RETRY_DELAYS = (5, 10, 20, 30, 60, 120, 300, 600, 1800)

ONBOARDING_MAIL = Subscription(
    name="onboarding_mail",
    patterns=(EMPLOYEE_REGISTERED, EMPLOYEE_ONBOARDING_RETRY_REQUESTED),
    task="onboarding.send_welcome_mail",
    settings_prefix="ONBOARDING_MAIL",
    retry_delays=RETRY_DELAYS,
    # Each mail is a round trip to the SMTP server: a small batch keeps one
    # message's work short, and its retry small.
    events_per_message=10,
    description="Sends each new employee one welcome mail (SMTP).",
)

ONBOARDING_ACCOUNTS = Subscription(
    name="onboarding_accounts",
    patterns=(EMPLOYEE_REGISTERED, EMPLOYEE_ONBOARDING_RETRY_REQUESTED),
    task="onboarding.provision_accounts",
    settings_prefix="ONBOARDING_ACCOUNTS",
    retry_delays=RETRY_DELAYS,
    events_per_message=10,
    description="Creates each new employee's account in the directory service "
    "(HTTP, circuit breaker, rate limit).",
)

SUBSCRIPTIONS = (ONBOARDING_MAIL, ONBOARDING_ACCOUNTS)
