from django.urls import include, path

from . import views

urlpatterns = [
    path("bench/register/<str:mode>/", views.register),
    path("", include("portal.urls")),
]
