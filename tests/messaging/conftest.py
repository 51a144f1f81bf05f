"""Fixtures for the messaging tests: private workers and a cuttable database link."""

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress

import pytest

from portal.messaging import topology
from portal.testing.broker import queues_delete
from portal.testing.urls import database_url, host_port
from tests.conftest import (
    WorkerProcess,
    real_stack_available,
    skip_unless_local,
    worker_env,
)


class TcpProxy:
    """A TCP forwarder that can refuse and cut connections on demand.

    Put between a worker and PostgreSQL, it makes the database unreachable to
    that worker alone (``cut()``) and reachable again (``restore()``).
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.frozen = threading.Event()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with suppress(OSError):
            while data := src.recv(65536):
                if not self.frozen.is_set():  # frozen: swallowed, like a stall
                    dst.sendall(data)
        for s in (src, dst):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every open connection and refuse new ones."""
        self.up.clear()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()

    def restore(self) -> None:
        self.up.set()
        self.frozen.clear()

    def freeze(self) -> None:
        """Keep connections open but let nothing through (a stalled peer)."""
        self.frozen.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()


@pytest.fixture
def db_proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(host_port(database_url(), 5432))
    yield proxy
    proxy.close()


def private_queue_names(prefix: str) -> dict[str, str]:
    """Settings naming queues of a test's own: the feed's is ``prefix``.

    (Joined by "-", not ".": a task queue is also bound with ``#.<name>``
    for delayed retries, so one queue's name must never end with "." and
    another's.)
    """
    return {
        "FEED_QUEUE": prefix,
        "AUDIT_QUEUE": f"{prefix}-audit",
        "INGEST_QUEUE": f"{prefix}-ingest",
    }


def delete_private_queues(prefix: str) -> None:
    queues_delete(
        queue
        for name in private_queue_names(prefix).values()
        for queue in (name, f"{name}.dead")
    )


@pytest.fixture
def broker_proxy() -> Iterator[TcpProxy]:
    """A cuttable, freezable TCP link to RabbitMQ."""
    from django.conf import settings

    proxy = TcpProxy(host_port(settings.CELERY_BROKER_URL, 5672))
    yield proxy
    proxy.close()


@pytest.fixture
def private_worker(tmp_path, settings) -> Iterator[Callable[..., WorkerProcess]]:
    """Start a worker of this test's own, on private queues, with extra env.

    ``start(prefix, **env)`` points this test process (``settings``) and the
    worker at queues of their own (``private_queue_names``: the feed's
    ``prefix``, the audit subscriber's ``prefix-audit``, ingestion's
    ``prefix-ingest``, each with its ``.dead``), out of the session worker's
    reach. ``queues`` picks the task queues the worker consumes (all by
    default). The queues are emptied before the first worker of a prefix and
    kept for the next one (a restarted worker finds what was left); they are
    deleted after the test.
    """
    if not real_stack_available():
        skip_unless_local("the real stack is not configured")
    workers: list[WorkerProcess] = []
    prefixes: list[str] = []

    def start(
        prefix: str,
        concurrency: int = 1,
        queues: list[str] | None = None,
        **env: str,
    ) -> WorkerProcess:
        names = private_queue_names(prefix)
        for name, value in names.items():
            setattr(settings, name, value)
        if prefix not in prefixes:
            delete_private_queues(prefix)
            prefixes.append(prefix)
        worker = WorkerProcess(
            worker_env(**names, **env),
            tmp_path / f"worker-{len(workers)}.log",
            concurrency=concurrency,
            queues=queues,
        )
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()
    for prefix in prefixes:
        delete_private_queues(prefix)


@pytest.fixture
def topology_declared(broker):
    topology.declare(broker)
    topology.declare_ingest(broker)
    return broker
