"""One event log, many subscribers, on the real stack.

Besides the feed, the tests' own app declares a second subscriber, ``audit``
(``portal/testing/subscriber_app``: every ``employee.*`` event, recorded once through
the inbox). Each runs on its own queue, here each in a worker of its own.
"""

import contextlib
import json
import re
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from kombu import Connection, Consumer, Queue

from feed.models import FeedEvent
from portal.messaging import topology
from portal.messaging.dead_letter_tools import dead_letters_requeue
from portal.messaging.eventlog import event_log_emit
from portal.messaging.models import DeadLetter, LoggedEvent
from portal.messaging.router import route_pending
from portal.testing.subscriber_app.models import ReceivedEvent
from registrar.services import department_rename, employee_register
from tests.factories import DepartmentFactory
from tests.helpers import queue_depth, wait_for
from tests.ingest.test_amqp import broker_url

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "feed.subscribers-test"
SHARED_INGEST_QUEUE = settings.INGEST_QUEUE  # as the session's workers name it
FEED_QUEUE, AUDIT_QUEUE = PREFIX, f"{PREFIX}-audit"


def purge_if_declared(broker, name: str) -> None:
    channel = broker.channel()
    try:
        channel.queue_purge(name)
    except Exception:  # noqa: BLE001 - not declared: nothing to purge
        pass
    finally:
        with contextlib.suppress(Exception):
            channel.close()


def register_people(count: int, start: int = 0) -> list[str]:
    department = DepartmentFactory(name=f"Dept {uuid.uuid4().hex[:6]}")
    ids = []
    for n in range(start, start + count):
        employee_register(
            full_name=f"Person {n}",
            email=f"person{n}-{uuid.uuid4().hex[:6]}@example.com",
            position="Engineer",
            department=department,
        )
        ids.append(LoggedEvent.objects.latest("id").event_id)
    return ids


def route_everything() -> None:
    while route_pending().sent:
        pass
    assert not LoggedEvent.objects.filter(status="pending").exists()


def audit_counts() -> Counter:
    return Counter(ReceivedEvent.objects.values_list("event_id", flat=True))


def feed_task_receipts(worker) -> int:
    return len(re.findall(r"Task feed\.apply_events\[[^\]]+\] received", worker.log()))


def test_a_second_subscriber_gets_its_events_once_and_never_holds_back_the_feed(
    private_worker, broker
):
    feed_worker = private_worker(PREFIX, queues=[FEED_QUEUE])
    registered = register_people(12)
    department = DepartmentFactory(name="Finance")
    department_rename(department=department, name="Finance & Accounting")
    renamed = LoggedEvent.objects.latest("id").event_id
    route_everything()

    # The feed gets everything at once although the audit subscriber's
    # worker is not running: its messages wait in its own queue.
    wait_for(lambda: FeedEvent.objects.count() == len(registered) + 1, what="feed")
    assert queue_depth(broker, AUDIT_QUEUE) >= 1
    assert not ReceivedEvent.objects.exists()

    # More events while it is away; the feed keeps up.
    later = register_people(5, start=100)
    route_everything()
    wait_for(lambda: FeedEvent.objects.count() == len(registered) + 6, what="feed")

    # It comes back and catches up, exactly once, with employee.* only.
    private_worker(PREFIX, queues=[AUDIT_QUEUE])
    expected = set(registered) | set(later)
    wait_for(lambda: set(audit_counts()) == expected, what="audit caught up")
    assert renamed not in audit_counts()

    # Delivered again (every event republished): still once each, anywhere.
    LoggedEvent.objects.update(status="pending", undelivered=["feed", "audit"])
    route_everything()
    wait_for(lambda: queue_depth(broker, AUDIT_QUEUE) == 0, what="audit drained")
    wait_for(lambda: queue_depth(broker, FEED_QUEUE) == 0, what="feed drained")
    assert max(audit_counts().values()) == 1
    assert sorted(FeedEvent.objects.values_list("event_id", flat=True)) == sorted(
        [*expected, renamed]
    )
    assert feed_worker.alive()


