"""The site's URLs plus a view that fails the way a broken connection does:
its message and its local variables hold a connection URL and the secret key."""

from django.conf import settings
from django.urls import path

from discsub.urls import urlpatterns as site_urlpatterns


def fails(request):
    dsn = settings.DATABASE_URL
    signing_key = settings.SECRET_KEY
    raise ConnectionError(f"could not connect to {dsn} (key {signing_key[:4]}…)")


urlpatterns = [path("fails/", fails), *site_urlpatterns]
