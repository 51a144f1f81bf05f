"""docker-compose.yml and the Dockerfile point at things that exist.

No Docker engine is needed: the files are parsed, and every entry point they
name (manage.py commands, the WSGI callable, the Celery app and its queues) is
resolved against the code, so renaming one breaks this test instead of the
deployment. No database is touched.
"""

import ast
import http.server
import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from celery import Celery
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

EXPECTED_SERVICES = {
    "postgres",
    "rabbitmq",
    "migrate",
    "web",
    "worker",
    "onboarding-worker",
    "relay",
    "flower",
    "mailpit",
    "directory",
    "prometheus",
    "grafana",
}
APP_SERVICES = {"migrate", "web", "worker", "onboarding-worker", "relay", "flower"}
LONG_RUNNING_APP_SERVICES = {"web", "worker", "onboarding-worker", "relay"}
WORKER_SERVICES = {"worker", "onboarding-worker"}
NEEDS_HEALTHCHECK = {
    "postgres",
    "rabbitmq",
    "web",
    "worker",
    "onboarding-worker",
    "relay",
    "mailpit",
    "directory",
    "prometheus",
}
ALLOWED_CONDITIONS = {"service_healthy", "service_completed_successfully"}
# Environment keys whose values are secrets: they must come from the environment.
SECRET_KEY_PATTERN = re.compile(r"SECRET|PASSWORD|PASS$|TOKEN|BASIC_AUTH")
INTERPOLATION = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> str:
    # Join continuation lines so each instruction is one line.
    return re.sub(r"\\\n", " ", DOCKERFILE.read_text())


