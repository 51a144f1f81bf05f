"""Metrics: the web's endpoint, the log's state, and a worker's pool added up."""

import os
import socket
import subprocess
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from portal.messaging.models import DeadLetter, LoggedEvent, RelayHeartbeat
from portal.messaging.router import route_pending
from portal.observability.collectors import EventLogCollector
from portal.observability.exposition import metrics_server_start
from tests.helpers import make_envelope, send_task, wait_for

ROOT = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def collected() -> dict[tuple[str, tuple], float]:
    found = {}
    for family in EventLogCollector().collect():
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db
def test_the_log_state_backlog_oldest_heartbeat_and_dead_letters():
    now = timezone.now()
    for n, (owed, age) in enumerate(
        [(["feed", "audit"], 30), (["feed"], 90), ([], 500)]
    ):
        row = LoggedEvent.objects.create(
            event_id=f"e{n}",
            source="/tests",
            type="employee.registered",
            envelope={},
            undelivered=owed,
            status="pending" if owed else "sent",
        )
        LoggedEvent.objects.filter(pk=row.pk).update(
            created_at=now - timedelta(seconds=age)
        )
    RelayHeartbeat.objects.create(relay="a:1", started_at=now, last_pass_at=now)
    DeadLetter.objects.create(reason="invalid data", subscriber="feed", body="{}")
    DeadLetter.objects.create(reason="invalid data", subscriber="feed", body="{}")
    DeadLetter.objects.create(
        reason="invalid data", subscriber="feed", body="{}", status="requeued"
    )
    got = collected()
    undelivered = "portal_event_log_undelivered_events"
    oldest = "portal_event_log_oldest_undelivered_age_seconds"
    assert got[(undelivered, (("destination", "feed"),))] == 2
    assert got[(undelivered, (("destination", "audit"),))] == 1
    assert 89 < got[(oldest, (("destination", "feed"),))] < 120
    assert 29 < got[(oldest, (("destination", "audit"),))] < 60
    assert got[("portal_relay_last_pass_timestamp_seconds", ())] == pytest.approx(
        now.timestamp()
    )
    key = ("portal_dead_letters", (("reason", "invalid data"), ("subscriber", "feed")))
    assert got[key] == 2


@pytest.mark.django_db
def test_web_metrics_need_the_token_or_a_loopback_caller(settings):
    client = Client()
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 404
    settings.METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = client.get(
        "/metrics",
        headers={"Authorization": "Bearer s3cret-token"},
        REMOTE_ADDR="10.1.2.3",
    )
    assert right.status_code == 200
    names = {name for name, _ in samples(right.content.decode())}
    assert "portal_event_log_undelivered_events" in names
    assert "portal_relay_last_pass_timestamp_seconds" in names


def test_a_metrics_port_wants_the_bearer_token():
    port = free_port()
    server = metrics_server_start(port=port, address="127.0.0.1", token="t0ken")
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        with pytest.raises(urllib.request.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        assert refused.value.code == 401
        request = urllib.request.Request(url, headers={"Authorization": "Bearer t0ken"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert b"portal_relay_events_routed_total" in answer.read()
        # A second server on the same port is refused without failing.
        assert metrics_server_start(port=port, address="127.0.0.1", token="") is None
    finally:
        server.shutdown()


def test_multiprocess_counts_of_several_processes_are_added_up(tmp_path):
    """What gunicorn's workers and Celery's pool do: each process counts in
    its own files, one scrape adds them up."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = (
        "from portal.messaging import metrics; "
        "metrics.APPLIED.labels('feed').inc({n}); "
        "metrics.QUEUE_MESSAGES.labels('feed').set({n})"
    )
    for n in (3, 4):
        subprocess.run([sys.executable, "-c", count.format(n=n)], env=env, check=True)
    scrape = (
        "from portal.observability.exposition import metrics_text; "
        "import sys; sys.stdout.write(metrics_text().decode())"
    )
    text = subprocess.run(
        [sys.executable, "-c", scrape], env=env, check=True, capture_output=True,
        text=True, cwd=ROOT,
    ).stdout  # fmt: skip
    got = samples(text)
    key = (("subscriber", "feed"),)
    assert got[("portal_subscriber_events_applied_total", key)] == 7
    assert got[("portal_subscriber_queue_messages", key)] == 4  # max of the two


@pytest.mark.real_stack
@pytest.mark.django_db(transaction=True)
def test_a_workers_pool_is_counted_on_its_metrics_port(private_worker):
    """Two pool processes apply events; the worker's port adds them up."""
    port = free_port()
    prefix = "feed.metrics-test"
    private_worker(
        prefix,
        queues=[prefix],
        concurrency=2,
        WORKER_METRICS_PORT=str(port),
        METRICS_TOKEN="",
    )
    envelopes = [make_envelope() for _ in range(30)]
    for chunk in (envelopes[:10], envelopes[10:20], envelopes[20:], envelopes[:5]):
        send_task(chunk)

    def scrape() -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as answer:
            return samples(answer.read().decode())

    key = (("subscriber", "feed"),)

    def all_applied():
        """the worker's metrics count every event"""
        got = scrape()
        return (
            got.get(("portal_subscriber_events_applied_total", key)) == 30
            and got.get(("portal_subscriber_duplicates_skipped_total", key)) == 5
        )

    wait_for(all_applied, timeout=30)
    got = scrape()
    assert got[("portal_subscriber_batch_size_events_count", key)] == 4
    assert got[("portal_subscriber_batch_size_events_sum", key)] == 35
    lag = "portal_subscriber_event_time_lag_seconds_count"
    assert got[(lag, key)] == 30
    # Sent by hand, not routed: no commit time travelled with them.
    assert got[("portal_subscriber_commit_lag_seconds_count", key)] == 0
    assert route_pending().sent == 0
