"""``make bench``: the side-by-side benchmark of the portal's event pipeline.

Creates and migrates its own PostgreSQL database, uses its own RabbitMQ
vhost, runs every measurement in one go and writes ``bench/results/latest.md``
(tables, ratios, targets) and PNG plots next to it. ``--quick`` runs a small
version for development. See ``bench/README.md``.
"""

import argparse
import json
import os
import pickle
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench")
os.environ.setdefault("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/bench")
os.environ.setdefault("PORTAL_VAR_DIR", "/tmp/var-bench")
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.benchsite.settings"
os.environ.setdefault("LOG_LEVEL", "ERROR")
os.environ["PYTHONPATH"] = str(ROOT) + (
    os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""
)

from bench import data, procs  # noqa: E402
from bench.procs import BIN, PY, Proc, RssSampler, free_port, wait_port  # noqa: E402
from bench.report import Report, c2v_add, rate_summary  # noqa: E402
from bench.rows import RowProbe  # noqa: E402
from bench.spy import Spy  # noqa: E402

LOGS = Path(os.environ["PORTAL_VAR_DIR"]) / "bench-logs"
DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1/bench"
# The baselines' queues (classic, durable), purged with ours.
BENCH_QUEUES = ("bench.naive", "bench.tuned", "bench.batched", "bench.bare")
READ_SECONDS_PER_PAGE = 5.0
# The subscriber task's body: upcasting, then `apply_events` (its own frame).
WORKER_ANCHOR = (
    "subscriber_task.<locals>.decorate.<locals>.run (portal/messaging/",
    "apply_events (feed/tasks.py",
)
WEB_ANCHOR = ("register (bench/benchsite/views.py", "BackgroundPublisher._run (")


def _events_per_message() -> int:
    """Events per task message, as the relay packs them for the feed (its
    subscription's setting), so every consumer is measured on the same
    message shape."""
    from feed.subscriptions import FEED

    return FEED.max_events_per_message


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def env(**overrides: str) -> dict[str, str]:
    result = dict(os.environ)
    result.update(overrides)
    return result


# --- database and broker -----------------------------------------------------


def db_conn():
    import psycopg

    return psycopg.connect(os.environ["DATABASE_URL"])


def truncate(*tables: str) -> None:
    with db_conn() as conn:
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def feed_count(conn) -> int:
    return conn.execute("SELECT count(*) FROM feed_feedevent").fetchone()[0]


FEED_ROWS = RowProbe("feed_feedevent")
LOG_ROWS = RowProbe("messaging_loggedevent")


def broker_channel(patience: float = 60.0):
    """A pika channel; waits out a broker restart (another tool's) for a while."""
    import pika

    deadline = time.monotonic() + patience
    while True:
        try:
            connection = pika.BlockingConnection(
                pika.URLParameters(os.environ["CELERY_BROKER_URL"])
            )
            return connection, connection.channel()
        except pika.exceptions.AMQPConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def purge_queues() -> None:
    from kombu import Connection

    from portal.messaging import topology
    from portal.messaging.subscriptions import subscriptions

    with Connection(os.environ["CELERY_BROKER_URL"]) as conn:
        conn.ensure_connection(max_retries=3)
        topology.declare(conn)
        topology.declare_ingest(conn)
    # Every subscriber's queues: the relay routes employee.* events to the
    # onboarding subscribers too, and nothing consumes them here; left
    # alone they would grow by every run (and RabbitMQ's memory with them).
    ours = (
        *(
            name
            for subscription in subscriptions()
            for name in (subscription.queue, subscription.dead_letter_queue)
        ),
        topology.ingest_queue_name(),
    )
    connection, channel = broker_channel()
    try:
        for name in (*ours, *BENCH_QUEUES):
            if name in ours:
                channel.queue_declare(name, passive=True)
            else:
                channel.queue_declare(name, durable=True)
            channel.queue_purge(name)
    finally:
        connection.close()


