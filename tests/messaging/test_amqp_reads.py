"""Frames cut from large socket reads: the same frames, whatever the split."""

import errno
import random
import struct

import pytest
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
