from django.urls import path

from . import views

app_name = "feed"
urlpatterns = [
    path("", views.home, name="home"),
    path("feed/arrived/", views.arrived, name="arrived"),
    path("feed/events/<int:pk>/react/", views.react, name="react"),
    path("feed/thanks/", views.thank, name="thank"),
]
