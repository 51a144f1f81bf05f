"""Subprocesses the benchmark starts, and a peak-RSS sampler for them."""

import socket
import sys
import threading
import time
from pathlib import Path

import psutil

from portal.testing.processes import Supervised

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


class Proc(Supervised):
    """A subprocess of the benchmark, started at once in its own process group
    (the harness's ``Supervised``), its output in ``<log_dir>/<name>.log``;
    ``stop()`` asks it to stop, then kills what is left of the group."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_dir: Path
    ) -> None:
        self.name = name
        super().__init__(args, env, log_dir / f"{name}.log", cwd=ROOT)
        self.spawn()


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


def ensure_vhost() -> None:
    """Create the bench vhost if the broker answers that it does not exist
    (needs rabbitmqctl); never because the broker is down or slow."""
    import os
    import shutil
    import subprocess
    from urllib.parse import urlsplit

    from portal.testing.broker import vhost_missing

    if not vhost_missing(os.environ["CELERY_BROKER_URL"]):
        return
    url = urlsplit(os.environ["CELERY_BROKER_URL"])
    vhost = url.path.lstrip("/") or "/"
    user = url.username or "guest"
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    print(f"Creating RabbitMQ vhost {vhost!r} with {ctl}", flush=True)
    subprocess.run([ctl, "add_vhost", vhost], check=False, capture_output=True)
    subprocess.run(
        [ctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )


def recreate_database(env: dict[str, str]) -> None:
    """Drop, create and migrate ``DATABASE_URL``'s database: only one named
    ``portal_bench…``, or the one ``BENCH_DATABASE_DISPOSABLE`` names (a
    database of one's own), never another."""
    import os
    import subprocess
    from urllib.parse import urlsplit

    import psycopg

    url = urlsplit(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    if not name.startswith("portal_bench") and name != os.environ.get(
        "BENCH_DATABASE_DISPOSABLE"
    ):
        raise SystemExit(
            f"refusing to recreate {name!r}: not a bench database (set "
            "BENCH_DATABASE_DISPOSABLE to its name if it may be dropped)"
        )
    admin = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )


def ensure_database() -> None:
    """Create ``DATABASE_URL``'s database if it does not exist (never drops
    anything; migrating is the caller's)."""
    import os
    from urllib.parse import urlsplit

    import psycopg

    url = urlsplit(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    admin = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
