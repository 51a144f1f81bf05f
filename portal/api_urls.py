"""The REST API under ``/api/``: each app's API module adds its routes here."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from accounts import apis as accounts_apis
from feed import apis as feed_apis
from portal.api_index import ApiIndexView
from portal.messaging import apis as messaging_apis
from registrar import apis as registrar_apis

app_name = "api"


router = SimpleRouter()
router.register("employees", registrar_apis.EmployeeViewSet, basename="employee")
router.register("departments", registrar_apis.DepartmentViewSet, basename="department")
router.register("teams", registrar_apis.TeamViewSet, basename="team")

urlpatterns = [
    path("", ApiIndexView.as_view(), name="index"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script from a URL, not inline,
    # so the page passes the Content-Security-Policy.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
    path("auth/token/", accounts_apis.TokenView.as_view(), name="token"),
    path(
        "auth/token/rotate/",
        accounts_apis.TokenRotateView.as_view(),
        name="token_rotate",
    ),
    path("feed/", feed_apis.FeedView.as_view(), name="feed"),
    re_path(
        r"^feed/(?P<event_id>.+)/reactions/(?P<kind>[^/]+)/$",
        feed_apis.ReactionView.as_view(),
        name="reaction",
    ),
    path("thanks/", feed_apis.ThanksView.as_view(), name="thanks"),
    path("events/", messaging_apis.EventIngestView.as_view(), name="events"),
    path("asyncapi.json", messaging_apis.AsyncApiView.as_view(), name="asyncapi"),
    *router.urls,
]
