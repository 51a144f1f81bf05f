"""The publishing side under broker trouble: unroutable, stalled, unreachable."""

import threading
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection, transaction
from kombu import Connection

from feed.subscriptions import FEED
from portal.messaging import topology
from portal.messaging.amqp_publish import (
    _connections,
    publish_confirmed,
    publisher_reset,
)
from portal.messaging.eventlog import event_log_emit
from portal.messaging.models import LoggedEvent
from portal.messaging.relay import Relay
from portal.messaging.router import route_pending
from portal.messaging.task_messages import encode_event, task_message
from portal.messaging.wakeup import background
from registrar.services import employee_register
from tests.factories import DepartmentFactory
from tests.helpers import send_task, wait_for

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]


def via(proxy) -> str:
    from django.conf import settings

    url = urlsplit(settings.CELERY_BROKER_URL)
    host = url.netloc.rsplit(":", 1)[0]
    return urlunsplit(url._replace(netloc=f"{host}:{proxy.port}"))


def emit(count: int = 1) -> list[int]:
    with transaction.atomic():
        return [
            event_log_emit(
                type="department.renamed",
                source="/tests/hardening",
                data={"department_id": i, "old_name": "A", "new_name": "B"},
            ).pk
            for i in range(count)
        ]


def _delete_queues(url: str, name: str) -> None:
    with Connection(url) as conn:
        channel = conn.channel()
        for queue in (name, f"{name}.dead"):
            channel.queue_delete(queue)
        channel.close()


@pytest.fixture
def private_feed_queue(settings):
    """Publish to a queue of this test's own, out of any worker's reach."""
    settings.FEED_QUEUE = "feed.hardening-test"
    url = settings.CELERY_BROKER_URL
    publisher_reset()
    _delete_queues(url, settings.FEED_QUEUE)
    yield settings.FEED_QUEUE
    background().flush(timeout=30)
    publisher_reset()
    _delete_queues(url, "feed.hardening-test")


def test_an_unroutable_message_is_an_error_and_its_rows_stay_pending(
    private_feed_queue, monkeypatch
):
    """No queue bound for the message: RabbitMQ returns it, the rows stay."""
    # Nobody declares the feed's queue: nothing is bound.
    monkeypatch.setattr(topology, "declare_subscription", lambda *a, **k: None)
    [pk] = emit()
    result = route_pending()
    assert (result.sent, result.failed) == (0, 1)
    assert "NO_ROUTE" in result.error
    row = LoggedEvent.objects.get(pk=pk)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "NO_ROUTE" in row.last_error


def test_a_queue_deleted_under_a_publisher_is_not_a_silent_drop(
    private_feed_queue, broker
):
    send_task([{"first": 1}])  # declares and binds the queue
    channel = broker.channel()
    channel.queue_delete(private_feed_queue)
    channel.close()
    [result] = publish_confirmed([task_message(FEED, [encode_event({"second": 2})])])
    assert "NO_ROUTE" in result


def test_a_stalled_broker_fails_the_publish_after_the_timeout(
    private_feed_queue, broker_proxy, settings
):
    settings.CELERY_BROKER_URL = via(broker_proxy)
    settings.OUTBOX_PUBLISH_TIMEOUT = 1.0
    emit()
    assert route_pending().sent == 1  # the connection is open and works
    broker_proxy.freeze()  # like a blocked RabbitMQ: nothing comes back
    [pk] = emit()
    result = route_pending()
    assert (result.sent, result.failed) == (0, 1)
    assert LoggedEvent.objects.get(pk=pk).status == "pending"

    broker_proxy.restore()
    assert route_pending().sent == 1
    assert set(LoggedEvent.objects.values_list("status", flat=True)) == {"sent"}


def test_a_registration_does_not_wait_for_a_stalled_broker(
    private_feed_queue, broker_proxy, settings
):
    settings.OUTBOX_PUBLISH_MODE = "thread"
    settings.CELERY_BROKER_URL = via(broker_proxy)
    settings.OUTBOX_PUBLISH_TIMEOUT = 3.0
    broker_proxy.freeze()
    employee_register(
        full_name="Nina Stall",
        email="nina@example.com",
        position="Engineer",
        department=DepartmentFactory(name="Ops"),
    )
    # The request is done while the publisher thread is still stuck on RabbitMQ.
    assert background().flush(timeout=0) is False
    assert background().flush(timeout=30) is True  # it gave up, bounded
    row = LoggedEvent.objects.get()
    assert row.status == "pending"
    assert row.last_error


def test_the_relay_backs_off_through_an_outage_and_then_publishes(
    private_feed_queue, broker_proxy, settings
):
    settings.CELERY_BROKER_URL = via(broker_proxy)
    broker_proxy.cut()
    ids = emit(5)
    relay = Relay(grace=0, interval=0.05, batch_size=100)

    def run():
        try:
            relay.run_forever()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:

        def retried():
            """the relay tried several times while the broker was away"""
            return all(
                row.attempts >= 3 for row in LoggedEvent.objects.filter(pk__in=ids)
            )

        wait_for(retried)
        assert thread.is_alive()
        assert LoggedEvent.objects.filter(status="sent").count() == 0
        broker_proxy.restore()

        def published():
            """every row was confirmed after the broker came back"""
            return LoggedEvent.objects.filter(status="sent").count() == 5

        wait_for(published, timeout=60)
    finally:
        relay.stopping.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert FEED.queue == private_feed_queue


def test_a_blocked_connection_fails_publishes_at_once_until_unblocked(
    private_feed_queue,
):
    """RabbitMQ's connection.blocked (memory or disk alarm) is honoured."""
    emit()
    assert route_pending().sent == 1  # an open, working connection
    # What py-amqp calls when RabbitMQ sends connection.blocked.
    _connections.connection.connection.on_blocked("low on memory")
    [pk] = emit()
    result = route_pending()
    assert (result.sent, result.failed) == (0, 1)
    assert "BrokerBlocked" in result.error
    assert "low on memory" in result.error
    assert LoggedEvent.objects.get(pk=pk).status == "pending"

    _connections.connection.connection.on_unblocked()
    assert route_pending().sent == 1
