from django import template
from django.urls import reverse
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

from feed import rendering
from portal.messaging.sources import source_is_reserved
from portal.messaging.views import journey_url

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
    return _hue_class(rendering.actor_name(event.type, event.data))


@register.filter
def type_class(event_type: str) -> str:
    """``thanks.sent`` -> ``event-thanks-sent``, for styling per type."""
    return "event-" + "".join(c if c.isalnum() else "-" for c in event_type.lower())


@register.filter
def journey_href(event) -> str:
    """The admin's page that follows this card's event through the pipeline."""
    return journey_url(event_id=event.event_id)


@register.filter
def outside_source(event) -> str:
    """The source of an event another service sent ("" for the portal's
    own), so staff can tell an HR system's event from a colleague's."""
    return "" if source_is_reserved(event.source) else event.source


def _hue_class(name: str) -> str:
    return f"hue-{sum(map(ord, name)) * 37 % 360 // 15}"


@register.filter
def name_hue_class(name: str) -> str:
    """The avatar colour class of a person's name (as on their cards)."""
    return _hue_class(name or "")


@register.filter
def name_initials(name: str) -> str:
    return rendering.initials(name or "")


@register.filter
def linked_text(event) -> str:
    """The card's sentence with the people in it linking to their profiles
    (on the portal's own events, whose employee ids are the registrar's)."""
    text: str = conditional_escape(event.text)
    if not source_is_reserved(event.source):
        return text
    done = set()
    for name, employee_id in rendering.people_named(event.type, event.data):
        escaped = conditional_escape(name)
        if not escaped or escaped in done or escaped not in text:
            continue
        done.add(escaped)
        url = reverse("feed:person", args=[employee_id])
        link = format_html('<a class="person-link" href="{}">{}</a>', url, name)
        text = text.replace(escaped, link, 1)
    return mark_safe(text)  # noqa: S308 - built from escaped parts


@register.filter
def as_cards(events, group=False) -> list:
    """A page's events as cards: aggregated (``rendering.cards_grouped``)
    when ``group``, else one card each (arrivals are merged by the page)."""
    events = list(events)
    return rendering.cards_grouped(events) if group else events


@register.filter
def card_group_key(event) -> str:
    return rendering.group_key(event.type, event.data, event.department_id)


@register.filter
def card_predicate(event) -> str:
    if not card_group_key(event):
        return ""
    return rendering.group_predicate(event.type, event.data)


@register.filter
def actor(event) -> str:
    return rendering.actor_name(event.type, event.data)


@register.filter
def attr_pk(event) -> int:
    return event.pk


@register.filter
def attr_time(event) -> str:
    return event.time.isoformat()
