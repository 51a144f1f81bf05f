"""The outbox: the only way an app publishes an event.

``outbox_emit`` stores a validated CloudEvent in the caller's transaction.
After the commit, the committing process's background thread either wakes
the relay (``manage.py relay_outbox``, LISTENing) with a NOTIFY, and the relay
publishes (mode "notify", the default on PostgreSQL), or publishes the row
itself (mode "thread"). Either way the relay's poll publishes whatever that
missed.
"""

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from .contracts import Event, build_event
from .models import OutboxMessage

logger = logging.getLogger(__name__)


class OutboxError(RuntimeError):
    """The outbox was used outside a transaction."""


def outbox_emit(
    *,
    type: str,
    data: Mapping[str, Any],
    source: str,
    time: datetime | None = None,
    event_id: str | None = None,
    traceparent: str | None = None,
) -> OutboxMessage:
    """Store an event in the outbox, in the caller's transaction.

    Must be called inside ``transaction.atomic()`` together with the change the
    event describes: both commit or neither does. Raises ``ContractError`` if
    the event does not satisfy its contract, so the caller's transaction fails
    loudly instead of committing half a change. Nothing is published before
    the commit.
    """
    if not connection.in_atomic_block:
        raise OutboxError("outbox_emit() must run inside transaction.atomic()")
    event = build_event(
        type=type,
        data=data,
        source=source,
        id=event_id,
        time=time,
        traceparent=traceparent,
    )
    envelope = event.as_json()
    message = OutboxMessage.objects.create(
        event_id=envelope["id"],
        source=envelope["source"],
        type=envelope["type"],
        routing_key=envelope["type"],
        envelope=envelope,
    )
    transaction.on_commit(lambda: _after_commit(message.pk))
    return message


def notify_mode() -> bool:
    """Does the relay publish new rows when a committing process NOTIFYs it?"""
    return (
        settings.OUTBOX_PUBLISH_MODE == "notify" and connection.vendor == "postgresql"
    )


def _after_commit(message_id: int) -> None:
    mode = settings.OUTBOX_PUBLISH_MODE
    if mode == "off":
        return
    from . import publisher

    if mode == "inline":
        publisher.publish_pending(ids=[message_id])
    else:
        publisher.background().submit(message_id)


def outbox_accept_event(*, event: Event) -> tuple[OutboxMessage, bool]:
    """Store an event another service sent (over HTTP) in the outbox, once.

    The event keeps its own ``source`` and ``id``; from the outbox it takes
    the same road to the feed as the portal's own events. Idempotent: an
    event already stored under the same (source, id) is not stored again.
    Returns the row and whether it is new. Commits before returning, so the
    caller may tell the sender the event is durably stored.
    """
    envelope = event.as_json()
    with transaction.atomic():
        message, created = OutboxMessage.objects.get_or_create(
            source=envelope["source"],
            event_id=envelope["id"],
            defaults={
                "type": envelope["type"],
                "routing_key": envelope["type"],
                "envelope": envelope,
            },
        )
        if created:
            transaction.on_commit(lambda: _after_commit(message.pk))
    return message, created
