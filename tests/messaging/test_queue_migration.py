"""Queues an older version declared with other arguments are migrated by a
command, their messages kept, instead of crashing anything."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from kombu import Connection, Producer, Queue

from feed.subscriptions import FEED
from portal.messaging import topology
from tests.messaging.conftest import delete_private_queues, private_queue_names

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db]

PREFIX = "feed.migration-test"


@pytest.fixture
def private_names(settings, broker):
    for name, value in private_queue_names(PREFIX).items():
        setattr(settings, name, value)
    delete_private_queues(PREFIX)
    yield broker
    delete_private_queues(PREFIX)
    channel = broker.channel()
    channel.queue_delete(FEED.queue + ".migrating")
    channel.close()


def old_feed_queue() -> Queue:
    """The feed queue as the previous version declared it."""
    return Queue(
        FEED.queue,
        topology.tasks_exchange(),
        routing_key=FEED.queue,
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": 10,
            "x-dead-letter-exchange": topology.DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": FEED.dead_letter_queue,
        },
    )


def run(*args: str) -> str:
    out = StringIO()
    call_command("messaging_queues", *args, stdout=out)
    return out.getvalue()


def publish(broker: Connection, count: int) -> list[bytes]:
    bodies = [f'{{"n": {n}}}'.encode() for n in range(count)]
    producer = Producer(broker.channel())
    for body in bodies:
        producer.publish(
            body,
            exchange="",
            routing_key=FEED.queue,
            content_type="application/json",
            content_encoding="binary",
            headers={"task": FEED.task, "kept": "yes"},
        )
    return bodies


def drain(broker: Connection, name: str) -> list[tuple[bytes, dict]]:
    channel = broker.channel()
    got = []
    while (message := channel.basic_get(name, no_ack=True)) is not None:
        got.append((message.body, message.properties.get("application_headers")))
    channel.close()
    return got


def test_an_outdated_queue_is_reported_then_migrated_with_its_messages(private_names):
    broker = private_names
    channel = broker.channel()
    old_feed_queue()(channel).declare()
    channel.close()
    bodies = publish(broker, 5)

    with pytest.raises(CommandError, match="1 queue"):
        run()
    output = run("--migrate")
    assert f"migrated  {FEED.queue}: 5 message(s) kept" in output
    assert "ok" in run()  # now everything is as declared

    kept = drain(broker, FEED.queue)
    assert sorted(body for body, _ in kept) == sorted(bodies)
    assert all(headers["kept"] == "yes" for _, headers in kept)
    channel = broker.channel()
    topology.subscription_queue(FEED)(channel).declare()  # the new arguments hold
    channel.close()


def test_a_queue_with_consumers_is_not_migrated(private_names):
    broker = private_names
    channel = broker.channel()
    old_feed_queue()(channel).declare()
    channel.basic_consume(FEED.queue, callback=lambda message: None)
    try:
        with pytest.raises(CommandError, match="consumer"):
            run("--migrate")
    finally:
        channel.close()


def test_an_interrupted_migration_is_finished_by_running_it_again(private_names):
    broker = private_names
    channel = broker.channel()
    topology.subscription_queue(FEED)(channel).declare()
    channel.queue_declare(
        FEED.queue + ".migrating",
        durable=True,
        auto_delete=False,
        arguments={"x-queue-type": "quorum"},
    )
    channel.close()
    producer = Producer(broker.channel())
    producer.publish(b'{"left": 1}', exchange="", routing_key=FEED.queue + ".migrating")

    with pytest.raises(CommandError, match="migration left unfinished"):
        run()
    run("--migrate")
    assert [body for body, _ in drain(broker, FEED.queue)] == [b'{"left": 1}']
