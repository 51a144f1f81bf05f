from django.apps import AppConfig


class SubscriberAppConfig(AppConfig):
    """A second subscriber, for the tests and benchmarks: it records every
    ``employee.*`` event it receives, once."""

    name = "portal.testing.subscriber_app"
    label = "subscriber_app"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from portal.messaging.subscriptions import subscription_register

        from .subscriptions import AUDIT

        subscription_register(AUDIT)
