"""Retry delays held by RabbitMQ (Celery's native delayed delivery), with a
way out for a retry whose queue is gone.

A retry waits in the ``celery_delayed_<level>`` quorum queues; when its delay
ends, ``celery_delayed_0`` dead-letters it (at-least-once) to the
``celery_delayed_delivery`` exchange, which routes it back to its task queue.
If that queue has been deleted in the meantime (a subscription removed or
renamed, a queue replaced by hand), nothing routes the message, and RabbitMQ
keeps it in ``celery_delayed_0`` and tries again every
``dead_letter_worker_publisher_confirm_timeout`` (3 minutes): it never gives
up on it. The queue forwards at most ``dead_letter_worker_consumer_prefetch``
(32) such messages at a time, so 32 retries with no queue stop every other
retry of the vhost from coming back.

The portal therefore declares the delivery exchange with an alternate
exchange, ``portal.delayed.unroutable`` (fanout), and its quorum queue of the
same name: a retry that no queue takes goes there, and the workers move it
into the dead-letter store (reason "no queue for its retry"), where an admin
requeues it once its queue is back, or purges it.

Celery declares the delivery exchange without arguments, and RabbitMQ
refuses to declare an exchange again with another alternate exchange, so the
levels and the delivery exchange are declared here, with kombu's names and
bindings (``kombu.transport.native_delayed_delivery``). An exchange declared
earlier without the alternate exchange is used as it is and reported
(``manage.py portal_doctor``); ``manage.py messaging_queues --migrate``
replaces it.
"""

import logging

from amqp.exceptions import PreconditionFailed
from kombu import Exchange, Queue
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    level_name,
)

from .topology import declare_queue, own_channel, replicated_arguments

logger = logging.getLogger(__name__)

DELIVERY_EXCHANGE = "celery_delayed_delivery"
UNROUTABLE = "portal.delayed.unroutable"
LEVELS = 28  # kombu's: delays up to 2**28 - 1 seconds


def unroutable_exchange() -> Exchange:
    return Exchange(UNROUTABLE, type="fanout", durable=True)


def unroutable_queue() -> Queue:
    """Where a retry goes whose delay ended and no queue took it."""
    return Queue(
        UNROUTABLE,
        unroutable_exchange(),
        durable=True,
        queue_arguments=replicated_arguments(),
    )


def delivery_exchange() -> Exchange:
    return Exchange(
        DELIVERY_EXCHANGE,
        type="topic",
        durable=True,
        arguments={"alternate-exchange": UNROUTABLE},
    )


def _declare_levels(channel, queue_type: str) -> None:
    """kombu's levels: exchange and queue ``celery_delayed_<n>`` (a delay of
    2**n seconds), routed by the bit of the delay the routing key carries."""
    routing_key = "1.#"
    for level in range(LEVELS - 1, -1, -1):
        name = level_name(level)
        Exchange(name, type="topic").bind(channel).declare()
        arguments = {
            "x-queue-type": queue_type,
            "x-overflow": "reject-publish",
            "x-message-ttl": pow(2, level) * 1000,
            "x-dead-letter-exchange": (
                level_name(level - 1) if level > 0 else DELIVERY_EXCHANGE
            ),
        }
        if queue_type == "quorum":
            arguments["x-dead-letter-strategy"] = "at-least-once"
        queue = Queue(name, queue_arguments=arguments).bind(channel)
        queue.declare()
        queue.bind_to(name, routing_key)
        routing_key = "*." + routing_key
    routing_key = "0.#"
    for level in range(LEVELS - 1, 0, -1):
        Exchange(level_name(level - 1), type="topic").bind(channel).bind_to(
            level_name(level), routing_key
        )
        routing_key = "*." + routing_key
    # A delay whose remaining bits are all 0 skips to the delivery exchange.
    channel.exchange_bind(
        destination=DELIVERY_EXCHANGE, source=level_name(0), routing_key=routing_key
    )


def declare_unroutable(connection) -> None:
    """Declare the queue of retries no queue took (idempotent; RabbitMQ only)."""
    if connection.transport.driver_type == "amqp":
        declare_queue(connection, unroutable_queue())


def delivery_exchange_problem(connection) -> str:
    """What RabbitMQ said if the delivery exchange lacks the portal's
    alternate exchange, else an empty string (it is declared if missing)."""
    try:
        with own_channel(connection) as channel:
            delivery_exchange().bind(channel).declare()
    except PreconditionFailed as exc:
        return str(exc)
    return ""


def declare_delayed_delivery(connection, queue_type: str = "quorum") -> bool:
    """Declare the unroutable queue, the delivery exchange with its alternate
    exchange, and the delay levels (idempotent). False if the delivery
    exchange exists without the alternate exchange (it is used as it is)."""
    declare_unroutable(connection)
    problem = delivery_exchange_problem(connection)
    if problem:
        logger.error(
            "Exchange %s exists without the alternate exchange %s; using it as "
            "it is (retries whose queue is gone can stop every retry): run "
            "manage.py messaging_queues --migrate. %s",
            DELIVERY_EXCHANGE,
            UNROUTABLE,
            problem,
        )
    with own_channel(connection) as channel:
        _declare_levels(channel, queue_type)
    return not problem


def delivery_exchange_migrate(connection, queues: list[Queue]) -> None:
    """Replace a delivery exchange declared without the alternate exchange,
    and bind ``queues`` to it again (deleting it drops its bindings).

    Retries whose delay ends meanwhile wait in ``celery_delayed_0`` (at-least-
    once dead-lettering keeps them until an exchange takes them).
    """
    with own_channel(connection) as channel:
        channel.exchange_delete(DELIVERY_EXCHANGE)
    declare_delayed_delivery(connection)
    for queue in queues:
        bind_queue_to_native_delayed_delivery_exchange(connection, queue)
