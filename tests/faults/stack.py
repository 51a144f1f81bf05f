"""The moving parts of the fault-injection scenarios: worker and relay
subprocesses that can be killed and restarted, publishing, and counting.

Nothing here depends on pytest, so ``bench/chaos.py`` runs the very same
scenarios at a larger scale. Django must be set up before importing this.
"""

import base64
import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection
from kombu import Connection, Exchange

from feed.models import FeedEvent
from feed.subscriptions import FEED
from portal.messaging import topology
from portal.messaging.models import DeadLetter
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
# Short enough for a test, long enough (30 s in all) to outlast a 10 s outage.
RETRY_DELAYS = "2,4,8,16"
SOURCE = "/chaos"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.1
) -> Any:
    return wait_for(predicate, timeout=timeout, what=what, interval=interval)


def database_url() -> str:
    """The URL of the database Django uses now (the test database under pytest)."""
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}"
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def via_port(url: str, port: int) -> str:
    """``url`` with its host and port replaced by ``127.0.0.1:port``."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def process_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings.base",
        DATABASE_URL=database_url(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        FEED_QUEUE=settings.FEED_QUEUE,
        INGEST_QUEUE=settings.INGEST_QUEUE,
        FEED_DELIVERY_LIMIT=str(settings.FEED_DELIVERY_LIMIT),
        FEED_RETRY_DELAYS=RETRY_DELAYS,
        CONN_MAX_AGE="0",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
        # What a worker's ingest consumer logs, it routes right after the
        # commit; a relay's poll picks up what that misses where one runs.
        OUTBOX_PUBLISH_MODE="thread",
    )
    env.update(overrides)
    return env


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


class Supervised:
    """A subprocess in its own process group, optionally restarted when it dies
    (what systemd, Kubernetes or docker's ``restart:`` would do)."""

    ready_marker: str | None = None

    def __init__(
        self, argv: list[str], env: dict[str, str], log_path: Path, supervise=False
    ):
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.supervise = supervise
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self._offset = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> None:
        with self._lock:
            self._spawn()
        self.wait_ready(timeout)
        if self.supervise and self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, daemon=True)
            self._watcher.start()

    def _spawn(self) -> None:
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def log(self, since_start: bool = False) -> str:
        text = self.log_path.read_text(errors="replace")
        return text[self._offset :] if since_start else text

    def wait_ready(self, timeout: float = 60.0) -> None:
        if self.ready_marker is None:
            return
        deadline = time.monotonic() + timeout
        while self.ready_marker not in self.log(since_start=True):
            if not self.supervise and not self.alive():
                raise RuntimeError(f"{self.argv} exited early:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready in {timeout}s:\n{self.log()[-4000:]}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def children(self) -> list[int]:
        return _children(self.pid) if self.alive() else []

    def _watch(self) -> None:
        while not self._stopping.is_set():
            time.sleep(0.2)
            with self._lock:
                if self._stopping.is_set() or self.alive():
                    continue
                self._killpg(signal.SIGKILL)  # orphans of the dead process
                self._spawn()

    def wait_restarted(self, starts: int, timeout: float = 60.0) -> None:
        wait_until(
            lambda: self.starts > starts, timeout=timeout, what="process restarted"
        )
        self.wait_ready(timeout)

    def _killpg(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the process and everything it started, like a lost machine."""
        self._killpg(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def kill_child(self) -> int | None:
        """SIGKILL one child process (a pool process of a worker)."""
        for pid in self.children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                return pid
        return None

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            if self.alive():
                self.process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=20)
            self._killpg(signal.SIGKILL)
            if self.process is not None:
                self.process.wait()


class Worker(Supervised):
    """``celery worker`` consuming the feed queue."""

    ready_marker = "ready."

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        app: str = "portal",
        concurrency: int = 2,
        supervise: bool = False,
    ):
        argv = [
            sys.executable, "-m", "celery", "-A", app, "worker",
            "--loglevel=INFO", f"--concurrency={concurrency}",
            f"--queues={FEED.queue}",
            "--without-mingle", "--without-gossip",
            f"--hostname=chaos-{os.getpid()}-{time.monotonic_ns()}@%h",
        ]  # fmt: skip
        super().__init__(argv, env, log_path, supervise=supervise)

    def crashed(self) -> bool:
        """The main process died or gave up (Celery's "Unrecoverable error")."""
        return not self.alive() or "Unrecoverable error" in self.log()

    def lost_children(self) -> int:
        """Pool processes that died under a task (Celery logs each one)."""
        return len(re.findall(r"Process '\S+' pid:\d+ exited with", self.log()))


class RelayProcess(Supervised):
    """``manage.py relay_outbox``."""

    ready_marker = "Relay started"

    def __init__(self, env: dict[str, str], log_path: Path):
        super().__init__(
            [sys.executable, "manage.py", "relay_outbox"], env, log_path, False
        )


# --- events and publishing ---------------------------------------------------


def valid_event(n: int, *, event_id: str | None = None) -> dict[str, Any]:
    """A valid ``employee.registered`` CloudEvent, plain JSON types only."""
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": SOURCE,
        "type": "employee.registered",
        "time": (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n)).isoformat(),
        "datacontenttype": "application/json",
        "data": {
            "employee_id": n,
            "full_name": f"Person {n}",
            "position": "Engineer",
            "department": "Chaos",
            "team": None,
        },
    }


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextlib.contextmanager
def broker_connection(url: str | None = None) -> Iterator[Connection]:
    from portal.celery import app

    with app.connection_for_write(url or settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=3)
        yield conn


class Publisher:
    """Publishes to the feed queue over one connection, each message confirmed."""

    def __init__(self, url: str | None = None) -> None:
        self._url = url
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "Publisher":
        self.conn = self._stack.enter_context(broker_connection(self._url))
        self.producer = self.conn.Producer()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def task(self, batch: list[Any], name: str = FEED.task) -> None:
        """A task message as the relay sends it (``feed.apply_events``)."""
        from portal.celery import app

        app.send_task(
            name,
            args=[batch] if name == FEED.task else batch,
            queue=topology.subscription_queue(FEED),
            producer=self.producer,
            retry=False,
        )

    def raw(self, msg: "RawMessage") -> None:
        """Bytes put on a queue as they are."""
        exchange = (
            Exchange(msg.exchange, type="topic", durable=True) if msg.exchange else ""
        )
        self.producer.publish(
            msg.body,
            exchange=exchange,
            routing_key=msg.routing_key or FEED.queue,
            content_type=msg.content_type,
            content_encoding="utf-8",
            headers=msg.headers,
            delivery_mode=2,
            retry=False,
            **msg.properties,
        )


def publish_tasks(batches: Iterable[list[Any]], *, url: str | None = None) -> int:
    """Publish ``feed.apply_events`` task messages, each confirmed by RabbitMQ."""
    sent = 0
    with Publisher(url) as publisher:
        for batch in batches:
            publisher.task(batch)
            sent += 1
    return sent


@dataclass(frozen=True)
class RawMessage:
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, Any] = field(default_factory=dict)
    exchange: str = topology.TASKS_EXCHANGE  # "": straight to the queue named
    routing_key: str | None = None  # default: the feed queue
    properties: dict[str, Any] = field(default_factory=dict)


