"""Structured log lines: what event, subscriber, task and trace a line is about.

Code that works on an event says so once (``log_context(...)`` around the
work, or ``extra=event_log_fields(envelope)`` on one line); the
``EventContextFilter`` puts those fields on every record, so

* with ``LOG_FORMAT=json`` each line is a JSON object (python-json-logger)
  with ``event_id``, ``event_type``, ``event_source``, ``subscriber``,
  ``task_id``, ``trace_id`` and ``process`` where known;
* with the plain format (the embedded default) the same fields follow the
  message as ``key=value``, only when they are set.
"""

import contextlib
import contextvars
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from .process import process_label
from .tracing import trace_id_of

FIELDS = ("event_id", "event_type", "event_source", "subscriber", "task_id", "trace_id")

_context: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "log_context", default=None
)


def event_log_fields(envelope: Any) -> dict[str, str]:
    """The log fields of one CloudEvent (a dict; anything else gives none)."""
    if not isinstance(envelope, Mapping):
        return {}
    fields = {
        "event_id": envelope.get("id"),
        "event_type": envelope.get("type"),
        "event_source": envelope.get("source"),
        "trace_id": trace_id_of(envelope.get("traceparent")),
    }
    return {k: str(v) for k, v in fields.items() if isinstance(v, str) and v}


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log record made inside the block."""
    merged = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class EventContextFilter(logging.Filter):
    """Copies the current log context (and the process) onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "process_label"):
            record.process_label = process_label()
        return True


class PlainFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value…`` for the fields that are set."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(
            f"{key}={getattr(record, key)}"
            for key in FIELDS
            if getattr(record, key, None)
        )
        return f"{line} [{extra}]" if extra else line


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The ``LOGGING`` setting: plain lines or JSON lines, with event fields."""
    formatters: dict[str, Any] = {
        "plain": {
            "()": f"{__name__}.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {
                "asctime": "time",
                "levelname": "level",
                "name": "logger",
            },
            "reserved_attrs": _RESERVED,
            "timestamp": False,
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"event_context": {"()": f"{__name__}.EventContextFilter"}},
        "formatters": formatters,
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if log_format == "json" else "plain",
                "filters": ["event_context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.db.backends": {"level": "WARNING"}},
    }


# The LogRecord attributes a JSON line leaves out (python-json-logger's list
# less the process label, which is wanted).
_RESERVED = [
    "args",
    "created",
    "exc_info",
    "exc_text",
    "filename",
    "funcName",
    "levelno",
    "lineno",
    "module",
    "msecs",
    "msg",
    "pathname",
    "process",
    "processName",
    "relativeCreated",
    "stack_info",
    "thread",
    "threadName",
    "taskName",
    "message",
    "asctime",
    "levelname",
    "name",
]
