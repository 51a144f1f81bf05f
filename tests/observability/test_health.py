"""Probes and portal_doctor against the live database and broker."""

import io
from contextlib import suppress

import pytest
from amqp import Message
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from kombu import Connection

from portal.messaging import topology
from portal.messaging.delayed_delivery import declare_unroutable
from portal.messaging.doctor import OK, PROBLEM, doctor_run
from portal.messaging.models import LoggedEvent, RelayHeartbeat
from portal.messaging.relay import Relay
from portal.observability.heartbeat import heartbeat_age
from tests.messaging.conftest import private_queue_names


@pytest.mark.django_db
def test_healthz_answers_while_the_process_runs():
    answer = Client().get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database_migrations_and_broker(settings):
    answer = Client().get("/readyz")
    assert answer.json()["checks"]["database"] == "ok"
    assert answer.json()["checks"]["migrations"] == "ok"
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"
    answer = Client().get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "not ready"
    assert answer.json()["checks"]["broker"].startswith("unreachable")


@pytest.mark.django_db(transaction=True)
def test_the_relays_duties_beat_its_heartbeat(settings, tmp_path):
    settings.HEARTBEAT_DIR = tmp_path
    relay = Relay(grace=0)
    relay.duties()
    assert heartbeat_age("relay") < 5
    (beat,) = RelayHeartbeat.objects.all()
    assert beat.relay == relay.name
    assert (timezone.now() - beat.last_pass_at).total_seconds() < 5


PREFIX = "feed.doctor-test"


@pytest.fixture
def own_queues(settings):
    names = private_queue_names(PREFIX)
    for name, value in names.items():
        setattr(settings, name, value)
    with Connection(settings.CELERY_BROKER_URL) as conn:
        yield conn
        channel = conn.channel()
        for name in names.values():
            for queue in (name, f"{name}.dead"):
                with suppress(Exception):
                    channel.queue_delete(queue)


def findings(check: str):
    return [f for f in doctor_run() if f.check.startswith(check)]


@pytest.mark.real_stack
@pytest.mark.django_db
def test_portal_doctor_finds_the_stack_as_the_portal_needs_it(own_queues, settings):
    topology.declare(own_queues)
    topology.declare_ingest(own_queues)
    declare_unroutable(own_queues)  # as a worker does when it connects
    RelayHeartbeat.objects.create(
        relay="here:1", started_at=timezone.now(), last_pass_at=timezone.now()
    )
    problems = [f for f in doctor_run() if f.level == PROBLEM]
    assert problems == []
    (queue,) = findings(f"queue {PREFIX} ")
    assert queue.level == OK
    assert "quorum, delivery limit 10, dead-letters to portal.dlx" in queue.message
    out = io.StringIO()
    call_command("portal_doctor", stdout=out)
    assert "0 problem(s)" in out.getvalue()


@pytest.mark.real_stack
@pytest.mark.django_db
def test_portal_doctor_explains_each_problem(own_queues, settings):
    topology.declare(own_queues)
    topology.declare_ingest(own_queues)
    audit = f"{PREFIX}-audit"
    channel = own_queues.channel()
    channel.queue_delete(audit)
    channel.queue_declare(queue=audit, durable=True)  # a classic queue
    channel.basic_publish(Message(b"x"), exchange="", routing_key=audit)  # waiting
    channel.close()
    own_queues.channel().queue_delete(f"{PREFIX}.dead")
    settings.FEED_DELIVERY_LIMIT = 3
    settings.FEED_RETRY_DELAYS = [1, 1, 1]
    old = timezone.now() - timezone.timedelta(minutes=10)
    RelayHeartbeat.objects.create(relay="gone:1", started_at=old, last_pass_at=old)
    row = LoggedEvent.objects.create(
        event_id="e1", source="/tests", type="employee.registered", envelope={},
        undelivered=["feed"],
    )  # fmt: skip
    LoggedEvent.objects.filter(pk=row.pk).update(created_at=old)

    by_check = {f.check: f for f in doctor_run()}
    classic = by_check[f"queue {audit} (subscriber audit)"]
    assert classic.level == PROBLEM
    assert "inequivalent arg" in classic.message
    assert "classic queue neither counts deliveries" in classic.explanation
    limit = by_check["feed: delivery limit vs retries"]
    assert limit.level == PROBLEM
    assert limit.message == "delivery limit 3 <= 3 retries"
    assert "FEED_DELIVERY_LIMIT" in limit.explanation
    dead = by_check[f"dead-letter queue {PREFIX}.dead"]
    assert dead.level == PROBLEM
    assert "dropped" in dead.explanation
    relay = by_check["relay"]
    assert relay.level == PROBLEM
    assert "registrations keep succeeding" in relay.explanation
    backlog = by_check["backlog feed"]
    assert backlog.level == PROBLEM
    assert backlog.message.startswith("1 event(s) owed, the oldest for 6")
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("portal_doctor", stdout=out)
    assert exit_.value.code == 1
    assert "PROBLEM relay" in out.getvalue()
