"""Subprocesses the benchmark starts, and a peak-RSS sampler for them."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


class Proc:
    """A subprocess in its own process group, stopped gracefully then killed."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_dir: Path
    ) -> None:
        self.name = name
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args,
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
            except ProcessLookupError:
                pass
        self._log.close()


class RssSampler:
    """Samples the RSS of every process under the watched roots, keeps peaks.

    Peaks are kept per role and per process (``web`` = gunicorn processes,
    ``worker`` = a Celery worker's main and pool processes).
    """

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.roots: dict[int, str] = {}
        self.peak_process: dict[str, int] = {}
        self.peak_total: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def watch(self, pid: int, role: str) -> None:
        self.roots[pid] = role

    def unwatch(self, pid: int) -> None:
        self.roots.pop(pid, None)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid, role in list(self.roots.items()):
                try:
                    root = psutil.Process(pid)
                    procs = [root, *root.children(recursive=True)]
                    sizes = [p.memory_info().rss for p in procs]
                except psutil.Error:
                    continue
                if sizes:
                    self.peak_process[role] = max(
                        self.peak_process.get(role, 0), max(sizes)
                    )
                    self.peak_total[role] = max(
                        self.peak_total.get(role, 0), sum(sizes)
                    )
            self._stop.wait(self.interval)

    def close(self) -> None:
        self._stop.set()
