"""Shared fixtures, including a real Celery worker on the real stack.

Tests marked ``real_stack`` need PostgreSQL as the Django database and
RabbitMQ as the broker (``DATABASE_URL`` and ``CELERY_BROKER_URL``). Without
them they skip; with ``CI=true`` they fail instead, so CI can never pass
without having run them.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from kombu import Connection

from portal.messaging import topology
from portal.messaging.subscriptions import subscriptions
from portal.testing.environment import SUBSCRIBER_APP, process_env
from portal.testing.processes import ROOT, Worker

__all__ = ["ROOT", "WorkerProcess", "real_stack_available", "worker_env"]


def real_stack_available() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and (
        settings.CELERY_BROKER_URL.startswith("amqp")
    )


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_unless_local(reason: str) -> None:
    """Skip a test whose components this machine lacks; in CI (``CI=true``)
    fail it instead, so that no real-stack or browser test is skipped there."""
    if in_ci():
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def pytest_collection_modifyitems(config, items):
    if real_stack_available():
        return
    reason = "needs PostgreSQL and RabbitMQ: set DATABASE_URL and CELERY_BROKER_URL"
    for item in items:
        if "real_stack" in item.keywords:
            if in_ci():
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


class WorkerProcess(Worker):
    """A ``celery worker`` subprocess on the test database and broker, started
    at once (``wait_ready()`` waits for it); ``queues``: the task queues to
    consume (by default every subscriber's, as the worker's settings name
    them)."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        concurrency: int = 2,
        queues: list[str] | None = None,
    ) -> None:
        super().__init__(
            env, log_path, queues=queues, concurrency=concurrency, name="test"
        )
        self.spawn()


def worker_env(**overrides: str) -> dict[str, str]:
    """The environment of a worker pointed at the test database, with the
    harness's second subscriber (``audit``) installed.

    The events its ingest consumer logs are routed by the worker itself,
    right after the commit (thread mode): no relay runs beside the tests (a
    session-wide one would route other tests' rows to the wrong queues).
    """
    return process_env(extra_apps=(SUBSCRIBER_APP,), **overrides)


@pytest.fixture(scope="session")
def feed_worker(  # the feed's and the audit subscriber's queues
    django_db_setup, django_db_blocker, tmp_path_factory
) -> Iterator[WorkerProcess]:
    """A real Celery worker consuming every subscriber's queue (the feed's
    and the tests' audit subscriber's) for the whole session."""
    if not real_stack_available():
        skip_unless_local("the real stack is not configured")
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
