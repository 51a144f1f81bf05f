"""The broker side of a test or benchmark: connections, queues, and
publishing straight to a queue (what only the relay does in production:
a test uses it to send duplicates, malformed or poisonous messages)."""

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from kombu import Connection, Exchange, Queue

from portal.messaging import topology
from portal.messaging.subscriptions import Subscription
from portal.messaging.task_messages import encode_event, outgoing_publish, task_message


@contextlib.contextmanager
def broker_connection(url: str | None = None) -> Iterator[Connection]:
    """A connection to ``url`` (the configured broker by default), connected."""
    from portal.celery import app

    with app.connection_for_write(url or settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=3)
        yield conn


def queue_depth(name: str, *, url: str | None = None) -> int:
    """Messages ready in a queue (declared passively: it must exist)."""
    with broker_connection(url) as conn:
        channel = conn.channel()
        try:
            _, count, _ = channel.queue_declare(queue=name, passive=True)
            return count
        finally:
            channel.close()


def queues_purge(names: Iterable[str], *, url: str | None = None) -> None:
    with broker_connection(url) as conn:
        channel = conn.channel()
        for name in names:
            channel.queue_purge(name)
        channel.close()


def queues_delete(names: Iterable[str], *, url: str | None = None) -> None:
    """Delete queues; one that does not exist is no error."""
    with broker_connection(url) as conn:
        for name in names:
            channel = conn.channel()
            with contextlib.suppress(Exception):
                channel.queue_delete(name)
            with contextlib.suppress(Exception):
                channel.close()


def vhost_name(url: str) -> str:
    """The virtual host an AMQP URL names (``/`` when it names none)."""
    return unquote(urlsplit(url).path[1:]) or "/"


def vhost_missing(url: str, timeout: float = 5.0) -> bool:
    """Did the broker answer that ``url``'s virtual host does not exist (or
    is not open to its user)? False when it let us in, and False when it did
    not answer at all: a broker that is down or hung is no reason to create
    anything on it."""
    import amqp

    parts = urlsplit(url)
    connection = amqp.Connection(
        host=f"{parts.hostname or '127.0.0.1'}:{parts.port or 5672}",
        userid=unquote(parts.username or "guest"),
        password=unquote(parts.password or "guest"),
        virtual_host=vhost_name(url),
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
    )
    try:
        connection.connect()
        return False
    except (amqp.exceptions.NotAllowed, amqp.exceptions.AccessRefused):
        return True
    except Exception:  # noqa: BLE001 - unreachable, hung, refused: not "missing"
        return False
    finally:
        with contextlib.suppress(Exception):
            connection.collect()


@dataclass(frozen=True)
class RawMessage:
    """Bytes to put on a queue as they are."""

    body: bytes
    routing_key: str
    content_type: str = "application/json"
    headers: dict[str, Any] = field(default_factory=dict)
    exchange: str = topology.TASKS_EXCHANGE  # "": straight to the queue named
    properties: dict[str, Any] = field(default_factory=dict)


class Publisher:
    """Publishes over one connection, each message confirmed by RabbitMQ."""

    def __init__(self, url: str | None = None) -> None:
        self._url = url
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "Publisher":
        self.conn = self._stack.enter_context(broker_connection(self._url))
        self.producer = self.conn.Producer()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def events(
        self, subscription: Subscription, events: Sequence[dict[str, Any]]
    ) -> None:
        """One task message carrying ``events`` to ``subscription``'s queue,
        as the relay builds it."""
        message = task_message(subscription, [encode_event(e) for e in events])
        outgoing_publish(self.producer, message)

    def task(self, name: str, args: Sequence[Any], queue: Queue) -> None:
        """A task message for any task name (one no subscriber has, say)."""
        from portal.celery import app

        app.send_task(
            name, args=list(args), queue=queue, producer=self.producer, retry=False
        )

    def raw(self, message: RawMessage) -> None:
        exchange = (
            Exchange(message.exchange, type="topic", durable=True)
            if message.exchange
            else ""
        )
        self.producer.publish(
            message.body,
            exchange=exchange,
            routing_key=message.routing_key,
            content_type=message.content_type,
            content_encoding="utf-8",
            headers=message.headers,
            delivery_mode=2,
            retry=False,
            **message.properties,
        )
