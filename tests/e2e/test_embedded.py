"""The embedded default: no DATABASE_URL, no CELERY_BROKER_URL, no servers.

Everything runs in subprocesses on a fresh ``PORTAL_VAR_DIR``: an SQLite file
and kombu's filesystem transport, a real Celery worker, the relay command.
"""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, WorkerProcess
from tests.helpers import wait_for

REGISTER = """
from portal.messaging.wakeup import background
from registrar.models import Department
from registrar.services import department_create, employee_register
department = Department.objects.first() or department_create(name="Platform")
employee_register(
    full_name="{name}", email="{email}", position="SRE", department=department
)
assert background().flush(timeout=20)
"""


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "OUTBOX_PUBLISH_MODE"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings.base", PORTAL_VAR_DIR=str(tmp_path)
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def feed_texts(var_dir: str) -> list[str]:
    with sqlite3.connect(Path(var_dir) / "portal.sqlite3") as db:
        return [
            row[0] for row in db.execute("SELECT text FROM feed_feedevent ORDER BY id")
        ]


def test_the_whole_path_works_without_any_server(embedded_env, tmp_path):
    manage(embedded_env, "migrate", "--noinput", "-v0")
    worker = WorkerProcess(embedded_env, tmp_path / "worker.log", concurrency=1)
    try:
        worker.wait_ready()
        # The after-commit fast path, from a background publisher thread.
        manage(
            embedded_env, "shell", "-c", REGISTER.format(name="Anna", email="a@x.io")
        )
        var_dir = embedded_env["PORTAL_VAR_DIR"]

        def first_event_applied():
            """the worker applied the first registration"""
            return len(feed_texts(var_dir)) == 1

        wait_for(first_event_applied, timeout=30)
        # The relay path: nothing published after commit, the relay sends it.
        relay_env = embedded_env | {"OUTBOX_PUBLISH_MODE": "off"}
        manage(relay_env, "shell", "-c", REGISTER.format(name="Boris", email="b@x.io"))
        assert "Relayed 1 event(s)." in manage(
            relay_env, "relay_outbox", "--once", "--grace", "0"
        )

        def second_event_applied():
            """the worker applied the relayed registration"""
            return len(feed_texts(var_dir)) == 2

        wait_for(second_event_applied, timeout=30)
        assert feed_texts(var_dir) == [
            "Anna joined the company as SRE in Platform",
            "Boris joined the company as SRE in Platform",
        ]
        assert worker.alive()
    finally:
        worker.stop()
