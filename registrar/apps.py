from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RegistrarConfig(AppConfig):
    name = "registrar"
    verbose_name = "Registrar"

    def ready(self) -> None:
        from portal.roles import ensure_roles

        from .contracts import register_contracts

        register_contracts()
        post_migrate.connect(ensure_roles, sender=self, dispatch_uid="ensure_roles")
