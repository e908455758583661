from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from exporter.disc_tools import repair


class Command(BaseCommand):
    help = (
        "Repair a damaged disc image (or read and repair a drive, /dev/sr0) from the sector recovery data after "
        "its filesystem, and write the repaired image to --to: the repair.py that travels on every disc, run from "
        "here.  Exits non-zero, naming what stays damaged, unless the written image has the recorded sha256."
    )

    def add_arguments(self, parser):
        parser.add_argument("image", metavar="IMAGE", help="an image read from a disc, or the drive")
        parser.add_argument("--to", required=True, metavar="PATH", help="where to write the repaired image")

    def handle(self, image, to, **options):
        source, target = Path(image), Path(to)
        if not source.exists():
            raise CommandError(f"no such file or drive: {image}")
        if target.exists() and target.resolve() == source.resolve():
            raise CommandError("--to must be another file than the image")
        bars: dict[str, tqdm] = {}

        def progress(what: str, done: int, total: int) -> None:
            bar = bars.get(what)
            if bar is None:
                bar = bars[what] = tqdm(total=total, desc=what, unit="group", disable=None, file=self.stderr)
            bar.update(done - bar.n)

        try:
            report = repair.repair(source, target, progress)
        except (repair.RecoveryDataError, OSError) as exc:
            raise CommandError(f"{image}: {exc}") from None
        finally:
            for bar in bars.values():
                bar.close()
        for line in report.lines():
            self.stdout.write(line)
        if not report.ok:
            raise CommandError(f"{to} is not the disc's image: see above")
        self.stdout.write(f"wrote {to}")
