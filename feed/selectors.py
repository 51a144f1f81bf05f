"""Reads of the feed shared by views and the API."""

from django.db.models import QuerySet

from .models import FeedEvent


def feed_events_list(
    *, event_type: str | None = None, department: str | None = None
) -> QuerySet[FeedEvent]:
    """Feed events newest first by when they happened, optionally filtered."""
    events = FeedEvent.objects.order_by("-time", "-id")
    if event_type:
        events = events.filter(type=event_type)
    if department:
        events = events.filter(department=department)
    return events
