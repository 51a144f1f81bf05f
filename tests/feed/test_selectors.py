"""Feed reads: finding one event by its CloudEvent id."""

import pytest

from feed.selectors import AmbiguousEventId, FeedEventNotFound, feed_event_get
from tests.web.factories import FeedEventFactory

pytestmark = pytest.mark.django_db


def test_feed_event_get_finds_an_event_by_its_cloudevent_id():
    event = FeedEventFactory(source="/hr-import", event_id="batch/7/item/3")
    FeedEventFactory(source="/hr-import", event_id="batch/7/item/4")
    assert feed_event_get(event_id="batch/7/item/3") == event
    assert feed_event_get(event_id="batch/7/item/3", source="/hr-import") == event


def test_feed_event_get_needs_the_source_when_two_sources_used_the_id():
    FeedEventFactory(source="/a", event_id="same")
    second = FeedEventFactory(source="/b", event_id="same")
    with pytest.raises(AmbiguousEventId):
        feed_event_get(event_id="same")
    assert feed_event_get(event_id="same", source="/b") == second


@pytest.mark.parametrize(
    ("event_id", "source"),
    [
        ("unknown", None),
        ("known", "/elsewhere"),
        ("KNOWN", None),  # ids are compared exactly
        ("known\x00", None),
        ("x" * 201, None),
        ("known", "/tests\x00"),
        ("known", "/" * 201),
    ],
)
def test_feed_event_get_refuses_what_no_event_has(
    event_id, source, django_assert_max_num_queries
):
    """Ids and sources the database could not even store (NUL, too long)
    are not found without asking it."""
    FeedEventFactory(source="/tests", event_id="known")
    unstorable = (
        "\x00" in event_id + (source or "")
        or max(len(event_id), len(source or "")) > 200
    )
    with (
        django_assert_max_num_queries(0 if unstorable else 1),
        pytest.raises(FeedEventNotFound),
    ):
        feed_event_get(event_id=event_id, source=source)


def test_an_empty_source_means_any_source():
    event = FeedEventFactory(source="/tests", event_id="known")
    assert feed_event_get(event_id="known", source="") == event
