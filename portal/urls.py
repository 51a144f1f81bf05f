from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.views import LogoutView
from portal.messaging import views as messaging
from portal.observability import views as observability

admin.site.site_header = "Portal administration"
admin.site.site_title = "Portal administration"
admin.site.index_title = "Everything the portal stores"

urlpatterns = [
    path("healthz", observability.healthz, name="healthz"),
    path("readyz", observability.readyz, name="readyz"),
    path("metrics", observability.metrics, name="metrics"),
    path("ops/journey/", messaging.journey, name="journey"),
    path("ops/journey/<int:pk>/", messaging.journey_event, name="journey_event"),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("accounts/", include("accounts.urls")),
    path("registrar/", include("registrar.urls")),
    path("api/", include("portal.api_urls")),
    path("", include("feed.urls")),
]

handler404 = "portal.api.not_found"
