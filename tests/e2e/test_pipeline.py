"""The whole pipeline on real PostgreSQL and RabbitMQ, with a real Celery worker.

registrar service → outbox (same transaction) → after-commit publish or relay
→ RabbitMQ quorum queue ``feed`` → ``feed.apply_events`` in a worker → feed.
"""

import subprocess
import sys
import time

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from kombu import Exchange, Producer

from feed.models import FeedEvent
from feed.subscriptions import FEED
from portal.messaging import topology
from portal.messaging.models import DeadLetter, LoggedEvent
from portal.messaging.relay import Relay
from portal.messaging.wakeup import background
from portal.roles import HR_GROUP
from registrar.models import Employee
from registrar.services import (
    department_rename,
    employee_change_position,
    employee_move_to_team,
    employee_register,
)
from tests.conftest import worker_env
from tests.factories import DepartmentFactory, EmployeeFactory, TeamFactory
from tests.helpers import make_envelope, queue_depth, send_task, wait_for

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]


def feed_texts() -> list[str]:
    return list(FeedEvent.objects.order_by("time", "id").values_list("text", flat=True))


def wait_for_feed(count: int, timeout: float = 20.0) -> list[str]:
    def enough():
        """the feed holds the expected number of events"""
        return FeedEvent.objects.count() >= count

    wait_for(enough, timeout=timeout)
    return feed_texts()


@pytest.fixture
def pipeline(clean_queues, feed_worker, inline_publish):
    return feed_worker


def test_registration_reaches_the_feed(pipeline):
    team = TeamFactory(name="Core", department__name="Platform")
    employee_register(
        full_name="Anna Petrova",
        email="anna@example.com",
        position="Backend Engineer",
        department=team.department,
        team=team,
    )
    assert wait_for_feed(1) == [
        "Anna Petrova joined the company as Backend Engineer in Core, Platform"
    ]
    assert LoggedEvent.objects.get().status == "sent"


def test_every_registrar_operation_reaches_the_feed(pipeline):
    old = TeamFactory(name="Old")
    new = TeamFactory(name="New", department__name="Finance")
    employee = EmployeeFactory(
        full_name="Ivan Ivanov", team=old, department=old.department
    )
    employee_change_position(employee=employee, position="Lead")
    employee_move_to_team(employee=employee, team=new)
    department_rename(department=new.department, name="Finance & Accounting")
    texts = wait_for_feed(4)
    assert sorted(texts) == sorted(
        [
            "Ivan Ivanov is now Lead (was Engineer)",
            "Ivan Ivanov left the Old team",
            "Ivan Ivanov joined the New team",
            "Finance was renamed to Finance & Accounting",
        ]
    )
    assert set(FeedEvent.objects.values_list("type", flat=True)) == {
        "employee.position_changed",
        "team.member_left",
        "team.member_joined",
        "department.renamed",
    }


def test_registration_through_the_web_form_reaches_the_feed(pipeline, settings):
    settings.OUTBOX_PUBLISH_MODE = "thread"
    department = DepartmentFactory(name="Sales")
    hr = User.objects.create_user("hr", password="pw")
    hr.groups.add(Group.objects.get(name=HR_GROUP))
    client = Client()
    client.force_login(hr)
    response = client.post(
        "/registrar/employees/new/",
        {
            "full_name": "Olga Smirnova",
            "email": "olga@example.com",
            "position": "Account Manager",
            "department": department.pk,
        },
    )
    assert response.status_code == 302
    assert wait_for_feed(1) == [
        "Olga Smirnova joined the company as Account Manager in Sales"
    ]


