"""Publishing with publisher confirms: one kept connection per thread.

``publish_confirmed`` sends a list of ``OutgoingMessage`` and returns, for
each, ``None`` once RabbitMQ confirmed it or why it did not (nacked, or
returned as unroutable). On RabbitMQ the messages go out pipelined on one
confirm-mode channel and the confirms are awaited together, so a thousand
messages cost one wait, not a thousand; their frames are encoded here
(``publish_frames``, byte for byte what py-amqp would send) and written in
a few large socket writes rather than one per message; other kombu
transports (the embedded ``filesystem://`` broker) publish one by one.
Connection trouble raises, and the caller keeps what it was publishing for
another attempt.

This module never decides what to publish: the relay (``router``) does, and
nothing else publishes events (see ``portal/messaging/README.md``).
"""

import contextlib
import functools
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import amqp
from celery import current_app
from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass
class OutgoingMessage:
    """One message to publish: where to, the body as bytes, headers and the
    AMQP properties (``message_id``, ``app_id``, ``correlation_id``…)."""

    exchange: str
    routing_key: str
    body: bytes
    content_type: str
    content_encoding: str = "utf-8"
    headers: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    # Unroutable is an error, not a silent drop: RabbitMQ returns the message.
    mandatory: bool = True


class BrokerBlocked(ConnectionError):
    """RabbitMQ blocked the connection (``connection.blocked``)."""


class ConfirmTimeout(ConnectionError):
    """Confirms did not arrive within ``OUTBOX_PUBLISH_TIMEOUT``."""


def is_amqp(url: str) -> bool:
    return url.startswith(("amqp", "pyamqp"))


def _broker_count(url: str) -> int:
    """How many brokers a URL names: a cluster's are separated by ``;``."""
    return len([part for part in url.split(";") if part.strip()])


class _Connections(threading.local):
    """One broker connection per thread, to the broker the settings name now.

    Kept open between publishes (a handshake per event would dominate the
    cost); dropped after any failure so the next attempt starts clean.
    """

    connection: Any = None
    url: str | None = None
    reused = False
    blocked = ""
    channel: Any = None
    next_tag = 1
    declared: set[str] | None = None

    def get(self):
        """The thread's connection, connected (one attempt, no sleeping)."""
        url = settings.CELERY_BROKER_URL
        self.reused = self.connection is not None and self.url == url
        if not self.reused:
            self.reset()
            # No heartbeats: the connection idles between publishes and nothing
            # would drive them; a dead socket fails the next publish instead.
            self.connection = current_app.connection_for_write(
                url, heartbeat=0, transport_options=self._transport_options(url)
            )
            self.url = url
            self.declared = set()
        if self.blocked:
            # RabbitMQ said it will not take messages now (memory or disk
            # alarm): fail at once rather than wait for a confirm. Its
            # connection.unblocked only arrives when we read: look for it.
            with contextlib.suppress(TimeoutError, OSError):
                self.connection.drain_events(timeout=0.05)
            if self.blocked:
                raise BrokerBlocked(self.blocked)
        # Each broker of the URL list once, no sleeping retries: the caller
        # keeps the rows pending.
        self.connection.ensure_connection(max_retries=_broker_count(url) - 1)
        return self.connection

    def _transport_options(self, url: str) -> dict[str, Any]:
        if not is_amqp(url):
            return {}
        return {
            # Confirms are handled here, pipelined, not one wait per message.
            "confirm_publish": False,
            # A broker that stops reading (blocked, or a dead link) fails the
            # write instead of hanging the publisher thread or the relay.
            "write_timeout": settings.OUTBOX_PUBLISH_TIMEOUT,
            "read_timeout": settings.OUTBOX_PUBLISH_TIMEOUT,
            "on_blocked": self._on_blocked,
            "on_unblocked": self._on_unblocked,
        }

    def _on_blocked(self, reason: str) -> None:
        logger.warning("RabbitMQ blocked the publisher connection: %s", reason)
        self.blocked = reason or "connection blocked"

    def _on_unblocked(self) -> None:
        logger.info("RabbitMQ unblocked the publisher connection")
        self.blocked = ""

    def confirm_channel(self):
        """The connection's confirm-mode channel (opened once, and again after
        a nack: a channel opened during a leader election may keep nacking)."""
        if self.channel is None:
            channel = self.connection.connection.channel()
            channel.confirm_select()
            self.channel = channel
            self.next_tag = 1
        return self.channel

    def drop_channel(self) -> None:
        if self.channel is not None:
            with contextlib.suppress(Exception):
                self.channel.close()
        self.channel = None

    def reset(self) -> None:
        if self.connection is not None:
            try:
                # Drop the socket without the close handshake: a stalled or
                # blocked broker would never answer it, and wait forever.
                self.connection.collect()
            except Exception:  # noqa: BLE001 - it is being thrown away
                logger.debug("Closing a failed broker connection", exc_info=True)
        self.connection = None
        self.url = None
        self.blocked = ""
        self.channel = None
        self.declared = None


