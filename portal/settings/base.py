"""Settings read from the environment.

With nothing set, the portal runs on an embedded default that needs no server:
an SQLite file and kombu's ``filesystem://`` transport under ``./var/``. Set
``DATABASE_URL`` and ``CELERY_BROKER_URL`` to run on PostgreSQL and RabbitMQ.
"""

from datetime import datetime, timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from portal.observability.logcontext import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

VAR_DIR = Path(env.str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
# A fixed key is only acceptable for the embedded default; production.py refuses it.
SECRET_KEY = env.str("SECRET_KEY", default="insecure-embedded-default-key-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "csp",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "portal.messaging",
    "registrar",
    "feed",
    "accounts",
    "onboarding",
    # More apps, e.g. ones that declare subscribers of their own.
    *env.list("PORTAL_EXTRA_APPS", default=[]),
]

MIDDLEWARE = [
    # First: every line logged and every event logged during a request
    # carries its trace.
    "portal.observability.tracing.TraceparentMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a login refused for too many failures into its own page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
# Served by gunicorn with uvicorn workers (Procfile, Dockerfile): the feed's
# live stream through Django's ASGI handler, every other request through its
# WSGI handler in a pool of WEB_THREADS threads (portal/asgi.py).
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process, the worker and the relay share one file: wait for locks
    # instead of failing, and take the write lock at BEGIN to avoid upgrades.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# PostgreSQL that is slow or gone must not hang a process: a connection
# attempt gives up after DATABASE_CONNECT_TIMEOUT seconds, a statement after
# DATABASE_STATEMENT_TIMEOUT_MS, and a transaction left idle (a process
# stuck between two statements) is ended after
# DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS. 0 switches either off. Each
# process kind (web, relay, worker) may set its own.
DATABASE_CONNECT_TIMEOUT = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
DATABASE_STATEMENT_TIMEOUT_MS = env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=30_000)
DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS = env.int(
    "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", default=60_000
)
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options.setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT)
    _options["options"] = " ".join(
        [
            _options.get("options", ""),
            f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS}",
            "-c idle_in_transaction_session_timeout="
            f"{DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS}",
        ]
    ).strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_VALIDATORS = "django.contrib.auth.password_validation"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"{_VALIDATORS}.UserAttributeSimilarityValidator"},
    {"NAME": f"{_VALIDATORS}.MinimumLengthValidator"},
    {"NAME": f"{_VALIDATORS}.CommonPasswordValidator"},
    {"NAME": f"{_VALIDATORS}.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "login"
# Linked from the top bar for admins when set; Flower runs as its own process
# (e.g. FLOWER_URL=http://127.0.0.1:5555/ beside `make flower`).
FLOWER_URL = env.str("FLOWER_URL", default="")
LOGIN_REDIRECT_URL = "feed:home"
LOGOUT_REDIRECT_URL = "login"

# --- Accounts ----------------------------------------------------------------

# Login lockout (django-axes, see accounts/lockout.py): after
# LOGIN_FAILURE_LIMIT failed logins for one username, or from one address,
# that username or address is refused for LOGIN_COOLOFF_MINUTES since its last
# try, on the login page, the admin and POST /api/auth/token/. Behind a
# reverse proxy every client has the proxy's address: use LOGIN_LOCKOUT_BY=username.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses before any check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = env.list(
    "LOGIN_LOCKOUT_BY", default=["username", "ip_address"]
)
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# Failures are kept (admin: Axes -> Access attempts); successful logins are not.
AXES_DISABLE_ACCESS_LOG = True
# No start-up banner in every command's output; lockouts are still logged.
AXES_VERBOSE = False

# API tokens expire this many hours after they were issued or rotated; 0: never.
API_TOKEN_TTL_HOURS = env.float("API_TOKEN_TTL_HOURS", default=0)

# Email (password reset). EMAIL_URL as django-environ reads it, e.g.
# smtp+tls://user:password@smtp.example.com:587 or consolemail://; unset, every
# message is written to a file under var/mail/.
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = VAR_DIR / "mail"
if env.str("EMAIL_URL", default=""):
    globals().update(
        (key, value)
        for key, value in env.email_url("EMAIL_URL").items()
        if value not in (None, "")
    )
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous request is then told to authenticate (401).
        "accounts.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "portal.api.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["portal.api.JSONParser"],
    "EXCEPTION_HANDLER": "portal.api.exception_handler",
    # drf-spectacular's, documenting the error responses of every operation.
    "DEFAULT_SCHEMA_CLASS": "portal.api_schema.PortalAutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Portal API",
    "DESCRIPTION": (
        "The company portal: employees, departments and teams of the registrar, "
        "the company feed with reactions, and thanks. Authenticate with a session "
        "(log in to the portal) or `Authorization: Token <key>` from "
        "`POST /api/auth/token/`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/",
    "COMPONENT_SPLIT_REQUEST": True,
    # PATCH bodies are validated whole by serializers of their own (never
    # DRF's partial=True): a field they require is required.
    "COMPONENT_SPLIT_PATCH": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Content-Security-Policy (django-csp): the portal's own scripts, styles,
# images and fonts only; no inline code (no template or script needs any), no
# plugins, no framing, no <base>. Swagger UI's icons are data: URLs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# LOG_FORMAT=json: one JSON object a line (python-json-logger) with the
# event, subscriber, task and trace a line is about; plain: readable lines
# with the same fields as key=value (the embedded default).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = logging_config(
    log_format=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO")
)

