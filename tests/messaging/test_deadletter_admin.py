"""The dead-letter store in the Django admin: filter, search, payload, actions."""

import json

import pytest

from portal.messaging.models import DeadLetter
from tests.helpers import make_envelope

pytestmark = pytest.mark.django_db

URL = "/admin/messaging/deadletter/"


@pytest.fixture
def records():
    envelope = make_envelope()
    return [
        DeadLetter.objects.create(
            reason="invalid data",
            event_type="employee.registered",
            event_id=envelope["id"],
            source="/tests",
            body=json.dumps(envelope),
        ),
        DeadLetter.objects.create(reason="not JSON", kind="message", body="{oops"),
    ]


def test_the_list_filters_by_reason_and_searches(admin_client, records):
    page = admin_client.get(URL, {"reason": "not JSON"}).content.decode()
    assert f"/{records[1].pk}/change/" in page
    assert f"/{records[0].pk}/change/" not in page
    found = admin_client.get(URL, {"q": records[0].event_id}).content.decode()
    assert f"/{records[0].pk}/change/" in found
    assert f"/{records[1].pk}/change/" not in found


def test_the_detail_page_shows_the_payload_pretty(admin_client, records):
    page = admin_client.get(f"{URL}{records[0].pk}/change/").content.decode()
    assert "&quot;full_name&quot;: &quot;Anna Petrova&quot;" in page
    assert "\n  &quot;data&quot;: {" in page  # indented


def test_the_purge_action_deletes_the_selected(admin_client, records):
    response = admin_client.post(
        URL, {"action": "purge", "_selected_action": [records[1].pk]}, follow=True
    )
    assert "Purged 1 record(s)." in response.content.decode()
    assert list(DeadLetter.objects.values_list("pk", flat=True)) == [records[0].pk]


def test_the_requeue_action_reports_a_broker_failure_and_keeps_the_record(
    admin_client, records, settings
):
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"
    settings.BROKER_CONNECTION_TIMEOUT = 0.5
    response = admin_client.post(
        URL, {"action": "requeue", "_selected_action": [records[0].pk]}, follow=True
    )
    assert response.status_code == 200
    assert "could not be requeued" in response.content.decode()
    records[0].refresh_from_db()
    assert records[0].status == "dead"


def test_a_service_token_can_be_deactivated_but_not_added_in_the_admin(admin_client):
    from portal.messaging.apis import service_token_create

    token, _key = service_token_create(name="hr-import", source_prefix="/hr-import")
    url = f"/admin/messaging/servicetoken/{token.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert "key_hash" not in page
    response = admin_client.post(url, {"source_prefix": "/hr", "active": ""})
    assert response.status_code == 302
    token.refresh_from_db()
    assert (token.active, token.source_prefix) == (False, "/hr")
    assert admin_client.get("/admin/messaging/servicetoken/add/").status_code == 403
