"""A fault-injecting TCP proxy: put it between a client and a server, then cut,
pause or restore the link while the client runs.

- ``cut()``: every open connection is reset and new ones are reset at once, as
  if the server had gone away; ``restore()`` lets connections through again.
- ``pause()``: bytes stop flowing but sockets stay open (a hung network);
  ``resume()`` delivers what was held back.

Thread-based and dependency-free, so it runs in the test process and in
``bench/chaos.py`` alike.
"""

import contextlib
import logging
import selectors
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import cast

logger = logging.getLogger(__name__)


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees a reset, not a clean EOF."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One proxied connection: a client socket and its upstream socket."""

    def __init__(self, proxy: "FaultProxy", client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.closed = threading.Event()

    def run(self) -> None:
        try:
            self.upstream = socket.create_connection(self.proxy.target, timeout=5)
        except OSError:
            _reset(self.client)
            self.closed.set()
            return
        self.upstream.settimeout(None)
        self.client.settimeout(None)
        peers = {self.client: self.upstream, self.upstream: self.client}
        selector = selectors.DefaultSelector()
        for peer in peers:
            selector.register(peer, selectors.EVENT_READ)
        try:
            while not self.closed.is_set():
                if self.proxy.paused.is_set():
                    time.sleep(0.02)
                    continue
                for key, _ in selector.select(timeout=0.1):
                    sock = cast(socket.socket, key.fileobj)
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        self.close()
                        break
                    try:
                        peers[sock].sendall(data)
                    except OSError:
                        self.close()
                        break
        finally:
            selector.close()
            self.close()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        _reset(self.client)
        if self.upstream is not None:
            _reset(self.upstream)


class FaultProxy:
    """Listens on ``127.0.0.1:<port>`` and forwards to ``target``."""

    def __init__(self, target_host: str, target_port: int, listen_port: int = 0):
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", listen_port))
        self._listener.listen(128)
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self.down = threading.Event()
        self.paused = threading.Event()
        self._stopping = threading.Event()
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self.accepted = 0
        self.refused = 0
        self._thread = threading.Thread(
            target=self._serve, name=f"fault-proxy-{self.port}", daemon=True
        )

    def __enter__(self) -> "FaultProxy":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._close_links()
        with contextlib.suppress(OSError):
            self._listener.close()

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until ``restore()``."""
        self.down.set()
        self._close_links()

    def restore(self) -> None:
        self.down.clear()
        self.paused.clear()

    def pause(self) -> None:
        """Hold every byte in both directions, keeping the sockets open."""
        self.paused.set()

    def resume(self) -> None:
        self.paused.clear()

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.cut()
        try:
            yield
        finally:
            self.restore()

    @property
    def open_links(self) -> int:
        with self._lock:
            return sum(1 for link in self._links if not link.closed.is_set())

    def _close_links(self) -> None:
        with self._lock:
            links = list(self._links)
            self._links.clear()
        for link in links:
            link.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                raise
            if self.down.is_set():
                self.refused += 1
                _reset(client)
                continue
            self.accepted += 1
            link = _Link(self, client)
            with self._lock:
                self._links = {lk for lk in self._links if not lk.closed.is_set()}
                self._links.add(link)
            threading.Thread(
                target=link.run, name="fault-proxy-link", daemon=True
            ).start()
