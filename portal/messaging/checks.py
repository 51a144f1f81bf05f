"""System checks (``manage.py check``) of the messaging configuration."""

from django.core import checks

from .subscriptions import subscriptions


@checks.register("messaging")
def check_subscriptions(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Task queue names must not shadow each other.

    Celery binds every task queue with ``#.<queue>`` as well, for its
    delayed retries: a queue named ``audit`` would also receive what is sent
    to ``mail.audit``. So no queue name may end with "." and another's.
    """
    errors: list[checks.CheckMessage] = []
    queues = {s.queue: s.name for s in subscriptions()}
    for queue, name in queues.items():
        for other, other_name in queues.items():
            if other != queue and other.endswith("." + queue):
                errors.append(
                    checks.Error(
                        f"Subscription {other_name!r} has the queue {other!r}, "
                        f"which ends with '.' and the queue {queue!r} of "
                        f"{name!r}: delayed retries meant for one would reach "
                        "both.",
                        hint="Rename one of the queues (<PREFIX>_QUEUE).",
                        id="messaging.E001",
                    )
                )
    return errors
