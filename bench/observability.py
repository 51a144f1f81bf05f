"""What observing the pipeline costs, what the workers' GC tuning gains, and
how fast the log is read again.

``make bench`` runs this as its "observability" section; on its own:
``python -m bench.observability [--quick]`` (its own database
``portal_bench_obs``, the bench's vhost). Writes
``bench/results/observability.md``.

* **Journey recording**: the relay (``Relay.drain`` over logged rows; the
  journey adds the routes to the UPDATE it makes anyway) and the feed's
  consumer (one worker process draining task messages of 1,000 events; the
  journey adds one INSERT per message, plus the metrics), each with
  ``EVENT_JOURNEY`` on and off, alternating, median of the runs.
* **The workers' GC tuning** (``portal/gc_tuning.py``): the same consumer
  run with ``GC_GEN0_THRESHOLD`` 10,000 (the default) and 0 (Python's own
  collector settings), alternating, median of the runs.
* **Replay into the feed**: ``events_replay`` of the whole log to the feed
  while a worker (2 processes, as in docker compose) applies it: from the
  start of the replay until the last card is on the feed (the feed emptied
  first), and again with every card already there (all duplicates).
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench_obs"
)
os.environ.setdefault("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/bench")
os.environ.setdefault("PORTAL_VAR_DIR", "/tmp/var-bench-obs")
os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.base"
os.environ.setdefault("LOG_LEVEL", "ERROR")
os.environ.setdefault("WORKER_METRICS_PORT", "0")

from bench import data, procs  # noqa: E402
from bench.procs import BIN, Proc  # noqa: E402
from bench.rows import RowProbe  # noqa: E402

LOGS = Path(os.environ["PORTAL_VAR_DIR"]) / "bench-logs"
# How many events the journey's rows cover (a row covers a run of log ids).
HOP_EVENTS = "SELECT coalesce(sum(log_id_last - log_id + 1), 0) FROM messaging_eventhop"
# The feed's rows, counted cheaply while a drain runs (bench/rows.py).
FEED_ROWS = RowProbe("feed_feedevent")


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def env(**overrides: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **overrides}


def db():
    import psycopg

    conn = psycopg.connect(os.environ["DATABASE_URL"])
    conn.autocommit = True
    return conn


def count(sql: str) -> int:
    with db() as conn:
        return conn.execute(sql).fetchone()[0]


def truncate(*tables: str) -> None:
    with db() as conn:
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


def log_rows(items: list[dict], *, status: str = "pending") -> None:
    """Log rows for ``items`` (COPY), owed to their destinations when pending."""
    from portal.messaging.subscriptions import destinations_for

    created = datetime.now(UTC) - timedelta(minutes=1)
    with (
        db() as conn,
        conn.cursor() as cur,
        cur.copy(
            "COPY messaging_loggedevent (event_id, source, type, envelope, origin,"
            " status, undelivered, attempts, last_error, created_at, logged_by,"
            " routes) FROM STDIN"
        ) as copy,
    ):
        for item in items:
            owed = destinations_for(item["type"]) if status == "pending" else []
            copy.write_row(
                (item["id"], item["source"], item["type"], json.dumps(item),
                 "portal", status, json.dumps(owed), 0, "", created, "bench",
                 "{}")
            )  # fmt: skip


def purge() -> None:
    from kombu import Connection

    from portal.messaging import topology
    from portal.messaging.subscriptions import subscriptions

    with Connection(os.environ["CELERY_BROKER_URL"]) as conn:
        topology.declare(conn)
        channel = conn.channel()
        for s in subscriptions():
            channel.queue_purge(s.queue)
        channel.close()


def worker(name: str, concurrency: int, **overrides: str) -> Proc:
    proc = Proc(
        name,
        [str(BIN / "celery"), "-A", "portal", "worker", "-Q", "feed",
         f"--concurrency={concurrency}", "--loglevel=WARNING",
         "--without-mingle", "--without-gossip", "-n", f"{name}@%h"],
        env(**overrides),
        LOGS,
    )  # fmt: skip
    return proc


def wait_consumers(expected: int, timeout: float = 60) -> None:
    from kombu import Connection

    deadline = time.monotonic() + timeout
    with Connection(os.environ["CELERY_BROKER_URL"]) as conn:
        while time.monotonic() < deadline:
            channel = conn.channel()
            _, _, consumers = channel.queue_declare(queue="feed", passive=True)
            channel.close()
            if consumers >= expected:
                return
            time.sleep(0.2)
    raise RuntimeError("the worker did not start consuming")


def wait_count(
    rows: str | RowProbe, expect: int, proc: Proc, timeout: float = 600
) -> float:
    """Seconds until ``rows`` (a counting query, or a ``RowProbe`` for a big
    table) counts ``expect``, asked every 20 ms."""
    started = time.perf_counter()
    with db() as conn:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if isinstance(rows, RowProbe):
                seen = rows.count(conn, expect)
            else:
                seen = conn.execute(rows).fetchone()[0]
            if seen >= expect:
                return time.perf_counter() - started
            if not proc.alive():
                raise RuntimeError(f"{proc.name} died; see {proc.log_path}")
            time.sleep(0.02)
    raise RuntimeError(f"{rows}: fewer than {expect} after {timeout}s")


# --- journey recording ---------------------------------------------------------


def cpu_seconds(proc: Proc) -> float:
    """CPU time (user + system) of a process and its children so far."""
    import psutil

    root = psutil.Process(proc.pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def relay_rate(items: list[dict], journey: bool) -> tuple[float, float]:
    """(events/s, CPU µs per event in the relay's process)."""
    from django.conf import settings
    from django.db import close_old_connections

    from portal.messaging.relay import Relay

    truncate("messaging_loggedevent")
    purge()
    log_rows(items)
    settings.EVENT_JOURNEY = journey
    close_old_connections()
    started, cpu = time.perf_counter(), time.process_time()
    sent = Relay(grace=0).drain()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    if sent != len(items):
        raise RuntimeError(f"relay sent {sent} of {len(items)}")
    return sent / seconds, cpu / sent * 1e6


def consumer_rate_from_first_row(
    items: list[dict], journey: bool, **overrides: str
) -> tuple[float, float]:
    """(events/s from the first card to the last, the worker's CPU µs per
    event over the same span, its pool process included)."""
    from django.conf import settings
    from django.db import close_old_connections

    from portal.messaging.relay import Relay

    truncate("messaging_loggedevent", "feed_feedevent", "messaging_eventhop")
    purge()
    log_rows(items)
    settings.EVENT_JOURNEY = True
    close_old_connections()
    Relay(grace=0).drain()
    proc = worker("obs-consumer", 1, EVENT_JOURNEY="1" if journey else "0", **overrides)
    try:
        wait_count(FEED_ROWS, 1, proc, timeout=60)
        cpu = cpu_seconds(proc)
        first = count("SELECT count(*) FROM feed_feedevent")
        seconds = wait_count(FEED_ROWS, len(items), proc)
        if journey:  # the last message's hops follow its commit
            wait_count(HOP_EVENTS, len(items), proc, 30)
        cpu = cpu_seconds(proc) - cpu
    finally:
        proc.stop()
    hops = count(HOP_EVENTS)
    expected_hops = len(items) if journey else 0
    if hops != expected_hops:
        raise RuntimeError(f"{hops} hops for {len(items)} events (journey {journey})")
    return (len(items) - first) / seconds, cpu / (len(items) - first) * 1e6


def bench_journey(events: int, rounds: int) -> dict:
    items = list(data.envelopes(events, seed=21))
    relay: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    consumer: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for round_ in range(rounds):
        for journey in (True, False) if round_ % 2 == 0 else (False, True):
            relay[journey].append(relay_rate(items, journey))
            consumer[journey].append(consumer_rate_from_first_row(items, journey))
            for name, runs in (("relay", relay), ("consumer", consumer)):
                rate, cpu = runs[journey][-1]
                log(f"  {name}, journey {'on' if journey else 'off'}: "
                    f"{rate:,.0f} events/s, {cpu:.1f} µs CPU/event")  # fmt: skip
    result = {}
    for name, runs in (("relay", relay), ("consumer", consumer)):
        on = statistics.median(r for r, _ in runs[True])
        off = statistics.median(r for r, _ in runs[False])
        cpu_on = statistics.median(c for _, c in runs[True])
        cpu_off = statistics.median(c for _, c in runs[False])
        result[name] = {
            "on": on,
            "off": off,
            "cost": 1 - on / off,
            "cpu_on": cpu_on,
            "cpu_off": cpu_off,
            "cpu_cost": cpu_on / cpu_off - 1,
            "runs_on": [r for r, _ in runs[True]],
            "runs_off": [r for r, _ in runs[False]],
        }
    return result


def bench_gc(events: int, rounds: int) -> dict:
    """The feed's consumer with the workers' GC tuning (portal/gc_tuning.py)
    and with Python's defaults (``GC_GEN0_THRESHOLD=0``), alternating."""
    items = list(data.envelopes(events, seed=22))
    runs: dict[str, list[tuple[float, float]]] = {"10000": [], "0": []}
    for round_ in range(rounds):
        for threshold in ("10000", "0") if round_ % 2 == 0 else ("0", "10000"):
            rate, cpu = consumer_rate_from_first_row(
                items, True, GC_GEN0_THRESHOLD=threshold
            )
            runs[threshold].append((rate, cpu))
            log(f"  consumer, GC_GEN0_THRESHOLD={threshold}: "
                f"{rate:,.0f} events/s, {cpu:.1f} µs CPU/event")  # fmt: skip
    tuned, default = runs["10000"], runs["0"]
    return {
        "tuned": statistics.median(r for r, _ in tuned),
        "default": statistics.median(r for r, _ in default),
        "cpu_tuned": statistics.median(c for _, c in tuned),
        "cpu_default": statistics.median(c for _, c in default),
        "runs_tuned": [r for r, _ in tuned],
        "runs_default": [r for r, _ in default],
    }


# --- replay ------------------------------------------------------------------------


def bench_replay(events: int, rounds: int) -> dict:
    """``rounds`` replays into an empty feed, each followed by one into the
    full feed (every card there); medians of each kind."""
    from django.db import close_old_connections

    from feed.subscriptions import FEED
    from portal.messaging.replay import events_replay

    truncate("messaging_loggedevent", "feed_feedevent", "messaging_eventhop")
    purge()
    items = list(data.envelopes(events, seed=31))
    log_rows(items, status="sent")
    wanted = count(
        "SELECT count(*) FROM messaging_loggedevent WHERE type IN ("
        + ",".join(
            f"'{t}'" for t in {i["type"] for i in items if FEED.wants(i["type"])}
        )
        + ")"
    )
    runs: dict[str, list[dict]] = {"fresh": [], "duplicates": []}
    proc = worker("obs-replay", 2)
    try:
        wait_consumers(1)  # one channel: the main process consumes for the pool
        for _ in range(rounds):
            truncate("feed_feedevent", "messaging_eventhop")
            close_old_connections()
            for label, rows in (
                ("fresh", FEED_ROWS),
                ("duplicates", HOP_EVENTS + " WHERE outcome = 'duplicate'"),
            ):
                started = time.perf_counter()
                replayed = events_replay(FEED)
                published = time.perf_counter() - started
                waited = wait_count(rows, wanted, proc)
                total = published + waited
                runs[label].append(
                    {
                        "published_rate": replayed.sent / published,
                        "applied_rate": wanted / total,
                        "seconds": total,
                    }
                )
                log(f"  replay ({label}): published "
                    f"{replayed.sent / published:,.0f}/s, into the feed "
                    f"{wanted / total:,.0f}/s")  # fmt: skip
            if count("SELECT count(*) FROM feed_feedevent") != wanted:
                raise RuntimeError("the duplicate replay changed the feed")
    finally:
        proc.stop()
    result: dict = {"events": wanted, "rounds": rounds}
    for label, kind in runs.items():
        result[label] = {
            key: statistics.median(run[key] for run in kind)
            for key in ("published_rate", "applied_rate", "seconds")
        }
        result[label]["runs"] = [run["applied_rate"] for run in kind]
    return result


def _overlap_notes(journey: dict) -> list[str]:
    """A line per measurement whose on and off runs overlap: its difference
    is within the machine's drift, not a cost."""
    lines = []
    for name in ("relay", "consumer"):
        on, off = journey[name]["runs_on"], journey[name]["runs_off"]
        if min(on) <= max(off) and min(off) <= max(on):
            lines += [
                f"The {name}'s runs with the journey on ({min(on):,.0f}–"
                f"{max(on):,.0f}) and off ({min(off):,.0f}–{max(off):,.0f}) "
                "overlap: its difference is within this machine's drift, not "
                "a measured cost.",
                "",
            ]
    return lines


def markdown(journey: dict, gc: dict, replay: dict, sizes: dict) -> str:
    lines = [
        "# Observability: what it costs, the workers' GC tuning, and the replay rate",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores; "
        f"{sizes['journey']:,} events per journey run ({sizes['rounds']} rounds, "
        f"on and off alternating, medians), {sizes['replay']:,} events replayed. "
        "`python -m bench.observability` (module doc: what each number is).",
        "",
        "| measurement | journey on | journey off | cost (throughput) "
        "| CPU per event on / off | cost (CPU) |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (
        ("relay", "relay, log → RabbitMQ with confirms"),
        ("consumer", "feed consumer, one worker process, 1,000 events a message"),
    ):
        r = journey[name]
        lines.append(
            f"| {label} | {r['on']:,.0f} events/s | {r['off']:,.0f} events/s "
            f"| {r['cost'] * 100:+.1f} % | {r['cpu_on']:.1f} / {r['cpu_off']:.1f} µs "
            f"| {r['cpu_cost'] * 100:+.1f} % |"
        )
    lines += [
        "",
        "The CPU columns are the process's own CPU time per event (the relay's; "
        "the worker's main and pool process), which other load on the machine "
        "disturbs far less than throughput; the database's share is not in "
        "them.",
        "",
        "Runs (events/s): "
        + "; ".join(
            f"{name} on {', '.join(f'{v:,.0f}' for v in journey[name]['runs_on'])}"
            f" / off {', '.join(f'{v:,.0f}' for v in journey[name]['runs_off'])}"
            for name in ("relay", "consumer")
        ),
        "",
        *_overlap_notes(journey),
        "| feed consumer, one worker process | GC tuned (`GC_GEN0_THRESHOLD` "
        "10,000, frozen) | Python's defaults (`GC_GEN0_THRESHOLD=0`) | gain "
        "(throughput) | CPU per event tuned / defaults |",
        "|---|---|---|---|---|",
        f"| {sizes['journey']:,} events, journey on, {sizes['rounds']} rounds "
        f"alternating | {gc['tuned']:,.0f} events/s | {gc['default']:,.0f} events/s "
        f"| {(gc['tuned'] / gc['default'] - 1) * 100:+.1f} % "
        f"| {gc['cpu_tuned']:.1f} / {gc['cpu_default']:.1f} µs |",
        "",
        "Runs (events/s): tuned "
        + ", ".join(f"{v:,.0f}" for v in gc["runs_tuned"])
        + " / defaults "
        + ", ".join(f"{v:,.0f}" for v in gc["runs_default"]),
        "",
        "| replay to the feed (worker: 2 processes) | published | into the feed "
        "| target |",
        "|---|---|---|---|",
    ]
    for label, name in (
        ("empty feed", "fresh"),
        ("every card there (duplicates)", "duplicates"),
    ):
        r = replay[name]
        met = "met" if r["applied_rate"] >= 20_000 else "**missed**"
        lines.append(
            f"| {replay['events']:,} events, {label} | {r['published_rate']:,.0f}/s "
            f"| {r['applied_rate']:,.0f}/s ({r['seconds']:.1f} s; "
            f"{min(r['runs']):,.0f}–{max(r['runs']):,.0f}) | ≥ 20,000/s: {met} |"
        )
    lines += [
        "",
        f"Replay: medians of {replay['rounds']} rounds (each an empty feed, then "
        "the full one), min–max of the rate into the feed in brackets.",
    ]
    return "\n".join(lines) + "\n"


def bench_observability(*, quick: bool = False, recreate: bool = True) -> dict:
    """Run the section; returns the numbers and writes
    ``bench/results/observability.md``. On its own it makes its database
    afresh; from ``bench.run`` (``recreate=False``) it empties the tables it
    uses in the bench's database instead."""
    sizes = {
        "journey": 10_000 if quick else 50_000,
        "rounds": 2 if quick else 4,
        "replay": 20_000 if quick else 100_000,
        "replay_rounds": 1 if quick else 3,
    }
    log("Observability: journey cost and replay rate")
    if recreate:
        procs.ensure_vhost()
        procs.recreate_database(env())
    import django

    django.setup()
    journey = bench_journey(sizes["journey"], sizes["rounds"])
    gc = bench_gc(sizes["journey"], sizes["rounds"])
    replay = bench_replay(sizes["replay"], sizes["replay_rounds"])
    # A quick run is for development: it stays out of the results.
    out = (
        RESULTS / "tmp" / "observability-quick.md"
        if quick
        else RESULTS / "observability.md"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(journey, gc, replay, sizes))
    log(f"  written {out}")
    return {"journey": journey, "gc": gc, "replay": replay, "sizes": sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    bench_observability(quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
