"""A worker consumer that handles raw messages in batches, acking after commit.

``BatchingConsumerStep`` runs in the worker's main process (a Celery
``ConsumerStep``, no extra process). Messages collect until ``batch_size``
or the next ``tick``; ``handle`` stores the outcome of all of them in one
transaction, and only then are they acked. While the database is
unavailable it keeps what it holds unacked and tries again after growing
pauses (a timer, not recursion); the broker's prefetch limit
(``CONSUMER_PREFETCH_BATCHES`` batches: the next batch arrives while one is
stored) stops delivery meanwhile, so nothing piles up in memory. Held
messages are handed back after ``WORKER_HOLD_MAX_SECONDS`` (and consuming
stops until the database answers), so none is held past RabbitMQ's
``consumer_timeout``. A batch that fails for any other reason is retried one
message at a time, and the message that fails alone is stored whole as a
dead letter ("invalid message"), so one bad message never stalls a queue.
A stored batch is acked with one ``basic.ack`` (``multiple``). Messages
not yet acked when the worker stops or the connection drops go back to
their queue.
"""

import logging
import time
import traceback
from typing import Any

from celery import bootsteps
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from kombu import Consumer as KombuConsumer

from .batches import TRANSIENT_DATABASE_ERRORS
from .dead_letter_records import (
    REASON_INVALID_MESSAGE,
    dead_letter_for_message,
    dead_letters_store,
)

logger = logging.getLogger(__name__)


