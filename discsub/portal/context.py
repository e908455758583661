"""Template context for every portal page."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from exporter.blockers import blockers_for


def blockers(request: HttpRequest) -> dict:
    """``blockers``: what stops the signed-in subscriber's discs (the banner in
    base.html), computed only when a template reads it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or request.path.startswith("/staff/"):
        return {"blockers": []}
    return {"blockers": SimpleLazyObject(lambda: blockers_for(user))}
