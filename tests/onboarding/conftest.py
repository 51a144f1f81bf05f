"""Fixtures for onboarding: a real SMTP server process, the stand-in directory
service process, onboarding switched on, and a worker of the test's own."""

import mailbox
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from kombu import Connection

from onboarding.directory import directory_forget_process_state
from onboarding.subscriptions import ONBOARDING_ACCOUNTS, ONBOARDING_MAIL
from portal.messaging.subscriptions import (
    subscription_register,
    subscription_unregister,
)
from registrar.subscriptions import REGISTRAR_ONBOARDING
from tests.conftest import WorkerProcess
from tests.messaging.conftest import private_worker  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY_SCRIPT = ROOT / "examples" / "directory_service.py"
ONBOARDING_SUBSCRIPTIONS = (REGISTRAR_ONBOARDING, ONBOARDING_MAIL, ONBOARDING_ACCOUNTS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early ({process.returncode})")
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on {port}")
        time.sleep(0.05)


class DirectoryProcess:
    """examples/directory_service.py in a process of its own."""

    def __init__(self, log_path: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, str(DIRECTORY_SCRIPT), "--port", str(self.port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.process, "the directory service")
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def control(self, **knobs: Any) -> dict:
        return self.http.post("/control", json=knobs).raise_for_status().json()

    def stats(self) -> dict:
        return self.http.get("/stats").raise_for_status().json()

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def directory(tmp_path) -> Iterator[DirectoryProcess]:
    service = DirectoryProcess(tmp_path / "directory.log")
    yield service
    service.stop()


class SmtpProcess:
    """aiosmtpd's own server (``python -m aiosmtpd``) in a process, storing
    what it receives in a Maildir; can be stopped and started again on the
    same port."""

    def __init__(self, path: Path) -> None:
        self.port = free_port()
        self.maildir = path / "maildir"
        self.log_path = path / "smtp.log"
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "aiosmtpd", "-n",
                    "-l", f"127.0.0.1:{self.port}",
                    "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir),
                ],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for_port(self.port, self.process, "the SMTP server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def messages(self) -> list:
        if not self.maildir.exists():
            return []
        return list(mailbox.Maildir(self.maildir, create=False))


@pytest.fixture
def smtp_server(tmp_path) -> Iterator[SmtpProcess]:
    server = SmtpProcess(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def onboarding_enabled(settings) -> Iterator[None]:
    """Onboarding on in this test process: registrations start it, and the
    replies and commands are routed (the workers get ONBOARDING_ENABLED=1)."""
    settings.ONBOARDING_ENABLED = True
    for subscription in ONBOARDING_SUBSCRIPTIONS:
        subscription_register(subscription)
    directory_forget_process_state()
    yield
    for subscription in ONBOARDING_SUBSCRIPTIONS:
        subscription_unregister(subscription.name)
    directory_forget_process_state()


@pytest.fixture
def use_directory(settings, directory, onboarding_enabled) -> DirectoryProcess:
    """This test process calls ``directory`` (with short timeouts)."""
    settings.ONBOARDING_DIRECTORY_URL = directory.url
    settings.ONBOARDING_DIRECTORY_READ_TIMEOUT = 3
    directory_forget_process_state()
    return directory


def onboarding_queue_names(prefix: str) -> dict[str, str]:
    return {
        "ONBOARDING_MAIL_QUEUE": f"{prefix}-mail",
        "ONBOARDING_ACCOUNTS_QUEUE": f"{prefix}-accounts",
        "REGISTRAR_ONBOARDING_QUEUE": f"{prefix}-registrar",
    }


@pytest.fixture
def onboarding_worker(
    private_worker,  # noqa: F811 - the fixture imported above
    onboarding_enabled,
    settings,
    smtp_server,
    directory,
) -> Iterator[Callable[..., WorkerProcess]]:
    """``start(prefix, **env)``: a worker of the test's own consuming the
    feed's, the audit's and onboarding's queues (all private to the test),
    sending mail to ``smtp_server`` and calling ``directory``, with short
    retry delays and breaker period."""
    prefixes: list[str] = []
    workers: list[WorkerProcess] = []

    def start(prefix: str, concurrency: int = 2, **env: str) -> WorkerProcess:
        names = onboarding_queue_names(prefix)
        for name, value in names.items():
            setattr(settings, name, value)
        prefixes.append(prefix)
        defaults = {
            "ONBOARDING_ENABLED": "1",
            "EMAIL_URL": smtp_server.url,
            "EMAIL_TIMEOUT": "5",
            "ONBOARDING_DIRECTORY_URL": directory.url,
            "ONBOARDING_DIRECTORY_READ_TIMEOUT": "5",
            "ONBOARDING_MAIL_RETRY_DELAYS": "1,2,3,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5",
            "ONBOARDING_ACCOUNTS_RETRY_DELAYS": "1,2,3,5,5,5,5,5,5,5,5,5,5,5,5,5,5",
            "ONBOARDING_BREAKER_RESET_SECONDS": "3",
            "ONBOARDING_DIRECTORY_RATE_LIMIT": "200",
            "LOG_LEVEL": "INFO",
        }
        worker = private_worker(
            prefix, concurrency=concurrency, **names, **{**defaults, **env}
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:  # before their queues go
        worker.stop()
    with Connection(settings.CELERY_BROKER_URL) as conn:
        channel = conn.channel()
        for prefix in prefixes:
            for name in onboarding_queue_names(prefix).values():
                for queue in (name, f"{name}.dead"):
                    with suppress(Exception):
                        channel.queue_delete(queue)
        channel.close()


def kill_pool_processes(worker: WorkerProcess) -> list[int]:
    """SIGKILL the worker's pool processes (its children), as an OOM kill
    would; the worker's main process starts new ones."""
    pid = worker.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        with suppress(ProcessLookupError):
            os.kill(int(child), signal.SIGKILL)
    return [int(c) for c in children]
