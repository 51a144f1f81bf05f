"""Run the fault-injection scenarios at a larger scale and print the counts.

    .venv/bin/python bench/chaos.py [--scale 5] [--only poison,malformed ...]

The scenarios are those of ``tests/faults/test_scenarios.py`` (one
implementation, ``bench/faults/scenarios.py``), run against real PostgreSQL
and RabbitMQ with real worker and relay subprocesses, ``--scale`` times the
number of events the tests use. Two subscribers take every scenario event:
the feed and the harness's ``audit`` subscriber
(``portal.testing.subscriber_app``, installed here). For each scenario and
subscriber: events sent, applied, dead-lettered, lost, duplicated, and the
time to drain after recovery. The table goes to stdout and to
``bench/results/chaos.md``.

It works on its own database and vhost, which it empties before every
scenario: ``CHAOS_DATABASE_URL`` (default: ``DATABASE_URL`` with ``_chaos``
appended to the database name, or ``portal_chaos`` on 127.0.0.1; created if
missing) and ``CHAOS_BROKER_URL`` (default: vhost ``chaos`` on 127.0.0.1,
created with ``rabbitmqctl`` only if the broker refuses it). Scenario 4
restarts RabbitMQ: a private node it starts on loopback for the purpose
(``portal.testing.rabbit_node``), never the broker of ``CHAOS_BROKER_URL``.
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def chaos_database_url() -> str:
    if os.environ.get("CHAOS_DATABASE_URL"):
        return os.environ["CHAOS_DATABASE_URL"]
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        return "postgres://postgres@127.0.0.1:5432/portal_chaos"
    parts = urlsplit(base)
    name = parts.path.lstrip("/") or "portal"
    if not name.endswith("chaos"):
        name += "_chaos"
    return urlunsplit(parts._replace(path=f"/{name}"))


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin.replace("postgres://", "postgresql://", 1)) as conn:
        conn.autocommit = True
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def chaos_broker_url() -> str:
    from portal.testing.broker import vhost_missing, vhost_name

    url = os.environ.get("CHAOS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/chaos")
    vhost = vhost_name(url)
    # Only when the broker answered that the vhost does not exist: never
    # because it is down or slow. Fails harmlessly without rabbitmqctl.
    if vhost != "/" and vhost_missing(url):
        user = urlsplit(url).username or "guest"
        for args in (
            ["add_vhost", vhost],
            ["set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
        ):
            try:
                subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                break
    return url


def markdown(rows: list[list[str]]) -> str:
    from bench.faults.counting import ROW_HEADERS as HEADERS

    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=5.0)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--output", default=str(ROOT / "bench/results/chaos.md"))
    args = parser.parse_args()

    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.base"
    os.environ["DATABASE_URL"] = chaos_database_url()
    os.environ["CELERY_BROKER_URL"] = chaos_broker_url()
    os.environ.setdefault("PORTAL_VAR_DIR", tempfile.mkdtemp(prefix="chaos-var-"))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Registrations would also start onboarding (mail, directory accounts):
    # not what is counted here, and slow (as in the test settings).
    os.environ["ONBOARDING_ENABLED"] = "0"
    from portal.testing.environment import SUBSCRIBER_APP

    extra = [a for a in os.environ.get("PORTAL_EXTRA_APPS", "").split(",") if a]
    if SUBSCRIBER_APP not in extra:
        os.environ["PORTAL_EXTRA_APPS"] = ",".join([*extra, SUBSCRIBER_APP])
    ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from bench.faults.scenarios import (
        SCENARIOS,
        Lab,
        lab_queue_settings,
        prepare_broker,
        remove_queues,
    )

    for name, value in lab_queue_settings().items():
        setattr(settings, name, value)
    call_command("migrate", verbosity=0)
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; know {list(SCENARIOS)}")

    log_dir = Path(tempfile.mkdtemp(prefix="chaos-logs-"))
    load = os.getloadavg()[0]
    outcomes = []
    started = time.monotonic()
    for name in names:
        call_command("flush", interactive=False, verbosity=0)
        print(f"== {name} (scale {args.scale:g}) ...", flush=True)
        try:
            prepare_broker()
            outcome = SCENARIOS[name](Lab(log_dir=log_dir), scale=args.scale)
        except Exception as exc:  # noqa: BLE001 - report it and go on
            print(f"   FAILED: {type(exc).__name__}: {exc}", flush=True)
            outcomes.append(None)
            continue
        outcomes.append(outcome)
        for row in outcome.rows():
            print("   " + " | ".join(row), flush=True)
        for note in outcome.notes:
            print(f"   - {note}", flush=True)
    call_command("flush", interactive=False, verbosity=0)
    remove_queues()

    done = [o for o in outcomes if o is not None]
    table = markdown([row for o in done for row in o.rows()])
    ok = len(done) == len(names) and all(
        o.lost == 0 and o.duplicated == 0 and o.unexpected == 0 for o in done
    )
    verdict = (
        "0 lost, 0 duplicated for every subscriber in every scenario"
        if ok
        else "FAILED"
    )
    notes = "\n".join(f"- {o.scenario}: {'; '.join(o.notes)}" for o in done if o.notes)
    report = (
        "# Chaos: fault-injection scenarios at scale\n\n"
        f"`make chaos` (`bench/chaos.py --scale {args.scale:g}`), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()} "
        f"({os.cpu_count()} CPUs, load {load:.1f} at the start), "
        f"{time.monotonic() - started:.0f} s in all. "
        "Real PostgreSQL and RabbitMQ, real worker and relay subprocesses; every "
        "event counted by id, for each subscriber (the feed and `audit`, which "
        "both take the scenarios' `employee.registered` events; `ingest` counts "
        "the malformed messages other services sent). Drain = from the end of "
        "the fault (or from the first publish, where the fault has no end) until "
        "every subscriber had every event, or it was in the dead-letter "
        "store.\n\n"
        f"{table}\n\n{notes}\n\n"
        f"Result: {verdict}.\n"
    )
    print()
    print(table)
    print(f"\nprocess logs: {log_dir}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(report)
    print(f"written to {args.output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
