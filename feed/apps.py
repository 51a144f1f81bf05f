from django.apps import AppConfig


class FeedConfig(AppConfig):
    name = "feed"
    verbose_name = "Company feed"

    def ready(self) -> None:
        from portal.messaging.subscriptions import subscription_register

        from .contracts import register_contracts
        from .subscriptions import FEED

        register_contracts()
        subscription_register(FEED)
