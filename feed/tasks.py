"""The feed's Celery task: thin, validating, idempotent, acked after commit."""

from typing import Any

from portal.messaging.journey import repair_requested
from portal.messaging.subscriber_tasks import subscriber_task

from .live import feed_live_announce_applied_unsafe
from .services import feed_events_apply
from .subscriptions import FEED


@subscriber_task(FEED)
def apply_events(events: list[Any]) -> dict[str, int]:
    """Apply a batch of CloudEvents to the feed.

    Invalid events are dead-lettered inside the batch's transaction and never
    retried; a transient database error retries the whole batch after
    ``FEED_RETRY_DELAYS``, held by RabbitMQ; after the last one the events go
    to the dead-letter store with reason "retries exhausted".

    After the commit, the new events' ids are announced to the web processes
    (``feed.live``) so open pages show them at once; that announcement is
    outside the log and may be lost, which pages survive by catching up.
    """
    result = feed_events_apply(envelopes=events, repair=repair_requested())
    if result.created_ids:
        feed_live_announce_applied_unsafe(list(result.created_ids))
    # Not ``asdict``: it would copy every created id, only to drop them.
    return {
        "created": result.created,
        "duplicates": result.duplicates,
        "dead_lettered": result.dead_lettered,
    }
