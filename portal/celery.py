"""The Celery application shared by the web processes, the relay and the workers."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.base")

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


def _install_bootsteps() -> None:
    # By name: loaded when a worker starts, after Django is set up (they use
    # models); web processes and the relay never import them.
    app.steps["consumer"].update(
        {
            "portal.messaging.bootsteps:IngestConsumer",
            "portal.messaging.bootsteps:DeadLetterConsumer",
        }
    )


_install_bootsteps()
