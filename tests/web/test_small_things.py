"""The small things a user notices: admin title and outbox order, the end
of the feed, older pages, team choices that say their department, filters
told apart, the favicon."""

import pytest
from django.urls import reverse

from feed.rendering import type_label
from portal.messaging.eventlog import event_log_emit
from portal.messaging.models import LoggedEvent
from tests.factories import TeamFactory
from tests.web.factories import FeedEventFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_admin_is_portal_administration_with_the_outbox_newest_first(admin):
    from django.db import transaction

    for n in range(3):
        with transaction.atomic():
            event_log_emit(
                type="department.renamed",
                source="/portal/registrar",
                data={"department_id": n, "old_name": "A", "new_name": f"B{n}"},
            )
    index = admin.get(reverse("admin:index")).content.decode()
    assert "Portal administration" in index
    response = admin.get(reverse("admin:messaging_loggedevent_changelist"))
    shown = [row.pk for row in response.context["cl"].result_list]
    assert shown == sorted(LoggedEvent.objects.values_list("pk", flat=True))[::-1]


def test_the_feed_ends_with_a_marker_and_older_pages_keep_their_place(as_role):
    client = as_role("staff")
    FeedEventFactory.create_batch(3)
    html = client.get(reverse("feed:home")).content.decode()
    assert '<p class="end-of-feed" id="end-of-feed">' in html  # not hidden
    FeedEventFactory.create_batch(25)
    first = client.get(reverse("feed:home"))
    assert 'id="end-of-feed" hidden' in first.content.decode()
    older = first.context["older_url"]
    assert "before=" in older
    # The address the page moves to after "Older" opens that place again.
    again = client.get(older)
    assert again.status_code == 200
    assert len(again.context["events"]) == 8


def test_team_choices_say_their_department_for_the_page_to_follow_it(as_role):
    team = TeamFactory(name="Core")
    html = as_role("hr").get(reverse("registrar:employee_register")).content.decode()
    assert f'value="{team.pk}" data-department="{team.department_id}"' in html
    assert "portal/portal.js" in html


def test_the_two_team_changes_are_told_apart():
    assert type_label("team.member_joined") == "Joined a team"
    assert type_label("team.member_left") == "Left a team"


def test_every_page_has_the_favicon(as_role, client):
    html = as_role("staff").get(reverse("feed:home")).content.decode()
    assert '<link rel="icon" href="/static/portal/favicon.svg"' in html
    assert client.get("/static/portal/favicon.svg").status_code == 200


def test_pages_open_a_live_stream_only_where_one_is_served(as_role, settings):
    client = as_role("staff")
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
    settings.LIVE_STREAM_SERVED = False  # runserver, a plain WSGI server
    assert "data-live-url" not in client.get(reverse("feed:home")).content.decode()
    settings.LIVE_STREAM_SERVED = True  # portal.asgi
    html = client.get(reverse("feed:home")).content.decode()
    assert 'data-live-url="/feed/live/"' in html
    settings.CELERY_BROKER_URL = "filesystem://"  # the embedded default polls
    assert "data-live-url" not in client.get(reverse("feed:home")).content.decode()
