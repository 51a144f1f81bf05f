"""Notify mode: after an outbox commit the committing process NOTIFYs, the
relay LISTENs and publishes.

Web processes then never talk to RabbitMQ. The relay below runs with a grace
period and a poll interval far longer than the waits here, so only the
notification can explain a prompt publish.
"""

import threading
import time

import psycopg
import pytest
from django.db import connection, transaction

from portal.messaging.models import LoggedEvent
from portal.messaging.relay import Relay
from portal.messaging.wakeup import background
from tests.helpers import wait_for
from tests.messaging.test_relay import (  # noqa: F401 - private_queue is a fixture
    drain_event_ids,
    emit_renames,
    private_queue,
)

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]

CHANNEL = "portal_outbox_test"


@pytest.fixture(autouse=True)
def notify_mode(settings):
    settings.OUTBOX_PUBLISH_MODE = "notify"
    settings.OUTBOX_NOTIFY_CHANNEL = CHANNEL


def _listeners() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query = %s",
            [f'LISTEN "{CHANNEL}"'],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def start_relay():
    """Start a relay thread that leaves rows younger than a minute to the
    notification (its poll publishes only older ones)."""
    started = []

    def start(interval: float, **options) -> Relay:
        relay = Relay(grace=60, interval=interval, **options)

        def run() -> None:
            try:
                relay.run_forever()
            finally:
                connection.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        started.append((relay, thread))
        wait_for(lambda: _listeners() == 1, what="the relay to LISTEN")
        return relay

    yield start
    for relay, thread in started:
        relay.stopping.set()
        thread.join(timeout=40)


def _pending() -> int:
    return LoggedEvent.objects.filter(status="pending").count()


def test_a_commit_notifies_after_it_lands_and_a_rollback_does_not():
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute(f'LISTEN "{CHANNEL}"')
        with transaction.atomic():
            emit_renames(2)
            transaction.set_rollback(True)
        background().flush()
        assert list(listener.notifies(timeout=0.5)) == []
        emit_renames(3)
        assert len(list(listener.notifies(timeout=0.5))) >= 1


def test_a_burst_of_commits_costs_a_notify_per_window_not_per_commit(settings):
    settings.OUTBOX_PUBLISH_COALESCE_MS = 20
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute(f'LISTEN "{CHANNEL}"')
        started = time.monotonic()
        for _ in range(60):
            emit_renames(1)  # a transaction each
        background().flush()
        windows = (time.monotonic() - started) / 0.020
        notified = len(list(listener.notifies(timeout=0.5)))
    # The first at once, then at most one per 20 ms window.
    assert 1 <= notified <= windows + 2


def test_the_relay_publishes_as_soon_as_the_commit_lands(start_relay, broker):
    start_relay(interval=30)
    expected = emit_renames(5)
    wait_for(lambda: _pending() == 0, timeout=10, what="the notified rows sent")
    assert sorted(drain_event_ids(broker)) == sorted(expected)


def test_the_relay_listens_again_after_losing_its_connection(start_relay, broker):
    start_relay(interval=0.5)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s",
            [f'LISTEN "{CHANNEL}"'],
        )
    expected = emit_renames(3)  # perhaps while nobody listens
    wait_for(lambda: _pending() == 0, timeout=10, what="the rows sent")
    wait_for(lambda: _listeners() == 1, what="the relay to LISTEN again")
    expected += emit_renames(2)
    wait_for(lambda: _pending() == 0, timeout=10, what="the next rows sent")
    assert sorted(drain_event_ids(broker)) == sorted(expected)


def test_under_a_stream_of_commits_passes_are_spaced_by_the_gap(
    start_relay, broker, settings
):
    settings.OUTBOX_RELAY_PASS_GAP_MS = 1000
    start_relay(interval=30)
    time.sleep(1.2)  # the relay's first pass is more than a gap ago
    first = emit_renames(1)
    wait_for(lambda: _pending() == 0, timeout=10, what="the lone commit routed")
    rest = []
    for _ in range(4):
        rest += emit_renames(1)
        time.sleep(0.05)
    wait_for(lambda: _pending() == 0, timeout=10, what="the stream routed")
    sent = dict(
        LoggedEvent.objects.values_list("event_id", "published_at").filter(
            event_id__in=first + rest
        )
    )
    # The lone commit had a pass of its own, at once; the four that came
    # within the next second shared one (the last three at least, whatever
    # the timing of the first).
    assert len(set(sent.values())) == 2
    assert len({sent[event_id] for event_id in rest[1:]}) == 1
    assert sorted(drain_event_ids(broker)) == sorted(first + rest)


def test_a_notified_backlog_is_caught_up_by_concurrent_passes(
    start_relay, broker, monkeypatch
):
    from portal.messaging import relay as relay_module

    route = relay_module.route_pending
    passes_by: set[str] = set()

    def recorded(**options):
        passes_by.add(threading.current_thread().name)
        return route(**options)

    monkeypatch.setattr(relay_module, "route_pending", recorded)
    start_relay(interval=30, batch_size=20, threads=2)
    expected = emit_renames(500)  # one commit, 25 batches
    wait_for(lambda: _pending() == 0, timeout=20, what="the backlog routed")
    assert sorted(drain_event_ids(broker)) == sorted(expected)
    # After a full pass the relay's own thread handed the backlog to two.
    assert len({name for name in passes_by if name.startswith("relay-pass")}) == 2
