#!/usr/bin/env python3
"""Publish CloudEvents to the portal's feed over AMQP, with pika (blocking).

Any service can do what this does: publish one CloudEvent (JSON, structured
mode) per message to the durable topic exchange ``portal.events`` with the
event type as routing key. The portal's workers validate each event and add
it to the feed once, whatever the number of deliveries.

    pip install pika
    python examples/publish_pika.py --url amqp://localhost:5672/ --count 3

Each published event id is printed on its own line once RabbitMQ confirmed it.

What makes it reliable:

* publisher confirms (``confirm_delivery``): a publish returns only once the
  broker took responsibility for the message, or raises;
* ``mandatory=True``: a message no queue would receive is returned to us as an
  error (``UnroutableError``) instead of silently dropped;
* persistent messages (``delivery_mode=2``) on a durable exchange and queue;
* ``message_id`` = the event id and ``app_id`` = its source, so the consumer
  (and RabbitMQ tooling) can tell duplicates apart;
* connection loss, a nack or an unroutable message are retried with growing,
  jittered pauses in a loop (never recursion), publishing the *same* event
  again: the feed applies each (source, id) at most once, so a retry after a
  lost confirm cannot make a duplicate.
"""

import argparse
import contextlib
import json
import logging
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime

import pika
from pika.exceptions import AMQPError

EXCHANGE = "portal.events"
CONTENT_TYPE = "application/cloudevents+json"

logger = logging.getLogger("publish_pika")


def make_event(source: str, number: int) -> dict:
    """An ``employee.registered`` event (see docs/events.md for every type)."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": "employee.registered",
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "dataschemaversion": 1,
        "data": {
            "employee_id": 100_000 + number,
            "full_name": f"Imported Person {number}",
            "position": "Engineer",
            "department": "Imported",
            "team": None,
        },
    }


class Publisher:
    """One connection and confirm-mode channel, reopened when lost."""

    def __init__(self, url: str, *, max_backoff: float = 30.0) -> None:
        self.parameters = pika.URLParameters(url)
        # A blocked broker (memory or disk alarm) raises instead of hanging.
        self.parameters.blocked_connection_timeout = 30
        self.parameters.connection_attempts = 1
        self.max_backoff = max_backoff
        self.connection = None
        self.channel = None

    def _open(self) -> None:
        self.close()
        self.connection = pika.BlockingConnection(self.parameters)
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        # Idempotent; the portal declares it too.
        self.channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)

    def close(self) -> None:
        if self.connection is not None and self.connection.is_open:
            with contextlib.suppress(AMQPError):
                self.connection.close()
        self.connection = self.channel = None

    def publish(self, event: dict, *, max_attempts: int | None = None) -> None:
        """Publish until RabbitMQ confirms it; retry with backoff in a loop."""
        body = json.dumps(event).encode("utf-8")
        properties = pika.BasicProperties(
            content_type=CONTENT_TYPE,
            content_encoding="utf-8",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=event["id"],
            app_id=event["source"],
            type=event["type"],
            timestamp=int(time.time()),
        )
        attempt = 0
        while True:
            attempt += 1
            try:
                if self.channel is None or not self.channel.is_open:
                    self._open()
                self.channel.basic_publish(
                    exchange=EXCHANGE,
                    routing_key=event["type"],
                    body=body,
                    properties=properties,
                    mandatory=True,
                )
                return  # confirmed
            except (AMQPError, OSError) as exc:
                # UnroutableError (no queue bound yet), NackError, connection
                # and channel errors: start over on a fresh connection.
                self.close()
                if max_attempts is not None and attempt >= max_attempts:
                    raise
                delay = min(self.max_backoff, 0.5 * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)
                logger.warning(
                    "Publish of %s failed (%s: %s); retry %d in %.1fs",
                    event["id"],
                    type(exc).__name__,
                    exc,
                    attempt,
                    delay,
                )
                time.sleep(delay)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F"),
        help="RabbitMQ URL (default: $AMQP_URL or the local broker)",
    )
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--source", default="/examples/pika")
    parser.add_argument(
        "--max-attempts", type=int, default=None, help="per event; default: forever"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    # The client library's own connection chatter; our warnings say enough.
    logging.getLogger("pika" if "pika" in sys.modules else "aiormq").setLevel(
        logging.CRITICAL
    )

    publisher = Publisher(args.url)
    try:
        for number in range(args.count):
            event = make_event(args.source, number)
            publisher.publish(event, max_attempts=args.max_attempts)
            print(event["id"], flush=True)
    finally:
        publisher.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
