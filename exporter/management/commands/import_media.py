"""`manage.py import_media`: a folder tree into a subscriber's library (exporter.import_tree)."""

from collections import Counter
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from exporter import import_tree
from exporter.models import Subscription


class Command(BaseCommand):
    help = (
        "Import files into a subscriber's library; each folder below PATH becomes a (nested) album. "
        "Files already in the library (same bytes, same album) are skipped, so a run cut short is finished "
        "by running it again; files the portal would refuse, and links that leave PATH, are refused with a reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--create-user", action="store_true", help="create the subscriber if missing")

    def handle(self, username, paths, create_user, **options):
        roots = [Path(p) for p in paths]
        missing = [str(p) for p in roots if not p.exists()]
        if missing:
            raise CommandError(f"no such file or folder: {', '.join(missing)} (nothing was imported)")
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            if not create_user:
                raise CommandError(f"unknown user {username!r} (use --create-user to create it; nothing was imported)")
            user = User.objects.create_user(username)
            Subscription.objects.create(user=user)
        found = import_tree.walk(roots)
        refused = [(str(r.path), r.reason) for r in found.refused]
        counts: Counter[str] = Counter()
        bar = tqdm(found.candidates, desc="importing", unit="file", disable=None, file=self.stderr)
        for candidate in bar:
            outcome, detail = import_tree.import_file(user, candidate)
            counts[outcome] += 1
            if outcome == import_tree.REFUSED:
                refused.append((str(candidate.path), detail))
                bar.write(f"refused {candidate.path}: {detail}", file=self.stderr)
        out = self.stdout.write
        out(f"imported {counts[import_tree.IMPORTED]} files for {username}")
        if counts[import_tree.JOINED]:
            out(f"added {counts[import_tree.JOINED]} files already in the library to another album")
        out(f"skipped {counts[import_tree.DUPLICATE]} already in the library")
        out(f"refused {len(refused)}" + (":" if refused else ""))
        for path, reason in refused:
            out(f"  {path}: {reason}")
