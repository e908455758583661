from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from exporter import verify


class Command(BaseCommand):
    help = "Check every file of a disc image or an extracted disc folder against its manifest."

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="PATH")

    def handle(self, path, **options):
        target = Path(path)
        if not target.exists():
            raise CommandError(f"no such file or folder: {path}")
        result = verify.verify_folder(target) if target.is_dir() else verify.verify_image(target)
        for problem in result.problems:
            self.stdout.write(str(problem))
        if not result.ok:
            raise CommandError(f"{len(result.problems)} problem(s) in {path}")
        self.stdout.write(f"OK: {result.files_checked} files match the manifest")
