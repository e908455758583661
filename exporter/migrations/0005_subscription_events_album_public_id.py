import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def give_albums_public_ids(apps, schema_editor):
    Album = apps.get_model("exporter", "Album")
    for album in Album.objects.filter(public_id__isnull=True).only("pk"):
        Album.objects.filter(pk=album.pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [
        ("exporter", "0004_scheduling_leases_and_heartbeats"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # Existing albums need distinct ids before the column can be unique.
        migrations.AddField(
            model_name="album",
            name="public_id",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.RunPython(give_albums_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="album",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
        migrations.CreateModel(
            name="SubscriptionEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(auto_now_add=True)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("ship_now", "Asked to ship what is waiting now"),
                            ("paused", "Paused"),
                            ("resumed", "Resumed"),
                            ("cancelled", "Cancelled"),
                            ("plan_changed", "Plan changed"),
                            ("address_changed", "Mailing address changed"),
                            ("emails_changed", "Email preferences changed"),
                        ],
                        max_length=20,
                    ),
                ),
                ("from_status", models.CharField(blank=True, max_length=10)),
                ("to_status", models.CharField(blank=True, max_length=10)),
                ("note", models.TextField(blank=True)),
                (
                    "actor",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "subscription",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="exporter.subscription",
                    ),
                ),
            ],
            options={
                "ordering": ["subscription", "at", "id"],
                "indexes": [
                    models.Index(fields=["subscription", "kind", "at"], name="exporter_su_subscri_40863d_idx"),
                ],
            },
        ),
    ]
