"""HTTP ingestion of events from other services, and the AsyncAPI document."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api import JSONParser

from . import metrics
from .asyncapi import asyncapi
from .contracts import CONTENT_TYPE, ContractError, validate_event
from .eventlog import event_log_accept
from .models import ServiceToken
from .patterns import pattern_problem
from .sources import source_prefix_problem

TOKEN_PREFIX = "pst_"


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def service_token_create(
    *, name: str, source_prefix: str, event_types: list[str] | None = None
) -> tuple[ServiceToken, str]:
    """Create a service token; returns the row and the key, shown only now.

    The token may send events whose source is ``source_prefix`` or below it
    (never the portal's own), of the types ``event_types`` match (any when
    empty). Raises ``ValueError`` for a prefix or pattern that cannot be used.
    """
    problem = source_prefix_problem(source_prefix)
    problem = problem or next(
        filter(None, (pattern_problem(p) for p in event_types or [])), None
    )
    if problem:
        raise ValueError(problem)
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ServiceToken.objects.create(
        name=name,
        source_prefix=source_prefix,
        event_types=list(event_types or []),
        key_hash=token_hash(key),
    )
    return token, key


class ServiceTokenAuthentication(BaseAuthentication):
    """``Authorization: Token <key>`` with a service token (stored hashed)."""

    keyword = "token"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = ServiceToken.objects.filter(
            key_hash=token_hash(key), active=True
        ).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or inactive token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > timedelta(
            minutes=1
        ):
            ServiceToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return (None, token)

    def authenticate_header(self, request) -> str:
        return "Token"


class IsService(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ServiceToken)


class CloudEventsParser(JSONParser):
    media_type = CONTENT_TYPE


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = ServiceTokenAuthentication
    name = "serviceToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>` with a service token "
            "(`manage.py service_token create`), bound to a source prefix.",
        }


# The OpenAPI shapes of POST /api/events/. The data of each event type and
# version is in /api/asyncapi.json and docs/events.md.
CLOUD_EVENT_SCHEMA = {
    "type": "object",
    "description": "One CloudEvent 1.0 in structured mode; `data` follows the "
    "schema of its type and version (`/api/asyncapi.json`, `docs/events.md`). "
    "Extension attributes are allowed.",
    "required": ["specversion", "id", "source", "type", "data"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1},
        "type": {"type": "string", "example": "employee.registered"},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string", "enum": ["application/json"]},
        "dataschemaversion": {"type": "string", "example": "2"},
        "data": {"type": "object"},
    },
    "example": {
        "specversion": "1.0",
        "id": "hr-import-7f3c",
        "source": "/hr-import",
        "type": "employee.registered",
        "time": "2026-03-02T09:00:00Z",
        "datacontenttype": "application/json",
        "data": {
            "employee_id": 1,
            "full_name": "Anna Petrova",
            "position": "Backend Engineer",
            "department": "Platform",
            "team": None,
        },
    },
}
_ERROR_DETAIL = {"$ref": "#/components/schemas/ErrorDetail"}
INGEST_ANSWERS = {
    202: OpenApiResponse(
        {
            "type": "object",
            "required": ["id", "source", "status"],
            "properties": {
                "id": {"type": "string"},
                "source": {"type": "string"},
                "status": {"type": "string", "enum": ["accepted", "already accepted"]},
            },
        },
        description="Committed to the event log (or already there: the same "
        "source and id).",
    ),
    400: OpenApiResponse(
        {
            "oneOf": [
                {
                    "type": "object",
                    "description": "The event fails its contract.",
                    "required": ["reason", "errors"],
                    "properties": {
                        "reason": {"type": "string"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["field", "message"],
                                "properties": {
                                    "field": {"type": "string"},
                                    "message": {"type": "string"},
                                },
                            },
                        },
                    },
                },
                _ERROR_DETAIL,
            ]
        },
        description="The event fails its contract (the reason and the fields "
        "at fault), or the body is not JSON.",
    ),
    403: OpenApiResponse(
        _ERROR_DETAIL,
        description="The token may not send this source or type, or the "
        "source is reserved for the portal's own events.",
    ),
    413: OpenApiResponse(
        {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["reason", "max_bytes"],
                    "properties": {
                        "reason": {"type": "string", "enum": ["oversized"]},
                        "max_bytes": {"type": "integer"},
                    },
                },
                _ERROR_DETAIL,
            ]
        },
        description="Bigger than `MESSAGE_MAX_BYTES`.",
    ),
}


class EventIngestView(APIView):
    """``POST /api/events/``: one CloudEvent from another service.

    ``202`` once the event is committed to the event log (from there it
    reaches every subscriber that wants it, like the portal's own events);
    ``400`` with field errors when it fails its contract; ``401`` without a
    valid token; ``403`` when the event's source or type is not one the token
    may use, or the source is reserved for the portal's own events; ``413``
    above ``MESSAGE_MAX_BYTES``. Posting the same (source, id) again answers
    ``202`` and changes nothing.
    """

    authentication_classes = [ServiceTokenAuthentication]
    permission_classes = [IsService]
    parser_classes = [JSONParser, CloudEventsParser]

    def finalize_response(self, request, response, *args, **kwargs):
        # Every answer counts, the refusals (401, 403, 413) included.
        metrics.HTTP_INGEST.labels(str(response.status_code)).inc()
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        operation_id="events_ingest",
        tags=["events"],
        request={
            "application/json": CLOUD_EVENT_SCHEMA,
            CONTENT_TYPE: CLOUD_EVENT_SCHEMA,
        },
        responses=INGEST_ANSWERS,
    )
    def post(self, request):
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.MESSAGE_MAX_BYTES:
            return Response(
                {"reason": "oversized", "max_bytes": settings.MESSAGE_MAX_BYTES},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            event = validate_event(request.data)
        except ContractError as error:
            return Response(
                {
                    "reason": error.reason,
                    "errors": [
                        {
                            "field": ".".join(str(p) for p in e.get("loc", ())),
                            "message": e["msg"],
                        }
                        for e in error.errors
                    ],
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        token: ServiceToken = request.auth
        refusal = token.refusal(
            source=event.envelope.source, event_type=event.envelope.type
        )
        if refusal:
            raise exceptions.PermissionDenied(refusal)
        message, created = event_log_accept(event=event)
        return Response(
            {
                "id": message.event_id,
                "source": message.source,
                "status": "accepted" if created else "already accepted",
            },
            status=status.HTTP_202_ACCEPTED,
        )


@extend_schema(exclude=True)
class AsyncApiView(APIView):
    """``GET /api/asyncapi.json``: the AsyncAPI document of ``portal.events``."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        return JsonResponse(asyncapi(), json_dumps_params={"indent": 2})
