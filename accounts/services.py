"""Writes about accounts: people's API tokens.

A user has at most one token (DRF's ``Token``, keyed by user). Issuing and
rotating lock the user's row first, so concurrent calls for one user queue up
instead of racing to create two tokens.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from rest_framework.authtoken.models import Token

from .selectors import api_token_is_expired


def _lock_user(user: AbstractBaseUser) -> None:
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()


@transaction.atomic
def api_token_issue(*, user: AbstractBaseUser) -> Token:
    """The user's token: the current one while it is valid, else a new one
    (an expired token is replaced). The caller has authenticated the user."""
    _lock_user(user)
    token = Token.objects.filter(user=user).first()
    if token is not None and not api_token_is_expired(token=token):
        return token
    if token is not None:
        token.delete()
    return Token.objects.create(user=user)


@transaction.atomic
def api_token_rotate(*, user: AbstractBaseUser) -> Token:
    """A new token with a new key and a fresh expiry; the old key stops
    working at once."""
    _lock_user(user)
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)


@transaction.atomic
def api_token_revoke(*, user: AbstractBaseUser) -> bool:
    """Delete the user's token; False if there was none (harmless)."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted > 0
