"""The worker's batching consumers: ack after commit, pause on a database
outage, and isolate a message that cannot be stored instead of looping."""

import json
from types import SimpleNamespace

import pytest
from django.db import DataError, OperationalError

from feed.models import FeedEvent
from portal.messaging import consumer
from portal.messaging.models import DeadLetter
from tests.helpers import make_envelope

pytestmark = pytest.mark.django_db(transaction=True)


class FakeMessage:
    def __init__(self, body: bytes, content_type="application/cloudevents+json"):
        self.body = body
        self.content_type = content_type
        self.content_encoding = "utf-8"
        self.headers = {}
        self.properties = {"content_type": content_type}
        self.delivery_info = {
            "exchange": "portal.events",
            "routing_key": "employee.registered",
        }
        self.acked = False

    def ack(self):
        self.acked = True


def event_message(**overrides) -> FakeMessage:
    return FakeMessage(json.dumps(make_envelope(**overrides)).encode())


@pytest.fixture
def step():
    step = consumer.IngestConsumerStep(SimpleNamespace())
    return step


def test_a_batch_is_acked_only_after_it_is_stored(step):
    messages = [event_message() for _ in range(3)] + [FakeMessage(b"{nope")]
    step.pending = list(messages)
    step.flush()
    assert all(m.acked for m in messages)
    assert FeedEvent.objects.count() == 3
    assert DeadLetter.objects.get().reason == "not JSON"


def test_a_database_outage_keeps_the_batch_unacked_and_pauses(step, monkeypatch):
    def down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("feed.services.feed_events_apply", down)
    messages = [event_message() for _ in range(2)]
    step.pending = list(messages)
    step.flush()
    assert not any(m.acked for m in messages)
    assert step.pending == messages
    assert step.failures == 1
    step.flush()  # still pausing: nothing tried
    assert step.failures == 1


def test_a_message_the_database_refuses_is_quarantined_the_rest_applied(
    step, monkeypatch
):
    from feed import services

    real = services.feed_events_apply
    poison = make_envelope()

    def refuses_one(*, envelopes, **kwargs):
        if any(e.get("id") == poison["id"] for e in envelopes):
            raise DataError("value too long")
        return real(envelopes=envelopes, **kwargs)

    monkeypatch.setattr(services, "feed_events_apply", refuses_one)
    good = [event_message() for _ in range(2)]
    bad = FakeMessage(json.dumps(poison).encode())
    step.pending = [good[0], bad, good[1]]
    step.flush()
    assert all(m.acked for m in [*good, bad])
    assert FeedEvent.objects.count() == 2
    record = DeadLetter.objects.get()
    assert record.reason == "invalid message"
    assert "value too long" in record.error
    assert json.loads(record.body)["id"] == poison["id"]
