"""The feed home page, its live updates, reactions and thanks."""

from django.contrib import messages
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from portal.roles import is_hr, staff_member_required
from registrar.selectors import department_choice_list, employee_for_user

from .forms import ThanksForm
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
        html = render_to_string("feed/_cards.html", {"events": events}, request=request)
        return JsonResponse({"html": html, "older_url": older_url})
    sender = employee_for_user(user=request.user)
    context = {
        "events": events,
        "older_url": older_url,
        "is_first_page": not request.GET.get("before"),
        "filters": filters,
        "filter_query": urlencode(query),
        "event_types": [(t, type_label(t)) for t in EVENT_TYPES],
        "departments": department_choice_list(),
        "since_id": newest_id,
        "sender": sender,
        "thanks_form": ThanksForm(sender=sender) if sender else None,
        "can_register": is_hr(request.user),
    }
    return render(request, "feed/home.html", context)


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
