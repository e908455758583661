from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from discsub.portal.views.account import LoginView

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("staff/", include("discsub.staff.urls")),
    path("admin/", admin.site.urls),
    path("", include("discsub.portal.urls")),
]
