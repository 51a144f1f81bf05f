from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RegistrarConfig(AppConfig):
    name = "registrar"
    verbose_name = "Registrar"

    def ready(self) -> None:
        from django.conf import settings

        from portal.messaging.subscriptions import subscription_register
        from portal.roles import ensure_roles

        from .contracts import register_contracts
        from .subscriptions import REGISTRAR_ONBOARDING

        register_contracts()
        if settings.ONBOARDING_ENABLED:
            subscription_register(REGISTRAR_ONBOARDING)
        post_migrate.connect(ensure_roles, sender=self, dispatch_uid="ensure_roles")
