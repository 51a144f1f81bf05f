"""The "Event journey" page (admins): find an event, see every hop it made."""

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.http import urlencode
from django.utils.timezone import make_aware

from .journey_selectors import journey_of, journey_search, journey_subjects
from .models import LoggedEvent


def journey_url(*, event_id: str = "", log_id: int | None = None) -> str:
    """The journey page of one event (by log row, or by event id): what
    other pages (dead letters, feed cards, onboarding statuses) link to."""
    if log_id is not None:
        return reverse("journey_event", args=[log_id])
    return f"{reverse('journey')}?{urlencode({'event_id': event_id})}"


def _when(text: str):
    value = parse_datetime(text) if text else None
    if value is not None and value.tzinfo is None:
        value = make_aware(value)
    return value


@staff_member_required
def journey(request):
    query = {
        key: request.GET.get(key, "").strip()
        for key in ("event_id", "subject", "subject_id", "type", "since", "until")
    }
    searched = any(query.values())
    events = []
    if searched:
        events = list(
            journey_search(
                event_id=query["event_id"],
                subject=query["subject"],
                subject_id=query["subject_id"],
                type=query["type"],
                since=_when(query["since"]),
                until=_when(query["until"]),
            )
        )
    if len(events) == 1 and query["event_id"]:
        return journey_event(request, events[0].pk)
    types = LoggedEvent.objects.values_list("type", flat=True).distinct()
    return render(
        request,
        "messaging/journey.html",
        {
            "query": query,
            "searched": searched,
            "events": events,
            "subjects": sorted(journey_subjects()),
            "types": sorted(set(types)),
        },
    )


@staff_member_required
def journey_event(request, pk: int):
    event = get_object_or_404(LoggedEvent, pk=pk)
    return render(
        request,
        "messaging/journey.html",
        {
            "query": {"event_id": event.event_id},
            "journey": journey_of(event),
            "subjects": sorted(journey_subjects()),
            "types": [],
        },
    )
