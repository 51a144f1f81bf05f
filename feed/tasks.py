"""The feed's Celery task: thin, validating, idempotent, acked after commit."""

from dataclasses import asdict
from typing import Any

from portal.messaging.subscriber_tasks import subscriber_task

from .services import feed_events_apply
from .subscriptions import FEED


@subscriber_task(FEED)
def apply_events(events: list[Any]) -> dict[str, int]:
    """Apply a batch of CloudEvents to the feed.

    Invalid events are dead-lettered inside the batch's transaction and never
    retried; a transient database error retries the whole batch after
    ``FEED_RETRY_DELAYS``, held by RabbitMQ; after the last one the events go
    to the dead-letter store with reason "retries exhausted".
    """
    return asdict(feed_events_apply(envelopes=events))
