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
            if self.on_inbound_frame(pending.popleft()):
                completed = True
        if completed:
            return


def amqp_reads_install() -> None:
    """Use ``read_frame`` for every plain-TCP py-amqp connection, and
    ``drain_events`` for every py-amqp connection."""
    amqp_transport.TCPTransport.read_frame = read_frame
    amqp_connection.Connection.drain_events = drain_events
