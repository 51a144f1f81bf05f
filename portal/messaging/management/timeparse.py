"""Moments and ages on the command line: ISO date-times or ``30d``/``2h``/``15m``."""

import re
from datetime import UTC, datetime, timedelta

from django.core.management.base import CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def age(text: str) -> timedelta:
    match = _AGE.match(text.strip())
    if not match:
        raise CommandError(f"Not an age: {text!r} (e.g. 30d, 12h, 15m, 90s).")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def moment(text: str | None) -> datetime | None:
    """An ISO date-time (UTC if it has no offset), or an age before now."""
    if not text:
        return None
    if _AGE.match(text.strip()):
        return timezone.now() - age(text)
    value = parse_datetime(text.strip())
    if value is None:
        raise CommandError(f"Not a date-time or an age: {text!r}.")
    return value if value.tzinfo else value.replace(tzinfo=UTC)
