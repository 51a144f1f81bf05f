"""The relay against real PostgreSQL and RabbitMQ: confirms, SKIP LOCKED, no doubles."""

import contextlib
import threading
import time
from collections import Counter

import pytest
from django.db import connection, transaction
from kombu import Consumer

from feed.subscriptions import FEED
from portal.messaging import topology
from portal.messaging.eventlog import event_log_emit
from portal.messaging.models import LoggedEvent
from portal.messaging.relay import Relay
from portal.messaging.router import route_pending
from portal.messaging.wakeup import BackgroundPublisher

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def private_queue(broker, settings):
    """Publish to a queue of this test's own, out of the feed worker's reach."""
    settings.FEED_QUEUE = "feed.relay-test"
    topology.declare(broker)
    yield
    channel = broker.channel()
    channel.queue_delete(FEED.queue)
    channel.queue_delete(FEED.dead_letter_queue)
    channel.close()


def emit_renames(count: int) -> list[str]:
    with transaction.atomic():
        return [
            event_log_emit(
                type="department.renamed",
                source="/tests/relay",
                data={"department_id": i, "old_name": f"D{i}", "new_name": f"E{i}"},
            ).event_id
            for i in range(count)
        ]


def drain_messages(broker) -> list[tuple[list[dict], int]]:
    """The task messages now in the feed queue: each one's events and its
    body's size in bytes."""
    messages: list[tuple[list[dict], int]] = []

    def on_message(body, message):
        args, _kwargs, _embed = body
        messages.append((args[0], len(message.body)))
        message.ack()

    with (
        Consumer(
            broker,
            [topology.subscription_queue(FEED)],
            callbacks=[on_message],
            accept=["json"],
        ),
        contextlib.suppress(TimeoutError),
    ):
        while True:
            broker.drain_events(timeout=1)
    return messages


def drain_event_ids(broker) -> list[str]:
    """Every event id carried by the task messages now in the feed queue."""
    return [event["id"] for events, _ in drain_messages(broker) for event in events]


def test_relay_publishes_in_batches_and_marks_rows_sent_after_confirm(broker, settings):
    settings.FEED_EVENTS_PER_MESSAGE = 40
    expected = emit_renames(100)
    result = route_pending()
    assert (result.sent, result.failed) == (100, 0)
    assert set(LoggedEvent.objects.values_list("status", flat=True)) == {"sent"}
    assert sorted(drain_event_ids(broker)) == sorted(expected)


def test_relay_spreads_a_burst_over_the_subscribers_processes(broker, settings):
    """With ``<PREFIX>_SPREAD``, one pass's events go out in that many task
    messages, evenly, each event once."""
    settings.FEED_SPREAD = 3
    expected = emit_renames(10)
    assert route_pending().sent == 10
    messages = [
        [event["id"] for event in events] for events, _ in drain_messages(broker)
    ]
    assert sorted(len(ids) for ids in messages) == [2, 4, 4]
    assert sorted(i for ids in messages for i in ids) == sorted(expected)


def test_relay_messages_stay_within_what_the_feed_consumer_accepts(broker, settings):
    """Packed by size as well as count, with the task message's own JSON (its
    spaces, its envelope) counted in: every message the relay makes is one
    the feed's consumer takes rather than dead-letters as oversized."""
    settings.FEED_EVENTS_PER_MESSAGE = 10_000
    settings.FEED_TASK_MAX_BYTES = 40_000
    with transaction.atomic():
        for i in range(300):
            event_log_emit(
                type="thanks.sent",
                source="/tests/relay",
                data={
                    "from_employee_id": i,
                    "from_name": f"Anna {i}",
                    "to_employee_id": i + 1,
                    "to_name": f"Boris {i}",
                    "message": "Thank you, " * 40,
                },
            )
    assert route_pending().sent == 300
    messages = drain_messages(broker)
    sizes = [size for _, size in messages]
    events = sum(len(carried) for carried, _ in messages)
    assert events == 300
    assert len(sizes) > 5  # really packed by size, not by count
    assert max(sizes) <= settings.FEED_TASK_MAX_BYTES


