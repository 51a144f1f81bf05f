"""Routing tracks delivery per destination: one failing destination keeps
only its own copies owed, and a second pass sends nothing twice."""

from collections import Counter

import pytest
from django.db import transaction

from feed.subscriptions import FEED
from portal.messaging import router, topology
from portal.messaging.amqp_publish import publish_confirmed, publisher_reset
from portal.messaging.eventlog import event_log_emit
from portal.messaging.models import LoggedEvent
from portal.messaging.router import route_pending
from portal.testing.subscriber_app.subscriptions import AUDIT
from tests.helpers import queue_depth
from tests.messaging.conftest import delete_private_queues, private_queue_names

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]

PREFIX = "feed.router-test"


@pytest.fixture
def private_queues(settings, broker):
    for name, value in private_queue_names(PREFIX).items():
        setattr(settings, name, value)
    delete_private_queues(PREFIX)
    publisher_reset()
    yield broker
    publisher_reset()
    delete_private_queues(PREFIX)


def registrations(count: int) -> list[int]:
    with transaction.atomic():
        return [
            event_log_emit(
                type="employee.registered",
                source="/tests/router",
                data={
                    "employee_id": n,
                    "full_name": f"P {n}",
                    "position": "E",
                    "department": "D",
                    "team": None,
                },
            ).pk
            for n in range(count)
        ]


def test_a_failing_destination_keeps_only_its_own_copies_owed(
    private_queues, monkeypatch
):
    broker = private_queues
    published: Counter = Counter()

    def counting(messages):
        published.update(m.routing_key for m in messages)
        return publish_confirmed(messages)

    monkeypatch.setattr(router, "publish_confirmed", counting)
    real_declare = topology.declare_subscription

    def all_but_audit(connection, subscription):
        if subscription.name != AUDIT.name:
            real_declare(connection, subscription)

    monkeypatch.setattr(topology, "declare_subscription", all_but_audit)
    ids = registrations(5)
    result = route_pending()
    assert (result.sent, result.failed) == (0, 5)
    assert AUDIT.name in result.error
    assert "NO_ROUTE" in result.error
    rows = LoggedEvent.objects.filter(pk__in=ids)
    assert {tuple(r.undelivered) for r in rows} == {("audit",)}
    assert queue_depth(broker, FEED.queue) == 1  # one task message, 5 events
    assert published == Counter(
        {FEED.queue: 1, AUDIT.queue: 1, "employee.registered": 5}
    )

    # The audit queue exists now: the next pass sends the audit copies only.
    monkeypatch.setattr(topology, "declare_subscription", real_declare)
    publisher_reset()
    published.clear()
    assert route_pending().sent == 5
    assert published == Counter({AUDIT.queue: 1})
    assert set(LoggedEvent.objects.values_list("status", flat=True)) == {"sent"}
    assert queue_depth(broker, FEED.queue) == 1
    assert queue_depth(broker, AUDIT.queue) == 1


def test_oldest_pending_rows_come_off_the_index_in_order_whatever_the_statistics():
    """A backlog the planner has not analyzed (a burst of commits, a relay
    catching up after an outage) must not make every pass read and sort all
    pending rows to take one batch of them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO messaging_loggedevent (event_id, source, type, envelope,"
            " origin, status, undelivered, attempts, last_error, created_at,"
            " logged_by) SELECT 'e' || n, '/tests/router', 'employee.registered',"
            " jsonb_build_object('id', 'e' || n, 'pad', repeat('x', 400)),"
            " 'portal', 'pending', '[\"feed\"]', 0, '', now(), ''"
            " FROM generate_series(1, 20000) AS n"
        )

    def explained(execute, sql, params, many, context):
        if "SKIP LOCKED" in sql:
            sql = "EXPLAIN " + sql
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(explained):
        plans = [row[0] for row in router._select_pending(None, None, 100)]
        transaction.set_rollback(True)
    plan = "\n".join(plans)
    assert "outbox_pending_idx" in plan, plan
    assert "Sort" not in plan, plan
    assert "Bitmap" not in plan, plan
