"""Fixtures of the fault-injection scenarios (``bench/faults/scenarios.py``)."""

import os
from collections.abc import Iterator

import pytest

from bench.faults.cluster import ClusterLab, lab_settings
from bench.faults.cluster_nodes import Cluster, free_base_port, rabbitmq_installed
from bench.faults.scenarios import (
    Lab,
    lab_queue_settings,
    prepare_broker,
    remove_queues,
)
from portal.messaging.amqp_publish import publisher_reset
from tests.conftest import real_stack_available, skip_unless_local


@pytest.fixture
def lab(tmp_path, settings) -> Iterator[Lab]:
    """Queues of their own for every subscriber and for ingestion (no other
    test's worker may take the scenario's messages), empty at the start and
    deleted after, and a directory for process logs."""
    if not real_stack_available():
        skip_unless_local("the real stack is not configured")
    for name, value in lab_queue_settings().items():
        setattr(settings, name, value)
    prepare_broker()
    yield Lab(log_dir=tmp_path)
    remove_queues()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A private three-node RabbitMQ cluster (``scripts/rabbitmq-cluster``)
    with node names and ports no other run uses; destroyed after."""
    if not rabbitmq_installed():
        skip_unless_local(
            "RabbitMQ's programs (/usr/lib/rabbitmq/bin) for a cluster are missing"
        )
    found = Cluster(
        directory=tmp_path_factory.mktemp("rabbitmq-cluster"),
        prefix=f"t{os.getpid()}n",
        base_port=free_base_port(),
    )
    try:
        found.start()
        yield found
    finally:
        found.destroy()


@pytest.fixture
def cluster_lab(cluster, tmp_path, settings) -> Iterator[ClusterLab]:
    """A ``Lab`` on the cluster: this process and every process it starts on
    its URL list, queues on three nodes, empty at the start, deleted after."""
    if not real_stack_available():
        skip_unless_local("the real stack is not configured")
    for name, value in lab_settings(cluster).items():
        setattr(settings, name, value)
    publisher_reset()
    cluster.heal()
    cluster.wait_all_running()
    prepare_broker()
    yield ClusterLab(log_dir=tmp_path, cluster=cluster)
    remove_queues()
    publisher_reset()
