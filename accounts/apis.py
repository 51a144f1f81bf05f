"""The API's own accounts endpoints: API tokens for people."""

from django.contrib.auth import authenticate, get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, parsers, renderers, serializers
from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api import StrictCharField

from .lockout import lockout_message, lockout_retry_after

BAD_CREDENTIALS = "Unable to log in with provided credentials."


class LoginLockedOut(exceptions.APIException):
    """429 with ``Retry-After`` (DRF's handler sets it from ``wait``)."""

    status_code = 429
    default_code = "locked_out"

    def __init__(self, wait: int) -> None:
        self.wait = wait
        super().__init__(lockout_message(wait))


class CredentialsSerializer(serializers.Serializer):
    # No longer than the user model allows: the lockout records the username.
    username = StrictCharField(
        max_length=get_user_model()._meta.get_field("username").max_length
    )
    password = StrictCharField(max_length=4096, trim_whitespace=False)


@extend_schema(
    summary="Get the API token of a user",
    description="Send a username and password; use the key as "
    "`Authorization: Token <key>`.",
    auth=[],
)
class TokenView(APIView):
    authentication_classes = ()
    permission_classes = ()
    # As DRF's ObtainAuthToken: forms too, answers in JSON.
    parser_classes = (parsers.FormParser, parsers.MultiPartParser, parsers.JSONParser)
    renderer_classes = (renderers.JSONRenderer,)
    serializer_class = CredentialsSerializer

    def post(self, request):
        serializer = CredentialsSerializer(data=request.data)
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
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})
