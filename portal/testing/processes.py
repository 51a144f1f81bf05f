"""Worker and relay subprocesses that tests and benchmarks start, stop, kill
and (like systemd, Kubernetes or docker's ``restart:``) restart.

Each runs in a process group of its own with its output appended to a log
file; ``kill()`` takes the whole group down at once, like a lost machine,
``kill_child()`` one pool process of a worker.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def process_children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (read from ``/proc``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


class Supervised:
    """A subprocess in its own process group, optionally restarted when it
    dies (``supervise=True``).

    ``start()`` spawns it and waits for ``ready_marker`` in its log;
    ``spawn()`` only spawns (``wait_ready()`` waits). Usable as a context
    manager: started on entry, stopped on exit.
    """

    ready_marker: str | None = None

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        log_path: Path,
        *,
        supervise: bool = False,
        cwd: Path = ROOT,
    ) -> None:
        self.argv = list(argv)
        self.env = env
        self.log_path = Path(log_path)
        self.supervise = supervise
        self.cwd = cwd
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self._offset = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start the process (and its supervisor, if supervised); no waiting."""
        with self._lock:
            self._spawn()
        if self.supervise and self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, daemon=True)
            self._watcher.start()

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def log(self, since_start: bool = False) -> str:
        """The log file (``since_start``: only what the current process wrote)."""
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace")
        return text[self._offset :] if since_start else text

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the current process logged ``ready_marker``; fail if an
        unsupervised one exits first."""
        if self.ready_marker is None:
            return
        deadline = time.monotonic() + timeout
        while self.ready_marker not in self.log(since_start=True):
            if not self.supervise and not self.alive():
                raise RuntimeError(f"{self.argv} exited early:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready in {timeout}s:\n{self.log()[-4000:]}")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def children(self) -> list[int]:
        return process_children(self.pid) if self.alive() else []

    def _watch(self) -> None:
        while not self._stopping.is_set():
            time.sleep(0.2)
            with self._lock:
                if self._stopping.is_set() or self.alive():
                    continue
                self._killpg(signal.SIGKILL)  # orphans of the dead process
                self._spawn()

    def wait_restarted(self, starts: int, timeout: float = 60.0) -> None:
        """Wait until the supervisor started it again after ``starts`` starts."""
        deadline = time.monotonic() + timeout
        while self.starts <= starts:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not restarted in {timeout}s")
            time.sleep(0.05)
        self.wait_ready(timeout)

    def _killpg(self, signum: int) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the process and everything it started, like a lost machine."""
        self._killpg(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def kill_child(self) -> int | None:
        """SIGKILL one child process (a pool process of a worker); its pid."""
        for pid in self.children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                return pid
        return None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a warm shutdown), then SIGKILL whatever of the group is left."""
        self._stopping.set()
        with self._lock:
            if self.process is not None and self.alive():
                self.process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=timeout)
            self._killpg(signal.SIGKILL)
            if self.process is not None:
                self.process.wait()


class Worker(Supervised):
    """``celery -A <app> worker``: by default consuming every subscriber's
    queue as its own settings name them; ``queues`` picks some."""

    ready_marker = "ready."

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        queues: Sequence[str] | None = None,
        app: str = "portal",
        concurrency: int = 2,
        loglevel: str = "INFO",
        name: str = "worker",
        supervise: bool = False,
    ) -> None:
        only = [f"--queues={','.join(queues)}"] if queues else []
        argv = [
            sys.executable, "-m", "celery", "-A", app, "worker",
            f"--loglevel={loglevel}", f"--concurrency={concurrency}", *only,
            "--without-mingle", "--without-gossip",
            f"--hostname={name}-{os.getpid()}-{time.monotonic_ns()}@%h",
        ]  # fmt: skip
        super().__init__(argv, env, log_path, supervise=supervise)

    def crashed(self) -> bool:
        """The main process died or gave up (Celery's "Unrecoverable error")."""
        return not self.alive() or "Unrecoverable error" in self.log()

    def lost_children(self) -> int:
        """Pool processes that died under a task (Celery logs each one)."""
        return len(re.findall(r"Process '\S+' pid:\d+ exited with", self.log()))


class RelayProcess(Supervised):
    """``manage.py relay_outbox``: routes what is logged to the subscribers."""

    ready_marker = "Relay started"

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        args: Sequence[str] = (),
        supervise: bool = False,
    ) -> None:
        super().__init__(
            [sys.executable, "manage.py", "relay_outbox", *args],
            env,
            log_path,
            supervise=supervise,
        )