def wait_consumer(queue: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection, channel = broker_channel()
        try:
            method = channel.queue_declare(queue, passive=True).method
        finally:
            connection.close()
        if method.consumer_count:
            return
        time.sleep(0.2)
    raise RuntimeError(f"no consumer on {queue} after {timeout}s")


def celery_worker(
    app: str, queue: str, name: str, concurrency: int = 1, **overrides: str
) -> Proc:
    return Proc(
        name,
        [
            str(BIN / "celery"),
            "-A",
            app,
            "worker",
            "-Q",
            queue,
            f"--concurrency={concurrency}",
            "--loglevel=WARNING",
            "-n",
            f"{name}@%h",
        ],
        env(**overrides),
        LOGS,
    )


# --- 1. registration latency ---------------------------------------------------


def gunicorn(port: int, name: str, threads: int = 12, **overrides: str) -> Proc:
    proc = Proc(
        name,
        [
            PY,
            "-m",
            "gunicorn",
            "bench.benchsite.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "2",
            "-k",
            "gthread",
            "--threads",
            str(threads),
            "--log-level",
            "warning",
            "--preload",
        ],
        env(**overrides),
        LOGS,
    )
    wait_port(port)
    # Both workers answer before any measurement starts.
    import urllib.request

    for _ in range(20):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/").read()
    return proc


def load(
    url: str, n: int, rate: float, label: str, warmup: int, threads: int = 48
) -> dict:
    out = LOGS / f"load-{label}.json"
    subprocess.run(
        [
            PY,
            "-m",
            "bench.loadgen",
            url,
            "--n",
            str(n),
            "--rate",
            str(rate),
            "--warmup",
            str(warmup),
            "--threads",
            str(threads),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env(),
        check=True,
    )
    return json.loads(out.read_text())


def bench_registration(
    report: Report,
    rss: RssSampler,
    n: int,
    rate: float,
    rounds: int = 8,
    runs: int = 1,
) -> None:
    """Every design in turn, in ``rounds`` rounds, so that the machine's noise
    (other test suites on the same cores) falls on all of them alike; all of
    it ``runs`` times (each run's p99 ratios are kept, and the targets are
    decided on their median)."""
    log("1. Registration latency")
    stub_port, web_port, down_port = free_port(), free_port(), free_port()
    stub = Proc("stubfeed", [PY, "-m", "bench.stubfeed", str(stub_port)], env(), LOGS)
    wait_port(stub_port)
    web = gunicorn(web_port, "web", BENCH_STUB_FEED_URL=f"http://127.0.0.1:{stub_port}")
    # Few threads: it only serves the fast path, and PostgreSQL's connection
    # limit is shared with everything else on the machine.
    down = gunicorn(
        down_port,
        "web-broker-down",
        threads=4,
        CELERY_BROKER_URL=DEAD_BROKER,
        OUTBOX_NOTIFY_CHANNEL="bench_broker_down",
    )
    # The relays publish what the web processes commit, as in production:
    # one for the live broker, one that finds RabbitMQ unreachable (it backs
    # off; the live one's poll is told to leave those rows alone).
    relays = [
        Proc(
            "relay-web", [PY, "manage.py", "relay_outbox", "--grace=3600"], env(), LOGS
        ),
        Proc(
            "relay-broker-down",
            [PY, "manage.py", "relay_outbox"],
            env(
                CELERY_BROKER_URL=DEAD_BROKER, OUTBOX_NOTIFY_CHANNEL="bench_broker_down"
            ),
            LOGS,
        ),
    ]
    rss.watch(web.pid, "web")
    rss.watch(down.pid, "web")
    base = f"http://127.0.0.1:{web_port}/bench/register"
    scenarios = [
        ("floor", f"{base}/floor/", web),
        ("outbox", f"{base}/event/", web),
        ("sync-0ms", f"{base}/sync/?delay=0", web),
        ("sync-50ms", f"{base}/sync/?delay=50", web),
        ("sync-200ms", f"{base}/sync/?delay=200", web),
        (
            "outbox, broker down",
            f"http://127.0.0.1:{down_port}/bench/register/event/",
            down,
        ),
    ]
    chunk = n // rounds
    try:
        for round_ in range(rounds * runs):
            run = round_ // rounds
            for label, url, server in scenarios:
                spy = None
                if round_ == 0 and label.startswith("outbox"):
                    spy = Spy(
                        server.pid, LOGS / f"spy-web-{label[:10]}.raw", chunk / rate
                    )
                result = load(
                    url,
                    chunk,
                    rate,
                    label.replace(" ", ""),
                    warmup=100 if round_ == 0 else 15,
                )
                if spy:
                    report.profiles[f"web process, {label} run"] = spy.summary(
                        anchor=WEB_ANCHOR
                    )
                total = report.registration.setdefault(
                    label,
                    {"latencies": [], "errors": 0, "first_errors": [], "runs": []},
                )
                total["latencies"] += result["latencies"]
                total["errors"] += result["errors"]
                total["first_errors"] += result["first_errors"]
                if len(total["runs"]) <= run:
                    total["runs"].append([])
                total["runs"][run] += result["latencies"]
            log(
                f"  round {round_ % rounds + 1}/{rounds}"
                + (f" of run {run + 1}/{runs}" if runs > 1 else "")
                + " done"
            )
    finally:
        rss.unwatch(web.pid)
        rss.unwatch(down.pid)
        web.stop()
        down.stop()
        stub.stop()
        for relay in relays:
            relay.stop()
    for label, total in report.registration.items():
        log(f"  {label}: {len(total['latencies'])} ok, {total['errors']} errors")
    with db_conn() as conn:
        pending = conn.execute(
            "SELECT count(*) FROM messaging_loggedevent WHERE status = 'pending'"
        ).fetchone()[0]
    report.notes.append(
        f"After the registration runs {pending} logged events were pending. The "
        "broker-down server's web processes never connect to RabbitMQ (they "
        "only NOTIFY after commit), so its requests take the same path whatever "
        "the broker does; its rows are published by whichever relay takes them "
        "first (the live one's notified passes take every pending row)."
    )


# --- 2. commit-to-visible ----------------------------------------------------------

TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION bench_feed_notify() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_rows) THEN
    PERFORM pg_notify('bench_feed',
      (SELECT min(id)::text || ',' || max(id)::text FROM new_rows));
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS bench_feed_notify ON feed_feedevent;
CREATE TRIGGER bench_feed_notify AFTER INSERT ON feed_feedevent
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION bench_feed_notify();
"""


def c2v_drive(rate: int, seconds: float) -> dict:
    """Run the driver in as many processes as the rate needs (one per 100/s)."""
    procs = max(1, min(4, round(rate / 100)))
    drivers = [
        subprocess.Popen(
            [
                PY,
                "-m",
                "bench.c2v",
                "--rate",
                str(rate / procs),
                "--seconds",
                str(seconds),
            ],
            cwd=ROOT,
            env=env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(procs)
    ]
    results = []
    for driver in drivers:
        stdout, _ = driver.communicate()
        if driver.returncode:
            raise RuntimeError(f"c2v driver failed ({driver.returncode})")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return {
        "latencies": [x for r in results for x in r["latencies"]],
        "registered": sum(r["registered"] for r in results),
        "offered_rate": rate,
        "achieved_rate": sum(r["achieved_rate"] for r in results),
        "driver_processes": procs,
    }


def bench_commit_to_visible(
    report: Report,
    rss: RssSampler,
    seconds: float,
    rates: list[int],
    what_if: bool = False,
    runs: int = 1,
) -> None:
    """Each rate in turn, ``runs`` times (interleaved); a rate's result holds
    every run's latencies together and each run's apart (``runs``)."""
    log("2. Commit-to-visible latency" + (" (what-if: DB reuse)" if what_if else ""))
    truncate("feed_feedevent", "messaging_loggedevent")
    purge_queues()
    with db_conn() as conn:
        conn.execute(TRIGGER_SQL)
    overrides = {"BENCH_DB_REUSE_MAX": "1000"} if what_if else {}
    worker = celery_worker("portal", "feed", "worker-c2v", **overrides)
    relay = Proc("relay", [PY, "manage.py", "relay_outbox"], env(), LOGS)
    rss.watch(worker.pid, "worker")
    try:
        wait_consumer("feed")
        for run in range(runs):
            for rate in rates:
                spy = None
                if rate == 200 and run == 0 and not what_if:
                    spy = Spy(worker.pid, LOGS / "spy-worker-c2v.raw", seconds)
                result = c2v_drive(rate, seconds)
                if spy:
                    report.profiles["worker at 200 events/s (commit-to-visible)"] = (
                        spy.summary(anchor=WORKER_ANCHOR)
                    )
                if what_if:
                    report.what_if[f"commit-to-visible at {rate}/s"] = result
                else:
                    c2v_add(report.c2v, rate, result)
                log(
                    f"  {rate}/s: {len(result['latencies'])}/{result['registered']} "
                    f"seen, achieved {result['achieved_rate']:.0f}/s"
                    + (f" (run {run + 1}/{runs})" if runs > 1 else "")
                )
    finally:
        rss.unwatch(worker.pid)
        worker.stop()
        relay.stop()
        with db_conn() as conn:
            conn.execute("DROP TRIGGER IF EXISTS bench_feed_notify ON feed_feedevent")


# --- 3 + 4. relay and consumer throughput -------------------------------------------


def cpu_seconds(*pids: int) -> float:
    """CPU (user + system) used so far by the processes ``pids`` and all
    their descendants (PostgreSQL's and RabbitMQ's own are not counted)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in procs:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
    return total


def worker_seconds(worker: int, relay: int) -> dict[str, float]:
    """CPU seconds so far of ours' processes one by one: the worker's main
    process (its ingest bootstep), its pool (the feed's task) and the relay."""
    import psutil

    try:
        main = psutil.Process(worker).cpu_times()
        own = main.user + main.system
    except psutil.Error:
        own = 0.0
    return {
        "worker": own,
        "pool": cpu_seconds(worker) - own,
        "relay": cpu_seconds(relay),
    }


def drain_rate(
    expect: int, proc: Proc | None = None, timeout: float = 300, on_first=None
) -> dict:
    """Rows/s into the feed table, from the first row seen to the last, and
    the CPU seconds ``proc``'s process tree used meanwhile."""
    with db_conn() as conn:
        conn.autocommit = True
        first_at, first_count, cpu = None, 0, 0.0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            count = FEED_ROWS.count(conn, expect)
            now = time.perf_counter()
            if first_at is None and count > 0:
                first_at, first_count = now, count
                cpu = cpu_seconds(proc.pid) if proc is not None else 0.0
                if on_first:
                    on_first()
            if count >= expect:
                seconds = now - first_at
                result = {
                    "events": count - first_count,
                    "seconds": seconds,
                    "rate": (count - first_count) / max(seconds, 1e-9),
                }
                if proc is not None:
                    result["cpu_seconds"] = cpu_seconds(proc.pid) - cpu
                return result
            if proc is not None and not proc.alive():
                raise RuntimeError(f"{proc.name} died; see {proc.log_path}")
            time.sleep(0.02)
    raise RuntimeError(f"only {count}/{expect} rows after {timeout}s")


def bench_relay(report: Report, events: int, rounds: int = 1) -> list[dict]:
    """``events`` logged rows drained by ``Relay(grace=0).drain()`` in this
    process, ``rounds`` times: the rate and the CPU each kind of process
    spent per event (the relay's own, PostgreSQL's, RabbitMQ's)."""
    log("4. Relay throughput")
    items = list(data.envelopes(events, seed=11))
    from django.db import close_old_connections

    from portal.messaging.relay import Relay

    runs = []
    for round_ in range(rounds):
        truncate("feed_feedevent", "messaging_loggedevent")
        purge_queues()
        with db_conn() as conn:
            data.copy_log(conn, items)
        close_old_connections()
        relay = Relay(grace=0)
        before, own = kinds_cpu({}), time.process_time()
        start = time.perf_counter()
        sent = relay.drain()
        seconds = time.perf_counter() - start
        own = time.process_time() - own
        cores = cores_used(before, kinds_cpu({}), seconds)
        if sent != events:
            raise RuntimeError(f"relay sent {sent} of {events}")
        cpu_us = {
            "relay": own / sent * 1e6,
            "postgresql": cores["postgresql"] * seconds / sent * 1e6,
            "rabbitmq": cores["rabbitmq"] * seconds / sent * 1e6,
            # PostgreSQL backends that exited (the relay's pass threads
            # close theirs), the bench's own bookkeeping, the rest.
            "other": max(0.0, cores["other"] * seconds - own) / sent * 1e6,
        }
        runs.append(
            {
                "events": sent,
                "seconds": seconds,
                "rate": sent / seconds,
                "threads": relay.threads,
                "machine_busy": sum(cores.values()) / (os.cpu_count() or 1),
                "cpu_us": cpu_us,
            }
        )
        log(
            f"  relayed {sent} in {seconds:.2f}s = {sent / seconds:,.0f}/s, CPU "
            + ", ".join(f"{k} {v:.0f}" for k, v in cpu_us.items())
            + f" µs/event (round {round_ + 1}/{rounds})"
        )
    median = sorted(runs, key=lambda run: run["rate"])[len(runs) // 2]
    report.relay = {**median, "runs": runs}
    return items


def drain_single_tasks(
    task, module: str, queue: str, name: str, items: list[dict], concurrency: int = 1
) -> dict:
    """Publish one task message per event of ``items`` for ``task`` (a
    bench-only Celery app's), then drain them with a worker of that app."""
    truncate("feed_feedevent")
    purge_queues()
    with task.app.producer_or_acquire() as producer:
        for envelope in items:
            task.apply_async(args=[envelope], producer=producer)
    worker = celery_worker(module, queue, name, concurrency=concurrency)
    try:
        result = drain_rate(len(items), worker)
    finally:
        worker.stop()
    result["processes"] = concurrency
    return result


def bench_baselines(
    report: Report, items: list[dict], tuned_events: int
) -> dict[str, dict]:
    """(a2) tuned plain Celery, (a3) celery-batches + COPY, on ``items``."""
    from bench.tuned import CONCURRENCY, QUEUE, apply_event

    results = {}
    tuned = drain_single_tasks(
        apply_event,
        "bench.tuned",
        QUEUE,
        "worker-tuned",
        items[:tuned_events],
        concurrency=CONCURRENCY,
    )
    results["tuned"] = tuned
    log(
        f"  (a2) tuned Celery, prefork {CONCURRENCY}: {tuned['rate']:,.0f}/s "
        f"({tuned['rate'] / CONCURRENCY:,.0f}/s per pool process)"
    )
    try:
        from bench.batched import QUEUE as BATCHED_QUEUE
        from bench.batched import apply_events
    except ImportError as exc:  # celery-batches not installed
        if not any("celery-batches skipped" in note for note in report.notes):
            report.notes.append(f"(a3) celery-batches skipped: {exc}")
        log(f"  (a3) skipped: {exc}")
        return results
    results["batched"] = drain_single_tasks(
        apply_events, "bench.batched", BATCHED_QUEUE, "worker-batched", items
    )
    log(f"  (a3) celery-batches + COPY: {results['batched']['rate']:,.0f}/s")
    return results


def bench_consumers(
    report: Report,
    rss: RssSampler,
    items: list[dict],
    naive_events: int,
    tuned_events: int = 0,
    runs: int = 1,
) -> None:
    """(b) ours, (a) naive, (a2)/(a3) the fair baselines and (c) bare pika on
    the same events; with ``runs`` > 1, ours, the baselines and bare take
    turns that many times and each row is its median run (the ratios of each
    run are kept in ``report.consumer_runs`` for the targets)."""
    log("3. Feed consumer throughput")
    # (b) ours: the relay just left the events packed in task messages.
    ours = [ours_drain(rss, items, "worker-ours", fill=False)[0]]
    log(f"  ours: {ours[0]['rate']:,.0f}/s")

    # Once more to profile it (sampling perturbs it: profile only), and, if
    # the settings leave Celery reconnecting per task, as the what-if.
    from django.conf import settings

    what_if = not getattr(settings, "CELERY_DB_REUSE_MAX", None)
    overrides = {"BENCH_DB_REUSE_MAX": "1000"} if what_if else {}
    second, spy = ours_drain(
        rss, items, "worker-ours-2", spy_to=LOGS / "spy-worker-ours.raw", **overrides
    )
    if spy:
        report.profiles["our worker draining the pre-filled queue"] = spy.summary(
            anchor=WORKER_ANCHOR
        )
    if what_if:
        report.what_if["consumer throughput (profiled)"] = second
        log(f"  ours, DB reuse (profiled): {second['rate']:,.0f}/s")

    # (a) naive: one default Celery task per event.
    truncate("feed_feedevent")
    purge_queues()
    from bench.naive import apply_event

    naive_items = list(data.envelopes(naive_events, seed=12))
    with apply_event.app.producer_or_acquire() as producer:
        for env_ in naive_items:
            apply_event.apply_async(args=[env_], producer=producer)
    worker = celery_worker("bench.naive", "bench.naive", "worker-naive")
    rss.watch(worker.pid, "worker-naive")
    try:
        report.consumer["naive"] = drain_rate(naive_events, worker)
    finally:
        rss.unwatch(worker.pid)
        worker.stop()
    log(f"  naive: {report.consumer['naive']['rate']:,.0f}/s")

    baselines: dict[str, list[dict]] = {}
    bare: list[dict] = []
    for run in range(runs):
        if run:
            ours.append(ours_drain(rss, items, "worker-ours")[0])
            log(f"  ours: {ours[-1]['rate']:,.0f}/s (run {run + 1}/{runs})")
        if tuned_events:
            for key, result in bench_baselines(report, items, tuned_events).items():
                baselines.setdefault(key, []).append(result)
        bare.append(bare_drain(items))
        log(f"  bare pika + COPY: {bare[-1]['rate']:,.0f}/s")
    all_runs = {"ours": ours, **baselines, "bare": bare}
    for key, results in all_runs.items():
        report.consumer[key] = median_run(results)
    report.consumer_runs = all_runs


def median_run(results: list[dict]) -> dict:
    """The run of median rate (lower middle for an even count), with the
    range of rates over ``results``."""
    ordered = sorted(results, key=lambda r: r["rate"])
    middle = dict(ordered[(len(ordered) - 1) // 2])
    if len(results) > 1:
        middle.update(rate_summary(results))
    return middle


def ours_drain(
    rss: RssSampler,
    items: list[dict],
    name: str,
    *,
    fill: bool = True,
    spy_to: Path | None = None,
    **overrides: str,
) -> tuple[dict, Spy | None]:
    """Drain the feed's queue of ``items`` with one worker process: with
    ``fill``, after logging them and routing them with the relay (else the
    queue holds them already). With ``spy_to``, py-spy records the worker
    from the first row on (the recording is returned)."""
    if fill:
        from django.db import close_old_connections

        from portal.messaging.relay import Relay

        truncate("feed_feedevent", "messaging_loggedevent")
        with db_conn() as conn:
            data.copy_log(conn, items)
        close_old_connections()
        Relay(grace=0).drain()
    worker = celery_worker("portal", "feed", name, **overrides)
    rss.watch(worker.pid, "worker")
    spies: list[Spy] = []
    try:
        result = drain_rate(
            len(items),
            worker,
            on_first=(lambda: spies.append(Spy(worker.pid, spy_to, 4)))
            if spy_to
            else None,
        )
    finally:
        rss.unwatch(worker.pid)
        worker.stop()
    return result, (spies[0] if spies else None)


def bare_drain(items: list[dict]) -> dict:
    """(c) the limit: bare pika + COPY, same message shape as the relay's."""
    truncate("feed_feedevent")
    purge_queues()
    import pika

    from feed.subscriptions import FEED
    from portal.messaging.task_messages import encode_event, task_message_groups

    connection, channel = broker_channel()
    encoded = ((envelope, encode_event(envelope)) for envelope in items)
    for group in task_message_groups(FEED, encoded):
        body = json.dumps([[[envelope for envelope, _ in group]], {}, {}])
        channel.basic_publish(
            "",
            "bench.bare",
            body,
            pika.BasicProperties(delivery_mode=2, content_type="application/json"),
        )
    connection.close()
    bare = Proc(
        "bare",
        [
            PY,
            "-m",
            "bench.bare",
            "--amqp",
            os.environ["CELERY_BROKER_URL"],
            "--db",
            os.environ["DATABASE_URL"].replace("postgres://", "postgresql://"),
            "--queue",
            "bench.bare",
            "--expect",
            str(len(items)),
        ],
        env(),
        LOGS,
    )
    try:
        # Timed as ours is, by the same probe: from the first row to the last.
        result = drain_rate(len(items), bare)
        bare.process.wait(timeout=60)
    finally:
        bare.stop()
    if bare.process.returncode:
        raise RuntimeError(f"bare consumer failed; see {bare.log_path}")
    # It may have exited before its CPU was read.
    result.pop("cpu_seconds", None)
    return result


def profile_consumer(report: Report, batches: int) -> None:
    """Where the consumer's time goes: the service in-process, under pyinstrument."""
    from django.db import close_old_connections
    from pyinstrument import Profiler

    from feed.services import feed_events_apply

    truncate("feed_feedevent")
    close_old_connections()
    per_message = _events_per_message()
    items = list(data.envelopes(batches * per_message, seed=13))
    chunks = [items[i : i + per_message] for i in range(0, len(items), per_message)]
    profiler = Profiler(interval=0.0005)
    start = time.perf_counter()
    profiler.start()
    for chunk in chunks:
        feed_events_apply(envelopes=chunk)
    profiler.stop()
    seconds = time.perf_counter() - start
    report.consumer_profile = {
        "rate": len(items) / seconds,
        "text": profiler.output_text(unicode=False, color=False, show_all=False),
    }
    log(f"  service alone, in-process: {len(items) / seconds:,.0f}/s")


def consumer_database_cost(report: Report, batches: int, rounds: int = 3) -> None:
    """PostgreSQL's CPU per event for the feed's write and for the bare
    loop's, on the same events, measured on each one's backend (rounds
    alternate; medians kept): ours is ``feed_events_apply`` in-process (the
    feed's real cards, ``INSERT … ON CONFLICT DO NOTHING``), bare is
    ``bench.bare``'s COPY of its rows, 1,000 a statement, in one transaction
    per message as it commits. One worker writes through one backend, so
    the first bounds what one worker can do whatever its Python costs."""
    import psutil
    from django.db import close_old_connections, connection

    from bench import bare
    from feed.services import feed_events_apply

    def backend_cpu(conn) -> tuple[psutil.Process, float]:
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()
        process = psutil.Process(pid)
        times = process.cpu_times()
        return process, times.user + times.system

    def used(process: psutil.Process, start: float) -> float:
        times = process.cpu_times()
        return times.user + times.system - start

    per_message = _events_per_message()
    items = list(data.envelopes(batches * per_message, seed=15))
    chunks = [items[i : i + per_message] for i in range(0, len(items), per_message)]
    runs: dict[str, list[dict]] = {"ours": [], "bare": []}
    for _ in range(rounds):
        truncate("feed_feedevent")
        close_old_connections()
        connection.ensure_connection()
        process, start = backend_cpu(connection.connection)
        began = time.perf_counter()
        for chunk in chunks:
            feed_events_apply(envelopes=chunk)
        seconds = time.perf_counter() - began
        cpu = used(process, start)
        runs["ours"].append({"rate": len(items) / seconds, "cpu": cpu})
        close_old_connections()

        truncate("feed_feedevent")
        with db_conn() as conn:
            process, start = backend_cpu(conn)
            began = time.perf_counter()
            for chunk in chunks:
                received = bare.received_at()
                with (
                    conn.cursor() as cur,
                    cur.copy(
                        f"COPY feed_feedevent ({bare.COLUMNS}) FROM STDIN"
                    ) as copy,
                ):
                    for envelope in chunk:
                        copy.write_row(bare.row(envelope, received))
                conn.commit()
            seconds = time.perf_counter() - began
            cpu = used(process, start)
        runs["bare"].append({"rate": len(items) / seconds, "cpu": cpu})
    report.consumer_database = {
        key: {
            "postgresql_us": sorted(r["cpu"] for r in results)[len(results) // 2]
            / len(items)
            * 1e6,
            "rate": sorted(r["rate"] for r in results)[len(results) // 2],
            "events": len(items),
            "runs": results,
        }
        for key, results in runs.items()
    }
    truncate("feed_feedevent")
    log(
        "  PostgreSQL per event applied: ours "
        f"{report.consumer_database['ours']['postgresql_us']:.1f} µs, bare COPY "
        f"{report.consumer_database['bare']['postgresql_us']:.1f} µs"
    )


def profile_relay(report: Report, events: int) -> None:
    from django.db import close_old_connections
    from pyinstrument import Profiler

    from portal.messaging.relay import Relay

    truncate("messaging_loggedevent")
    purge_queues()
    with db_conn() as conn:
        data.copy_log(conn, list(data.envelopes(events, seed=14)))
    close_old_connections()
    profiler = Profiler(interval=0.0005)
    profiler.start()
    # One pass at a time: the profiler follows this thread only.
    Relay(grace=0, threads=1).drain()
    profiler.stop()
    report.relay_profile = profiler.output_text(unicode=False, color=False)
    purge_queues()


# --- 3b. per-event ingest ----------------------------------------------------------

INGEST_SOURCE = "/hr/people-directory"
INGEST_PREFETCH = 1000


def ingest_messages(n: int) -> list[bytes]:
    """``n`` single-event messages as an outside HR service would publish
    them: valid ``employee.registered`` CloudEvents (~450 bytes each) from
    a source of its own."""
    import random

    rng = random.Random(21)
    now = datetime.now(UTC)
    return [
        json.dumps(
            data.envelope(
                i,
                rng,
                when=now,
                kind="employee.registered",
                source=INGEST_SOURCE,
            )
        ).encode()
        for i in range(n)
    ]


def ingest_prefill(bodies: list[bytes]) -> None:
    """Publish ``bodies`` on ``portal.events`` (routing key = the event type)
    with clean tables and queues, and wait until the ingest queue holds them
    all (published without confirms: counted instead)."""
    import pika

    from portal.messaging import topology

    truncate("feed_feedevent", "messaging_loggedevent")
    purge_queues()
    connection, channel = broker_channel()
    try:
        properties = pika.BasicProperties(
            delivery_mode=2, content_type="application/cloudevents+json"
        )
        for body in bodies:
            channel.basic_publish(
                topology.EVENTS_EXCHANGE, "employee.registered", body, properties
            )
        queue = topology.ingest_queue_name()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready = channel.queue_declare(queue, passive=True).method.message_count
            if ready >= len(bodies):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{queue} holds {ready} of {len(bodies)} messages")
    finally:
        connection.close()


def ingest_ours(n: int, profile: float = 0.0) -> dict:
    """The real path: a worker (`-Q feed --concurrency=1`; its main process
    runs the ingest consumer, its pool process the feed's task) and a relay,
    from the first logged row to the last feed row. With ``profile``, py-spy
    records both for that many seconds from the first logged row."""
    relay = Proc("relay-ingest", [PY, "manage.py", "relay_outbox"], env(), LOGS)
    worker = celery_worker("portal", "feed", "worker-ingest")
    spies = []
    try:
        with db_conn() as conn:
            conn.autocommit = True
            first_at, cpu, services, parts = None, 0.0, {}, {}
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                now = time.perf_counter()
                if first_at is None:
                    if conn.execute(
                        "SELECT EXISTS (SELECT 1 FROM messaging_loggedevent)"
                    ).fetchone()[0]:
                        first_at = now
                        cpu = cpu_seconds(worker.pid, relay.pid)
                        parts = worker_seconds(worker.pid, relay.pid)
                        services = services_seconds()
                        if profile:
                            spies = [
                                Spy(
                                    worker.pid, LOGS / "spy-ingest-worker.raw", profile
                                ),
                                Spy(relay.pid, LOGS / "spy-ingest-relay.raw", profile),
                            ]
                elif FEED_ROWS.count(conn, n) >= n:
                    seconds = now - first_at
                    for spy in spies:
                        spy.summary()  # waits for py-spy to write its file
                    return {
                        "events": n,
                        "seconds": seconds,
                        "rate": n / seconds,
                        "cpu_seconds": cpu_seconds(worker.pid, relay.pid) - cpu,
                        "processes": {
                            kind: used - parts[kind]
                            for kind, used in worker_seconds(
                                worker.pid, relay.pid
                            ).items()
                        },
                        "services": services_since(services),
                        "cores": os.cpu_count() or 1,
                    }
                for proc in (worker, relay):
                    if not proc.alive():
                        raise RuntimeError(f"{proc.name} died; see {proc.log_path}")
                time.sleep(0.05)
        raise RuntimeError(f"ingest: not all {n} feed rows after 600 s")
    finally:
        worker.stop()
        relay.stop()


def worker_stage(name: str, rows: RowProbe, n: int) -> dict:
    """A worker (`-Q feed --concurrency=1`) alone until ``rows`` holds ``n``
    rows: its rate from the first row to the last, with its CPU and the
    services' over that window."""
    worker = celery_worker("portal", "feed", name)
    try:
        with db_conn() as conn:
            conn.autocommit = True
            first_at, cpu, services = None, 0.0, {}
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                count = rows.count(conn, n)
                now = time.perf_counter()
                if first_at is None and count:
                    first_at, cpu = now, cpu_seconds(worker.pid)
                    services = services_seconds()
                if count >= n:
                    break
                time.sleep(0.02)
            else:
                raise RuntimeError(f"{name}: {count}/{n} rows after 600 s")
        return {
            "events": n,
            "seconds": now - first_at,
            "rate": n / (now - first_at),
            "cpu_seconds": cpu_seconds(worker.pid) - cpu,
            "services": services_since(services),
        }
    finally:
        worker.stop()


def ingest_stages(bodies: list[bytes]) -> dict:
    """Each stage of ours alone on ``bodies``, with its CPU and the
    services': the worker's ingest with no relay running (first to last
    logged row), the relay draining those rows in-process
    (``Relay(grace=0).drain()``, publisher confirms), then a worker applying
    the feed's task messages the relay left (first to last feed row)."""
    n = len(bodies)
    ingest_prefill(bodies)
    ingest = worker_stage("worker-ingest-alone", LOG_ROWS, n)
    from django.db import close_old_connections

    from portal.messaging.relay import Relay

    close_old_connections()
    services, cpu = services_seconds(), time.process_time()
    start = time.perf_counter()
    sent = Relay(grace=0).drain()
    seconds = time.perf_counter() - start
    relay = {
        "events": sent,
        "seconds": seconds,
        "rate": sent / seconds,
        "cpu_seconds": time.process_time() - cpu,
        "services": services_since(services),
    }
    feed = worker_stage("worker-feed-alone", FEED_ROWS, n)
    purge_queues()
    return {"ingest alone": ingest, "relay alone": relay, "feed alone": feed}


def ingest_bare(client: str, n: int) -> dict:
    from portal.messaging import topology

    # Around the whole client process (its start and connections included:
    # it alone knows when its first message came).
    services = services_seconds()
    out = subprocess.run(
        [
            PY,
            "-m",
            "bench.bare_ingest",
            "--client",
            client,
            "--amqp",
            os.environ["CELERY_BROKER_URL"],
            "--db",
            os.environ["DATABASE_URL"].replace("postgres://", "postgresql://"),
            "--queue",
            topology.ingest_queue_name(),
            "--expect",
            str(n),
            "--prefetch",
            str(INGEST_PREFETCH),
        ],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode:
        raise RuntimeError(f"bare {client} consumer failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["rate"] = result["events"] / result["seconds"]
    result["services"] = services_since(services)
    result["cores"] = os.cpu_count() or 1
    return result


def services_since(before: dict[str, float]) -> dict[str, float]:
    """PostgreSQL's and RabbitMQ's CPU seconds since ``services_seconds()``
    gave ``before``."""
    after = services_seconds()
    return {kind: max(0.0, after[kind] - before.get(kind, 0.0)) for kind in after}


def bench_ingest(report: Report, n: int, rounds: int = 1) -> None:
    """Per-event messages on ``portal.events``, drained by ours, bare pika
    and aio-pika in turn (``rounds`` times, interleaved: the shared
    machine's drift falls on each alike); the tables keep every run."""
    log(f"3b. Per-event ingest ({n:,} messages on portal.events)")
    bodies = ingest_messages(n)
    report.sizes["ingest_bytes"] = sum(map(len, bodies)) // len(bodies)
    variants = {
        "ours": lambda: ingest_ours(n),
        "pika": lambda: ingest_bare("pika", n),
        "aio-pika": lambda: ingest_bare("aio-pika", n),
    }
    for round_ in range(rounds):
        for label, run in variants.items():
            ingest_prefill(bodies)
            result = run()
            report.ingest.setdefault(label, []).append(result)
            log(
                f"  round {round_ + 1}, {label}: {result['rate']:,.0f}/s "
                f"({result['cpu_seconds']:.1f} CPU s)"
            )
    # Where the time goes: each stage alone, then the whole once more,
    # smaller, under py-spy (sampling perturbs it: profile only).
    profiled = min(n, 20_000)
    report.ingest_stages = ingest_stages(bodies[:profiled])
    for label, result in report.ingest_stages.items():
        log(f"  {label}: {result['rate']:,.0f}/s")
    ingest_prefill(bodies[:profiled])
    ingest_ours(profiled, profile=max(1.0, min(8.0, profiled / 4_000)))
    truncate("feed_feedevent", "messaging_loggedevent")
    purge_queues()


# --- 4b. scaling out ---------------------------------------------------------------


def machine_cpu() -> float:
    """CPU seconds the whole machine has used (every core, every process)."""
    import psutil

    times = psutil.cpu_times()
    return times.user + times.system + getattr(times, "nice", 0.0)


def _scaled(
    procs: list[Proc], rows: RowProbe, expect: int, timeout: float = 300
) -> dict:
    """Rows/s as ``rows`` counts them, from the first to ``expect``,
    with the CPU ``procs`` and the whole machine used meanwhile."""
    with db_conn() as conn:
        conn.autocommit = True
        first_at, first_count, cpu, machine = None, 0, 0.0, 0.0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            count = rows.count(conn, expect)
            now = time.perf_counter()
            if first_at is None and count > 0:
                first_at, first_count = now, count
                cpu = cpu_seconds(*(p.pid for p in procs))
                machine = machine_cpu()
            if count >= expect:
                seconds = max(now - first_at, 1e-9)
                return {
                    "events": count - first_count,
                    "seconds": seconds,
                    "rate": (count - first_count) / seconds,
                    "cpu_seconds": cpu_seconds(*(p.pid for p in procs)) - cpu,
                    "machine_busy": (machine_cpu() - machine)
                    / (seconds * (os.cpu_count() or 1)),
                }
            for proc in procs:
                if not proc.alive():
                    raise RuntimeError(f"{proc.name} died; see {proc.log_path}")
            time.sleep(0.02)
    raise RuntimeError(f"only {count}/{expect} after {timeout}s")


def relays_drain(items: list[dict], processes: int) -> dict:
    """``processes`` relays (``manage.py relay_outbox``) routing one pre-filled
    log together (``SKIP LOCKED`` shares the rows out)."""
    truncate("feed_feedevent", "messaging_loggedevent")
    purge_queues()
    with db_conn() as conn:
        data.copy_log(conn, items)
    relays = [
        Proc(
            f"relay-scale-{processes}-{i}",
            [PY, "manage.py", "relay_outbox"],
            env(OUTBOX_RELAY_GRACE_SECONDS="0"),
            LOGS,
        )
        for i in range(processes)
    ]
    try:
        return _scaled(
            relays,
            RowProbe("messaging_loggedevent", "status = 'sent'"),
            len(items),
        )
    finally:
        for relay in relays:
            relay.stop()
        purge_queues()


def workers_drain(items: list[dict], processes: int) -> dict:
    """``processes`` workers (each ``--concurrency=1``) draining one
    pre-filled feed queue together."""
    from django.db import close_old_connections

    from portal.messaging.relay import Relay

    truncate("feed_feedevent", "messaging_loggedevent")
    purge_queues()
    with db_conn() as conn:
        data.copy_log(conn, items)
    close_old_connections()
    Relay(grace=0).drain()  # the queue now holds every event, packed
    workers = [
        celery_worker("portal", "feed", f"worker-scale-{processes}-{i}")
        for i in range(processes)
    ]
    try:
        return _scaled(workers, FEED_ROWS, len(items))
    finally:
        for worker in workers:
            worker.stop()


def bench_scaling(report: Report, events: int, rounds: int) -> None:
    """Relays and workers, one process and two, on the same log and queue,
    interleaved ``rounds`` times (medians reported)."""
    log(f"4b. Scaling out ({events:,} events; 1 and 2 processes)")
    items = list(data.envelopes(events, seed=16))
    for round_ in range(rounds):
        for kind, drain in (("relay", relays_drain), ("worker", workers_drain)):
            for processes in (1, 2):
                result = drain(items, processes)
                report.scaling.setdefault(kind, {}).setdefault(processes, []).append(
                    result
                )
                log(
                    f"  round {round_ + 1}, {processes} {kind}(s): "
                    f"{result['rate']:,.0f}/s, machine {result['machine_busy']:.0%}"
                    " busy"
                )
    truncate("feed_feedevent", "messaging_loggedevent")
    purge_queues()


# --- 1b. capacity ------------------------------------------------------------------

# Offered registrations/s, stepped up until a step fails (wider steps past
# 500/s: a design that takes every step is reported as "at least" the top).
CAPACITY_STEPS = (
    *(20, 30, 40, 50, 60, 75, 90, 110, 130, 160, 200, 250, 300, 400, 500),
    *(600, 750, 900, 1100, 1300, 1600, 2000),
)
# A step fails above this request p99, on top of any delay the design's feed
# adds by construction (a 200 ms feed's requests cannot take less) ...
CAPACITY_P99 = 0.100
CAPACITY_VISIBLE_P99 = 1.0  # ... or, for ours, above this commit-to-visible p99
# The machine's own services, by process name, for "where it saturates".
SERVICE_PROCESSES = {"postgresql": ("postgres",), "rabbitmq": ("beam.smp",)}


def service_cpu() -> dict[int, tuple[str, float]]:
    """PostgreSQL's and RabbitMQ's processes: pid -> (kind, CPU seconds)."""
    import psutil

    used: dict[int, tuple[str, float]] = {}
    for proc in psutil.process_iter(["name", "cpu_times"]):
        times = proc.info["cpu_times"]
        for kind, names in SERVICE_PROCESSES.items():
            if proc.info["name"] in names and times:
                used[proc.pid] = (kind, times.user + times.system)
    return used


def services_seconds() -> dict[str, float]:
    """CPU seconds PostgreSQL and RabbitMQ have used so far, by kind: their
    live processes, and what their exited children used (a backend whose
    connection closed is reaped by the postmaster and counted there)."""
    import psutil

    names = {p.pid: p.info["name"] for p in psutil.process_iter(["name"])}
    used = dict.fromkeys(SERVICE_PROCESSES, 0.0)
    for proc in psutil.process_iter(["name", "ppid", "cpu_times"]):
        times = proc.info["cpu_times"]
        for kind, service in SERVICE_PROCESSES.items():
            if proc.info["name"] in service and times:
                used[kind] += times.user + times.system
                if names.get(proc.info["ppid"]) not in service:  # its root
                    used[kind] += times.children_user + times.children_system
    return used


def kinds_cpu(kinds: dict[str, Proc]) -> dict:
    return {
        "ours": {kind: cpu_seconds(proc.pid) for kind, proc in kinds.items()},
        "services": service_cpu(),
        "machine": machine_cpu(),
    }


def cores_used(before: dict, after: dict, wall: float) -> dict[str, float]:
    """Cores each kind kept busy between two ``kinds_cpu`` samples: ours by
    kind, PostgreSQL and RabbitMQ (processes alive at the end; a backend
    that exited meanwhile counts under "other"), and "other" for the rest
    of the machine (the load generator among it)."""
    cores = {k: (after["ours"][k] - before["ours"][k]) / wall for k in after["ours"]}
    for kind in SERVICE_PROCESSES:
        cores[kind] = 0.0
    for pid, (kind, seconds) in after["services"].items():
        start = before["services"].get(pid, (kind, 0.0))[1]
        cores[kind] += max(0.0, seconds - start) / wall
    machine = (after["machine"] - before["machine"]) / wall
    cores["other"] = max(0.0, machine - sum(cores.values()))
    return cores


def visible_p99(after_id: int, expect: int, timeout: float = 30.0) -> float:
    """p99 seconds from the log's commit to the feed row, of the events
    logged after ``after_id`` (inf if not all ``expect`` are on the feed
    within ``timeout``)."""
    deadline = time.monotonic() + timeout
    with db_conn() as conn:
        conn.autocommit = True
        while time.monotonic() < deadline:
            row = conn.execute(
                """
                SELECT count(f.id), percentile_cont(0.99) WITHIN GROUP (ORDER BY
                       extract(epoch FROM f.received_at - l.created_at))
                FROM messaging_loggedevent l
                LEFT JOIN feed_feedevent f
                  ON f.source = l.source AND f.event_id = l.event_id
                WHERE l.id > %s
                """,
                [after_id],
            ).fetchone()
            if row[0] >= expect:
                return float(row[1])
            time.sleep(0.2)
    return float("inf")


def capacity_design(
    label: str,
    url: str,
    kinds: dict[str, Proc],
    visible: bool,
    seconds: float,
    delay: float = 0.0,
) -> list[dict]:
    """Offered registrations/s stepped up until a step fails: request p99
    over ``delay`` + ``CAPACITY_P99``, an error, or (``visible``) events not
    on the feed within ``CAPACITY_VISIBLE_P99`` at p99."""
    steps = []
    for rate in CAPACITY_STEPS:
        with db_conn() as conn:
            last_id = conn.execute(
                "SELECT coalesce(max(id), 0) FROM messaging_loggedevent"
            ).fetchone()[0]
        before, started = kinds_cpu(kinds), time.perf_counter()
        n = int(rate * seconds)
        warmup = max(50, rate)  # a second of it: connections, caches
        result = load(
            url, n, rate, f"capacity-{label}-{rate}", warmup=warmup, threads=256
        )
        wall = time.perf_counter() - started
        after = kinds_cpu(kinds)
        step = {
            "offered": rate,
            "achieved": result["achieved_rate"],
            "p50": pct(result["latencies"], 50),
            "p99": pct(result["latencies"], 99),
            "errors": result["errors"],
            "limit": delay + CAPACITY_P99,
            # Cores each kind of process kept busy over the step.
            "cores": cores_used(before, after, wall),
        }
        if visible:
            step["visible_p99"] = visible_p99(last_id, n + warmup)
        step["ok"] = (
            step["p99"] <= step["limit"]
            and not step["errors"]
            and step.get("visible_p99", 0.0) <= CAPACITY_VISIBLE_P99
        )
        steps.append(step)
        log(
            f"  {label} at {rate}/s: p99 {step['p99'] * 1000:.0f} ms, "
            f"{step['errors']} errors"
            + (f", visible p99 {step['visible_p99'] * 1000:.0f} ms" if visible else "")
            + ("" if step["ok"] else " -> saturated")
        )
        if not step["ok"]:
            break
    return steps


def pct(values: list[float], q: float) -> float:
    from bench.report import pct as percentile

    return percentile(values, q) if values else float("inf")


def bench_capacity(report: Report, seconds: float, rounds: int = 1) -> None:
    """The highest registration rate each design sustains: ours (web, relay
    and worker on this machine) and the synchronous POST to a feed service
    that stores the event itself, answering at once and after 200 ms; the
    designs take turns ``rounds`` times (medians reported)."""
    log("1b. Capacity (registrations/s, stepped)")
    truncate("feed_feedevent", "messaging_loggedevent")
    purge_queues()
    feed_port, web_port = free_port(), free_port()
    # 2 x 24 threads: with the web's 2 x 12 and the relay's and worker's own,
    # within PostgreSQL's 100 connections.
    feed = gunicorn(feed_port, "feed-service", threads=24)
    web = gunicorn(
        web_port,
        "web-capacity",
        BENCH_STUB_FEED_URL=f"http://127.0.0.1:{feed_port}/bench/feed",
    )
    relay = Proc("relay-capacity", [PY, "manage.py", "relay_outbox"], env(), LOGS)
    worker = celery_worker("portal", "feed", "worker-capacity")
    base = f"http://127.0.0.1:{web_port}/bench/register"
    ours = {"web": web, "relay": relay, "worker": worker}
    sync = {"web": web, "feed": feed}
    designs = [
        ("ours", f"{base}/event/", ours, True, 0.0),
        ("sync-0ms", f"{base}/sync/?delay=0", sync, False, 0.0),
        ("sync-200ms", f"{base}/sync/?delay=200", sync, False, 0.2),
    ]
    try:
        wait_consumer(settings_queue("feed"))
        for round_ in range(rounds):
            log(f"  round {round_ + 1}/{rounds}")
            for label, url, kinds, visible, delay in designs:
                report.capacity.setdefault(label, []).append(
                    capacity_design(label, url, kinds, visible, seconds, delay)
                )
    finally:
        for proc in (web, feed, relay, worker):
            proc.stop()
    truncate("feed_feedevent", "messaging_loggedevent")
    purge_queues()


def settings_queue(name: str) -> str:
    from portal.messaging.subscriptions import subscription_named

    subscription = subscription_named(name)
    assert subscription is not None
    return subscription.queue


# --- 5. feed reads -------------------------------------------------------------------

NEXT_LINK = re.compile(r'href="([^"]*[?&](?:cursor|before|after)=[^"]*)"')


def bench_reads(report: Report, events: int, employees: int, samples: int) -> None:
    log(f"5. Feed reads at {events:,} events and {employees:,} employees")
    truncate("feed_feedevent", "messaging_loggedevent")
    with db_conn() as conn:
        data.fill_employees(conn, employees)
        data.fill_feed(conn, events)
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE feed_feedevent")
        conn.execute("ANALYZE registrar_employee")
    import html

    (Path(os.environ["PORTAL_VAR_DIR"]) / "static").mkdir(parents=True, exist_ok=True)

    import numpy as np
    from django.contrib.auth import get_user_model
    from django.db import close_old_connections, connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    close_old_connections()
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(
        username="bench", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)

    def measure(label: str, url: str) -> None:
        for _ in range(3):
            client.get(url)
        timings = []
        budget = time.perf_counter() + READ_SECONDS_PER_PAGE
        while len(timings) < samples and (
            len(timings) < 10 or time.perf_counter() < budget
        ):
            start = time.perf_counter()
            response = client.get(url)
            timings.append(time.perf_counter() - start)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        report.reads[label] = {
            "url": url,
            "status": response.status_code,
            "p50": float(np.percentile(timings, 50)),
            "p99": float(np.percentile(timings, 99)),
            "samples": len(timings),
            "queries": len(queries),
            "bytes": len(response.content),
            "sql_ms": sum(float(q["time"]) for q in queries.captured_queries) * 1000,
        }
        slowest = max(queries.captured_queries, key=lambda q: float(q["time"]))
        if report.reads[label]["p99"] > 0.05 and slowest["sql"].startswith("SELECT"):
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest["sql"])
                plan = "\n".join(row[0] for row in cursor.fetchall())
            report.read_plans[label] = (slowest["sql"], float(slowest["time"]), plan)
        log(
            f"  {label}: p50 {report.reads[label]['p50'] * 1000:.1f} ms, "
            f"{len(queries)} queries, HTTP {response.status_code}"
        )

    def deep(url: str, pages: int, api: bool) -> str | None:
        for _ in range(pages):
            response = client.get(url)
            if response.status_code != 200:
                return None
            if api:
                nxt = response.json().get("next")
            else:
                match = NEXT_LINK.search(response.content.decode())
                nxt = html.unescape(match.group(1)) if match else None
            if not nxt:
                return None
            if "://" in nxt:
                nxt = urlsplit(nxt)._replace(scheme="", netloc="").geturl()
            url = urlsplit(url).path + nxt if nxt.startswith("?") else nxt
        return url

    api = client.get("/api/feed/")
    has_api = api.status_code == 200 and api.get("Content-Type", "").startswith(
        "application/json"
    )
    report.notes.append(
        "GET /api/feed/ "
        + (
            "exists and was measured."
            if has_api
            else f"answered HTTP {api.status_code}: not measured."
        )
    )
    deep_pages = 10
    if has_api:
        measure("API first page", "/api/feed/")
        deep_url = deep("/api/feed/", deep_pages, api=True)
        if deep_url:
            measure(f"API deep page (cursor, {deep_pages} pages in)", deep_url)
        measure("API filtered (type)", "/api/feed/?type=thanks.sent")
        measure("API filtered (department)", "/api/feed/?department=Department%2003")
        for size in (10, 100):
            measure(f"API first page, page_size={size}", f"/api/feed/?page_size={size}")
    measure("home first page", "/")
    deep_url = deep("/", deep_pages, api=False)
    if deep_url:
        measure(f"home deep page (cursor, {deep_pages} pages in)", deep_url)
    else:
        report.notes.append("The home page has no cursor link to follow: no deep page.")
    measure("home filtered (type)", "/?type=thanks.sent")
    # What every open feed page asks every few seconds: the cards that
    # arrived after the newest one it shows.
    from feed.selectors import feed_newest_id

    measure("home poll for arrivals", f"/feed/arrived/?since={feed_newest_id() - 5}")

    from feed.selectors import feed_events_list

    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        list(feed_events_list()[:50])
        timings.append(time.perf_counter() - start)
    report.reads["selector feed_events_list()[:50]"] = {
        "url": "-",
        "status": 200,
        "queries": 1,
        "bytes": 0,
        "p50": float(np.percentile(timings, 50)),
        "p99": float(np.percentile(timings, 99)),
    }


def onboarding_calm_start() -> None:
    """The sections before onboarding register thousands of employees whose
    onboarding no worker runs there: their commands wait in the onboarding
    queues and their rows stay pending. Empty every subscriber's queue and
    forget those onboardings, so that the onboarding section's worker works
    only on its own registrations (and its wait for a calm pipeline ends)."""
    from portal.messaging.subscriptions import subscriptions

    connection, channel = broker_channel()
    try:
        for subscription in subscriptions():
            channel.queue_purge(subscription.queue)
    finally:
        connection.close()
    with db_conn() as conn:
        conn.execute(
            "UPDATE messaging_loggedevent SET status = 'sent', undelivered = '[]'"
            " WHERE status = 'pending'"
        )
    truncate(
        "registrar_onboarding", "onboarding_welcomemail", "onboarding_directoryaccount"
    )


def service_at_scale(report: Report, batches: int) -> None:
    """The consumer's service on the full feed table: the same batches as the
    in-process profile, so the two rates compare."""
    from django.db import close_old_connections

    from feed.services import feed_events_apply

    close_old_connections()
    with db_conn() as conn:
        rows = feed_count(conn)
    per_message = _events_per_message()
    items = list(data.envelopes(batches * per_message, seed=15))
    chunks = [items[i : i + per_message] for i in range(0, len(items), per_message)]
    feed_events_apply(envelopes=chunks.pop(0))  # warm up: first touch of the indexes
    start = time.perf_counter()
    for chunk in chunks:
        feed_events_apply(envelopes=chunk)
    seconds = time.perf_counter() - start
    events = sum(len(chunk) for chunk in chunks)
    report.at_scale = {"rows": rows, "rate": events / seconds}
    log(f"  service alone at {rows:,} rows: {events / seconds:,.0f} events/s")


# --- main --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run for development (not comparable)",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated sections to skip: registration,capacity,c2v,throughput,"
        "baselines (the tuned Celery consumers inside throughput),ingest,"
        "scaling,reads,onboarding,live,observability",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="runs of every section that decides a target on a median: "
        "registration, commit-to-visible, the consumers, the capacity steps, "
        "the per-event ingest and the scaling runs (interleaved; medians "
        "reported with min-max)",
    )
    parser.add_argument(
        "--results",
        default="",
        help="name of the results files (default: latest, or quick with "
        "--quick); give another when skipping sections, so a partial run "
        "does not replace the full one",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-write the results from the last run's saved measurements",
    )
    args = parser.parse_args()
    if args.render_only:
        name = args.results or ("quick" if args.quick else "latest")
        report = pickle.loads((LOGS / f"{name}.pickle").read_bytes())
        report.write(RESULTS, name)
        log(f"Re-rendered {RESULTS / (name + '.md')}")
        return
    skip = set(filter(None, args.skip.split(",")))
    q = args.quick
    sizes = {
        "requests": 300 if q else 2000,
        "rate": 100,
        "c2v_seconds": 3 if q else 8,
        "capacity_seconds": 3 if q else 6,
        "relay_events": 10_000 if q else 50_000,
        "naive_events": 1_000 if q else 2_000,
        "tuned_events": 5_000 if q else 20_000,
        "ingest_events": 10_000 if q else 100_000,
        "feed_events": 100_000 if q else 1_000_000,
        "employees": 10_000,
        "read_samples": 30 if q else 200,
    }
    started = time.perf_counter()
    log(
        f"Benchmark on {os.environ['DATABASE_URL']} and "
        f"{os.environ['CELERY_BROKER_URL']}{' (quick)' if q else ''}"
    )
    procs.ensure_vhost()
    procs.recreate_database(env())
    import django

    django.setup()
    purge_queues()
    sizes["per_message"] = _events_per_message()
    from onboarding.subscriptions import ONBOARDING_MAIL

    sizes["onboarding_per_message"] = ONBOARDING_MAIL.max_events_per_message
    sizes["onboarding_spread"] = ONBOARDING_MAIL.min_messages
    report = Report(
        quick=q,
        sizes=sizes,
        machine=f"{platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}",
    )
    report.spy_dir = LOGS
    rss = RssSampler()
    onboarding = None
    try:
        if "registration" not in skip:
            bench_registration(
                report, rss, sizes["requests"], sizes["rate"], runs=args.rounds
            )
        if "capacity" not in skip:
            bench_capacity(report, sizes["capacity_seconds"], args.rounds)
        if "c2v" not in skip:
            bench_commit_to_visible(
                report, rss, sizes["c2v_seconds"], [50, 200, 500], runs=args.rounds
            )
            from django.conf import settings

            if not getattr(settings, "CELERY_DB_REUSE_MAX", None):
                bench_commit_to_visible(
                    report, rss, sizes["c2v_seconds"], [200], what_if=True
                )
        if "throughput" not in skip:
            items = bench_relay(report, sizes["relay_events"], args.rounds)
            bench_consumers(
                report,
                rss,
                items,
                sizes["naive_events"],
                0 if "baselines" in skip else sizes["tuned_events"],
                runs=args.rounds,
            )
            profile_consumer(report, 30 if q else 100)
            consumer_database_cost(report, 10 if q else 50, rounds=args.rounds)
            if report.relay["rate"] < 20_000:
                profile_relay(report, 5_000 if q else 20_000)
        if "ingest" not in skip:
            bench_ingest(report, sizes["ingest_events"], args.rounds)
        if "scaling" not in skip:
            bench_scaling(report, sizes["relay_events"], args.rounds)
        if "reads" not in skip:
            bench_reads(
                report, sizes["feed_events"], sizes["employees"], sizes["read_samples"]
            )
            service_at_scale(report, 5 if q else 20)
        if "onboarding" not in skip:
            from bench.onboarding import bench_onboarding

            onboarding_calm_start()
            onboarding = bench_onboarding(logs=LOGS, quick=q, log=log)
        if "live" not in skip:
            from bench.live import measure_live

            report.live = measure_live(clients=50 if q else 200, events=20 if q else 50)
        if "observability" not in skip:
            # Its own module and results file (bench/results/observability.md).
            from bench.observability import bench_observability

            report.observability = bench_observability(quick=q, recreate=False)
    finally:
        rss.close()
        report.rss = {"per_process": rss.peak_process, "total": rss.peak_total}
    report.seconds = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    name = args.results or ("quick" if q else "latest")
    # Kept so the tables can be re-rendered without re-running:
    # `python -m bench.run --render-only`.
    (LOGS / f"{name}.pickle").write_bytes(pickle.dumps(report))
    report.write(RESULTS, name)
    if onboarding is not None:
        from bench.onboarding import onboarding_write

        onboarding_write(RESULTS, name, onboarding)
    if getattr(report, "live", None):
        from bench.live import results_section

        with open(RESULTS / f"{name}.md", "a") as results:
            results.write(results_section(report.live))
    log(f"Done in {report.seconds:.0f}s: {RESULTS / (name + '.md')}")


if __name__ == "__main__":
    sys.exit(main())
