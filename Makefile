# Portal: the quick start is `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements/dev.lock | md5sum | cut -c1-8)
PORTAL_PORT ?= 8000
export PORTAL_PORT
# `make run` starts the stand-in directory service here.
ONBOARDING_DIRECTORY_PORT ?= 8765
export ONBOARDING_DIRECTORY_PORT

# What `make test` uses when DATABASE_URL is unset and the servers answer.
LOCAL_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/portal
LOCAL_BROKER_URL ?= amqp://guest:guest@127.0.0.1:5672//

.PHONY: install lock run test lint format flower relay worker migrate clean chaos chaos-cluster bench test-onboarding-outage

# The exact versions (and their hashes) of requirements/dev.lock, then the
# project itself without resolving anything again.
$(STAMP): pyproject.toml requirements/dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## Re-resolve the lock files after changing the ranges in pyproject.toml:
## base.lock (the image), dev.lock (make install, CI), bench.lock (make bench).
LOCK := $(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url \
	--no-emit-find-links --generate-hashes --allow-unsafe
lock: install
	$(PY) -m pip install --quiet "pip-tools>=7.4,<8"
	$(LOCK) -o requirements/base.lock pyproject.toml
	$(LOCK) --extra dev -o requirements/dev.lock pyproject.toml
	$(LOCK) --extra dev --extra bench -o requirements/bench.lock pyproject.toml

migrate: install
	$(PY) manage.py migrate --noinput

## Embedded default (SQLite + filesystem broker) unless DATABASE_URL/CELERY_BROKER_URL are set.
run: migrate
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py seed_demo
	@echo "Portal: http://127.0.0.1:$(PORTAL_PORT)/  (Ctrl-C stops web, worker, relay and the stand-in directory)"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile

## The whole suite; uses local PostgreSQL + RabbitMQ when they answer.
test: install
	@if [ -z "$$DATABASE_URL" ] && $(PY) -c "import socket,sys; [socket.create_connection(('127.0.0.1', p), 1).close() for p in (5432, 5672)]" 2>/dev/null; then \
		echo "make test: using PostgreSQL and RabbitMQ on 127.0.0.1"; \
		export DATABASE_URL="$(LOCAL_DATABASE_URL)" CELERY_BROKER_URL="$(LOCAL_BROKER_URL)"; \
	fi; \
	$(PY) -m pytest --cov $(PYTEST_ARGS)

## ruff and mypy through pre-commit's hooks (.pre-commit-config.yaml).
lint: install
	$(PY) -m pre_commit run --all-files --show-diff-on-failure

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Needs FLOWER_BASIC_AUTH=user:password (or FLOWER_ALLOW_NO_AUTH=1 on loopback).
flower: install
	$(PY) manage.py flower

## Consumes every subscriber's queue (the feed, onboarding, the registrar's).
worker: install
	$(VENV)/bin/celery -A portal worker --loglevel=INFO

relay: install
	$(PY) manage.py relay_outbox

## The onboarding outage test at full length: the directory down for 60 s
## during 500 registrations (`make test` runs it with a 15 s outage).
ONBOARDING_OUTAGE_SECONDS ?= 60
test-onboarding-outage: install
	ONBOARDING_OUTAGE_SECONDS=$(ONBOARDING_OUTAGE_SECONDS) $(MAKE) --no-print-directory test \
		PYTEST_ARGS="-s tests/onboarding/test_pipeline.py -k directory_down"

## Fault-injection scenarios at scale on PostgreSQL + RabbitMQ (own database and
## vhost; scenario 4 restarts a private RabbitMQ node it starts itself)
## -> bench/results/chaos.md
CHAOS_SCALE ?= 5
chaos: install
	$(PY) bench/chaos.py --scale $(CHAOS_SCALE)

## The cluster fault scenarios at scale: a private three-node RabbitMQ cluster
## it starts and destroys (never the machine's node), two relays, two workers,
## CHAOS_CLUSTER_SCALE events per scenario, a 2-minute database outage, and the
## delayed-delivery start-up pause -> bench/results/chaos-cluster.md
CHAOS_CLUSTER_SCALE ?= 20000
chaos-cluster: install
	$(PY) bench/chaos_cluster.py --events $(CHAOS_CLUSTER_SCALE)

## The side-by-side benchmark on PostgreSQL + RabbitMQ (its own database
## portal_bench and vhost bench) -> bench/results/latest.md + PNG plots.
## Targets are decided on the median of BENCH_ROUNDS interleaved runs.
## BENCH_ARGS=--quick for a small run while developing.
BENCH_ROUNDS ?= 3
bench: install
	$(PY) -m pip install --quiet --require-hashes -r requirements/bench.lock
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements/bench-baselines.txt
	$(PY) -m bench.run --rounds $(BENCH_ROUNDS) $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache .ruff_cache
