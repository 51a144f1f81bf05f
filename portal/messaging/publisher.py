"""Moves committed outbox rows to RabbitMQ: the relay's publishing half.

``publish_pending`` is the one place outbox rows become messages. It locks the
rows it takes with ``SELECT … FOR UPDATE SKIP LOCKED`` so any number of relays
and web processes can run it at once without publishing a row twice, packs
their envelopes into task messages for ``feed.apply_events``, waits for the
broker's publisher confirm of each message, and only then marks the rows sent.

The background publisher is the after-commit fast path of web processes: it
runs ``publish_pending`` off the request thread, so a request never waits on
RabbitMQ, reachable or not.
"""

import atexit
import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from . import topology
from .models import OutboxMessage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishResult:
    sent: int = 0
    failed: int = 0
    error: str = ""


def _chunks(
    items: Sequence[tuple[int, dict[str, Any]]], size: int, max_bytes: int
) -> Iterable[Sequence[tuple[int, dict[str, Any]]]]:
    """(id, envelope) pairs in task-message sized groups: at most ``size``
    events and about ``max_bytes`` of JSON each (a lone bigger event still
    goes alone), so a batch never grows past what the consumer accepts."""
    chunk: list[tuple[int, dict[str, Any]]] = []
    used = 0
    for item in items:
        length = len(json.dumps(item[1], separators=(",", ":")))
        if chunk and (len(chunk) >= size or used + length > max_bytes):
            yield chunk
            chunk, used = [], 0
        chunk.append(item)
        used += length
    if chunk:
        yield chunk


def task_message_groups(
    items: Sequence[tuple[int, dict[str, Any]]],
) -> Iterable[Sequence[tuple[int, dict[str, Any]]]]:
    """(id, envelope) pairs grouped as the relay packs them into task messages:
    up to ``OUTBOX_EVENTS_PER_MESSAGE`` events, and JSON (measured compactly)
    within three quarters of ``FEED_TASK_MAX_BYTES``, leaving room for the
    task message's envelope and the spaces its encoder adds after every comma
    and colon."""
    return _chunks(
        items,
        settings.OUTBOX_EVENTS_PER_MESSAGE,
        settings.FEED_TASK_MAX_BYTES * 3 // 4,
    )


class _Connections(threading.local):
    """One broker connection per thread, to the broker the settings name now.

    Kept open between publishes (a handshake per event would dominate the
    cost); dropped after any failure so the next attempt starts clean.
    """

    connection: Any = None
    url: str | None = None
    reused = False
    blocked = ""

    def producer(self):
        from portal.celery import app

        url = settings.CELERY_BROKER_URL
        self.reused = self.connection is not None and self.url == url
        if not self.reused:
            self.reset()
            # No heartbeats: the connection idles between publishes and nothing
            # would drive them; a dead socket fails the next publish instead.
            self.blocked = ""
            self.connection = app.connection_for_write(
                url, heartbeat=0, transport_options=self._transport_options(url)
            )
            self.url = url
        if self.blocked:
            # RabbitMQ said it will not take messages now (memory or disk
            # alarm): fail at once rather than wait for a confirm. Its
            # connection.unblocked only arrives when we read: look for it.
            with contextlib.suppress(TimeoutError, OSError):
                self.connection.drain_events(timeout=0.05)
            if self.blocked:
                raise BrokerBlocked(self.blocked)
        # One attempt, no sleeping retries: the caller keeps the rows pending.
        self.connection.ensure_connection(max_retries=0)
        return self.connection.Producer()

    def _transport_options(self, url: str) -> dict[str, Any]:
        if not url.startswith(("amqp", "pyamqp")):
            return {}
        return {
            # A broker that stops reading (blocked, or a dead link) fails the
            # write instead of hanging the publisher thread or the relay.
            "write_timeout": settings.OUTBOX_PUBLISH_TIMEOUT,
            "read_timeout": settings.OUTBOX_PUBLISH_TIMEOUT,
            "on_blocked": self._on_blocked,
            "on_unblocked": self._on_unblocked,
        }

    def _on_blocked(self, reason: str) -> None:
        logger.warning("RabbitMQ blocked the publisher connection: %s", reason)
        self.blocked = reason or "connection blocked"

    def _on_unblocked(self) -> None:
        logger.info("RabbitMQ unblocked the publisher connection")
        self.blocked = ""

    def reset(self) -> None:
        if self.connection is not None:
            try:
                # Drop the socket without the close handshake: a stalled or
                # blocked broker would never answer it, and wait forever.
                self.connection.collect()
            except Exception:  # noqa: BLE001 - it is being thrown away
                logger.debug("Closing a failed broker connection", exc_info=True)
        self.connection = None
        self.url = None
        self.blocked = ""