# --- Messaging ---------------------------------------------------------------

CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", default=f"filesystem://{VAR_DIR.as_posix()}/broker"
)
IS_FILESYSTEM_BROKER = CELERY_BROKER_URL.startswith("filesystem://")
if IS_FILESYSTEM_BROKER:
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    for _folder in ("out", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
else:
    # Every publish waits for RabbitMQ's confirm: a message is only "sent" once
    # the broker has taken responsibility for it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
# Never let a web request or the relay sit on an unreachable broker.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_HEARTBEAT = 30

PORTAL_EVENT_SOURCE = env.str("PORTAL_EVENT_SOURCE", default="/portal")
# The window an event's `time` must fall in: not before EVENT_TIME_EARLIEST
# (an RFC 3339 date-time) and not more than this many seconds ahead of now.
EVENT_TIME_EARLIEST = datetime.fromisoformat(
    env.str("EVENT_TIME_EARLIEST", default="2000-01-01T00:00:00+00:00")
)
if EVENT_TIME_EARLIEST.tzinfo is None:
    raise ImproperlyConfigured("EVENT_TIME_EARLIEST needs an offset, e.g. +00:00")
EVENT_TIME_MAX_FUTURE_SECONDS = env.float("EVENT_TIME_MAX_FUTURE_SECONDS", default=300)

# How an event leaves the outbox right after its commit: "notify" (the
# transaction NOTIFYs the relay, which publishes at once: web processes never
# talk to RabbitMQ; PostgreSQL only, and the default there), "thread" (a
# background publisher in the committing process; the default elsewhere),
# "inline" (in the committing thread, for scripts) or "off" (the relay's poll
# alone).
_ON_POSTGRESQL = DATABASES["default"]["ENGINE"].endswith("postgresql")
OUTBOX_PUBLISH_MODE = env.str(
    "OUTBOX_PUBLISH_MODE", default="notify" if _ON_POSTGRESQL else "thread"
)
# The channel the event log NOTIFYs and the relay LISTENs on.
OUTBOX_NOTIFY_CHANNEL = env.str("OUTBOX_NOTIFY_CHANNEL", default="portal_outbox")
# Rows still pending after this long are the relay's to route.
OUTBOX_RELAY_GRACE_SECONDS = env.float("OUTBOX_RELAY_GRACE_SECONDS", default=3.0)
OUTBOX_RELAY_INTERVAL_SECONDS = env.float("OUTBOX_RELAY_INTERVAL_SECONDS", default=1.0)
# Rows one relay pass locks and routes; bigger passes spread the SELECT and
# UPDATE round trips over more events (bench/results/latest.md measures it).
OUTBOX_RELAY_BATCH_SIZE = env.int("OUTBOX_RELAY_BATCH_SIZE", default=2000)
# Passes a relay keeps in flight while it catches up a backlog (PostgreSQL
# only): one pass's database and broker round trips overlap another's work.
OUTBOX_RELAY_THREADS = env.int("OUTBOX_RELAY_THREADS", default=2)
# Mode "thread": the background publisher gathers the commits of this many
# milliseconds into one publish (a lone commit waits at most this long).
# Mode "notify": it NOTIFYs at once, then at most once per this many ms.
OUTBOX_PUBLISH_COALESCE_MS = env.float("OUTBOX_PUBLISH_COALESCE_MS", default=5.0)
# A relay woken by a NOTIFY less than this many ms after its last pass began
# waits out the rest first: under a steady stream of commits, passes (and
# task messages) carry several events instead of one each; a lone commit
# after a quiet spell is routed at once.
OUTBOX_RELAY_PASS_GAP_MS = env.float("OUTBOX_RELAY_PASS_GAP_MS", default=25.0)

# Quorum queues are created on this many nodes (fewer when the cluster has
# fewer: 1 on a single node).
QUEUE_INITIAL_GROUP_SIZE = env.int("QUEUE_INITIAL_GROUP_SIZE", default=3)
# Subscribers. Each subscription's knobs are settings named after its
# prefix: <PREFIX>_QUEUE, _RETRY_DELAYS, _DELIVERY_LIMIT, _TASK_MAX_BYTES,
# _EVENTS_PER_MESSAGE (the feed's below; see portal/messaging/subscriptions.py).
FEED_QUEUE = env.str("FEED_QUEUE", default="feed")
FEED_DELIVERY_LIMIT = env.int("FEED_DELIVERY_LIMIT", default=10)
FEED_RETRY_DELAYS = env.list("FEED_RETRY_DELAYS", cast=int, default=[5, 30, 300, 1800])
# Events packed into one task message by the relay, within the message size
# limit whatever the count.
FEED_EVENTS_PER_MESSAGE = env.int(
    "FEED_EVENTS_PER_MESSAGE",
    default=env.int("OUTBOX_EVENTS_PER_MESSAGE", default=1000),
)
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("WORKER_PREFETCH_MULTIPLIER", default=4)
# Celery's Django fixup closes the database connection around every task
# unless this is set: keep it for this many tasks (CONN_HEALTH_CHECKS and
# CONN_MAX_AGE still drop a dead or old one before use).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_WORKER_SEND_TASK_EVENTS = env.bool("WORKER_SEND_TASK_EVENTS", default=False)
# While the database is unreachable, a subscriber's task waits this many
# seconds (held by RabbitMQ) and tries again, without using up its retries.
WORKER_OUTAGE_RETRY_SECONDS = env.int("WORKER_OUTAGE_RETRY_SECONDS", default=30)
# A batching consumer (ingest, dead letters) holds unacked messages through a
# database outage at most this long, then hands them back and stops
# consuming until the database answers: RabbitMQ's consumer_timeout (30 min
# by default) would otherwise close its channel.
WORKER_HOLD_MAX_SECONDS = env.float("WORKER_HOLD_MAX_SECONDS", default=900)
# A subscriber's task after this many idle seconds pings its kept connection first.
WORKER_DB_CHECK_AFTER_IDLE = env.float(
    "WORKER_DB_CHECK_AFTER_IDLE",
    default=env.float("FEED_DB_CHECK_AFTER_IDLE", default=1.0),
)
# AMQP ingestion from other services: exchange `portal.events` → this queue
# → the event log.
INGEST_QUEUE = env.str("INGEST_QUEUE", default="events.ingest")
INGEST_BATCH_SIZE = env.int("INGEST_BATCH_SIZE", default=500)
INGEST_DELIVERY_LIMIT = env.int("INGEST_DELIVERY_LIMIT", default=10)
# How many batches a batching consumer (ingest, dead-letter intake) may hold
# unacked: with 2, RabbitMQ sends the next batch while one is being stored.
CONSUMER_PREFETCH_BATCHES = env.int("CONSUMER_PREFETCH_BATCHES", default=2)
# Every logged event is also published to the `portal.broadcast` exchange
# (RabbitMQ only), for services outside the portal.
EVENTS_BROADCAST = env.bool("EVENTS_BROADCAST", default=True)
# Retries held by RabbitMQ whose queue was gone when their delay ended land in
# the queue `portal.delayed.unroutable`; the workers move them into the
# dead-letter store (portal/messaging/delayed_delivery.py).
DELAYED_UNROUTABLE_INTAKE = env.bool("DELAYED_UNROUTABLE_INTAKE", default=True)
# Events per INSERT … ON CONFLICT when the feed applies a batch again (some
# of it on the feed already) or repairs cards; on PostgreSQL the inserts of
# one batch are pipelined, so validating one chunk overlaps inserting the one
# before it. A batch of new events is one COPY.
FEED_INSERT_CHUNK = env.int("FEED_INSERT_CHUNK", default=100)
# Bigger messages are dead-lettered unread (reason "oversized"): one event
# from another service (AMQP or HTTP), and a feed task message (a batch;
# each subscription has its own <PREFIX>_TASK_MAX_BYTES).
MESSAGE_MAX_BYTES = env.int("MESSAGE_MAX_BYTES", default=256 * 1024)
FEED_TASK_MAX_BYTES = env.int("FEED_TASK_MAX_BYTES", default=1024 * 1024)
# Live updates of open feed pages over Server-Sent Events, announced on the
# exchange portal.feed.live after each commit (RabbitMQ and an ASGI server
# only; otherwise pages poll).
LIVE_UPDATES = env.bool("LIVE_UPDATES", default=True)
# Set by portal/asgi.py: this web process serves the live stream (runserver
# and plain WSGI servers do not; their pages poll).
LIVE_STREAM_SERVED = env.bool("LIVE_STREAM_SERVED", default=False)
# Broker waits of the publishers (confirms, a blocked connection), in seconds.
OUTBOX_PUBLISH_TIMEOUT = env.float("OUTBOX_PUBLISH_TIMEOUT", default=10.0)

# --- Onboarding ----------------------------------------------------------------

# The welcome mail and the directory account of every new employee, each on
# its own subscriber queue (onboarding/). Off: nothing is routed to them and
# the registrar tracks no onboarding status.
ONBOARDING_ENABLED = env.bool("ONBOARDING_ENABLED", default=True)
# Where the welcome mail points the new employee to.
PORTAL_URL = env.str("PORTAL_URL", default="http://127.0.0.1:8000/")
# A "sending" mail older than this is taken for a sender that died mid-send:
# "uncertain", never sent again automatically (smtplib's EMAIL_TIMEOUT bounds
# each step of the conversation).
ONBOARDING_MAIL_SENDING_TIMEOUT = env.float(
    "ONBOARDING_MAIL_SENDING_TIMEOUT", default=max(60.0, 7 * EMAIL_TIMEOUT)
)
# The directory service; `make run` starts examples/directory_service.py on
# ONBOARDING_DIRECTORY_PORT as a stand-in.
ONBOARDING_DIRECTORY_URL = env.str(
    "ONBOARDING_DIRECTORY_URL",
    default=f"http://127.0.0.1:{env.int('ONBOARDING_DIRECTORY_PORT', default=8765)}",
)
ONBOARDING_DIRECTORY_CONNECT_TIMEOUT = env.float(
    "ONBOARDING_DIRECTORY_CONNECT_TIMEOUT", default=2.0
)
ONBOARDING_DIRECTORY_READ_TIMEOUT = env.float(
    "ONBOARDING_DIRECTORY_READ_TIMEOUT", default=5.0
)
# Calls per second to the directory, all workers together; 0: no limit.
ONBOARDING_DIRECTORY_RATE_LIMIT = env.int("ONBOARDING_DIRECTORY_RATE_LIMIT", default=50)
# The circuit breaker (onboarding/breaker.py): open after this many
# consecutive failures, try one call again after this many seconds.
ONBOARDING_BREAKER_FAIL_MAX = env.int("ONBOARDING_BREAKER_FAIL_MAX", default=5)
ONBOARDING_BREAKER_RESET_SECONDS = env.float(
    "ONBOARDING_BREAKER_RESET_SECONDS", default=10.0
)

# Workers' garbage collector (portal/gc_tuning.py): the youngest
# generation is collected every GC_GEN0_THRESHOLD allocations (Python: 700), and
# what a process holds once set up is frozen out of collections; 0: Python's own.
GC_GEN0_THRESHOLD = env.int("GC_GEN0_THRESHOLD", default=10_000)

# --- Observability ---------------------------------------------------------------

# Journey hops (routes on the log rows; EventHop rows per subscriber, one per run
# of consecutive log ids that went alike).
EVENT_JOURNEY = env.bool("EVENT_JOURNEY", default=True)
# Retention (manage.py events_prune, and the relay every
# EVENT_PRUNE_INTERVAL_SECONDS; 0: only by hand).
EVENT_LOG_RETENTION_DAYS = env.float("EVENT_LOG_RETENTION_DAYS", default=30)
EVENT_JOURNEY_RETENTION_DAYS = env.float("EVENT_JOURNEY_RETENTION_DAYS", default=30)
DEAD_LETTER_RETENTION_DAYS = env.float("DEAD_LETTER_RETENTION_DAYS", default=90)
EVENT_PRUNE_INTERVAL_SECONDS = env.float("EVENT_PRUNE_INTERVAL_SECONDS", default=3600)
# The relay's heartbeat (database row and file) and queue-depth readings.
RELAY_HEARTBEAT_SECONDS = env.float("RELAY_HEARTBEAT_SECONDS", default=5)
RELAY_QUEUE_CHECK_SECONDS = env.float("RELAY_QUEUE_CHECK_SECONDS", default=15)
HEARTBEAT_DIR = Path(env.str("HEARTBEAT_DIR", default=str(VAR_DIR / "heartbeat")))
# Prometheus metrics: /metrics on the web server, and a port of their own for
# the relay and each worker (0: none), on METRICS_ADDRESS. With METRICS_TOKEN
# set, every one wants "Authorization: Bearer <token>"; without it the web's
# /metrics answers loopback requests only.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ADDRESS = env.str("METRICS_ADDRESS", default="127.0.0.1")
RELAY_METRICS_PORT = env.int("RELAY_METRICS_PORT", default=9101)
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=9102)
# portal_doctor: a relay silent (or an event owed) this long is a problem;
# the broker's consumer_timeout (RabbitMQ's default: 30 min) and how long one
# task message may take, to compare with it.
RELAY_SILENT_AFTER_SECONDS = env.float("RELAY_SILENT_AFTER_SECONDS", default=60)
BROKER_CONSUMER_TIMEOUT_SECONDS = env.float(
    "BROKER_CONSUMER_TIMEOUT_SECONDS", default=1800
)
TASK_EXPECTED_SECONDS = env.float("TASK_EXPECTED_SECONDS", default=60)
