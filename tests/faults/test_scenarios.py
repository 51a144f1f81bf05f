"""Fault injection on the real stack: every event is counted, none may be lost
or duplicated. The scenarios themselves live in ``scenarios.py``, shared with
``bench/chaos.py``, which runs them at a larger scale."""

import pytest
from django.conf import settings

from . import scenarios

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]


def assert_exact(outcome, *, dead_lettered: int = 0) -> None:
    assert (outcome.lost, outcome.duplicated) == (0, 0), outcome
    assert outcome.dead_lettered == dead_lettered, outcome
    assert outcome.in_feed == outcome.sent - dead_lettered, outcome
    assert outcome.unexpected_in_feed == 0, outcome


def test_registrations_survive_an_unreachable_broker_and_all_reach_the_feed(lab):
    outcome = scenarios.broker_outage(lab)
    assert outcome.extra["registered"] == outcome.extra["expected"] == 1000
    assert outcome.sent == 1000
    assert outcome.extra["held_back"] > 0, "the outage held nothing back"
    assert_exact(outcome)


def test_workers_killed_mid_processing_lose_and_duplicate_nothing(lab):
    outcome = scenarios.worker_killed(lab)
    assert outcome.sent == 5000
    assert "None" not in " ".join(outcome.extra["kills"]), outcome.extra["kills"]
    assert outcome.extra["starts"] == 3  # two whole-worker kills, two restarts
    assert_exact(outcome)


def test_database_unreachable_to_the_worker_is_retried(lab):
    outcome = scenarios.database_outage(lab)
    assert outcome.extra["retries"] > 0, "the outage hit no message"
    assert_exact(outcome)


def test_queued_messages_survive_a_broker_restart(lab):
    outcome = scenarios.broker_restart(lab)
    assert outcome.extra["queued_before"] > 0
    assert outcome.extra["queued_after"] == outcome.extra["queued_before"]
    assert_exact(outcome)


def test_events_published_twice_appear_once(lab):
    outcome = scenarios.published_twice(lab)
    assert outcome.sent == 1000
    assert_exact(outcome)


def test_malformed_messages_are_dead_lettered_and_valid_ones_applied(lab):
    outcome = scenarios.malformed_messages(lab)
    assert outcome.extra["worker_survived"]
    assert outcome.extra["lost_children"] == 0
    assert outcome.extra["malformed"] == outcome.extra["valid"] == 1000
    assert outcome.extra["without_reason"] == 0
    assert_exact(outcome, dead_lettered=1000)


def test_a_poison_message_is_dead_lettered_after_the_delivery_limit(lab):
    outcome = scenarios.poison_message(lab)
    assert outcome.extra["worker_alive"]
    # Each delivery killed a pool process, up to the queue's delivery limit.
    assert outcome.extra["deaths"] >= settings.FEED_DELIVERY_LIMIT
    assert outcome.extra["reason"] == scenarios.REASON_DELIVERY_LIMIT
    assert_exact(outcome, dead_lettered=1)
