"""Frames read from RabbitMQ in large socket reads, not three per frame.

py-amqp's TCP transport reads every frame with three ``recv`` calls that
ask for exactly the bytes it needs next (the 7-byte header, the payload,
the end octet), so each delivered message (method, header and body frames)
costs nine system calls and as many Python-level reads; on per-event
traffic that was the largest share of the ingest consumer's time.
``TCPTransport.read_frame`` is replaced (``amqp_reads_install``, at import
of the Celery app) by one that reads whatever the socket holds, up to
``READ_CHUNK`` bytes, into the buffer py-amqp already keeps for partial
reads, and cuts whole frames from it.

Nothing else changes: a frame is taken from the buffer only once it is
complete, so a timeout or an interrupted read leaves the buffer as it was;
kombu's event loop keeps draining until a read would block, so frames never
wait in the buffer while the loop sleeps on the socket; connection errors
mark the transport disconnected as before. TLS connections keep py-amqp's
own reads. ``tests/messaging/test_amqp_reads.py`` checks frames split and
joined at every boundary, and every test on RabbitMQ runs with it.

``Connection.drain_events`` is replaced too (``drain_events``): py-amqp
switches the socket's timeout on and back off around every frame it reads
(four system calls a frame, twelve a message); this one switches once, takes
every frame already whole in the buffer along with the first, and dispatches
them in order once the socket's timeout is back — callbacks that write
(an ack, a publish) never see the reading timeout. Frames not yet dispatched
when a callback raises stay queued on the transport for the next drain.
A publisher confirm (``basic.ack``) goes from the drain straight to its
channel's ack handler (``_confirmed``): the relay reads one per message it
publishes.
"""

import errno
import struct
from collections import deque

from amqp import connection as amqp_connection
from amqp import transport as amqp_transport
from amqp.exceptions import UnexpectedFrame

READ_CHUNK = 64 * 1024
_FRAME_END = 0xCE
_HEADER = struct.Struct(">BHI")
_RETRY = (errno.EAGAIN, errno.EINTR)


def _fill(transport, buffer: bytes, needed: int, initial: bool) -> bytes:
    """``buffer`` with socket bytes added until it holds ``needed``."""
    recv = transport._quick_recv
    try:
        while len(buffer) < needed:
            try:
                chunk = recv(max(needed - len(buffer), READ_CHUNK))
            except OSError as exc:
                if exc.errno in _RETRY:
                    # As py-amqp: nothing of a frame yet is a timeout (the
                    # event loop's "nothing to read"); in the middle of one,
                    # read on.
                    if initial and transport.raise_on_initial_eintr:
                        raise TimeoutError() from None
                    continue
                raise
            if not chunk:
                raise OSError("Server unexpectedly closed connection")
            buffer += chunk
    except TimeoutError:
        transport._read_buffer = buffer
        raise
    except OSError as exc:
        transport._read_buffer = buffer
        if exc.errno not in amqp_transport._UNAVAIL:
            transport.connected = False
        raise
    except BaseException:
        transport._read_buffer = buffer
        raise
    return buffer


def read_frame(self, unpack=None):
    """One frame: ``(type, channel, payload)``, as py-amqp's ``read_frame``."""
    buffer = self._read_buffer
    if len(buffer) < _HEADER.size:
        buffer = _fill(self, buffer, _HEADER.size, initial=True)
    frame_type, channel, size = _HEADER.unpack_from(buffer)
    end = _HEADER.size + size
    if len(buffer) <= end:
        buffer = _fill(self, buffer, end + 1, initial=False)
    return _cut(self, buffer, frame_type, channel, end)


def buffered_frame(transport) -> tuple[int, int, bytes] | None:
    """The next frame if the buffer already holds all of it (no socket read)."""
    buffer = transport._read_buffer
    if len(buffer) < _HEADER.size:
        return None
    frame_type, channel, size = _HEADER.unpack_from(buffer)
    end = _HEADER.size + size
    if len(buffer) <= end:
        return None
    return _cut(transport, buffer, frame_type, channel, end)


def _cut(transport, buffer: bytes, frame_type: int, channel: int, end: int):
    payload = buffer[_HEADER.size : end]
    frame_end = buffer[end]
    transport._read_buffer = buffer[end + 1 :]
    if frame_end != _FRAME_END:
        raise UnexpectedFrame(
            f"Received frame_end {frame_end:#04x} while expecting 0xce"
        )
    return frame_type, channel, payload


def drain_events(self, timeout=None) -> None:
    """As py-amqp's ``Connection.drain_events``: dispatch frames until one
    completes a method (or every frame at hand, if more), reading the socket
    under ``timeout`` only when none is waiting."""
    transport = self.transport
    # On the transport, as its read buffer: a reconnection starts afresh.
    pending: deque = transport.__dict__.setdefault("_frames_pending", deque())
    batched = type(transport) is amqp_transport.TCPTransport
    while True:
        if not pending:
            with transport.having_timeout(timeout):
                pending.append(transport.read_frame())
                while batched and (frame := buffered_frame(transport)) is not None:
                    pending.append(frame)
        completed = False
        while pending:
            # Taken off before dispatch: a callback that drains (a
            # synchronous call) goes on from the next frame, and one that
            # raises leaves the rest for the next drain.
            frame = pending.popleft()
            if _confirmed(self, frame) or self.on_inbound_frame(frame):
                completed = True
        if completed:
            return


# basic.ack (class 60, method 80): a delivery tag (64 bits) and a bit.
_BASIC_ACK = b"\x00\x3c\x00\x50"
_BASIC_ACK_SIG = (60, 80)
_ACK_ARGUMENTS = struct.Struct(">QB")


def _confirmed(connection, frame) -> bool:
    """A publisher confirm handed straight to its channel's ack handler.

    RabbitMQ confirms a pipelined publish one ``basic.ack`` at a time, one per
    message the relay sends; py-amqp's generic dispatch (the method's
    signature looked up, its arguments decoded by a format string, listeners
    gathered) cost more than the publish itself. This does what that
    dispatch does for a ``basic.ack``, and leaves everything else to it: a
    channel closing or waiting for an ack synchronously, a frame of another
    shape. (The frame cannot belong to a message's content: a method frame
    arriving mid-content is a protocol error RabbitMQ never commits.)
    """
    frame_type, channel_id, payload = frame
    if frame_type != 1 or len(payload) != 13 or payload[:4] != _BASIC_ACK:
        return False
    channels = getattr(connection, "channels", None)
    channel = channels.get(channel_id) if channels else None
    if channel is None or channel.is_closing or _BASIC_ACK_SIG in channel._pending:
        return False
    handler = channel._callbacks.get(_BASIC_ACK_SIG)
    if handler is None:
        return False
    connection.bytes_recv += 1
    delivery_tag, bits = _ACK_ARGUMENTS.unpack_from(payload, 4)
    handler(delivery_tag, bool(bits & 1))
    return True


def amqp_reads_install() -> None:
    """Use ``read_frame`` for every plain-TCP py-amqp connection, and
    ``drain_events`` for every py-amqp connection."""
    amqp_transport.TCPTransport.read_frame = read_frame
    amqp_connection.Connection.drain_events = drain_events
