from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from exporter import build, isomd5, par2
from exporter.errors import SourceMismatch
from exporter.models import Disc, DiscEntry


class Command(BaseCommand):
    help = "Rebuild a disc's image into PATH and prove it byte-identical to the recorded sha256."

    def add_arguments(self, parser):
        parser.add_argument("disc_id", type=int, metavar="DISC_ID")
        parser.add_argument("--to", required=True, metavar="PATH")

    def handle(self, disc_id, to, **options):
        disc = Disc.objects.select_related("owner").filter(pk=disc_id).first()
        if disc is None:
            raise CommandError(f"no disc with id {disc_id}")
        if not disc.image_sha256:
            raise CommandError(f"disc {disc_id} has never been built; nothing to compare with")
        dest = Path(to)
        if dest.is_dir():
            dest = dest / f"disc-{disc.number:04d}.iso"
        entries = list(DiscEntry.objects.filter(disc=disc).select_related("version").order_by("id"))
        try:
            result = build.write_disc_image(disc, entries, dest).result
        except (SourceMismatch, par2.Par2Error, isomd5.IsoMd5Error, OSError) as exc:
            raise CommandError(f"cannot rebuild disc {disc_id}: {exc}") from exc
        if result.sha256 != disc.image_sha256:
            raise CommandError(f"{dest}: sha256 {result.sha256} differs from the recorded {disc.image_sha256}")
        self.stdout.write(f"{dest}: identical to the original image (sha256 {result.sha256})")
