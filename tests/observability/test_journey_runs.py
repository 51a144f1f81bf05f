"""A journey row covers a run of log ids: how runs are cut, and read back."""

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.messaging.journey import Hop, hop_runs, hops_record
from portal.messaging.models import HOP_RUN_MAX, EventHop


def test_consecutive_ids_that_went_alike_are_one_run():
    hops = [Hop(n, "applied") for n in range(10, 20)]
    assert hop_runs(hops) == [(10, 19, "applied", "")]


def test_a_gap_an_outcome_or_a_detail_starts_a_new_run():
    hops = [
        Hop(1, "applied"),
        Hop(2, "applied"),
        Hop(4, "applied"),  # gap
        Hop(5, "duplicate"),  # outcome
        Hop(6, "duplicate", "x"),  # detail
        Hop(7, "duplicate", "x"),
        Hop(3, "applied"),  # out of order: alone
    ]
    assert hop_runs(hops) == [
        (1, 2, "applied", ""),
        (4, 4, "applied", ""),
        (5, 5, "duplicate", ""),
        (6, 7, "duplicate", "x"),
        (3, 3, "applied", ""),
    ]


def test_no_run_is_longer_than_the_lookup_window():
    hops = [Hop(n, "applied") for n in range(1, 2 * HOP_RUN_MAX + 2)]
    runs = hop_runs(hops)
    assert [(first, last) for first, last, _, _ in runs] == [
        (1, HOP_RUN_MAX),
        (HOP_RUN_MAX + 1, 2 * HOP_RUN_MAX),
        (2 * HOP_RUN_MAX + 1, 2 * HOP_RUN_MAX + 1),
    ]
    assert hop_runs([]) == []


def test_details_are_cut_to_their_stored_length():
    (run,) = hop_runs([Hop(1, "retried", "e" * 5000), Hop(2, "retried", "e" * 4000)])
    assert run == (1, 2, "retried", "e" * 2000)


@pytest.mark.django_db
def test_a_batch_is_written_as_runs_and_each_event_finds_its_hop():
    now = timezone.now()
    ids = [*range(100, 1600), 1700, *range(1702, 1705)]
    duplicates = {150, 151}
    hops = [Hop(n, "duplicate" if n in duplicates else "applied") for n in ids]
    hops_record(
        hops,
        subscriber="feed",
        attempt=1,
        delivered_at=now - timedelta(seconds=1),
        finished_at=now,
        process="worker test:1",
        task_id="t1",
    )
    # 100-149, 150-151, 152-1151 (the longest run), 1152-1599, 1700, 1702-1704
    assert EventHop.objects.count() == 6
    assert EventHop.objects.events() == len(ids)
    assert EventHop.objects.filter(outcome="duplicate").events() == 2
    for log_id in (100, 150, 151, 152, 1151, 1152, 1599, 1700, 1703):
        (hop,) = EventHop.objects.covering(log_id)
        assert hop.log_id <= log_id <= hop.log_id_last
        assert hop.outcome == ("duplicate" if log_id in duplicates else "applied")
    for log_id in (99, 1600, 1701, 1705):
        assert not EventHop.objects.covering(log_id).exists()
    assert EventHop.objects.covering(1590, 1702).count() == 3


def test_the_batch_bookkeeping_runs_once_when_the_subscriber_waits():
    from portal.messaging.journey import (
        BatchJourney,
        batch_journey_begin,
        batch_journey_end,
        batch_journey_while_waiting,
    )

    calls = []
    journey = BatchJourney("feed", prepare=lambda: calls.append(1))
    batch_journey_while_waiting()  # no batch: nothing to do
    token = batch_journey_begin(journey)
    try:
        batch_journey_while_waiting()
        batch_journey_while_waiting()
    finally:
        batch_journey_end(token)
    assert calls == [1]
