"""What the feed subscribes to: every event it shows as a card."""

from portal.messaging.subscriptions import Subscription
from registrar.contracts import (
    DEPARTMENT_RENAMED,
    EMPLOYEE_POSITION_CHANGED,
    EMPLOYEE_REGISTERED,
)

from .contracts import THANKS_SENT

# Its knobs come from FEED_QUEUE, FEED_RETRY_DELAYS, FEED_DELIVERY_LIMIT,
# FEED_TASK_MAX_BYTES and FEED_EVENTS_PER_MESSAGE.
FEED = Subscription(
    name="feed",
    patterns=(
        EMPLOYEE_REGISTERED,
        EMPLOYEE_POSITION_CHANGED,
        "team.*",
        DEPARTMENT_RENAMED,
        THANKS_SENT,
    ),
    task="feed.apply_events",
    settings_prefix="FEED",
    description="The company feed: a card per event, on the home page.",
)
