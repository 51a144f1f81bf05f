"""Exchanges, queues and the Celery settings that go with them.

* ``portal.tasks`` (topic): every subscription's task queue is bound to it
  with its own name as the routing key. A topic exchange (not direct) lets
  Celery hold retry delays in RabbitMQ itself (native delayed delivery).
* Task queues are durable quorum queues (RabbitMQ's replicated queue type);
  they count deliveries, so a message that kills its worker every time is
  dead-lettered through ``portal.dlx`` to ``<queue>.dead`` after the
  subscription's delivery limit instead of looping forever.
* ``portal.events`` (topic): other services publish CloudEvents here; the
  quorum queue ``INGEST_QUEUE`` takes every key for the ingest consumer.
* ``portal.broadcast`` (topic): every logged event, one per message, for
  services outside the portal to bind their own queues to.
"""

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from celery import Celery
from django.conf import settings
from kombu import Exchange, Queue

from .subscriptions import Subscription, subscription_for_task, subscriptions

logger = logging.getLogger(__name__)

TASKS_EXCHANGE = "portal.tasks"
DEAD_LETTER_EXCHANGE = "portal.dlx"
# Other services publish CloudEvents here, routing key = event type.
EVENTS_EXCHANGE = "portal.events"
# Every logged event, for other services; routing key = event type.
BROADCAST_EXCHANGE = "portal.broadcast"


def tasks_exchange() -> Exchange:
    return Exchange(TASKS_EXCHANGE, type="topic", durable=True)


def events_exchange() -> Exchange:
    return Exchange(EVENTS_EXCHANGE, type="topic", durable=True)


def broadcast_exchange() -> Exchange:
    return Exchange(BROADCAST_EXCHANGE, type="topic", durable=True)


def dead_letter_exchange() -> Exchange:
    return Exchange(DEAD_LETTER_EXCHANGE, type="direct", durable=True)


def replicated_arguments() -> dict[str, Any]:
    """A quorum queue on ``QUEUE_INITIAL_GROUP_SIZE`` nodes (fewer when the
    cluster has fewer: 1 on a single node)."""
    return {
        "x-queue-type": "quorum",
        "x-quorum-initial-group-size": settings.QUEUE_INITIAL_GROUP_SIZE,
    }


