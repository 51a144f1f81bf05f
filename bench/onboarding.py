"""Onboarding rows of ``make bench``: registration latency beside slow or
down outside services, and the time from registration to ``ready``.

1. **Registration latency** with the directory answering in 0 ms, in 2 s, and
   down (connections reset): our design (``ours``: the registration commits
   its event and returns; the workers mail and provision afterwards) against
   the no-event floor and the old design doing the same two calls (SMTP
   mail, directory POST) synchronously in the request (``sync``). Each p99
   is compared to the floor's; the target is ours ≤ 1.25 x floor.
2. **Registration to ready** at 50 registrations/s with a healthy directory:
   p50/p99 of ``Onboarding.ready_at - Employee.created_at``.

Everything runs as subprocesses: two gunicorn servers
(``bench/onboarding_site.py``), a Celery worker consuming every queue, the
relay, an aiosmtpd SMTP server and the stand-in directory service.
``bench/run.py`` calls ``bench_onboarding`` and puts ``onboarding_markdown``
in its results; ``python -m bench.onboarding [--quick]`` runs it alone on
``DATABASE_URL`` (created if missing, then migrated) and
``CELERY_BROKER_URL`` (its vhost created if missing).
"""

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STATES = {
    "0 ms": {"latency_ms": 0, "down": False},
    "2 s": {"latency_ms": 2000, "down": False},
    "down": {"latency_ms": 0, "down": True, "down_mode": "reset"},
}
VARIANTS = ("floor", "ours", "sync")
TARGET_RATIO = 1.25