def test_concurrent_relays_publish_each_row_exactly_once(broker, settings):
    settings.FEED_EVENTS_PER_MESSAGE = 10
    expected = emit_renames(600)
    relays = [Relay(grace=0, batch_size=25) for _ in range(4)]

    def run(relay: Relay) -> None:
        try:
            relay.drain()
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(relay,)) for relay in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    published = Counter(drain_event_ids(broker))
    assert set(published) == set(expected)
    assert max(published.values()) == 1
    assert LoggedEvent.objects.filter(status="pending").count() == 0


def test_unreachable_broker_leaves_rows_pending_with_the_error(broker, settings):
    emit_renames(3)
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"
    result = route_pending()
    assert (result.sent, result.failed) == (0, 3)
    rows = LoggedEvent.objects.all()
    assert {row.status for row in rows} == {"pending"}
    assert {row.attempts for row in rows} == {1}
    assert all("Connection refused" in row.last_error for row in rows)


def test_relay_waits_out_the_grace_period_for_the_fast_path(broker):
    emit_renames(2)
    assert Relay(grace=60).drain() == 0
    assert Relay(grace=0).drain() == 2


def test_commits_within_the_coalescing_window_share_one_publish(broker, settings):
    settings.OUTBOX_PUBLISH_MODE = "off"  # only the publisher below publishes
    settings.OUTBOX_PUBLISH_COALESCE_MS = 1000
    rows = []
    for i in range(3):
        with transaction.atomic():  # three commits, as from three requests
            rows.append(
                event_log_emit(
                    type="department.renamed",
                    source="/tests/relay",
                    data={"department_id": i, "old_name": "A", "new_name": "B"},
                )
            )
    publisher = BackgroundPublisher()
    for row in rows:
        publisher.submit([row.pk])
        time.sleep(0.2)  # apart, yet within the window
    assert publisher.flush(timeout=30)

    messages = [
        [event["id"] for event in events] for events, _ in drain_messages(broker)
    ]
    assert [sorted(ids) for ids in messages] == [sorted(r.event_id for r in rows)]
    assert set(LoggedEvent.objects.values_list("status", flat=True)) == {"sent"}


def test_a_backlog_is_caught_up_by_passes_in_flight_at_once(
    broker, settings, monkeypatch
):
    """``drain`` keeps ``threads`` passes in flight: each has its own rows
    (SKIP LOCKED) and connections, and every row is routed exactly once."""
    from portal.messaging import relay as relay_module

    settings.FEED_EVENTS_PER_MESSAGE = 10
    expected = emit_renames(400)
    met = threading.Barrier(2, timeout=10)
    passes: Counter = Counter()
    route = relay_module.route_pending

    def two_at_once(**options):
        thread = threading.get_ident()
        if not passes[thread]:
            met.wait()  # both threads' first passes are in flight together
        passes[thread] += 1
        return route(**options)

    monkeypatch.setattr(relay_module, "route_pending", two_at_once)
    assert Relay(grace=0, batch_size=25, threads=2).drain() == 400
    assert len(passes) == 2
    assert threading.get_ident() not in passes  # not the caller's thread
    published = Counter(drain_event_ids(broker))
    assert set(published) == set(expected)
    assert max(published.values()) == 1
    assert LoggedEvent.objects.filter(status="pending").count() == 0


def test_inside_a_transaction_the_passes_stay_in_it(broker):
    emit_renames(30)
    with transaction.atomic():
        assert Relay(grace=0, batch_size=10, threads=2).drain() == 30
        assert LoggedEvent.objects.filter(status="sent").count() == 30
        transaction.set_rollback(True)
    assert LoggedEvent.objects.filter(status="pending").count() == 30


def test_a_catch_up_hands_back_to_the_relay_loop_at_its_deadline(
    broker, settings, monkeypatch
):
    """The relay's loop beats its heartbeat between catch-ups: one long
    backlog must not silence it (the relay-silent alert)."""
    from portal.messaging import relay as relay_module

    emit_renames(200)
    route = relay_module.route_pending

    def slow(**options):
        time.sleep(0.1)
        return route(**options)

    monkeypatch.setattr(relay_module, "route_pending", slow)
    relay = Relay(grace=0, batch_size=5, threads=2)
    started = time.monotonic()
    routed = relay._catch_up(notified=False, until=started + 0.5)
    assert 0 < routed < 200
    assert time.monotonic() - started < 2
    assert LoggedEvent.objects.filter(status="pending").count() == 200 - routed
