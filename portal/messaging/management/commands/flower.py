"""``manage.py flower`` (``make flower``): Flower on the configured broker,
never open to anyone by accident.

Flower shows every task's arguments and can shut workers down, so it needs a
login: ``FLOWER_BASIC_AUTH=user:password`` (several: ``a:pw1,b:pw2``).
Without one it starts only when asked explicitly and only on loopback:
``FLOWER_ALLOW_NO_AUTH=1`` with ``FLOWER_ADDRESS`` a loopback address (the
default, 127.0.0.1). The login reaches Flower through its environment, which
it reads itself (as in docker-compose.yml), never on the command line, where
``ps`` would show it.
"""

import ipaddress
import os
import sys
from collections.abc import Mapping

from django.core.management.base import BaseCommand, CommandError

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = "5555"
YES = {"1", "true", "yes", "on"}

HOW_TO = (
    "set FLOWER_BASIC_AUTH=user:password (several: a:pw1,b:pw2), or, to run "
    "without a login on this machine only, FLOWER_ALLOW_NO_AUTH=1 with "
    "FLOWER_ADDRESS=127.0.0.1"
)


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _check_logins(value: str) -> None:
    for entry in value.split(","):
        user, sep, password = entry.strip().partition(":")
        if not (user and sep and password):
            raise CommandError(
                "FLOWER_BASIC_AUTH must be user:password, or several separated "
                "by commas (neither may be empty, and a password cannot hold a "
                "comma)."
            )


def flower_command(environ: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment to run Flower with, from ``environ``.

    Raises CommandError, saying what to set, when Flower would be reachable
    without a login by anyone but this machine, or was not explicitly allowed
    to run without one.
    """
    address = environ.get("FLOWER_ADDRESS", DEFAULT_ADDRESS).strip()
    port = environ.get("FLOWER_PORT", DEFAULT_PORT).strip()
    logins = environ.get("FLOWER_BASIC_AUTH", "").strip()
    env = dict(environ)
    if logins:
        _check_logins(logins)
        env["FLOWER_BASIC_AUTH"] = logins
    else:
        env.pop("FLOWER_BASIC_AUTH", None)
        if environ.get("FLOWER_ALLOW_NO_AUTH", "").strip().lower() not in YES:
            raise CommandError(f"Flower needs a login: {HOW_TO}.")
        if not _is_loopback(address):
            raise CommandError(
                f"Flower without a login runs only on a loopback address, not "
                f"on {address or 'every interface'!r}: {HOW_TO}."
            )
    argv = [
        sys.executable, "-m", "celery", "-A", "portal", "flower",
        f"--address={address}", f"--port={port}",
    ]  # fmt: skip
    return argv, env


class Command(BaseCommand):
    help = (
        "Run Flower on the configured broker, with the login from "
        "FLOWER_BASIC_AUTH (refuses to start without one unless "
        "FLOWER_ALLOW_NO_AUTH=1 on a loopback FLOWER_ADDRESS)."
    )
    requires_system_checks: list = []

    def handle(self, *args, **options):
        argv, env = flower_command(os.environ)
        address, port = argv[-2].split("=", 1)[1], argv[-1].split("=", 1)[1]
        host = f"[{address}]" if ":" in address else address
        login = "with a login" if "FLOWER_BASIC_AUTH" in env else "WITHOUT a login"
        self.stderr.write(f"Flower on http://{host}:{port}/ ({login})")
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(argv[0], argv, env)
