"""An event's journey, recorded by the real relay path and real workers.

Each test runs workers of its own (``private_worker``) on queues of its own;
the test process routes with ``route_pending`` as the relay would.
"""

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from feed.models import FeedEvent
from portal.messaging.journey_selectors import journey_of, journey_search
from portal.messaging.models import DeadLetter, EventHop, LoggedEvent
from portal.messaging.router import route_pending
from registrar.services import employee_register
from tests.factories import DepartmentFactory
from tests.helpers import wait_for

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]

PREFIX = "feed.journey-test"
FEED_QUEUE, AUDIT_QUEUE = PREFIX, f"{PREFIX}-audit"


def register(name: str = "Anna Petrova") -> LoggedEvent:
    department = DepartmentFactory(name=f"Dept {uuid.uuid4().hex[:6]}")
    employee = employee_register(
        full_name=name,
        email=f"{uuid.uuid4().hex[:8]}@example.com",
        position="Backend Engineer",
        department=department,
    )
    return LoggedEvent.objects.get(envelope__data__employee_id=employee.pk)


def route_everything() -> None:
    while route_pending().sent:
        pass


def steps(lane) -> list[str]:
    return [step.what for step in lane.steps]


def test_a_registrations_journey_shows_every_hop_in_order(private_worker):
    private_worker(PREFIX, queues=[FEED_QUEUE, AUDIT_QUEUE])
    event = register()
    route_everything()

    def applied_by_both():
        """the feed and the audit subscriber recorded their hops"""
        hops = EventHop.objects.covering(event.pk).filter(outcome="applied")
        return hops.count() == 2

    wait_for(applied_by_both, timeout=30)
    event.refresh_from_db()
    journey = journey_of(event)
    lanes = {lane.destination: lane for lane in journey.lanes}
    assert list(lanes) == ["feed", "audit", "broadcast"]
    assert journey.committed.by.startswith("test ")  # the process that logged it
    for name in ("feed", "audit"):
        lane = lanes[name]
        assert steps(lane) == [
            "routed: published, confirmed by RabbitMQ",
            "delivered (attempt 1)",
            "applied",
        ], name
        assert lane.status == "applied"
        routed, delivered, applied = lane.steps
        assert routed.by.startswith("test ")  # routed by this process
        assert delivered.by.startswith("worker ")
        assert applied.by == delivered.by
        # In order, each after the one before, and plausibly quick.
        assert journey.committed.at <= routed.at <= delivered.at <= applied.at
        for step in lane.steps:
            assert 0 <= step.took_ms < 30_000, (name, step)
        assert 0 <= routed.duration_ms < 10_000
        assert 0 <= applied.duration_ms < 10_000
    assert steps(lanes["broadcast"]) == ["routed: published, confirmed by RabbitMQ"]
    assert lanes["broadcast"].status == "published"


def test_the_journey_page_finds_an_event_by_id_employee_and_type(private_worker):
    private_worker(PREFIX, queues=[FEED_QUEUE, AUDIT_QUEUE])
    event = register("Boris Johnson-Smith")
    route_everything()
    wait_for(lambda: EventHop.objects.covering(event.pk).count() == 2)
    employee_id = event.envelope["data"]["employee_id"]
    assert list(journey_search(subject="employee", subject_id=str(employee_id))) == [
        event
    ]
    assert list(journey_search(event_id=event.event_id)) == [event]
    assert event in journey_search(
        type="employee.registered", since=event.created_at - timedelta(seconds=1)
    )
    assert not journey_search(type="thanks.sent")

    admin = User.objects.create_superuser("ops", "ops@example.com", "pw")
    client = Client()
    client.force_login(admin)
    # By id: straight to the timeline.
    page = client.get(reverse("journey"), {"event_id": event.event_id})
    html = page.content.decode()
    assert page.status_code == 200
    assert "routed: published, confirmed by RabbitMQ" in html
    assert html.count("delivered (attempt 1)") == 2
    assert 'class="hop hop-ok"' in html
    # By employee: a list linking to it.
    page = client.get(
        reverse("journey"), {"subject": "employee", "subject_id": employee_id}
    )
    assert reverse("journey_event", args=[event.pk]) in page.content.decode()
    # Not for staff who are not admins.
    nobody = User.objects.create_user("staff", "s@example.com", "pw")
    client.force_login(nobody)
    assert client.get(reverse("journey")).status_code == 302


def test_a_dead_lettered_events_journey_shows_the_retries_and_the_dead_letter(
    private_worker,
):
    private_worker(PREFIX, queues=[FEED_QUEUE])
    private_worker(
        PREFIX, queues=[AUDIT_QUEUE], AUDIT_FAIL="1", AUDIT_RETRY_DELAYS="1,1"
    )
    event = register()
    route_everything()

    def dead_lettered():
        """the audit subscriber gave up and its dead letter is stored"""
        return DeadLetter.objects.filter(event_id=event.event_id).exists()

    wait_for(dead_lettered, timeout=60)
    wait_for(lambda: FeedEvent.objects.filter(event_id=event.event_id).exists())
    event.refresh_from_db()
    lanes = {lane.destination: lane for lane in journey_of(event).lanes}
    audit = steps(lanes["audit"])
    assert audit[0] == "routed: published, confirmed by RabbitMQ"
    assert audit[1:5] == [
        "delivered (attempt 1)",
        "retried",
        "delivered (attempt 2)",
        "retried",
    ]
    assert "dead letter stored: retries exhausted" in audit
    assert lanes["audit"].status == "dead-lettered"
    retried = [s for s in lanes["audit"].steps if s.what == "retried"]
    assert all("AUDIT_FAIL" in s.detail for s in retried)
    assert lanes["feed"].status == "applied"  # the feed's lane is untouched

    admin = User.objects.create_superuser("ops", "ops@example.com", "pw")
    client = Client()
    client.force_login(admin)
    letter = DeadLetter.objects.get(event_id=event.event_id)
    change = client.get(reverse("admin:messaging_deadletter_change", args=[letter.pk]))
    link = f"{reverse('journey')}?event_id={event.event_id}"
    assert link in change.content.decode()
    page = client.get(link).content.decode()
    assert "dead letter stored: retries exhausted" in page
    assert "status-dead-lettered" in page


def test_the_journey_search_finds_an_event_by_its_id_on_an_index():
    """The log's unique index leads with the event id, so a search by id
    alone reads one index entry, not the whole log (the log keeps no
    separate index on the id: every index costs each routing UPDATE)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO messaging_loggedevent (event_id, source, type, envelope,"
            " origin, status, undelivered, attempts, last_error, created_at,"
            " logged_by) SELECT 'e' || n, '/tests/journey', 'employee.registered',"
            " jsonb_build_object('id', 'e' || n), 'portal', 'sent', '[]', 1, '',"
            " now(), '' FROM generate_series(1, 20000) AS n"
        )
        cursor.execute("ANALYZE messaging_loggedevent")
    plan = journey_search(event_id="e12345").explain()
    assert "outbox_unique_event_id_source" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert [e.event_id for e in journey_search(event_id=" e12345 ")] == ["e12345"]
