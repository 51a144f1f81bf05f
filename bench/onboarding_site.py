"""Settings, URLs and views of the onboarding benchmark's web servers.

``DJANGO_SETTINGS_MODULE=bench.onboarding_site`` (the portal's settings plus
these URLs; authentication bypassed, the registrar service called
directly); served by gunicorn as ``django.core.wsgi:get_wsgi_application()``.
``POST /bench/onboarding/<mode>/`` registers one employee:

- ``ours``: ``employee_register`` as it is: the employee, its event and its
  pending onboarding in one transaction; the welcome mail and the account
  happen later, in the workers (run with ``ONBOARDING_ENABLED=1``).
- ``floor``: the same service writing no event (and, run with
  ``ONBOARDING_ENABLED=0``, no onboarding row): the no-event floor.
- ``sync``: the old design: the floor, then the welcome mail through the
  SMTP server and the account from the directory, both in the request.

``?run=NAME`` files the employee under a department of that name, so a run
can find its own employees.
"""

import itertools
import os
import threading
import uuid
from types import SimpleNamespace

import httpx
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from portal.settings.base import *  # noqa: F403
from portal.settings.base import env

ROOT_URLCONF = __name__
ALLOWED_HOSTS = ["*"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="ERROR")},
}

_counter = itertools.count()
_state = threading.local()
_departments: dict[str, object] = {}
_patched = False


def _patch_event_log() -> None:
    """Let a thread of this process register without logging the event."""
    global _patched
    if _patched:
        return
    from registrar import services

    real = services.event_log_emit

    def event_log_emit(**kwargs):
        if getattr(_state, "no_event", False):
            # What the service reads back from the log row, and nothing stored.
            return SimpleNamespace(event_id=str(uuid.uuid4()))
        return real(**kwargs)

    services.event_log_emit = event_log_emit
    _patched = True


def _department(name: str):
    from registrar.models import Department

    if name not in _departments:
        _departments[name], _ = Department.objects.get_or_create(name=name)
    return _departments[name]


def _register(run: str, *, emit: bool):
    from registrar import services

    _patch_event_log()
    n = next(_counter)
    _state.no_event = not emit
    try:
        return services.employee_register(
            full_name=f"Bench Person {n}",
            email=f"p{os.getpid()}-{n}-{uuid.uuid4().hex[:12]}@bench.example",
            position="Engineer",
            department=_department(run),
        )
    finally:
        _state.no_event = False


_client = threading.local()


def _directory() -> httpx.Client:
    from django.conf import settings

    if getattr(_client, "http", None) is None:
        _client.http = httpx.Client(
            base_url=settings.ONBOARDING_DIRECTORY_URL,
            timeout=httpx.Timeout(
                settings.ONBOARDING_DIRECTORY_READ_TIMEOUT,
                connect=settings.ONBOARDING_DIRECTORY_CONNECT_TIMEOUT,
            ),
        )
    return _client.http


def onboarding_sync(employee) -> None:
    """The old design's two calls, in the request: the welcome mail and the
    directory account. Raises if either fails."""
    from onboarding.services import welcome_mail_message

    welcome_mail_message(employee, f"<welcome.{employee.pk}@bench>").send()
    response = _directory().post(
        "/accounts",
        json={
            "employee_id": employee.pk,
            "email": employee.email,
            "full_name": employee.full_name,
        },
        headers={"Idempotency-Key": f"bench-sync-{employee.pk}"},
    )
    response.raise_for_status()


@csrf_exempt
def register(request, mode: str):
    run = request.GET.get("run", "Bench")
    if mode == "ours":
        employee = _register(run, emit=True)
    elif mode == "floor":
        employee = _register(run, emit=False)
    elif mode == "sync":
        employee = _register(run, emit=False)
        try:
            onboarding_sync(employee)
        except Exception as exc:  # noqa: BLE001 - the old design's failure
            return JsonResponse({"error": f"{type(exc).__name__}: {exc}"}, status=502)
    else:
        return JsonResponse({"error": "unknown mode"}, status=400)
    return JsonResponse({"id": employee.pk}, status=201)


urlpatterns = [path("bench/onboarding/<str:mode>/", register)]
