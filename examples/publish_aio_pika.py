#!/usr/bin/env python3
"""Publish CloudEvents to the portal's feed over AMQP, with aio-pika (asyncio).

The same contract as ``publish_pika.py``: one CloudEvent (JSON) per message to
the durable topic exchange ``portal.events``, routing key = event type,
persistent, ``message_id`` = event id, ``app_id`` = source, published with
publisher confirms and ``mandatory`` (an unroutable message is an error, not a
silent drop). Lost connections are reopened with growing, jittered pauses in
a loop (no recursion); a retried event keeps its id, so the feed applies it
once.

    pip install aio-pika
    python examples/publish_aio_pika.py --url amqp://localhost:5672/ --count 3

Each published event id is printed on its own line once RabbitMQ confirmed it.
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import sys
import uuid
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aio_pika.exceptions import AMQPError, DeliveryError

EXCHANGE = "portal.events"
CONTENT_TYPE = "application/cloudevents+json"

logger = logging.getLogger("publish_aio_pika")


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
            "employee_id": 200_000 + number,
            "full_name": f"Async Person {number}",
            "position": "Analyst",
            "department": "Imported",
            "team": None,
        },
    }


class Publisher:
    """One connection and confirm-mode channel, reopened when lost."""

    def __init__(self, url: str, *, max_backoff: float = 30.0) -> None:
        self.url = url
        self.max_backoff = max_backoff
        self.connection: AbstractConnection | None = None
        self.channel: AbstractChannel | None = None
        self.exchange: AbstractExchange | None = None

    async def _open(self) -> None:
        await self.close()
        self.connection = await aio_pika.connect(self.url, timeout=10)
        # publisher_confirms: each publish awaits RabbitMQ's ack;
        # on_return_raises: a returned (unroutable) mandatory message raises.
        self.channel = await self.connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        self.exchange = await self.channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def close(self) -> None:
        if self.connection is not None and not self.connection.is_closed:
            with contextlib.suppress(AMQPError, OSError):
                await self.connection.close()
        self.connection = self.channel = self.exchange = None

    async def publish(self, event: dict, *, max_attempts: int | None = None) -> None:
        """Publish until RabbitMQ confirms it; retry with backoff in a loop."""
        message = aio_pika.Message(
            body=json.dumps(event).encode("utf-8"),
            content_type=CONTENT_TYPE,
            content_encoding="utf-8",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event["id"],
            app_id=event["source"],
            type=event["type"],
            timestamp=datetime.now(UTC),
        )
        attempt = 0
        while True:
            attempt += 1
            try:
                if self.exchange is None or self.channel.is_closed:
                    await self._open()
                await self.exchange.publish(
                    message, routing_key=event["type"], mandatory=True, timeout=30
                )
                return  # confirmed
            except (TimeoutError, AMQPError, DeliveryError, OSError) as exc:
                await self.close()
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
                await asyncio.sleep(delay)


async def run(args: argparse.Namespace) -> None:
    publisher = Publisher(args.url)
    try:
        for number in range(args.count):
            event = make_event(args.source, number)
            await publisher.publish(event, max_attempts=args.max_attempts)
            print(event["id"], flush=True)
    finally:
        await publisher.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/"),
        help="RabbitMQ URL (default: $AMQP_URL or the local broker)",
    )
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--source", default="/examples/aio-pika")
    parser.add_argument(
        "--max-attempts", type=int, default=None, help="per event; default: forever"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    # The client library's own connection chatter; our warnings say enough.
    logging.getLogger("pika" if "pika" in sys.modules else "aiormq").setLevel(
        logging.CRITICAL
    )
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
