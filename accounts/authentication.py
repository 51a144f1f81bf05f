"""``Authorization: Token <key>`` for people, refusing expired tokens.

Its own module: DRF imports the default authentication classes while it
defines ``APIView``, so this must not import any view.
"""

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from .selectors import api_token_is_expired

EXPIRED = (
    "Token has expired. Get a new one with POST /api/auth/token/ "
    "(username and password)."
)


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication; a token older than API_TOKEN_TTL_HOURS
    is refused with 401 and says how to get a new one."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if api_token_is_expired(token=token):
            raise exceptions.AuthenticationFailed(EXPIRED, code="token_expired")
        return user, token