def queue_depth(name: str | None = None) -> int:
    with broker_connection() as conn:
        channel = conn.channel()
        try:
            _, count, _ = channel.queue_declare(queue=name or FEED.queue, passive=True)
            return count
        finally:
            channel.close()


def _queues() -> tuple[str, ...]:
    return (
        FEED.queue,
        FEED.dead_letter_queue,
        topology.ingest_queue_name(),
    )


def prepare_broker() -> None:
    """Declare the topology and empty the scenario's queues."""
    with broker_connection() as conn:
        topology.declare(conn)
        topology.declare_ingest(conn)
        channel = conn.channel()
        for name in _queues():
            channel.queue_purge(name)
        channel.close()


def remove_queues() -> None:
    """Delete the scenario's own queues; the ingest queue is bound to every key
    of ``portal.events`` and would otherwise keep a copy of every event."""
    with broker_connection() as conn:
        channel = conn.channel()
        for name in _queues():
            channel.queue_delete(name)
        channel.close()


# --- counting ------------------------------------------------------------------


@dataclass
class Outcome:
    """Counted by event id (or by marker, for messages that have no id)."""

    scenario: str
    sent: int
    in_feed: int
    lost: int
    duplicated: int
    dead_lettered: int
    drain_seconds: float | None
    unexpected_in_feed: int = 0
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> list[str]:
        drain = "-" if self.drain_seconds is None else f"{self.drain_seconds:.1f} s"
        return [
            self.scenario,
            str(self.sent),
            str(self.in_feed),
            str(self.lost),
            str(self.duplicated),
            str(self.dead_lettered),
            drain,
        ]


