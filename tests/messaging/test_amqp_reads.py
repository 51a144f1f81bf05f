"""Frames cut from large socket reads: the same frames, whatever the split."""

import errno
import random
import struct

import pytest
from amqp import serialization
from amqp.connection import Connection
from amqp.exceptions import UnexpectedFrame
from amqp.transport import TCPTransport

from portal.messaging import amqp_reads


def frame(kind: int, channel: int, payload: bytes, end: int = 0xCE) -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + bytes([end])


FRAMES = [
    (1, 1, struct.pack(">HH", 60, 60) + b"consumer-tag"),
    (2, 1, struct.pack(">HHQ", 60, 0, 5) + b"\x90\x00"),
    (3, 1, b"hello"),
    (3, 2, b""),
    (8, 0, b""),
    (3, 1, bytes(range(256)) * 300),  # larger than one read
]
STREAM = b"".join(frame(*f) for f in FRAMES)


class Socket:
    """Hands out ``chunks``; then "would block" (or a timeout) when empty."""

    def __init__(self, chunks, when_empty=BlockingIOError):
        self.chunks = list(chunks)
        self.when_empty = when_empty
        self.calls = 0

    timeout = None
    timeout_switches = 0

    def gettimeout(self):
        return self.timeout

    def settimeout(self, value):
        self.timeout_switches += 1
        self.timeout = value

    def recv(self, size):
        self.calls += 1
        if not self.chunks:
            if self.when_empty is BlockingIOError:
                raise BlockingIOError(errno.EAGAIN, "would block")
            raise self.when_empty()
        chunk = self.chunks.pop(0)
        if len(chunk) > size:
            self.chunks.insert(0, chunk[size:])
            chunk = chunk[:size]
        return chunk


def transport(sock) -> TCPTransport:
    t = TCPTransport.__new__(TCPTransport)
    t.sock = sock
    t._read_buffer = b""
    t._quick_recv = sock.recv
    t.raise_on_initial_eintr = True
    t.connected = True
    return t


def read_all(t, count):
    return [amqp_reads.read_frame(t) for _ in range(count)]


@pytest.mark.parametrize("seed", range(30))
def test_frames_split_anywhere_come_out_whole(seed):
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 40)))
    chunks = [
        STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)
    ]
    t = transport(Socket(chunks))
    assert read_all(t, len(FRAMES)) == FRAMES


def test_many_frames_come_from_one_read():
    sock = Socket([STREAM])
    t = transport(sock)
    assert read_all(t, len(FRAMES)) == FRAMES
    # py-amqp's own reads ask for each part of each frame on its own.
    assert sock.calls < len(FRAMES)


def test_nothing_to_read_is_a_timeout_and_loses_nothing():
    first, rest = STREAM[:3], STREAM[3:]  # a partial header
    sock = Socket([first])
    t = transport(sock)
    with pytest.raises(TimeoutError):
        amqp_reads.read_frame(t)
    assert t._read_buffer == first
    sock.chunks.append(rest)
    assert read_all(t, len(FRAMES)) == FRAMES


def test_a_timeout_in_the_middle_of_a_frame_keeps_what_was_read():
    cut = len(frame(*FRAMES[0])) + 10  # inside the second frame's payload
    sock = Socket([STREAM[:cut]], when_empty=TimeoutError)
    t = transport(sock)
    assert amqp_reads.read_frame(t) == FRAMES[0]
    with pytest.raises(TimeoutError):
        amqp_reads.read_frame(t)
    sock.chunks.append(STREAM[cut:])
    assert read_all(t, len(FRAMES) - 1) == FRAMES[1:]


def test_a_closed_connection_is_an_error_and_disconnects():
    sock = Socket([b""])
    t = transport(sock)
    with pytest.raises(OSError, match="unexpectedly closed"):
        amqp_reads.read_frame(t)
    assert t.connected is False


def test_a_bad_frame_end_is_refused():
    t = transport(Socket([frame(1, 1, b"x", end=0x00)]))
    with pytest.raises(UnexpectedFrame):
        amqp_reads.read_frame(t)


def test_the_celery_app_installs_it():
    import portal.celery  # noqa: F401

    assert TCPTransport.read_frame is amqp_reads.read_frame
    assert Connection.drain_events is amqp_reads.drain_events


def connection(sock, on_frame) -> Connection:
    """A py-amqp connection on ``sock`` (no handshake), frames to ``on_frame``."""
    conn = Connection.__new__(Connection)
    conn._transport = transport(sock)
    conn.on_inbound_frame = on_frame
    return conn


def completes(seen, sock):
    """Records each frame with the socket's timeout at its dispatch; a
    content body frame completes a method (as py-amqp's frame handler)."""

    def on_frame(frame):
        seen.append((frame, sock.timeout))
        return frame[0] == 3

    return on_frame


