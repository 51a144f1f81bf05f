"""Applying events to the feed: idempotent, validating, ordered by time."""

import pytest

from feed.models import FeedEvent
from feed.selectors import feed_events_list
from feed.services import feed_events_apply
from portal.messaging.models import DeadLetter
from tests.helpers import make_envelope

pytestmark = pytest.mark.django_db


def test_the_same_envelope_three_times_makes_one_feed_event():
    envelope = make_envelope()
    results = [feed_events_apply(envelopes=[envelope]) for _ in range(3)]
    assert FeedEvent.objects.count() == 1
    assert [r.created for r in results] == [1, 0, 0]
    assert [r.duplicates for r in results] == [0, 1, 1]


def test_duplicates_inside_one_batch_are_applied_once():
    envelope = make_envelope()
    result = feed_events_apply(envelopes=[envelope, envelope, make_envelope()])
    assert (result.created, result.duplicates) == (2, 1)
    assert FeedEvent.objects.count() == 2


def test_same_id_from_another_source_is_another_event():
    first = make_envelope()
    second = make_envelope(id=first["id"], source="/hr-import")
    feed_events_apply(envelopes=[first, second])
    assert FeedEvent.objects.count() == 2


def test_feed_event_keeps_the_envelope_and_a_sentence():
    envelope = make_envelope()
    feed_events_apply(envelopes=[envelope])
    event = FeedEvent.objects.get()
    assert (event.source, event.event_id, event.type) == (
        "/tests",
        envelope["id"],
        "employee.registered",
    )
    assert (
        event.text == "Anna Petrova joined the company as Backend Engineer in Platform"
    )
    assert event.department == "Platform"
    assert event.data == envelope["data"]


def test_a_bad_event_is_dead_lettered_without_failing_its_batch():
    good = make_envelope()
    bad = make_envelope(type="employee.fired")
    missing_id = make_envelope()
    del missing_id["id"]
    result = feed_events_apply(envelopes=[bad, good, missing_id, "garbage"])
    assert (result.created, result.dead_lettered) == (1, 3)
    assert list(FeedEvent.objects.values_list("event_id", flat=True)) == [good["id"]]
    reasons = sorted(DeadLetter.objects.values_list("reason", flat=True))
    assert reasons == ["invalid envelope", "invalid envelope", "unknown type/version"]
    unknown = DeadLetter.objects.get(reason="unknown type/version")
    assert unknown.event_id == bad["id"]
    assert "employee.fired" in unknown.body


def test_feed_is_ordered_by_when_events_happened_not_arrival():
    late = make_envelope(time="2026-03-01T09:00:00+00:00")
    early = make_envelope(time="2026-01-01T09:00:00+00:00")
    middle = make_envelope(time="2026-02-01T09:00:00+01:00")
    feed_events_apply(envelopes=[early])
    feed_events_apply(envelopes=[late])
    feed_events_apply(envelopes=[middle])
    ids = [e.event_id for e in feed_events_list()]
    assert ids == [late["id"], middle["id"], early["id"]]
