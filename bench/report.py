"""The results file (markdown tables, ratios, targets) and the PNG plots."""

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# Where the prefork pool moves messages between its processes.
PIPES = ("billiard/connection.py", "billiard/compat.py", "billiard/pool.py")


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile, interpolated linearly between the two
    nearest ranks (numpy's default), without numpy: the verdicts and their
    tests run where the bench's extras are not installed."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def mb(size: int) -> str:
    return f"{size / 2**20:.0f} MB"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**MISSED**"


def rate_summary(runs: list[dict]) -> dict:
    """The median run's rate (lower middle for an even count) with the
    range over ``runs``, so a target can be decided on the median of
    several interleaved runs and show min–max."""
    rates = [run["rate"] for run in runs]
    return {
        "rate": median_of(rates),
        "min": min(rates),
        "max": max(rates),
        "runs": len(rates),
    }


def _onboarding_packing(sizes: dict) -> str:
    """How the run's relay packed onboarding's task messages (as the run
    recorded it)."""
    if "onboarding_per_message" not in sizes:
        return "packed as their settings say"
    text = f"up to {sizes['onboarding_per_message']:,} events a message"
    if sizes.get("onboarding_spread", 1) > 1:
        text += f", a pass's split over at least {sizes['onboarding_spread']}"
    return text


def median_of(values: list[float]) -> float:
    """The median (lower middle for an even count), as ``rate_summary``."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def spread(values: list[float], fmt) -> str:
    """``values`` as their median, with min–max when there are several runs."""
    if len(values) == 1:
        return fmt(values[0])
    return (
        f"{fmt(median_of(values))} (median of {len(values)} runs: "
        f"{fmt(min(values))}–{fmt(max(values))})"
    )


def run_ratios(runs: dict, key: str, over: str, per=None) -> list[float]:
    """Run by run, ``key``'s rate over ``over``'s (``per`` applied to each
    result first, e.g. ``per_process``): the ratios a target's median is
    taken of. ``runs`` maps a consumer to one result per interleaved run."""
    per = per or (lambda result: result["rate"])
    return [
        per(a) / per(b)
        for a, b in zip(runs.get(key, []), runs.get(over, []), strict=True)
    ]


def c2v_add(c2v: dict, rate: int, result: dict) -> None:
    """Add one run at ``rate`` to ``c2v``: latencies and counts together, the
    achieved rate as the runs' median, and the run itself under ``runs``."""
    runs = [*c2v.get(rate, {}).get("runs", []), result]
    achieved = sorted(r["achieved_rate"] for r in runs)
    c2v[rate] = {
        **result,
        "latencies": [x for r in runs for x in r["latencies"]],
        "registered": sum(r["registered"] for r in runs),
        "achieved_rate": achieved[(len(achieved) - 1) // 2],
        "runs": runs,
    }


def per_process(result: dict) -> float:
    """Events/s per pool process: a worker of prefork ``processes`` is
    credited with 1/processes of its rate (1 when not given)."""
    return result["rate"] / result.get("processes", 1)


def per_cpu_second(result: dict) -> float:
    """Events per CPU second of the consumer's own processes (NaN when not
    measured)."""
    cpu = result.get("cpu_seconds")
    return result["events"] / cpu if cpu else float("nan")


def baseline_targets(
    consumer: dict, runs: dict | None = None
) -> list[tuple[str, str, bool]]:
    """The issue's targets against the fair baselines, per pool process:
    ours >= 12 x tuned Celery (a2), >= 4 x celery-batches (a3); decided on
    the median of the runs' ratios when ``runs`` holds several."""
    targets = []
    for key, label, factor in (
        ("tuned", "tuned plain Celery (a2)", 12),
        ("batched", "celery-batches + COPY (a3)", 4),
    ):
        if key in consumer:
            ratios = run_ratios(runs or {}, "ours", key, per_process) or [
                per_process(consumer["ours"]) / per_process(consumer[key])
            ]
            targets.append(
                (
                    f"Consumer >= {factor} x {label}, per pool process",
                    spread(ratios, lambda r: f"{r:.1f} x"),
                    median_of(ratios) >= factor,
                )
            )
    return targets


def ingest_targets(ours: float, bare: float) -> list[tuple[str, str, bool]]:
    """Per-event ingest: >= 10,000 events/s for one worker, >= 70 % of bare
    pika + COPY on the same messages."""
    return [
        (
            "Per-event ingest >= 10,000 events/s (one worker)",
            f"{ours:,.0f}/s",
            ours >= 10_000,
        ),
        (
            "Per-event ingest >= 70 % of bare pika + COPY",
            f"{ours / bare:.0%}",
            ours / bare >= 0.7,
        ),
    ]


def machine_cpu_per_event(runs: list[dict]) -> dict[str, float] | None:
    """µs of CPU per event over a consumer's drains, the median of its runs
    part by part: its own processes, PostgreSQL, RabbitMQ, and all three
    (the median of the runs' sums); None for runs that did not measure the
    services."""
    if not runs or any("services" not in r for r in runs):
        return None
    parts = {
        "own": [r["cpu_seconds"] / r["events"] for r in runs],
        "postgresql": [r["services"]["postgresql"] / r["events"] for r in runs],
        "rabbitmq": [r["services"]["rabbitmq"] / r["events"] for r in runs],
    }
    parts["all"] = [sum(run) for run in zip(*parts.values(), strict=True)]
    return {part: median_of(values) * 1e6 for part, values in parts.items()}


# Ours' processes in the per-event ingest, as its runs record them.
INGEST_PROCESSES = {
    "worker": "the worker's main process (the ingest bootstep: AMQP, "
    "validation, the log's INSERT)",
    "pool": "its pool process (the feed's task: validation, COPY)",
    "relay": "the relay (SELECT, publishing with confirms, UPDATE)",
}


def process_cpu_per_event(runs: list[dict]) -> dict[str, float] | None:
    """µs of CPU per event of each of ours' processes in the per-event
    ingest (the median of the runs, process by process); None for runs that
    did not record them one by one."""
    if not runs or any("processes" not in r for r in runs):
        return None
    return {
        kind: median_of([r["processes"][kind] / r["events"] for r in runs]) * 1e6
        for kind in INGEST_PROCESSES
    }


@dataclass
class Report:
    quick: bool
    sizes: dict
    machine: str
    registration: dict = field(default_factory=dict)
    c2v: dict = field(default_factory=dict)
    relay: dict = field(default_factory=dict)
    consumer: dict = field(default_factory=dict)
    # Consumers: label -> one result per interleaved run (``--rounds``).
    consumer_runs: dict = field(default_factory=dict)
    consumer_profile: dict = field(default_factory=dict)
    consumer_database: dict = field(default_factory=dict)
    relay_profile: str = ""
    # Per-event ingest: label -> one result per interleaved round.
    ingest: dict = field(default_factory=dict)
    ingest_stages: dict = field(default_factory=dict)
    # Capacity: design -> the steps of offered load, up to the first failing.
    capacity: dict = field(default_factory=dict)
    # Scaling out: "relay"/"worker" -> processes -> one result per round.
    scaling: dict = field(default_factory=dict)
    reads: dict = field(default_factory=dict)
    rss: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    profiles: dict = field(default_factory=dict)
    what_if: dict = field(default_factory=dict)
    at_scale: dict = field(default_factory=dict)
    read_plans: dict = field(default_factory=dict)
    spy_dir: Path | None = None
    seconds: float = 0.0
    targets: list = field(default_factory=list)
    # When the run started (kept with the measurements, so a re-render says
    # when they were taken, not when they were rendered).
    run_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def _run_at(self) -> datetime:
        # A report pickled before ``run_at`` existed has none.
        return getattr(self, "run_at", None) or datetime.now(UTC)

    # --- tables -------------------------------------------------------------

    def _registration(self) -> list[str]:
        if not self.registration:
            return []
        floor = self.registration["floor"]["latencies"]
        lines = [
            "## 1. Registration request latency",
            "",
            f"{self.sizes['requests']:,} requests per design through gunicorn "
            "(`--preload`, 2 gthread workers x 12 threads; 2 x 4 for the "
            "broker-down one) on 127.0.0.1, offered "
            f"open-loop at {self.sizes['rate']:.0f} req/s from another process; "
            "latency from the scheduled send to the full response. The designs "
            "take turns in 8 rounds (warm-up requests discarded) so that the "
            "shared machine's noise falls on all of them alike; the broker-down "
            "design has its own gunicorn with `CELERY_BROKER_URL` on a closed "
            "port.",
            "",
            "| design | p50 ms | p95 ms | p99 ms | p99 / floor p99 | errors |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for label, result in self.registration.items():
            lat = result["latencies"]
            lines.append(
                f"| {label} | {ms(pct(lat, 50))} | {ms(pct(lat, 95))} | "
                f"{ms(pct(lat, 99))} | {pct(lat, 99) / pct(floor, 99):.2f} | "
                f"{result['errors']} |"
            )
        lines += [
            "",
            "The synchronous design minus our design, per percentile "
            "(must be at least the feed's delay):",
            "",
            "| feed delay | p50 diff ms | p95 diff ms | p99 diff ms |",
            "|---|---:|---:|---:|",
        ]
        ours = self.registration["outbox"]["latencies"]
        for delay in (0, 50, 200):
            sync = self.registration.get(f"sync-{delay}ms")
            if sync:
                diffs = [pct(sync["latencies"], q) - pct(ours, q) for q in (50, 95, 99)]
                lines.append(
                    f"| {delay} ms | " + " | ".join(ms(d) for d in diffs) + " |"
                )
        lines.append("")
        runs = len(self.registration["floor"].get("runs") or [])
        if runs > 1:
            lines += [
                f"The section ran {runs} times; p99 / floor p99 of each run "
                "(the targets are decided on the median):",
                "",
                *(
                    f"- {label}: "
                    + ", ".join(f"{r:.2f}" for r in self.registration_ratios(label))
                    for label in self.registration
                    if label != "floor"
                ),
                "",
            ]
        for label, name, limit in (
            ("outbox", "Registration p99 <= 1.25 x floor", 1.25),
            (
                "outbox, broker down",
                "Registration p99, broker down, <= 1.5 x floor",
                1.5,
            ),
        ):
            if label in self.registration:
                ratios = self.registration_ratios(label)
                self.targets.append(
                    (
                        name,
                        spread(ratios, lambda r: f"{r:.2f} x"),
                        median_of(ratios) <= limit,
                    )
                )
        for delay in (0, 50, 200):
            sync = self.registration.get(f"sync-{delay}ms")
            if sync:
                diffs = [pct(sync["latencies"], q) - pct(ours, q) for q in (50, 95, 99)]
                self.targets.append(
                    (
                        f"Sync POST to a {delay} ms feed slower by >= {delay} ms "
                        "at p50 / p95 / p99",
                        " / ".join(f"{ms(d)} ms" for d in diffs),
                        all(d >= delay / 1000 for d in diffs),
                    )
                )
        return lines

    def registration_ratios(self, label: str) -> list[float]:
        """``label``'s p99 over the floor's, one per run of the section (one
        over all requests when it ran once)."""
        floor, other = self.registration["floor"], self.registration[label]
        pairs = list(zip(floor.get("runs") or [], other.get("runs") or [], strict=True))
        if len(pairs) < 2:
            pairs = [(floor["latencies"], other["latencies"])]
        return [pct(b, 99) / pct(a, 99) for a, b in pairs if a and b]

    def c2v_percentiles(self, rate: int, q: float) -> list[float]:
        """Commit-to-visible ``q``-th percentile at ``rate``, one per run."""
        result = self.c2v.get(rate) or self.c2v.get(str(rate))
        if not result:
            return []
        runs = result.get("runs") or [result]
        return [pct(r["latencies"], q) for r in runs if r["latencies"]]

    def _c2v(self) -> list[str]:
        if not self.c2v:
            return []
        lines = [
            "## 2. Commit-to-visible latency",
            "",
            "Registrations through the registrar service at a steady rate (one "
            "driver process of 8 threads per 100 events/s, "
            f"{self.sizes['c2v_seconds']} s per rate), published by "
            "`relay_outbox` when the committing process NOTIFYs it, consumed by "
            "`celery -A portal worker -Q feed --concurrency=1`. Visible = "
            "the worker's commit, observed by LISTEN on a bench-only NOTIFY "
            "trigger on the feed table.",
            "",
            "| offered events/s | achieved | seen | p50 ms | p95 ms | p99 ms "
            "| max ms |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for rate, result in self.c2v.items():
            lat = result["latencies"]
            lines.append(
                f"| {rate} | {result['achieved_rate']:.0f} | {len(lat)}/"
                f"{result['registered']} | {ms(pct(lat, 50))} | {ms(pct(lat, 95))} |"
                f" {ms(pct(lat, 99))} | {ms(max(lat) if lat else float('nan'))} |"
            )
        lines.append("")
        runs = max(len(r.get("runs") or [r]) for r in self.c2v.values())
        if runs > 1:
            lines += [
                f"Each rate ran {runs} times, the rates in turn; p50 / p99 ms of "
                "each run (the targets are decided on the median):",
                "",
                *(
                    f"- {rate}/s: "
                    + ", ".join(
                        f"{ms(p50)} / {ms(p99)}"
                        for p50, p99 in zip(
                            self.c2v_percentiles(rate, 50),
                            self.c2v_percentiles(rate, 99),
                            strict=True,
                        )
                    )
                    for rate in self.c2v
                ),
                "",
            ]
        for rate, q, limit in ((200, 50, 0.025), (200, 99, 0.1), (500, 99, 0.1)):
            values = self.c2v_percentiles(rate, q)
            if values:
                self.targets.append(
                    (
                        f"Commit-to-visible p{q} <= {limit * 1000:.0f} ms at {rate}/s",
                        spread(values, lambda v: f"{ms(v)} ms"),
                        median_of(values) <= limit,
                    )
                )
        return lines

    def _throughput(self) -> list[str]:
        if not self.consumer:
            return []
        c = self.consumer
        runs = getattr(self, "consumer_runs", {})
        ours, naive, bare = c["ours"]["rate"], c["naive"]["rate"], c["bare"]["rate"]
        lines = [
            "## 3. Feed consumer throughput (one worker process)",
            "",
            "Pre-filled queue drained into the feed table, acked after commit; "
            "rate from the first row seen to the last.",
            "",
            "| consumer | events | seconds | events/s |",
            "|---|---:|---:|---:|",
            f"| (a) naive: one default Celery task per event | {c['naive']['events']:,}"
            f" | {c['naive']['seconds']:.2f} | {naive:,.0f} |",
            f"| (b) ours: `feed.apply_events`, {self.sizes.get('per_message', 100)} "
            f"events per message, `--concurrency=1` | {c['ours']['events']:,} | "
            f"{c['ours']['seconds']:.2f} | {ours:,.0f} |",
            f"| (c) limit: bare pika consume+ack + COPY, same messages | "
            f"{c['bare']['events']:,} | {c['bare']['seconds']:.2f} | {bare:,.0f} |",
            "",
        ]
        tuned, batched = c.get("tuned"), c.get("batched")
        # The fair baselines go above the limit's row (c), the list's last
        # two items being that row and a blank line.
        if tuned:
            lines.insert(
                -2,
                f"| (a2) plain Celery, one task per event, tuned: connection kept "
                f"(`CELERY_DB_REUSE_MAX`), `acks_late`, prefork "
                f"{tuned['processes']}, prefetch 64 | {tuned['events']:,} | "
                f"{tuned['seconds']:.2f} | {tuned['rate']:,.0f} "
                f"({per_process(tuned):,.0f} per pool process) |",
            )
        if batched:
            lines.insert(
                -2,
                f"| (a3) celery-batches, one COPY per flushed batch "
                f"(flush_every 1000, flush_interval 50 ms, `acks_late`), prefork 1"
                f" | {batched['events']:,} | {batched['seconds']:.2f} | "
                f"{batched['rate']:,.0f} |",
            )
        lines += [
            "",
            f"**(b)/(a) = {ours / naive:.1f} x**, **(b)/(c) = {ours / bare:.0%}**"
            + (
                f", **(b)/(a2) = {ours / tuned['rate']:.1f} x** "
                f"(**{ours / per_process(tuned):.1f} x** per pool process)"
                if tuned
                else ""
            )
            + (f", **(b)/(a3) = {ours / batched['rate']:.1f} x**" if batched else "")
            + ".",
            "",
        ]
        if len(runs.get("ours", [])) > 1:
            lines += [
                f"Each row of (b), (a2), (a3) and (c) is the median of "
                f"{len(runs['ours'])} interleaved runs; the rates of every run:",
                "",
                *(
                    f"- {key}: "
                    + ", ".join(f"{r['rate']:,.0f}" for r in results)
                    + "/s"
                    for key, results in runs.items()
                ),
                "",
            ]
        cpu_rows = [
            (label, c[key])
            for key, label in (
                ("ours", "(b) ours"),
                ("naive", "(a) naive"),
                ("tuned", "(a2) tuned Celery"),
                ("batched", "(a3) celery-batches"),
            )
            if key in c and c[key].get("cpu_seconds")
        ]
        if cpu_rows:
            lines += [
                "Per worker process, two ways: (a2) runs two pool processes "
                "on the two cores, so its rate is also given per pool process "
                "(the targets use that); and the CPU seconds every process of "
                "each worker (main + pool) used while draining, psutil, "
                "PostgreSQL's and RabbitMQ's own not counted:",
                "",
                "| consumer | worker CPU s | events per worker CPU s |",
                "|---|---:|---:|",
                *(
                    f"| {label} | {r['cpu_seconds']:.1f} | {per_cpu_second(r):,.0f} |"
                    for label, r in cpu_rows
                ),
                "",
            ]
        self.targets.append(
            ("Consumer >= 10 x naive", f"{ours / naive:.1f} x", ours / naive >= 10)
        )
        to_bare = run_ratios(runs, "ours", "bare") or [ours / bare]
        self.targets.append(
            (
                "Consumer >= 70 % of bare pika + COPY",
                spread(to_bare, lambda r: f"{r:.0%}"),
                median_of(to_bare) >= 0.7,
            )
        )
        self.targets += baseline_targets(c, runs)
        self.targets.append(
            ("Consumer >= 15,000 events/s (aim)", f"{ours:,.0f}/s", ours >= 15_000)
        )
        if self.relay:
            r = self.relay
            runs = r.get("runs") or [r]
            rates = sorted(run["rate"] for run in runs)
            lines += [
                "## 4. Relay throughput",
                "",
                f"{r['events']:,} pending logged events moved to RabbitMQ with "
                "publisher confirms by `Relay(grace=0).drain()`"
                + (
                    f" ({r['threads']} passes in flight, `OUTBOX_RELAY_THREADS`)"
                    if r.get("threads")
                    else ""
                )
                + f", {len(runs)} round(s): **{r['rate']:,.0f} events/s**"
                + (
                    f" (median; {rates[0]:,.0f}–{rates[-1]:,.0f})"
                    if len(runs) > 1
                    else f" in {r['seconds']:.2f} s"
                )
                + ".",
                "",
            ]
            if r.get("cpu_us"):
                lines += [
                    "CPU per routed event in each round, by process kind "
                    "(*other* is mostly PostgreSQL backends that exited before "
                    "the end of the round, those of the relay's pass threads):",
                    "",
                    "| round | events/s | relay µs | PostgreSQL µs | RabbitMQ µs "
                    "| other µs | machine µs | machine busy |",
                    "|---:|---:|---:|---:|---:|---:|---:|---:|",
                ]
                for index, run in enumerate(runs, 1):
                    cpu = run["cpu_us"]
                    lines.append(
                        f"| {index} | {run['rate']:,.0f} | {cpu['relay']:.0f} "
                        f"| {cpu['postgresql']:.0f} | {cpu['rabbitmq']:.0f} "
                        f"| {cpu['other']:.0f} | {sum(cpu.values()):.0f} "
                        f"| {run['machine_busy']:.0%} |"
                    )
                lines.append("")
            self.targets.append(
                ("Relay >= 20,000 events/s", f"{r['rate']:,.0f}/s", r["rate"] >= 20_000)
            )
        return lines

    def _ingest(self) -> list[str]:
        runs = getattr(self, "ingest", None)
        if not runs or "ours" not in runs or "pika" not in runs:
            return []
        summary = {label: rate_summary(r) for label, r in runs.items()}
        n = runs["ours"][0]["events"]
        rounds = summary["ours"]["runs"]
        names = {
            "ours": "ours: ingest bootstep → event log → relay → `feed.apply_events`"
            " (one worker `-Q feed --concurrency=1` + `relay_outbox`)",
            "pika": "bare pika (blocking) consume+ack + COPY into the feed table",
            "aio-pika": "bare aio-pika consume+ack + COPY into the feed table",
        }
        lines = [
            "## 3b. Per-event ingest (one CloudEvent per AMQP message)",
            "",
            f"{n:,} valid `employee.registered` CloudEvents "
            f"(~{self.sizes.get('ingest_bytes', 0)} bytes each, "
            "`application/cloudevents+json`, from an outside source) published "
            "on `portal.events` and left in the ingest queue (the real topology:"
            " a quorum queue bound with `#`), then drained. Ours goes the whole "
            "real route: the worker's ingest bootstep validates each event and "
            "logs it (one transaction per batch, acked after commit), the "
            "relay publishes the logged rows to every subscriber that asks for "
            "them (task messages to `feed` and to the two onboarding "
            "subscriptions, whose workers do not run here) and one "
            "`portal.broadcast` message per event, and the worker's pool "
            "process applies the feed's; the rate is from the first "
            "logged row to the last feed row. The bare consumers take the same "
            "messages from the same queue and COPY them straight into the feed "
            "table (no validation, no log, no relay), prefetch 1,000, acking "
            "(multiple) after each commit; their rate is from the first "
            "message to the last commit. Variants interleaved in "
            f"{rounds} round(s); the median is shown"
            + (" with min–max." if rounds > 1 else "."),
            "",
            "| consumer | events/s | min–max | / bare pika | CPU s "
            "| events per CPU s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        bare = summary["pika"]["rate"]
        for label, result in summary.items():
            cpu = sorted(r["cpu_seconds"] for r in runs[label])[(rounds - 1) // 2]
            lines.append(
                f"| {names.get(label, label)} | {result['rate']:,.0f} | "
                f"{result['min']:,.0f}–{result['max']:,.0f} | "
                f"{result['rate'] / bare:.0%} | {cpu:.1f} | {n / cpu:,.0f} |"
            )
        for label, result in (getattr(self, "ingest_stages", None) or {}).items():
            lines.append(
                f"| ours, {label} ({result['events']:,} events, not interleaved)"
                f" | {result['rate']:,.0f} | | {result['rate'] / bare:.0%} | | |"
            )
        lines += [
            "",
            "CPU s: what the consumer's own processes used while draining "
            "(ours: the worker's main and pool process and the relay; the bare "
            "ones: their one process), PostgreSQL's and RabbitMQ's not counted.",
            "",
        ]
        costs = {label: machine_cpu_per_event(r) for label, r in runs.items()}
        stages = getattr(self, "ingest_stages", None) or {}
        for label, result in stages.items():
            if cost := machine_cpu_per_event([result]):
                costs[label] = cost
                names.setdefault(label, f"ours, {label} ({result['events']:,} events)")
        if all(costs.values()):
            lines += [
                "CPU per event, µs (median of the runs), with the services' "
                "share: PostgreSQL (its backends, exited ones included) and "
                "RabbitMQ over the same window — for ours from the first "
                "logged row to the last feed row, for the bare ones around "
                "their whole process (start and connections included). The "
                "services' idle work over the window counts too."
                + (
                    " The stages alone (one run each) are over their own "
                    "windows; the relay alone runs in the bench's process."
                    if len(costs) > len(runs)
                    else ""
                ),
                "",
                "| consumer | own processes | PostgreSQL | RabbitMQ | all |",
                "|---|---:|---:|---:|---:|",
                *(
                    f"| {names.get(label, label)} | {c['own']:.0f} | "
                    f"{c['postgresql']:.0f} | {c['rabbitmq']:.0f} | {c['all']:.0f} |"
                    for label, c in costs.items()
                    if c
                ),
                "",
            ]
        if split := process_cpu_per_event(runs["ours"]):
            lines += [
                "Ours' own share, process by process (µs per event, median of "
                "the runs): "
                + "; ".join(
                    f"{what} {split[kind]:.0f}"
                    for kind, what in INGEST_PROCESSES.items()
                )
                + ".",
                "",
            ]
        self.targets += ingest_targets(summary["ours"]["rate"], bare)
        return lines

    def capacity_rounds(self, design: str) -> list[list[dict]]:
        """Each round's steps for ``design`` (one list of steps per round)."""
        rounds = (getattr(self, "capacity", None) or {}).get(design, [])
        if rounds and isinstance(rounds[0], dict):  # a run of one round
            return [rounds]
        return rounds

    def capacity_of(self, design: str) -> tuple[int, dict | None, list[dict], list]:
        """The median over rounds of the highest offered rate ``design``
        sustained; that round's first failing step (None if it passed every
        step) and its steps; and every round's rate."""

        def sustained(steps: list[dict]) -> int:
            return max((s["offered"] for s in steps if s["ok"]), default=0)

        rounds = sorted(self.capacity_rounds(design), key=sustained)
        if not rounds:
            return 0, None, [], []
        median = rounds[(len(rounds) - 1) // 2]
        failed = next((s for s in median if not s["ok"]), None)
        return sustained(median), failed, median, [sustained(r) for r in rounds]

    def _capacity(self) -> list[str]:
        capacity = getattr(self, "capacity", None)
        if not capacity:
            return []
        names = {
            "ours": "ours: register, log the event; relay and worker on the "
            "same machine; every event on the feed within 1 s at p99",
            "sync-0ms": "synchronous POST to a feed service that stores the "
            "event (`feed_events_apply`) and answers at once",
            "sync-200ms": "the same, the feed answering 200 ms later",
        }
        lines = [
            "## 1b. Capacity: the highest registration rate sustained",
            "",
            "Registrations over HTTP (gunicorn, 2 processes × 12 threads, the "
            "registrar's real service) at a steady offered rate, stepped up until a"
            " step fails: request p99 above 100 ms (above 300 ms for the 200 ms "
            "feed, whose requests cannot take less than its delay), any error, or —"
            " for ours — events not on the feed within 1 s at p99 (commit to feed "
            "row). The feed service of the synchronous design is a second gunicorn "
            "(2 × 24 threads) storing each event with the feed's own service. "
            "*Cores* are the CPU each kind of process kept busy over the failing "
            "step (or the last one): ours by kind, PostgreSQL, RabbitMQ, and "
            "*other* for the rest of the machine (the load generator among it).",
            "",
            "| design | capacity (registrations/s): median (min–max) | "
            "first failing step (median round) | "
            "why | cores at that step |",
            "|---|---:|---|---|---|",
        ]
        for design in capacity:
            sustained, failed, steps, every = self.capacity_of(design)
            step = failed or (steps[-1] if steps else None)
            why = ""
            if failed:
                reasons = []
                if failed["errors"]:
                    reasons.append(f"{failed['errors']} errors")
                if failed["p99"] > failed.get("limit", 0.1):
                    reasons.append(
                        f"p99 {failed['p99'] * 1000:,.0f} ms > "
                        f"{failed.get('limit', 0.1) * 1000:,.0f} ms"
                    )
                if failed.get("visible_p99", 0) > 1.0:
                    reasons.append(
                        f"visible p99 {failed['visible_p99'] * 1000:,.0f} ms"
                    )
                why = ", ".join(reasons)
            cores = (
                ", ".join(
                    f"{kind} {used:.2f}"
                    for kind, used in sorted(
                        step["cores"].items(), key=lambda kv: -kv[1]
                    )
                )
                if step
                else ""
            )
            spread = f" ({min(every):,}–{max(every):,})" if len(every) > 1 else ""
            lines.append(
                f"| {names.get(design, design)} | {sustained:,}{spread} | "
                f"{failed['offered'] if failed else 'none (all steps passed)'} | "
                f"{why} | {cores} |"
            )
        lines += [
            "",
            "Every step of the median round, offered vs achieved, with p50/p99:",
            "",
            "| design | offered/s | achieved/s | p50 ms | p99 ms | visible p99 ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for design in capacity:
            for step in self.capacity_of(design)[2]:
                visible = step.get("visible_p99")
                lines.append(
                    f"| {design} | {step['offered']} | {step['achieved']:,.0f} | "
                    f"{step['p50'] * 1000:,.1f} | {step['p99'] * 1000:,.1f} | "
                    + (f"{visible * 1000:,.0f}" if visible is not None else "")
                    + " |"
                )
        lines.append("")
        ours = self.capacity_of("ours")[0]
        for design, factor in (("sync-0ms", 1), ("sync-200ms", 3)):
            if design in capacity:
                theirs = self.capacity_of(design)[0]
                self.targets.append(
                    (
                        f"Capacity: ours >= {factor} x synchronous ({design[5:]} feed)",
                        f"{ours:,} vs {theirs:,}/s",
                        ours >= factor * theirs,
                    )
                )
        return lines

    def _scaling(self) -> list[str]:
        scaling = getattr(self, "scaling", None)
        if not scaling:
            return []
        names = {
            "relay": "relays (`manage.py relay_outbox`) routing one pre-filled log",
            "worker": "workers (`-Q feed --concurrency=1` each) draining one "
            "pre-filled feed queue",
        }
        rounds = max(len(r) for by in scaling.values() for r in by.values())
        lines = [
            "## 4b. Scaling out: one process or two",
            "",
            "The same events routed by one relay and by two (`SKIP LOCKED` shares "
            "the rows), and the same feed queue drained by one worker and by "
            "two; interleaved in "
            f"{rounds} round(s), the median with min–max. *Machine busy* is "
            "the CPU the whole machine used (PostgreSQL and RabbitMQ included) "
            "over the drain, as a share of all its cores: near 100 % means "
            "the cores, not the design, bound the second process.",
            "",
            "| processes | events/s | min–max | × one process "
            "| machine busy | own CPU s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for kind, by in scaling.items():
            one = rate_summary(by.get(1, [])) if by.get(1) else None
            for processes, runs in sorted(by.items()):
                result = rate_summary(runs)
                middle = sorted(runs, key=lambda r: r["rate"])[(len(runs) - 1) // 2]
                ratio = f"{result['rate'] / one['rate']:.2f}" if one else ""
                lines.append(
                    f"| {processes} {names.get(kind, kind)} | "
                    f"{result['rate']:,.0f} | {result['min']:,.0f}–"
                    f"{result['max']:,.0f} | {ratio} | "
                    f"{middle['machine_busy']:.0%} | {middle['cpu_seconds']:.1f} |"
                )
        lines.append("")
        return lines

    def _capacity_findings(self) -> list[str]:
        capacity = getattr(self, "capacity", None)
        if not capacity or "ours" not in capacity:
            return []
        said = []
        for design in capacity:
            sustained, failed, _, _ = self.capacity_of(design)
            if failed is None:
                said.append(f"{design} passed every step (over {sustained:,}/s)")
                continue
            busiest = sorted(failed["cores"].items(), key=lambda kv: -kv[1])[:3]
            total = sum(failed["cores"].values())
            said.append(
                f"{design} {sustained:,}/s, failing at {failed['offered']}/s with "
                f"{total:.1f} of {os.cpu_count() or 2} cores busy ("
                + ", ".join(f"{kind} {used:.2f}" for kind, used in busiest)
                + ")"
            )
        return [
            "- **Capacity:** "
            + "; ".join(said)
            + ". Where the cores are near all busy at the failing step, the "
            "machine bounds the design, and the split says which processes took "
            "it; a synchronous design whose feed answers late is bounded "
            "instead by the web threads held waiting (2 × 12 here: at 200 ms, "
            "at most 120 requests/s whatever the CPU).",
        ]

    def _scaling_findings(self) -> list[str]:
        scaling = getattr(self, "scaling", None)
        if not scaling:
            return []
        said = []
        for kind, by in scaling.items():
            if 1 not in by or 2 not in by:
                continue
            one, two = rate_summary(by[1])["rate"], rate_summary(by[2])["rate"]
            busy = sorted(r["machine_busy"] for r in by[2])[(len(by[2]) - 1) // 2]
            said.append(
                f"a second {kind} gives {two / one:.2f}× one's rate with the "
                f"machine {busy:.0%} busy"
            )
        if not said:
            return []
        return [
            "- **Scaling out on two cores:** "
            + "; ".join(said)
            + ". The relay's and the worker's own processes share the two cores "
            "with PostgreSQL (which does the log's and the feed's writes) and "
            "RabbitMQ; where the machine is near fully busy, the cores bound "
            "the second process, and on a machine with more cores (or the "
            "database and broker elsewhere) each process adds its own rate.",
        ]

    def _reads(self) -> list[str]:
        if not self.reads:
            return []
        lines = [
            f"## 5. Feed reads at {self.sizes['feed_events']:,} events and "
            f"{self.sizes['employees']:,} employees",
            "",
            f"{self.sizes['feed_events']:,} feed events and "
            f"{self.sizes['employees']:,} employees generated by COPY (the "
            "employee table also holds those registered by the sections above); "
            "no reactions.",
            "",
            f"Up to {self.sizes['read_samples']} requests each (at least 10, at most "
            "~5 s per page) through Django's test client in-process (full "
            "middleware and rendering, no network), logged in; queries counted "
            "with `CaptureQueriesContext`.",
            "",
            "| page | HTTP | samples | p50 ms | p99 ms | SQL queries | SQL ms |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for label, r in self.reads.items():
            sql = f"{r['sql_ms']:.1f}" if "sql_ms" in r else "-"
            lines.append(
                f"| {label} (`{r['url'][:60]}`) | {r['status']} | "
                f"{r.get('samples', '-')} | {ms(r['p50'])}"
                f" | {ms(r['p99'])} | {r['queries']} | {sql} |"
            )
        lines.append("")
        for label, r in self.reads.items():
            if "first page" in label or "deep page" in label:
                if "page_size" in label or label.startswith("selector"):
                    continue
                self.targets.append(
                    (
                        f"{label}: p99 <= 50 ms",
                        f"{ms(r['p99'])} ms",
                        r["p99"] <= 0.05 and r["status"] == 200,
                    )
                )
        counts = [
            r["queries"]
            for label, r in self.reads.items()
            if not label.startswith("selector")
        ]
        if counts:
            self.targets.append(
                ("<= 6 SQL queries per page", f"max {max(counts)}", max(counts) <= 6)
            )
        return lines

    def _memory(self) -> list[str]:
        per, total = self.rss.get("per_process", {}), self.rss.get("total", {})
        if not per:
            return []
        lines = [
            "## 6. Memory (peak RSS during the runs)",
            "",
            "| process | peak RSS of one process | peak RSS of the group |",
            "|---|---:|---:|",
        ]
        names = {
            "web": "web (gunicorn, 2 gthread workers + master)",
            "worker": "our worker (`celery -A portal worker`, main + 1 child)",
            "worker-naive": "naive worker (main + 1 child)",
        }
        for role in per:
            lines.append(
                f"| {names.get(role, role)} | {mb(per[role])} | {mb(total[role])} |"
            )
        lines.append("")
        if "worker" in per:
            self.targets.append(
                (
                    "Worker RSS <= 200 MB (per process)",
                    mb(per["worker"]),
                    per["worker"] <= 200 * 2**20,
                )
            )
        return lines

    # --- output -------------------------------------------------------------

    def write(self, directory: Path, name: str) -> None:
        self.targets = []
        body = (
            self._registration()
            + self._capacity()
            + self._c2v()
            + self._throughput()
            + self._ingest()
            + self._scaling()
            + self._reads()
            + self._memory()
        )
        head = [
            "# Benchmark results"
            + (" (quick run: small sizes, not comparable)" if self.quick else ""),
            "",
            f"Run {self._run_at():%Y-%m-%d %H:%M} UTC on {self.machine}, "
            f"{self.seconds:.0f} s in all. PostgreSQL + RabbitMQ on 127.0.0.1; the "
            "machine is shared, so compare the ratios (measured in this same run) "
            "more than the absolute numbers. Regenerate with `make bench`.",
            "",
            "## Targets",
            "",
            "| target | measured | |",
            "|---|---:|---|",
        ]
        head += [f"| {t} | {m} | {verdict(ok)} |" for t, m, ok in self.targets]
        head.append("")
        head += self.findings()
        plots = ["## Plots", ""]
        for png in self._plots(directory, name):
            plots.append(f"![{png.stem}]({png.name})")
        plots.append("")
        tail = []
        if self.notes:
            tail += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        tail += self.analysis()
        (directory / f"{name}.md").write_text("\n".join(head + body + plots + tail))
        (directory / f"{name}.json").write_text(json.dumps(self.summary(), indent=1))

    def _share(
        self, raw: str, needle: str | tuple[str, ...], leaf: bool = False
    ) -> float:
        if not self.spy_dir:
            return float("nan")
        from .spy import share  # bench dependencies: only with recordings

        return share(self.spy_dir / raw, needle, leaf=leaf)

    def findings(self) -> list[str]:
        """Where the time goes for each miss, with this run's numbers."""
        out = ["## Where the time goes, and what to change", ""]
        out += self._registration_findings()
        out += self._capacity_findings()
        out += self._consumer_findings()
        out += self._baseline_findings()
        out += self._ingest_findings()
        out += self._scaling_findings()
        out += self._c2v_findings()
        if self.relay and self.relay["rate"] < 20_000:
            parts = _relay_shares(self.relay_profile)
            said = ", ".join(f"{name} {share:.0%}" for name, share in parts)
            out += [
                f"- **Relay at {self.relay['rate']:,.0f} events/s.** Each pass "
                "of `route_pending` is three steps in turn: `SELECT … FOR "
                "UPDATE SKIP LOCKED` of the pending log rows (each envelope "
                "read as the database's JSON text and sent as it is), the "
                "confirmed publishes (a task message per subscriber per "
                "batch, and one `portal.broadcast` message per event, their "
                "frames written 256 KB at a time, confirms pipelined), then "
                "the `UPDATE` recording what each destination confirmed"
                + (f" (share of the relay's time: {said})" if said else "")
                + ". What is left per event: encoding its broadcast frames, "
                "reading RabbitMQ's confirm for it, and the database's work "
                "on its row (locking it, writing its new state and journey); "
                "on two cores the relay also shares the CPU with PostgreSQL "
                "and RabbitMQ, and a second relay adds what the scaling table "
                "shows." + _relay_cpu_said(self.relay),
            ]
        slow = {k: v for k, v in self.read_plans.items() if "first page" in k}
        if slow:
            label, (_sql, seconds, _plan) = next(iter(slow.items()))
            out += [
                f"- **Feed reads.** '{label}' spends {seconds * 1000:.0f} ms "
                "in its slowest query; its plan is below."
            ]
        out.append("")
        return out if len(out) > 3 else []

    def _registration_findings(self) -> list[str]:
        reg = self.registration
        if not reg.get("outbox") or not reg.get("floor"):
            return []
        out = []
        floor = pct(reg["floor"]["latencies"], 99)
        ours = pct(reg["outbox"]["latencies"], 99)
        if ours > 1.25 * floor:
            down = reg.get("outbox, broker down")
            down_p99 = pct(down["latencies"], 99) if down else float("nan")
            out += [
                f"- **Registration tail.** p99: floor {ms(floor)} ms, outbox "
                f"{ms(ours)} ms, outbox with the broker down {ms(down_p99)} ms. "
                "The web process does no publishing (the relay does, woken by "
                "a NOTIFY after commit); what the outbox adds to a request is "
                "validating the event and one INSERT in the same transaction. "
                "A tail above the floor's by more than that is the shared "
                "machine's noise landing unevenly between the designs (the "
                "broker-down server runs the same code).",
            ]
        short = self._sync_shortfalls()
        if short:
            said = "; ".join(
                f"{delay} ms feed, p{q}: {ms(diff)} ms" for delay, q, diff in short
            )
            overhead = pct(reg["outbox"]["latencies"], 50) - pct(
                reg["floor"]["latencies"], 50
            )
            sync0 = reg.get("sync-0ms")
            post = (
                pct(sync0["latencies"], 50) - pct(reg["floor"]["latencies"], 50)
                if sync0
                else float("nan")
            )
            out += [
                "- **Synchronous POST vs our design, per percentile.** Below the "
                f"feed's delay: {said}. What each design adds to the same "
                f"registration is about the same size — at p50 the outbox adds "
                f"{ms(overhead)} ms (validate, INSERT the row), the POST to a feed "
                f"answering at once {ms(post)} ms — so without the feed's own "
                "delay the two are a tie, and at the tails a difference of a "
                "millisecond either way is this run's noise (the floor, which "
                "does strictly less, is not below the others at every "
                "percentile either). The feed's delay itself is never paid by "
                "our design: the 50 and 200 ms rows differ by that delay at the "
                "p50 and grow with it at the tails.",
            ]
        return out

    def _sync_shortfalls(self) -> list[tuple[int, int, float]]:
        reg = self.registration
        ours = reg["outbox"]["latencies"]
        short = []
        for delay in (0, 50, 200):
            sync = reg.get(f"sync-{delay}ms")
            if not sync:
                continue
            for q in (50, 95, 99):
                diff = pct(sync["latencies"], q) - pct(ours, q)
                if diff < delay / 1000:
                    short.append((delay, q, diff))
        return short

    def _consumer_ratio(self, over: str, per=None) -> float:
        """Ours over ``over`` as its target decides it: the median of the
        runs' ratios (the ratio of the median runs after a single run)."""
        per = per or (lambda result: result["rate"])
        ratios = run_ratios(getattr(self, "consumer_runs", {}), "ours", over, per)
        c = self.consumer
        return median_of(ratios or [per(c["ours"]) / per(c[over])])

    def _consumer_findings(self) -> list[str]:
        c = self.consumer
        if not (c.get("ours") and c.get("bare")):
            return []
        ours, bare = c["ours"]["rate"], c["bare"]["rate"]
        to_bare = self._consumer_ratio("bare")
        if to_bare >= 0.7:
            return []
        raw = "spy-worker-ours.raw"
        inside = self._share(raw, ("subscriber_tasks.py", "apply_events ("))
        # orjson's C code shows as its caller, the portal's codec.
        decode = self._share(raw, ("json/decoder.py", "json_codec.py"), leaf=True)
        ipc = self._share(raw, PIPES, leaf=True)
        alone = self.consumer_profile.get("rate", float("nan"))
        return [
            f"- **Consumer at {to_bare:.0%} of bare pika + COPY** (median of "
            f"the runs' ratios; median rates {ours:,.0f} vs {bare:,.0f} "
            f"events/s). {inside:.0%} of the "
            "worker's CPU samples are inside the task; the rest is Celery's "
            f"per-message work: decoding the body ({decode:.0%} in the "
            "JSON decoder, orjson through `json_codec`, once, in the pool "
            "process: the main process leaves a subscriber's body unread, "
            "`BatchRequest`) and the hand-off through "
            f"the pool's pipe ({ipc:.0%}). Inside the task, the events are "
            "validated against their contract and streamed into the table "
            "with one `COPY` as new, each row sent as soon as it is validated "
            "(again with `INSERT … ON CONFLICT DO NOTHING` only if one is on "
            "the feed already); "
            f"alone, in-process, that service does {alone:,.0f} events/s. The "
            "bare loop validates nothing, checks no duplicates and COPYs "
            "straight into the table." + self._consumer_database_said(ours, bare),
        ]

    def _consumer_database_said(self, ours_rate: float, bare_rate: float) -> str:
        """What PostgreSQL's CPU per event says of the consumer gap."""
        cost = getattr(self, "consumer_database", {})
        if not cost:
            return (
                " PostgreSQL's share of the work is the larger one on these two cores."
            )
        ours_us = cost["ours"]["postgresql_us"]
        bare_us = cost["bare"]["postgresql_us"]
        bound = 1e6 / ours_us
        said = (
            " PostgreSQL's own CPU per event, measured on each writer's backend "
            f"on the same events: {ours_us:.1f} µs for the feed's write, "
            f"{bare_us:.1f} µs for the bare loop's COPY (its rows leave the "
            "department, people and sender columns empty, so the indexes on "
            "them get nothing or nulls). One worker writes through "
            f"one backend, so the database alone allows it {bound:,.0f} "
            f"events/s, {bound / bare_rate:.0%} of the bare loop's rate."
        )
        if bound < bare_rate:
            return said + (
                " *What would close the gap:* a cheaper write per card (fewer "
                "indexes on the feed, each serving one of its reads): no "
                "change to the worker's Python gets past that bound."
            )
        return said + (
            f" Ours runs at {ours_rate / bound:.0%} of that: the gap is the "
            "worker's own serial work, not the database's — in the pool "
            "process each message is decoded, then validated and copied "
            "row by row, the worker waits while the database stores the last "
            "rows and commits, and the database waits while the batch's "
            "journey is recorded and the next message is handed over. *What "
            "would close the gap:* less Python per event in the task "
            "(validation and the card's rendering) and more of it "
            "overlapped with the database's work; a consumer bootstep that "
            "takes the `feed` queue off Celery's pool would save the second "
            "decode and the hand-off — at the price of the task's retries, "
            "Flower's view of it and crash isolation."
        )

    def _baseline_findings(self) -> list[str]:
        c = self.consumer
        if not c.get("ours"):
            return []
        out = []
        ours = c["ours"]
        for key, label, factor in (
            ("tuned", "tuned plain Celery (a2)", 12),
            ("batched", "celery-batches + COPY (a3)", 4),
        ):
            if key not in c:
                continue
            wall = self._consumer_ratio(key, per_process)
            cpu = per_cpu_second(ours) / per_cpu_second(c[key])
            if wall >= factor:
                continue
            out.append(
                f"- **Consumer vs {label}: {wall:.1f} x per pool process "
                f"(median of the runs' ratios; target {factor} x); per CPU "
                "second of the workers' own "
                f"processes {cpu:.1f} x.** "
                + (
                    f"Ours' worker processes were busy "
                    f"{ours.get('cpu_seconds', 0) / ours['seconds']:.0%} of one "
                    f"core over its drain, celery-batches' "
                    f"{c[key].get('cpu_seconds', 0) / c[key]['seconds']:.0%}: "
                    "celery-batches is bound by Celery's per-message work in "
                    "its own processes (a request per single-event message), "
                    "ours mostly waits for PostgreSQL, whose CPU is not "
                    "counted here — it validates each event (pydantic) and "
                    "streams the rows with one `COPY` (again with `INSERT … "
                    "ON CONFLICT DO NOTHING` if an event is on the feed "
                    "already), where celery-batches COPYs with no validation "
                    "and no duplicate check. The per-CPU ratio above says our "
                    "consumer's own work is small; the factor left is the "
                    "database's cost of writing each card with its indexes on "
                    "these two shared "
                    "cores (the worker's profile below shows only its own "
                    "CPU, where contract validation is the largest frame; "
                    "time spent waiting for PostgreSQL is not sampled)."
                    if key == "batched"
                    else "Per-event costs of Celery (a task message, a "
                    "transaction and a commit per event) are what ours "
                    "saves; on this loaded machine the per-process rates of "
                    "both move by several times between runs, so read this "
                    "with the CPU ratio beside it."
                )
            )
        return out

    def _ingest_findings(self) -> list[str]:
        runs = getattr(self, "ingest", None)
        if not runs or "ours" not in runs or "pika" not in runs:
            return []
        ours = rate_summary(runs["ours"])["rate"]
        bare = rate_summary(runs["pika"])["rate"]
        if ours >= 10_000 and ours >= 0.7 * bare:
            return []

        def cpu_per_event(label: str) -> float:
            values = sorted(r["cpu_seconds"] / r["events"] for r in runs[label])
            return values[(len(values) - 1) // 2] * 1e6

        median = sorted(runs["ours"], key=lambda r: r["rate"])[
            (len(runs["ours"]) - 1) // 2
        ]
        busy = median["cpu_seconds"] / median["seconds"]
        stages = getattr(self, "ingest_stages", None) or {}
        alone = ", ".join(
            f"{label} {result['rate']:,.0f}/s" for label, result in stages.items()
        )
        worker, relay = "spy-ingest-worker.raw", "spy-ingest-relay.raw"
        flush = self._share(worker, "BatchingConsumerStep.flush")
        # Where the CPU is (the innermost frame): the AMQP client's own code
        # (frames, methods, kombu's messages) and the portal's frame reader.
        # Not its loop on the stack: the batches are stored from inside it.
        read = self._share(worker, ("(amqp/", "(kombu/", "amqp_reads.py"), leaf=True)
        task = self._share(worker, "subscriber_tasks.py")
        validate = self._share(worker, "validate_event")
        publish = self._share(relay, "publish_confirmed")
        onboarding = _onboarding_packing(self.sizes)
        sql = self._share(relay, "CursorWrapper.execute (")
        return [
            f"- **Per-event ingest at {ours:,.0f} events/s, {ours / bare:.0%} of "
            f"bare pika + COPY ({bare:,.0f}/s).** CPU per event of the "
            f"consumer's own processes: ours {cpu_per_event('ours'):,.0f} µs "
            f"(worker + relay), bare pika {cpu_per_event('pika'):,.0f} µs. "
            f"Its three processes together used {busy:.0%} of one core over "
            "the drain, beside PostgreSQL and RabbitMQ on the same two cores. "
            f"Each stage alone is faster than the whole ({alone}): every event "
            "takes three hops in turn — the ingest bootstep stores a batch "
            "(validate, INSERT into the log, commit, one multiple ack; it holds "
            "two batches, so the next arrives meanwhile), the relay, woken by "
            "the commit's NOTIFY, routes it (SELECT … SKIP LOCKED, the stored "
            "JSON text spliced into a task message and one `portal.broadcast` "
            "message per event, frames written 256 KB at a time, pipelined "
            "confirms, UPDATE; the two onboarding subscriptions get their "
            f"task messages too ({onboarding}), queued for their own "
            "workers, which do not run here), and the feed's task "
            "applies it (validate, one streaming COPY). py-spy (a separate profiled "
            f"run; share of samples): worker — storing batches {flush:.0%}, "
            f"in the AMQP client {read:.0%}, the feed's task {task:.0%}, "
            f"contract validation (ingest and task) {validate:.0%}; relay — "
            f"confirmed publishing {publish:.0%}, its SQL {sql:.0%}. Each "
            "event is decoded and validated twice (the contract is checked at "
            "both ends), written twice (log, feed), read back once and "
            "published to every subscriber that asks for it and to the "
            "broadcast the contract promises outside services; the bare loop decodes "
            "once and COPYs, with no log and no guarantee beyond the commit. "
            "*What stands between this and the target:* the route itself — "
            "on two cores shared with the database and the broker, the sum of "
            "those per-event costs bounds the whole; the cheaper ingest-only "
            "path (event log, no feed) is the 'ingest alone' row."
            + self._ingest_bound(bare),
        ]

    def _ingest_bound(self, bare: float) -> str:
        """The bound the whole route's measured CPU per event puts on its
        rate on this machine's cores, against the target's (empty for a
        run that did not measure the services)."""
        ours = machine_cpu_per_event(self.ingest["ours"])
        pika = machine_cpu_per_event(self.ingest["pika"])
        if ours is None or pika is None:
            return ""
        cores = self.ingest["ours"][0].get("cores", 1)
        bound = cores * 1e6 / ours["all"]
        need = cores * 1e6 / (0.7 * bare)
        split = process_cpu_per_event(self.ingest["ours"])
        own = f"its own processes {ours['own']:.0f}" + (
            f" (worker {split['worker']:.0f}, pool {split['pool']:.0f}, "
            f"relay {split['relay']:.0f})"
            if split
            else ""
        )
        return (
            f" Measured: the route used {ours['all']:.0f} µs of CPU per event "
            f"({own}, PostgreSQL "
            f"{ours['postgresql']:.0f}, RabbitMQ {ours['rabbitmq']:.0f}), bare "
            f"pika {pika['all']:.0f} µs (own {pika['own']:.0f}, PostgreSQL "
            f"{pika['postgresql']:.0f}, RabbitMQ {pika['rabbitmq']:.0f}). On "
            f"{cores} cores that much work bounds ours at {bound:,.0f} events/s "
            f"however well its stages overlap, {bound / bare:.0%} of bare pika's "
            f"rate; 70% of it would need at most {need:.0f} µs per event, "
            f"{need / ours['all']:.0%} of what the route costs now."
            + self._ingest_stage_costs(pika["all"])
        )

    def _ingest_stage_costs(self, bare_us: float) -> str:
        """Each stage's measured CPU per event (PostgreSQL's and RabbitMQ's
        included) against the bare loop's whole (empty if not measured)."""
        stages = getattr(self, "ingest_stages", None) or {}
        costs = {
            label: cost
            for label, result in stages.items()
            if (cost := machine_cpu_per_event([result]))
        }
        if not costs:
            return ""
        said = ", ".join(
            f"{label.removesuffix(' alone')} {cost['all']:.0f} µs "
            f"({cost['all'] / bare_us:.1f} × bare pika's whole)"
            for label, cost in costs.items()
        )
        return f" Stage by stage, alone: {said}."

    def _c2v_findings(self) -> list[str]:
        if not self.c2v:
            return []
        bad = [r for r in sorted(self.c2v) if pct(self.c2v[r]["latencies"], 50) > 0.025]
        if not bad:
            return []
        r = bad[0]
        lat = self.c2v[r]["latencies"]
        worker = self._share("spy-worker-c2v.raw", "apply_events (")
        return [
            f"- **Commit-to-visible at {r} events/s:** p50 {ms(pct(lat, 50))} ms, "
            f"p99 {ms(pct(lat, 99))} ms (achieved {self.c2v[r]['achieved_rate']:.0f}"
            "/s). Each event goes commit → NOTIFY (one per few ms per process) "
            "→ relay pass (SELECT … SKIP LOCKED, publish with confirm, UPDATE) "
            "→ worker task → commit; at a trickle every step carries a few "
            "events, so the fixed costs per message dominate "
            f"({worker:.0%} of the worker's samples are inside the task at "
            "200 events/s). *Proposal:* a longer `OUTBOX_PUBLISH_COALESCE_MS` "
            "trades a few ms of latency for fewer, fuller messages.",
        ]

    def analysis(self) -> list[str]:
        lines = []
        if self.what_if:
            lines += [
                "## What-if: the worker keeps its database connection",
                "",
                "Same measurements with `CELERY_DB_REUSE_MAX=1000` in the worker "
                "(bench settings only, via `BENCH_DB_REUSE_MAX`). Without it, "
                "Celery's Django fixup closes the database connection before and "
                "after every task, so every task message opens a new PostgreSQL "
                "connection.",
                "",
            ]
            for label, r in self.what_if.items():
                if "latencies" in r:
                    lat = r["latencies"]
                    lines.append(
                        f"- {label}: p50 {ms(pct(lat, 50))} ms, p95 "
                        f"{ms(pct(lat, 95))} ms, p99 {ms(pct(lat, 99))} ms "
                        f"({len(lat)}/{r['registered']} seen)"
                    )
                else:
                    lines.append(f"- {label}: {r['rate']:,.0f} events/s")
            lines.append("")
        for label, text in self.profiles.items():
            lines += [f"## Profile: {label} (py-spy)", "", "```", text, "```", ""]
        if self.consumer_profile:
            text = self.consumer_profile["text"]
            lines += [
                "## Profile: the consumer's service (pyinstrument, in-process)",
                "",
                f"`feed_events_apply` alone, {self.sizes.get('per_message', 100)} "
                f"events per call, no broker: "
                f"{self.consumer_profile['rate']:,.0f} events/s.",
                "",
                "```",
                *_trim(text, 45),
                "```",
                "",
            ]
        database = getattr(self, "consumer_database", {})
        if database:
            lines += [
                "PostgreSQL's CPU per event applied, on the writer's backend, "
                "the same events (median of the rounds; each round's in "
                "brackets): the feed's write (`feed_events_apply`, as above) "
                f"{_us_runs(database['ours'])}; the bare loop's COPY "
                f"{_us_runs(database['bare'])}.",
                "",
            ]
        if self.at_scale:
            lines += [
                f"The same service with the feed table at {self.at_scale['rows']:,} "
                f"rows: **{self.at_scale['rate']:,.0f} events/s** (same batches).",
                "",
            ]
        for label, (sql, seconds, plan) in self.read_plans.items():
            lines += [
                f"## Slowest query of '{label}' ({seconds * 1000:.1f} ms)",
                "",
                "```sql",
                sql[:1500],
                "```",
                "",
                "```",
                *plan.splitlines()[:25],
                "```",
                "",
            ]
        if self.relay_profile:
            lines += [
                "## Profile: the relay (pyinstrument, in-process, one pass at a time)",
                "",
                "```",
                *_trim(self.relay_profile, 45),
                "```",
                "",
            ]
        return lines

    def summary(self) -> dict:
        def lat(values):
            return {f"p{q}": pct(values, q) for q in (50, 95, 99)} | {"n": len(values)}

        return {
            "quick": self.quick,
            "sizes": self.sizes,
            "registration": {
                k: lat(v["latencies"]) | {"errors": v["errors"]}
                for k, v in self.registration.items()
            },
            "c2v": {
                str(k): lat(v["latencies"]) | {"achieved": v["achieved_rate"]}
                for k, v in self.c2v.items()
            },
            "consumer": self.consumer,
            "consumer_runs": getattr(self, "consumer_runs", {}),
            "ingest": getattr(self, "ingest", {}),
            "relay": self.relay,
            "scaling": getattr(self, "scaling", {}),
            "capacity": getattr(self, "capacity", {}),
            "reads": self.reads,
            "rss": self.rss,
            "what_if": {
                k: (lat(v["latencies"]) if "latencies" in v else v)
                for k, v in self.what_if.items()
            },
            "targets": [
                {"target": t, "measured": m, "met": ok} for t, m, ok in self.targets
            ],
        }

    # --- plots --------------------------------------------------------------

    def _plots(self, directory: Path, name: str) -> list[Path]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        made = []

        def cdf(ax, series: dict, title: str) -> None:
            import numpy as np

            for label, values in series.items():
                if not values:
                    continue
                xs = np.sort(np.asarray(values) * 1000)
                ys = np.arange(1, len(xs) + 1) / len(xs)
                ax.plot(xs, ys, label=label)
            ax.set_xscale("log")
            ax.set_xlabel("latency (ms, log scale)")
            ax.set_ylabel("fraction of requests")
            ax.set_title(title)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()

        if self.registration:
            fig, ax = plt.subplots(figsize=(8, 5))
            cdf(
                ax,
                {k: v["latencies"] for k, v in self.registration.items()},
                "Registration request latency (CDF)",
            )
            made.append(_save(fig, directory / f"{name}-registration-cdf.png"))
        if getattr(self, "capacity", None):
            fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
            medians = {d: self.capacity_of(d)[2] for d in self.capacity}
            for design, steps in medians.items():
                offered = [s["offered"] for s in steps]
                left.plot(offered, [s["achieved"] for s in steps], "o-", label=design)
                right.plot(
                    offered, [s["p99"] * 1000 for s in steps], "o-", label=design
                )
            top = max(s["offered"] for v in medians.values() for s in v)
            left.plot([0, top], [0, top], ":", color="#999", label="achieved = offered")
            left.set_xlabel("offered registrations/s")
            left.set_ylabel("achieved registrations/s")
            left.set_title("Capacity: offered vs achieved (median round)")
            right.axhline(100, color="#c00", linestyle=":", label="100 ms")
            right.set_yscale("log")
            right.set_xlabel("offered registrations/s")
            right.set_ylabel("request p99 (ms, log scale)")
            right.set_title("Capacity: p99 per step")
            for ax in (left, right):
                ax.grid(True, alpha=0.3)
                ax.legend()
            made.append(_save(fig, directory / f"{name}-capacity.png"))
        if self.c2v:
            fig, ax = plt.subplots(figsize=(8, 5))
            cdf(
                ax,
                {f"{k} events/s": v["latencies"] for k, v in self.c2v.items()},
                "Commit-to-visible latency (CDF)",
            )
            made.append(_save(fig, directory / f"{name}-commit-to-visible-cdf.png"))
        if self.consumer:
            fig, ax = plt.subplots(figsize=(8, 5))
            bars = {
                "naive Celery\n(task per event)": self.consumer["naive"]["rate"],
                "ours\n(apply_events)": self.consumer["ours"]["rate"],
            }
            if self.what_if.get("consumer throughput"):
                bars["ours, DB\nreuse (what-if)"] = self.what_if["consumer throughput"][
                    "rate"
                ]
            if "tuned" in self.consumer:
                bars["tuned Celery\n(a2, per\npool process)"] = per_process(
                    self.consumer["tuned"]
                )
            if "batched" in self.consumer:
                bars["celery-\nbatches\n(a3)"] = self.consumer["batched"]["rate"]
            bars["bare pika\n+ COPY"] = self.consumer["bare"]["rate"]
            if self.relay:
                bars["relay\n(outbox ->\nRabbitMQ)"] = self.relay["rate"]
            palette = {
                "naive": "#999",
                "tuned": "#bbb",
                "celery-": "#888",
                "ours\n": "#2a7",
                "ours,": "#7c9",
                "bare": "#37c",
                "relay": "#c73",
            }
            colors = [
                next(c for k, c in palette.items() if name.startswith(k))
                for name in bars
            ]
            rects = ax.bar(list(bars), list(bars.values()), color=colors)
            ax.bar_label(rects, labels=[f"{v:,.0f}" for v in bars.values()])
            ax.set_yscale("log")
            ax.axhline(15_000, color="#c33", linestyle="--", linewidth=1)
            ax.text(
                0.02,
                15_000 * 1.1,
                "consumer aim 15,000/s",
                color="#c33",
                transform=ax.get_yaxis_transform(),
            )
            ax.axhline(20_000, color="#c73", linestyle=":", linewidth=1)
            ax.text(
                0.02,
                20_000 / 1.35,
                "relay target 20,000/s",
                color="#c73",
                transform=ax.get_yaxis_transform(),
            )
            ax.set_ylabel("events/s (one process, log scale)")
            ax.set_title("Throughput")
            made.append(_save(fig, directory / f"{name}-throughput.png"))
        return made


def _relay_cpu_said(relay: dict) -> str:
    """What the CPU per event says about the relay target."""
    cpu = relay.get("cpu_us")
    if not cpu:
        return ""
    total = sum(cpu.values())
    cores = os.cpu_count() or 1
    return (
        f" The machine spent {total:.0f} µs of CPU per routed event (relay "
        f"{cpu['relay']:.0f}, PostgreSQL {cpu['postgresql'] + cpu['other']:.0f}"
        f" with its exited backends, RabbitMQ {cpu['rabbitmq']:.0f}): at 20,000"
        f" events/s that is {total * 0.02:.1f} cores of this machine's {cores},"
        f" and the relay's own process, one interpreter, would need "
        f"{cpu['relay'] * 0.02:.1f} cores. The target needs less CPU per event "
        "from each of the three, or more cores."
    )


def _relay_shares(text: str) -> list[tuple[str, float]]:
    """Shares of route_pending's time per step, from pyinstrument's text."""
    import re

    total = re.search(r"([\d.]+) route_pending", text or "")
    if not total:
        return []
    steps = {
        "SELECT": r"\|- ([\d.]+) QuerySet.__iter__",
        "publish + confirm": r"\|- ([\d.]+) _deliver",
        "UPDATE": r"\|- ([\d.]+) _record",
    }
    shares = []
    for name, pattern in steps.items():
        match = re.search(pattern, text)
        if match:
            shares.append((name, float(match.group(1)) / float(total.group(1))))
    return shares


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _trim(text: str, limit: int) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[:limit]


def _us_runs(measured: dict) -> str:
    """A median µs per event, each run's in brackets."""
    events = measured["events"]
    each = ", ".join(f"{run['cpu'] / events * 1e6:.1f}" for run in measured["runs"])
    return f"{measured['postgresql_us']:.1f} µs ({each})"
