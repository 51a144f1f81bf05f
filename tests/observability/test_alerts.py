"""The alert rules parse, and their own unit tests pass (promtool)."""

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.observability.test_stack_prometheus import metric_names, rule_expressions

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "needs promtool: apt-get install prometheus (.ci/run does)"
    return found


def test_promtool_checks_the_alert_rules():
    result = subprocess.run(
        [promtool(), "check", "rules", str(RULES / "alerts.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_the_alert_rules_unit_tests_pass():
    """``alerts.test.yml``: each alert fires on the series it is about, at
    the time it should, and not before."""
    result = subprocess.run(
        [promtool(), "test", "rules", "alerts.test.yml"],
        capture_output=True,
        text=True,
        cwd=RULES,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load((RULES / "alerts.test.yml").read_text())["tests"]
    tested = {
        case["alertname"] for test in tests for case in test.get("alert_rule_test", [])
    }
    assert tested == set(rule_expressions())  # every alert has a test


def test_a_broken_rule_is_refused(tmp_path):
    """The check is not a formality: promtool refuses a rule it cannot parse."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "groups:\n- name: x\n  rules:\n  - alert: X\n    expr: rate(portal_x[5m]\n"
    )
    result = subprocess.run(
        [promtool(), "check", "rules", str(broken)], capture_output=True, text=True
    )
    assert result.returncode != 0


def test_the_rules_read_only_the_portals_metrics_and_prometheus_up():
    used = set().union(*map(metric_names, rule_expressions().values()))
    assert {name for name in used if not name.startswith("portal_")} == {"up"}
