"""The relay: routes committed log rows to their destinations, for ever.

Run it as ``manage.py relay_outbox`` (one or more processes, on any hosts).
On PostgreSQL it LISTENs for the NOTIFY sent after each log commit and
routes at once; it also polls, routing every row still pending after the
grace period (a missed notification, a relay that was down, a broker that
was away). Rows are taken with ``SKIP LOCKED``, so relays never route the
same row at the same time; a destination counts as delivered only after
RabbitMQ confirmed it (``router.route_pending``).
"""

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import psycopg
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from psycopg import sql

from portal.observability.heartbeat import heartbeat_touch

from . import metrics
from .amqp_publish import publisher_connection, publisher_reset
from .models import RelayHeartbeat
from .retention import events_prune_if_due
from .router import RouteResult, route_pending
from .subscriptions import BROADCAST, subscriptions
from .wakeup import notify_mode

logger = logging.getLogger(__name__)


class Relay:
    max_backoff = 30.0

    def __init__(
        self,
        *,
        grace: float | None = None,
        interval: float | None = None,
        batch_size: int | None = None,
        threads: int | None = None,
    ) -> None:
        self.grace = timedelta(
            seconds=settings.OUTBOX_RELAY_GRACE_SECONDS if grace is None else grace
        )
        self.interval = (
            settings.OUTBOX_RELAY_INTERVAL_SECONDS if interval is None else interval
        )
        self.batch_size = batch_size or settings.OUTBOX_RELAY_BATCH_SIZE
        self.threads = threads or settings.OUTBOX_RELAY_THREADS
        self.stopping = threading.Event()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.started_at = timezone.now()
        self._duty_clock: dict[str, float] = {}
        metrics.metrics_initialize_destinations(
            [*(s.name for s in subscriptions()), BROADCAST]
        )

    def run_once(self, *, notified: bool = False) -> RouteResult:
        """Route one batch of overdue rows, or of every pending row after a
        NOTIFY (in notify mode nothing else routes them)."""
        older_than = None if notified and notify_mode() else self.grace
        return route_pending(older_than=older_than, limit=self.batch_size)

    def drain(self) -> int:
        """Route overdue rows until none is left or the broker fails."""
        if self._concurrent():
            return self._catch_up(notified=False)
        return self._drain_serially(notified=False)

    def _drain_serially(self, *, notified: bool, until: float | None = None) -> int:
        """Passes until one takes less than a batch, fails, or ends after
        ``until`` (a ``time.monotonic()`` deadline)."""
        total = 0
        while not self.stopping.is_set():
            result = self.run_once(notified=notified)
            total += result.sent
            if result.failed or result.sent < self.batch_size:
                break
            if until is not None and time.monotonic() >= until:
                break
        return total

    def _concurrent(self) -> bool:
        # SQLite (the embedded default) takes one writer at a time; inside a
        # caller's transaction, the passes belong to that transaction.
        default = connections["default"]
        return (
            self.threads > 1
            and default.vendor == "postgresql"
            and not default.in_atomic_block
        )

    def _catch_up(self, *, notified: bool, until: float | None = None) -> int:
        """A backlog: ``threads`` passes in flight at once, until one of them
        takes less than a batch or fails (or ``until``). Each thread has its
        own database and broker connection, and ``SKIP LOCKED`` gives each
        its own rows, so one pass's SELECT, UPDATE and commit and another's
        confirms overlap the relay's own work on a third."""
        with ThreadPoolExecutor(self.threads, thread_name_prefix="relay-pass") as pool:
            passes = [
                pool.submit(self._drain_in_thread, notified, until)
                for _ in range(self.threads)
            ]
            return sum(future.result() for future in passes)

    def _drain_in_thread(self, notified: bool, until: float | None) -> int:
        try:
            return self._drain_serially(notified=notified, until=until)
        except Exception:
            logger.exception("Relay pass failed (database?)")
            return 0
        finally:
            publisher_reset()
            connections.close_all()

    def run_forever(self) -> None:
        """Loop until stopped, backing off (iteratively) while the broker fails."""
        failures = 0
        logger.info(
            "Relay started: grace %.1fs, interval %.1fs, batch %d",
            self.grace.total_seconds(),
            self.interval,
            self.batch_size,
        )
        listener = _Listener(self.stopping) if notify_mode() else None
        notified = True  # a first full pass: whatever was notified while down
        gap = settings.OUTBOX_RELAY_PASS_GAP_MS / 1000
        try:
            while not self.stopping.is_set():
                pass_started = time.monotonic()
                try:
                    result = self.run_once(notified=notified)
                except Exception:
                    logger.exception("Relay pass failed (database?)")
                    result = RouteResult(failed=1, error="database")
                finally:
                    close_old_connections()
                if result.sent:
                    logger.info("Relayed %d event(s)", result.sent)
                if not result.failed:
                    # Only a pass that routed what it took counts as one:
                    # the heartbeat is "the last successful pass".
                    self.duties()
                if result.failed:
                    failures += 1
                    delay = min(self.interval * 2**failures, self.max_backoff)
                    logger.warning("Relay backing off %.1fs: %s", delay, result.error)
                    self.stopping.wait(delay)
                    notified = True  # rows notified meanwhile are still due
                    continue
                failures = 0
                if result.sent >= self.batch_size:
                    # More is waiting: catch up, then go again at once (a
                    # failure meanwhile is met again by the next pass).
                    # Back to the loop at the heartbeat's pace, for its duties.
                    if self._concurrent():
                        caught_up = self._catch_up(
                            notified=notified,
                            until=time.monotonic() + settings.RELAY_HEARTBEAT_SECONDS,
                        )
                        logger.info("Relayed %d event(s)", caught_up)
                    continue
                if listener is not None:
                    notified = listener.wait(self.interval)
                    if notified:
                        # Let the commits of the rest of the gap join this pass.
                        self.stopping.wait(gap - (time.monotonic() - pass_started))
                else:
                    self.stopping.wait(self.interval)
        finally:
            if listener is not None:
                listener.close()
        logger.info("Relay stopped")

    def duties(self) -> None:
        """What the relay does besides routing, each at its own pace: its
        heartbeat (database row and file), the subscribers' queue depths for
        the metrics, retention. None of them may stop the routing."""
        clock = time.monotonic()
        due = self._duty_clock
        try:
            if (
                clock - due.get("beat", float("-inf"))
                >= settings.RELAY_HEARTBEAT_SECONDS
            ):
                due["beat"] = clock
                relay_heartbeat_record(self.name, self.started_at)
                heartbeat_touch("relay")
            if (
                clock - due.get("queues", float("-inf"))
                >= settings.RELAY_QUEUE_CHECK_SECONDS
            ):
                due["queues"] = clock
                queue_depths_observe()
            events_prune_if_due(due, clock=clock)
        except Exception:  # noqa: BLE001 - logged; routing goes on
            logger.exception("Relay duty failed")
        finally:
            close_old_connections()

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stopping.set())


