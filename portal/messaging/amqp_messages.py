"""Reading AMQP messages as they arrive (kombu ``Message``): body, headers,
properties, content type, as plain JSON-safe values."""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from .contracts import CONTENT_TYPE

JSON_CONTENT_TYPES = frozenset({CONTENT_TYPE, "application/json"})


def raw_body(message: Any) -> bytes:
    """A kombu message's body as bytes (py-amqp decodes bodies that declare
    a ``content_encoding``, so it may arrive as ``str``)."""
    body = message.body
    if isinstance(body, str):
        return body.encode(message.content_encoding or "utf-8", errors="replace")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    return b""


def content_type_of(message: Any) -> str:
    """The media type without parameters (``application/json; charset=…``)."""
    return (message.content_type or "").split(";")[0].strip()


def json_safe(value: Any) -> Any:
    """AMQP header values (datetimes, bytes, decimals) as JSON primitives."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")  # jsonb cannot hold U+0000
    if isinstance(value, Decimal):
        return float(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def message_headers(message: Any) -> dict[str, Any]:
    return json_safe(message.headers or {})


def message_properties(message: Any) -> dict[str, Any]:
    """The AMQP properties (message id, app id, …) without the headers."""
    props = dict(message.properties or {})
    props.pop("application_headers", None)
    return json_safe(props)


def delivery_count(message: Any) -> int:
    """How often RabbitMQ delivered this message before (quorum queues count)."""
    try:
        return int((message.headers or {}).get("x-delivery-count") or 0)
    except (TypeError, ValueError):
        return 0
