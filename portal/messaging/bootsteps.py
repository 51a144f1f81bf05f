"""Worker bootsteps: the topology the worker relies on, and its extra consumers."""

import logging

from celery import bootsteps

from . import topology
from .dead_letter_intake import DeadLetterConsumerStep
from .ingest import IngestConsumerStep

logger = logging.getLogger(__name__)


class DeclareTopology(bootsteps.StartStopStep):
    """Declare every subscription's queues and dead-letter queues before
    consuming, so nothing a queue dead-letters is dropped for want of a
    bound queue, and ``portal.broadcast`` for outside subscribers."""

    requires = {"celery.worker.consumer.connection:Connection"}

    def start(self, c) -> None:
        topology.declare(c.connection)
        if _on_rabbitmq(c):
            topology.declare_ingest(c.connection)
            topology.declare_broadcast(c.connection)


def _on_rabbitmq(c) -> bool:
    # Dead-lettering and exchanges to other services need RabbitMQ; the
    # embedded filesystem broker has neither.
    return c.app.connection_for_write().transport.driver_type == "amqp"


class IngestConsumer(IngestConsumerStep):
    """Events other services publish to ``portal.events`` → the event log."""

    def include_if(self, c) -> bool:
        return _on_rabbitmq(c)


class DeadLetterConsumer(DeadLetterConsumerStep):
    """Every ``<queue>.dead`` → the dead-letter store."""

    def include_if(self, c) -> bool:
        return _on_rabbitmq(c)
