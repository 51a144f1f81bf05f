"""The alerts against a running stack, scraped by a real Prometheus.

gunicorn (two workers, ``gunicorn.conf.py``: multiprocess metrics), the
relay and a Celery worker (two pool processes) run as in production, each
serving its metrics behind a bearer token; Debian's ``prometheus`` scrapes
them every second and evaluates ``deploy/prometheus/alerts.yml``. Traffic
goes through the log (registrations), over HTTP and AMQP (ingestion, an
invalid message among them). Then:

* every metric the alert rules and the dashboard use is in Prometheus;
* every metric the portal exports is documented in the README;
* the dashboard's panels are drawn from Prometheus (the README's picture);
* the relay is stopped: the relay-silent alert's expression turns true
  within its window, not before, and Prometheus fires the alert.
"""

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import promql_parser
import pytest
import yaml
from django.conf import settings
from django.contrib.auth.models import Group, User
from kombu import Connection, Exchange, Producer
from rest_framework.authtoken.models import Token

from portal.messaging.apis import service_token_create
from portal.messaging.models import DeadLetter
from portal.roles import HR_GROUP
from registrar.services import employee_register
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from tests.conftest import worker_env
from tests.factories import DepartmentFactory
from tests.helpers import make_envelope, wait_for
from tests.messaging.conftest import private_queue_names

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "portal.json"
PREFIX = "feed.stack-test"
TOKEN = "stack-test-" + uuid.uuid4().hex
# Prometheus's own series, not the portal's.
PROMETHEUS_OWN = {"up"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def rule_expressions() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for g in groups for rule in g["rules"]}


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        self.processes[name] = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
        )

    def log(self, name: str) -> str:
        return self.logs[name].read_text()

    def stop(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)


def get_json(url: str, headers: dict | None = None) -> dict:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def query(prometheus: str, expr: str) -> list:
    params = urllib.parse.urlencode({"query": expr})
    body = get_json(f"{prometheus}/api/v1/query?{params}")
    assert body["status"] == "success", body
    return body["data"]["result"]


def http_post(url: str, body: dict, token: str) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Token {token}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def hr_token() -> str:
    user = User.objects.create_user(f"hr-{uuid.uuid4().hex[:6]}", password="pw")
    user.groups.add(Group.objects.get_or_create(name=HR_GROUP)[0])
    return Token.objects.create(user=user).key


def register_over_http(web: str, token: str, department: int, n: int) -> None:
    for _ in range(n):
        status = http_post(
            f"{web}/api/employees/",
            {
                "full_name": "Anna Petrova",
                "email": f"{uuid.uuid4().hex[:10]}@example.com",
                "position": "Engineer",
                "department": department,
                "team": None,
                "hired_on": "2026-01-05",
            },
            token,
        )
        assert status == 201


def register(n: int) -> None:
    department = DepartmentFactory(name=f"Dept {uuid.uuid4().hex[:6]}")
    for i in range(n):
        employee_register(
            full_name=f"Person {i}",
            email=f"{uuid.uuid4().hex[:10]}@example.com",
            position="Engineer",
            department=department,
        )


