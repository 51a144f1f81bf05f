"""Fault injection on the real stack: every event is counted, for each
subscriber (the feed and ``audit``), and none may be lost or duplicated. The
scenarios themselves live in ``bench/faults/scenarios.py``, shared with
``bench/chaos.py``, which runs them at a larger scale."""

import pytest
from django.conf import settings

from bench.faults import scenarios
from bench.faults.counting import INGEST, SUBSCRIBERS
from feed.subscriptions import FEED

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]


def assert_exact(outcome, *, dead_lettered: dict[str, int] | None = None) -> None:
    """Every subscriber applied what it was sent, nothing lost, nothing twice,
    nothing it was not sent; dead-lettered exactly ``dead_lettered[name]``."""
    dead_lettered = dead_lettered or {}
    assert set(SUBSCRIBERS) <= set(outcome.tallies), outcome
    for name, tally in outcome.tallies.items():
        assert (tally.lost, tally.duplicated) == (0, 0), tally
        assert tally.dead_lettered == dead_lettered.get(name, 0), tally
        assert tally.applied == tally.sent - tally.dead_lettered, tally
        assert tally.unexpected == 0, tally


def test_registrations_survive_an_unreachable_broker_and_reach_every_subscriber(
    lab,
):
    outcome = scenarios.broker_outage(lab)
    assert outcome.extra["registered"] == outcome.extra["expected"] == 1000
    assert [t.sent for t in outcome.tallies.values()] == [1000, 1000]
    assert outcome.extra["held_back"] > 0, "the outage held nothing back"
    assert_exact(outcome)


def test_workers_killed_mid_processing_lose_and_duplicate_nothing(lab):
    outcome = scenarios.worker_killed(lab)
    assert [t.sent for t in outcome.tallies.values()] == [5000, 5000]
    assert "None" not in " ".join(outcome.extra["kills"]), outcome.extra["kills"]
    assert outcome.extra["starts"] == 3  # two whole-worker kills, two restarts
    assert_exact(outcome)


def test_database_unreachable_to_the_worker_is_retried(lab):
    outcome = scenarios.database_outage(lab)
    assert outcome.extra["retries"] > 0, "the outage hit no message"
    assert_exact(outcome)


def test_queued_messages_survive_a_broker_restart(lab):
    outcome = scenarios.broker_restart(lab)
    before, after = outcome.extra["queued_before"], outcome.extra["queued_after"]
    assert set(before) == set(SUBSCRIBERS)
    assert all(before.values()), before
    assert after == before
    assert_exact(outcome)


def test_events_published_twice_appear_once(lab):
    outcome = scenarios.published_twice(lab)
    assert [t.sent for t in outcome.tallies.values()] == [1000, 1000]
    assert_exact(outcome)


def test_malformed_messages_are_dead_lettered_and_valid_ones_applied(lab):
    outcome = scenarios.malformed_messages(lab)
    assert outcome.extra["worker_survived"]
    assert outcome.extra["lost_children"] == 0
    assert outcome.extra["malformed"] == outcome.extra["valid"] == 1000
    assert outcome.extra["without_reason"] == 0
    # The feed: 1000 valid and 700 malformed on its queue; audit: the 600
    # valid events that went through the log; ingestion: 300 malformed.
    assert outcome[FEED.name].sent == 1700
    assert outcome["audit"].sent == 600
    assert outcome[INGEST].sent == 300
    assert_exact(outcome, dead_lettered={FEED.name: 700, INGEST: 300})


def test_a_poison_message_is_dead_lettered_after_the_delivery_limit(lab):
    outcome = scenarios.poison_message(lab)
    assert outcome.extra["worker_alive"]
    # Each delivery killed a pool process, up to the queue's delivery limit.
    assert outcome.extra["deaths"] >= settings.FEED_DELIVERY_LIMIT
    assert outcome.extra["reason"] == scenarios.REASON_DELIVERY_LIMIT
    assert outcome[FEED.name].sent == 501
    assert outcome["audit"].sent == 500
    assert_exact(outcome, dead_lettered={FEED.name: 1})