def argv(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def option(args: list[str], long: str, short: str | None = None) -> str | None:
    """The value of ``--long=value``, ``--long value`` or ``-s value`` in args."""
    for index, arg in enumerate(args):
        if arg.startswith(f"{long}="):
            return arg.split("=", 1)[1]
        if arg in {long, short} and index + 1 < len(args):
            return args[index + 1]
    return None


def healthcheck_text(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def dockerfile_cmd(dockerfile: str) -> list[str]:
    commands = re.findall(r"^CMD\s+(.+)$", dockerfile, flags=re.MULTILINE)
    assert commands, "Dockerfile has no CMD"
    return json.loads(commands[-1])


# --- Services and their order of start -----------------------------------------


def test_compose_defines_every_service_of_the_stack(services):
    assert services.keys() >= EXPECTED_SERVICES


def test_dependencies_wait_for_health_or_completion_not_just_start(services):
    """A bare ``depends_on: [x]`` only waits for x's container to start."""
    with_dependencies = {name for name, svc in services.items() if "depends_on" in svc}
    assert with_dependencies >= APP_SERVICES
    for name in with_dependencies:
        depends_on = services[name]["depends_on"]
        assert isinstance(depends_on, dict), f"{name}: depends_on must name conditions"
        for target, spec in depends_on.items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = (spec or {}).get("condition")
            assert condition in ALLOWED_CONDITIONS, f"{name} -> {target}: {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], (
                    f"{name} waits for {target} to be healthy; it has no healthcheck"
                )


def test_app_processes_start_after_database_broker_and_migrations(services):
    def condition(service: str, target: str) -> str:
        return services[service]["depends_on"][target]["condition"]

    for name in LONG_RUNNING_APP_SERVICES:
        assert condition(name, "postgres") == "service_healthy", name
        assert condition(name, "rabbitmq") == "service_healthy", name
        assert condition(name, "migrate") == "service_completed_successfully", name
    assert condition("migrate", "postgres") == "service_healthy"
    assert condition("flower", "rabbitmq") == "service_healthy"


def test_migrate_runs_once_and_is_not_restarted_after_success(services):
    """``unless-stopped`` would rerun a one-shot container after every exit."""
    assert str(services["migrate"].get("restart", "no")) in {"no", "on-failure"}


def test_servers_and_broker_and_database_have_healthchecks(services):
    for name in NEEDS_HEALTHCHECK:
        test = services[name].get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
        assert test not in (["NONE"], "NONE"), f"{name} disables its healthcheck"
    assert "pg_isready -U portal -d portal" in healthcheck_text(services["postgres"])
    assert "rabbitmq-diagnostics -q ping" in healthcheck_text(services["rabbitmq"])
    assert "/healthz" in healthcheck_text(services["web"])


@pytest.mark.parametrize("service", ["relay", "worker", "onboarding-worker"])
def test_relay_and_worker_healthchecks_run_the_health_command(
    services, service, tmp_path
):
    """``manage.py portal_health <kind>`` passes on a fresh heartbeat file and
    fails on a stale or missing one: run here exactly as compose runs it."""
    kind = "relay" if service == "relay" else "worker"
    test = services[service]["healthcheck"]["test"]
    assert test[:4] == ["CMD", "python", "manage.py", "portal_health"]
    assert test[4] == kind
    assert "portal_health" in get_commands()
    env = {
        **os.environ,
        "HEARTBEAT_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "portal.settings.base",
    }

    def probe() -> int:
        return subprocess.run(
            [sys.executable, *test[2:]], cwd=ROOT, env=env, capture_output=True
        ).returncode

    assert probe() == 1  # no heartbeat yet
    (tmp_path / kind).write_text("1")
    assert probe() == 0
    old = time.time() - 600
    os.utime(tmp_path / kind, (old, old))
    assert probe() == 1


# --- Entry points exist in the code -------------------------------------------


def test_manage_py_subcommands_used_are_real_django_commands(services):
    used = {}
    for name, service in services.items():
        args = argv(service)
        if "manage.py" in args:
            used[name] = args[args.index("manage.py") + 1]
    assert used.get("migrate") == "migrate"
    assert used.get("relay") == "relay_outbox"
    available = get_commands()
    for name, command in used.items():
        assert command in available, f"{name}: manage.py {command} does not exist"


def test_web_serves_the_projects_asgi_callable_with_gunicorn(services):
    """ASGI (uvicorn workers): the feed's live stream is an async view."""
    args = argv(services["web"])
    assert args[0] == "gunicorn"
    assert option(args, "--worker-class", "-k") == "uvicorn_worker.UvicornWorker"
    importlib.import_module("uvicorn_worker")
    target = args[1]
    assert target == "portal.asgi:application"
    module_name, _, attribute = target.partition(":")
    application = getattr(importlib.import_module(module_name), attribute)
    assert callable(application)
    assert option(args, "--bind", "-b") == "0.0.0.0:8000"
    assert any(str(port).endswith("8000:8000") for port in services["web"]["ports"])


def test_programs_the_commands_run_are_project_dependencies(services):
    """The image only has what ``pip install .`` installs from pyproject.toml."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {
        re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
        for requirement in pyproject["project"]["dependencies"]
    }
    programs = {argv(service)[0] for service in services.values() if argv(service)}
    assert {"gunicorn", "celery", "python"} <= programs
    assert {"gunicorn", "celery", "flower"} <= declared
    for program in programs - {"python"}:
        assert program in declared, f"{program} is not a project dependency"
        importlib.import_module(program)


def test_celery_commands_load_the_portal_app(services):
    celery_services = [
        name for name, svc in services.items() if argv(svc)[:1] == ["celery"]
    ]
    assert {"worker", "flower"} <= set(celery_services)
    for name in celery_services:
        assert option(argv(services[name]), "--app", "-A") == "portal", name
    portal = importlib.import_module("portal")
    assert isinstance(portal.celery_app, Celery)


def _portal_task_queues() -> set[str]:
    """Every subscriber's task queue of the portal as deployed: the app's
    (onboarding's too, switched off in the tests), less the tests' own."""
    from portal.messaging.subscriptions import subscriptions
    from portal.testing.subscriber_app.subscriptions import AUDIT
    from tests.onboarding.conftest import ONBOARDING_SUBSCRIPTIONS

    declared = {s.queue for s in subscriptions()}
    return (declared | {s.queue for s in ONBOARDING_SUBSCRIPTIONS}) - {AUDIT.queue}


@pytest.mark.parametrize("name", sorted(WORKER_SERVICES))
def test_worker_consumes_only_queues_the_app_declares(services, name):
    args = argv(services[name])
    assert args[:4] == ["celery", "-A", "portal", "worker"]
    queues = option(args, "--queues", "-Q")
    assert queues, "the worker must name its queues"
    declared = _portal_task_queues()
    for queue in queues.split(","):
        assert queue in declared, f"{name} consumes {queue!r}, app declares {declared}"


def test_every_subscriber_queue_has_a_worker_and_onboarding_its_own(services):
    """No subscriber's messages pile up unconsumed; the slow outside
    services (mail, directory) never take the feed's worker processes."""
    consumed = {
        name: set(option(argv(services[name]), "--queues", "-Q").split(","))
        for name in WORKER_SERVICES
    }
    assert set().union(*consumed.values()) == _portal_task_queues()
    assert consumed["onboarding-worker"] == {"onboarding_mail", "onboarding_accounts"}
    assert not consumed["worker"] & consumed["onboarding-worker"]


def test_onboarding_reaches_the_mail_catcher_and_the_stand_in_directory(services):
    env = environment(services["onboarding-worker"])
    assert unset_value(env["EMAIL_URL"]) == "smtp://mailpit:1025"
    assert unset_value(env["ONBOARDING_DIRECTORY_URL"]) == "http://directory:8765"
    depends = services["onboarding-worker"]["depends_on"]
    assert depends["mailpit"]["condition"] == "service_healthy"
    assert depends["directory"]["condition"] == "service_healthy"
    # Mailpit's web UI is published (on loopback); its SMTP port is internal.
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    assert any(str(p).endswith(":8025") for p in services["mailpit"]["ports"])
    # The stand-in directory is examples/directory_service.py on port 8765.
    args = argv(services["directory"])
    assert args[:2] == ["python", "examples/directory_service.py"]
    assert (ROOT / args[1]).is_file()
    assert option(args, "--port") == "8765"
    assert option(args, "--host") == "0.0.0.0"
    assert "8765/health" in healthcheck_text(services["directory"])


# --- Configuration and secrets -------------------------------------------------


def test_app_services_run_the_image_with_production_settings(services):
    for name in APP_SERVICES:
        service = services[name]
        assert service.get("build") == ".", name
        env = environment(service)
        assert env["DJANGO_SETTINGS_MODULE"] == "portal.settings.production", name
        assert env["DEBUG"] in {"0", "False", "false"}, name
        assert env["DATABASE_URL"].startswith("postgres://"), name
        assert "@postgres:5432/" in env["DATABASE_URL"], name
        broker = unset_value(env["CELERY_BROKER_URL"])
        assert broker.startswith("amqp://"), name
        assert "@rabbitmq:5672/" in broker, name


def unset_value(value: str) -> str:
    """What compose passes when the variable is not set: the default of
    ``${VAR:-default}`` (empty for ``${VAR}``), else the literal itself."""
    match = re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*(?::?-(.*))?\}", value)
    return (match.group(1) or "") if match else value


def test_app_services_are_https_only_unless_turned_down(services):
    """Out of the box the stack is served as production: the SSL redirect,
    a year of HSTS with subdomains, cookies only over https. Each can be
    turned down from the environment, and a proxy's SSL header is trusted
    only when named."""
    for name in APP_SERVICES:
        env = environment(services[name])
        defaults = {key: unset_value(value) for key, value in env.items()}
        for key in (
            "SECURE_SSL_REDIRECT",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS",
            "SESSION_COOKIE_SECURE",
            "CSRF_COOKIE_SECURE",
        ):
            assert env[key].startswith(f"${{{key}:-"), f"{name}: {key} is fixed"
            assert defaults[key] in {"1", "true", "True"}, f"{name}: {key}"
        assert env["SECURE_HSTS_SECONDS"].startswith("${SECURE_HSTS_SECONDS:-")
        assert int(defaults["SECURE_HSTS_SECONDS"]) >= 365 * 24 * 3600, name
        assert env["SECURE_PROXY_SSL_HEADER"].startswith("${SECURE_PROXY_SSL_HEADER")
        assert defaults["SECURE_PROXY_SSL_HEADER"] == "", name


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.send_response(self.status)
        if self.status == 301:
            self.send_header("Location", f"https://127.0.0.1{self.path}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("status", "healthy"), [(200, True), (301, False), (500, False)]
)
def test_web_healthcheck_wants_healthz_to_answer(services, status, healthy):
    """/healthz is exempt from the redirect to https (production settings),
    so a redirect means something is wrong."""
    test = services["web"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    handler = type("Answer", (_Answer,), {"status": status})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        code = test[3].replace("8000", str(port))
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, timeout=30
        )
    finally:
        server.shutdown()
        server.server_close()
    assert (result.returncode == 0) is healthy, result.stderr


def test_compose_holds_no_literal_secrets(services):
    lines = COMPOSE_FILE.read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    for match in re.finditer(r"SECRET_KEY\s*[:=]\s*(\S*)", text):
        assert match.group(1).startswith("${"), f"literal SECRET_KEY: {match.group(0)}"
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_KEY_PATTERN.search(key):
                assert INTERPOLATION.match(value), f"{name}: {key} is not ${{...}}"
        assert not any(arg.startswith("--basic-auth=") for arg in argv(service)), name
    for name in APP_SERVICES:
        database_url = environment(services[name])["DATABASE_URL"]
        assert re.match(r"postgres://[^:/@]+:\$\{[^}]+\}@", database_url), name


def test_required_secrets_stop_compose_when_unset(services):
    """``${VAR:?...}`` makes compose refuse to start instead of using a blank key."""
    for name in APP_SERVICES:
        assert environment(services[name])["SECRET_KEY"].startswith("${SECRET_KEY:?"), (
            name
        )
    flower_env = environment(services["flower"])
    assert flower_env["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")


# --- The image -------------------------------------------------------------------


def test_dockerfile_installs_the_locked_versions_then_the_project(dockerfile):
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, flags=re.MULTILINE)
    run_lines = re.findall(r"^RUN\s+(.+)$", dockerfile, flags=re.MULTILINE)
    locked = "pip install --require-hashes -r requirements/base.lock"
    assert any(locked in line for line in run_lines)
    assert any(
        re.search(r"\bpip install --no-deps \.(\s|$)", line) for line in run_lines
    )
    assert not re.search(r"pip install[^\n]*\.\[", dockerfile), "no extras in the image"
    assert any("manage.py collectstatic --noinput" in line for line in run_lines)