def test_a_failing_subscriber_dead_letters_its_own_copies_and_requeues_to_itself(
    private_worker, broker
):
    feed_worker = private_worker(PREFIX, queues=[FEED_QUEUE])
    failing = private_worker(
        PREFIX, queues=[AUDIT_QUEUE], AUDIT_FAIL="1", AUDIT_RETRY_DELAYS="1,1"
    )
    registered = register_people(3)
    route_everything()
    wait_for(lambda: FeedEvent.objects.count() == 3, what="the feed applied all")

    def audit_gave_up():
        """the audit subscriber's retries ran out and its events are stored"""
        return DeadLetter.objects.filter(subscriber="audit").count() == 3

    wait_for(audit_gave_up, timeout=60)
    records = list(DeadLetter.objects.filter(subscriber="audit").order_by("id"))
    assert {r.event_id for r in records} == set(registered)
    assert {r.reason for r in records} == {"retries exhausted"}
    assert all("AUDIT_FAIL" in r.error for r in records)
    assert all(r.routing_key == AUDIT_QUEUE for r in records)
    assert DeadLetter.objects.exclude(subscriber="audit").count() == 0
    assert FeedEvent.objects.count() == 3  # the feed's copies untouched

    # Fixed, and one dead letter requeued: it goes to the audit subscriber only.
    failing.stop()
    private_worker(PREFIX, queues=[AUDIT_QUEUE])
    receipts = feed_task_receipts(feed_worker)
    assert dead_letters_requeue([records[0]]) == (1, [])
    wait_for(lambda: set(audit_counts()) == {records[0].event_id}, what="requeued")
    assert queue_depth(broker, FEED_QUEUE) == 0
    assert feed_task_receipts(feed_worker) == receipts  # no message to the feed
    assert FeedEvent.objects.count() == 3


def _bound_queue(name: str, pattern: str = "#") -> Queue:
    return Queue(
        name,
        topology.broadcast_exchange(),
        routing_key=pattern,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def test_outside_events_reach_every_subscriber_and_every_event_is_broadcast(
    private_worker, broker, settings
):
    outside_queue = f"examples.consume-{uuid.uuid4().hex[:8]}"
    properties_queue = f"{outside_queue}.properties"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "consume_pika.py"),
            "--url",
            broker_url(),
            "--queue",
            outside_queue,
            "--declare-only",
        ],
        check=True,
        timeout=60,
    )
    channel = broker.channel()
    _bound_queue(properties_queue)(channel).declare()
    channel.close()
    try:
        private_worker(PREFIX)  # both subscribers, and the ingest consumer
        source = f"/tests/outside/{uuid.uuid4()}"
        published = subprocess.run(
            [
                sys.executable,
                str(ROOT / "examples" / "publish_pika.py"),
                "--url",
                broker_url(),
                "--count",
                "4",
                "--source",
                source,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.split()
        outside = set(published)
        wait_for(
            lambda: FeedEvent.objects.filter(event_id__in=outside).count() == 4,
            what="outside events on the feed",
        )
        wait_for(lambda: outside <= set(audit_counts()), what="and at the audit")

        own = register_people(2)
        employees = list(LoggedEvent.objects.filter(event_id__in=own))
        with transaction.atomic():
            event_log_emit(
                type="thanks.sent",
                source="/portal/feed",
                data={
                    "from_employee_id": 1,
                    "from_name": "A",
                    "to_employee_id": 2,
                    "to_name": "B",
                    "message": "Thanks!",
                },
            )
        thanks = LoggedEvent.objects.latest("id")
        route_everything()
        logged = {e.event_id: e for e in LoggedEvent.objects.all()}
        assert set(logged) == outside | set(own) | {thanks.event_id}
        assert {e.origin for e in logged.values()} == {"amqp", "portal"}
        assert len(employees) == 2

        received = subprocess.run(
            [
                sys.executable,
                str(ROOT / "examples" / "consume_pika.py"),
                "--url",
                broker_url(),
                "--queue",
                outside_queue,
                "--idle-timeout",
                "3",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=90,
        ).stdout.splitlines()
        events = [json.loads(line) for line in received]
        assert Counter(e["id"] for e in events) == Counter(set(logged))
        for event in events:
            assert event == logged[event["id"]].envelope  # the documented shape

        shapes = []

        def on_message(body, message):
            shapes.append(
                (
                    message.delivery_info["routing_key"],
                    message.properties.get("message_id"),
                    message.properties.get("app_id"),
                    message.content_type,
                    message.properties.get("delivery_mode"),
                )
            )
            message.ack()

        with (
            Connection(settings.CELERY_BROKER_URL) as conn,
            Consumer(conn, [_bound_queue(properties_queue)], callbacks=[on_message]),
        ):
            try:
                while True:
                    conn.drain_events(timeout=2)
            except TimeoutError:
                pass
        assert sorted(shapes) == sorted(
            (e.type, e.event_id, e.source, "application/cloudevents+json", 2)
            for e in logged.values()
        )
    finally:
        channel = broker.channel()
        for name in (outside_queue, properties_queue):
            channel.queue_delete(name)
        channel.close()
        # portal.events also copied them to the shared ingest queue: a later
        # test's worker must not log them again into its own database.
        purge_if_declared(broker, SHARED_INGEST_QUEUE)
