"""The API's accounts endpoints: people's API tokens.

- ``POST /api/auth/token/``: username and password -> the user's token (the
  same one until it expires, then a new one). Failures count towards the
  login lockout (``accounts.lockout``): 429 with ``Retry-After`` while locked.
- ``POST /api/auth/token/rotate/``: a new key; the old one stops working.
- ``DELETE /api/auth/token/``: revoke the token.

Rotate and revoke take the token itself or a session (with CSRF).
"""

from django.contrib.auth import authenticate, get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, parsers, renderers, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api import JSONParser, StrictCharField

from .lockout import lockout_message, lockout_retry_after
from .selectors import api_token_expires_at
from .services import api_token_issue, api_token_revoke, api_token_rotate

BAD_CREDENTIALS = "Unable to log in with provided credentials."


class LoginLockedOut(exceptions.APIException):
    """429 with ``Retry-After`` (DRF's handler sets it from ``wait``)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"

    def __init__(self, wait: int) -> None:
        self.wait = wait
        super().__init__(lockout_message(wait))


class AuthTokenCredentialsSerializer(serializers.Serializer):
    # No longer than the user model allows: the lockout records the username.
    username = StrictCharField(
        max_length=get_user_model()._meta.get_field("username").max_length
    )
    password = StrictCharField(max_length=4096, trim_whitespace=False)


class AuthTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <key>`.")
    expires = serializers.DateTimeField(
        allow_null=True,
        help_text="When the token stops working; null: never "
        "(`API_TOKEN_TTL_HOURS` is 0).",
    )


def token_body(token: Token) -> dict:
    return {"token": token.key, "expires": api_token_expires_at(token=token)}


# --- Error answers, for the schema (bodies: portal.api_schema's components) ---


UNAUTHENTICATED = OpenApiResponse(
    description="No credentials, an unknown token, or an expired one "
    '(`{"detail": "Token has expired. …"}`).',
)
FORBIDDEN = OpenApiResponse(
    description="Session authentication without the CSRF token (`X-CSRFToken`).",
)


class TokenView(APIView):
    # As DRF's ObtainAuthToken: forms too, answers in JSON.
    parser_classes = (parsers.FormParser, parsers.MultiPartParser, JSONParser)
    renderer_classes = (renderers.JSONRenderer,)

    def get_authenticators(self):
        if self.request is not None and self.request.method == "POST":
            # POST's credential is the password: an old token still sent in
            # the header must not stand in the way of getting a new one.
            return []
        return super().get_authenticators()

    def get_permissions(self):
        if self.request.method == "POST":
            return []
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="auth_token_obtain",
        summary="Get the API token of a user",
        description="Send a username and password; use the key as "
        "`Authorization: Token <key>`. The same token comes back until it "
        "expires (`API_TOKEN_TTL_HOURS`), then a new one. Wrong passwords "
        "count towards the login lockout shared with the login page: after "
        "too many, for the username or from the address, the answer is 429 "
        "(even for the right password) until `Retry-After` seconds have "
        "passed without a try.",
        auth=[],
        request=AuthTokenCredentialsSerializer,
        responses={
            200: AuthTokenSerializer,
            400: OpenApiResponse(
                description="A missing or ill-typed field, or wrong credentials "
                f'(`{{"non_field_errors": ["{BAD_CREDENTIALS}"]}}`).',
            ),
            429: OpenApiResponse(
                description="Locked out after too many failed logins.",
            ),
        },
        parameters=[
            OpenApiParameter(
                "Retry-After",
                OpenApiTypes.INT,
                OpenApiParameter.HEADER,
                description="Seconds to wait before trying again.",
                response=[429],
            )
        ],
    )
    def post(self, request):
        serializer = AuthTokenCredentialsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # With this request axes counts a failure, and flags the request when
        # the username or the address is locked out (right password or not).
        user = authenticate(request=request, **serializer.validated_data)
        if user is None:
            if getattr(request, "axes_locked_out", False):
                raise LoginLockedOut(lockout_retry_after(request))
            raise exceptions.ValidationError(
                {"non_field_errors": [BAD_CREDENTIALS]}, code="authorization"
            )
        return Response(token_body(api_token_issue(user=user)))

    @extend_schema(
        operation_id="auth_token_revoke",
        summary="Revoke your API token",
        description="Deletes the token of the authenticated user: it stops "
        "working at once. Harmless when there is none.",
        request=None,
        responses={204: None, 401: UNAUTHENTICATED, 403: FORBIDDEN},
    )
    def delete(self, request):
        api_token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenRotateView(APIView):
    permission_classes = [IsAuthenticated]
    renderer_classes = (renderers.JSONRenderer,)

    @extend_schema(
        operation_id="auth_token_rotate",
        summary="Rotate your API token",
        description="Replaces the token of the authenticated user with a new "
        "key and a fresh expiry; the old key stops working at once.",
        request=None,
        responses={200: AuthTokenSerializer, 401: UNAUTHENTICATED, 403: FORBIDDEN},
    )
    def post(self, request):
        return Response(token_body(api_token_rotate(user=request.user)))
