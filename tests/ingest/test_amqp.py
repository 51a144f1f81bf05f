"""Events from any service over AMQP (exchange ``portal.events``) reach the feed.

The examples in ``examples/`` run as subprocesses against the real broker; the
session's real worker consumes ``feed.ingest`` with its ingest bootstep.
"""

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest
from kombu import Producer

from feed.models import FeedEvent
from portal.messaging import topology
from portal.messaging.dead_letter_tools import dead_letters_requeue
from portal.messaging.models import DeadLetter
from tests.helpers import make_envelope, queue_depth, wait_for

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def broker_url(port: int | None = None) -> str:
    """The broker as a plain AMQP URI, the form pika and aio-pika read.

    Kombu writes the default vhost "/" as a bare "//" path; the AMQP URI spec
    (and so pika) wants it percent-encoded: ``amqp://host:5672/%2F``.
    """
    from django.conf import settings

    url = urlsplit(settings.CELERY_BROKER_URL)
    path = url.path[1:]
    vhost = "/" if path in {"", "/"} else unquote(path)
    url = url._replace(path="/" + quote(vhost, safe=""))
    if port is not None:
        netloc = url.netloc.rsplit(":", 1)[0] + f":{port}"
        url = url._replace(netloc=netloc)
    return urlunsplit(url)


def run_example(name: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        **kwargs,
    )


def wait_for_events(ids: list[str]) -> None:
    def all_in_feed():
        """every published event is on the feed"""
        return FeedEvent.objects.filter(event_id__in=ids).count() == len(ids)

    wait_for(all_in_feed)


@pytest.mark.parametrize("example", ["publish_pika.py", "publish_aio_pika.py"])
def test_the_example_publishers_events_reach_the_feed(ingest, example):
    source = f"/tests/{example}/{uuid.uuid4()}"
    result = run_example(
        example, "--url", broker_url(), "--count", "25", "--source", source
    )
    ids = result.stdout.split()
    assert len(ids) == 25
    wait_for_events(ids)
    assert FeedEvent.objects.filter(source=source).count() == 25
    assert not DeadLetter.objects.exists()


@pytest.mark.parametrize("example", ["publish_pika.py", "publish_aio_pika.py"])
def test_the_example_publishers_wait_out_an_unreachable_broker(
    ingest, broker_proxy, example
):
    broker_proxy.cut()
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "examples" / example),
            "--url",
            broker_url(broker_proxy.port),
            "--count",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2)  # several refused attempts
        assert process.poll() is None, process.communicate()
        broker_proxy.restore()
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "retry 2 in" in stderr  # it backed off, more than once
    ids = stdout.split()
    assert len(ids) == 3
    wait_for_events(ids)


def publish(broker, body, *, routing_key: str, content_type: str) -> None:
    Producer(broker.channel()).publish(
        body,
        exchange=topology.events_exchange(),
        routing_key=routing_key,
        content_type=content_type,
        content_encoding="utf-8",
        delivery_mode=2,
    )


def test_malformed_messages_from_other_services_are_dead_lettered_not_retried(
    ingest, feed_worker
):
    broker = ingest
    valid = [make_envelope(source="/hr-import") for _ in range(3)]
    for envelope in [*valid, valid[0]]:  # the first one twice
        publish(
            broker,
            json.dumps(envelope),
            routing_key=envelope["type"],
            content_type="application/cloudevents+json",
        )
    bad_data = make_envelope(data={"employee_id": "42"})
    unknown = make_envelope(type="employee.teleported")
    missing_id = make_envelope()
    del missing_id["id"]
    for envelope in (bad_data, unknown, missing_id):
        publish(
            broker,
            json.dumps(envelope),
            routing_key=envelope["type"],
            content_type="application/cloudevents+json",
        )
    publish(broker, "{oops", routing_key="x", content_type="application/json")
    publish(broker, "<a/>", routing_key="x", content_type="text/xml")
    huge = json.dumps(make_envelope(data={"pad": "y" * 300_000}))
    publish(broker, huge, routing_key="x", content_type="application/json")

    wait_for_events([e["id"] for e in valid])
    wait_for(lambda: DeadLetter.objects.count() == 6)
    assert sorted(DeadLetter.objects.values_list("reason", flat=True)) == sorted(
        [
            "invalid data",
            "unknown type/version",
            "invalid envelope",
            "not JSON",
            "wrong content type",
            "oversized",
        ]
    )
    assert set(DeadLetter.objects.values_list("exchange", "queue")) == {
        (topology.EVENTS_EXCHANGE, topology.ingest_queue_name())
    }
    wait_for(lambda: queue_depth(broker, topology.ingest_queue_name()) == 0)
    assert FeedEvent.objects.count() == 3  # the duplicate applied once
    assert feed_worker.alive()

    # Requeued unfixed, it goes back to portal.events and fails again.
    record = DeadLetter.objects.get(reason="invalid data")
    assert record.routing_key == "employee.registered"
    assert dead_letters_requeue([record]) == (1, [])
    wait_for(lambda: DeadLetter.objects.filter(event_id=bad_data["id"]).count() == 2)
