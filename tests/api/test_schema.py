"""The OpenAPI schema generates without warnings, validates, and is served
with interactive docs whose assets come from the portal itself (no CDN)."""

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_generates_without_warnings_and_validates(tmp_path):
    out = tmp_path / "schema.yaml"
    # --fail-on-warn makes any warning or error a SystemExit.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/employees/",
        "/api/employees/{id}/",
        "/api/departments/{id}/",
        "/api/teams/",
        "/api/feed/",
        "/api/feed/{event_id}/reactions/{kind}/",
        "/api/thanks/",
        "/api/auth/token/",
        "/api/events/",
    } <= set(schema["paths"])
    assert set(schema["components"]["securitySchemes"]) == {
        "cookieAuth",
        "tokenAuth",
        "serviceToken",
    }
    feed_item = schema["components"]["schemas"]["FeedItem"]["properties"]
    assert {"id", "source", "type", "time", "data", "text", "reactions"} <= set(
        feed_item
    )


def test_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["info"]["title"] == "Portal API"
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui-bundle.js" in html
    assert "cdn.jsdelivr" not in html
    assert "unpkg.com" not in html
    # The start-up script, pointing at the schema, is its own request.
    assert '<script src="/api/docs/?script="></script>' in html
    script = client.get("/api/docs/?script=").content.decode()
    assert '"/api/schema/"' in script


def test_swagger_ui_assets_are_served_locally(client):
    html = client.get("/api/docs/").content.decode()
    start = html.index('src="') + len('src="')
    script = html[start : html.index('"', start)]
    assert script.startswith("/static/drf_spectacular_sidecar/")
    response = client.get(script)
    assert response.status_code == 200
    body = (
        b"".join(response.streaming_content) if response.streaming else response.content
    )
    assert b"SwaggerUIBundle" in body


# --- Error responses ---------------------------------------------------------

# What each operation can answer besides success, from its code: 400 for a
# body or query parameters it validates, 401 for credentials that fail (the
# token header comes first), 403 for a role it requires or a session's
# missing CSRF token, 404 for a path parameter naming nothing (or a page
# number past the end), 415 for a body in a media type it does not parse.
# 429 is documented where a view throttles; no view of this table does
# (test_throttled_views_document_429).
ERRORS = {
    ("post", "/api/auth/token/"): {400, 413, 415},
    ("post", "/api/events/"): {400, 401, 403, 413, 415},
    ("get", "/api/departments/"): {401, 403},
    ("get", "/api/departments/{id}/"): {401, 403, 404},
    ("patch", "/api/departments/{id}/"): {400, 401, 403, 404, 413, 415},
    ("get", "/api/employees/"): {400, 401, 403, 404},
    ("post", "/api/employees/"): {400, 401, 403, 413, 415},
    ("get", "/api/employees/{id}/"): {401, 403, 404},
    ("patch", "/api/employees/{id}/"): {400, 401, 403, 404, 413, 415},
    ("get", "/api/feed/"): {400, 401, 403},
    ("post", "/api/feed/{event_id}/reactions/{kind}/"): {400, 401, 403, 404},
    ("delete", "/api/feed/{event_id}/reactions/{kind}/"): {400, 401, 403, 404},
    ("get", "/api/teams/"): {400, 401, 403},
    ("get", "/api/teams/{id}/"): {401, 403, 404},
    ("post", "/api/thanks/"): {400, 401, 403, 413, 415},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_every_operation_documents_the_errors_it_can_answer(schema):
    documented = {
        (method, path): {int(code) for code in operation["responses"] if code >= "4"}
        for method, path, operation in _operations(schema)
    }
    # Operations added later are held to their schema by the schemathesis test.
    assert set(ERRORS) <= set(documented)
    for key, codes in ERRORS.items():
        assert documented[key] - {429} == codes, key


def test_error_bodies_are_drf_shapes_as_components(schema):
    components = schema["components"]["schemas"]
    assert components["ErrorDetail"] == {
        "type": "object",
        "description": 'An error as DRF answers it: `{"detail": "…"}`.',
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    }
    assert components["FieldErrors"]["type"] == "object"
    assert components["FieldErrors"]["additionalProperties"] == {
        "type": "array",
        "items": {"type": "string"},
    }
    detail = {"$ref": "#/components/schemas/ErrorDetail"}
    field_errors = {"$ref": "#/components/schemas/FieldErrors"}
    for method, path, operation in _operations(schema):
        for code, response in operation["responses"].items():
            if code < "4":
                continue
            assert response["description"], (method, path, code)
            body = response["content"]["application/json"]["schema"]
            if path == "/api/events/" and code in {"400", "413"}:
                # The ingest's own refusal, or DRF's for a body it cannot read.
                assert body["oneOf"][-1] == detail
            elif code == "400":
                assert body == {"oneOf": [field_errors, detail]}, (method, path)
            else:
                assert body == detail, (method, path, code)


def test_the_event_ingest_documents_cloudevents_and_the_service_token(schema):
    operation = schema["paths"]["/api/events/"]["post"]
    assert operation["security"] == [{"serviceToken": []}]
    body = operation["requestBody"]["content"]
    assert set(body) == {"application/json", "application/cloudevents+json"}
    event = body["application/json"]["schema"]
    assert event["required"] == ["specversion", "id", "source", "type", "data"]
    accepted = operation["responses"]["202"]["content"]["application/json"]["schema"]
    assert accepted["properties"]["status"]["enum"] == ["accepted", "already accepted"]


def test_reactions_keep_their_own_error_descriptions(schema):
    responses = schema["paths"]["/api/feed/{event_id}/reactions/{kind}/"]["post"][
        "responses"
    ]
    assert responses["404"]["description"] == "No such event on the feed."


def test_throttled_views_document_429():
    """The helper applies to any view: one that throttles documents 429."""
    from django.urls import path
    from drf_spectacular.generators import SchemaGenerator
    from rest_framework.response import Response
    from rest_framework.throttling import AnonRateThrottle
    from rest_framework.views import APIView

    from portal.api_schema import PortalAutoSchema

    class Throttled(APIView):
        throttle_classes = [AnonRateThrottle]
        schema = PortalAutoSchema()

        def get(self, request):
            return Response({})

    generator = SchemaGenerator(patterns=[path("api/throttled/", Throttled.as_view())])
    responses = generator.get_schema(request=None, public=True)["paths"][
        "/api/throttled/"
    ]["get"]["responses"]
    assert responses["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorDetail"
    }


def test_department_rename_requires_the_name(schema, hr_client):
    """A PATCH whose only field is the name needs it: the server says so,
    and so does the schema."""
    operation = schema["paths"]["/api/departments/{id}/"]["patch"]
    assert operation["requestBody"]["required"] is True
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert component["required"] == ["name"]
    from tests.factories import DepartmentFactory

    department = DepartmentFactory()
    response = hr_client.patch(f"/api/departments/{department.pk}/", {}, format="json")
    assert response.status_code == 400
    assert response.json() == {"name": ["This field is required."]}
