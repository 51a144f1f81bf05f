"""The benchmark's verdicts on the fair baselines and the per-event ingest:
medians of interleaved runs, per-process normalisation, target checks."""

import math

from bench.report import (
    baseline_targets,
    ingest_targets,
    per_cpu_second,
    per_process,
    rate_summary,
)


def test_rate_summary_takes_the_median_run_and_the_range():
    runs = [{"rate": 300.0}, {"rate": 100.0}, {"rate": 200.0}]
    assert rate_summary(runs) == {"rate": 200.0, "min": 100.0, "max": 300.0, "runs": 3}


def test_rate_summary_of_an_even_count_takes_the_lower_middle():
    assert rate_summary([{"rate": 1.0}, {"rate": 4.0}])["rate"] == 1.0


def test_a_prefork_worker_is_credited_per_pool_process():
    assert per_process({"rate": 2000.0, "processes": 2}) == 1000.0
    assert per_process({"rate": 2000.0}) == 2000.0


def test_events_per_cpu_second_is_nan_when_not_measured():
    assert per_cpu_second({"events": 100, "cpu_seconds": 0.5}) == 200.0
    assert math.isnan(per_cpu_second({"events": 100}))


def test_baseline_targets_compare_per_pool_process():
    consumer = {
        "ours": {"rate": 12_000.0},
        # 2,000/s on two pool processes: 1,000 per process, so ours is 12 x.
        "tuned": {"rate": 2_000.0, "processes": 2},
        "batched": {"rate": 4_000.0},
    }
    (tuned, batched) = baseline_targets(consumer)
    assert tuned[1:] == ("12.0 x", True)
    assert batched[1:] == ("3.0 x", False)


def test_baseline_targets_skip_a_baseline_that_did_not_run():
    assert baseline_targets({"ours": {"rate": 1.0}}) == []


def test_ingest_targets():
    (rate, ratio) = ingest_targets(ours=10_000.0, bare=20_000.0)
    assert rate[2] is True
    assert ratio[1:] == ("50%", False)


def test_the_scaling_table_and_finding_use_the_median_round(tmp_path):
    from bench.report import Report

    def run(rate, busy):
        return {
            "events": 1000,
            "seconds": 1000 / rate,
            "rate": rate,
            "cpu_seconds": 1.0,
            "machine_busy": busy,
        }

    report = Report(quick=True, sizes={}, machine="test")
    report.scaling = {
        "relay": {
            1: [run(4000, 0.6), run(5000, 0.6), run(4500, 0.6)],
            2: [run(6000, 0.9), run(7000, 0.95), run(9000, 0.97)],
        },
    }
    table = "\n".join(report._scaling())
    assert "| 1 relays" in table
    assert "| 4,500 | 4,000–5,000 | 1.00 |" in table
    assert "| 7,000 | 6,000–9,000 | 1.56 | 95% |" in table
    [finding] = report._scaling_findings()
    assert "a second relay gives 1.56× one's rate with the machine 95% busy" in finding


def _step(offered, ok, p99=0.05):
    return {
        "offered": offered,
        "achieved": offered,
        "p50": 0.01,
        "p99": p99,
        "errors": 0,
        "limit": 0.1,
        "ok": ok,
        "cores": {"web": 0.5},
    }


def test_capacity_is_the_median_round_and_its_target_compares_medians():
    from bench.report import Report

    report = Report(quick=True, sizes={}, machine="test")
    report.capacity = {
        "ours": [
            [_step(20, True), _step(30, True), _step(40, False, 0.2)],
            [_step(20, True), _step(30, False, 0.3)],
            [_step(20, True), _step(30, True), _step(40, True), _step(50, False)],
        ],
        "sync-0ms": [[_step(20, True), _step(30, False)]] * 3,
    }
    sustained, failed, steps, every = report.capacity_of("ours")
    assert (sustained, every) == (30, [20, 30, 40])
    assert failed["offered"] == 40
    assert [s["offered"] for s in steps] == [20, 30, 40]
    table = "\n".join(report._capacity())
    assert "| 30 (20–40) | 40 | p99 200 ms > 100 ms |" in table
    assert report.targets[-1][1:] == ("30 vs 20/s", True)


