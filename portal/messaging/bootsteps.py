"""Worker bootsteps: declare the topology the worker relies on at start."""

import logging

from celery import bootsteps

from . import topology

logger = logging.getLogger(__name__)


class DeclareTopology(bootsteps.StartStopStep):
    """Declare the dead-letter queue before consuming, so nothing the feed
    queue dead-letters is dropped for want of a bound queue."""

    requires = {"celery.worker.consumer.connection:Connection"}

    def start(self, c) -> None:
        topology.declare(c.connection)
