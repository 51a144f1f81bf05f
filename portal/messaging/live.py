"""Live announcements: small, transient messages that tell web processes
something was applied, so their open pages can update without polling.

This is **not** the event log. An announcement is published directly, after
the commit of what it announces, to a fanout exchange of its own (one per
kind of news, e.g. the feed's ``portal.feed.live``): not persistent, not
confirmed, dropped if the broker is away. Losing one is harmless by design:
whoever listens can catch up from the database (a page reconnecting polls
for what it missed). Hence the ``_unsafe`` in the publishing names.

Two halves:

* ``live_announce_unsafe(exchange, payload)``: publish now, from a process
  that already talks to RabbitMQ (a worker, after its commit);
  ``live_announce_after_commit(exchange, payload)``: from a web request,
  handed to a background thread after the commit, so the request never waits
  on the broker.
* ``LiveHub``: in each web process (ASGI), one exclusive, auto-delete queue
  bound to the exchange, consumed with aio-pika; every message is prepared
  once per process (``prepare``, e.g. read and render the rows it names) and
  handed to every listener (one per open stream). It reconnects by itself;
  listeners are told (``LIVE_RESYNC``) when they may have missed something.

Only RabbitMQ carries announcements: with another broker (the embedded
default's ``filesystem://``) nothing is published and no hub runs, and pages
poll instead.
"""

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction

from .amqp_publish import is_amqp, publisher_connection, publisher_declared

logger = logging.getLogger(__name__)

# Announcements older than this are of no use to a page: RabbitMQ drops them.
MESSAGE_TTL_MS = 10_000
# A web process that stops reading keeps at most this many.
QUEUE_MAX_LENGTH = 10_000
# What a listener receives when announcements may have been lost (its queue
# overflowed, or the hub's connection was replaced): catch up from the
# database.
LIVE_RESYNC = {"kind": "resync"}


def live_enabled() -> bool:
    """Do announcements travel here (RabbitMQ, and not switched off)?"""
    return settings.LIVE_UPDATES and is_amqp(settings.CELERY_BROKER_URL)


def live_announce_unsafe(exchange: str, payload: dict[str, Any]) -> bool:
    """Publish ``payload`` (JSON) to the fanout ``exchange`` now, on this
    thread's kept broker connection: transient, unconfirmed, outside the log.

    Call it after the commit of what it announces. Returns whether it was
    handed to the broker; never raises (a lost announcement is harmless).
    """
    if not live_enabled():
        return False
    try:
        connection = publisher_connection()
        channel = connection.default_channel
        declared = publisher_declared()
        key = f"live:{exchange}"
        if key not in declared:
            channel.exchange_declare(
                exchange=exchange, type="fanout", durable=True, auto_delete=False
            )
            declared.add(key)
        channel.basic_publish(
            channel.prepare_message(
                orjson.dumps(payload),
                content_type="application/json",
                content_encoding="utf-8",
                properties={"delivery_mode": 1},
            ),
            exchange=exchange,
            routing_key="",
        )
        return True
    except Exception:  # noqa: BLE001 - an announcement may be lost
        logger.warning("Live announcement to %s lost", exchange, exc_info=True)
        with contextlib.suppress(Exception):
            from .amqp_publish import publisher_reset

            publisher_reset()
        return False


class _Announcer(threading.Thread):
    """Publishes what web requests announce, off the request thread."""

    def __init__(self) -> None:
        super().__init__(name="live-announcer", daemon=True)
        self.inbox: queue.SimpleQueue[tuple[str, dict[str, Any]]] = queue.SimpleQueue()

    def run(self) -> None:
        while True:
            exchange, payload = self.inbox.get()
            live_announce_unsafe(exchange, payload)


_announcer: _Announcer | None = None
_announcer_lock = threading.Lock()


def live_announce_after_commit(exchange: str, payload: dict[str, Any]) -> None:
    """Announce ``payload`` once the current transaction commits, from a
    background thread: the request does not wait on the broker, and a
    rolled-back change announces nothing."""
    if not live_enabled():
        return

    def hand_over() -> None:
        global _announcer
        with _announcer_lock:
            if _announcer is None or not _announcer.is_alive():
                _announcer = _Announcer()
                _announcer.start()
        _announcer.inbox.put((exchange, payload))

    transaction.on_commit(hand_over)


Prepare = Callable[[dict[str, Any]], Awaitable[Any]]


class LiveHub:
    """One process's subscription to a live exchange, shared by its streams.

    ``listen()`` gives an ``asyncio.Queue`` that receives what ``prepare``
    made of each announcement (or ``LIVE_RESYNC``); ``unlisten`` ends it.
    The hub starts on the first ``listen`` and keeps one exclusive,
    auto-delete queue (RabbitMQ deletes it when the process goes away).
    """

    def __init__(self, exchange: str, prepare: Prepare, *, listener_max: int = 256):
        self.exchange = exchange
        self.prepare = prepare
        self.listener_max = listener_max
        self.listeners: set[asyncio.Queue[Any]] = set()
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def listen(self) -> asyncio.Queue[Any]:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self.connected = asyncio.Event()
            self._task = loop.create_task(self._run(), name=f"live {self.exchange}")
        listener: asyncio.Queue[Any] = asyncio.Queue(self.listener_max)
        self.listeners.add(listener)
        return listener

    def unlisten(self, listener: asyncio.Queue[Any]) -> None:
        self.listeners.discard(listener)

    def _hand_out(self, item: Any) -> None:
        for listener in list(self.listeners):
            try:
                listener.put_nowait(item)
            except asyncio.QueueFull:
                # A stream that cannot keep up starts over from the database.
                while not listener.empty():
                    listener.get_nowait()
                listener.put_nowait(LIVE_RESYNC)

    async def _run(self) -> None:
        import aio_pika

        delay = 0.5
        first = True
        while True:
            try:
                connection = await aio_pika.connect(
                    settings.CELERY_BROKER_URL, timeout=5
                )
                async with connection:
                    channel = await connection.channel()
                    await channel.set_qos(prefetch_count=100)
                    exchange = await channel.declare_exchange(
                        self.exchange, aio_pika.ExchangeType.FANOUT, durable=True
                    )
                    queue_ = await channel.declare_queue(
                        exclusive=True,
                        auto_delete=True,
                        arguments={
                            "x-message-ttl": MESSAGE_TTL_MS,
                            "x-max-length": QUEUE_MAX_LENGTH,
                        },
                    )
                    await queue_.bind(exchange)
                    if not first:
                        # Whatever was announced meanwhile is lost to us.
                        self._hand_out(LIVE_RESYNC)
                    first = False
                    delay = 0.5
                    self.connected.set()
                    async with queue_.iterator() as messages:
                        async for message in messages:
                            await self._receive(message)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - reconnect, whatever broke
                logger.warning(
                    "Live hub for %s lost its connection; retrying in %.1fs",
                    self.exchange,
                    delay,
                    exc_info=True,
                )
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _receive(self, message: Any) -> None:
        await message.ack()
        try:
            payload = orjson.loads(message.body)
            item = await self.prepare(payload)
        except Exception:  # noqa: BLE001 - one bad announcement, not the hub
            logger.warning("Live announcement not understood", exc_info=True)
            self._hand_out(LIVE_RESYNC)
            return
        if item is not None:
            self._hand_out(item)
