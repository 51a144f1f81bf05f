"""Login lockout, as django-axes enforces it (settings ``AXES_*``).

Axes counts failed logins per username and per client address in the
database, so every web process and worker sees the same counts. Once either
reaches ``AXES_FAILURE_LIMIT``, the authentication backend refuses that
username or address, even with the right password, until
``AXES_COOLOFF_TIME`` has passed since the last try; a try during the lockout
restarts the cool-off. That covers the login page and the admin's login
(``AxesMiddleware`` swaps their answer for :func:`lockout_response`) and
``POST /api/auth/token/``, which answers 429 itself (``accounts.apis``).
"""

import logging
import math

from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

logger = logging.getLogger(__name__)

LOCKED_OUT_TEMPLATE = "registration/locked_out.html"


def lockout_retry_after(request: HttpRequest | None = None) -> int:
    """Seconds until a locked-out client may try again.

    A refused try restarts the cool-off, so the wait is the whole of it.
    """
    cool_off = get_cool_off(request)
    return math.ceil(cool_off.total_seconds()) if cool_off else 0


def lockout_message(seconds: int) -> str:
    return f"Too many failed login attempts. Try again in {seconds} seconds."


def lockout_response(request, original_response=None, credentials=None):
    """``AXES_LOCKOUT_CALLABLE``: the page a locked-out login form shows."""
    seconds = lockout_retry_after(request)
    response: HttpResponse = TemplateResponse(
        request,
        LOCKED_OUT_TEMPLATE,
        {"minutes": math.ceil(seconds / 60), "seconds": seconds},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response.render()


def log_lockout(sender, request, username, ip_address, **kwargs) -> None:
    """Receiver of axes' ``user_locked_out``, sent for the try that reaches
    the limit and for each refused try after it: one warning each."""
    logger.warning(
        "Login locked out: username=%r ip=%s path=%s for %s s",
        username,
        ip_address,
        getattr(request, "path", "?"),
        lockout_retry_after(request),
    )
