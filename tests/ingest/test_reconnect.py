"""The worker's consumers survive losing RabbitMQ and pick up where they were."""

import json
import re
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from kombu import Connection, Producer

from feed.models import FeedEvent
from portal.messaging import topology
from portal.messaging.relay import Relay
from tests.helpers import make_envelope, wait_for

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]


def ingested(worker) -> int:
    """Events this worker's ingest consumer took (new or duplicate)."""
    return sum(int(n) for n in re.findall(r"Ingested (\d+) message", worker.log()))


def test_ingestion_resumes_after_the_worker_loses_its_broker(
    private_worker, broker_proxy
):
    url = urlsplit(settings.CELERY_BROKER_URL)
    host = url.netloc.rsplit(":", 1)[0]
    via_proxy = urlunsplit(url._replace(netloc=f"{host}:{broker_proxy.port}"))
    worker = private_worker("feed.reconnect-test", CELERY_BROKER_URL=via_proxy)
    first, second = make_envelope(), make_envelope()

    with Connection(settings.CELERY_BROKER_URL) as conn:
        producer = Producer(conn.channel())

        def publish(envelope):
            producer.publish(
                json.dumps(envelope),
                exchange=topology.events_exchange(),
                routing_key=envelope["type"],
                content_type="application/cloudevents+json",
                delivery_mode=2,
            )

        publish(first)
        wait_for(lambda: ingested(worker) == 1)
        broker_proxy.cut()  # the worker's connection drops
        publish(second)  # straight to RabbitMQ: it waits in the queue
        broker_proxy.restore()

        def consumed_again():
            """this worker's ingest consumer took the second event too"""
            return ingested(worker) == 2

        wait_for(consumed_again, timeout=60)
    assert "Connection to broker lost" in worker.log()
    assert worker.alive()
    # Logged; routed by the worker's fast path, or, where that met the cut,
    # by the relay's poll.
    Relay(grace=0).drain()
    both = {first["id"], second["id"]}
    wait_for(lambda: FeedEvent.objects.filter(event_id__in=both).count() == 2)
    assert FeedEvent.objects.count() == 2
