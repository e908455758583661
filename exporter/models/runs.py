"""What the scheduler and the workers leave behind for staff to see."""

from django.db import models


class JobRun(models.Model):
    """One pass of a periodic job: that it ran, when, and what it did."""

    name = models.CharField(max_length=100)
    host = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    subscriptions = models.PositiveIntegerField(default=0)
    discs_planned = models.PositiveIntegerField(default=0)
    builds_queued = models.PositiveIntegerField(default=0)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["name", "-started_at"], name="job_runs_by_name")]

    def __str__(self) -> str:
        return f"{self.name} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class WorkerHeartbeat(models.Model):
    """The last sign of life of one worker process (``host:pid``)."""

    worker = models.CharField(max_length=200, unique=True)
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    cluster = models.CharField(max_length=100, blank=True)
    seen_at = models.DateTimeField()
    # What it was doing when last seen ("" when idle).
    task = models.CharField(max_length=200, blank=True)
    disc_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self) -> str:
        return f"{self.worker} seen {self.seen_at:%Y-%m-%d %H:%M:%S}"
