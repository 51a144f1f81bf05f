"""Every read of the feed walks an index to the rows it returns.

A feed of 5,000 old events and a few new ones: each read is run, its
queries re-run under EXPLAIN ANALYZE (sequential scans priced out, as they
would be at a million rows), and no plan may scan the feed table or throw
away more than a page's worth of rows on the way. Without a fitting index,
a filter on a rare type or the poll for arrivals walks the whole feed: ~100
ms per request at a million events, and every open feed page polls.
"""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from feed.models import FeedEvent
from feed.selectors import feed_arrived_since, feed_newest_id, feed_page
from feed.services import feed_events_apply
from tests.helpers import make_envelope

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db]


def _plans(read) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        read()
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in queries.captured_queries:
            if "feed_feedevent" in query["sql"]:
                cursor.execute("EXPLAIN ANALYZE " + query["sql"])
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
    assert plans, "the read did not query the feed"
    return plans


def _rows_thrown_away(plan: str) -> int:
    return sum(int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan))


@pytest.fixture
def some_feed():
    old = "2025-01-01T09:00:00+00:00"
    for _ in range(5):
        feed_events_apply(envelopes=[make_envelope(time=old) for _ in range(1000)])
    FeedEvent.objects.update(received_at=timezone.now() - timedelta(hours=1))
    feed_events_apply(envelopes=[make_envelope() for _ in range(30)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE feed_feedevent")


@pytest.mark.parametrize(
    "read",
    [
        lambda: feed_page(),
        lambda: feed_page(event_type="employee.registered"),
        lambda: feed_page(department_id=1),
        lambda: feed_page(before=feed_page(limit=5)[1]),
        lambda: feed_page(event_type="thanks.sent"),
        lambda: feed_arrived_since(since_id=feed_newest_id() - 5),
        lambda: feed_arrived_since(since_id=feed_newest_id(), event_type="thanks.sent"),
    ],
    ids=[
        "page",
        "by type",
        "by department",
        "older page",
        "by a rare type",
        "arrivals",
        "arrivals of a type",
    ],
)
def test_no_read_scans_the_whole_feed(some_feed, read):
    for plan in _plans(read):
        assert "Seq Scan on feed_feedevent" not in plan, plan
        assert _rows_thrown_away(plan) <= 100, plan
