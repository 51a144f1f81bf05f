"""The pipelined publisher writes its own frames: byte for byte py-amqp's."""

from datetime import UTC, datetime

import amqp
import pytest
from amqp.method_framing import frame_writer
from amqp.spec import Basic

from portal.messaging.amqp_publish import OutgoingMessage, publish_frames
from portal.messaging.task_messages import broadcast_message

FRAME_MAX = 4096


class _Recorder:
    def __init__(self):
        self.written = bytearray()

    def write(self, data):
        self.written += bytes(data)


class _Connection:
    frame_max = FRAME_MAX
    bytes_sent = 0


def amqp_frames(channel_id: int, message: OutgoingMessage) -> bytes:
    """What py-amqp's own ``basic_publish`` writes for ``message``."""
    transport = _Recorder()
    write_frame = frame_writer(_Connection(), transport)
    arguments = amqp.serialization.dumps(
        "Bssbb", (0, message.exchange, message.routing_key, message.mandatory, False)
    )
    content = amqp.Message(
        message.body,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        application_headers=message.headers,
        delivery_mode=2,
        **message.properties,
    )
    write_frame(1, channel_id, Basic.Publish, arguments, content)
    return bytes(transport.written)


def to_feed(**fields) -> OutgoingMessage:
    """A task message for the feed's queue, with ``fields``."""
    return OutgoingMessage(
        exchange="portal.tasks",
        routing_key="feed",
        body=b"[]",
        content_type="application/json",
        **fields,
    )


ENVELOPE = {
    "specversion": "1.0",
    "id": "0b3c2a9e-1f6e-4c1a-9a77-6f0f4e1c2d3b",
    "source": "/hr/people-directory",
    "type": "employee.registered",
    "time": "2026-11-30T10:00:00Z",
    "data": {"name": "Anna Šimková", "note": "ünïcödé ✓"},
}


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(
            broadcast_message(
                ENVELOPE["type"], ENVELOPE["id"], ENVELOPE["source"], b'{"id": 1}'
            ),
            id="broadcast",
        ),
        pytest.param(
            OutgoingMessage(
                exchange="portal.tasks",
                routing_key="feed",
                body=b"[[[]],{},{}]",
                content_type="application/json",
                headers={"task": "feed.apply_events", "id": "t-1", "log_ids": [1, 2]},
                properties={"correlation_id": "t-1", "reply_to": "", "priority": 0},
            ),
            id="task message with headers",
        ),
        pytest.param(
            OutgoingMessage(
                exchange="",
                routing_key="q" * 255,
                body="é".encode() * 5000,  # over one frame: several body frames
                content_type="application/cloudevents+json",
                properties={"message_id": "m" * 255, "app_id": "/src/ü"},
                mandatory=False,
            ),
            id="long names and a body of several frames",
        ),
        pytest.param(
            OutgoingMessage(
                exchange="portal.broadcast",
                routing_key="a.b",
                body=b"",
                content_type="application/json",
            ),
            id="empty body",
        ),
        pytest.param(
            to_feed(
                headers={
                    "log_ids": list(range(2_147_483_600, 2_147_483_700)),
                    "logged_at": [1_764_500_000.125 + n / 7 for n in range(1000)],
                    "negative": [-2_147_483_647, -2_147_483_648, 0, *range(10)],
                    "mixed": [1, 2.5, "three", None, True, False, {"k": [1]}] * 2,
                    "nested": {"a": {"b": [1, 2, 3]}, "é": "ü", "raw": b"\x00\xff"},
                    "big": 2**40,
                    "flag": True,
                    "nothing": None,
                },
                properties={"priority": 9, "timestamp": None, "unknown": "x"},
            ),
            id="headers of every kind a task message carries",
        ),
        pytest.param(
            OutgoingMessage(
                exchange="portal.broadcast",
                routing_key="a.b",
                body=b"{}",
                content_type="application/cloudevents+json",
                headers=None,
                properties={"app_id": "/src", "message_id": None, "user_id": "u"},
                mandatory=False,
            ),
            id="no header table, a property left unset, properties out of order",
        ),
        pytest.param(
            to_feed(
                content_encoding=None,
                headers={"when": datetime(2026, 11, 30, tzinfo=UTC)},
                properties={"timestamp": 1_764_500_000, "type": "t"},
            ),
            id="values left to py-amqp",
        ),
    ],
)
def test_the_frames_are_those_py_amqp_writes(message):
    assert publish_frames(7, FRAME_MAX, message) == amqp_frames(7, message)


def test_a_name_over_255_bytes_is_refused_not_truncated():
    message = OutgoingMessage(
        exchange="portal.broadcast",
        routing_key="é" * 128,
        body=b"{}",
        content_type="application/json",
    )
    with pytest.raises(ValueError, match="over 255 bytes"):
        publish_frames(1, FRAME_MAX, message)
