"""Admins revoke a person's API token by deleting it (Auth Token -> Tokens)."""

from django.contrib import admin
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from .selectors import api_token_expires_at

admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class ExpiringTokenAdmin(TokenAdmin):
    list_display = ("key", "user", "created", "expires")

    @admin.display(description="Expires")
    def expires(self, token) -> str:
        expires_at = api_token_expires_at(token=token)
        return "never" if expires_at is None else expires_at.isoformat(" ", "minutes")
