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
    } <= set(schema["paths"])
    assert set(schema["components"]["securitySchemes"]) == {"cookieAuth", "tokenAuth"}
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
