import os
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from exporter import library, quotas
from exporter.models import Subscription


def _name(path: Path) -> str:
    # A name that is not valid UTF-8 cannot be stored as text; keep what we
    # can read and mark the rest visibly.
    return os.fsencode(path.name).decode("utf-8", errors="replace")


class Command(BaseCommand):
    help = "Import files into a subscriber's library; each folder below PATH becomes a (nested) album."

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
        files = []
        for root in roots:
            if root.is_file():
                files.append((root, ()))
                continue
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                rel = Path(dirpath).relative_to(root)
                folders = tuple(os.fsencode(part).decode("utf-8", errors="replace") for part in rel.parts)
                files += [(Path(dirpath) / f, folders) for f in sorted(filenames)]
        imported = 0
        for path, folders in tqdm(files, desc="importing", unit="file", disable=None, file=self.stderr):
            album = library.ensure_album_path(user, folders)
            try:
                quotas.check_room(user, _name(path), path.stat().st_size)
            except quotas.QuotaExceeded as exc:
                raise CommandError(f"{exc} (imported {imported} files before it)") from exc
            with open(path, "rb") as fh:
                library.add_item(user, fh, _name(path), albums=[album] if album else [])
            imported += 1
        self.stdout.write(f"imported {imported} files for {username}")
