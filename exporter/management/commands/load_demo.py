"""Demo data: a subscriber whose library looks real, and a staff member."""

import datetime as dt
import io
import os
import random

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand
from django.db import transaction
from PIL import Image
from tqdm import tqdm

from exporter import library
from exporter.management.commands._demo_queue import load_demo_queue
from exporter.media import Medium
from exporter.models import Subscription

DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"
STAFF_USER, STAFF_PASSWORD = "staff", "staff-password"

ALBUMS = [
    ("Family",),
    ("Family", "Birthdays"),
    ("Family", "Birthdays", "Léa 5"),
    ("Travel", "Italia 2024", "Roma"),
    ("Travel", "Italia 2024", "Firenze"),
    ("Travel", "日本 2025"),
    ("Garden",),
    ("Ski & Snow: Alps",),
]
CAPTIONS = ["", "", "Sunday lunch", "Best view of the trip", "Grandma's garden 🌷", "First snow", "Cake!"]


def _jpeg(rng: random.Random, when: dt.datetime) -> bytes:
    width, height = rng.choice([(1600, 1200), (1200, 1600), (2000, 1500), (800, 600), (2400, 1600)])
    # A smooth gradient with noise: compresses like a photo, takes no time to draw.
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.frombytes("RGB", (width // 4, height // 4), rng.randbytes(width // 4 * height // 4 * 3))
    tint = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
    img = Image.blend(Image.blend(base, tint, 0.5), noise.resize((width, height)), 0.35)
    exif = Image.Exif()
    exif[0x0110] = "Discsub DemoCam"
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")
    sub[0x9011] = "+01:00"
    out = io.BytesIO()
    img.save(out, "JPEG", quality=rng.choice([85, 92, 95]), exif=exif)
    return out.getvalue()


class Command(BaseCommand):
    help = "Create the demo subscriber (with a few hundred photos and some videos) and a staff member, once."

    def add_arguments(self, parser):
        parser.add_argument("--photos", type=int, default=300)
        parser.add_argument("--videos", type=int, default=3)

    def handle(self, photos, videos, **options):
        User = get_user_model()
        if User.objects.filter(username=DEMO_USER).exists():
            self.stdout.write("demo data already loaded")
            return
        with transaction.atomic():
            demo = User.objects.create_user(
                DEMO_USER, "demo@example.com", DEMO_PASSWORD, first_name="Dana", last_name="Demo"
            )
            Subscription.objects.create(user=demo, medium=Medium.CD)
            staff = User.objects.create_user(STAFF_USER, "staff@example.com", STAFF_PASSWORD, is_staff=True)
            staff.user_permissions.add(*Permission.objects.filter(codename__in=["change_disccopy", "change_purgehold"]))
        copies = load_demo_queue(staff)
        self.stdout.write(f"staff queue: {copies} demo copies at every step")
        rng = random.Random(2024)
        albums = [library.ensure_album_path(demo, path) for path in ALBUMS]
        start = dt.datetime(2024, 3, 1, 9, 0)
        for n in tqdm(range(photos), desc="demo photos", unit="photo", file=self.stderr, disable=None):
            when = start + dt.timedelta(hours=n * 7 + rng.randrange(6))
            name = rng.choice(["IMG_{:04d}.JPG", "Photo {}.jpg", "été {}.jpeg", "DSC{:05d}.jpg"]).format(n + 1)
            chosen = [rng.choice(albums)] + ([rng.choice(albums)] if rng.random() < 0.1 else [])
            library.add_item(demo, io.BytesIO(_jpeg(rng, when)), name, albums=set(chosen), caption=rng.choice(CAPTIONS))
        for n in range(videos):
            size = rng.randrange(40, 120) * 1024 * 1024
            library.add_item(
                demo,
                io.BytesIO(os.urandom(size)),
                f"Clip {n + 1} 🎬.mp4",
                albums=[rng.choice(albums)],
                caption="A long video",
            )
        self.stdout.write(f"demo subscriber {DEMO_USER!r} created with {photos} photos and {videos} videos")