def _quorum_arguments(*, delivery_limit: int, dead_letter_queue: str) -> dict[str, Any]:
    return {
        **replicated_arguments(),
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": dead_letter_queue,
        # A message dead-lettered while a node dies is kept until the
        # dead-letter queue confirmed it (at-most-once would drop it); this
        # strategy needs the queue to refuse publishes when full.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def subscription_queue(subscription: Subscription) -> Queue:
    """The task queue of ``subscription``, bound to ``portal.tasks``."""
    return Queue(
        subscription.queue,
        tasks_exchange(),
        routing_key=subscription.queue,
        durable=True,
        queue_arguments=_quorum_arguments(
            delivery_limit=subscription.max_deliveries,
            dead_letter_queue=subscription.dead_letter_queue,
        ),
    )


def dead_letter_queue(name: str) -> Queue:
    return Queue(
        name,
        dead_letter_exchange(),
        routing_key=name,
        durable=True,
        queue_arguments=replicated_arguments(),
    )


def ingest_queue_name() -> str:
    return settings.INGEST_QUEUE


def ingest_dead_letter_queue_name() -> str:
    return f"{settings.INGEST_QUEUE}.dead"


def ingest_queue() -> Queue:
    """The queue of events from other services: every key on ``portal.events``.

    A quorum queue like the task queues, with a delivery limit and a
    dead-letter queue, so a message that kills the worker consuming it
    cannot loop.
    """
    return Queue(
        ingest_queue_name(),
        events_exchange(),
        routing_key="#",
        durable=True,
        queue_arguments=_quorum_arguments(
            delivery_limit=settings.INGEST_DELIVERY_LIMIT,
            dead_letter_queue=ingest_dead_letter_queue_name(),
        ),
    )


def dead_letter_queue_names() -> list[str]:
    """Every dead-letter queue: one per subscription, one for ingestion."""
    names = [s.dead_letter_queue for s in subscriptions()]
    return [*names, ingest_dead_letter_queue_name()]


def max_message_bytes(queue: str = "") -> int:
    """The biggest body accepted from ``queue``: a subscriber's task message
    carries a batch of events, any other message one event."""
    from .subscriptions import subscription_for_queue

    subscription = subscription_for_queue(queue) if queue else None
    if subscription is not None:
        return subscription.max_message_bytes
    return settings.MESSAGE_MAX_BYTES


def route_task(name, args, kwargs, options, task=None, **kw):
    """Celery router: a subscriber's task goes to its subscription's queue
    (as it is named now: settings may rename it)."""
    subscription = subscription_for_task(name)
    if subscription is None:
        return None
    return {"queue": subscription_queue(subscription)}


def configure(app: Celery) -> None:
    """Route subscriber tasks to their queues and set the reliability options."""
    conf = app.conf
    queues = [subscription_queue(s) for s in subscriptions()]
    for queue in queues:
        # Declared by bootsteps.DeclareTopology, which survives a queue
        # declared earlier with other arguments; the task consumer only
        # consumes. (kombu types Exchange.no_declare only.)
        queue.no_declare = True  # type: ignore[attr-defined]
    conf.task_queues = queues
    if queues:
        conf.task_default_queue = queues[0].name
    conf.task_routes = (route_task,)
    conf.task_create_missing_queues = False
    # Ack only once the task (and so the subscriber's transaction) has
    # finished; a worker process that dies mid-task gets its message redelivered.
    conf.task_acks_late = True
    conf.task_reject_on_worker_lost = True
    # A task that fails unexpectedly is rejected, so the queue dead-letters it
    # to `<queue>.dead` instead of dropping it.
    conf.task_acks_on_failure_or_timeout = False
    conf.worker_consumer = "portal.messaging.task_consumer:TaskConsumer"
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


@contextlib.contextmanager
def own_channel(connection) -> Iterator[Any]:
    """A channel of its own on ``connection``, closed afterwards (a channel
    RabbitMQ closed on an error included)."""
    channel = connection.channel()
    try:
        yield channel
    finally:
        with contextlib.suppress(Exception):
            channel.close()


def declare_queue(connection, queue: Queue) -> bool:
    """Declare ``queue`` (and its exchange) on a channel of its own.

    If the queue exists with other arguments (another delivery limit, say),
    RabbitMQ closes the channel it was declared on, and that must not be one
    the caller still uses: the mismatch is logged and False returned, and the
    queue is used as it is.
    """
    from amqp.exceptions import PreconditionFailed

    channel = connection.channel()
    try:
        queue(channel).declare()
        return True
    except PreconditionFailed as exc:
        logger.error(
            "Queue %s exists with other arguments; using it as it is: %s",
            queue.name,
            exc,
        )
        return False
    finally:
        with contextlib.suppress(Exception):
            channel.close()


def declare_subscription(connection, subscription: Subscription) -> bool:
    """Declare a subscription's dead-letter queue, then its task queue."""
    declare_queue(connection, dead_letter_queue(subscription.dead_letter_queue))
    return declare_queue(connection, subscription_queue(subscription))


def declare(connection) -> None:
    """Declare every subscription's queues (idempotent)."""
    for subscription in subscriptions():
        declare_subscription(connection, subscription)


def declare_ingest(connection) -> bool:
    """Declare ``portal.events`` and the ingest queue bound to it (idempotent)."""
    declare_queue(connection, dead_letter_queue(ingest_dead_letter_queue_name()))
    return declare_queue(connection, ingest_queue())


def declare_broadcast(connection) -> None:
    """Declare the ``portal.broadcast`` exchange (idempotent)."""
    channel = connection.channel()
    try:
        broadcast_exchange()(channel).declare()
    finally:
        with contextlib.suppress(Exception):
            channel.close()


def declare_worker_topology(connection) -> None:
    """What a worker relies on, declared when it connects: every
    subscription's queues, and on RabbitMQ the ingest queue and the
    broadcast exchange (the embedded broker has neither). (The retry delays'
    topology: ``delayed_delivery``.)"""
    declare(connection)
    if connection.transport.driver_type == "amqp":
        declare_ingest(connection)
        declare_broadcast(connection)
