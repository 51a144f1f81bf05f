from django.apps import AppConfig
from django.conf import settings


class OnboardingConfig(AppConfig):
    name = "onboarding"
    verbose_name = "Onboarding"

    def ready(self) -> None:
        from portal.messaging.subscriptions import subscription_register

        from .contracts import register_contracts
        from .subscriptions import SUBSCRIPTIONS

        register_contracts()
        # ONBOARDING_ENABLED=0 leaves the commands out (the reply contracts
        # stay known): nothing is routed to them, and no worker consumes them.
        if settings.ONBOARDING_ENABLED:
            for subscription in SUBSCRIPTIONS:
                subscription_register(subscription)
