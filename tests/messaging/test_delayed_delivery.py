"""Retries held by RabbitMQ whose queue is gone when their delay ends.

RabbitMQ keeps such a retry in ``celery_delayed_0`` for ever, and forwards
at most 32 dead-lettered messages at a time: 32 of them stop every retry of
the vhost. The portal's delivery exchange sends them to an alternate
exchange instead, and the workers store them as dead letters.

The broker-level tests run in a vhost of their own (created with
``rabbitmqctl``): a stalled delay queue must not stall the suite's.
"""

import io
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from kombu import Connection, Exchange, Queue
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    calculate_routing_key,
    declare_native_delayed_delivery_exchanges_and_queues,
)

from feed.models import FeedEvent
from feed.subscriptions import FEED
from portal.messaging import delayed_delivery, doctor
from portal.messaging.amqp_publish import publish_confirmed, publisher_reset
from portal.messaging.dead_letter_tools import dead_letters_requeue
from portal.messaging.doctor import OK, PROBLEM
from portal.messaging.models import DeadLetter
from portal.messaging.task_messages import encode_event, task_message
from tests.helpers import make_envelope, wait_for

pytestmark = [pytest.mark.real_stack]

ORPHANS = 40  # more than RabbitMQ forwards at a time (32)


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True)


@pytest.fixture
def own_vhost(settings) -> Iterator[str]:
    """The URL of a new vhost on the configured RabbitMQ, deleted afterwards."""
    vhost = f"portal-delay-{uuid.uuid4().hex[:8]}"
    base = settings.CELERY_BROKER_URL.split(";")[0]
    url = base[: base.rindex("/") + 1] + vhost
    _ctl("add_vhost", vhost)
    try:
        _ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield url
    finally:
        _ctl("delete_vhost", vhost)


def _live_queue(conn: Connection) -> Queue:
    queue = Queue(
        "live",
        Exchange("live", type="topic", durable=True),
        routing_key="live",
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )
    queue.bind(conn).declare()
    bind_queue_to_native_delayed_delivery_exchange(conn, queue)
    return queue


def _orphans_then_one_live_retry(conn: Connection) -> None:
    """``ORPHANS`` one-second retries for queues that do not exist, then one
    for the live queue once they are all stuck ahead of it."""
    producer = conn.Producer()
    for n in range(ORPHANS):
        producer.publish(
            {"n": n},
            exchange="celery_delayed_27",
            routing_key=calculate_routing_key(1, f"gone-{n}"),
        )
    time.sleep(2.5)
    producer.publish(
        {"live": True},
        exchange="celery_delayed_27",
        routing_key=calculate_routing_key(1, "live"),
    )


