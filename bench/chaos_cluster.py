"""Run the cluster fault scenarios at scale and print the counts.

    .venv/bin/python bench/chaos_cluster.py [--events 20000] [--only leader-killed,...]

The scenarios are those of ``tests/faults/test_cluster.py`` (one
implementation, ``bench/faults/cluster.py``): a private three-node RabbitMQ
cluster started for the run (``scripts/rabbitmq-cluster``, its own node
names, ports and directory, destroyed at the end; never the machine's
RabbitMQ), two relays and two workers, a stream of ``--events`` events
(registrations and outside publishes), one fault each, a 2-minute database
outage (``--db-outage``). Then the native-delayed-delivery start-up pause
after a node death, with Celery's step and with the portal's. The table goes
to stdout and to ``bench/results/chaos-cluster.md``.

Database: ``CHAOS_CLUSTER_DATABASE_URL`` (default ``DATABASE_URL`` with
``_chaos_cluster`` appended to its name, or ``portal_chaos_cluster`` on
127.0.0.1; created if missing, emptied before every scenario).
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chaos import ensure_database  # noqa: E402

HEADERS = [
    "scenario",
    "subscriber",
    "sent",
    "applied",
    "dead-lettered",
    "lost",
    "duplicated",
    "failover pause",
    "drain after recovery",
]


def database_url() -> str:
    if os.environ.get("CHAOS_CLUSTER_DATABASE_URL"):
        return os.environ["CHAOS_CLUSTER_DATABASE_URL"]
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        return "postgres://postgres@127.0.0.1:5432/portal_chaos_cluster"
    parts = urlsplit(base)
    name = (parts.path.lstrip("/") or "portal") + "_chaos_cluster"
    return urlunsplit(parts._replace(path=f"/{name}"))


def rows(outcome) -> list[list[str]]:
    pause = f"{outcome.extra['pause']:.1f} s"
    drain = f"{outcome.drain_seconds:.1f} s"
    found = []
    for i, tally in enumerate(outcome.tallies.values()):
        first = i == 0
        found.append(
            [
                outcome.scenario if first else "",
                tally.subscriber,
                str(tally.sent),
                str(tally.applied),
                str(tally.dead_lettered),
                str(tally.lost),
                str(tally.duplicated),
                pause if first else "",
                drain if first else "",
            ]
        )
    return found


def markdown(table: list[list[str]], headers: list[str] = HEADERS) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--db-outage", type=float, default=120.0)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument(
        "--no-delayed-delivery",
        action="store_true",
        help="skip the delayed-delivery pause measurement",
    )
    parser.add_argument(
        "--output", default=str(ROOT / "bench/results/chaos-cluster.md")
    )
    args = parser.parse_args()

    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.base"
    os.environ["DATABASE_URL"] = database_url()
    os.environ["CONN_MAX_AGE"] = "0"
    os.environ.setdefault("PORTAL_VAR_DIR", tempfile.mkdtemp(prefix="chaos-var-"))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["OUTBOX_PUBLISH_MODE"] = "off"
    # Registrations would also start onboarding (mail, directory accounts):
    # not what is counted here, and slow (as in the test settings).
    os.environ["ONBOARDING_ENABLED"] = "0"
    from portal.testing.environment import SUBSCRIBER_APP

    extra = [a for a in os.environ.get("PORTAL_EXTRA_APPS", "").split(",") if a]
    if SUBSCRIBER_APP not in extra:
        os.environ["PORTAL_EXTRA_APPS"] = ",".join([*extra, SUBSCRIBER_APP])
    ensure_database(os.environ["DATABASE_URL"])

    from bench.faults.cluster_nodes import (
        Cluster,
        free_base_port,
        rabbitmq_installed,
    )

    if not rabbitmq_installed():
        sys.exit("needs RabbitMQ's programs in /usr/lib/rabbitmq/bin")
    cluster = Cluster(
        directory=Path(tempfile.mkdtemp(prefix="chaos-cluster-")),
        prefix=f"c{os.getpid()}n",
        base_port=free_base_port(start=5701),
    )
    # The settings read the broker URL at start-up: the cluster's list.
    os.environ["CELERY_BROKER_URL"] = cluster.urls()
    os.environ["QUEUE_INITIAL_GROUP_SIZE"] = "3"

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from bench.faults.cluster import (
        SCENARIOS,
        ClusterLab,
        delayed_delivery_pause,
        lab_settings,
    )
    from bench.faults.scenarios import prepare_broker, remove_queues

    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; know {list(SCENARIOS)}")

    for name, value in lab_settings(cluster).items():
        setattr(settings, name, value)
    call_command("migrate", verbosity=0)
    log_dir = Path(tempfile.mkdtemp(prefix="chaos-cluster-logs-"))
    load = os.getloadavg()[0]
    started = time.monotonic()
    outcomes = []
    pauses: dict[str, float] = {}
    print(f"== starting the cluster {cluster.nodes} ...", flush=True)
    try:
        cluster.start()
        lab = ClusterLab(log_dir=log_dir, cluster=cluster)
        for name in names:
            call_command("flush", interactive=False, verbosity=0)
            cluster.heal()
            cluster.wait_all_running()
            prepare_broker()
            print(f"== {name} ({args.events} events) ...", flush=True)
            kwargs = {"outage": args.db_outage} if name == "database-outage" else {}
            try:
                outcome = SCENARIOS[name](lab, args.events, **kwargs)
            except Exception as exc:  # noqa: BLE001 - report it and go on
                print(f"   FAILED: {type(exc).__name__}: {exc}", flush=True)
                outcomes.append(None)
                continue
            outcomes.append(outcome)
            for row in rows(outcome):
                print("   " + " | ".join(row), flush=True)
            for note in outcome.notes:
                print(f"   - {note}", flush=True)
        if not args.no_delayed_delivery:
            steps = (
                ("Celery's own (every URL in turn, each retried)", True),
                ("the portal's (the node it connected to first)", False),
            )
            for label, stock in steps:
                call_command("flush", interactive=False, verbosity=0)
                cluster.heal()
                cluster.wait_all_running()
                prepare_broker()
                pause = delayed_delivery_pause(lab, stock=stock)
                pauses[label] = pause
                print(f"== delayed delivery, {label}: {pause:.1f} s", flush=True)
        call_command("flush", interactive=False, verbosity=0)
        remove_queues()
    finally:
        cluster.destroy()

    done = [o for o in outcomes if o is not None]
    table = markdown([row for o in done for row in rows(o)])
    ok = len(done) == len(names) and all(
        o.lost == 0 and o.duplicated == 0 and o.unexpected == 0 for o in done
    )
    verdict = (
        "0 lost, 0 duplicated for every subscriber in every scenario"
        if ok
        else "FAILED"
    )
    notes = "\n".join(f"- {o.scenario}: {'; '.join(o.notes)}" for o in done)
    dd = ""
    if pauses:
        dd = (
            "\n\nA lone worker consuming full queues, the node it is connected "
            "to killed: seconds without an application until it consumes again "
            "from another node (the native-delayed-delivery start-up step runs "
            "before the worker consumes again):\n\n"
            + markdown(
                [[label, f"{p:.1f} s"] for label, p in pauses.items()],
                ["delayed-delivery step", "pause after the node died"],
            )
        )
    report = (
        "# Chaos on a three-node RabbitMQ cluster\n\n"
        f"`make chaos-cluster` (`bench/chaos_cluster.py --events {args.events} "
        f"--db-outage {args.db_outage:g}`), {datetime.now(UTC):%Y-%m-%d %H:%M} "
        f"UTC, {platform.node()} ({os.cpu_count()} CPUs, load {load:.1f} at the "
        f"start), {time.monotonic() - started:.0f} s in all. A private cluster "
        "of three RabbitMQ nodes on loopback, two relays and two workers (each "
        "with its ingest consumer), each with the URL list starting at another "
        "node; a stream of registrations and CloudEvents published on "
        "`portal.events`, every event counted by id for each subscriber. "
        "Failover pause = the longest time, from the fault on, in which some "
        "subscriber's applied count did not grow; drain = from the end of the "
        "fault until every subscriber had every event.\n\n"
        f"{table}\n\n{notes}{dd}\n\nResult: {verdict}.\n"
    )
    print()
    print(table)
    print(dd)
    print(f"\nprocess logs: {log_dir}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(report)
    print(f"written to {args.output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
