"""Which process this is: its kind (web, relay, worker, command), host and pid.

Journey hops, log lines and metrics name the process that did something.
The entry points say what they are (``process_kind_set``); otherwise the
command line tells.
"""

import os
import socket
import sys

_kind: list[str] = []


def process_kind_set(kind: str) -> None:
    """Called by an entry point (the relay, a worker, gunicorn) at start."""
    _kind[:] = [kind]


def process_kind() -> str:
    if _kind:
        return _kind[0]
    if os.environ.get("PORTAL_PROCESS_KIND"):
        return os.environ["PORTAL_PROCESS_KIND"]
    argv = " ".join(sys.argv[:4])
    if "gunicorn" in argv or "runserver" in argv:
        return "web"
    if "relay_outbox" in argv:
        return "relay"
    if " worker" in argv and "celery" in argv:
        return "worker"
    if "pytest" in argv:
        return "test"
    return "command"


def process_label() -> str:
    """``kind host:pid``, as journeys and logs show it."""
    return f"{process_kind()} {socket.gethostname()}:{os.getpid()}"