@pytest.fixture
def stack(tmp_path, private_worker):
    prometheus_bin = shutil.which("prometheus")
    assert prometheus_bin, "needs Prometheus: apt-get install prometheus (.ci/run does)"
    ports = {name: free_port() for name in ("web", "relay", "worker", "prometheus")}
    queues = private_queue_names(PREFIX)
    common = {
        **queues,
        "METRICS_TOKEN": TOKEN,
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "HEARTBEAT_DIR": str(tmp_path / "heartbeat"),
        "LOG_FORMAT": "json",
    }
    without_queues = {k: v for k, v in common.items() if k not in queues}
    private_worker(
        PREFIX,
        concurrency=2,
        WORKER_METRICS_PORT=str(ports["worker"]),
        **without_queues,
    )
    stack = Stack(tmp_path)
    stack.start(
        "web",
        [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--workers", "2",
         "--bind", f"127.0.0.1:{ports['web']}"],
        worker_env(**common),
    )  # fmt: skip
    stack.start(
        "relay",
        [sys.executable, "manage.py", "relay_outbox", "--grace", "0.2",
         "--interval", "0.5"],
        worker_env(
            **common,
            RELAY_METRICS_PORT=str(ports["relay"]),
            RELAY_HEARTBEAT_SECONDS="1",
            RELAY_QUEUE_CHECK_SECONDS="1",
            EVENT_PRUNE_INTERVAL_SECONDS="0",
        ),
    )  # fmt: skip
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    auth = {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}}
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": "portal-web", "metrics_path": "/metrics", **auth,
             "static_configs": [{"targets": [f"127.0.0.1:{ports['web']}"]}]},
            {"job_name": "portal-relay", **auth,
             "static_configs": [{"targets": [f"127.0.0.1:{ports['relay']}"]}]},
            {"job_name": "portal-worker", **auth,
             "static_configs": [{"targets": [f"127.0.0.1:{ports['worker']}"]}]},
        ],
    }  # fmt: skip
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    stack.start(
        "prometheus",
        [prometheus_bin, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{ports['prometheus']}"],
        dict(os.environ),
    )  # fmt: skip
    stack.ports = ports
    stack.prometheus = f"http://127.0.0.1:{ports['prometheus']}"
    try:
        yield stack
    finally:
        stack.stop_all()


def wait_targets_up(stack: Stack) -> None:
    def all_up():
        """Prometheus scrapes web, relay and worker"""
        try:
            body = get_json(f"{stack.prometheus}/api/v1/targets")
        except OSError:
            return False
        targets = body["data"]["activeTargets"]
        return len(targets) == 3 and all(t["health"] == "up" for t in targets)

    try:
        wait_for(all_up, timeout=60, interval=0.5)
    except AssertionError:
        for name in stack.processes:
            print(f"--- {name}\n{stack.log(name)[-3000:]}")
        raise


def traffic(stack: Stack) -> None:
    web = f"http://127.0.0.1:{stack.ports['web']}"
    _, key = service_token_create(name="stack-test", source_prefix="/stack")
    envelope = make_envelope(source="/stack")
    assert http_post(f"{web}/api/events/", envelope, key) == 202
    assert http_post(f"{web}/api/events/", envelope, key) == 202  # again: harmless
    assert http_post(f"{web}/api/events/", {"id": "x"}, key) == 400
    # Straight to this test's ingest queue (the default exchange): through
    # portal.events they would also reach every other ingest queue bound
    # there, such as the session worker's.
    with Connection(settings.CELERY_BROKER_URL) as conn:
        producer = Producer(conn.channel(), exchange=Exchange(""))
        for body, content_type in (
            (json.dumps(make_envelope(source="/stack-amqp")), "application/json"),
            (b"<xml/>", "application/xml"),  # refused: a dead letter
        ):
            producer.publish(
                body, routing_key=settings.INGEST_QUEUE, content_type=content_type,
                content_encoding="utf-8", delivery_mode=2,
            )  # fmt: skip
    # Registrations through the web (gunicorn logs them), at a steady pace.
    token, department = hr_token(), DepartmentFactory().pk
    for _ in range(20):
        register_over_http(web, token, department, 2)
        time.sleep(1)


def test_the_alerts_see_a_running_stack_and_a_stopped_relay(stack):
    wait_targets_up(stack)
    stack.started = time.time()
    traffic(stack)

    used = set().union(*map(metric_names, rule_expressions().values()))
    used |= set().union(*map(metric_names, dashboard_expressions()))
    assert {"portal_relay_last_pass_timestamp_seconds", "up"} <= used

    def exported() -> set[str]:
        return set(get_json(f"{stack.prometheus}/api/v1/label/__name__/values")["data"])

    def all_exported():
        """every metric the alerts and the dashboard use is in Prometheus"""
        return used <= exported()

    try:
        wait_for(all_exported, timeout=60, interval=1)
    except AssertionError:
        # What the worker did with the traffic, to tell a metric that is not
        # exported from an event that never arrived.
        worker_log = stack.tmp / "worker-0.log"
        lines = worker_log.read_text().splitlines() if worker_log.exists() else []
        said = [
            line[:300]
            for line in lines
            if "Ingested" in line or "ERROR" in line or "Traceback" in line
        ]
        raise AssertionError(
            f"never exported: {sorted(used - exported())}; dead letters stored: "
            f"{DeadLetter.objects.count()}; the worker said: {said[-10:]}"
        ) from None
    ours = {name for name in exported() if name.startswith("portal_")}
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`(portal_[a-z_]+)(?:\{[^`]*\})?`", readme))
    undocumented = {
        name for name in ours
        if re.sub(r"_(bucket|count|sum|created)$", "", name) not in documented
    }  # fmt: skip
    assert undocumented == set(), "metrics missing from the README"

    def feed_applied() -> float:
        result = query(
            stack.prometheus,
            'sum(portal_subscriber_events_applied_total{subscriber="feed"})',
        )
        return float(result[0]["value"][1]) if result else 0.0

    # 40 registrations, one event over HTTP, one over AMQP: counted across
    # the worker's two pool processes.
    wait_for(lambda: feed_applied() == 42, timeout=30, what="42 applied in all")

    # The dashboard, drawn from these queries (the README's picture).
    render_dashboard(stack, minutes=(time.time() - stack.started) / 60)

    # Relay running: silent is false, nothing owed for long.
    silent = rule_expressions()["PortalRelaySilent"]
    undelivered = rule_expressions()["PortalEventUndelivered"]
    assert query(stack.prometheus, silent) == []
    assert query(stack.prometheus, undelivered) == []
    assert query(stack.prometheus, 'up{job="portal-relay"}')[0]["value"][1] == "1"

    stack.stop("relay")
    stopped = time.monotonic()
    register(1)  # owed, and nobody to route it
    wait_for(
        lambda: query(stack.prometheus, 'up{job="portal-relay"}')[0]["value"][1] == "0",
        timeout=10,
        what="Prometheus sees the relay gone",
    )
    # The heartbeat still reaches Prometheus (through the web), unmoving.
    assert query(stack.prometheus, "portal_relay_last_pass_timestamp_seconds")

    def silent_true():
        """the relay-silent expression is true"""
        return query(stack.prometheus, silent)

    wait_for(silent_true, timeout=90, interval=1)
    took = time.monotonic() - stopped
    assert 55 <= took <= 75, f"turned true {took:.0f}s after the relay stopped"

    def firing(name: str) -> bool:
        alerts = get_json(f"{stack.prometheus}/api/v1/alerts")["data"]["alerts"]
        return any(
            a["labels"]["alertname"] == name and a["state"] == "firing" for a in alerts
        )

    wait_for(lambda: firing("PortalRelaySilent"), timeout=10, what="alert firing")
    wait_for(lambda: firing("PortalEventUndelivered"), timeout=20, what="owed alert")
    owed = query(stack.prometheus, undelivered)
    assert {r["metric"]["destination"] for r in owed} >= {"feed", "audit"}


def render_dashboard(stack: Stack, minutes: float) -> None:
    spec = importlib.util.spec_from_file_location(
        "render_panels", ROOT / "deploy" / "grafana" / "render_panels.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = module.render(stack.prometheus, minutes=minutes, out=stack.tmp / "dash.html")
    text = page.read_text()
    assert text.count("<svg") == len(json.loads(DASHBOARD.read_text())["panels"])
    assert "<polyline" in text  # data, not only empty panels
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        view = browser.new_page(viewport={"width": 1160, "height": 900})
        view.goto(page.as_uri())
        view.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
        browser.close()
