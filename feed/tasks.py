"""The feed's Celery task: thin, validating, idempotent, acked after commit."""

import logging
from dataclasses import asdict
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from .services import feed_events_apply

logger = logging.getLogger(__name__)

# Errors that may pass: the database restarting, a deadlock, a timeout.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@shared_task(name="feed.apply_events", bind=True, max_retries=None)
def apply_events(self, events: Any) -> dict[str, int]:
    """Apply a batch of CloudEvents to the feed.

    The message is acked only after ``feed_events_apply`` committed
    (``task_acks_late``). Invalid events are dead-lettered inside that
    transaction and never retried; a transient database error retries the
    whole batch after ``FEED_RETRY_DELAYS``, held by RabbitMQ (native delayed
    delivery), and after the last delay the message is rejected to the
    dead-letter queue.
    """
    if not isinstance(events, list):
        # A single envelope (or garbage): validation dead-letters what it is.
        events = [events]
    try:
        result = feed_events_apply(envelopes=events)
    except TRANSIENT_ERRORS as exc:
        delays = settings.FEED_RETRY_DELAYS
        attempt = self.request.retries
        if attempt >= len(delays):
            logger.error(
                "Giving up on task %s after %d retries", self.request.id, attempt
            )
            raise
        logger.warning(
            "Transient error, retry %d in %ss: %s", attempt + 1, delays[attempt], exc
        )
        raise self.retry(exc=exc, countdown=delays[attempt]) from exc
    return asdict(result)