def test_in_notify_mode_the_relay_process_publishes_what_the_web_commits(
    pipeline, settings, tmp_path
):
    """The default on PostgreSQL: the request thread only commits; the
    process's background thread NOTIFYs and a separate `relay_outbox`
    process, LISTENing, publishes. Its poll would wait a minute (grace), so
    only the notification explains a prompt feed event."""
    settings.OUTBOX_PUBLISH_MODE = "notify"
    settings.OUTBOX_NOTIFY_CHANNEL = "portal_outbox_e2e"
    env = worker_env(
        OUTBOX_PUBLISH_MODE="notify", OUTBOX_NOTIFY_CHANNEL="portal_outbox_e2e"
    )
    log = (tmp_path / "relay.log").open("wb")
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "relay_outbox", "--grace=60", "--interval=30"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def listening():
            """the relay process LISTENs"""
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE query = %s",
                    ['LISTEN "portal_outbox_e2e"'],
                )
                return cursor.fetchone()[0] == 1

        wait_for(listening, timeout=30)
        employee_register(
            full_name="Nora Notify",
            email="nora@example.com",
            position="Engineer",
            department=DepartmentFactory(name="Ops"),
        )
        assert wait_for_feed(1, timeout=15) == [
            "Nora Notify joined the company as Engineer in Ops"
        ]
        assert LoggedEvent.objects.get().status == "sent"
    finally:
        relay.terminate()
        relay.wait(timeout=30)
        log.close()


def test_the_same_envelope_delivered_three_times_makes_one_feed_event(
    pipeline, clean_queues
):
    envelope = make_envelope()
    for _ in range(3):
        send_task([envelope])
    wait_for_feed(1)

    def queue_drained():
        """the three messages were consumed and acked"""
        return queue_depth(clean_queues, FEED.queue) == 0

    wait_for(queue_drained)
    time.sleep(0.5)  # let any straggler land before counting
    assert FeedEvent.objects.filter(event_id=envelope["id"]).count() == 1


def test_registration_survives_an_unreachable_broker(pipeline, settings):
    real_broker = settings.CELERY_BROKER_URL
    settings.OUTBOX_PUBLISH_MODE = "thread"
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens
    department = DepartmentFactory(name="Support")
    started = time.monotonic()
    employee_register(
        full_name="Petr Sidorov",
        email="petr@example.com",
        position="Support Engineer",
        department=department,
    )
    elapsed = time.monotonic() - started
    assert Employee.objects.filter(email="petr@example.com").exists()
    assert background().flush(timeout=10)
    row = LoggedEvent.objects.get()
    assert row.status == "pending"
    assert row.attempts >= 1
    assert "refused" in row.last_error
    # A generous bound: the request does not wait for the broker at all.
    assert elapsed < 1.0, elapsed

    settings.CELERY_BROKER_URL = real_broker
    assert Relay(grace=0).drain() == 1
    assert wait_for_feed(1) == [
        "Petr Sidorov joined the company as Support Engineer in Support"
    ]
    time.sleep(0.5)
    assert FeedEvent.objects.count() == 1
    row.refresh_from_db()
    assert row.status == "sent"


def test_invalid_messages_neither_crash_the_worker_nor_loop(pipeline, clean_queues):
    missing_id = make_envelope()
    del missing_id["id"]
    unknown = make_envelope(type="employee.promoted_to_ceo")
    send_task([missing_id])
    send_task([unknown])
    # Bytes that are not JSON at all, straight onto the feed queue.
    Producer(clean_queues.channel()).publish(
        b"\x00not json{",
        exchange=Exchange(topology.TASKS_EXCHANGE, type="topic"),
        routing_key=FEED.queue,
        content_type="application/json",
        content_encoding="utf-8",
        headers={"task": "feed.apply_events", "id": "raw-garbage"},
    )

    def dead_lettered():
        """both invalid events and the undecodable message are in the store"""
        return DeadLetter.objects.count() == 3

    wait_for(dead_lettered)
    assert queue_depth(clean_queues, FEED.queue) == 0
    assert queue_depth(clean_queues, FEED.dead_letter_queue) == 0
    assert FeedEvent.objects.count() == 0
    assert set(DeadLetter.objects.values_list("reason", flat=True)) == {
        "invalid envelope",
        "unknown type/version",
        "not JSON",
    }
    assert pipeline.alive()
    # And the worker still does its job afterwards.
    send_task([make_envelope()])
    wait_for_feed(1)
