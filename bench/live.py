"""Live push to open feed pages: how long from an event's application (the
feed's commit) until every open page has it.

``measure_live(clients=200, events=50)`` starts a web server as it runs in
production (gunicorn with one uvicorn worker, ``portal.asgi``), opens
``clients`` Server-Sent-Event streams of ``/feed/live/`` with a plain asyncio
client (one TCP connection each, like a browser tab), then applies
``events`` feed events one after another, each exactly as the feed's task
does (``feed_events_apply``, then the announcement after the commit). Each
announcement carries the moment it was applied; each stream notes when the
card reached it. Latency = arrival - application, per (stream, event);
every one is counted (``delivered`` of ``expected``), none sampled.

Run on its own (PostgreSQL and RabbitMQ from the environment):

    DATABASE_URL=… CELERY_BROKER_URL=… python -m bench.live --clients 200 --events 50

``bench/run.py`` calls it for the ``make bench`` row.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_P99_MS = 250.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_cookie() -> str:
    """A logged-in Staff session for the streams (one user, as 200 tabs)."""
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore

    from portal.roles import STAFF_GROUP

    user, _ = get_user_model().objects.get_or_create(username="bench-live")
    user.groups.add(Group.objects.get(name=STAFF_GROUP))
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def web_server(
    port: int, log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """The web server as production runs it: gunicorn, one uvicorn worker."""
    env = dict(env or os.environ)
    env["DJANGO_SETTINGS_MODULE"] = env.get(
        "BENCH_LIVE_SETTINGS", "portal.settings.base"
    )
    env.setdefault("OUTBOX_PUBLISH_MODE", "off")
    env["PYTHONPATH"] = str(ROOT)
    log = open(log_path, "w")  # noqa: SIM115 - the process owns it
    return subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "portal.asgi:application",
            "--worker-class", "uvicorn_worker.UvicornWorker", "--workers", "1",
            "--bind", f"127.0.0.1:{port}", "--backlog", "2048",
        ],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


class Stream:
    """One open page's event stream: a raw HTTP/1.1 GET of /feed/live/."""

    def __init__(self, port: int, cookie: str, path: str = "/feed/live/") -> None:
        self.port, self.cookie, self.path = port, cookie, path
        self.ready = asyncio.Event()
        self.arrivals: dict[int, float] = {}  # feed id -> when it arrived
        self.applied: dict[int, float] = {}  # feed id -> when it was applied
        self.reactions: list[dict] = []  # reaction counts pushed
        self.task: asyncio.Task | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def run(self) -> None:
        reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Cookie: sessionid={self.cookie}\r\n"
                "Accept: text/event-stream\r\n\r\n"
            ).encode()
        )
        await self.writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"stream refused: {status!r}")
        event = ""
        while line := await reader.readline():
            text = line.decode().rstrip("\r\n")
            if text.startswith("event: "):
                event = text[7:]
            elif text.startswith("data: "):
                now = time.time()
                if event == "ready":
                    self.ready.set()
                elif event == "cards":
                    data = json.loads(text[6:])
                    for feed_id in data["ids"]:
                        self.arrivals.setdefault(feed_id, now)
                        self.applied[feed_id] = data["applied_at"]
                elif event == "reactions":
                    self.reactions.append(json.loads(text[6:]))
            elif not text:
                event = ""

    def close(self) -> None:
        if self.task:
            self.task.cancel()
        if self.writer:
            self.writer.close()


def apply_one(n: int, department_id: int = 1) -> tuple[int, float]:
    """One event applied as the feed's task applies it; (its id, when)."""
    from feed.live import feed_live_announce_applied_unsafe
    from feed.services import feed_events_apply

    envelope = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/bench/live",
        "type": "employee.registered",
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "dataschemaversion": 2,
        "data": {
            "employee_id": 10_000 + n,
            "full_name": f"Live Bench {n}",
            "position": "Engineer",
            "department_id": department_id,
            "department": "Bench",
            "team_id": None,
            "team": None,
        },
    }
    result = feed_events_apply(envelopes=[envelope])
    applied = time.time()
    feed_live_announce_applied_unsafe(list(result.created_ids))
    return result.created_ids[0], applied


