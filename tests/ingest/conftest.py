"""Fixtures for ingestion from other services (AMQP and HTTP)."""

from collections.abc import Iterator

import pytest
from kombu import Connection

from portal.messaging import topology
from tests.messaging.conftest import (  # noqa: F401 - fixtures
    broker_proxy,
    private_worker,
)


@pytest.fixture
def ingest(clean_queues: Connection, feed_worker) -> Iterator[Connection]:
    """The session worker consuming ``feed.ingest``, with that queue empty."""
    topology.declare_ingest(clean_queues)
    channel = clean_queues.channel()
    channel.queue_purge(topology.ingest_queue_name())
    yield clean_queues
    channel.queue_purge(topology.ingest_queue_name())
    channel.close()
