from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """People's accounts: login lockout, password change and reset, API tokens."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from axes.signals import user_locked_out

        from .lockout import log_lockout

        user_locked_out.connect(log_lockout, dispatch_uid="accounts.log_lockout")
