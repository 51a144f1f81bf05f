"""The outbox relay: publishes every row the after-commit fast path did not.

Run it as ``manage.py relay_outbox`` (one or more processes, on any hosts).
Rows are taken with ``SKIP LOCKED``, so relays never publish the same row at
the same time; a row is marked sent only after RabbitMQ confirmed it.
"""

import logging
import signal
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections

from .publisher import PublishResult, publish_pending

logger = logging.getLogger(__name__)


class Relay:
    max_backoff = 30.0

    def __init__(
        self,
        *,
        grace: float | None = None,
        interval: float | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.grace = timedelta(
            seconds=settings.OUTBOX_RELAY_GRACE_SECONDS if grace is None else grace
        )
        self.interval = (
            settings.OUTBOX_RELAY_INTERVAL_SECONDS if interval is None else interval
        )
        self.batch_size = batch_size or settings.OUTBOX_RELAY_BATCH_SIZE
        self.stopping = threading.Event()

    def run_once(self) -> PublishResult:
        """Publish one batch of overdue rows."""
        return publish_pending(older_than=self.grace, limit=self.batch_size)

    def drain(self) -> int:
        """Publish overdue rows until none is left or the broker fails."""
        total = 0
        while not self.stopping.is_set():
            result = self.run_once()
            total += result.sent
            if result.failed or result.sent < self.batch_size:
                break
        return total

    def run_forever(self) -> None:
        """Loop until stopped, backing off (iteratively) while the broker fails."""
        failures = 0
        logger.info(
            "Relay started: grace %.1fs, interval %.1fs, batch %d",
            self.grace.total_seconds(),
            self.interval,
            self.batch_size,
        )
        while not self.stopping.is_set():
            try:
                result = self.run_once()
            except Exception:
                logger.exception("Relay pass failed (database?)")
                result = PublishResult(failed=1, error="database")
            finally:
                close_old_connections()
            if result.sent:
                logger.info("Relayed %d event(s)", result.sent)
            if result.failed:
                failures += 1
                delay = min(self.interval * 2**failures, self.max_backoff)
                logger.warning("Relay backing off %.1fs: %s", delay, result.error)
            else:
                failures = 0
                if result.sent >= self.batch_size:
                    continue  # more is waiting: go again at once
                delay = self.interval
            self.stopping.wait(delay)
        logger.info("Relay stopped")

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stopping.set())