def test_baseline_targets_take_the_median_of_the_runs_ratios():
    consumer = {"ours": {"rate": 0.0}, "batched": {"rate": 1.0}}
    runs = {
        "ours": [{"rate": 9_000.0}, {"rate": 4_000.0}, {"rate": 10_000.0}],
        # Ratios per run: 3.0, 4.0, 5.0 (not ours' median over a3's median).
        "batched": [{"rate": 3_000.0}, {"rate": 1_000.0}, {"rate": 2_000.0}],
    }
    ((name, measured, met),) = baseline_targets(consumer, runs)
    assert measured == "4.0 x (median of 3 runs: 3.0 x–5.0 x)"
    assert met is True


def _latencies(p99_ms: float) -> list[float]:
    """100 latencies whose p99 is ``p99_ms`` (the rest at 1 ms)."""
    return [0.001] * 98 + [p99_ms / 1000] * 2


def test_the_registration_targets_are_the_median_of_the_runs_ratios():
    from bench.report import Report

    floor_runs = [_latencies(10), _latencies(10), _latencies(10)]
    ours_runs = [_latencies(11), _latencies(30), _latencies(12)]

    def design(runs):
        return {
            "latencies": [x for run in runs for x in run],
            "errors": 0,
            "first_errors": [],
            "runs": runs,
        }

    report = Report(quick=True, sizes={"requests": 300, "rate": 100}, machine="t")
    report.registration = {"floor": design(floor_runs), "outbox": design(ours_runs)}
    assert [round(r, 2) for r in report.registration_ratios("outbox")] == [
        1.1,
        3.0,
        1.2,
    ]
    text = "\n".join(report._registration())
    assert "- outbox: 1.10, 3.00, 1.20" in text
    (target,) = report.targets
    # One bad run (3.0 x) does not decide it; the merged p99 would have.
    assert target == (
        "Registration p99 <= 1.25 x floor",
        "1.20 x (median of 3 runs: 1.10 x–3.00 x)",
        True,
    )


def test_commit_to_visible_targets_are_the_median_of_the_runs():
    from bench.report import Report, c2v_add

    report = Report(quick=True, sizes={"c2v_seconds": 1}, machine="t")
    for p99 in (90, 250, 80):
        run = {"latencies": _latencies(p99), "registered": 100, "achieved_rate": 200}
        c2v_add(report.c2v, 200, run)
    assert len(report.c2v[200]["latencies"]) == 300
    assert report.c2v_percentiles(200, 99) == [0.09, 0.25, 0.08]
    report._c2v()
    p99 = next(t for t in report.targets if t[0].startswith("Commit-to-visible p99"))
    assert p99 == (
        "Commit-to-visible p99 <= 100 ms at 200/s",
        "90.0 ms (median of 3 runs: 80.0 ms–250.0 ms)",
        True,
    )


def test_percentiles_interpolate_between_ranks_as_numpy_does():
    from bench.report import pct

    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert pct(values, 50) == 3.0
    assert pct(values, 99) == 4.96  # 4 + 0.96 x (5 - 4)
    assert pct(values, 0) == 1.0
    assert pct(values, 100) == 5.0
    assert math.isnan(pct([], 50))


def test_the_consumer_finding_bounds_the_worker_by_its_databases_cpu_per_event():
    from bench.report import Report

    report = Report(quick=True, sizes={}, machine="test")
    report.consumer = {"ours": {"rate": 25_000.0}, "bare": {"rate": 50_000.0}}
    report.consumer_database = {
        "ours": {
            "postgresql_us": 30.0,
            "rate": 33_000.0,
            "events": 1000,
            "runs": [{"cpu": 0.031}, {"cpu": 0.030}, {"cpu": 0.029}],
        },
        "bare": {
            "postgresql_us": 20.0,
            "rate": 50_000.0,
            "events": 1000,
            "runs": [{"cpu": 0.020}, {"cpu": 0.021}, {"cpu": 0.019}],
        },
    }
    [finding] = report._consumer_findings()
    assert "30.0 µs for the feed's write, 20.0 µs for the bare loop's COPY" in finding
    # One backend at 30 µs an event: 33,333/s at most, two thirds of bare's.
    assert "allows it 33,333 events/s, 67% of the bare loop's rate" in finding
    assert "no change to the worker's Python gets past that bound" in finding