_connections = _Connections()


def publisher_connection():
    """This thread's kept broker connection (connected), for declaring."""
    return _connections.get()


def publisher_declared() -> set[str]:
    """What was declared on this thread's current connection (names), so
    topology is declared once per connection, not once per publish."""
    _connections.get()
    assert _connections.declared is not None
    return _connections.declared


def publisher_reset() -> None:
    """Drop this thread's connection: the next publish starts clean."""
    _connections.reset()


def publisher_reused() -> bool:
    """Was the last ``get`` a kept connection (which may have gone stale)?"""
    return _connections.reused


def publish_confirmed(messages: Sequence[OutgoingMessage]) -> list[str | None]:
    """Publish ``messages`` and wait for their confirms.

    Returns one entry per message: ``None`` once RabbitMQ confirmed it, else
    why not (``nacked``, ``unroutable: …``). Raises for connection trouble,
    a blocked broker (``BrokerBlocked``) or confirms that do not come within
    ``OUTBOX_PUBLISH_TIMEOUT`` (``ConfirmTimeout``); then nothing is known
    to be confirmed.
    """
    if not messages:
        return []
    connection = _connections.get()
    if connection.transport.driver_type != "amqp":
        return _publish_one_by_one(connection, messages)
    return _publish_pipelined(messages)


def _publish_one_by_one(connection, messages: Sequence[OutgoingMessage]):
    producer = connection.Producer()
    for message in messages:
        producer.publish(
            message.body,
            exchange=message.exchange,
            routing_key=message.routing_key,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            headers=message.headers,
            retry=False,
            delivery_mode=2,
            **message.properties,
        )
    return [None] * len(messages)


def _publish_pipelined(messages: Sequence[OutgoingMessage]) -> list[str | None]:
    state = _connections
    channel = state.confirm_channel()
    first_tag = state.next_tag
    results: list[str | None] = [None] * len(messages)
    settled = [False] * len(messages)
    by_correlation = {
        m.properties["correlation_id"]: i
        for i, m in enumerate(messages)
        if m.mandatory and m.properties.get("correlation_id")
    }
    nacked = False
    unsettled_from = 0  # every message before this index is settled

    def settle(tag: int, multiple: bool, outcome: str | None) -> None:
        nonlocal nacked, unsettled_from
        last = tag - first_tag
        first = unsettled_from if multiple else last
        for index in range(max(first, 0), min(last + 1, len(messages))):
            if not settled[index]:
                settled[index] = True
                if outcome is not None and results[index] is None:
                    results[index] = outcome
        while unsettled_from < len(messages) and settled[unsettled_from]:
            unsettled_from += 1
        if outcome is not None:
            nacked = True

    def on_ack(tag, multiple):
        settle(tag, multiple, None)

    def on_nack(tag, multiple):
        settle(tag, multiple, "nacked by RabbitMQ")

    def on_return(exc, exchange, routing_key, message):
        index = by_correlation.get(message.properties.get("correlation_id"))
        if index is not None:
            results[index] = f"unroutable: {exc} ({exchange} {routing_key})"

    channel.events["basic_ack"].add(on_ack)
    channel.events["basic_nack"].add(on_nack)
    channel.events["basic_return"].add(on_return)
    try:
        _write_pipelined(channel, messages)
        state.next_tag += len(messages)
        _wait_for(lambda: unsettled_from >= len(messages), channel)
    finally:
        channel.events["basic_ack"].discard(on_ack)
        channel.events["basic_nack"].discard(on_nack)
        channel.events["basic_return"].discard(on_return)
    if nacked:
        state.drop_channel()
    return results


# What one socket write carries at most while publishing a pass.
_WRITE_CHUNK_BYTES = 256 * 1024
_FRAME_METHOD, _FRAME_HEADER, _FRAME_BODY = 1, 2, 3
_FRAME_END = b"\xce"
_BASIC_CLASS, _BASIC_PUBLISH = 60, 40
# Bit 15 - index flags each property present, in the order AMQP 0-9-1 lists
# them (14 properties: one flag word).
_PROPERTY_TYPES = list(amqp.Message.PROPERTIES)


