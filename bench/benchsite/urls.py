from django.urls import include, path

from . import views

urlpatterns = [
    path("bench/register/<str:mode>/", views.register),
    path("bench/feed/api/events/", views.feed_service),
    path("", include("portal.urls")),
]
