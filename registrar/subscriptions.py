"""What the registrar subscribes to: onboarding's replies, to keep each new
employee's onboarding status (``registrar.models.Onboarding``)."""

from onboarding.contracts import REPLY_TYPES
from portal.messaging.subscriptions import Subscription

# Knobs from REGISTRAR_ONBOARDING_QUEUE, _RETRY_DELAYS, _DELIVERY_LIMIT…
REGISTRAR_ONBOARDING = Subscription(
    name="registrar_onboarding",
    patterns=REPLY_TYPES,
    task="registrar.apply_onboarding_replies",
    settings_prefix="REGISTRAR_ONBOARDING",
    retry_delays=(1, 5, 30, 300, 1800),
    description="The onboarding status HR sees: pending, ready or failed.",
)
