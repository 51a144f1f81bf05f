"""Commit-to-visible driver: registrations at a steady rate, timed until readable.

Registers employees through ``registrar.services.employee_register`` (our
design, after-commit publish in a background thread) on a fixed timetable,
stamping each right after its commit. A bench-only trigger on the feed table
NOTIFYs at the worker's commit (PostgreSQL delivers notifications only when
the inserting transaction commits), so the notification's arrival is the
moment the event became readable. Prints JSON with latencies in seconds.
"""

import argparse
import json
import os
import threading
import time
import uuid

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.benchsite.settings")
django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import close_old_connections  # noqa: E402

from portal.testing.urls import database_url  # noqa: E402
from registrar.models import Department  # noqa: E402
from registrar.services import employee_register  # noqa: E402


def _dsn() -> str:
    return database_url()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    listen = psycopg.connect(_dsn(), autocommit=True)
    listen.execute("LISTEN bench_feed")
    seen: list[tuple[float, int, int]] = []
    stop = threading.Event()

    def listener() -> None:
        while not stop.is_set():
            for note in listen.notifies(timeout=0.2):
                lo, hi = note.payload.split(",")
                seen.append((time.perf_counter(), int(lo), int(hi)))

    threading.Thread(target=listener, daemon=True).start()
    department, _ = Department.objects.get_or_create(name="Bench C2V")
    close_old_connections()

    committed: dict[int, float] = {}
    lock = threading.Lock()
    total = int(args.rate * args.seconds)
    interval = 1.0 / args.rate
    start = time.perf_counter() + 0.1
    counter = iter(range(total))
    run_id = uuid.uuid4().hex[:8]

    def worker() -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            due = start + index * interval
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            employee = employee_register(
                full_name=f"C2V Person {index}",
                email=f"c2v-{run_id}-{index}@bench.example",
                position="Engineer",
                department=department,
            )
            committed[employee.pk] = time.perf_counter()

    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    achieved = total / (time.perf_counter() - start)
    # Wait for the stragglers (the relay's grace period is the worst case).
    deadline = time.perf_counter() + 15
    with psycopg.connect(_dsn()) as db:
        while time.perf_counter() < deadline:
            time.sleep(0.3)
            (count,) = db.execute(
                "SELECT count(*) FROM feed_feedevent WHERE source = %s"
                " AND (data->>'employee_id')::bigint = ANY(%s)",
                (f"{settings.PORTAL_EVENT_SOURCE}/registrar", list(committed)),
            ).fetchone()
            if count >= len(committed):
                break
        stop.set()
        time.sleep(0.3)
        latencies = []
        for seen_at, lo, hi in list(seen):
            rows = db.execute(
                "SELECT (data->>'employee_id')::bigint FROM feed_feedevent"
                " WHERE id BETWEEN %s AND %s AND type = 'employee.registered'",
                (lo, hi),
            ).fetchall()
            for (employee_id,) in rows:
                if employee_id in committed:
                    latencies.append(seen_at - committed[employee_id])
    print(
        json.dumps(
            {
                "latencies": latencies,
                "registered": len(committed),
                "offered_rate": args.rate,
                "achieved_rate": achieved,
            }
        )
    )


if __name__ == "__main__":
    main()
