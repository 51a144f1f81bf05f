from portal.messaging.subscriptions import Subscription

# Knobs from the environment or settings: AUDIT_QUEUE, AUDIT_RETRY_DELAYS…
AUDIT = Subscription(
    name="audit",
    patterns=("employee.*",),
    task="subscriber_app.record",
    settings_prefix="AUDIT",
    retry_delays=(1, 1),
    description="A test subscriber that records employee events.",
)
