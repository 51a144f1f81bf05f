"""The worker's consumer: Celery's own, minus the habit of dropping bad bytes."""

import logging

from celery.worker.consumer import Consumer

logger = logging.getLogger(__name__)


class FeedConsumer(Consumer):
    def on_decode_error(self, message, exc):
        """Reject an undecodable message so the queue dead-letters it.

        Celery's default acks (drops) it; rejecting without requeue sends it
        to the dead-letter exchange with its body intact, so nothing is lost
        and nothing loops.
        """
        logger.error(
            "Undecodable message (content type %r): %s; dead-lettering it",
            message.content_type,
            exc,
        )
        message.reject(requeue=False)