def test_a_drain_dispatches_every_whole_frame_with_one_timeout_switch():
    # The last frame is bigger than one read: it waits for the next drain.
    sock = Socket([STREAM])
    seen: list = []
    conn = connection(sock, completes(seen, sock))
    amqp_reads.drain_events(conn, timeout=0)
    assert [frame for frame, _ in seen] == FRAMES[:-1]
    # Switched to 0 and back once for all of them, and every callback ran
    # with the socket as the caller left it (a write never meets the 0).
    assert sock.timeout_switches == 2
    assert {timeout for _, timeout in seen} == {None}
    amqp_reads.drain_events(conn, timeout=0)
    assert [frame for frame, _ in seen] == FRAMES


def test_a_drain_reads_on_until_a_method_completes():
    # Method and header frames first; the body arrives in a later read.
    head, body = frame(*FRAMES[0]) + frame(*FRAMES[1]), frame(*FRAMES[2])
    sock = Socket([head, body])
    seen: list = []
    amqp_reads.drain_events(connection(sock, completes(seen, sock)), timeout=0)
    assert [f for f, _ in seen] == FRAMES[:3]


def test_frames_left_when_a_callback_raises_come_first_in_the_next_drain():
    sock = Socket([STREAM])
    seen: list = []

    def on_frame(frame):
        seen.append(frame)
        if len(seen) == 2:
            raise RuntimeError("callback failed")
        return frame[0] == 3

    conn = connection(sock, on_frame)
    with pytest.raises(RuntimeError):
        amqp_reads.drain_events(conn, timeout=0)
    reads = sock.calls
    amqp_reads.drain_events(conn, timeout=0)
    assert seen == FRAMES[:-1]
    assert sock.calls == reads  # the rest came from the queue, not the socket


def test_nothing_to_drain_is_a_timeout():
    sock = Socket([])
    with pytest.raises(TimeoutError):
        amqp_reads.drain_events(connection(sock, completes([], sock)), timeout=0)
    assert sock.timeout is None


def test_frames_pending_on_a_lost_transport_are_not_replayed_on_its_successor():
    seen: list = []

    def on_frame(frame):
        seen.append(frame)
        if len(seen) == 1:
            raise OSError("connection lost")
        return frame[0] == 3

    conn = connection(Socket([STREAM]), on_frame)
    with pytest.raises(OSError, match="connection lost"):
        amqp_reads.drain_events(conn, timeout=0)
    # Reconnected: a new transport, a new stream.
    conn._transport = transport(Socket([frame(3, 1, b"after")]))
    amqp_reads.drain_events(conn, timeout=0)
    assert seen == [FRAMES[0], (3, 1, b"after")]


class ConfirmChannel:
    """What a drain needs of a py-amqp channel in confirm mode."""

    def __init__(self, waiting=False):
        self.is_closing = False
        self.acks: list = []
        self._callbacks = {
            (60, 80): lambda tag, multiple: self.acks.append((tag, multiple))
        }
        self._pending = {(60, 80): print} if waiting else {}


def ack(tag: int, multiple: bool, channel: int = 1) -> tuple[int, int, bytes]:
    return (1, channel, struct.pack(">HHQB", 60, 80, tag, multiple))


def test_a_publisher_confirm_goes_straight_to_its_channel():
    frames = [ack(7, False), ack(9, True), ack(2**63 + 5, False)]
    sock = Socket([b"".join(frame(*f) for f in frames)])
    seen: list = []
    conn = connection(sock, completes(seen, sock))
    conn.channels = {1: ConfirmChannel()}
    conn.bytes_recv = 0
    amqp_reads.drain_events(conn, timeout=0)

    assert seen == []  # not through py-amqp's generic dispatch
    assert conn.bytes_recv == 3
    # What py-amqp's own decoding of basic.ack's arguments ('Lb') gives.
    expected = [tuple(serialization.loads("Lb", f[2], 4)[0]) for f in frames]
    assert (
        conn.channels[1].acks == expected == [(7, False), (9, True), (2**63 + 5, False)]
    )


def test_a_confirm_awaited_synchronously_or_on_another_shape_takes_py_amqps_way():
    frames = [ack(7, False), ack(8, False, channel=2), (1, 1, b"\x00\x3c\x00\x50")]
    sock = Socket([b"".join(frame(*f) for f in frames)])
    seen: list = []
    conn = connection(sock, lambda f: seen.append(f) or True)
    conn.channels = {1: ConfirmChannel(waiting=True)}  # channel 2: none
    amqp_reads.drain_events(conn, timeout=0)

    assert seen == frames
    assert conn.channels[1].acks == []