def test_dockerfile_default_command_is_the_web_server(dockerfile, services):
    assert dockerfile_cmd(dockerfile) == argv(services["web"])
    assert re.search(r"^EXPOSE\s+8000\b", dockerfile, flags=re.MULTILINE)


def dockerfile_env(dockerfile: str) -> dict[str, str]:
    """What the image's ``ENV`` instructions leave set at run time."""
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV\s+(.+)$", dockerfile, flags=re.MULTILINE):
        for word in shlex.split(line):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def test_image_runs_production_settings_by_default(dockerfile):
    """``docker run`` with no settings must not fall back to the base settings
    and their well-known key: production settings refuse to start without a
    real SECRET_KEY. Only the collectstatic build step picks the base ones."""
    assert dockerfile_env(dockerfile).get("DJANGO_SETTINGS_MODULE") == (
        "portal.settings.production"
    )
    cmd = " ".join(dockerfile_cmd(dockerfile))
    assert "--settings" not in cmd
    assert "DJANGO_SETTINGS_MODULE" not in cmd
    for line in re.findall(r"^RUN\s+(.+)$", dockerfile, flags=re.MULTILINE):
        if "manage.py" in line:
            assert "DJANGO_SETTINGS_MODULE=" in line, (
                f"build step picks no settings: {line}"
            )


