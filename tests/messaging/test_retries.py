"""Retries of transient failures: delays held by RabbitMQ, then the store.

A private worker reaches PostgreSQL through a TCP proxy the test can cut, so
only that worker loses its database.
"""

import re

import pytest
from kombu import Connection

from feed.models import FeedEvent
from portal.messaging.amqp_publish import publisher_reset
from portal.messaging.dead_letter_tools import dead_letters_requeue
from portal.messaging.models import DeadLetter
from portal.testing.urls import database_url, via_port
from tests.helpers import make_envelope, queue_depth, send_task, wait_for

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]


def proxied_database_url(port: int) -> str:
    return via_port(database_url(), port)


def held_by_broker(broker: Connection) -> int:
    """Messages waiting in Celery's native delayed-delivery queues."""
    return sum(queue_depth(broker, f"celery_delayed_{level}") for level in range(4))


def test_a_transient_database_failure_is_retried_after_a_delay_held_by_rabbitmq(
    private_worker, db_proxy, broker, settings
):
    worker = private_worker(
        "feed.retry-test",
        FEED_RETRY_DELAYS="3,3,3",
        DATABASE_URL=proxied_database_url(db_proxy.port),
    )
    db_proxy.cut()
    envelope = make_envelope()
    publisher_reset()  # a connection from an earlier test may be dead
    send_task([envelope])

    def delayed_in_rabbitmq():
        """the retry is parked in a celery_delayed_* queue, not in the worker"""
        return held_by_broker(broker) >= 1

    wait_for(delayed_in_rabbitmq)
    assert queue_depth(broker, settings.FEED_QUEUE) == 0
    assert "Transient error, retry 1 in 3s" in worker.log()

    db_proxy.restore()
    wait_for(lambda: FeedEvent.objects.filter(event_id=envelope["id"]).exists())
    assert FeedEvent.objects.count() == 1
    assert held_by_broker(broker) == 0
    assert not DeadLetter.objects.exists()


def test_exhausted_retries_go_to_the_store_and_requeue_once_fixed(
    private_worker, db_proxy, broker, settings
):
    worker = private_worker(
        "feed.exhaust-test",
        FEED_RETRY_DELAYS="1,1",
        DATABASE_URL=proxied_database_url(db_proxy.port),
    )
    db_proxy.cut()
    envelope = make_envelope()
    publisher_reset()  # a connection from an earlier test may be dead
    send_task([envelope])

    def gave_up():
        """the worker gave up after its last retry"""
        return "Giving up on task" in worker.log()

    wait_for(gave_up, timeout=30)
    # The attempt count travelled with the message: retry 1, then retry 2.
    retries = re.findall(r"Transient error, retry (\d+)", worker.log())
    assert retries == ["1", "2"]

    db_proxy.restore()  # the store is written once the database is back
    [record] = wait_for(lambda: list(DeadLetter.objects.all()), timeout=40)
    assert record.reason == "retries exhausted"
    assert record.attempts == 3
    assert record.event_id == envelope["id"]
    assert "OperationalError" in record.error
    assert FeedEvent.objects.count() == 0

    assert dead_letters_requeue([record]) == (1, [])
    wait_for(lambda: FeedEvent.objects.filter(event_id=envelope["id"]).exists())
    assert FeedEvent.objects.count() == 1
