"""Registration variants compared by the benchmark, with authentication bypassed.

- ``event``: our design, ``registrar.services.employee_register`` as it is
  (event logged in the same transaction, routed after commit).
- ``floor``: the same service call writing no event at all (and so no
  onboarding status, which tracks the event's replies).
- ``sync``: the old design: the registration logs no event but POSTs
  the event to the feed over HTTP before answering (``?delay=`` ms asks the
  feed to take that long).

``feed_service`` is that feed, for the capacity runs: it stores the event
with the feed's own service (``feed_events_apply``, what our worker does
per event) and answers after ``?delay=`` ms more. The latency runs post to
``bench.stubfeed`` instead, which stores nothing.
"""

import http.client
import itertools
import json
import os
import threading
import time
import uuid
from types import SimpleNamespace
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from portal.messaging.contracts import CONTENT_TYPE, build_event
from registrar import services
from registrar.models import Department

_real_event_log_emit = services.event_log_emit
_state = threading.local()
_counter = itertools.count()


def _event_log_emit(**kwargs):
    # Per-thread switch so the floor can run the unchanged service without its
    # event while other threads of the same process keep theirs.
    if getattr(_state, "no_event", False):
        return SimpleNamespace(event_id=None)
    return _real_event_log_emit(**kwargs)


class _OnboardingObjects:
    """``Onboarding.objects`` as the service sees it: without an event there
    is no onboarding to track (the old design had none), so no status row."""

    def create(self, **kwargs):
        if getattr(_state, "no_event", False):
            return None
        return _real_onboarding.objects.create(**kwargs)

    def __getattr__(self, name):
        return getattr(_real_onboarding.objects, name)


class _OnboardingModel:
    objects = _OnboardingObjects()

    def __getattr__(self, name):
        return getattr(_real_onboarding, name)


_real_onboarding = services.Onboarding
services.event_log_emit = _event_log_emit
services.Onboarding = _OnboardingModel()  # type: ignore[assignment]

_department: Department | None = None


def _bench_department() -> Department:
    global _department
    if _department is None:
        _department, _ = Department.objects.get_or_create(name="Bench")
    return _department


def _register(*, emit: bool):
    n = next(_counter)
    _state.no_event = not emit
    try:
        return services.employee_register(
            full_name=f"Bench Person {n}",
            email=f"p{os.getpid()}-{n}-{uuid.uuid4().hex[:12]}@bench.example",
            position="Engineer",
            department=_bench_department(),
        )
    finally:
        _state.no_event = False


def _post_to_feed(employee, delay_ms: int) -> None:
    event = build_event(
        type="employee.registered",
        source=f"{settings.PORTAL_EVENT_SOURCE}/registrar",
        data={
            "employee_id": employee.pk,
            "full_name": employee.full_name,
            "position": employee.position,
            "department": employee.department.name,
            "team": None,
        },
    )
    url = urlsplit(settings.BENCH_STUB_FEED_URL)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request(
            "POST",
            f"{url.path.rstrip('/')}/api/events/?delay={delay_ms}",
            body=json.dumps(event.as_json()),
            headers={"Content-Type": CONTENT_TYPE},
        )
        response = conn.getresponse()
        response.read()
        if response.status >= 300:
            raise RuntimeError(f"feed answered {response.status}")
    finally:
        conn.close()


@csrf_exempt
def register(request, mode: str):
    if mode == "event":
        employee = _register(emit=True)
    elif mode == "floor":
        employee = _register(emit=False)
    elif mode == "sync":
        employee = _register(emit=False)
        _post_to_feed(employee, int(request.GET.get("delay", "0")))
    else:
        return HttpResponseBadRequest("unknown mode")
    return JsonResponse({"id": employee.pk}, status=201)


@csrf_exempt
def feed_service(request):
    """A synchronous feed: store the POSTed event, then answer after
    ``?delay=`` ms."""
    from feed.services import feed_events_apply

    feed_events_apply(envelopes=[json.loads(request.body)])
    delay = int(request.GET.get("delay", "0"))
    if delay:
        time.sleep(delay / 1000)
    return JsonResponse({}, status=202)
