"""Account pages of our own (the rest are Django's auth views)."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.shortcuts import render


class LogoutView(auth_views.LogoutView):
    """Log out with a POST (the top bar's button), then say so on the login
    page. A GET (a bookmark, a typed address) gets a page with the button
    instead of Django's bare 405."""

    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        return render(request, "registration/logout_confirm.html")

    def post(self, request, *args, **kwargs):
        was_logged_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_logged_in:
            messages.info(request, "You have been logged out.")
        return response
