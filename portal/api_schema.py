"""The OpenAPI schema documents the errors each operation can answer.

``PortalAutoSchema`` (the project's ``DEFAULT_SCHEMA_CLASS``; any other view
can set ``schema = PortalAutoSchema()``) adds to every operation the error
responses its view can really give, read from the view itself:

- **400** when it takes a request body or query parameters, both validated:
  field errors ``{"field": ["message"]}`` (``FieldErrors``), or
  ``{"detail": "…"}`` for a body that is not JSON;
- **401** when the view authenticates and its first authenticator names a
  scheme (``WWW-Authenticate``): no credentials, or credentials that fail;
- **403** when a permission other than ``IsAuthenticated`` may refuse, or a
  logged-in session may lack its CSRF token (unsafe methods);
- **404** when the path names an object, or a page-number list may be asked
  for a page past its end;
- **413** when it takes a JSON body: one bigger than
  ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``portal.api.JSONParser``);
- **415** when it takes a request body: one in a media type it does not parse;
- **429** when the view has throttles.

Other codes are documented by the view in ``extend_schema``'s
``responses``, as ``OpenApiResponse(description=…)``; every 4xx response
without a body gets the ``{"detail": "…"}`` one (``ErrorDetail``). Responses a
view documents itself keep their description.
"""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS, AllowAny, IsAuthenticated

ERROR_DETAIL = {
    "type": "object",
    "description": 'An error as DRF answers it: `{"detail": "…"}`.',
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
FIELD_ERRORS = {
    "type": "object",
    "description": (
        "What was wrong with the request, per field: "
        '`{"email": ["Enter a valid email address."]}`; errors about no one '
        "field are under `non_field_errors`."
    ),
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
    "minProperties": 1,
}

DESCRIPTIONS = {
    400: "Invalid input: the fields at fault, or a body that is not JSON.",
    401: "No credentials, or credentials that are not valid.",
    403: "Not allowed for this user (role, or a session's missing CSRF token).",
    404: "No such object, or no such page.",
    413: "The request body is too large.",
    415: "The request body's Content-Type is not one the operation takes.",
    429: "Too many requests: wait as long as the `Retry-After` header says.",
}
# Pagination parameters are not validated: a bad page is a 404, a bad size
# falls back to the default.
_PAGINATION_PARAMETERS = {"page", "page_size", "cursor", "limit", "offset"}


class PortalAutoSchema(AutoSchema):
    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for code in sorted(self.error_codes(operation)):
            responses.setdefault(str(code), {"description": DESCRIPTIONS[code]})
        for code, response in responses.items():
            if code.startswith("4") and "content" not in response:
                response.setdefault("description", DESCRIPTIONS.get(int(code), ""))
                response["content"] = {
                    "application/json": {"schema": self._error_body(int(code))}
                }
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def error_codes(self, operation: dict) -> set[int]:
        """The 4xx codes this operation's view can answer, from its
        authenticators, permissions, path, parameters and throttles."""
        view, codes = self.view, set()
        authenticators = view.get_authenticators()
        refuses_credentials = 403
        if authenticators:
            header = authenticators[0].authenticate_header(view.request)
            refuses_credentials = 401 if header else 403
            codes.add(refuses_credentials)
        permissions = view.get_permissions()
        # A tuple: DRF's permission classes overload ``|`` to combine them.
        lenient = (AllowAny, IsAuthenticated)
        if any(not isinstance(p, lenient) for p in permissions):
            codes.add(403)
        if any(isinstance(p, IsAuthenticated) for p in permissions):
            codes.add(refuses_credentials)
        if self.method not in SAFE_METHODS and any(
            isinstance(a, SessionAuthentication) for a in authenticators
        ):
            codes.add(403)
        if "{" in self.path or self._pages_by_number():
            codes.add(404)
        query = {
            p["name"] for p in operation.get("parameters", []) if p["in"] == "query"
        }
        if "requestBody" in operation or query - _PAGINATION_PARAMETERS:
            codes.add(400)
        if "requestBody" in operation:
            codes.add(415)
            if any(issubclass(p, JSONParser) for p in view.parser_classes):
                codes.add(413)
        if view.get_throttles():
            codes.add(429)
        return codes

    def _pages_by_number(self) -> bool:
        paginator = getattr(self.view, "pagination_class", None)
        return bool(
            paginator
            and issubclass(paginator, PageNumberPagination)
            and self._is_list_view()
        )

    def _error_body(self, code: int) -> dict:
        detail = self._component("ErrorDetail", ERROR_DETAIL)
        if code != 400:
            return detail
        return {"oneOf": [self._component("FieldErrors", FIELD_ERRORS), detail]}

    def _component(self, name: str, schema: dict) -> dict:
        component = ResolvedComponent(
            name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema
        )
        self.registry.register_on_missing(component)
        return component.ref
