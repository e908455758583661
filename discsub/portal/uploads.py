"""Checking uploads before they reach the library.

Browsers say what a file is and the name it had; neither is trusted.  A
file is accepted only when its first bytes are a photo or video format we
know (the content type recorded is the one the bytes show), its name is a
plain file name, it is not empty, and it is within the size limit.  The
size limit is enforced while the body streams in (:class:`SizeLimitHandler`),
so an oversized file is never written out in full.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http.multipartparser import MultiPartParser
from django.template.defaultfilters import filesizeformat

from exporter.media_files import HEAD_BYTES, check_media_file, too_large_text  # noqa: F401  (too_large_text: for the view)


def limit_text() -> str:
    return filesizeformat(settings.DISCSUB_UPLOAD_MAX_BYTES)


class SizeLimitHandler(FileUploadHandler):
    """Skips the rest of a file once it passes the size limit (the handlers
    after this one stop receiving it and its temporary file is dropped), and
    remembers its name for the message."""

    def __init__(self, request=None):
        super().__init__(request)
        self.too_large: list[str] = []
        self._received = 0

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self._received = 0

    def receive_data_chunk(self, raw_data, start):
        self._received += len(raw_data)
        if self._received > settings.DISCSUB_UPLOAD_MAX_BYTES:
            self.too_large.append(self.file_name)
            raise SkipFile()
        return raw_data

    def file_complete(self, file_size):
        return None


class _PathNoticingParser(MultiPartParser):
    """Django keeps only the last part of a file name that holds a path; this
    also notes which names had one, so the upload is refused with a message
    instead of being stored under a name the subscriber did not choose."""

    def __init__(self, *args, had_path: list, **kwargs):
        super().__init__(*args, **kwargs)
        self._had_path = had_path

    def sanitize_file_name(self, file_name):
        cleaned = super().sanitize_file_name(file_name)
        raw = html.unescape(file_name or "")
        if "/" in raw or "\\" in raw:
            # Never None here, so the file is refused with a message, not silently dropped.
            name = cleaned or "unnamed"
            self._had_path.append(name)
            return name
        return cleaned


@dataclass
class UploadCheck:
    """What the request's files looked like before anything was stored."""

    too_large: list[str] = field(default_factory=list)
    had_path: list[str] = field(default_factory=list)


def prepare(request) -> UploadCheck:
    """Install the size limit and the path check on ``request`` before its
    body is read (the view must be csrf_exempt, then csrf_protect, as
    Django's docs on upload handlers describe)."""
    check = UploadCheck()
    limiter = SizeLimitHandler(request)
    request.upload_handlers.insert(0, limiter)
    check.too_large = limiter.too_large

    def parse_file_upload(META, post_data):
        handlers = request.upload_handlers
        return _PathNoticingParser(META, post_data, handlers, request.encoding, had_path=check.had_path).parse()

    # Per request only: the one hook Django offers for the parser.
    request.parse_file_upload = parse_file_upload
    return check


def examine(upload, check: UploadCheck) -> tuple[str | None, str | None]:
    """``(content type, None)`` for an UploadedFile that may go into the
    library, ``(None, reason)`` otherwise; the reason names the file and
    says what to do."""
    name = upload.name or "unnamed"
    if name in check.had_path:
        return None, f"“{name}” was sent with a folder path in its name. Upload the file itself."
    upload.seek(0)
    head = upload.read(HEAD_BYTES)
    upload.seek(0)
    return check_media_file(name, upload.size, head)
