"""Queues declared by an older version with other arguments, brought up to date.

RabbitMQ refuses to declare an existing queue with other arguments (a new
delivery limit, the at-least-once dead-letter strategy, an initial group
size), and cannot change a queue's arguments in place. The portal's
processes therefore use such a queue as it is and report it, and
``manage.py messaging_queues --migrate`` replaces it: its messages are moved
to a holding queue (each one confirmed there before it is acked here), the
queue is deleted and declared anew, and the messages moved back. A run that
stops half-way is finished by running it again: whatever a holding queue
still holds is moved back first. Stop the consumers of a queue (its
workers) before migrating it; the command refuses a queue that has any.
"""

import logging
from dataclasses import dataclass

from amqp.exceptions import NotFound, PreconditionFailed
from celery import current_app
from kombu import Queue

from . import topology
from .subscriptions import subscriptions
from .topology import own_channel

logger = logging.getLogger(__name__)

HOLDING_SUFFIX = ".migrating"


class QueueBusy(RuntimeError):
    """A queue to migrate still has consumers."""


@dataclass(frozen=True)
class QueueState:
    name: str
    problem: str  # "" when the queue is as the portal declares it
    messages: int = 0
    consumers: int = 0


def expected_queues() -> list[Queue]:
    """Every queue the portal declares: each subscription's task and
    dead-letter queue, and the ingest queue and its dead-letter queue."""
    queues = []
    for subscription in subscriptions():
        queues.append(topology.dead_letter_queue(subscription.dead_letter_queue))
        queues.append(topology.subscription_queue(subscription))
    queues.append(topology.dead_letter_queue(topology.ingest_dead_letter_queue_name()))
    queues.append(topology.ingest_queue())
    return queues


def queue_state(connection, queue: Queue) -> QueueState:
    """Whether ``queue`` exists as the portal declares it (it is created if
    missing), and how many messages and consumers it has."""
    try:
        with own_channel(connection) as channel:
            _, messages, consumers = channel.queue_declare(queue.name, passive=True)
    except NotFound:
        messages = consumers = 0
    try:
        with own_channel(connection) as channel:
            queue(channel).declare()
    except PreconditionFailed as exc:
        return QueueState(queue.name, str(exc), messages, consumers)
    return QueueState(queue.name, "", messages, consumers)


def holding_messages(connection, queue: Queue) -> int:
    """Messages an unfinished migration left in ``queue``'s holding queue."""
    try:
        with own_channel(connection) as channel:
            _, messages, _ = channel.queue_declare(
                queue.name + HOLDING_SUFFIX, passive=True
            )
    except NotFound:
        return 0
    return messages


def _move(connection, source: str, target: str) -> int:
    """Move every message from ``source`` to ``target`` (through the default
    exchange), each confirmed there before it is acked here."""
    moved = 0
    producer = connection.Producer()
    with own_channel(connection) as channel:
        while True:
            message = channel.basic_get(source, no_ack=False)
            if message is None:
                return moved
            properties = dict(message.properties)
            headers = properties.pop("application_headers", None) or {}
            producer.publish(
                message.body,
                exchange="",
                routing_key=target,
                headers=headers,
                retry=False,
                **{k: v for k, v in properties.items() if v is not None},
            )
            channel.basic_ack(message.delivery_tag)
            moved += 1


def queue_migrate(connection, queue: Queue) -> int:
    """Replace ``queue`` by one declared as the portal declares it now,
    keeping its messages; returns how many were moved. Raises ``QueueBusy``
    if the queue has consumers."""
    holding = queue.name + HOLDING_SUFFIX
    with own_channel(connection) as channel:
        channel.queue_declare(
            holding,
            durable=True,
            auto_delete=False,
            arguments={"x-queue-type": "quorum"},
        )
    state = queue_state(connection, queue)
    moved = 0
    if state.problem:
        if state.consumers:
            raise QueueBusy(
                f"{queue.name} has {state.consumers} consumer(s): stop the workers "
                "consuming it, then migrate"
            )
        moved = _move(connection, queue.name, holding)
        with own_channel(connection) as channel:
            channel.queue_delete(queue.name)
        with own_channel(connection) as channel:
            queue(channel).declare()
    back = _move(connection, holding, queue.name)
    with own_channel(connection) as channel:
        # (Quorum queues take no if-empty flag: check, then delete.)
        _, left, _ = channel.queue_declare(holding, passive=True)
        if not left:
            channel.queue_delete(holding)
    return max(moved, back)


def broker_connection():
    """A connection to the configured broker, for the command."""
    connection = current_app.connection_for_write()
    connection.ensure_connection(max_retries=1)
    return connection
