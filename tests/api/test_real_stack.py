"""The API on the real stack: a registration posted to the API travels through
the outbox, RabbitMQ and a real Celery worker to GET /api/feed/."""

import pytest

from feed.models import FeedEvent
from portal.messaging.models import LoggedEvent
from tests.factories import TeamFactory
from tests.helpers import wait_for

pytestmark = [pytest.mark.real_stack, pytest.mark.django_db(transaction=True)]


def test_registration_posted_to_the_api_appears_in_the_api_feed(
    clean_queues, feed_worker, inline_publish, client_as
):
    team = TeamFactory(name="Core", department__name="Platform")
    hr = client_as("hr")
    response = hr.post(
        "/api/employees/",
        {
            "full_name": "Anna Petrova",
            "email": "anna@example.com",
            "position": "Backend Engineer",
            "department": team.department.pk,
            "team": team.pk,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    employee_id = response.json()["id"]
    row = LoggedEvent.objects.get()

    def on_the_feed():
        """the worker applied the registration"""
        return FeedEvent.objects.filter(event_id=row.event_id).exists()

    wait_for(on_the_feed, timeout=30)
    staff = client_as("staff")
    feed = staff.get("/api/feed/?type=employee.registered")
    assert feed.status_code == 200
    [item] = feed.json()["results"]
    assert item["id"] == row.event_id
    assert item["source"] == row.source
    assert item["text"] == (
        "Anna Petrova joined the company as Backend Engineer in Core, Platform"
    )
    assert item["data"]["employee_id"] == employee_id
    assert item["reactions"] == {"like": 0, "fire": 0}
    liked = staff.post(f"/api/feed/{item['id']}/reactions/like/")
    assert liked.json()["reactions"] == {"like": 1, "fire": 0}
    LoggedEvent.objects.get(pk=row.pk, status=LoggedEvent.Status.SENT)