def percentile(values: list[float], q: float) -> float:
    """The ``q`` (0-100) percentile, nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(latencies: list[float], errors: int = 0) -> dict[str, Any]:
    return {
        "n": len(latencies),
        "errors": errors,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def registration_verdicts(registration: dict[str, dict[str, dict]]) -> dict:
    """Per directory state: ours' and the old design's p99 against the
    floor's, and whether ours meets the target."""
    verdicts = {}
    for state, variants in registration.items():
        floor = variants["floor"]["p99_ms"]
        ours = variants["ours"]["p99_ms"]
        sync = variants["sync"]
        verdicts[state] = {
            "ours_vs_floor": ours / floor if floor else math.nan,
            "sync_vs_floor": sync["p99_ms"] / floor if floor else math.nan,
            "met": ours <= TARGET_RATIO * floor and variants["ours"]["errors"] == 0,
        }
    return verdicts


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def onboarding_markdown(results: dict[str, Any]) -> list[str]:
    """The results section, as Markdown lines."""
    registration = results["registration"]
    verdicts = registration_verdicts(registration)
    lines = [
        "## Onboarding: registration beside slow outside services",
        "",
        f"Registration latency (ms) with the directory answering in 0 ms, in 2 s "
        f"and down; {results['requests']} requests per variant and state at "
        f"{results['rate']:g}/s. `ours` commits the event and returns (the "
        "workers mail and provision afterwards); `sync` is the old design doing "
        "the welcome mail and the directory call in the request. Target: ours "
        f"p99 ≤ {TARGET_RATIO} x the floor's.",
        "",
        "| directory | floor p50 / p99 | ours p50 / p99 | old design p50 / p99 "
        "(errors) | ours / floor p99 | old / floor p99 | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for state, variants in registration.items():
        floor, ours, sync = (variants[v] for v in VARIANTS)
        verdict = verdicts[state]
        lines.append(
            f"| {state} | {_fmt(floor['p50_ms'])} / {_fmt(floor['p99_ms'])} "
            f"| {_fmt(ours['p50_ms'])} / {_fmt(ours['p99_ms'])} "
            f"| {_fmt(sync['p50_ms'])} / {_fmt(sync['p99_ms'])} ({sync['errors']}) "
            f"| {verdict['ours_vs_floor']:.2f} x | {verdict['sync_vs_floor']:.2f} x "
            f"| {'met' if verdict['met'] else '**missed**'} |"
        )
    ready = results["ready"]
    lines += [
        "",
        f"Registration to `ready` (both steps done, the registrar's status "
        f"updated) at {ready['rate']:g} registrations/s for "
        f"{ready['registrations']} registrations, directory at 0 ms: p50 "
        f"{_fmt(ready['p50_ms'])} ms, p99 {_fmt(ready['p99_ms'])} ms "
        f"({ready['ready']} of {ready['registrations']} ready, "
        f"{ready['registration_errors']} registration errors).",
        "",
    ]
    return lines


# --- The run ----------------------------------------------------------------------


def _env(**overrides: str) -> dict[str, str]:
    result = dict(os.environ)
    result["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + result["PYTHONPATH"] if result.get("PYTHONPATH") else ""
    )
    result.update(overrides)
    return result


def _load(url: str, n: int, rate: float, out: Path, warmup: int) -> dict:
    subprocess.run(
        [
            sys.executable, "-m", "bench.loadgen", url, "--n", str(n),
            "--rate", str(rate), "--warmup", str(warmup), "--out", str(out),
        ],
        cwd=ROOT, env=_env(), check=True,
    )  # fmt: skip
    return json.loads(out.read_text())


def _control(url: str, **knobs: Any) -> None:
    import httpx

    httpx.post(f"{url}/control", json=knobs, timeout=10).raise_for_status()


def _query(sql: str, params: list[Any] | None = None) -> list[tuple]:
    import psycopg

    url = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    for attempt in range(60):
        try:
            with psycopg.connect(url) as conn:
                return conn.execute(sql, params or []).fetchall()
        except psycopg.OperationalError:
            # A shared server out of connections for a moment: wait.
            if attempt == 59:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def _pending() -> int:
    """Onboardings not ready yet."""
    return _query("SELECT count(*) FROM registrar_onboarding WHERE status <> 'ready'")[
        0
    ][0]


def _ready_latencies(run: str) -> tuple[list[float], int]:
    """(ready_at - created_at) of the run's employees that are ready, and
    how many were registered."""
    rows = _query(
        """
        SELECT extract(epoch FROM o.ready_at - e.created_at)
        FROM registrar_employee e
        JOIN registrar_department d ON d.id = e.department_id
        LEFT JOIN registrar_onboarding o ON o.employee_id = e.id
        WHERE d.name = %s
        """,
        [run],
    )
    return [float(r[0]) for r in rows if r[0] is not None], len(rows)


def bench_onboarding(*, logs: Path, quick: bool = False, log=print) -> dict[str, Any]:
    """Run both measurements; returns the results for ``onboarding_markdown``.

    Needs ``DATABASE_URL`` (migrated) and ``CELERY_BROKER_URL`` (RabbitMQ) in
    the environment; starts and stops every process it uses.
    """
    from bench.procs import Proc, free_port, wait_port

    requests = 60 if quick else 300
    rate = 10.0
    ready_count = 100 if quick else 1000
    ready_rate = 50.0
    logs.mkdir(parents=True, exist_ok=True)
    smtp_port, directory_port = free_port(), free_port()
    ours_port, other_port = free_port(), free_port()
    directory_url = f"http://127.0.0.1:{directory_port}"
    common = {
        "DJANGO_SETTINGS_MODULE": "bench.onboarding_site",
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "ONBOARDING_DIRECTORY_URL": directory_url,
        "ONBOARDING_DIRECTORY_READ_TIMEOUT": "5",
        "ONBOARDING_DIRECTORY_RATE_LIMIT": "0",
        "OUTBOX_PUBLISH_MODE": "notify",
        "LOG_LEVEL": "WARNING",
    }
    log("Onboarding: starting the SMTP server, the directory, two web servers")
    procs = [
        Proc(
            "onb-smtp",
            [
                sys.executable,
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                f"127.0.0.1:{smtp_port}",
                "-c",
                "aiosmtpd.handlers.Sink",
            ],
            _env(),
            logs,
        ),  # fmt: skip
        Proc(
            "onb-directory",
            [
                sys.executable,
                "examples/directory_service.py",
                "--port",
                str(directory_port),
            ],
            _env(),
            logs,
        ),  # fmt: skip
    ]
    try:
        wait_port(smtp_port)
        wait_port(directory_port)
        for name, port, enabled in (
            ("onb-web-ours", ours_port, "1"),
            ("onb-web-floor-sync", other_port, "0"),
        ):
            procs.append(
                Proc(
                    name,
                    [
                        sys.executable,
                        "-m",
                        "gunicorn",
                        "django.core.wsgi:get_wsgi_application()",
                        "-b",
                        f"127.0.0.1:{port}",
                        "-w",
                        "2",
                        "-k",
                        "gthread",
                        "--threads",
                        "16",
                        "--log-level",
                        "warning",
                    ],
                    _env(**common, ONBOARDING_ENABLED=enabled),
                    logs,
                )  # fmt: skip
            )
            wait_port(port)
        procs.append(
            Proc(
                "onb-worker",
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "worker",
                    "--loglevel=WARNING",
                    "--concurrency=4",
                    "--without-mingle",
                    "--without-gossip",
                    "-n",
                    "onb-bench@%h",
                ],
                _env(**common, ONBOARDING_ENABLED="1"),
                logs,
            )  # fmt: skip
        )
        procs.append(
            Proc(
                "onb-relay",
                [sys.executable, "manage.py", "relay_outbox"],
                _env(**common, ONBOARDING_ENABLED="1"),
                logs,
            )
        )
        time.sleep(5)  # the worker declares its queues and starts consuming

        urls = {
            "ours": f"http://127.0.0.1:{ours_port}/bench/onboarding/ours/",
            "floor": f"http://127.0.0.1:{other_port}/bench/onboarding/floor/",
            "sync": f"http://127.0.0.1:{other_port}/bench/onboarding/sync/",
        }
        registration: dict[str, dict[str, dict]] = {}
        rounds = 2
        for state, knobs in STATES.items():
            _control(directory_url, **knobs)
            gathered = {v: ([], 0) for v in VARIANTS}
            for round_ in range(rounds):
                for variant in VARIANTS:
                    result = _load(
                        urls[variant] + f"?run=latency-{state.replace(' ', '')}",
                        requests // rounds,
                        rate,
                        logs / f"onb-load-{variant}-{state.replace(' ', '')}.json",
                        warmup=10 if round_ == 0 else 2,
                    )
                    latencies, errors = gathered[variant]
                    gathered[variant] = (
                        latencies + result["latencies"],
                        errors + result["errors"],
                    )
            registration[state] = {
                v: summarize(lat, err) for v, (lat, err) in gathered.items()
            }
            log(f"  directory {state}: {registration[state]}")

        _control(directory_url, latency_ms=0, down=False)
        # The backlog of the down state first: the breaker closes and every
        # earlier registration is ready, so the next run starts on a calm
        # pipeline.
        deadline = time.monotonic() + 300
        while _pending() and time.monotonic() < deadline:
            time.sleep(1)
        run = f"ready-{int(time.time())}"
        result = _load(
            urls["ours"] + f"?run={run}",
            ready_count,
            ready_rate,
            logs / "onb-load-ready.json",
            warmup=0,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            latencies, registered = _ready_latencies(run)
            if registered and len(latencies) == registered:
                break
            time.sleep(1)
        ready = summarize(latencies)
        ready.update(
            rate=ready_rate,
            registrations=registered,
            ready=len(latencies),
            registration_errors=result["errors"],
        )
        log(f"  registration to ready: {ready}")
    finally:
        for proc in reversed(procs):
            proc.stop()
    return {
        "requests": requests,
        "rate": rate,
        "registration": registration,
        "verdicts": registration_verdicts(registration),
        "ready": ready,
    }


def onboarding_write(directory: Path, name: str, results: dict[str, Any]) -> None:
    """Add the section to ``<name>.md`` (after what is there) and the
    numbers to ``<name>-onboarding.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    markdown = directory / f"{name}.md"
    before = markdown.read_text() if markdown.exists() else ""
    section = "\n".join(onboarding_markdown(results))
    markdown.write_text(f"{before.rstrip()}\n\n{section}" if before else section)
    (directory / f"{name}-onboarding.json").write_text(json.dumps(results, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    # Stopped (timeout, kill): stop the servers and workers it started too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ.setdefault(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench"
    )
    os.environ.setdefault(
        "CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/bench"
    )
    os.environ.setdefault("PORTAL_VAR_DIR", "/tmp/var-bench")
    logs = Path(os.environ["PORTAL_VAR_DIR"]) / "bench-logs"
    from bench.procs import ensure_database, ensure_vhost

    ensure_vhost()
    ensure_database()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=_env(DJANGO_SETTINGS_MODULE="portal.settings.base"),
        check=True,
    )
    results = bench_onboarding(logs=logs, quick=args.quick)
    name = "onboarding-quick" if args.quick else "onboarding"
    onboarding_write(Path(args.out), name, results)
    print("\n".join(onboarding_markdown(results)))


if __name__ == "__main__":
    main()
