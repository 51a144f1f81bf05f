"""Structured log lines and the trace a web request starts."""

import json
import logging
import uuid

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from portal.messaging.models import LoggedEvent
from portal.observability.logcontext import (
    EventContextFilter,
    PlainFormatter,
    event_log_fields,
    log_context,
    logging_config,
)
from portal.observability.tracing import trace_id_of, traceparent_valid
from portal.roles import HR_GROUP
from tests.factories import DepartmentFactory
from tests.helpers import make_envelope, send_task, wait_for


def formatted(config_name: str, message: str, **extra) -> str:
    config = logging_config(log_format=config_name, level="INFO")
    spec = dict(config["formatters"][config_name])
    factory = spec.pop("()")
    module, _, name = factory.rpartition(".")
    cls = getattr(__import__(module, fromlist=[name]), name)
    formatter = cls(**{("fmt" if k == "format" else k): v for k, v in spec.items()})
    record = logging.LogRecord(
        "portal.test", logging.INFO, __file__, 1, message, (), None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    EventContextFilter().filter(record)
    return formatter.format(record)


def test_json_lines_carry_the_event_subscriber_task_and_trace():
    envelope = make_envelope(traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    with log_context(subscriber="feed", task_id="t-1", **event_log_fields(envelope)):
        line = json.loads(formatted("json", "Applied 1 event(s)"))
    assert line["message"] == "Applied 1 event(s)"
    assert line["level"] == "INFO"
    assert line["logger"] == "portal.test"
    assert line["event_id"] == envelope["id"]
    assert line["event_type"] == "employee.registered"
    assert line["event_source"] == "/tests"
    assert line["subscriber"] == "feed"
    assert line["task_id"] == "t-1"
    assert line["trace_id"] == "a" * 32
    assert line["process_label"].startswith("test ")
    # Outside the block: none of it.
    assert "event_id" not in json.loads(formatted("json", "idle"))


def test_plain_lines_are_readable_with_the_same_fields():
    with log_context(subscriber="feed", event_id="42"):
        line = formatted("plain", "Applied 1 event(s)")
    assert line.endswith(
        "portal.test: Applied 1 event(s) [event_id=42 subscriber=feed]"
    )
    assert formatted("plain", "idle").endswith("portal.test: idle")
    assert PlainFormatter  # the class the embedded default uses


@pytest.mark.django_db
def test_a_web_request_starts_a_trace_that_its_event_carries():
    hr = User.objects.create_user("hr", password="pw")
    hr.groups.add(Group.objects.get_or_create(name=HR_GROUP)[0])
    client = Client()
    client.force_login(hr)
    department = DepartmentFactory()
    caller = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"
    answer = client.post(
        "/api/employees/",
        {
            "full_name": "Trace Person",
            "email": f"{uuid.uuid4().hex[:8]}@example.com",
            "position": "Engineer",
            "department": department.pk,
            "team": None,
            "hired_on": "2026-01-05",
        },
        content_type="application/json",
        headers={"traceparent": caller},
    )
    assert answer.status_code == 201, answer.content
    event = LoggedEvent.objects.get()
    carried = event.envelope["traceparent"]
    assert traceparent_valid(carried)
    assert trace_id_of(carried) == "c" * 32  # the caller's trace, a span of ours
    assert carried != caller
    assert answer.headers["traceparent"] == carried
    # Without one: a new trace, still carried.
    client.post("/registrar/departments/", {})  # any request
    plain = client.get("/")
    assert traceparent_valid(plain.headers["traceparent"])
    assert trace_id_of(plain.headers["traceparent"]) != "c" * 32


@pytest.mark.real_stack
@pytest.mark.django_db(transaction=True)
def test_a_workers_json_lines_name_the_event_task_and_trace(private_worker):
    prefix = "feed.logs-test"
    worker = private_worker(prefix, queues=[prefix], LOG_FORMAT="json")
    envelope = make_envelope(traceparent="00-" + "e" * 32 + "-" + "f" * 16 + "-01")
    send_task([envelope])

    def applied_line():
        """the worker logged applying the event, as JSON"""
        for raw in worker.log().splitlines():
            if raw.startswith("{") and "Applied 1 event(s)" in raw:
                return json.loads(raw)
        return None

    line = wait_for(applied_line, timeout=30)
    assert line["subscriber"] == "feed"
    assert line["event_id"] == envelope["id"]
    assert line["event_type"] == "employee.registered"
    assert line["trace_id"] == "e" * 32
    assert line["task_id"]
    assert line["process_label"].startswith("worker ")