def test_image_runs_as_a_non_root_user(dockerfile):
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users, "no USER: the processes would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_secret_key_exists_only_for_the_build(dockerfile):
    """An ``ENV SECRET_KEY`` would ship in the image and be used at run time."""
    assert not re.search(r"^ENV\b[^\n]*SECRET_KEY", dockerfile, flags=re.MULTILINE)
    values = re.findall(r"SECRET_KEY=(\S+)", dockerfile)
    assert values, "collectstatic needs a build-only SECRET_KEY"
    assert all(value.startswith("build-only-") for value in values)


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "var", ".git", ".env", "bench/results/tmp"} <= ignored
    assert ignored & {"__pycache__", "**/__pycache__"}


def test_the_cluster_profile_runs_three_nodes_that_find_each_other(services):
    """``docker compose --profile cluster up``: rabbitmq, rabbitmq-2 and
    rabbitmq-3 share the Erlang cookie variable and the static peer list,
    whose node names are the services' host names."""
    nodes = {name: svc for name, svc in services.items() if name.startswith("rabbitmq")}
    assert set(nodes) == {"rabbitmq", "rabbitmq-2", "rabbitmq-3"}
    assert "profiles" not in nodes["rabbitmq"]  # the single node of the default
    for name in ("rabbitmq-2", "rabbitmq-3"):
        assert nodes[name]["profiles"] == ["cluster"]
    peers = (ROOT / "deploy" / "rabbitmq" / "cluster.conf").read_text()
    listed = set(re.findall(r"classic_config\.nodes\.\d+ = rabbit@(\S+)", peers))
    assert listed == {svc["hostname"] for svc in nodes.values()}
    assert "peer_discovery_backend = classic_config" in peers
    volumes = set()
    for svc in nodes.values():
        assert svc["environment"]["RABBITMQ_ERLANG_COOKIE"] == (
            "${RABBITMQ_ERLANG_COOKIE:-}"
        )
        mounts = [v for v in svc["volumes"] if "cluster.conf" in v]
        assert mounts == [
            "./deploy/rabbitmq/cluster.conf:/etc/rabbitmq/conf.d/20-cluster.conf:ro"
        ]
        volumes |= {v.split(":")[0] for v in svc["volumes"] if not v.startswith(".")}
    assert len(volumes) == 3  # a data volume each


