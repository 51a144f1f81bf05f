"""Fixtures for the feed tests: workers of a test's own."""

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import WorkerProcess, real_stack_available, worker_env
from tests.messaging.conftest import delete_private_queues, private_queue_names


@pytest.fixture
def own_worker(tmp_path, settings) -> Iterator[Callable[..., WorkerProcess]]:
    """Start a worker (or its successor) on this test's private queues.

    ``start(prefix)`` points this test process and the worker at the queues
    ``prefix``, ``prefix.dead`` and ``prefix.ingest``, out of the session
    worker's reach. The queues are emptied before the first worker of a
    prefix, kept for the next one (a restarted worker finds what was left),
    and deleted after the test.
    """
    if not real_stack_available():
        pytest.skip("needs the real stack")
    workers: list[WorkerProcess] = []
    prefixes: list[str] = []

    def start(prefix: str, concurrency: int = 1, **env: str) -> WorkerProcess:
        names = private_queue_names(prefix)
        settings.FEED_QUEUE = names["FEED_QUEUE"]
        settings.FEED_INGEST_QUEUE = names["FEED_INGEST_QUEUE"]
        if prefix not in prefixes:
            delete_private_queues(prefix)
            prefixes.append(prefix)
        worker = WorkerProcess(
            worker_env(**names, **env),
            tmp_path / f"worker-{len(workers)}.log",
            concurrency=concurrency,
        )
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()
    for prefix in prefixes:
        delete_private_queues(prefix)
