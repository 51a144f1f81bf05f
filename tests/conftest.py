"""Shared fixtures, including a real Celery worker on the real stack.

Tests marked ``real_stack`` need PostgreSQL as the Django database and
RabbitMQ as the broker (``DATABASE_URL`` and ``CELERY_BROKER_URL``). Without
them they skip; with ``CI=true`` they fail instead, so CI can never pass
without having run them.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from kombu import Connection

from portal.messaging import topology
from portal.messaging.subscriptions import subscriptions

ROOT = Path(__file__).resolve().parent.parent


def real_stack_available() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and (
        settings.CELERY_BROKER_URL.startswith("amqp")
    )


def pytest_collection_modifyitems(config, items):
    if real_stack_available():
        return
    in_ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    reason = "needs PostgreSQL and RabbitMQ: set DATABASE_URL and CELERY_BROKER_URL"
    for item in items:
        if "real_stack" in item.keywords:
            if in_ci:
                item.add_marker(pytest.mark.usefixtures("_fail_without_real_stack"))
            else:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def _fail_without_real_stack():
    pytest.fail(
        "CI=true but the real stack is not configured (DATABASE_URL, CELERY_BROKER_URL)"
    )


@pytest.fixture
def broker() -> Iterator[Connection]:
    """A connection to the configured RabbitMQ, with the topology declared."""
    with Connection(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=3)
        topology.declare(conn)
        yield conn


def subscriber_queue_names() -> list[str]:
    """Every subscription's task and dead-letter queue, as named now."""
    return [
        name
        for subscription in subscriptions()
        for name in (subscription.queue, subscription.dead_letter_queue)
    ]


def _purge(conn: Connection) -> None:
    channel = conn.channel()
    for name in subscriber_queue_names():
        channel.queue_purge(name)
    channel.close()


@pytest.fixture
def clean_queues(broker: Connection) -> Iterator[Connection]:
    """Empty every subscriber's queues before and after the test."""
    _purge(broker)
    yield broker
    _purge(broker)


class WorkerProcess:
    """A ``celery worker`` subprocess on the test database and broker."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        concurrency: int = 2,
        queues: list[str] | None = None,
    ) -> None:
        """``queues``: the task queues to consume (by default every
        subscriber's, as the worker's own settings name them)."""
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        only = [f"--queues={','.join(queues)}"] if queues else []
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "portal", "worker",
                "--loglevel=INFO", f"--concurrency={concurrency}", *only,
                "--without-mingle", "--without-gossip",
                f"--hostname=test-{os.getpid()}-{time.monotonic_ns()}@%h",
            ],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while "ready." not in self.log():
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready in {timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def worker_env(**overrides: str) -> dict[str, str]:
    """The environment of a worker pointed at the test database, with the
    tests' own subscriber app installed."""
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings.base",
        DATABASE_URL=(
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}"
            f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CONN_MAX_AGE="0",
        PORTAL_EXTRA_APPS="tests.subscriber_app",
        # The events its ingest consumer logs are routed by the worker
        # itself, right after the commit: no relay runs beside the tests (a
        # session-wide one would route other tests' rows to the wrong queues).
        OUTBOX_PUBLISH_MODE="thread",
    )
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def feed_worker(  # the feed's and the audit subscriber's queues
    django_db_setup, django_db_blocker, tmp_path_factory
) -> Iterator[WorkerProcess]:
    """A real Celery worker consuming every subscriber's queue (the feed's
    and the tests' audit subscriber's) for the whole session."""
    if not real_stack_available():
        pytest.skip("needs the real stack")
    with django_db_blocker.unblock():
        env = worker_env()
    worker = WorkerProcess(env, tmp_path_factory.mktemp("worker") / "worker.log")
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def inline_publish(settings):
    """Publish outbox rows right in the committing thread."""
    settings.OUTBOX_PUBLISH_MODE = "inline"


@pytest.fixture(autouse=True)
def _fresh_background_publisher():
    """A broker failure in one test pauses this process's fast path for a few
    seconds (rows go to the relay meanwhile); the next test starts unpaused."""
    from portal.messaging.wakeup import background

    background().unpause()
