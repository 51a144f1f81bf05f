"""The onboarding benchmark's module: its site's three registration
variants (against the real SMTP and directory processes) and its report."""

import math

import pytest
from django.core import mail
from django.test import override_settings

from bench import onboarding as bench
from bench import onboarding_site as site
from portal.messaging.models import LoggedEvent
from registrar.models import Employee, Onboarding

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for_site(client):
    with override_settings(ROOT_URLCONF="bench.onboarding_site"):
        yield client


def test_the_floor_registers_without_event_or_onboarding(client_for_site):
    floor = client_for_site.post("/bench/onboarding/floor/?run=Floor")
    assert floor.status_code == 201
    assert not LoggedEvent.objects.exists()
    assert not Onboarding.objects.exists()
    assert Employee.objects.get(pk=floor.json()["id"]).department.name == "Floor"


def test_ours_registers_with_event_and_onboarding(client_for_site, onboarding_enabled):
    ours = client_for_site.post("/bench/onboarding/ours/?run=Ours")
    assert ours.status_code == 201
    assert LoggedEvent.objects.get().type == "employee.registered"
    assert Onboarding.objects.get().employee_id == ours.json()["id"]


def test_sync_makes_both_calls_in_the_request_and_fails_with_the_directory(
    client_for_site, settings, directory
):
    settings.ONBOARDING_DIRECTORY_URL = directory.url
    site._client.http = None
    response = client_for_site.post("/bench/onboarding/sync/")
    assert response.status_code == 201
    assert len(mail.outbox) == 1
    assert directory.stats()["accounts"] == 1
    directory.control(down=True)
    failed = client_for_site.post("/bench/onboarding/sync/")
    assert failed.status_code == 502
    assert "503" in failed.json()["error"]
    site._client.http = None


def test_percentiles_and_the_report():
    assert bench.percentile([0.001 * i for i in range(1, 101)], 99) == 0.099
    assert math.isnan(bench.percentile([], 50))
    stats = {
        "floor": bench.summarize([0.010] * 99 + [0.020]),
        "ours": bench.summarize([0.011] * 99 + [0.022]),
        "sync": bench.summarize([2.0] * 100, errors=3),
    }
    results = {
        "requests": 100,
        "rate": 10.0,
        "registration": {"2 s": stats},
        "ready": {
            "rate": 50.0,
            "registrations": 10,
            "ready": 10,
            "registration_errors": 0,
            **bench.summarize([0.2] * 10),
        },
    }
    verdict = bench.registration_verdicts(results["registration"])["2 s"]
    assert verdict["met"]
    assert verdict["ours_vs_floor"] == pytest.approx(1.1)
    assert verdict["sync_vs_floor"] == pytest.approx(200)
    text = "\n".join(bench.onboarding_markdown(results))
    assert "| 2 s | 10.0 / 10.0 | 11.0 / 11.0 | 2000 / 2000 (3) | 1.10 x |" in text
    assert "p50 200 ms, p99 200 ms (10 of 10 ready" in text


def test_the_section_is_added_to_the_results_file(tmp_path):
    (tmp_path / "latest.md").write_text("# Benchmark results\n")
    stats = {v: bench.summarize([0.01]) for v in bench.VARIANTS}
    results = {
        "requests": 1,
        "rate": 1.0,
        "registration": {"0 ms": stats},
        "ready": {
            "rate": 50.0,
            "registrations": 1,
            "ready": 1,
            "registration_errors": 0,
            **bench.summarize([0.1]),
        },
    }
    bench.onboarding_write(tmp_path, "latest", results)
    text = (tmp_path / "latest.md").read_text()
    assert text.startswith("# Benchmark results\n\n## Onboarding")
    assert (tmp_path / "latest-onboarding.json").exists()
