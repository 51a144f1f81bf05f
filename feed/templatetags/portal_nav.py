from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def flower_url() -> str:
    """Where admins find Flower (``FLOWER_URL``)."""
    return getattr(settings, "FLOWER_URL", "")
