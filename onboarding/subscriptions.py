"""What onboarding subscribes to: one subscription per command, each on its
own queue, so a slow directory never holds back the welcome mail (or the
feed), and a mail server that is down never holds back the accounts.

Both take every ``employee.registered`` (the registrar's and other HR
systems') and HR's ``employee.onboarding_retry_requested``. Their knobs come
from ``ONBOARDING_MAIL_*`` and ``ONBOARDING_ACCOUNTS_*`` (``_QUEUE``,
``_RETRY_DELAYS``, ``_DELIVERY_LIMIT``, ``_EVENTS_PER_MESSAGE``, ``_SPREAD``…).
"""

from portal.messaging.subscriptions import Subscription
from registrar.contracts import (
    EMPLOYEE_ONBOARDING_RETRY_REQUESTED,
    EMPLOYEE_REGISTERED,
)

# Long enough together (about an hour) to outlast an outage of the mail
# server or the directory; each retry is held by RabbitMQ, not by a worker.
RETRY_DELAYS = (5, 10, 20, 30, 60, 120, 300, 600, 1800)

# Each event is a round trip to an outside service, so a burst is split
# over at least as many messages as the onboarding worker has processes
# (four in docker-compose.yml), each sharing it. A backlog (a bulk import)
# goes at up to 100 events a message: each message has a fixed cost in the
# relay and in RabbitMQ (a quorum queue write), and at ten events a message
# onboarding was the dearest part of routing an event (the bench's
# per-event ingest: about 60 µs of CPU per event). A message's work
# stays bounded: the task stops at the first transient failure (the whole
# message is retried later; what was done is skipped), and the directory's
# calls are paced by its rate limit.
EVENTS_PER_MESSAGE = 100
SPREAD = 4

ONBOARDING_MAIL = Subscription(
    name="onboarding_mail",
    patterns=(EMPLOYEE_REGISTERED, EMPLOYEE_ONBOARDING_RETRY_REQUESTED),
    task="onboarding.send_welcome_mail",
    settings_prefix="ONBOARDING_MAIL",
    retry_delays=RETRY_DELAYS,
    events_per_message=EVENTS_PER_MESSAGE,
    spread=SPREAD,
    description="Sends each new employee one welcome mail (SMTP).",
)

ONBOARDING_ACCOUNTS = Subscription(
    name="onboarding_accounts",
    patterns=(EMPLOYEE_REGISTERED, EMPLOYEE_ONBOARDING_RETRY_REQUESTED),
    task="onboarding.provision_accounts",
    settings_prefix="ONBOARDING_ACCOUNTS",
    retry_delays=RETRY_DELAYS,
    events_per_message=EVENTS_PER_MESSAGE,
    spread=SPREAD,
    description="Creates each new employee's account in the directory service "
    "(HTTP, circuit breaker, rate limit).",
)

SUBSCRIPTIONS = (ONBOARDING_MAIL, ONBOARDING_ACCOUNTS)