class BatchingConsumerStep(bootsteps.ConsumerStep):
    requires = ("celery.worker.consumer.connection:Connection",)
    tick = 0.2
    max_backoff = 30.0

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.pending: list[Any] = []
        self.failures = 0
        self.paused_until = 0.0
        self.holding_since: float | None = None
        self.released = False
        self._tref = None
        self.limit = 0  # batch_size(), from start()

    def batch_size(self) -> int:
        raise NotImplementedError

    def queues(self) -> list:
        raise NotImplementedError

    def handle(self, messages: list[Any]) -> None:
        """Store the outcome of ``messages`` in one transaction."""
        raise NotImplementedError

    def get_consumers(self, channel):
        return [
            KombuConsumer(
                channel,
                queues=self.queues(),
                on_message=self.on_message,
                prefetch_count=self.batch_size()
                * max(1, settings.CONSUMER_PREFETCH_BATCHES),
                no_ack=False,
            )
        ]

    def start(self, c):
        # Read once per connection, not per message (a settings lookup).
        self.limit = self.batch_size()
        # Anything held from a previous connection is back in its queue.
        self.pending = []
        self.holding_since = None
        self.released = False
        super().start(c)
        self._tref = c.timer.call_repeatedly(self.tick, self.flush)

    def stop(self, c):
        self._cancel_timer()
        super().stop(c)

    def shutdown(self, c):
        self._cancel_timer()
        super().shutdown(c)

    def _cancel_timer(self) -> None:
        if self._tref is not None:
            self._tref.cancel()
            self._tref = None

    def on_message(self, message) -> None:
        self.pending.append(message)
        if len(self.pending) >= self.limit:
            self.flush()

    def flush(self) -> None:
        if self.released:
            self._maybe_resume()
            return
        if not self.pending or time.monotonic() < self.paused_until:
            return
        batch, self.pending = self.pending, []
        try:
            close_old_connections()
            self.handle(batch)
        except TRANSIENT_DATABASE_ERRORS as exc:
            self._pause(batch, exc)
            return
        except Exception:
            # Something in this batch cannot be stored (a bug, or data the
            # database refuses): find it, one message at a time.
            logger.exception("%s: batch failed; one by one", type(self).__name__)
            self._one_by_one(batch)
            return
        self.failures = 0
        self.holding_since = None
        _ack_all(batch)

    def _pause(self, batch: list[Any], exc: BaseException) -> None:
        """Keep every message unacked and try again after a growing pause;
        after ``WORKER_HOLD_MAX_SECONDS`` of that, hand them back instead."""
        self.pending = batch + self.pending
        self.failures += 1
        now = time.monotonic()
        if self.holding_since is None:
            self.holding_since = now
        delay = min(2 ** (self.failures - 1), self.max_backoff)
        self.paused_until = now + delay
        logger.warning(
            "%s: storing %d message(s) failed, retrying in %.0fs: %s",
            type(self).__name__,
            len(batch),
            delay,
            exc,
        )
        connection.close()
        if now - self.holding_since > settings.WORKER_HOLD_MAX_SECONDS:
            self._release()

    def _release(self) -> None:
        """Hand every held message back to its queue and stop consuming until
        the database answers again, rather than hold them past RabbitMQ's
        ``consumer_timeout`` (which would close the channel)."""
        for consumer in self.consumers or []:
            consumer.cancel()
        held, self.pending = self.pending, []
        for message in held:
            try:
                message.requeue()
            except Exception:  # noqa: BLE001 - the channel is gone: back anyway
                logger.debug("Could not requeue a held message", exc_info=True)
        self.released = True
        logger.warning(
            "%s: the database has been away for over %.0fs; %d message(s) "
            "handed back, consuming again once it answers",
            type(self).__name__,
            settings.WORKER_HOLD_MAX_SECONDS,
            len(held),
        )

    def _maybe_resume(self) -> None:
        if time.monotonic() < self.paused_until:
            return
        try:
            close_old_connections()
            connection.ensure_connection()
        except TRANSIENT_DATABASE_ERRORS:
            connection.close()
            self.paused_until = time.monotonic() + self.max_backoff
            return
        for consumer in self.consumers or []:
            consumer.consume()
        self.released = False
        self.holding_since = None
        self.failures = 0
        logger.info("%s: the database answers again; consuming", type(self).__name__)

    def _one_by_one(self, batch: list[Any]) -> None:
        for index, message in enumerate(batch):
            try:
                try:
                    self.handle([message])
                except TRANSIENT_DATABASE_ERRORS:
                    raise
                except Exception as exc:  # noqa: BLE001 - quarantined with the error
                    self.quarantine(message, exc)
            except Exception as exc:  # noqa: BLE001 - nothing stored: keep it
                self._pause(batch[index:], exc)
                return
            _ack([message])
        self.failures = 0

    def quarantine(self, message, exc: BaseException) -> None:
        """Store a message that broke its handler, whole, as "invalid message"."""
        queues = self.queues()
        record = dead_letter_for_message(
            message,
            reason=REASON_INVALID_MESSAGE,
            error="".join(traceback.format_exception(exc))[-8000:],
            queue=queues[0].name if len(queues) == 1 else "",
        )
        with transaction.atomic():
            dead_letters_store([record])
        logger.error(
            "%s: stored an unprocessable message: %s", type(self).__name__, exc
        )


def _ack_all(messages: list[Any]) -> None:
    """Ack a whole batch: one ``basic.ack`` with ``multiple`` for its last
    delivery tag on each channel. A batch always holds every unacked message
    of its channel (``flush`` takes all that is pending; what a failure
    kept goes back in front of it), so that acks exactly the batch."""
    last: dict[int, Any] = {}
    for message in messages:
        key = id(message.channel)
        if key not in last or message.delivery_tag > last[key].delivery_tag:
            last[key] = message
    try:
        for message in last.values():
            message.ack(multiple=True)
    except Exception:  # noqa: BLE001 - the channel is gone; they are redelivered
        logger.warning("Could not ack stored messages; they will come again")


def _ack(messages: list[Any]) -> None:
    for message in messages:
        try:
            message.ack()
        except Exception:  # noqa: BLE001 - the channel is gone; it is redelivered
            logger.warning("Could not ack a stored message; it will come again")
