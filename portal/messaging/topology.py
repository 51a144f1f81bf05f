"""Exchanges, queues and the Celery settings that go with them.

The feed's task messages travel on the durable quorum queue ``feed`` (bound to
the topic exchange ``portal.feed``). Quorum queues are RabbitMQ's replicated
queue type for data that must not be lost; they also count deliveries, so a
message that kills its worker every time is dead-lettered to ``feed.dead``
after ``FEED_DELIVERY_LIMIT`` deliveries instead of looping forever.

A topic exchange (not direct) lets Celery hold retry delays in RabbitMQ
itself (native delayed delivery), instead of in a worker's memory.
"""

import contextlib

from celery import Celery
from django.conf import settings
from kombu import Exchange, Queue

FEED_EXCHANGE = "portal.feed"
DEAD_LETTER_EXCHANGE = "portal.dlx"
FEED_TASK = "feed.apply_events"
# Other services publish CloudEvents here, routing key = event type.
EVENTS_EXCHANGE = "portal.events"


def feed_queue_name() -> str:
    return settings.FEED_QUEUE


def dead_letter_queue_name() -> str:
    return f"{settings.FEED_QUEUE}.dead"


def feed_queue() -> Queue:
    return Queue(
        feed_queue_name(),
        Exchange(FEED_EXCHANGE, type="topic", durable=True),
        routing_key=feed_queue_name(),
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": settings.FEED_DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": dead_letter_queue_name(),
        },
    )


def dead_letter_queue() -> Queue:
    return Queue(
        dead_letter_queue_name(),
        Exchange(DEAD_LETTER_EXCHANGE, type="direct", durable=True),
        routing_key=dead_letter_queue_name(),
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def events_exchange() -> Exchange:
    return Exchange(EVENTS_EXCHANGE, type="topic", durable=True)


def ingest_queue_name() -> str:
    return settings.FEED_INGEST_QUEUE


def ingest_queue() -> Queue:
    """The queue of events from other services: every key on ``portal.events``.

    A quorum queue like ``feed``, with the same delivery limit and dead-letter
    queue, so a message that kills the worker consuming it cannot loop.
    """
    return Queue(
        ingest_queue_name(),
        events_exchange(),
        routing_key="#",
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": settings.FEED_DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": dead_letter_queue_name(),
        },
    )


def configure(app: Celery) -> None:
    """Route the feed task to its queue and set the reliability options."""
    conf = app.conf
    conf.task_queues = (feed_queue(),)
    conf.task_default_queue = feed_queue_name()
    conf.task_routes = {FEED_TASK: {"queue": feed_queue_name()}}
    conf.task_create_missing_queues = False
    # Ack only once the task (and so the feed transaction) has finished; a
    # worker process that dies mid-task gets its message redelivered.
    conf.task_acks_late = True
    conf.task_reject_on_worker_lost = True
    # A task that fails unexpectedly is rejected, so the queue dead-letters it
    # to `feed.dead` instead of dropping it.
    conf.task_acks_on_failure_or_timeout = False
    conf.worker_consumer = "portal.messaging.consumer:FeedConsumer"
    conf.worker_prefetch_multiplier = settings.CELERY_WORKER_PREFETCH_MULTIPLIER
    conf.task_ignore_result = True
    conf.result_backend = None
    conf.task_serializer = "json"
    conf.accept_content = ["json"]
    conf.task_default_delivery_mode = "persistent"
    # Task events cost an AMQP write per task state; Flower switches them on
    # (``enable_events``) for as long as it is watching.
    conf.worker_send_task_events = settings.CELERY_WORKER_SEND_TASK_EVENTS
    conf.task_send_sent_event = False
    conf.worker_cancel_long_running_tasks_on_connection_loss = True


def declare(connection) -> None:
    """Declare the feed and dead-letter queues (idempotent)."""
    channel = connection.default_channel
    for queue in (dead_letter_queue(), feed_queue()):
        queue(channel).declare()


def declare_ingest(connection) -> None:
    """Declare ``portal.events`` and the ingest queue bound to it (idempotent).

    On a channel of its own: if the queue exists with other arguments (say,
    another delivery limit), RabbitMQ closes the channel it was declared on,
    and that must not be one the caller still uses.
    """
    channel = connection.channel()
    try:
        dead_letter_queue()(channel).declare()
        ingest_queue()(channel).declare()
    finally:
        with contextlib.suppress(Exception):
            channel.close()
