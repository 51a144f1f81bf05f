"""The Celery application shared by the web processes, the relay and the workers."""

import os
import sys

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.base")


def _is_worker_command() -> bool:
    program = sys.argv[0] if sys.argv else ""
    celery = os.path.basename(program).startswith("celery") or program.endswith(
        os.path.join("celery", "__main__.py")
    )  # `celery …` or `python -m celery …`
    return celery and "worker" in sys.argv[1:]


if _is_worker_command():
    # Before anything imports prometheus_client: the pool's processes count
    # in files the main process adds up when scraped.
    from portal.observability.multiproc import multiproc_prepare

    multiproc_prepare("worker")
    os.environ["PORTAL_PROCESS_KIND"] = "worker"

from portal.messaging.amqp_reads import amqp_reads_install  # noqa: E402
from portal.messaging.json_codec import json_codec_install  # noqa: E402

amqp_reads_install()
json_codec_install()

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _configure_topology(sender: Celery, **kwargs: object) -> None:
    # The queues come from the subscriptions the apps register when Django
    # starts: a worker reads its configuration before Celery's Django fixup
    # would set Django up.
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    from portal.messaging import topology

    topology.configure(sender)


@signals.setup_logging.connect
def _logging_from_settings(**kwargs: object) -> None:
    # Connected, this replaces Celery's own set-up: workers log like every
    # other process (LOG_FORMAT: JSON lines or plain ones, with the event,
    # subscriber, task and trace of each line).
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@signals.worker_ready.connect
def _serve_metrics(sender=None, **kwargs: object) -> None:
    # In the main process, once the pool runs (its children must not
    # inherit the listening socket).
    from django.conf import settings

    from portal.observability.exposition import metrics_server_start

    metrics_server_start(
        port=settings.WORKER_METRICS_PORT,
        address=settings.METRICS_ADDRESS,
        token=settings.METRICS_TOKEN,
    )


@signals.worker_process_init.connect
def _tune_pool_process(**kwargs: object) -> None:
    from portal.gc_tuning import gc_tune

    gc_tune()


@signals.worker_init.connect
@signals.worker_ready.connect
def _tune_main_process(**kwargs: object) -> None:
    # Before consuming starts (the worker's own consumers, the ingest one
    # among them, take messages while the worker is still starting: a full
    # queue is drained from the first second), and once more when ready, to
    # freeze what starting loaded.
    from portal.gc_tuning import gc_tune

    gc_tune()


@signals.worker_process_shutdown.connect
def _pool_process_gone(pid=None, **kwargs: object) -> None:
    from portal.observability.multiproc import multiproc_process_dead

    multiproc_process_dead(pid or os.getpid())


def _install_bootsteps() -> None:
    # By name: loaded when a worker starts, after Django is set up (they use
    # models); web processes and the relay never import them.
    app.steps["consumer"].update(
        {
            "portal.messaging.bootsteps:IngestConsumer",
            "portal.messaging.bootsteps:DeadLetterConsumer",
            "portal.messaging.bootsteps:WorkerHeartbeat",
        }
    )


_install_bootsteps()