class BrokerBlocked(ConnectionError):
    """RabbitMQ blocked the connection (``connection.blocked``)."""


_connections = _Connections()


def _send_batch(producer, envelopes: list[dict[str, Any]]) -> None:
    """Publish one task message carrying ``envelopes``; returns once confirmed.

    With ``confirm_publish`` on the amqp transport, kombu's publish blocks
    until RabbitMQ confirms the message (or raises), at most
    ``OUTBOX_PUBLISH_TIMEOUT`` seconds. ``mandatory``: a message no queue
    would take raises instead of vanishing. ``retry=False``: the caller
    decides what happens on failure, the rows stay pending.
    """
    from portal.celery import app

    app.send_task(
        topology.FEED_TASK,
        args=[envelopes],
        queue=topology.feed_queue(),
        producer=producer,
        retry=False,
        # Unroutable (no queue bound) is an error, not a silent drop: RabbitMQ
        # returns the message and py-amqp raises, so the rows stay pending.
        mandatory=True,
        # A confirm that never comes (blocked or cut-off broker) fails.
        confirm_timeout=settings.OUTBOX_PUBLISH_TIMEOUT,
    )


def publish_pending(
    *,
    ids: Sequence[int] | None = None,
    older_than: timedelta | None = None,
    limit: int | None = None,
) -> PublishResult:
    """Publish pending outbox rows and mark the confirmed ones sent.

    Selects pending rows (only ``ids`` if given; only rows older than
    ``older_than`` if given), at most ``limit``, skipping rows another
    publisher holds. Never raises for broker trouble: rows that could not be
    published stay pending with ``attempts`` and ``last_error`` updated, and
    the result says so.
    """
    limit = limit or settings.OUTBOX_RELAY_BATCH_SIZE
    with transaction.atomic():
        rows = OutboxMessage.objects.select_for_update(skip_locked=True).filter(
            status=OutboxMessage.Status.PENDING
        )
        if ids is not None:
            rows = rows.filter(pk__in=list(ids))
        if older_than is not None:
            rows = rows.filter(created_at__lte=timezone.now() - older_than)
        taken = list(rows.order_by("id").values_list("id", "envelope")[:limit])
        if not taken:
            return PublishResult()

        confirmed: list[int] = []
        error = ""
        while True:
            try:
                producer = _connections.producer()
                for chunk in task_message_groups(taken[len(confirmed) :]):
                    _send_batch(producer, [envelope for _, envelope in chunk])
                    confirmed.extend(pk for pk, _ in chunk)
            except BrokerBlocked as exc:
                # Keep the connection: it is the one that will hear
                # connection.unblocked. The relay tries again after a pause.
                error = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # noqa: BLE001 - any broker failure leaves rows pending
                reused = _connections.reused
                _connections.reset()
                if reused:
                    continue  # went stale while idle: once more, fresh
                error = f"{type(exc).__name__}: {exc}"
            break
        if error:
            logger.warning(
                "Publishing %d outbox row(s) failed, they stay pending: %s",
                len(taken) - len(confirmed),
                error,
            )

        now = timezone.now()
        if confirmed:
            OutboxMessage.objects.filter(pk__in=confirmed).update(
                status=OutboxMessage.Status.SENT,
                attempts=F("attempts") + 1,
                last_attempt_at=now,
                published_at=now,
                last_error="",
            )
        done = set(confirmed)
        failed = [pk for pk, _ in taken if pk not in done]
        if failed:
            OutboxMessage.objects.filter(pk__in=failed).update(
                attempts=F("attempts") + 1, last_attempt_at=now, last_error=error
            )
    return PublishResult(sent=len(confirmed), failed=len(failed), error=error)


