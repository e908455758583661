"""Originals and images on S3-compatible storage (moto in server mode, on loopback)."""

import hashlib
import io
import json
import os
import urllib.request

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from exporter import build, library, splitting, storage, thumbnails, verify
from exporter.errors import SourceMismatch
from exporter.models import DiscStatus
from exporter.planning import plan_next_disc
from tests.factories import add_file, jpeg_bytes
from tests.s3 import FaultProxy, tree

pytestmark = pytest.mark.django_db


def call(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def fill(owner, sizes):
    album = library.ensure_album_path(owner, ["Travel", "Roma"])
    return [add_file(owner, f"clip_{n}.bin", os.urandom(size), albums=[album]) for n, size in enumerate(sizes)]


def test_originals_are_stored_in_the_bucket_byte_for_byte(alice, s3):
    data = os.urandom(70_000)
    item = add_file(alice, "IMG_0001.JPG", data)
    name = item.current_version.storage_name
    assert not storage.originals_are_local()
    assert name.startswith(f"originals/{alice.pk}/")
    assert s3.get(name) == data
    assert item.current_version.sha256 == hashlib.sha256(data).hexdigest()


def test_a_disc_builds_from_s3_and_its_image_goes_up_in_parts(alice, s3, settings):
    fill(alice, [4_000_000, 3_000_000, 5_000_000])
    disc = plan_next_disc(alice, allow_partial=True)

    built = build.build_disc(disc.pk)

    assert built.status == DiscStatus.VERIFIED, built.last_error
    key = f"images/{built.image_name}"
    head = s3.client.head_object(Bucket=s3.bucket, Key=key)
    assert head["ContentLength"] == built.image_size > 10 * 1024 * 1024
    # A multipart upload's ETag ends in the number of its parts (5 MiB parts here).
    assert head["ETag"].strip('"').endswith(f"-{-(-built.image_size // (5 * 1024 * 1024))}")
    # The verified local copy is gone; the stored one is the image, and a signed URL serves it.
    assert not build.image_path(built).exists()
    url = storage.image_download_url(built)
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        image = response.read()
    assert hashlib.sha256(image).hexdigest() == built.image_sha256
    # Signed for a browser, it comes as an attachment named for people (discsub.downloads).
    named = storage.image_download_url(built, filename="Discsub disc 0001 (Zoë Ørsted).iso")
    with urllib.request.urlopen(named, timeout=10) as response:
        assert response.headers["Content-Disposition"] == (
            "attachment; filename*=utf-8''Discsub%20disc%200001%20%28Zo%C3%AB%20%C3%98rsted%29.iso"
        )
    copy = settings.DATA_DIR / "downloaded.iso"
    copy.write_bytes(image)
    assert verify.verify_image(copy, build.expected_files(built)).ok
    # Nothing is left in the build area.
    assert tree(settings.BUILD_DIR) == []
    # The commands say where it is.
    (listed,) = [json.loads(line) for line in call("list_discs", "--json").splitlines()]
    assert listed["path"] == f"s3://{s3.bucket}/{key}"
    # Built but not yet verified (and uploaded): the image is still on this machine.
    built.status = DiscStatus.BUILT
    assert storage.image_location(built) == str(build.image_path(built).resolve())


def test_sources_are_staged_on_the_data_disk_a_bounded_number_at_a_time(alice, s3, fault_proxy, settings):
    fill(alice, [300_000] * 8)
    disc = plan_next_disc(alice, allow_partial=True)
    seen = []

    def watch(method, path):
        if method == "GET" and "/originals/" in path:
            seen.append(tree(settings.BUILD_DIR))

    fault_proxy.on_request = watch
    fault_proxy.delay = 0.3  # each download takes a while: they overlap when they can
    # No client timeout on a busy machine: each GET here must be the only one for its object.
    s3.use(fault_proxy.url, read_timeout=30)

    assert build.build_disc(disc.pk).status == DiscStatus.VERIFIED
    assert len(seen) == 8
    # Three at a time (DISCSUB_S3_DOWNLOADS), never more.
    assert fault_proxy.max_in_flight == settings.DISCSUB_S3_DOWNLOADS == 3
    # In a folder of the build area, never in memory; and gone afterwards.
    assert any(any(p.endswith("/sources") for p in listing) for listing in seen)
    assert tree(settings.BUILD_DIR) == []


def test_the_staging_area_is_removed_when_the_build_raises(alice, s3, settings):
    fill(alice, [200_000, 200_000])
    disc = plan_next_disc(alice, allow_partial=True)
    staged = []

    def explode(done, total):
        staged.append(tree(settings.BUILD_DIR))
        raise RuntimeError("the worker was told to stop")

    with pytest.raises(RuntimeError):
        build.build_disc(disc.pk, progress=explode)

    assert any("sources" in p for p in staged[0])  # it was there while writing
    assert tree(settings.BUILD_DIR) == []
    disc.refresh_from_db()
    assert disc.status == DiscStatus.FAILED
    assert "the worker was told to stop" in disc.last_error


def test_stage_sources_checks_every_object_against_its_sha256(alice, s3, tmp_path):
    item = add_file(alice, "a.jpg", b"x" * 5000)
    version = item.current_version
    right = storage.Source(version.storage_name, 0, 5000, version.sha256, item.pk)
    wrong = storage.Source(version.storage_name, 0, 5000, "0" * 64, 99)
    staged = storage.stage_sources([right], tmp_path / "one")
    assert staged[right].read_bytes() == b"x" * 5000
    with pytest.raises(SourceMismatch) as failed:
        storage.stage_sources([right, wrong], tmp_path / "two")
    assert list(failed.value.problems) == [99]
    assert "expected 5,000 bytes with sha256 0000" in failed.value.problems[99]


def test_a_range_of_an_object_is_staged_alone(alice, s3, tmp_path):
    data = os.urandom(50_000)
    item = add_file(alice, "big.bin", data)
    part = data[20_000:35_000]
    source = storage.Source(item.current_version.storage_name, 20_000, 15_000, hashlib.sha256(part).hexdigest(), 1)
    assert storage.stage_sources([source], tmp_path / "part")[source].read_bytes() == part


def test_uploads_of_the_portal_reach_the_bucket_through_default_storage(alice, s3):
    stored, size, sha256 = library.store_original(alice, io.BytesIO(b"hello"))
    assert default_storage.exists(stored)
    assert s3.get(stored) == b"hello"
    assert (size, sha256) == (5, hashlib.sha256(b"hello").hexdigest())


def test_the_proxy_is_in_the_path(s3, fault_proxy):
    # The fault tests rely on the app talking through the proxy.
    default_storage.save("probe/x.txt", io.BytesIO(b"probe"))
    assert ("PUT", f"/{s3.bucket}/probe/x.txt") in fault_proxy.requests
    assert isinstance(fault_proxy, FaultProxy)


def test_a_file_to_split_is_hashed_part_by_part_in_one_streamed_read(alice, s3):
    data = os.urandom(50_000)
    version = add_file(alice, "film.mov", data).current_version
    parts = splitting.hash_parts(version, splitting.layout(version.size, 20_480))
    assert parts == [
        [offset, len(data[offset : offset + 20_480]), hashlib.sha256(data[offset : offset + 20_480]).hexdigest()]
        for offset in (0, 20_480, 40_960)
    ]
    # The whole file is checked against the sha256 recorded at upload.
    version.sha256 = "0" * 64
    with pytest.raises(splitting.SplitSourceError) as wrong:
        splitting.hash_parts(version, splitting.layout(version.size, 20_480))
    assert not wrong.value.missing
    s3.client.delete_object(Bucket=s3.bucket, Key=version.storage_name)
    with pytest.raises(splitting.SplitSourceError) as gone:
        splitting.hash_parts(version, splitting.layout(version.size, 20_480))
    assert gone.value.missing


def test_a_thumbnail_of_an_original_in_the_bucket_is_made_from_a_local_copy(alice, s3, settings, monkeypatch):
    # The decoder child reads a file: an S3 original is copied to a
    # temporary file by the worker, which is gone afterwards.
    thumbnails._known.clear()
    item = add_file(alice, "IMG_0002.JPG", jpeg_bytes(600, 400))
    copies = []
    real_render = thumbnails.thumbnail_decoder.Decoder.render

    def render(decoder, path, *args):
        copies.append((path, os.path.getsize(path)))
        return real_render(decoder, path, *args)

    monkeypatch.setattr(thumbnails.thumbnail_decoder.Decoder, "render", render)
    thumb = thumbnails.ensure_for_version(item.current_version)
    assert thumb is not None and s3.get(thumb.storage_name)[:3] == b"\xff\xd8\xff"
    ((path, size),) = copies
    assert path.startswith(str(settings.BUILD_DIR)) and size == item.current_version.size
    assert tree(settings.BUILD_DIR) == []
    thumbnails._known.clear()
