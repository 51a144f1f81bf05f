"""JSON message bodies read with orjson, meaning exactly what they meant.

kombu reads every ``application/json`` body (each Celery task message, in a
worker's main process, which checks its shape before Celery unpacks it, and
again in the pool process that runs it; a subscriber's, in the pool process
only: ``subscriber_tasks.BatchRequest``) with the standard library's decoder
and a Python ``object_hook`` called for every JSON object, which turns
kombu's own type markers (``{"__type__": …, "__value__": …}``) back into
dates, UUIDs and decimals. For the feed's task messages of a thousand
events those two decodings were a tenth of the worker's CPU samples.

``message_loads`` reads with orjson, and leaves the body to kombu's decoder
whenever the two could read it differently: a body that mentions
``"__type__"`` at all; one with a run of 20 digits or more, or a minus and
19 (orjson reads an integer beyond 64 bits — unsigned above zero, signed
below — as a float, the standard library as the integer it is); text
holding an unpaired surrogate; and one orjson refuses (``NaN``,
``Infinity``, very deep nesting, malformed JSON, a byte order mark, UTF-16),
which kombu then reads or refuses with its usual error. Encoding is left to
kombu (the relay writes its task messages' bodies itself, with orjson:
``task_messages``).

``exact_loads`` is the same for bodies read with the standard library's
``json.loads`` (the events other services publish on ``portal.events``).

``json_codec_install`` registers it as kombu's ``json`` decoder; the Celery
app does at import, so web processes, the relay and every worker process
read alike.
"""

import json
from collections.abc import Callable
from typing import Any

import orjson
from kombu.serialization import registry
from kombu.utils import json as kombu_json

_MARKER = b'"__type__"'
# Every digit as "0", so that a run of 20 digits is one substring search (a
# regular expression took three times as long as the decoding it guards).
_DIGITS_AS_ZERO = bytes(48 if 48 <= b <= 57 else b for b in range(256))
_LONG_NUMBER = b"0" * 20
_LONG_NEGATIVE = b"-" + b"0" * 19

Body = bytes | bytearray | memoryview | str


def message_loads(body: Body) -> Any:
    """kombu's ``json`` decoder, through orjson where both read alike."""
    if isinstance(body, memoryview):
        data: bytes | bytearray = body.tobytes()
    elif isinstance(body, str):
        try:
            data = body.encode()
        except UnicodeEncodeError:  # an unpaired surrogate
            return kombu_json.loads(body)
    else:
        data = body
    if _MARKER in data:
        return kombu_json.loads(body)
    return exact_loads(data, fallback=lambda _: kombu_json.loads(body))


def exact_loads(
    data: bytes | bytearray, fallback: Callable[[Any], Any] = json.loads
) -> Any:
    """``fallback(data)``'s value (by default ``json.loads``), read by orjson
    unless the two could differ; what orjson refuses, ``fallback`` reads or
    refuses with its own error."""
    digits = data.translate(_DIGITS_AS_ZERO)
    if _LONG_NUMBER not in digits and _LONG_NEGATIVE not in digits:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return fallback(data)


def json_codec_install() -> None:
    registry.register(
        "json",
        kombu_json.dumps,
        message_loads,
        content_type="application/json",
        content_encoding="utf-8",
    )
