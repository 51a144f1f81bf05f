"""Small helpers shared by the tests."""

import json
import time
from collections.abc import Callable
from typing import Any

from kombu import Connection

from portal.testing.events import cloud_event


def wait_for(
    predicate: Callable[[], Any],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str | None = None,
) -> Any:
    """Poll until ``predicate()`` is truthy; fail the test clearly if it never is.

    The failure names ``what``, else the predicate's docstring.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"condition not met within {timeout}s: "
                f"{what or predicate.__doc__ or predicate}"
            )
        time.sleep(interval)


def make_envelope(**overrides: Any) -> dict[str, Any]:
    """A valid ``employee.registered`` CloudEvent, round-tripped through JSON;
    ``overrides`` replace envelope attributes as they are."""
    envelope = cloud_event(
        "employee.registered",
        source="/tests",
        data={
            "employee_id": 1,
            "full_name": "Anna Petrova",
            "position": "Backend Engineer",
            "department": "Platform",
            "team": None,
        },
    )
    envelope.update(overrides)
    return json.loads(json.dumps(envelope))


def queue_depth(connection: Connection, name: str) -> int:
    """Messages ready in a queue (declared passively: it must exist)."""
    channel = connection.channel()
    try:
        _, count, _ = channel.queue_declare(queue=name, passive=True)
        return count
    finally:
        channel.close()


def send_task(envelopes: list[Any], subscription=None) -> None:
    """Publish one task message carrying ``envelopes`` to a subscriber's
    queue (the feed's by default), as the relay would, confirmed."""
    from feed.subscriptions import FEED
    from portal.messaging import topology
    from portal.messaging.amqp_publish import publish_confirmed, publisher_connection
    from portal.messaging.task_messages import encode_event, task_message

    subscription = subscription or FEED
    topology.declare_subscription(publisher_connection(), subscription)
    message = task_message(subscription, [encode_event(e) for e in envelopes])
    assert publish_confirmed([message]) == [None]
