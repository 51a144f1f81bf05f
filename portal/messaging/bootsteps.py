"""Worker bootsteps: the consumers a worker runs besides its tasks.

(The topology they rely on is declared as the worker connects:
``task_consumer.TaskConsumer.connect``.)"""

import logging

from .dead_letter_intake import DeadLetterConsumerStep
from .ingest import IngestConsumerStep

logger = logging.getLogger(__name__)


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