class BackgroundPublisher:
    """A per-process thread that publishes rows right after their commit, or
    in notify mode wakes the relay to publish them (one NOTIFY per window).

    ``submit`` never blocks: if the queue is full or the broker recently
    failed, the row is left to the relay, which publishes every row still
    pending after ``OUTBOX_RELAY_GRACE_SECONDS``.
    """

    max_queued = 10_000
    pause_after_failure = 5.0
    flush_at_exit_seconds = 5.0

    def __init__(self) -> None:
        self._queue: queue.Queue[int] = queue.Queue(maxsize=self.max_queued)
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._paused_until = 0.0

    def submit(self, message_id: int) -> None:
        self._ensure_thread()
        try:
            self._queue.put_nowait(message_id)
        except queue.Full:
            logger.warning(
                "Publisher queue full; outbox row %s left to the relay", message_id
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far was handled (for tests/shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _ensure_thread(self) -> None:
        # A forked child (gunicorn, prefork workers) has no thread: start one.
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.Queue(maxsize=self.max_queued)
                thread = threading.Thread(
                    target=self._run, name="outbox-publisher", daemon=True
                )
                thread.start()
                self._pid = os.getpid()
                # A short-lived process (a management command, a script) gets
                # its rows out before it exits instead of leaving them to the
                # relay's grace period.
                atexit.register(self.flush, timeout=self.flush_at_exit_seconds)

    def _take_batch(self, first: int) -> list[int]:
        """The next ids to publish: what arrives within the coalescing window.

        The window (``OUTBOX_PUBLISH_COALESCE_MS``) starts with the first id,
        so a lone commit waits at most that long, and concurrent commits
        share one select, one confirmed message and one update.
        """
        ids = [first]
        limit = settings.OUTBOX_RELAY_BATCH_SIZE
        deadline = time.monotonic() + settings.OUTBOX_PUBLISH_COALESCE_MS / 1000
        while len(ids) < limit:
            try:
                ids.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                ids.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return ids

    def _run(self) -> None:
        from .outbox import notify_mode

        while True:
            first = self._queue.get()
            # The mode as it is now, not as it was when the wait began.
            if notify_mode():
                self._notify_once(first)
            else:
                self._publish_once(first)

    def _publish_once(self, first: int) -> None:
        ids = self._take_batch(first)
        try:
            if time.monotonic() < self._paused_until:
                return  # the broker just failed; the relay will retry
            result = publish_pending(ids=ids)
            if result.failed:
                self._paused_until = time.monotonic() + self.pause_after_failure
        except Exception:
            logger.exception("Background publish failed; rows left to the relay")
        finally:
            self._done(ids)

    def _notify_once(self, first: int) -> None:
        """Wake the relay at once, then at most once per coalescing window: a
        lone commit waits for nothing, a burst costs one NOTIFY per window."""
        ids = [first]
        while True:
            try:
                ids.append(self._queue.get_nowait())
            except queue.Empty:
                break
        try:
            notify_relay()
        except Exception:
            logger.exception("Waking the relay failed; its poll will find the rows")
        finally:
            self._done(ids)
        time.sleep(settings.OUTBOX_PUBLISH_COALESCE_MS / 1000)

    def _done(self, ids: list[int]) -> None:
        close_old_connections()
        for _ in ids:
            self._queue.task_done()


def notify_relay() -> None:
    """Wake the relays: one NOTIFY for every row committed in the window.

    Sent after the commits, in a transaction of its own: NOTIFY takes a
    cluster-wide lock at commit, so inside every outbox transaction it would
    serialize them (on the development machine 16 clients commit ~13,500
    inserts/s, ~4,000 when each also NOTIFYs).
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [settings.OUTBOX_NOTIFY_CHANNEL])


_background = BackgroundPublisher()


def background() -> BackgroundPublisher:
    return _background
