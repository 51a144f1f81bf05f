"""W3C trace context: one ``traceparent`` per web request, carried with its events.

The middleware takes the request's ``traceparent`` header if it is valid, or
starts a new trace, and keeps it for the request in a context variable;
``event_log_emit`` stamps it on every event the request logs, so the relay,
the subscribers' tasks and their log lines carry the same trace id. (Only
the header format is used: no tracing library is needed. With
OpenTelemetry installed, its propagator reads the same header.)
"""

import contextvars
import re
import secrets
from collections.abc import Callable

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "traceparent", default=None
)


def traceparent_new(trace_id: str | None = None) -> str:
    """A traceparent for a new span: of ``trace_id``, or of a new trace."""
    trace_id = trace_id or secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def traceparent_valid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    match = _TRACEPARENT.match(value)
    return (
        match is not None
        and set(match.group(1)) != {"0"}
        and set(match.group(2)) != {"0"}
    )


def trace_id_of(traceparent: object) -> str:
    """The trace id of a traceparent, or "" if it is not one."""
    if not traceparent_valid(traceparent):
        return ""
    return str(traceparent).split("-")[1]


def traceparent_current() -> str | None:
    return _current.get()


def traceparent_set(value: str | None) -> contextvars.Token:
    return _current.set(value)


def traceparent_reset(token: contextvars.Token) -> None:
    _current.reset(token)


class TraceparentMiddleware:
    """Every request gets a traceparent: the caller's (a child span of it),
    or a new trace. The response carries it back in ``traceparent``."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("traceparent", "").strip().lower()
        trace_id = trace_id_of(incoming)
        value = traceparent_new(trace_id or None)
        token = traceparent_set(value)
        try:
            response = self.get_response(request)
        finally:
            traceparent_reset(token)
        response.headers.setdefault("traceparent", value)
        return response
