"""The fault scenarios on a private three-node RabbitMQ cluster
(``bench/faults/cluster.py``): two relays, two workers, a stream of
registrations and outside publishes, one fault each; every event counted per
subscriber, none lost, none applied twice. ``make chaos-cluster`` runs the
same scenarios on 20,000 events with a 2-minute database outage.

Marked ``cluster`` (``-m "not cluster"`` leaves them out locally; CI runs
them, and fails them when RabbitMQ's programs or the real stack are
missing)."""

import os

import pytest

from bench.faults import cluster as scenarios
from bench.faults.counting import SUBSCRIBERS

pytestmark = [
    pytest.mark.real_stack,
    pytest.mark.cluster,
    pytest.mark.django_db(transaction=True),
]

EVENTS = int(os.environ.get("CLUSTER_TEST_EVENTS", "1500"))
DB_OUTAGE = float(os.environ.get("CLUSTER_TEST_DB_OUTAGE", "30"))


def assert_exact(outcome) -> None:
    """Every subscriber applied every event sent its way, once; nothing lost,
    nothing dead-lettered, nothing it was not sent."""
    print(outcome.scenario, outcome.tallies, outcome.notes)
    assert set(outcome.tallies) == set(SUBSCRIBERS), outcome
    for tally in outcome.tallies.values():
        assert tally.sent == EVENTS, tally
        assert (tally.lost, tally.duplicated) == (0, 0), tally
        assert (tally.dead_lettered, tally.unexpected) == (0, 0), tally
        assert tally.applied == tally.sent, tally


def test_killing_the_leader_node_loses_and_duplicates_nothing(cluster_lab):
    assert_exact(scenarios.leader_killed(cluster_lab, EVENTS))


def test_a_rolling_restart_loses_and_duplicates_nothing(cluster_lab):
    assert_exact(scenarios.rolling_restart(cluster_lab, EVENTS))


def test_a_node_frozen_for_30_s_loses_and_duplicates_nothing(cluster_lab):
    assert_exact(scenarios.node_paused(cluster_lab, EVENTS))


def test_a_node_a_relay_and_a_worker_killed_at_once_lose_nothing(cluster_lab):
    outcome = scenarios.node_relay_worker_killed(cluster_lab, EVENTS)
    assert outcome.extra["process_restarts"] == 2  # the relay and the worker
    assert_exact(outcome)


def test_a_database_outage_longer_than_the_retries_dead_letters_nothing(
    cluster_lab,
):
    outcome = scenarios.database_outage(cluster_lab, EVENTS, outage=DB_OUTAGE)
    assert_exact(outcome)


def test_a_worker_consumes_again_soon_after_its_node_dies(cluster_lab):
    """The portal's delayed-delivery start-up step uses the node the worker
    just connected to (Celery's tries every URL, the dead one three times:
    18 s in ``bench/results/chaos-cluster.md``)."""
    pause = scenarios.delayed_delivery_pause(cluster_lab, stock=False)
    print(f"delayed-delivery pause: {pause:.1f} s")
    assert pause < 8.0, pause
