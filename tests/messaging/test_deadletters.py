"""The dead-letter store on the real stack: what lands there, why, and the tools."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from kombu import Exchange, Producer, Queue

from feed.models import FeedEvent
from feed.subscriptions import FEED
from portal.messaging import topology
from portal.messaging.amqp_publish import publisher_reset
from portal.messaging.dead_letter_records import (
    HEADER_ATTEMPTS,
    HEADER_ERROR,
    HEADER_QUEUE,
    HEADER_REASON,
    REASON_RETRIES_EXHAUSTED,
)
from portal.messaging.dead_letter_tools import dead_letters_requeue, parse_age
from portal.messaging.models import DeadLetter
from tests.helpers import make_envelope, queue_depth, send_task, wait_for

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(clean_queues, feed_worker):
    return feed_worker


def stored(count: int, **filters) -> list[DeadLetter]:
    def enough():
        """the dead-letter store holds the expected records"""
        return DeadLetter.objects.filter(**filters).count() >= count

    wait_for(enough)
    return list(DeadLetter.objects.filter(**filters).order_by("id"))


def publish_raw(broker, body: bytes, *, content_type: str, headers=None) -> None:
    Producer(broker.channel()).publish(
        body,
        exchange=Exchange(topology.TASKS_EXCHANGE, type="topic"),
        routing_key=FEED.queue,
        content_type=content_type,
        content_encoding="binary",
        headers={"task": FEED.task, "id": "raw", **(headers or {})},
    )


def test_undecodable_task_messages_are_stored_with_their_reason(worker, broker):
    publish_raw(broker, b"\x00not json{", content_type="application/json")
    publish_raw(broker, b"<xml/>", content_type="application/xml")
    huge = json.dumps([[[make_envelope(data={"pad": "x" * 1_200_000})]], {}, {}])
    publish_raw(broker, huge.encode(), content_type="application/json")

    records = {r.reason: r for r in stored(3)}
    assert set(records) == {"not JSON", "wrong content type", "oversized"}
    garbage = records["not JSON"]
    assert garbage.kind == "message"
    assert garbage.raw_body == b"\x00not json{"  # byte for byte, NUL included
    assert garbage.headers["task"] == FEED.task
    assert (garbage.exchange, garbage.routing_key) == (
        topology.TASKS_EXCHANGE,
        FEED.queue,
    )
    assert records["oversized"].size == len(huge)
    assert records["wrong content type"].content_type == "application/xml"
    wait_for(lambda: queue_depth(broker, FEED.dead_letter_queue) == 0)
    assert worker.alive()


def test_a_message_past_the_delivery_limit_is_stored_as_delivery_limit(
    worker, broker, settings
):
    """A quorum queue dead-letters a message delivered too often; it is stored."""
    poison_queue = Queue(
        "feed.poison-test",
        Exchange(topology.TASKS_EXCHANGE, type="topic"),
        routing_key="feed.poison-test",
        queue_arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": settings.FEED_DELIVERY_LIMIT,
            "x-dead-letter-exchange": topology.DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": FEED.dead_letter_queue,
        },
    )
    channel = broker.channel()
    bound = poison_queue(channel)
    bound.declare()
    try:
        envelope = make_envelope()
        from portal.celery import app

        app.send_task(FEED.task, args=[[envelope]], queue=poison_queue, retry=False)
        # Every delivery "dies": requeued until the queue gives up on it.
        for _ in range(settings.FEED_DELIVERY_LIMIT + 5):
            message = bound.get(no_ack=False)
            if message is None:
                break
            message.requeue()
        [record] = stored(1, reason="delivery limit")
    finally:
        bound.delete()
        channel.close()
    assert record.kind == "event"
    assert record.event_id == envelope["id"]
    assert record.queue == "feed.poison-test"
    assert record.subscriber == "feed"  # a feed task, wherever it died
    assert record.attempts == settings.FEED_DELIVERY_LIMIT + 1
    assert record.first_failed_at is not None
    assert json.loads(record.body) == envelope


def test_requeueing_a_fixed_dead_letter_puts_it_on_the_feed_exactly_once(
    worker, broker
):
    envelope = make_envelope()
    # What the feed task sends when retries ran out (the database was down).
    from portal.celery import app

    app.send_task(
        FEED.task,
        args=[[envelope]],
        exchange=topology.DEAD_LETTER_EXCHANGE,
        routing_key=FEED.dead_letter_queue,
        queue=topology.dead_letter_queue(FEED.dead_letter_queue),
        headers={
            HEADER_REASON: REASON_RETRIES_EXHAUSTED,
            HEADER_ERROR: "OperationalError: connection refused",
            HEADER_ATTEMPTS: 5,
            HEADER_QUEUE: FEED.queue,
        },
        retry=False,
    )
    [record] = stored(1)
    assert (record.reason, record.attempts) == ("retries exhausted", 5)
    assert record.subscriber == "feed"
    assert "connection refused" in record.error
    assert FeedEvent.objects.count() == 0

    out = StringIO()
    call_command("deadletters", "requeue", "--reason", "retries exhausted", stdout=out)
    assert "Requeued 1 dead letter(s)." in out.getvalue()
    wait_for(lambda: FeedEvent.objects.filter(event_id=envelope["id"]).exists())
    record.refresh_from_db()
    assert (record.status, record.requeue_count) == ("requeued", 1)

    # Again, on purpose: still one event on the feed.
    call_command("deadletters", "requeue", str(record.pk), "--status", "all")
    record.refresh_from_db()
    assert record.requeue_count == 2
    wait_for(lambda: queue_depth(broker, FEED.queue) == 0)
    # Idempotence, not timing, keeps it at one: the second copy was processed.
    wait_for(lambda: _worker_saw_duplicate(worker, envelope["id"]))
    assert FeedEvent.objects.filter(event_id=envelope["id"]).count() == 1
    assert DeadLetter.objects.count() == 1


def _worker_saw_duplicate(worker, event_id: str) -> bool:
    """the worker applied the requeued copy as a duplicate"""
    return "'duplicates': 1" in worker.log()


def test_an_invalid_event_requeued_unfixed_is_dead_lettered_again(worker):
    bad = make_envelope(type="employee.promoted_to_ceo")
    publisher_reset()  # a connection from an earlier test may be dead
    send_task([bad])
    [record] = stored(1)
    assert record.reason == "unknown type/version"
    assert (record.subscriber, record.exchange) == ("feed", topology.TASKS_EXCHANGE)
    done, errors = dead_letters_requeue([record])
    assert (done, errors) == (1, [])
    stored(2)
    assert FeedEvent.objects.count() == 0


def test_the_command_lists_shows_filters_and_purges():
    now = timezone.now()
    old = DeadLetter.objects.create(
        reason="not JSON", body="{", kind="message", event_type=""
    )
    DeadLetter.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=4))
    fresh = DeadLetter.objects.create(
        reason="invalid data",
        body=json.dumps(make_envelope()),
        event_type="employee.registered",
        event_id="e-1",
    )
    out = StringIO()
    call_command("deadletters", "list", "--type", "employee.registered", stdout=out)
    assert "e-1" in out.getvalue()
    assert "1 dead letter(s)" in out.getvalue()

    out = StringIO()
    call_command("deadletters", "show", str(fresh.pk), stdout=out)
    assert '"full_name": "Anna Petrova"' in out.getvalue()  # pretty-printed

    out = StringIO()
    call_command("deadletters", "purge", "--older-than", "3d", stdout=out)
    assert "Purged 1 dead letter(s)." in out.getvalue()
    assert list(DeadLetter.objects.values_list("pk", flat=True)) == [fresh.pk]
    call_command("deadletters", "purge", "--reason", "invalid data", stdout=out)
    assert not DeadLetter.objects.exists()


def test_ages_parse():
    assert parse_age("90s") == timedelta(seconds=90)
    assert parse_age("2h") == timedelta(hours=2)
    assert parse_age("3d") == timedelta(days=3)
    with pytest.raises(ValueError, match="not an age"):
        parse_age("soon")


@pytest.mark.parametrize(
    "body",
    [{"not": "a task body"}, [["only args"]], "a string", [[], {}, "embed"]],
    ids=["object", "one-element list", "string", "embed not an object"],
)
def test_a_task_body_celery_cannot_unpack_is_dead_lettered_not_fatal(
    worker, broker, body
):
    publish_raw(broker, json.dumps(body).encode(), content_type="application/json")
    publisher_reset()
    envelope = make_envelope()
    send_task([envelope])
    [record] = stored(1)
    assert record.reason == "invalid message"
    assert json.loads(record.raw_body) == body
    wait_for(lambda: FeedEvent.objects.filter(event_id=envelope["id"]).exists())
    assert worker.alive()