class _Listener:
    """A connection of its own that LISTENs for the outbox's NOTIFY.

    ``wait`` returns True as soon as a notification arrives (or one came in
    while the relay was publishing), False after ``timeout`` without one. A
    lost connection is reopened on the next wait, which then returns True at
    once (what was notified meanwhile is lost, so the relay looks at every
    pending row); until then the relay polls.
    """

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._wrapper: BaseDatabaseWrapper | None = None

    def wait(self, timeout: float) -> bool:
        started = time.monotonic()
        try:
            if self._wrapper is None:
                self._connect()
                # Notifications sent while nobody listened are lost: look now.
                return True
            conn = self._wrapper.connection
            deadline = started + timeout
            # In slices, so that stopping the relay is never far away.
            while not self._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if any(
                    True for _ in conn.notifies(timeout=min(left, 1.0), stop_after=1)
                ):
                    return True
            return False
        except (DatabaseError, psycopg.Error) as exc:
            logger.warning("Relay LISTEN connection lost (%s); polling", exc)
            self.close()
            # Wait out the rest of the interval before polling again.
            self._stopping.wait(max(0.0, timeout - (time.monotonic() - started)))
            return False

    def _connect(self) -> None:
        wrapper = connections.create_connection("default")
        try:
            wrapper.ensure_connection()
            wrapper.connection.autocommit = True
            wrapper.connection.execute(
                sql.SQL("LISTEN {}").format(
                    sql.Identifier(settings.OUTBOX_NOTIFY_CHANNEL)
                )
            )
        except BaseException:
            wrapper.close()
            raise
        self._wrapper = wrapper

    def close(self) -> None:
        if self._wrapper is not None:
            try:
                self._wrapper.close()
            except Exception:  # noqa: BLE001 - it is being dropped anyway
                logger.debug("Closing the LISTEN connection failed", exc_info=True)
            self._wrapper = None


def relay_heartbeat_record(relay: str, started_at: datetime) -> None:
    """Record that ``relay`` just finished a pass (one statement)."""
    now = timezone.now()
    RelayHeartbeat.objects.bulk_create(
        [RelayHeartbeat(relay=relay, started_at=started_at, last_pass_at=now)],
        update_conflicts=True,
        unique_fields=["relay"],
        update_fields=["last_pass_at"],
    )


def queue_depths_observe() -> None:
    """Ready messages and consumers of each subscriber's task queue, for the
    metrics (a passive declare each, on the relay's publisher connection)."""
    if not settings.CELERY_BROKER_URL.startswith(("amqp", "pyamqp")):
        return
    try:
        connection = publisher_connection()
    except Exception as exc:  # noqa: BLE001 - the broker is away: nothing to say
        logger.debug("Queue depths not read: %s", exc)
        publisher_reset()
        return
    for subscription in subscriptions():
        channel = connection.channel()
        try:
            _, messages, consumers = channel.queue_declare(
                queue=subscription.queue, passive=True
            )
        except Exception:  # noqa: BLE001 - not declared yet
            continue
        finally:
            with contextlib.suppress(Exception):  # closed by the broker already
                channel.close()
        metrics.QUEUE_MESSAGES.labels(subscription.name).set(messages)
        metrics.QUEUE_CONSUMERS.labels(subscription.name).set(consumers)
