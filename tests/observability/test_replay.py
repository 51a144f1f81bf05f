"""Replaying the log to one subscriber, and repairing the feed from it."""

import io
import uuid
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import transaction

from feed.models import FeedEvent
from portal.messaging.eventlog import event_log_emit
from portal.messaging.models import EventHop, LoggedEvent
from portal.messaging.router import route_pending
from portal.testing.subscriber_app.models import ReceivedEvent
from tests.helpers import wait_for

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]

PREFIX = "feed.replay-test"
FEED_QUEUE, AUDIT_QUEUE = PREFIX, f"{PREFIX}-audit"
COUNT = 1000


def log_registrations(count: int) -> None:
    with transaction.atomic():
        for n in range(count):
            event_log_emit(
                type="employee.registered",
                source="/portal/registrar",
                data={
                    "employee_id": 10_000 + n,
                    "full_name": f"Person {n}",
                    "position": "Engineer",
                    "department": "Platform",
                    "team": None,
                },
                time=datetime.now(UTC),
                event_id=str(uuid.uuid4()),
            )


def route_everything() -> None:
    while route_pending().sent:
        pass


def hops(outcome: str, subscriber: str = "feed") -> int:
    return EventHop.objects.filter(subscriber=subscriber, outcome=outcome).events()


def replay(*args: str) -> str:
    out = io.StringIO()
    call_command("events_replay", *args, "--no-progress", stdout=out)
    return out.getvalue()


def test_replaying_a_thousand_events_to_the_feed_adds_nothing_and_repair_fixes_a_card(
    private_worker,
):
    private_worker(PREFIX, queues=[FEED_QUEUE, AUDIT_QUEUE], concurrency=2)
    log_registrations(COUNT)
    route_everything()
    wait_for(lambda: hops("applied") == COUNT, timeout=60, what="feed applied all")
    wait_for(lambda: ReceivedEvent.objects.count() == COUNT, what="audit applied all")
    texts = dict(FeedEvent.objects.values_list("event_id", "text"))
    victim = FeedEvent.objects.order_by("?").first()
    FeedEvent.objects.filter(pk=victim.pk).update(text="garbled by a renderer bug")

    assert "Would replay 1000 event(s) to feed." in replay(
        "--subscriber", "feed", "--dry-run"
    )
    output = replay("--subscriber", "feed")
    assert "Replayed 1000 of 1000 event(s) to feed" in output
    wait_for(lambda: hops("duplicate") == COUNT, timeout=60, what="replay handled")
    # Nothing new: the same cards, the corrupted one still corrupted, and the
    # other subscriber never heard of it.
    assert FeedEvent.objects.count() == COUNT
    assert hops("applied") == COUNT
    assert FeedEvent.objects.get(pk=victim.pk).text == "garbled by a renderer bug"
    assert EventHop.objects.filter(subscriber="audit").events() == COUNT
    assert ReceivedEvent.objects.count() == COUNT
    assert not LoggedEvent.objects.filter(status="pending").exists()

    # --repair: the feed renders every card again; only the broken one changes.
    output = replay("--subscriber", "feed", "--repair", "--type", "employee.registered")
    assert "Replayed 1000 of 1000 event(s) to feed" in output
    wait_for(
        lambda: FeedEvent.objects.get(pk=victim.pk).text == texts[victim.event_id],
        timeout=60,
        what="the card repaired",
    )
    assert dict(FeedEvent.objects.values_list("event_id", "text")) == texts
    assert FeedEvent.objects.count() == COUNT


def test_feed_rebuild_renders_cards_again_from_the_log(private_worker):
    private_worker(PREFIX, queues=[FEED_QUEUE])
    log_registrations(20)
    route_everything()
    wait_for(lambda: FeedEvent.objects.count() == 20, what="feed applied all")
    texts = dict(FeedEvent.objects.values_list("event_id", "text"))
    broken = list(FeedEvent.objects.order_by("id")[:3])
    FeedEvent.objects.filter(pk__in=[c.pk for c in broken]).update(
        text="?", data={"garbled": True}
    )
    FeedEvent.objects.filter(pk=broken[0].pk).delete()  # and one lost

    out = io.StringIO()
    call_command("feed_rebuild", "--since", "1h", "--no-progress", stdout=out)
    assert "Rebuilt the feed from 20 logged event(s): 3 card(s) added or changed" in (
        out.getvalue()
    )
    assert dict(FeedEvent.objects.values_list("event_id", "text")) == texts
    assert not FeedEvent.objects.filter(data__garbled=True).exists()


def test_replay_filters_by_type_source_and_time():
    log_registrations(3)
    with transaction.atomic():
        event_log_emit(
            type="department.renamed",
            source="/portal/registrar",
            data={"department_id": 1, "old_name": "A", "new_name": "B"},
        )
    assert "Would replay 3 event(s) to audit." in replay(
        "--subscriber", "audit", "--dry-run"
    )
    assert "Would replay 4 event(s) to feed." in replay(
        "--subscriber", "feed", "--dry-run"
    )
    assert "Would replay 1 event(s) to feed." in replay(
        "--subscriber", "feed", "--dry-run", "--type", "department.renamed"
    )
    assert "Would replay 0 event(s) to feed." in replay(
        "--subscriber", "feed", "--dry-run", "--source", "/hr-import"
    )
    assert "Would replay 0 event(s) to feed." in replay(
        "--subscriber", "feed", "--dry-run", "--until", "2001-01-01T00:00:00"
    )
    assert "Would replay 4 event(s) to feed." in replay(
        "--subscriber", "feed", "--dry-run", "--since", "10m"
    )
