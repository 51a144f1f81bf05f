"""One event the database refuses never takes its batch down.

The contract refuses what it knows the database cannot store; these tests
simulate what it did not foresee with a trigger that refuses one event, and
check that the rest of its batch is applied, exactly once, and only that
event is dead-lettered, by name.
"""

from collections.abc import Iterator

import orjson
import pytest
from django.db import connection, transaction

from feed.models import FeedEvent
from feed.services import feed_events_apply
from portal.messaging import amqp_publish, router
from portal.messaging.amqp_publish import publisher_reset
from portal.messaging.eventlog import event_log_emit
from portal.messaging.models import DeadLetter, LoggedEvent
from portal.messaging.router import route_pending
from tests.helpers import make_envelope, queue_depth, wait_for

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]

REFUSED_NAME = "Refused By-Trigger"


@pytest.fixture
def refusing_trigger() -> Iterator[None]:
    """The feed table refuses any row about ``REFUSED_NAME``, as PostgreSQL
    would refuse a value the contract let through."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION test_refuse_feed_row() RETURNS trigger AS $$
            BEGIN
                IF NEW.data->>'full_name' = %s THEN
                    RAISE EXCEPTION 'row refused by the test trigger'
                        USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql
            """,
            [REFUSED_NAME],
        )
        cursor.execute(
            "CREATE TRIGGER test_refuse_feed_row BEFORE INSERT ON feed_feedevent"
            " FOR EACH ROW EXECUTE FUNCTION test_refuse_feed_row()"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_refuse_feed_row ON feed_feedevent")
            cursor.execute("DROP FUNCTION test_refuse_feed_row()")


def _registration(index: int, name: str | None = None) -> dict:
    return {
        "employee_id": index + 1,
        "full_name": name or f"Person {index}",
        "position": "Engineer",
        "department": "Platform",
        "team": None,
    }


def test_the_service_applies_the_rest_of_a_batch_and_dead_letters_the_culprit(
    refusing_trigger,
):
    envelopes = [make_envelope(data=_registration(i)) for i in range(100)]
    poison = make_envelope(data=_registration(100, REFUSED_NAME))
    envelopes.insert(37, poison)

    result = feed_events_apply(envelopes=envelopes)

    assert (result.created, result.dead_lettered) == (100, 1)
    assert FeedEvent.objects.count() == 100
    assert not FeedEvent.objects.filter(event_id=poison["id"]).exists()
    dead = DeadLetter.objects.get()
    assert (dead.event_id, dead.source, dead.event_type) == (
        poison["id"],
        poison["source"],
        "employee.registered",
    )
    assert dead.reason == "refused by database"
    assert "row refused by the test trigger" in dead.error

    again = feed_events_apply(envelopes=envelopes)
    assert (again.created, again.duplicates) == (0, 100)
    assert FeedEvent.objects.count() == 100


def test_a_relay_batch_with_one_event_the_database_refuses(
    refusing_trigger, private_worker, broker, monkeypatch
):
    """100 registrations and 1 poison event in one relay task message: the
    100 reach the feed once, the one is dead-lettered naming the event."""
    worker = private_worker("feed.poison-test")
    with transaction.atomic():
        rows = [
            event_log_emit(
                type="employee.registered",
                source="/portal/registrar",
                data=_registration(i, REFUSED_NAME if i == 50 else None),
            )
            for i in range(101)
        ]
    poison_id = rows[50].event_id

    sent: list[int] = []
    real_publish = amqp_publish.publish_confirmed

    def counting_publish(messages):
        sent.extend(
            len(orjson.loads(m.body)[0][0]) for m in messages if "task" in m.headers
        )
        return real_publish(messages)

    publisher_reset()
    monkeypatch.setattr(router, "publish_confirmed", counting_publish)
    result = route_pending()
    # One task message to the feed, one to the audit subscriber.
    assert (result.sent, sent) == (101, [101, 101])
    assert LoggedEvent.objects.filter(status="sent").count() == 101

    def settled():
        """100 events on the feed and one dead letter"""
        return FeedEvent.objects.count() == 100 and DeadLetter.objects.count() == 1

    wait_for(settled, timeout=30)
    wait_for(lambda: queue_depth(broker, "feed.poison-test") == 0, what="acked")
    wait_for(lambda: queue_depth(broker, "feed.poison-test.dead") == 0, what="no DLQ")

    dead = DeadLetter.objects.get()
    assert (dead.event_id, dead.reason) == (poison_id, "refused by database")
    assert dead.queue == "feed.poison-test"
    assert "row refused by the test trigger" in dead.error
    expected = {row.event_id for row in rows} - {poison_id}
    assert set(FeedEvent.objects.values_list("event_id", flat=True)) == expected
    assert worker.alive()
