"""Where images and originals live: the data folder by default, object storage by settings.

With S3-compatible storage (``STORAGES["default"]`` and ``STORAGES["images"]``
set to django-storages' ``S3Storage``, docs/deploy.md):

- a build first *stages* the disc's sources: it downloads them, a bounded
  number at a time, into a folder of the build area on the data disk
  (never memory), checking each one's size and sha256 on the way
  (:func:`stage_sources`).  The builder removes the folder whatever happens.
- a verified image is uploaded with multipart upload and read back; only an
  upload whose read-back sha256 is the image's counts (:func:`upload_image`).

Failures are sorted so that a wrong byte never reaches a disc: a missing
object, or one that keeps failing its sha256, holds its item back
(:class:`SourceMismatch`, flagged for staff as today); storage that refuses,
times out or keeps breaking off fails the disc, to be retried with backoff
(:class:`StorageUnavailable`).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.storage import Storage, default_storage, storages

from exporter.errors import MISMATCH, MISSING, UNREADABLE, SourceMismatch, StorageUnavailable
from exporter.models import Disc, DiscStatus

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024


def _pause(attempt: int) -> None:
    # 0.5 s, 1 s, 2 s … by default: storage that is down for longer fails the
    # disc, which the builder retries with its own, longer backoff.
    time.sleep(settings.DISCSUB_STORAGE_RETRY_PAUSE * 2 ** (attempt - 1))


def images_are_remote() -> bool:
    """True when images live in object storage (``STORAGES["images"]``)."""
    return "images" in settings.STORAGES


def image_download_url(disc: Disc, *, expires: int = 300) -> str | None:
    """A short-lived signed URL of the disc's image when images are in object
    storage; None when they are local files (stream ``build.image_path``)."""
    if not images_are_remote() or not disc.image_name:
        return None
    return storages["images"].url(disc.image_name, expire=expires)


def image_location(disc: Disc) -> str | None:
    """Where the disc's image is kept: a path on this machine until it is
    verified and, when images are in object storage, uploaded; then
    ``s3://bucket/key`` (or the storage's own path or URL).  None before it is built."""
    if not disc.image_name:
        return None
    if images_are_remote() and disc.status == DiscStatus.VERIFIED:
        images = storages["images"]
        if _is_s3(images):
            return f"s3://{images.bucket_name}/{_s3_key(images, disc.image_name)}"
        try:
            return images.path(disc.image_name)
        except NotImplementedError:
            return images.url(disc.image_name)
    return str((Path(settings.IMAGES_DIR) / disc.image_name).resolve())


def originals_are_local(storage: Storage | None = None) -> bool:
    """True when originals are files on this machine (tools may link to them)."""
    try:
        (storage or default_storage).path("originals")
    except NotImplementedError:
        return False
    return True


@dataclass(frozen=True)
class Source:
    """Bytes a disc needs from storage: ``size`` bytes of the object
    ``storage_name`` from ``offset`` (a part of a file split across discs),
    whose sha256 is ``sha256``."""

    storage_name: str
    offset: int
    size: int
    sha256: str
    item_id: int | None = None


class _Missing(Exception):
    pass


class _Corrupt(Exception):
    pass


def _is_s3(storage: Storage) -> bool:
    return hasattr(storage, "bucket_name") and hasattr(storage, "connection")


def _s3_key(storage: Storage, name: str) -> str:
    from storages.utils import clean_name

    return storage._normalize_name(clean_name(name))


def _transient_errors() -> tuple[type[BaseException], ...]:
    """What a refused, broken-off or timed-out transfer raises (OSError: the
    sockets; a full data disk is told apart by its errno)."""
    errors: list[type[BaseException]] = [OSError]
    try:
        from botocore.exceptions import BotoCoreError, ClientError
        from urllib3.exceptions import HTTPError

        errors += [BotoCoreError, ClientError, HTTPError]
    except ImportError:  # no boto3: filesystem-like storage only
        pass
    return tuple(errors)


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says storage or this machine failed, not the object's
    bytes: storage refused, timed out or broke off (the transfers
    :func:`_stage_one` retries and then calls "unavailable"), or the data disk
    is full.  A missing object, or a local file that cannot be read (a folder
    where the file was, EIO from its disk), is the object's own trouble."""
    if isinstance(exc, StorageUnavailable):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if is_missing(exc) or exc.__class__.__name__ == "FlexibleChecksumError":
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):  # sockets
        return True
    remote = tuple(e for e in _transient_errors() if e is not OSError)
    return isinstance(exc, remote)