def test_a_consumer_below_its_database_bound_is_told_the_gap_is_its_own_work():
    from bench.report import Report

    report = Report(quick=True, sizes={}, machine="test")
    report.consumer = {"ours": {"rate": 17_000.0}, "bare": {"rate": 30_000.0}}
    report.consumer_database = {
        key: {"postgresql_us": us, "rate": 0.0, "events": 1000, "runs": []}
        for key, us in (("ours", 29.0), ("bare", 20.0))
    }
    [finding] = report._consumer_findings()
    # 1e6 / 29 = 34,483/s: above bare's 30,000, and ours at 49% of it.
    assert "allows it 34,483 events/s, 115% of the bare loop's rate" in finding
    assert "Ours runs at 49% of that: the gap is the worker's own" in finding
    assert "gets past that bound" not in finding


def test_without_the_database_measurement_the_consumer_finding_says_less():
    from bench.report import Report

    report = Report(quick=True, sizes={}, machine="test")
    report.consumer = {"ours": {"rate": 25_000.0}, "bare": {"rate": 50_000.0}}
    [finding] = report._consumer_findings()
    assert "allows it" not in finding
    assert "PostgreSQL's share of the work is the larger one" in finding


def test_a_re_rendered_report_says_when_it_was_measured():
    """``--render-only`` writes the results again from the saved run: the
    date is the run's, not the rendering's (and one saved before reports
    kept it still renders, with the rendering's)."""
    import pickle
    from datetime import UTC, datetime

    from bench.report import Report

    report = Report(quick=True, sizes={}, machine="test")
    report.run_at = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    again = pickle.loads(pickle.dumps(report))
    assert again._run_at() == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    del again.run_at  # as unpickled from an older run
    assert again._run_at().date() == datetime.now(UTC).date()


def _ingest_run(rate, own_us, pg_us, mq_us, events=100_000):
    return {
        "events": events,
        "seconds": events / rate,
        "rate": rate,
        "cpu_seconds": own_us * events / 1e6,
        "services": {
            "postgresql": pg_us * events / 1e6,
            "rabbitmq": mq_us * events / 1e6,
        },
        "cores": 2,
    }


def test_machine_cpu_per_event_is_the_median_part_by_part():
    from bench.report import machine_cpu_per_event

    runs = [
        _ingest_run(10_000, 70, 40, 30),
        _ingest_run(11_000, 60, 50, 40),
        _ingest_run(9_000, 80, 45, 20),
    ]
    cost = machine_cpu_per_event(runs)
    assert cost is not None
    assert round(cost["own"]) == 70
    assert round(cost["postgresql"]) == 45
    assert round(cost["rabbitmq"]) == 30
    # The median of the runs' sums (140, 150, 145), not the sum of medians.
    assert round(cost["all"]) == 145
    older = [{k: v for k, v in r.items() if k != "services"} for r in runs]
    assert machine_cpu_per_event(older) is None


def test_the_ingest_finding_bounds_the_route_by_its_cpu_per_event():
    from bench.report import Report

    report = Report(quick=True, sizes={}, machine="test")
    report.ingest = {
        "ours": [_ingest_run(11_000, 70, 45, 35)] * 3,
        "pika": [_ingest_run(30_000, 16, 9, 10)] * 3,
    }
    table = "\n".join(report._ingest())
    assert "| own processes | PostgreSQL | RabbitMQ | all |" in table
    assert "| 70 | 45 | 35 | 150 |" in table
    [finding] = report._ingest_findings()
    # 2 cores / 150 µs = 13,333 events/s = 44% of 30,000; 70% of it needs
    # 2e6 / 21,000 = 95 µs per event, 63% of 150.
    assert "bounds ours at 13,333 events/s" in finding
    assert "44% of bare pika's rate" in finding
    assert "at most 95 µs per event, 63% of what the route costs now" in finding


def test_an_ingest_run_without_the_services_measured_says_no_bound():
    from bench.report import Report

    def run(rate):
        return {"events": 1000, "seconds": 1000 / rate, "rate": rate, "cpu_seconds": 1}

    report = Report(quick=True, sizes={}, machine="test")
    report.ingest = {"ours": [run(5_000)], "pika": [run(30_000)]}
    assert "own processes | PostgreSQL" not in "\n".join(report._ingest())
    [finding] = report._ingest_findings()
    assert "bounds ours at" not in finding


