"""The messages the portal publishes, built in one place.

* ``task_message``: a Celery task message (protocol 2) for a subscription's
  task, carrying a list of CloudEvents. The body is spliced from each
  event's JSON, encoded once (``encode_event``) however many destinations
  it goes to, instead of building and encoding a Python structure per
  destination.
* ``broadcast_message``: one CloudEvent for ``portal.broadcast``.
* ``task_message_groups``: events packed into task messages within a
  subscription's count and size limits.

The relay, the dead-letter requeue and a task that gives up all build their
messages here.
"""

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from celery import current_app
from kombu.utils.uuid import uuid

from .amqp_publish import OutgoingMessage
from .contracts import CONTENT_TYPE
from .subscriptions import Subscription
from .topology import BROADCAST_EXCHANGE, TASKS_EXCHANGE

# What a task message's body adds around its events, and its headers' room.
_BODY_TAIL = b'],{},{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]'
_ENVELOPE_ROOM = 4096


def encode_event(envelope: Mapping[str, Any]) -> bytes:
    """An event as compact JSON bytes."""
    try:
        return orjson.dumps(envelope)
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits (an event logged before the contract
        # bounded them): valid JSON all the same.
        return json.dumps(envelope, separators=(",", ":")).encode()


def task_message(
    subscription: Subscription,
    events: Sequence[bytes],
    *,
    exchange: str = TASKS_EXCHANGE,
    routing_key: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> OutgoingMessage:
    """A task message for ``subscription`` carrying ``events`` (encoded).

    Addressed to the subscription's queue through ``portal.tasks`` unless
    ``exchange``/``routing_key`` say otherwise (a task handing its events to
    its dead-letter queue).
    """
    task_id = uuid()
    message = current_app.amqp.as_task_v2(
        task_id,
        subscription.task,
        args=(),
        kwargs={},
        argsrepr=f"[<{len(events)} events>]",
        kwargsrepr="{}",
    )
    body = b"[[[" + b",".join(events) + b"]" + _BODY_TAIL
    return OutgoingMessage(
        exchange=exchange,
        routing_key=routing_key or subscription.queue,
        body=body,
        content_type="application/json",
        headers={**message.headers, **(headers or {})},
        properties=dict(message.properties),
    )


def broadcast_message(
    event_type: str, event_id: str, source: str, body: bytes
) -> OutgoingMessage:
    """One CloudEvent (``body``, its JSON) for ``portal.broadcast``: routing
    key = type, the event's id and source as ``message_id`` and ``app_id``,
    persistent. Not mandatory: an exchange nobody has bound a queue to drops
    it."""
    return OutgoingMessage(
        exchange=BROADCAST_EXCHANGE,
        routing_key=event_type,
        body=body,
        content_type=CONTENT_TYPE,
        properties={"message_id": event_id, "app_id": source},
        mandatory=False,
    )


Item = TypeVar("Item")


def task_message_groups(
    subscription: Subscription, items: Iterable[tuple[Item, bytes]]
) -> Iterator[list[tuple[Item, bytes]]]:
    """(item, encoded event) pairs grouped as they fit in task messages: at
    most the subscription's events per message, and a body within its
    message size limit (a lone bigger event still goes alone, to be
    dead-lettered as oversized by the consumer, not lost). A subscription
    with a ``min_messages`` above 1 has the events split evenly into at
    least that many messages when there are that many."""
    size = subscription.max_events_per_message
    if (spread := subscription.min_messages) > 1:
        items = list(items)
        size = min(size, max(1, -(-len(items) // spread)))
    max_bytes = subscription.max_message_bytes - _ENVELOPE_ROOM
    chunk: list[tuple[Item, bytes]] = []
    used = 0
    for item in items:
        length = len(item[1]) + 1
        if chunk and (len(chunk) >= size or used + length > max_bytes):
            yield chunk
            chunk, used = [], 0
        chunk.append(item)
        used += length
    if chunk:
        yield chunk


def outgoing_publish(producer, message: OutgoingMessage, **options: Any) -> None:
    """Publish one ``OutgoingMessage`` with a kombu producer (which confirms
    when the transport does), for paths that publish one message at once."""
    producer.publish(
        message.body,
        exchange=message.exchange,
        routing_key=message.routing_key,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        headers=message.headers,
        mandatory=message.mandatory,
        delivery_mode=2,
        retry=False,
        **message.properties,
        **options,
    )
