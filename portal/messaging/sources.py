"""Event sources: which a sender may use, and which are the portal's own.

A CloudEvents ``source`` names the producing service. Other services send
events under sources of their own; the portal's own sources
(``PORTAL_EVENT_SOURCE``, ``/portal`` by default, and everything under it)
are reserved: an event arriving from outside under one of them is refused,
so nobody can put words in the registrar's mouth. Prefixes are matched by
path segment (``/hr-import`` admits ``/hr-import/eu``, not ``/hr-importer``),
and the contract refuses sources with ``.``/``..`` segments, so a prefix
cannot be walked around.
"""

import functools
import re
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def source_within(source: str, prefix: str) -> bool:
    """Is ``source`` ``prefix`` itself or below it, segment-wise?"""
    base = prefix.rstrip("/")
    if not base:  # "/": every path
        return source.startswith("/")
    return source == base or source.startswith(base + "/")


def source_is_reserved(source: str) -> bool:
    """Is ``source`` one of the portal's own (in any case or %-encoding)?

    Asked of every event another service sends, whose sources are few: the
    answers are kept (``SOURCES_REMEMBERED`` of them, the least recently
    asked forgotten first), and forgotten when the setting changes."""
    return _source_is_reserved(source)


SOURCES_REMEMBERED = 1024


@functools.lru_cache(maxsize=SOURCES_REMEMBERED)
def _source_is_reserved(source: str) -> bool:
    own = settings.PORTAL_EVENT_SOURCE.lower()
    return any(
        source_within(spelling, own)
        for spelling in {source.lower(), unquote(source).lower()}
    )


@receiver(setting_changed)
def _sources_forget(*, setting: str, **kwargs: Any) -> None:
    if setting == "PORTAL_EVENT_SOURCE":
        _source_is_reserved.cache_clear()


def source_prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot bind a service token, or None if it can."""
    from .contracts import _has_dot_segment

    if not prefix:
        return "a source prefix is required (e.g. /hr-import)"
    if _SPACE_OR_CONTROL.search(prefix):
        return "a source prefix holds no spaces or control characters"
    if _has_dot_segment(prefix):
        return "a source prefix holds no '.' or '..' segments"
    if source_is_reserved(prefix):
        # (A wider prefix, even "/", still never admits a reserved source.)
        return (
            f"sources under {settings.PORTAL_EVENT_SOURCE} are the portal's own; "
            "choose a source prefix outside it"
        )
    return None
