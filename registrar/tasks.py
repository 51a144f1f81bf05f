"""The registrar's Celery task: onboarding's replies become the status HR sees."""

from typing import Any

from portal.messaging.subscriber_tasks import subscriber_task

from .services import onboarding_replies_apply
from .subscriptions import REGISTRAR_ONBOARDING


@subscriber_task(REGISTRAR_ONBOARDING)
def apply_onboarding_replies(events: list[Any]) -> dict[str, int]:
    """Apply a batch of onboarding replies to the employees' statuses, once
    each; a transient database error retries the batch."""
    return onboarding_replies_apply(envelopes=events)