def feed_counts() -> Counter:
    return Counter(FeedEvent.objects.values_list("event_id", flat=True).iterator())


def dead_letter_counts() -> Counter:
    """How many dead-letter records mention each UUID (id or marker)."""
    found: Counter = Counter()
    for record in DeadLetter.objects.values().iterator():
        found.update(set(_UUID.findall(_record_text(record))))
    return found


def _record_text(record: dict[str, Any]) -> str:
    text = " ".join(str(value) for value in record.values())
    if record.get("body_encoding") == "base64":
        with contextlib.suppress(ValueError):
            text += base64.b64decode(record["body"]).decode("latin-1")
    return text


def dead_letter_reasons(tokens: Iterable[str]) -> dict[str, str]:
    """The reason recorded for each token found in the dead-letter store."""
    wanted = set(tokens)
    reasons: dict[str, str] = {}
    for record in DeadLetter.objects.values().iterator():
        for token in set(_UUID.findall(_record_text(record))) & wanted:
            reasons[token] = record["reason"]
    return reasons


def count(
    scenario: str,
    *,
    to_feed: Iterable[str],
    to_dead: Iterable[str] = (),
    drain_seconds: float | None,
) -> Outcome:
    """Count every expected event: in the feed, dead-lettered, lost, duplicated.

    ``to_feed`` are ids that must reach the feed, ``to_dead`` markers of
    messages that must reach the dead-letter store. Duplicated counts extra
    copies of either; lost counts those found nowhere.
    """
    to_feed, to_dead = set(to_feed), set(to_dead)
    feed = feed_counts()
    dead = dead_letter_counts()
    in_feed = sum(1 for i in to_feed if feed[i])
    dead_lettered = sum(1 for m in itertools.chain(to_feed, to_dead) if dead[m])
    lost = sum(1 for i in to_feed if not feed[i] and not dead[i]) + sum(
        1 for m in to_dead if not dead[m] and not feed[m]
    )
    duplicated = sum(max(feed[i] - 1, 0) for i in to_feed) + sum(
        max(dead[m] - 1, 0) for m in to_dead
    )
    unexpected = sum(n for i, n in feed.items() if i not in to_feed)
    return Outcome(
        scenario=scenario,
        sent=len(to_feed) + len(to_dead),
        in_feed=in_feed,
        lost=lost,
        duplicated=duplicated,
        dead_lettered=dead_lettered,
        drain_seconds=drain_seconds,
        unexpected_in_feed=unexpected,
    )


def wait_drained(
    to_feed: set[str],
    to_dead: set[str] = frozenset(),
    *,
    timeout: float,
    give_up: Callable[[], bool] = lambda: False,
) -> None:
    """Wait until every expected event is where it should be (or ``give_up()``),
    then let any late redelivery land, so that duplicates would show."""

    def done() -> bool:
        if give_up():
            return True
        feed = feed_counts()
        if any(not feed[i] for i in to_feed):
            return False
        if to_dead:
            dead = dead_letter_counts()
            return all(dead[m] for m in to_dead)
        return True

    with contextlib.suppress(AssertionError):
        wait_until(done, timeout=timeout, what="every event delivered", interval=0.25)
    time.sleep(1.0)
