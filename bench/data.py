"""Synthetic events and fast bulk loading (COPY) for the benchmark database."""

import json
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from portal.testing.events import DEPARTMENTS, POSITIONS, cloud_event, event_data

SOURCE = "/bench/generator"
TYPES = [
    "employee.registered",
    "employee.position_changed",
    "team.member_joined",
    "team.member_left",
    "thanks.sent",
    "department.renamed",
]
TYPE_WEIGHTS = [30, 25, 15, 10, 19, 1]
# The version the portal's producers emit now (the registrar and the feed
# write v2 where there is one). Events of an older version would make every
# subscriber task upcast them, with a registrar lookup per event, which the
# baselines (which apply or COPY what they get) never do. BENCH_EVENT_VERSION=1
# measures that path.
EVENT_VERSION = int(os.environ.get("BENCH_EVENT_VERSION", "2"))


def current_data(kind: str, n: int) -> tuple[dict, int]:
    """The n-th event's ``data`` of ``kind`` and its version: the harness's
    v1 data, with the ids v2 adds (department n % 20 + 1, team n % 100 + 1)
    when ``EVENT_VERSION`` is 2 and the type has a v2."""
    data = event_data(kind, n)
    if EVENT_VERSION < 2:
        return data, 1
    department_id = n % len(DEPARTMENTS) + 1
    if kind == "employee.registered":
        return {**data, "department_id": department_id, "team_id": n % 100 + 1}, 2
    if kind in ("employee.position_changed", "team.member_joined", "team.member_left"):
        return {**data, "department_id": department_id}, 2
    if kind == "thanks.sent":
        return {
            **data,
            "from_department_id": department_id,
            "to_department_id": (n + 1) % len(DEPARTMENTS) + 1,
        }, 2
    return data, 1


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.start = time.perf_counter()
        self._last = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self._last < 0.2 and self.done < self.total:
            return
        self._last = now
        width = 30
        filled = int(width * self.done / self.total)
        rate = self.done / max(now - self.start, 1e-9)
        sys.stderr.write(
            f"\r  {self.label:<22} [{'#' * filled}{'.' * (width - filled)}] "
            f"{self.done:>9,}/{self.total:,} {rate:>9,.0f}/s"
        )
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def envelope(
    i: int,
    rng: random.Random,
    *,
    when: datetime,
    kind: str | None = None,
    source: str = SOURCE,
) -> dict:
    """The i-th synthetic event (the harness's factory, at the version the
    portal emits now: ``current_data``): a type drawn with ``TYPE_WEIGHTS``
    unless ``kind`` is given, a reproducible id."""
    kind = kind or rng.choices(TYPES, TYPE_WEIGHTS)[0]
    data, version = current_data(kind, i)
    return cloud_event(
        kind,
        n=i,
        source=source,
        event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        time=when,
        data=data,
        dataschemaversion=version,
    )


def envelopes(n: int, *, seed: int = 1, kind: str | None = None) -> Iterator[dict]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    for i in range(n):
        yield envelope(i, rng, when=now - timedelta(seconds=n - i), kind=kind)


def copy_log(conn, items: list[dict]) -> None:
    """Pending event-log rows for ``items``, owed to the destinations the
    router would give them, as if committed a minute ago (Django must be set
    up: the destinations are the installed subscriptions')."""
    from portal.messaging.subscriptions import destinations_for

    created = datetime.now(UTC) - timedelta(minutes=1)
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY messaging_loggedevent (event_id, source, type, envelope, origin,"
            " status, undelivered, attempts, last_error, created_at) FROM STDIN"
        ) as copy,
    ):
        for env in items:
            copy.write_row(
                (
                    env["id"],
                    env["source"],
                    env["type"],
                    json.dumps(env),
                    "portal",
                    "pending",
                    json.dumps(destinations_for(env["type"])),
                    0,
                    "",
                    created,
                )
            )
    conn.commit()


def fill_feed(conn, n: int, *, label: str = "feed events") -> None:
    """``n`` feed events spread over two years, fast (COPY), with a progress bar."""
    from feed.rendering import department_of, render_text

    rng = random.Random(7)
    now = datetime.now(UTC)
    progress = Progress(label, n)
    span = 2 * 365 * 24 * 3600
    chunk = 50_000
    for start in range(0, n, chunk):
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY feed_feedevent (source, event_id, type, time, data, text,"
                " department, traceparent, received_at) FROM STDIN"
            ) as copy,
        ):
            for i in range(start, min(start + chunk, n)):
                when = now - timedelta(seconds=span * (n - i) / n)
                env = envelope(i, rng, when=when)
                data = env["data"]
                copy.write_row(
                    (
                        env["source"],
                        env["id"],
                        env["type"],
                        when,
                        json.dumps(data),
                        render_text(env["type"], data),
                        department_of(env["type"], data),
                        "",
                        when,
                    )
                )
        conn.commit()
        progress.advance(min(chunk, n - start))


def fill_employees(conn, n: int) -> None:
    """``n`` employees in 20 departments and 100 teams, by COPY."""
    progress = Progress("employees", n)
    now = datetime.now(UTC)
    with conn.cursor() as cur:
        for name in DEPARTMENTS:
            cur.execute(
                "INSERT INTO registrar_department (name, created_at) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING",
                (name, now),
            )
        cur.execute(
            "SELECT id, name FROM registrar_department WHERE name = ANY(%s)",
            (list(DEPARTMENTS),),
        )
        dept_ids = [row[0] for row in cur.fetchall()]
        for t in range(100):
            cur.execute(
                "INSERT INTO registrar_team (name, department_id, created_at)"
                " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (f"Team {t}", dept_ids[t % len(dept_ids)], now),
            )
        cur.execute(
            "SELECT id, department_id FROM registrar_team WHERE name LIKE 'Team %%'"
        )
        teams = cur.fetchall()
        with cur.copy(
            "COPY registrar_employee (full_name, email, position, department_id,"
            " team_id, hired_on, is_active, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(n):
                team_id, dept_id = teams[i % len(teams)]
                copy.write_row(
                    (
                        f"Person {i}",
                        f"person{i}@gen.example",
                        POSITIONS[i % len(POSITIONS)],
                        dept_id,
                        team_id,
                        now.date(),
                        True,
                        now,
                        now,
                    )
                )
    conn.commit()
    progress.advance(n)
