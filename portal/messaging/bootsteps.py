"""Worker bootsteps: the consumers a worker runs besides its tasks.

(The topology they rely on is declared as the worker connects:
``task_consumer.TaskConsumer.connect``.)"""

import logging

from celery import bootsteps

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


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Touch the worker's heartbeat file while its consumer is connected
    (``manage.py portal_health worker``, the compose healthcheck)."""

    requires = {"celery.worker.consumer.connection:Connection"}
    interval = 10.0

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self._tref = None

    def start(self, c) -> None:
        from portal.observability.heartbeat import heartbeat_touch

        heartbeat_touch("worker")
        self._tref = c.timer.call_repeatedly(
            self.interval, heartbeat_touch, ("worker",)
        )

    def stop(self, c) -> None:
        if self._tref is not None:
            self._tref.cancel()
            self._tref = None

    shutdown = stop