async def _measure(port: int, cookie: str, clients: int, events: int, gap: float):
    streams = [Stream(port, cookie) for _ in range(clients)]
    for stream in streams:
        stream.task = asyncio.create_task(stream.run())
        await asyncio.sleep(0.002)  # a browser-like ramp, not a SYN flood
    try:
        await asyncio.wait_for(
            asyncio.gather(*(s.ready.wait() for s in streams)), timeout=60
        )
        loop = asyncio.get_running_loop()
        applied: dict[int, float] = {}
        for n in range(events):
            feed_id, at = await loop.run_in_executor(None, apply_one, n)
            applied[feed_id] = at
            await asyncio.sleep(gap)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
            len(s.arrivals) >= events for s in streams
        ):
            await asyncio.sleep(0.05)
    finally:
        for stream in streams:
            stream.close()
    latencies = [
        (stream.arrivals[feed_id] - at) * 1000
        for stream in streams
        for feed_id, at in applied.items()
        if feed_id in stream.arrivals
    ]
    return latencies, clients * events


def wait_listening(server: subprocess.Popen, port: int, log_path: Path) -> None:
    import socket

    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(
                    "web server did not start: " + log_path.read_text()[-2000:]
                ) from None
            time.sleep(0.1)


def measure_live(
    *,
    clients: int = 200,
    events: int = 50,
    gap: float = 0.1,
    log_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """Open ``clients`` streams, apply ``events`` events ``gap`` seconds apart,
    and return the latencies' percentiles (ms) with the counts. ``env``: the
    web server's environment (by default this process's)."""
    import django

    django.setup()
    from django.db import connection

    port = _free_port()
    log_dir = log_dir or Path(os.environ.get("PORTAL_VAR_DIR", "/tmp")) / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "live-web.log"
    server = web_server(port, log_path, env)
    try:
        wait_listening(server, port, log_path)
        cookie = session_cookie()
        connection.close()
        latencies, expected = asyncio.run(_measure(port, cookie, clients, events, gap))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    return {
        "clients": clients,
        "events": events,
        "expected": expected,
        "delivered": len(latencies),
        "p50_ms": _percentile(latencies, 50),
        "p95_ms": _percentile(latencies, 95),
        "p99_ms": _percentile(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
        "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
        "target_p99_ms": TARGET_P99_MS,
    }


def markdown_row(result: dict) -> str:
    met = (
        result["delivered"] == result["expected"]
        and result["p99_ms"] <= result["target_p99_ms"]
    )
    return (
        f"| live push to {result['clients']} open pages, application to arrival "
        f"p50 / p99 ({result['events']} events, {result['delivered']} of "
        f"{result['expected']} arrivals) | {result['p50_ms']:.0f} / "
        f"{result['p99_ms']:.0f} ms | p99 ≤ {result['target_p99_ms']:.0f} ms: "
        f"{'met' if met else '**missed**'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.base")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    result = measure_live(clients=args.clients, events=args.events, gap=args.gap)
    print(json.dumps(result, indent=2))
    print(markdown_row(result))


if __name__ == "__main__":
    main()


def results_section(result: dict) -> str:
    """The section ``bench/run.py`` appends to the results file."""
    return (
        "\n## Live push to open pages\n\n"
        f"{result['clients']} Server-Sent-Event streams of `/feed/live/` on one "
        "web process (gunicorn, one uvicorn worker), "
        f"{result['events']} events applied one by one as the feed's task "
        "applies them; latency = arrival at a stream - the feed's commit, every "
        "(stream, event) counted (`bench/live.py`).\n\n"
        "| measurement | result | target |\n|---|---|---|\n"
        + markdown_row(result)
        + f"\n\np95 {result['p95_ms']:.0f} ms, max {result['max_ms']:.0f} ms.\n"
    )