def _write_pipelined(channel, messages: Sequence[OutgoingMessage]) -> None:
    """Write ``basic.publish`` for every message on ``channel``, the frames
    of many messages per socket write."""
    connection = channel.connection
    if connection is None or connection.transport is None:
        raise amqp.RecoverableConnectionError("publish: connection closed")
    frame_max = connection.frame_max
    transport = connection.transport
    pending: list[bytes] = []
    size = 0
    for message in messages:
        frames = publish_frames(channel.channel_id, frame_max, message)
        pending.append(frames)
        size += len(frames)
        if size >= _WRITE_CHUNK_BYTES:
            transport.write(b"".join(pending))
            pending, size = [], 0
    if pending:
        transport.write(b"".join(pending))
    connection.bytes_sent += len(messages)


def publish_frames(channel_id: int, frame_max: int, message: OutgoingMessage) -> bytes:
    """The frames of ``basic.publish`` for ``message``: the method, the
    content header (persistent, the message's properties) and the body in
    frames of at most ``frame_max`` bytes."""
    body = message.body
    header = _HEADER_START + struct.pack(">Q", len(body)) + _properties(message)
    parts = [
        _method_frame(
            channel_id, message.exchange, message.routing_key, message.mandatory
        ),
        struct.pack(">BHI", _FRAME_HEADER, channel_id, len(header)),
        header,
        _FRAME_END,
    ]
    chunk = frame_max - 8
    for start in range(0, len(body), chunk):
        part = body[start : start + chunk] if len(body) > chunk else body
        parts += (struct.pack(">BHI", _FRAME_BODY, channel_id, len(part)), part)
        parts.append(_FRAME_END)
    return b"".join(parts)


_HEADER_START = struct.pack(">HH", _BASIC_CLASS, 0)


@functools.lru_cache(maxsize=1024)
def _method_frame(channel_id: int, exchange: str, routing_key: str, mandatory: bool):
    """``basic.publish``'s method frame: the same for every message to one
    exchange and routing key (a relay sends thousands alike)."""
    arguments = (
        struct.pack(">HHH", _BASIC_CLASS, _BASIC_PUBLISH, 0)
        + _shortstr(exchange)
        + _shortstr(routing_key)
        + (b"\x01" if mandatory else b"\x00")
    )
    return _frame(_FRAME_METHOD, channel_id, arguments)


