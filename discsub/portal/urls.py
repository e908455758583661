from django.urls import path

from discsub import views

urlpatterns = [
    path("", views.home, name="home"),
]