def _arrives(conn: Connection, queue: Queue, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if queue.bind(conn).get(no_ack=True) is not None:
            return True
        time.sleep(0.1)
    return False


def _depth(conn: Connection, name: str) -> int:
    channel = conn.channel()
    try:
        return channel.queue_declare(name, passive=True)[1]
    finally:
        channel.close()


def test_retries_whose_queue_is_gone_stall_celerys_own_delays(own_vhost):
    """The failure the alternate exchange prevents, on Celery's declaration."""
    with Connection(own_vhost) as conn:
        declare_native_delayed_delivery_exchanges_and_queues(conn, "quorum")
        live = _live_queue(conn)
        _orphans_then_one_live_retry(conn)
        assert not _arrives(conn, live, seconds=6)


def test_retries_whose_queue_is_gone_go_to_the_unroutable_queue(own_vhost):
    with Connection(own_vhost) as conn:
        assert delayed_delivery.declare_delayed_delivery(conn)
        live = _live_queue(conn)
        _orphans_then_one_live_retry(conn)
        assert _arrives(conn, live, seconds=20)
        wait_for(lambda: _depth(conn, delayed_delivery.UNROUTABLE) == ORPHANS)


def test_an_exchange_declared_by_celery_is_reported_then_migrated(
    own_vhost, settings, monkeypatch
):
    from portal.celery import app

    monkeypatch.setattr(app.conf, "broker_url", own_vhost)
    monkeypatch.setattr(app.conf, "broker_write_url", own_vhost)
    settings.CELERY_BROKER_URL = own_vhost
    with Connection(own_vhost) as conn:
        assert _doctor_says() == (PROBLEM, "missing (Exchange.declare: (404)")
        declare_native_delayed_delivery_exchanges_and_queues(conn, "quorum")
        # Declared as it is, not refused: the worker goes on with it.
        assert not delayed_delivery.declare_delayed_delivery(conn)
        assert _doctor_says() == (PROBLEM, "no alternate exchange")
        out = io.StringIO()
        with pytest.raises(CommandError, match="to migrate"):
            call_command("messaging_queues", stdout=out)
        assert "outdated  celery_delayed_delivery (exchange)" in out.getvalue()

        call_command("messaging_queues", "--migrate", stdout=out)
        assert "migrated  celery_delayed_delivery (exchange)" in out.getvalue()
        assert delayed_delivery.delivery_exchange_problem(conn) == ""
        # The subscriptions' queues were bound again: a retry reaches the feed's.
        depth = _depth(conn, settings.FEED_QUEUE)
        conn.Producer().publish(
            {"retry": True},
            exchange="celery_delayed_27",
            routing_key=calculate_routing_key(1, settings.FEED_QUEUE),
        )
        wait_for(lambda: _depth(conn, settings.FEED_QUEUE) == depth + 1)
        out = io.StringIO()
        call_command("messaging_queues", stdout=out)
        assert "ok        celery_delayed_delivery (exchange)" in out.getvalue()
        assert _doctor_says() == (OK, "retries no queue")
        conn.default_channel.queue_delete(delayed_delivery.UNROUTABLE)
        [missing] = [
            f
            for f in doctor._broker()
            if f.check == f"dead-letter queue {delayed_delivery.UNROUTABLE}"
        ]
        assert (missing.level, missing.message) == (PROBLEM, "missing")
        assert "32 of them stop every retry" in missing.explanation


def _doctor_says() -> tuple[str, str]:
    """``portal_doctor``'s level for the delivery exchange, and the first
    three words of what it says."""
    [finding] = [
        f for f in doctor._broker() if f.check == "exchange celery_delayed_delivery"
    ]
    words = " ".join(finding.message.split()[:3])
    return finding.level, words


@pytest.mark.django_db(transaction=True)
def test_a_retry_whose_queue_is_gone_is_stored_and_requeued(private_worker, settings):
    """A worker stores such a retry as a dead letter of its subscriber, with
    the reason; requeued, it reaches the subscriber's queue as named now."""
    private_worker("feed.unroutable-test", DELAYED_UNROUTABLE_INTAKE="1")
    with Connection(settings.CELERY_BROKER_URL) as conn:
        problem = delayed_delivery.delivery_exchange_problem(conn)
    assert not problem, (
        "this vhost's celery_delayed_delivery was declared by an older version: "
        f"run manage.py messaging_queues --migrate on it ({problem})"
    )
    envelope = make_envelope()
    gone = f"feed.renamed-{uuid.uuid4().hex[:8]}"
    publisher_reset()  # a connection from an earlier test may be dead
    retry = task_message(
        FEED,
        [encode_event(envelope)],
        exchange="celery_delayed_27",
        routing_key=calculate_routing_key(1, gone),
    )
    assert publish_confirmed([retry]) == [None]

    [record] = wait_for(
        lambda: list(DeadLetter.objects.filter(event_id=envelope["id"])), timeout=30
    )
    assert record.reason == "no queue for its retry"
    assert gone in record.error
    assert (record.subscriber, record.queue) == ("feed", gone)
    assert record.routing_key == settings.FEED_QUEUE
    assert not FeedEvent.objects.filter(event_id=envelope["id"]).exists()

    assert dead_letters_requeue([record]) == (1, [])
    wait_for(lambda: FeedEvent.objects.filter(event_id=envelope["id"]).exists())
