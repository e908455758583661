"""Task functions for django-q2.  Arguments are primary keys; each can run twice."""

from exporter import build, deletion, jobs, scheduling, thumbnails
from exporter.models import ItemVersion


def plan_and_build(user_id: int, allow_partial: bool = False) -> int:
    """Plan the user's due discs and build every disc that is due; returns how many were built."""
    jobs.plan_discs_for(user_id, allow_partial=allow_partial)
    return len(jobs.build_due(user_id=user_id))


def run_schedule() -> dict:
    """The scheduler's periodic pass (setup_schedules runs it every few minutes)."""
    run = scheduling.run_due()
    return {"subscriptions": run.subscriptions, "discs_planned": run.discs_planned, "builds_queued": run.builds_queued}


def build_disc(disc_id: int) -> str:
    """Build and verify one disc; a no-op when another worker has it or it is not due."""
    disc = build.build_disc(disc_id)
    return disc.status if disc is not None else "not claimed"


def make_thumbnail(version_id: int) -> bool:
    """Make one version's thumbnail (queued by an upload); True when it has one,
    False for a placeholder or a version that is gone."""
    version = ItemVersion.objects.select_related("item").filter(pk=version_id).first()
    if version is None:
        return False
    return thumbnails.ensure_for_version(version) is not None


def empty_trash() -> str:
    """Move items trashed DISCSUB_TRASH_DAYS ago to Recently deleted (setup_schedules)."""
    return deletion.empty_trash().note


def purge() -> dict:
    """The purge pass (setup_schedules): erase what is due and the guard lets go."""
    from exporter import purge as purging

    outcomes = purging.run_purge()
    return {
        action: sum(o.action == action for o in outcomes) for action in (purging.ERASED, purging.HELD, purging.WAITING)
    }
