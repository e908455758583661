"""The shape every state-change record shares: who, when, from, to, and why (DESIGN §2.7)."""

from django.conf import settings
from django.db import models


class StateEvent(models.Model):
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10)
    note = models.TextField(blank=True)

    class Meta:
        abstract = True
