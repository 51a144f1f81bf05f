from django import template

from feed import rendering
from portal.messaging.sources import source_is_reserved

register = template.Library()


@register.filter
def type_label(event_type: str) -> str:
    return rendering.type_label(event_type)


@register.filter
def avatar_initials(event) -> str:
    return rendering.initials(rendering.actor_name(event.type, event.data))


@register.filter
def avatar_hue_class(event) -> str:
    """A stable colour per person, so the same person keeps the same avatar:
    the class of one of 24 hues in portal.css (a class, not a ``style``
    attribute, which the Content-Security-Policy would block)."""
    name = rendering.actor_name(event.type, event.data)
    return f"hue-{sum(map(ord, name)) * 37 % 360 // 15}"


@register.filter
def type_class(event_type: str) -> str:
    """``thanks.sent`` -> ``event-thanks-sent``, for styling per type."""
    return "event-" + "".join(c if c.isalnum() else "-" for c in event_type.lower())


@register.filter
def outside_source(event) -> str:
    """The source of an event another service sent ("" for the portal's
    own), so staff can tell an HR system's event from a colleague's."""
    return "" if source_is_reserved(event.source) else event.source