def test_ours_cpu_per_event_is_split_by_process_when_recorded():
    from bench.report import Report, process_cpu_per_event

    def run(rate, worker_us, pool_us, relay_us):
        result = _ingest_run(rate, worker_us + pool_us + relay_us, 45, 35)
        result["processes"] = {
            kind: us * result["events"] / 1e6
            for kind, us in (
                ("worker", worker_us),
                ("pool", pool_us),
                ("relay", relay_us),
            )
        }
        return result

    runs = [run(11_000, 30, 20, 25), run(10_000, 34, 18, 21), run(12_000, 32, 22, 23)]
    split = process_cpu_per_event(runs)
    assert split is not None
    assert {kind: round(us) for kind, us in split.items()} == {
        "worker": 32,
        "pool": 20,
        "relay": 23,
    }
    report = Report(quick=True, sizes={}, machine="test")
    report.ingest = {"ours": runs, "pika": [_ingest_run(30_000, 16, 9, 10)] * 3}
    table = "\n".join(report._ingest())
    assert "the ingest bootstep: AMQP, validation, the log's INSERT) 32" in table
    assert "(the feed's task: validation, COPY) 20" in table
    [finding] = report._ingest_findings()
    assert "worker 32, pool 20, relay 23" in finding
    # Runs from before the split say nothing of it.
    older = [{k: v for k, v in r.items() if k != "processes"} for r in runs]
    assert process_cpu_per_event(older) is None
    report.ingest["ours"] = older
    assert "process by process" not in "\n".join(report._ingest())


def test_each_stage_alone_has_its_cpu_per_event_row():
    from bench.report import Report

    report = Report(quick=True, sizes={}, machine="test")
    report.ingest = {
        "ours": [_ingest_run(11_000, 70, 45, 35)] * 3,
        "pika": [_ingest_run(30_000, 16, 9, 10)] * 3,
    }
    report.ingest_stages = {
        "ingest alone": _ingest_run(20_000, 30, 15, 8, events=20_000),
        "relay alone": _ingest_run(22_000, 25, 14, 22, events=20_000),
        "feed alone": _ingest_run(35_000, 18, 13, 1, events=20_000),
    }
    table = "\n".join(report._ingest())
    assert "| ours, ingest alone (20,000 events) | 30 | 15 | 8 | 53 |" in table
    assert "| ours, relay alone (20,000 events) | 25 | 14 | 22 | 61 |" in table
    assert "| ours, feed alone (20,000 events) | 18 | 13 | 1 | 32 |" in table
    assert "The stages alone (one run each)" in table
    [finding] = report._ingest_findings()
    # Bare pika's whole: 16 + 9 + 10 = 35 µs.
    assert (
        "Stage by stage, alone: ingest 53 µs (1.5 × bare pika's whole), "
        "relay 61 µs (1.7 × bare pika's whole), feed 32 µs (0.9 × bare "
        "pika's whole)." in finding
    )
    # Stages from a run before their CPU was measured: no rows, no sentence.
    report.ingest_stages = {
        label: {k: v for k, v in r.items() if k != "services"}
        for label, r in report.ingest_stages.items()
    }
    table = "\n".join(report._ingest())
    assert "| ours, ingest alone (20,000 events) |" not in table
    assert "The stages alone" not in table
    assert "Stage by stage" not in report._ingest_findings()[0]
    assert "| 70 | 45 | 35 | 150 |" in table


def test_the_ingest_finding_says_how_onboarding_was_packed():
    from bench.report import Report

    report = Report(
        quick=True,
        sizes={"onboarding_per_message": 100, "onboarding_spread": 4},
        machine="test",
    )
    report.ingest = {
        "ours": [_ingest_run(11_000, 70, 45, 35)] * 3,
        "pika": [_ingest_run(30_000, 16, 9, 10)] * 3,
    }
    [finding] = report._ingest_findings()
    assert "(up to 100 events a message, a pass's split over at least 4)" in finding
    report.sizes = {}
    [finding] = report._ingest_findings()
    assert "(packed as their settings say)" in finding
