"""The worker's batching consumers: ack after commit, pause on a database
outage, and isolate a message that cannot be stored instead of looping."""

import itertools
import json
from types import SimpleNamespace

import pytest
from django.db import DataError, OperationalError

from portal.messaging import ingest
from portal.messaging.models import DeadLetter, LoggedEvent
from tests.helpers import make_envelope

pytestmark = pytest.mark.django_db(transaction=True)


class FakeChannel:
    """Records acks as RabbitMQ reads them: ``multiple`` acks every
    delivery up to its tag."""

    def __init__(self):
        self.acks: list[tuple[int, bool]] = []
        self.tags = itertools.count(1)

    def acked(self, tag: int) -> bool:
        return any(t == tag or (multiple and t > tag) for t, multiple in self.acks)


CHANNEL = FakeChannel()


class FakeMessage:
    def __init__(self, body: bytes, content_type="application/cloudevents+json"):
        self.channel = CHANNEL
        self.delivery_tag = next(CHANNEL.tags)
        self.body = body
        self.content_type = content_type
        self.content_encoding = "utf-8"
        self.headers = {}
        self.properties = {"content_type": content_type}
        self.delivery_info = {
            "exchange": "portal.events",
            "routing_key": "employee.registered",
        }

    def ack(self, multiple=False):
        self.channel.acks.append((self.delivery_tag, multiple))

    @property
    def acked(self) -> bool:
        return self.channel.acked(self.delivery_tag)


def event_message(**overrides) -> FakeMessage:
    return FakeMessage(json.dumps(make_envelope(**overrides)).encode())


@pytest.fixture
def step():
    return ingest.IngestConsumerStep(SimpleNamespace())


def test_a_batch_is_logged_and_acked_only_after_it_is_stored(step):
    messages = [event_message() for _ in range(3)] + [FakeMessage(b"{nope")]
    step.pending = list(messages)
    acks_before = len(CHANNEL.acks)
    step.flush()
    assert all(m.acked for m in messages)
    # One basic.ack for the whole batch: its last tag, with multiple.
    assert CHANNEL.acks[acks_before:] == [(messages[-1].delivery_tag, True)]
    assert LoggedEvent.objects.filter(origin="amqp").count() == 3
    assert DeadLetter.objects.get().reason == "not JSON"


def test_a_database_outage_keeps_the_batch_unacked_and_pauses(step, monkeypatch):
    def down(events, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(ingest, "event_log_accept_many", down)
    messages = [event_message() for _ in range(2)]
    step.pending = list(messages)
    step.flush()
    assert not any(m.acked for m in messages)
    assert step.pending == messages
    assert step.failures == 1
    step.flush()  # still pausing: nothing tried
    assert step.failures == 1


def test_an_event_the_database_refuses_is_dead_lettered_the_rest_logged(
    step, monkeypatch
):
    real = ingest.event_log_accept_many
    poison = make_envelope()

    def refuses_one(events, **kwargs):
        if any(e.envelope.id == poison["id"] for e in events):
            raise DataError("value too long")
        return real(events, **kwargs)

    monkeypatch.setattr(ingest, "event_log_accept_many", refuses_one)
    good = [event_message() for _ in range(2)]
    bad = FakeMessage(json.dumps(poison).encode())
    step.pending = [good[0], bad, good[1]]
    step.flush()
    assert all(m.acked for m in [*good, bad])
    assert LoggedEvent.objects.count() == 2
    record = DeadLetter.objects.get()
    assert (record.reason, record.event_id) == ("refused by database", poison["id"])
    assert "value too long" in record.error
    assert record.exchange == "portal.events"


def test_a_message_that_breaks_the_handler_is_quarantined_whole(step, monkeypatch):
    real = ingest.ingest_decode
    poison = event_message()

    def breaks_on_one(message):
        if message is poison:
            raise RuntimeError("a bug")
        return real(message)

    monkeypatch.setattr(ingest, "ingest_decode", breaks_on_one)
    good = [event_message() for _ in range(2)]
    step.pending = [good[0], poison, good[1]]
    step.flush()
    assert all(m.acked for m in [*good, poison])
    assert LoggedEvent.objects.count() == 2
    record = DeadLetter.objects.get()
    assert (record.reason, record.kind) == ("invalid message", "message")
    assert "a bug" in record.error
    assert record.raw_body == poison.body


def test_delayed_delivery_is_set_up_first_on_the_node_the_worker_is_connected_to():
    """After its node died, a worker sets up native delayed delivery on the
    node it moved to, not on the dead first node of its list."""
    from kombu import Connection

    from portal.messaging.task_consumer import connected_first

    urls = [f"amqp://guest:guest@127.0.0.1:{port}//" for port in (5681, 5682, 5683)]
    connection = Connection(";".join(urls))
    connection.switch(urls[1])
    assert connected_first(urls, connection) == [urls[1], urls[0], urls[2]]
    assert connected_first(urls, None) == urls
