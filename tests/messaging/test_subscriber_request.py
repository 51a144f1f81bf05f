"""A subscriber's task message is read once, in the pool process; the worker's
main process reads it only when something there asks for the arguments."""

import json
from unittest.mock import MagicMock

import pytest
from kombu import Message

from feed import tasks as feed_tasks
from feed.subscriptions import FEED
from portal.celery import app
from portal.messaging.subscriber_tasks import batch_strategy
from tests.helpers import make_envelope


def _message(body: bytes, content_type: str = "application/json") -> Message:
    return Message(
        body=body,
        content_type=content_type,
        content_encoding="utf-8",
        headers={
            "task": FEED.task,
            "id": "t-1",
            "argsrepr": "[<2 events>]",
            "kwargsrepr": "{}",
        },
        delivery_info={"exchange": "portal.tasks", "routing_key": FEED.queue},
        properties={},
    )


def _received(message: Message):
    """The request Celery's consumer would hand to the pool for ``message``."""
    consumer = MagicMock()
    handler = batch_strategy(feed_tasks.apply_events, app, consumer)
    handler(message, None, message.ack, message.reject, [])
    (request,), _ = consumer.on_task_request.call_args
    return request


@pytest.fixture
def events():
    return [make_envelope(), make_envelope()]


def test_the_main_process_hands_the_pool_the_body_unread(events):
    body = json.dumps([[events], {}, {}]).encode()
    message = _message(body)
    request = _received(message)

    assert message._decoded_cache is None  # nobody read it
    sent = request.request_dict
    assert "args" not in sent
    assert "kwargs" not in sent
    assert (request.body, request.content_type) == (body, "application/json")
    assert (sent["id"], sent["argsrepr"]) == ("t-1", "[<2 events>]")


def test_the_arguments_are_read_when_asked_for(events):
    request = _received(_message(json.dumps([[events], {}, {}]).encode()))

    assert request.args == [events]
    assert request.kwargs == {}
    assert request.info()["args"] == [events]
    assert request._context.callbacks is None


def test_an_unreadable_body_is_left_to_the_pool_process():
    request = _received(_message(b"[not json"))

    # Nothing raised here: the pool process fails the task and the message
    # is rejected to the dead-letter queue (test_deadletters).
    assert request.args == ()
    assert request.body == b"[not json"


def test_a_body_of_the_old_protocol_is_read_as_celery_reads_it(events):
    body = json.dumps({"task": FEED.task, "id": "t-1", "args": [events]}).encode()
    message = _message(body)
    request = _received(message)

    assert message._decoded_cache is not None
    assert request.args == [events]
