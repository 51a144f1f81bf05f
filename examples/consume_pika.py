#!/usr/bin/env python3
"""Receive the portal's events over AMQP, with pika (blocking).

Any service can do what this does: bind a durable queue of its own to the
topic exchange ``portal.broadcast`` with the event-type patterns it wants,
and consume. Every event the portal logs (its own, and other services')
arrives there once per publish: one CloudEvent (JSON, structured mode) per
message, routing key = the event type, ``message_id`` = its id, ``app_id`` =
its source.

    pip install pika
    python examples/consume_pika.py --url amqp://localhost:5672/ \\
        --queue hr-mirror --bind 'employee.*' --count 10

Each event is printed as one JSON line on stdout, then acked.

What makes it reliable:

* the queue is durable and a quorum queue (it survives a broker restart and
  a lost node), and it stays bound while this program is down: events wait;
* manual acks, sent only after the event was handled (here: printed and
  flushed); a crash before the ack means the event comes again;
* delivery is at least once, so handling must be idempotent: this example
  remembers the (source, id) pairs it has handled in this run and skips a
  repeat (a real service records them with its own effect, in one
  transaction);
* a lost connection is reopened with growing, jittered pauses in a loop
  (never recursion); unacked messages go back to the queue meanwhile.
"""

import argparse
import contextlib
import json
import logging
import os
import random
import sys
import time

import pika
from pika.exceptions import AMQPError

EXCHANGE = "portal.broadcast"

logger = logging.getLogger("consume_pika")


class Subscriber:
    """One connection and channel consuming a queue bound to the broadcast."""

    def __init__(
        self,
        url: str,
        *,
        queue: str,
        patterns: list[str],
        prefetch: int = 100,
        max_backoff: float = 30.0,
    ) -> None:
        self.parameters = pika.URLParameters(url)
        self.parameters.connection_attempts = 1
        self.parameters.heartbeat = 30
        self.queue = queue
        self.patterns = patterns
        self.prefetch = prefetch
        self.max_backoff = max_backoff
        self.handled: set[tuple[str, str]] = set()
        self.connection = None

    def open_channel(self):
        self.close()
        self.connection = pika.BlockingConnection(self.parameters)
        channel = self.connection.channel()
        channel.basic_qos(prefetch_count=self.prefetch)
        channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
        channel.queue_declare(
            self.queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        for pattern in self.patterns:
            channel.queue_bind(self.queue, EXCHANGE, routing_key=pattern)
        return channel

    def close(self) -> None:
        if self.connection is not None and self.connection.is_open:
            with contextlib.suppress(AMQPError):
                self.connection.close()
        self.connection = None

    def run(self, *, count: int | None, idle_timeout: float | None) -> int:
        """Consume until ``count`` new events were handled, or nothing came
        for ``idle_timeout`` seconds (both optional: forever). Returns how
        many new events were handled."""
        handled = 0
        attempt = 0
        while count is None or handled < count:
            try:
                channel = self.open_channel()
                attempt = 0
                for method, properties, body in channel.consume(
                    self.queue, inactivity_timeout=idle_timeout
                ):
                    if method is None:  # idle for idle_timeout seconds
                        return handled
                    if self.handle(properties, body):
                        handled += 1
                    channel.basic_ack(method.delivery_tag)
                    if count is not None and handled >= count:
                        break
                channel.cancel()
                return handled
            except (AMQPError, OSError) as exc:
                attempt += 1
                self.close()
                delay = min(self.max_backoff, 0.5 * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)
                logger.warning(
                    "Connection lost (%s: %s); reconnecting in %.1fs",
                    type(exc).__name__,
                    exc,
                    delay,
                )
                time.sleep(delay)
        return handled

    def handle(self, properties, body: bytes) -> bool:
        """Handle one event; False if it was a repeat (already handled)."""
        try:
            event = json.loads(body)
            key = (event["source"], event["id"])
        except (ValueError, KeyError, TypeError):
            logger.error("Not a CloudEvent (message id %s); skipped", properties)
            return False
        if key in self.handled:
            return False
        print(json.dumps(event, sort_keys=True), flush=True)
        self.handled.add(key)
        return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F"),
        help="RabbitMQ URL (default: $AMQP_URL or the local broker)",
    )
    parser.add_argument("--queue", default="examples.consume-pika")
    parser.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="PATTERN",
        help="event-type pattern to receive (repeat; default: '#', every type)",
    )
    parser.add_argument("--count", type=int, default=None, help="stop after N")
    parser.add_argument(
        "--idle-timeout", type=float, default=None, help="stop after N idle seconds"
    )
    parser.add_argument(
        "--declare-only",
        action="store_true",
        help="declare and bind the queue, then exit (events wait in it)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    logging.getLogger("pika").setLevel(logging.CRITICAL)

    subscriber = Subscriber(args.url, queue=args.queue, patterns=args.bind or ["#"])
    try:
        if args.declare_only:
            subscriber.open_channel()
            return 0
        handled = subscriber.run(count=args.count, idle_timeout=args.idle_timeout)
        logger.info("Handled %d event(s)", handled)
    finally:
        subscriber.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
