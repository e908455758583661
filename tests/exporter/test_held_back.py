"""An item held back from a disc: what people read about it is a sentence for
them, and no storage path reaches the disc or a page (issue #12, finding 6)."""

import json

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from exporter import build, library
from exporter.disc_tools import restore
from exporter.held_back import reason_for_people
from exporter.models import DiscEntry, DiscStatus, ItemIssue
from exporter.planning import plan_next_disc
from tests.factories import add_file, jpeg_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.adversarial]


@pytest.mark.parametrize(
    "fault, kind",
    [("missing", ItemIssue.Kind.MISSING_OBJECT), ("rotten", ItemIssue.Kind.CHECKSUM_MISMATCH)],
)
def test_a_held_back_items_reason_is_for_people_and_names_no_storage_path(alice, client, settings, fault, kind):
    album = library.ensure_album_path(alice, ["Holidays"])
    for n in range(3):
        add_file(alice, f"IMG_{n}.jpg", jpeg_bytes(color=(n * 60, 10, 10)), albums=[album])
    disc = plan_next_disc(alice, allow_partial=True)
    bad = DiscEntry.objects.filter(disc=disc).order_by("id").first()
    if fault == "missing":
        default_storage.delete(bad.version.storage_name)
    else:
        with default_storage.open(bad.version.storage_name, "wb") as fh:
            fh.write(b"rotten bytes")

    built = build.build_disc(disc.pk)

    assert built.status == DiscStatus.VERIFIED, built.last_error
    bad.refresh_from_db()
    assert bad.held_back and bad.held_reason == reason_for_people(kind)
    assert ItemIssue.objects.get(item=bad.item).kind == kind
    image = restore.IsoImage(str(build.image_path(built)))
    on_disc = {
        name: image.read_small(name).decode("utf-8-sig") for name in ("manifest.json", "index.html", "README.txt")
    }
    assert json.loads(on_disc["manifest.json"])["held_back"][0]["reason"] == reason_for_people(kind)
    assert reason_for_people(kind) in on_disc["index.html"]
    client.force_login(alice)
    pages = {
        name: client.get(reverse(name, args=[built.public_id])).content.decode()
        for name in ("disc", "manifest", "manifest_json")
    }
    assert "looking into it" in pages["manifest"]
    secrets = [str(settings.DATA_DIR), str(settings.MEDIA_ROOT), bad.version.storage_name]
    for where, text in [*on_disc.items(), *pages.items(), ("the issue", ItemIssue.objects.get().message)]:
        assert not [s for s in secrets if s in text], where
