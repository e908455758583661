from django.contrib.auth import views as auth_views
from django.urls import include, path

from discsub.portal.views.account import LoginView, login_code

# No Django admin: nothing here uses it (staff work in /staff/, users are
# made with manage.py), and it would be one more sign-in door to guard.
urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("login/code/", login_code, name="login_code"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("staff/", include("discsub.staff.urls")),
    path("", include("discsub.portal.urls")),
]
