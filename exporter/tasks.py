"""Task functions for django-q2.  Arguments are primary keys; each can run twice."""

from exporter import jobs


def plan_and_build(user_id: int, allow_partial: bool = False) -> int:
    """Plan the user's due discs and build every disc that is due; returns how many were built."""
    jobs.plan_discs_for(user_id, allow_partial=allow_partial)
    return len(jobs.build_due(user_id=user_id))
