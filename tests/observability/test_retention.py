"""Retention never removes an event a subscriber still owes."""

import io
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from feed.models import FeedEvent
from portal.messaging.models import (
    DeadLetter,
    EventHop,
    LoggedEvent,
    ProcessedEvent,
    RelayHeartbeat,
)
from portal.messaging.retention import events_prune, events_prune_if_due
from portal.messaging.router import route_pending
from portal.testing.subscriber_app.models import ReceivedEvent
from registrar.services import department_rename, employee_register
from tests.factories import DepartmentFactory
from tests.helpers import wait_for

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]

PREFIX = "feed.retention-test"
FEED_QUEUE, AUDIT_QUEUE = PREFIX, f"{PREFIX}-audit"


def register(count: int) -> set[str]:
    department = DepartmentFactory(name=f"Dept {uuid.uuid4().hex[:6]}")
    ids = set()
    for n in range(count):
        employee_register(
            full_name=f"Person {n}",
            email=f"{uuid.uuid4().hex[:8]}@example.com",
            position="Engineer",
            department=department,
        )
        ids.add(LoggedEvent.objects.latest("id").event_id)
    return ids


def logged() -> set[str]:
    return set(LoggedEvent.objects.values_list("event_id", flat=True))


def prune(*args: str) -> str:
    out = io.StringIO()
    call_command("events_prune", *args, "--no-progress", stdout=out)
    return out.getvalue()


def test_pruning_never_removes_what_a_stopped_subscriber_has_not_applied(
    private_worker, settings
):
    settings.EVENT_JOURNEY_RETENTION_DAYS = 0
    private_worker(PREFIX, queues=[FEED_QUEUE])  # the audit subscriber is stopped
    registered = register(5)  # for the feed and the audit subscriber
    department = DepartmentFactory(name="Finance")
    department_rename(department=department, name="Money")  # for the feed only
    renamed = LoggedEvent.objects.latest("id").event_id
    while route_pending().sent:
        pass
    wait_for(lambda: FeedEvent.objects.count() == 6, what="the feed applied all")
    unrouted = register(1)  # logged, never routed: owed to everyone
    assert logged() == registered | unrouted | {renamed}

    assert "Would remove: 1 log row(s) removed (6 older kept" in prune(
        "--older-than", "0s", "--dry-run"
    )
    assert logged() == registered | unrouted | {renamed}
    # Younger than the window: nothing goes.
    assert prune("--older-than", "1d").startswith("Removed: 0 log row(s)")
    assert "Removed: 1 log row(s) removed (6 older kept: still owed)" in prune(
        "--older-than", "0s"
    )
    # The rename is gone (the feed applied it); every registration stays:
    # routed and confirmed ("sent"), but the audit subscriber has not applied
    # them; the last one is not even routed.
    assert logged() == registered | unrouted
    assert (
        LoggedEvent.objects.filter(event_id__in=registered, status="sent").count() == 5
    )

    # The audit subscriber comes back and applies them: now they may go.
    private_worker(PREFIX, queues=[AUDIT_QUEUE])
    wait_for(lambda: ReceivedEvent.objects.count() == 5, what="audit caught up")
    wait_for(
        lambda: EventHop.objects.filter(subscriber="audit").events() == 5,
        what="audit's hops recorded",
    )
    result = events_prune(older_than=timedelta(0))
    assert result.events == 5
    assert logged() == unrouted
    # Their inbox keys and (journey window 0) their journey hops went too;
    # the unrouted event's row stays.
    assert result.inbox == 5
    assert not ProcessedEvent.objects.exists()
    assert not EventHop.objects.exists()


def test_a_dead_letter_counts_as_finished_and_old_dead_letters_go(settings):
    settings.DEAD_LETTER_RETENTION_DAYS = 1
    register(1)
    event = LoggedEvent.objects.get()
    LoggedEvent.objects.filter(pk=event.pk).update(
        status="sent",
        undelivered=[],
        routes={"feed": {"at": "x"}, "audit": {"at": "x"}, "broadcast": {}},
    )
    EventHop.objects.create(
        log_id=event.pk,
        subscriber="feed",
        outcome="applied",
        delivered_at=timezone.now(),
        finished_at=timezone.now(),
    )
    assert events_prune(older_than=timedelta(0)).events == 0  # audit owes it
    letter = DeadLetter.objects.create(
        reason="retries exhausted",
        subscriber="audit",
        source=event.source,
        event_id=event.event_id,
        body="{}",
    )
    assert events_prune(older_than=timedelta(0)).events == 1
    assert DeadLetter.objects.filter(pk=letter.pk).exists()  # within its window
    DeadLetter.objects.filter(pk=letter.pk).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    assert events_prune().dead_letters == 1


def test_the_relay_prunes_at_its_interval_and_forgets_silent_relays(settings):
    settings.EVENT_PRUNE_INTERVAL_SECONDS = 3600
    now = timezone.now()
    RelayHeartbeat.objects.create(
        relay="gone:1", started_at=now, last_pass_at=now - timedelta(days=2)
    )
    RelayHeartbeat.objects.create(relay="here:2", started_at=now, last_pass_at=now)
    state: dict[str, float] = {}
    result = events_prune_if_due(state, clock=1000.0)
    assert result is not None
    assert result.heartbeats == 1
    assert events_prune_if_due(state, clock=2000.0) is None  # not due yet
    assert events_prune_if_due(state, clock=4601.0) is not None
    settings.EVENT_PRUNE_INTERVAL_SECONDS = 0
    assert events_prune_if_due({}, clock=10_000.0) is None
    assert list(RelayHeartbeat.objects.values_list("relay", flat=True)) == ["here:2"]
