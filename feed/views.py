from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .selectors import feed_events_list


@login_required
def home(request):
    events = feed_events_list(event_type=request.GET.get("type"))[:50]
    return render(request, "feed/home.html", {"events": events})
