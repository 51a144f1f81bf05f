"""``make flower`` (``manage.py flower``) never serves Flower without a login
unless told to, on loopback only, and says what to set when it refuses."""

import base64
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from django.core.management.base import CommandError

from portal.messaging.management.commands.flower import flower_command

ROOT = settings.BASE_DIR


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"FLOWER_BASIC_AUTH": ""},
        {"FLOWER_ADDRESS": "127.0.0.1"},
        {"FLOWER_ALLOW_NO_AUTH": "0"},
    ],
)
def test_without_a_login_it_refuses_and_says_what_to_set(env):
    with pytest.raises(CommandError) as refused:
        flower_command(env)
    message = str(refused.value)
    assert "FLOWER_BASIC_AUTH=user:password" in message
    assert "FLOWER_ALLOW_NO_AUTH=1" in message


@pytest.mark.parametrize("address", ["0.0.0.0", "", "192.0.2.10", "::", "example.com"])
def test_no_login_is_refused_off_loopback_even_when_asked(address):
    with pytest.raises(CommandError, match="only on a loopback address"):
        flower_command({"FLOWER_ALLOW_NO_AUTH": "1", "FLOWER_ADDRESS": address})


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_no_login_on_loopback_when_asked_explicitly(address):
    argv, env = flower_command({"FLOWER_ALLOW_NO_AUTH": "1", "FLOWER_ADDRESS": address})
    assert argv[1:] == [
        "-m", "celery", "-A", "portal", "flower",
        f"--address={address}", "--port=5555",
    ]  # fmt: skip
    assert "FLOWER_BASIC_AUTH" not in env


@pytest.mark.parametrize(
    "value", ["admin", ":secret", "admin:", "admin:secret,other", "a:b, :c"]
)
def test_a_malformed_login_is_refused(value):
    with pytest.raises(CommandError, match="user:password"):
        flower_command({"FLOWER_BASIC_AUTH": value, "FLOWER_ADDRESS": "0.0.0.0"})


def test_the_login_reaches_flower_by_its_environment_not_its_arguments():
    argv, env = flower_command(
        {"FLOWER_BASIC_AUTH": "admin:s3cret,ops:other", "FLOWER_PORT": "5601"}
    )
    assert argv[-2:] == ["--address=127.0.0.1", "--port=5601"]
    assert not any("s3cret" in arg for arg in argv)  # not visible in `ps`
    assert env["FLOWER_BASIC_AUTH"] == "admin:s3cret,ops:other"


def test_make_flower_runs_the_command():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nflower:", 1)[1].split("\n\n", 1)[0]
    assert "manage.py flower" in recipe
    assert "celery" not in recipe


def _run(extra_env: dict[str, str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings.base",
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        PORTAL_VAR_DIR=str(settings.VAR_DIR),
        **extra_env,
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "flower"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_manage_py_flower_exits_with_the_message():
    process = _run({"FLOWER_ADDRESS": "0.0.0.0"})
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "FLOWER_BASIC_AUTH=user:password" in output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, credentials: str | None = None) -> int:
    request = urllib.request.Request(url)
    if credentials:
        token = base64.b64encode(credentials.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_flower_started_by_the_command_asks_for_the_login():
    port = _free_port()
    process = _run({"FLOWER_BASIC_AUTH": "admin:s3cret", "FLOWER_PORT": str(port)})
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status = _get(url)
                break
            except OSError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "Flower did not start in 60 s"
                time.sleep(0.2)
        assert status == 401
        assert _get(url, "admin:wrong") == 401
        assert _get(url, "admin:s3cret") == 200
        assert _get(f"http://127.0.0.1:{port}/api/workers", "admin:s3cret") == 200
        assert _get(f"http://127.0.0.1:{port}/api/workers") == 401
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
