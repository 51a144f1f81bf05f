from django.urls import path

from . import views

app_name = "feed"
urlpatterns = [
    path("", views.home, name="home"),
    path("feed/arrived/", views.arrived, name="arrived"),
    path("feed/live/", views.live, name="live"),
    path("feed/events/<int:pk>/react/", views.react, name="react"),
    path("feed/thanks/", views.thank, name="thank"),
    path("people/", views.people, name="people"),
    path("people/<int:pk>/", views.person, name="person"),
]
