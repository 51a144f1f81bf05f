"""What every app's API shares: permission classes for the roles in
``portal.roles``, strictly typed input fields, the browsable API's renderer
and the 404 of paths no endpoint matches."""

from csp.constants import UNSAFE_INLINE
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.defaults import page_not_found
from rest_framework import parsers, renderers, serializers
from rest_framework.exceptions import ParseError
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.roles import is_hr, is_staff_member


class IsStaffMember(BasePermission):
    """Staff, HR and admins: read the feed and the registrar, react, thank."""

    message = "Only staff members may use this."

    def has_permission(self, request, view) -> bool:
        return is_staff_member(request.user)


class IsHR(BasePermission):
    """HR (and superusers): the registrar's writes."""

    message = "Only HR may change the registrar."

    def has_permission(self, request, view) -> bool:
        return is_hr(request.user)


class ReadStaffWriteHR(BasePermission):
    """Staff members read; only HR writes."""

    message = "Only HR may change the registrar."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            if not is_staff_member(request.user):
                self.message = IsStaffMember.message
                return False
            return True
        return is_hr(request.user)


# JSON has types: a number is not a name and "5" is not an id. DRF's fields
# would coerce both; these refuse them instead.


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictEmailField(serializers.EmailField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    def run_validation(self, data=serializers.empty):
        # DRF reads "" as null (for HTML forms); in JSON it is a wrong type.
        if data == "":
            self.fail("incorrect_type", data_type="str")
        return super().run_validation(data)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


def field_error(message: str, field: str | None) -> serializers.ValidationError:
    """A 400 answer ``{field: [message]}`` for a refusal of a service."""
    return serializers.ValidationError({field or "non_field_errors": [message]})


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering 400 for JSON nested too deeply to read.

    Python's parser raises ``RecursionError`` (not ``ValueError``) for a few
    hundred levels of nesting, which DRF would let through as a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's HTML pages, whose templates place a few elements with ``style``
    attributes (and Pygments' ``<style>``): on those pages alone the
    Content-Security-Policy allows inline styles. Scripts stay 'self'."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            # Read by csp.middleware.CSPMiddleware, like @csp_update sets it.
            response._csp_update = {"style-src": [UNSAFE_INLINE]}
        return super().render(data, accepted_media_type, renderer_context)


def not_found(request, exception=None):
    """``handler404``: a path no URL pattern matches (an id the router's
    pattern refuses, an unknown endpoint) answers JSON under ``/api/``, like
    every other 404 of the API; elsewhere the site's page."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def exception_handler(exc, context):
    """DRF's, plus: a body bigger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a
    ``413 {"detail": …}`` (Django refuses to read it; left to Django it would
    be an HTML 400)."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            {"detail": f"The request body is bigger than {limit} bytes."},
            status=413,
        )
    return drf_exception_handler(exc, context)
