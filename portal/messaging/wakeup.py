"""After a commit: get the new log rows routed at once, without waiting on it.

``after_commit(ids)`` (from ``transaction.on_commit``) hands the rows to a
background thread of the committing process, which, depending on
``OUTBOX_PUBLISH_MODE``:

* ``notify`` (the default on PostgreSQL): sends ``NOTIFY`` on
  ``OUTBOX_NOTIFY_CHANNEL``; the relay ``LISTEN``s and routes at once. Web
  processes never connect to RabbitMQ. One NOTIFY per
  ``OUTBOX_PUBLISH_COALESCE_MS`` window whatever the number of commits.
* ``thread``: routes the rows itself (``router.route_pending``), the commits
  of one coalescing window together.
* ``inline``: routes them in the committing thread (scripts).
* ``off``: nothing; the relay's poll finds them after its grace period.

Whatever this misses (a full queue, a broker that just failed, a process
that died), the relay's poll routes.
"""

import atexit
import logging
import os
import queue
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)


def notify_mode() -> bool:
    """Does the relay route new rows when a committing process NOTIFYs it?"""
    return (
        settings.OUTBOX_PUBLISH_MODE == "notify" and connection.vendor == "postgresql"
    )


def after_commit(ids: list[int]) -> None:
    mode = settings.OUTBOX_PUBLISH_MODE
    if mode == "off":
        return
    if mode == "inline":
        from .router import route_pending

        route_pending(ids=ids)
        return
    _background.submit(ids)


class BackgroundPublisher:
    """A per-process thread that routes rows right after their commit, or
    in notify mode wakes the relay to route them (one NOTIFY per window).

    ``submit`` never blocks: if the queue is full or the broker recently
    failed, the rows are left to the relay, which routes every row still
    pending after ``OUTBOX_RELAY_GRACE_SECONDS``. The queue holds one item
    per commit (its row ids).
    """

    max_queued = 10_000
    pause_after_failure = 5.0
    flush_at_exit_seconds = 5.0

    def __init__(self) -> None:
        self._queue: queue.Queue[list[int]] = queue.Queue(maxsize=self.max_queued)
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._paused_until = 0.0

    def submit(self, ids: list[int]) -> None:
        """Route (or wake the relay for) the rows of one commit."""
        self._ensure_thread()
        try:
            self._queue.put_nowait(ids)
        except queue.Full:
            logger.warning(
                "Publisher queue full; log row(s) %s left to the relay",
                ", ".join(map(str, ids[:10])) + (" …" if len(ids) > 10 else ""),
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far was handled (for tests/shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def unpause(self) -> None:
        """Forget a recent broker failure (tests start each case afresh)."""
        self._paused_until = 0.0

    def _ensure_thread(self) -> None:
        # A forked child (gunicorn, prefork workers) has no thread: start one.
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._queue = queue.Queue(maxsize=self.max_queued)
                thread = threading.Thread(
                    target=self._run, name="event-log-wakeup", daemon=True
                )
                thread.start()
                self._pid = os.getpid()
                # A short-lived process (a management command, a script) gets
                # its rows out before it exits instead of leaving them to the
                # relay's grace period.
                atexit.register(self.flush, timeout=self.flush_at_exit_seconds)

    def _take_batch(self, first: list[int]) -> list[list[int]]:
        """The next commits to route: what arrives within the coalescing
        window.

        The window (``OUTBOX_PUBLISH_COALESCE_MS``) starts with the first
        commit, so a lone commit waits at most that long, and concurrent
        commits share one select, one confirmed publish and one update.
        """
        commits = [first]
        count = len(first)
        limit = settings.OUTBOX_RELAY_BATCH_SIZE
        deadline = time.monotonic() + settings.OUTBOX_PUBLISH_COALESCE_MS / 1000
        while count < limit:
            try:
                commits.append(self._queue.get_nowait())
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    commits.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            count += len(commits[-1])
        return commits

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            # The mode as it is now, not as it was when the wait began.
            if notify_mode():
                self._notify_once(first)
            else:
                self._route_once(first)

    def _route_once(self, first: list[int]) -> None:
        from .router import route_pending

        commits = self._take_batch(first)
        try:
            if time.monotonic() < self._paused_until:
                return  # the broker just failed; the relay will retry
            result = route_pending(ids=[pk for ids in commits for pk in ids])
            if result.failed:
                self._paused_until = time.monotonic() + self.pause_after_failure
        except Exception:
            logger.exception("Background routing failed; rows left to the relay")
        finally:
            self._done(len(commits))

    def _notify_once(self, first: list[int]) -> None:
        """Wake the relay at once, then at most once per coalescing window: a
        lone commit waits for nothing, a burst costs one NOTIFY per window."""
        commits = 1
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            commits += 1
        try:
            notify_relay()
        except Exception:
            logger.exception("Waking the relay failed; its poll will find the rows")
        finally:
            self._done(commits)
        time.sleep(settings.OUTBOX_PUBLISH_COALESCE_MS / 1000)

    def _done(self, commits: int) -> None:
        close_old_connections()
        for _ in range(commits):
            self._queue.task_done()


def notify_relay() -> None:
    """Wake the relays: one NOTIFY for every row committed in the window.

    Sent after the commits, in a transaction of its own: NOTIFY takes a
    cluster-wide lock at commit, so inside every log transaction it would
    serialize them.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [settings.OUTBOX_NOTIFY_CHANNEL])


_background = BackgroundPublisher()


def background() -> BackgroundPublisher:
    return _background