def is_missing(exc: BaseException) -> bool:
    """True when ``exc`` says the object does not exist."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        return code in {"NoSuchKey", "404", "NotFound"}
    return isinstance(exc, FileNotFoundError)


def read_range(storage: Storage, source: Source) -> Iterable[bytes]:
    """The source's bytes, in chunks, as storage sends them (unchecked)."""
    if _is_s3(storage):
        client = storage.connection.meta.client
        request = {"Bucket": storage.bucket_name, "Key": _s3_key(storage, source.storage_name)}
        if source.size:
            request["Range"] = f"bytes={source.offset}-{source.offset + source.size - 1}"
        body = client.get_object(**request)["Body"]
        try:
            yield from body.iter_chunks(_CHUNK)
        finally:
            body.close()
        return
    with storage.open(source.storage_name, "rb") as fh:
        fh.seek(source.offset)
        left = source.size
        while left > 0 and (data := fh.read(min(_CHUNK, left))):
            left -= len(data)
            yield data


def _fetch(storage: Storage, source: Source, dest: Path) -> None:
    """One attempt: ``dest`` gets the source's bytes, or this raises."""
    digest, size = hashlib.sha256(), 0
    with open(dest, "wb") as out:
        for chunk in read_range(storage, source):
            size += len(chunk)
            if size > source.size:
                break
            digest.update(chunk)
            out.write(chunk)
    if size != source.size or digest.hexdigest() != source.sha256:
        raise _Corrupt(
            f"storage sent {size:,} bytes with sha256 {digest.hexdigest()}, "
            f"expected {source.size:,} bytes with sha256 {source.sha256}"
        )


def _stage_one(storage: Storage, source: Source, dest: Path, attempts: int) -> tuple[str, str] | None:
    """Download one source, retrying.  None when ``dest`` holds it; else
    ``("missing" | "corrupt" | "unreadable" | "unavailable", reason)``."""
    transient = _transient_errors()
    outcome = ("unavailable", "no attempt made")
    for attempt in range(attempts):
        if attempt:
            _pause(attempt)
        try:
            _fetch(storage, source, dest)
            return None
        except _Corrupt as exc:
            outcome = ("corrupt", str(exc))
        except transient as exc:
            if exc.__class__.__name__ == "FlexibleChecksumError":
                # botocore checked the object's own checksum, and the bytes were wrong.
                outcome = ("corrupt", f"storage sent bytes that fail the object's checksum: {exc}")
                log.info("staging %s, attempt %s of %s: %s", source.storage_name, attempt + 1, attempts, outcome[1])
                continue
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise  # the data disk is full: the builder says so
            if is_missing(exc):
                return ("missing", f"the stored object {source.storage_name} is missing")
            outcome = ("unavailable", f"{exc.__class__.__name__}: {exc}")
        except Exception as exc:  # anything else reading this object is its problem, not the disc's
            outcome = ("unreadable", f"unreadable source ({exc.__class__.__name__}: {exc})")
        log.info("staging %s, attempt %s of %s: %s", source.storage_name, attempt + 1, attempts, outcome[1])
    return outcome


