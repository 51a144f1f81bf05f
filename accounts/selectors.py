"""Reads about accounts that the API and the admin share."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework.authtoken.models import Token


def api_token_ttl() -> timedelta | None:
    """How long a token lives after it is issued or rotated; None: for ever."""
    hours = settings.API_TOKEN_TTL_HOURS
    return timedelta(hours=hours) if hours > 0 else None


def api_token_expires_at(*, token: Token) -> datetime | None:
    """When ``token`` stops working, by the TTL in force now; None: never.

    The expiry is computed, not stored, so changing API_TOKEN_TTL_HOURS
    applies to tokens already issued.
    """
    ttl = api_token_ttl()
    return token.created + ttl if ttl is not None else None


def api_token_is_expired(*, token: Token, now: datetime | None = None) -> bool:
    expires_at = api_token_expires_at(token=token)
    return expires_at is not None and (now or timezone.now()) >= expires_at
