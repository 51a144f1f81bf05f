from django.apps import AppConfig


class SubscriberAppConfig(AppConfig):
    """A second subscriber, declared only for the tests: it records every
    ``employee.*`` event it receives, once."""

    name = "tests.subscriber_app"
    label = "subscriber_app"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from portal.messaging.subscriptions import subscription_register

        from .subscriptions import AUDIT

        subscription_register(AUDIT)