def stage_sources(sources: Iterable[Source], folder: Path, *, storage: Storage | None = None) -> dict[Source, Path]:
    """Download ``sources`` into ``folder`` (created; the caller removes it),
    at most ``DISCSUB_S3_DOWNLOADS`` at a time, each checked against its size
    and sha256.  Returns where each one is.

    Raises :class:`StorageUnavailable` when storage could not be reached for
    some source (after ``DISCSUB_STORAGE_ATTEMPTS`` tries each); otherwise
    :class:`SourceMismatch` (item id -> reason) for sources that are missing
    or kept failing their check; ``OSError`` when the data disk is full."""
    storage = storage or default_storage
    unique = list(dict.fromkeys(sources))
    folder.mkdir(parents=True, exist_ok=True)
    places = {source: folder / f"{n:06d}" for n, source in enumerate(unique)}
    attempts = max(1, settings.DISCSUB_STORAGE_ATTEMPTS)
    workers = max(1, min(settings.DISCSUB_S3_DOWNLOADS, len(unique) or 1))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stage")
    try:
        futures = {s: pool.submit(_stage_one, storage, s, places[s], attempts) for s in unique}
        outcomes = {s: f.result() for s, f in futures.items()}
    finally:
        # No download may still be writing when the caller removes the folder.
        pool.shutdown(wait=True, cancel_futures=True)
    down = [reason for kind, reason in filter(None, outcomes.values()) if kind == "unavailable"]
    if down:
        raise StorageUnavailable(f"object storage failed for {len(down)} source(s): {down[0]}")
    kind_of = {"missing": MISSING, "corrupt": MISMATCH, "unreadable": UNREADABLE}
    bad = {s.item_id if s.item_id is not None else s.storage_name: o for s, o in outcomes.items() if o}
    if bad:
        raise SourceMismatch({k: o[1] for k, o in bad.items()}, {k: kind_of[o[0]] for k, o in bad.items()})
    return places


# --- images ------------------------------------------------------------------------


def _sha256_of_object(client, bucket: str, key: str) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        for chunk in body.iter_chunks(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    finally:
        body.close()
    return size, digest.hexdigest()


def upload_image(disc: Disc, local: Path, *, progress: Callable[[int], None] | None = None) -> None:
    """Put the disc's image (a verified local file) into ``STORAGES["images"]``
    under ``disc.image_name``, with multipart upload, and read it back: it
    counts only when the stored object's size and sha256 are the image's.
    Raises :class:`StorageUnavailable` after ``DISCSUB_STORAGE_ATTEMPTS``."""
    from boto3.s3.transfer import TransferConfig

    storage = storages["images"]
    if not _is_s3(storage):
        with open(local, "rb") as fh:
            storage.save(disc.image_name, fh)
        return
    client = storage.connection.meta.client
    key = _s3_key(storage, disc.image_name)
    part = settings.DISCSUB_S3_PART_MB * 1024 * 1024
    # S3 takes at most 10,000 parts: a BD image gets bigger ones.
    part = max(part, math.ceil(disc.image_size / 9_000))
    config = TransferConfig(
        multipart_threshold=part, multipart_chunksize=part, max_concurrency=settings.DISCSUB_S3_DOWNLOADS
    )
    transient = _transient_errors()
    attempts = max(1, settings.DISCSUB_STORAGE_ATTEMPTS)
    reason = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            _pause(attempt)
        try:
            client.upload_file(str(local), storage.bucket_name, key, Config=config, Callback=progress)
            size, sha256 = _sha256_of_object(client, storage.bucket_name, key)
        except transient as exc:
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            reason = f"{exc.__class__.__name__}: {exc}"
            if exc.__class__.__name__ == "FlexibleChecksumError":
                reason = f"the stored image reads back wrong ({exc})"
            continue
        if size == disc.image_size and sha256 == disc.image_sha256:
            return
        reason = f"the stored image reads back as {size:,} bytes with sha256 {sha256}"
    raise StorageUnavailable(f"uploading the image to object storage failed {attempts} times; the last: {reason}")


# --- erasure (the purge's one way to remove an object) ------------------------------


def erase_object(storage: Storage, name: str) -> int:
    """Remove ``name`` from ``storage`` for good; returns how many stored
    versions went (0: it was already gone, so a rerun is harmless).

    On S3 every version of the key goes, and every delete marker: a bucket
    that keeps versions would otherwise keep the bytes behind a marker.  On
    the filesystem the file goes, and its folder if that leaves it empty.
    Errors propagate (the caller records them and tries again later)."""
    if _is_s3(storage):
        client, bucket = storage.connection.meta.client, storage.bucket_name
        key = _s3_key(storage, name)
        removed = 0
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
            for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
                if version["Key"] == key:  # the prefix matches longer keys too
                    client.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
                    removed += 1
        return removed
    if not storage.exists(name):
        return 0
    storage.delete(name)
    try:
        Path(storage.path(name)).parent.rmdir()
    except (OSError, NotImplementedError):
        pass  # not empty, or not a filesystem
    return 1
