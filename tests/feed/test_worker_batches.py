"""Batches of events through a real worker: one bad event, a worker killed mid-batch."""

import os
import signal
from contextlib import suppress

import psycopg
import pytest

from feed.models import FeedEvent
from feed.subscriptions import FEED
from portal.messaging.amqp_publish import publisher_reset
from portal.messaging.models import DeadLetter
from portal.testing.processes import process_children
from portal.testing.urls import database_url
from tests.conftest import WorkerProcess
from tests.helpers import make_envelope, queue_depth, send_task, wait_for

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]


def _dsn() -> str:
    return database_url()


def _hold_row(blocker: psycopg.Connection, envelope: dict) -> None:
    """Insert, uncommitted, a feed row with ``envelope``'s (source, id): a
    worker inserting that event waits on it, inside its batch transaction."""
    blocker.execute(
        "INSERT INTO feed_feedevent (source, event_id, type, time, data, text,"
        " department, traceparent, received_at)"
        " VALUES (%s, %s, 'employee.registered', now(), '{}', '', '', '', now())",
        [envelope["source"], envelope["id"]],
    )


def _worker_waits_on_a_row() -> int:
    """a worker is inside its batch, waiting for the held row's lock"""
    with psycopg.connect(_dsn(), autocommit=True) as probe:
        return probe.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            " AND (query LIKE 'COPY \"feed_feedevent\"%%'"
            " OR query LIKE 'INSERT INTO \"feed_feedevent\"%%')"
        ).fetchone()[0]


def _kill_hard(worker: WorkerProcess) -> None:
    """SIGKILL the worker and its pool processes: no cleanup, no ack."""
    pool = process_children(worker.process.pid)
    assert pool, "the worker has no pool process"
    for pid in [*pool, worker.process.pid]:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    worker.process.wait(timeout=10)


def test_a_batch_with_one_bad_event_applies_the_rest_and_dead_letters_it(
    clean_queues, feed_worker
):
    first, second = make_envelope(), make_envelope()
    bad = make_envelope(type="employee.fired")
    send_task([first, bad, second])

    def applied():
        """both good events are on the feed and the bad one is dead-lettered"""
        return FeedEvent.objects.count() == 2 and DeadLetter.objects.count() == 1

    wait_for(applied)
    assert set(FeedEvent.objects.values_list("event_id", flat=True)) == {
        first["id"],
        second["id"],
    }
    dead = DeadLetter.objects.get()
    assert (dead.reason, dead.event_id) == ("unknown type/version", bad["id"])

    def drained():
        """the message was acked, not left for redelivery"""
        return queue_depth(clean_queues, FEED.queue) == 0

    wait_for(drained)
    assert queue_depth(clean_queues, FEED.dead_letter_queue) == 0


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(private_worker, broker):
    envelopes = [make_envelope() for _ in range(5)]
    blocked = envelopes[2]
    with psycopg.connect(_dsn()) as blocker:
        # An uncommitted row with the same (source, id) as the third event:
        # the worker's insert waits on it, inside its batch transaction.
        _hold_row(blocker, blocked)
        worker = private_worker("feed.killed-test")
        publisher_reset()  # a connection from an earlier test may be dead
        send_task(envelopes)

        wait_for(_worker_waits_on_a_row)
        _kill_hard(worker)
        blocker.rollback()

    assert FeedEvent.objects.count() == 0  # the killed batch committed nothing

    private_worker("feed.killed-test")

    def all_applied():
        """the redelivered batch reached the feed"""
        return FeedEvent.objects.count() == len(envelopes)

    wait_for(all_applied, timeout=30)
    assert sorted(FeedEvent.objects.values_list("event_id", flat=True)) == sorted(
        envelope["id"] for envelope in envelopes
    )

    def drained():
        """the redelivered message was acked after its commit"""
        return queue_depth(broker, "feed.killed-test") == 0

    wait_for(drained)
    assert DeadLetter.objects.count() == 0


def test_a_gracefully_stopped_worker_finishes_its_batch_and_returns_the_rest(
    private_worker, broker
):
    in_hand = [make_envelope() for _ in range(3)]
    waiting = [make_envelope() for _ in range(2)]
    with psycopg.connect(_dsn()) as blocker:
        # Hold the worker inside its first batch (its insert waits on this
        # uncommitted row), with the second message prefetched behind it.
        _hold_row(blocker, in_hand[0])
        worker = private_worker("feed.shutdown-test")
        publisher_reset()
        send_task(in_hand)

        wait_for(_worker_waits_on_a_row)
        send_task(waiting)
        worker.process.send_signal(signal.SIGTERM)  # warm shutdown
        blocker.rollback()  # let the batch in hand finish

    assert worker.process.wait(timeout=30) == 0
    # The batch in hand was finished and acked; the prefetched one went back.
    assert sorted(FeedEvent.objects.values_list("event_id", flat=True)) == sorted(
        envelope["id"] for envelope in in_hand
    )
    assert queue_depth(broker, "feed.shutdown-test") == 1

    private_worker("feed.shutdown-test")

    def all_applied():
        """the returned message was applied by the next worker"""
        return FeedEvent.objects.count() == len(in_hand) + len(waiting)

    wait_for(all_applied, timeout=30)
    assert DeadLetter.objects.count() == 0
