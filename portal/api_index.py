"""``GET /api/``: an index of the API."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class ApiIndexView(APIView):
    """``GET /api/``: what the API offers, where, and for whom."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    ENDPOINTS = [
        ("employees", "api:employee-list", "staff members; POST: HR"),
        ("departments", "api:department-list", "staff members; PATCH: HR"),
        ("teams", "api:team-list", "staff members"),
        ("feed", "api:feed", "staff members"),
        ("thanks", "api:thanks", "staff members with a linked employee"),
        ("token", "api:token", "anyone (username and password)"),
        ("events", "api:events", "services with a service token"),
        ("schema", "api:schema", "anyone: OpenAPI 3"),
        ("docs", "api:docs", "anyone: Swagger UI"),
        ("asyncapi", "api:asyncapi", "anyone: the events, AsyncAPI 2.6"),
    ]

    @extend_schema(exclude=True)
    def get(self, request):
        return Response(
            {
                "name": "Portal API",
                "authentication": (
                    "Session (log in to the portal) or "
                    "'Authorization: Token <key>' from POST /api/auth/token/."
                ),
                "endpoints": {
                    name: {
                        "url": request.build_absolute_uri(reverse(url_name)),
                        "who": who,
                    }
                    for name, url_name, who in self.ENDPOINTS
                },
            }
        )
