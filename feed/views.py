"""The feed home page, its live updates, reactions and thanks."""

import asyncio

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.http import (
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from portal.messaging.live import live_enabled
from portal.roles import is_hr, is_staff_member, staff_member_required
from registrar.selectors import (
    department_choice_list,
    employee_for_user,
    employee_search,
    team_list,
)

from .forms import ThanksForm
from .live import feed_live_stream
from .models import FeedEvent
from .rendering import EVENT_TYPES, type_label
from .selectors import (
    MAX_ID,
    BadFilter,
    InvalidCursor,
    feed_arrived_since,
    feed_department_filter,
    feed_newest_id,
    feed_page,
)
from .services import FeedError, reaction_toggle, thanks_send


def _filters(request) -> dict:
    """The page's filters as the selectors take them: ``event_type`` and
    ``department_id`` (``?department=`` holds an id, or a name from before)."""
    event_type = request.GET.get("type", "").strip()
    if "\x00" in event_type:
        raise BadFilter("Filters cannot hold the NUL character.")
    return {
        "event_type": event_type,
        "department_id": feed_department_filter(request.GET.get("department", "")),
    }


def _filter_query(filters: dict) -> dict[str, str]:
    query = {"type": filters["event_type"]}
    if filters["department_id"] is not None:
        query["department"] = str(filters["department_id"])
    return {k: v for k, v in query.items() if v}


@require_GET
@staff_member_required
def home(request):
    try:
        filters = _filters(request)
    except BadFilter as error:
        return HttpResponseBadRequest(str(error))
    # Read before the page: whatever arrives meanwhile is polled for later.
    newest_id = feed_newest_id()
    try:
        events, next_cursor = feed_page(
            user=request.user, before=request.GET.get("before") or None, **filters
        )
    except InvalidCursor:
        return redirect("feed:home")
    query = _filter_query(filters)
    older_url = (
        f"{reverse('feed:home')}?{urlencode({**query, 'before': next_cursor})}"
        if next_cursor
        else None
    )
    if request.GET.get("fragment"):
        # "Older" pressed on a page that is already open: only the cards.
        html = render_to_string(
            "feed/_cards.html", {"events": events, "group": True}, request=request
        )
        return JsonResponse({"html": html, "older_url": older_url})
    sender = employee_for_user(user=request.user)
    context = {
        "events": events,
        "group": True,
        "older_url": older_url,
        "is_first_page": not request.GET.get("before"),
        "filters": filters,
        "filter_query": urlencode(query),
        "event_types": [(t, type_label(t)) for t in EVENT_TYPES],
        "departments": department_choice_list(),
        "since_id": newest_id,
        # Pushed over Server-Sent Events where an ASGI server and RabbitMQ
        # carry them; polled otherwise (the embedded default, runserver).
        "live_push": settings.LIVE_STREAM_SERVED and live_enabled(),
        "sender": sender,
        "thanks_form": ThanksForm(sender=sender) if sender else None,
        "can_register": is_hr(request.user),
    }
    return render(request, "feed/home.html", context)


def _stream_access(request) -> tuple[int, dict | None]:
    """(HTTP status, filters) for a stream request: 401 without a login,
    403 without the role, 400 for a bad filter, else 200 and its filters.

    Runs in one thread and gives its database connection back before
    returning: the stream then stays open for as long as the page does
    without holding a connection.
    """
    try:
        user = request.user
        if not user.is_authenticated:
            return 401, None
        if not is_staff_member(user):
            return 403, None
        return 200, _filters(request)
    except BadFilter:
        return 400, None
    finally:
        connection.close()


# Streams opening at once check their logins this many at a time: each check
# borrows a database connection for a moment, and a burst of pages opening
# (a web process restarted under hundreds of open tabs) must not take more
# than the database allows.
STREAM_CHECKS_AT_ONCE = 8
_stream_checks: asyncio.Semaphore | None = None


async def live(request):
    """The open feed page's stream of new cards and reaction counts
    (Server-Sent Events; see ``feed.live``). 204 where there is none: the
    page polls ``arrived`` instead."""
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    global _stream_checks
    if _stream_checks is None:
        _stream_checks = asyncio.Semaphore(STREAM_CHECKS_AT_ONCE)
    async with _stream_checks:
        # In the request's own thread, like the middleware before it.
        status, filters = await sync_to_async(_stream_access)(request)
    if status != 200:
        return HttpResponse(status=status)
    if not live_enabled():
        return HttpResponse(status=204)
    assert filters is not None  # a 200 always comes with its filters
    return await feed_live_stream(request, filters)


@require_GET
@staff_member_required
def arrived(request):
    """Cards that reached the feed after ``since`` (an event id), as HTML."""
    try:
        since_id = int(request.GET.get("since", "0"))
        filters = _filters(request)
    except BadFilter as error:
        return HttpResponseBadRequest(str(error))
    except ValueError:
        return HttpResponseBadRequest("since must be an integer")
    if not 0 <= since_id <= MAX_ID:
        return HttpResponseBadRequest("since must be an event id")
    events, newest, more = feed_arrived_since(
        user=request.user, since_id=since_id, **filters
    )
    html = render_to_string("feed/_cards.html", {"events": events}, request=request)
    return JsonResponse(
        {"count": len(events), "html": html, "since": newest, "more": more}
    )


@require_POST
@staff_member_required
def react(request, pk: int):
    event = get_object_or_404(FeedEvent, pk=pk)
    try:
        active, counts = reaction_toggle(
            feed_event=event, user=request.user, kind=request.POST.get("kind", "")
        )
    except FeedError as error:
        return JsonResponse({"error": error.message, "field": error.field}, status=400)
    return JsonResponse({"active": active, "counts": counts})


@require_POST
@staff_member_required
def thank(request):
    sender = employee_for_user(user=request.user)
    if sender is None:
        messages.error(request, "Your login is not linked to an employee yet.")
        return redirect("feed:home")
    form = ThanksForm(request.POST, sender=sender)
    if form.is_valid():
        try:
            thanks = thanks_send(
                from_employee=sender,
                to_employee=form.cleaned_data["to_employee"],
                message=form.cleaned_data["message"],
            )
        except FeedError as error:
            field = error.field if error.field in form.fields else None
            form.add_error(field, error.message)
        else:
            messages.success(
                request,
                f"Thanks to {thanks.to_employee} saved; "
                "it will appear in the feed shortly.",
            )
            return redirect("feed:home")
    return render(request, "feed/thanks.html", {"thanks_form": form}, status=400)


# --- People ----------------------------------------------------------------------

PEOPLE_PER_PAGE = 30


def _int_or_none(value: str | None) -> int | None:
    value = (value or "").strip()
    if value.isascii() and value.isdigit() and int(value) <= MAX_ID:
        return int(value)
    return None


@require_GET
@login_required
def people(request):
    """Everyone at the company: search by name, email or position, and keep
    one department or team."""
    query = request.GET.get("q", "").strip()[:200]
    department_id = _int_or_none(request.GET.get("department"))
    team_id = _int_or_none(request.GET.get("team"))
    employees = employee_search(
        query=query, department_id=department_id, team_id=team_id
    )
    page = Paginator(employees, PEOPLE_PER_PAGE).get_page(request.GET.get("page"))
    filters = {
        k: v
        for k, v in {"q": query, "department": department_id, "team": team_id}.items()
        if v not in ("", None)
    }
    context = {
        "page": page,
        "query": query,
        "department_id": department_id,
        "team_id": team_id,
        "departments": department_choice_list(),
        "teams": team_list(),
        "filter_query": urlencode(filters),
    }
    return render(request, "feed/people.html", context)


@require_GET
@login_required
def person(request, pk: int):
    """One person: position, department, team, since when, and their own
    timeline of feed events; HR also finds the registrar actions here."""
    employee = get_object_or_404(employee_search(), pk=pk)
    try:
        events, next_cursor = feed_page(
            user=request.user,
            before=request.GET.get("before") or None,
            person_id=employee.pk,
            limit=PEOPLE_TIMELINE_SIZE,
        )
    except InvalidCursor:
        return redirect("feed:person", pk=pk)
    older_url = (
        f"{reverse('feed:person', args=[pk])}?{urlencode({'before': next_cursor})}"
        if next_cursor
        else None
    )
    context = {
        "employee": employee,
        "events": events,
        "older_url": older_url,
        "is_first_page": not request.GET.get("before"),
        "can_change": is_hr(request.user),
        "is_me": employee.user_id is not None and employee.user_id == request.user.pk,
    }
    return render(request, "feed/person.html", context)


PEOPLE_TIMELINE_SIZE = 20