def test_probes_and_metrics_are_exempt_from_the_https_redirect():
    text = (ROOT / "portal" / "settings" / "production.py").read_text()
    exempt = re.search(r"SECURE_REDIRECT_EXEMPT = (\[.*?\])", text).group(1)
    patterns = [re.compile(p) for p in ast.literal_eval(exempt)]
    for path in ("healthz", "readyz", "metrics"):
        assert any(p.search(path) for p in patterns), path


# --- Metrics, alerts and the dashboard --------------------------------------------


def mounts(service: dict) -> dict[str, Path]:
    """Container path -> file of this repository, for bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            found[target] = ROOT / source[2:]
    return found


def test_every_portal_process_serves_metrics_behind_a_secret_token(services, compose):
    env = environment(services["web"])
    assert env["METRICS_TOKEN"].startswith("${METRICS_TOKEN:?")
    assert env["METRICS_ADDRESS"] == "0.0.0.0"
    assert compose["secrets"]["metrics_token"] == {"environment": "METRICS_TOKEN"}
    for name in ("relay", "worker", "onboarding-worker"):
        # The metrics ports stay on the compose network.
        assert not services[name].get("ports"), name


def test_prometheus_scrapes_every_process_kind_with_the_token(services):
    prometheus = services["prometheus"]
    files = mounts(prometheus)
    config = yaml.safe_load(files["/etc/prometheus/prometheus.yml"].read_text())
    assert "metrics_token" in prometheus["secrets"]
    env = environment(services["web"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    expected = {
        "portal-web": "web:8000",
        "portal-relay": f"relay:{env['RELAY_METRICS_PORT']}",
        "portal-worker": f"worker:{env['WORKER_METRICS_PORT']}",
        "portal-onboarding-worker": f"onboarding-worker:{env['WORKER_METRICS_PORT']}",
    }
    for job, target in expected.items():
        assert jobs[job]["static_configs"][0]["targets"] == [target], job
        auth = jobs[job]["authorization"]
        assert auth["credentials_file"] == "/run/secrets/metrics_token", job
    assert jobs["flower"]["static_configs"][0]["targets"] == ["flower:5555"]
    assert jobs["rabbitmq"]["static_configs"][0]["targets"] == ["rabbitmq:15692"]
    # The rule file it loads is the one mounted from deploy/.
    (rules,) = config["rule_files"]
    assert files[rules] == ROOT / "deploy" / "prometheus" / "alerts.yml"
    for path in files.values():
        assert path.is_file(), path


def test_rabbitmq_runs_its_prometheus_plugin(services):
    files = mounts(services["rabbitmq"])
    plugins = files["/etc/rabbitmq/enabled_plugins"].read_text()
    assert "rabbitmq_prometheus" in plugins
    assert "rabbitmq_management" in plugins  # the image's own UI stays


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(services):
    grafana = services["grafana"]
    files = mounts(grafana)
    provisioning = files["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    assert source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(
        (provisioning / "dashboards" / "portal.yml").read_text()
    )["providers"]
    dashboards = files[provider["options"]["path"]]
    dashboard = json.loads((dashboards / "portal.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"], panel["title"]
            assert target["expr"].strip(), panel["title"]
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/portal.json"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