def _frame(kind: int, channel_id: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", kind, channel_id, len(payload)) + payload + _FRAME_END


def _shortstr(value: str) -> bytes:
    encoded = value.encode()
    if len(encoded) > 255:
        raise ValueError(f"AMQP short string over 255 bytes: {value[:40]!r}…")
    return bytes((len(encoded),)) + encoded


_PROPERTY_FLAG = {
    name: 1 << (15 - index) for index, (name, _) in enumerate(_PROPERTY_TYPES)
}
_PROPERTY_KIND = dict(_PROPERTY_TYPES)
_EMPTY_TABLE = b"\x00\x00\x00\x00"
# py-amqp writes an int as 'I' (32 bits) within these bounds, else as 'L'.
_INT_MIN, _INT_MAX = -2147483647, 2147483647


class _Unencoded(ValueError):
    """A value this module leaves to py-amqp's encoder."""


def _properties(message: OutgoingMessage) -> bytes:
    """The property flags and list of the content header, as py-amqp writes
    them. Encoded here for the kinds of values the portal sends (strings,
    octets, header tables of strings, numbers, lists and tables); anything
    else is encoded by py-amqp."""
    try:
        flags, lead = _leading_properties(
            message.content_type, message.content_encoding
        )
        encoded = [lead]
        if message.headers is not None:
            flags |= _PROPERTY_FLAG["application_headers"]
            encoded.append(_table(message.headers) if message.headers else _EMPTY_TABLE)
        encoded.append(b"\x02")  # delivery_mode: persistent
        properties = message.properties
        if properties:
            for name, flag, kind in _in_property_order(tuple(properties)):
                value = properties[name]
                if value is not None:
                    flags |= flag
                    encoded.append(_property(kind, value))
    except _Unencoded:
        return _amqp_message(message)._serialize_properties()
    return struct.pack(">H", flags) + b"".join(encoded)


@functools.lru_cache(maxsize=256)
def _leading_properties(
    content_type: str | None, content_encoding: str | None
) -> tuple[int, bytes]:
    """The flags (``delivery_mode``'s included) and encoding of the content
    type and encoding, which most messages share."""
    flags = _PROPERTY_FLAG["delivery_mode"]
    encoded = b""
    if content_type is not None:
        flags |= _PROPERTY_FLAG["content_type"]
        encoded += _shortstr(content_type)
    if content_encoding is not None:
        flags |= _PROPERTY_FLAG["content_encoding"]
        encoded += _shortstr(content_encoding)
    return flags, encoded


@functools.lru_cache(maxsize=256)
def _in_property_order(names: tuple[str, ...]) -> list[tuple[str, int, str]]:
    """(name, flag, kind) of the AMQP properties among ``names``, in the
    order the header lists them (other names are not properties)."""
    return sorted(
        (
            (name, _PROPERTY_FLAG[name], _PROPERTY_KIND[name])
            for name in names
            if name in _PROPERTY_FLAG
        ),
        key=lambda entry: -entry[1],
    )


def _property(kind: str, value: Any) -> bytes:
    if kind == "s" and isinstance(value, str):
        return _shortstr(value)
    if kind == "o" and isinstance(value, int) and 0 <= value <= 255:
        return bytes((value,))
    if kind == "F" and isinstance(value, dict):
        return _table(value)
    raise _Unencoded(kind)


def _table(table: dict[str, Any]) -> bytes:
    parts: list[bytes] = []
    for key, value in table.items():
        if not isinstance(key, str):
            raise _Unencoded("table key")
        name = key.encode("utf-8", "surrogatepass")
        if len(name) > 255:
            raise _Unencoded("table key over 255 bytes")
        parts.append(bytes((len(name),)) + name)
        parts.append(_item(value))
    data = b"".join(parts)
    return struct.pack(">I", len(data)) + data


def _item(value: Any) -> bytes:
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes):
        return b"S" + struct.pack(">I", len(value)) + value
    if isinstance(value, bool):
        return b"t\x01" if value else b"t\x00"
    if isinstance(value, float):
        return b"d" + struct.pack(">d", value)
    if isinstance(value, int):
        if _INT_MIN <= value <= _INT_MAX:
            return b"I" + struct.pack(">i", value)
        return b"L" + struct.pack(">q", value)
    if value is None:
        return b"V"
    if isinstance(value, dict):
        return b"F" + _table(value)
    if isinstance(value, list | tuple):
        data = _array(value)
        return b"A" + struct.pack(">I", len(data)) + data
    raise _Unencoded(type(value).__name__)


def _array(values: list | tuple) -> bytes:
    """An array's items. A relay's task message carries a log id and a
    commit time per event: lists of ints and of floats are written with a
    few slice assignments rather than an item at a time."""
    count = len(values)
    if count > 8:
        kinds = {type(value) for value in values}
        if kinds == {int} and min(values) >= _INT_MIN and max(values) <= _INT_MAX:
            return _strided(b"I", struct.pack(f">{count}i", *values), 4, count)
        if kinds == {float}:
            return _strided(b"d", struct.pack(f">{count}d", *values), 8, count)
    return b"".join(_item(value) for value in values)


def _strided(tag: bytes, packed: bytes, width: int, count: int) -> bytes:
    """``tag`` before each ``width``-byte item of ``packed``."""
    stride = width + 1
    out = bytearray(stride * count)
    out[0::stride] = tag * count
    for offset in range(width):
        out[offset + 1 :: stride] = packed[offset::width]
    return bytes(out)


def _amqp_message(message: OutgoingMessage) -> amqp.Message:
    return amqp.Message(
        message.body,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        application_headers=message.headers,
        delivery_mode=2,
        **message.properties,
    )


def _wait_for(all_settled: Callable[[], bool], channel) -> None:
    timeout = settings.OUTBOX_PUBLISH_TIMEOUT
    deadline = time.monotonic() + timeout
    connection = channel.connection
    while not all_settled():
        left = deadline - time.monotonic()
        if left <= 0:
            raise ConfirmTimeout(f"no confirm within {timeout:g}s")
        if _connections.blocked:
            raise BrokerBlocked(_connections.blocked)
        with contextlib.suppress(socket.timeout, TimeoutError):
            connection.drain_events(timeout=min(left, 1.0))
