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

# (offset, signature, content type); checked in order.  ISO-BMFF files (MP4,
# MOV, HEIC, AVIF, CR3) are told apart by their ftyp brand below.
_SIGNATURES: list[tuple[int, bytes, str]] = [
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"II*\x00", "image/tiff"),  # also DNG, NEF, CR2, ARW
    (0, b"MM\x00*", "image/tiff"),
    (0, b"IIRO", "image/x-olympus-orf"),
    (0, b"IIU\x00", "image/x-panasonic-rw2"),
    (0, b"FUJIFILMCCD-RAW", "image/x-fuji-raf"),
    (0, b"BM", "image/bmp"),
    (0, b"\x1aE\xdf\xa3", "video/x-matroska"),  # also WebM
    (0, b"\x00\x00\x01\xba", "video/mpeg"),
    (0, b"\x00\x00\x01\xb3", "video/mpeg"),
]
_RIFF = {b"WEBP": "image/webp", b"AVI ": "video/x-msvideo"}
_BRANDS = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
    b"avif": "image/avif",
    b"crx ": "image/x-canon-cr3",
    b"qt  ": "video/quicktime",
    b"3gp4": "video/3gpp",
    b"3gp5": "video/3gpp",
    b"3g2a": "video/3gpp2",
}


def sniff_content_type(head: bytes) -> str | None:
    """The photo or video format the first bytes of a file show, or None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _BRANDS.get(head[8:12], "video/mp4")
    if len(head) >= 12 and head[:4] == b"RIFF":
        return _RIFF.get(head[8:12])
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:
        return "video/mp2t"
    for offset, signature, content_type in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return content_type
    return None


def limit_text() -> str:
    return filesizeformat(settings.DISCSUB_UPLOAD_MAX_BYTES)


def too_large_text(name: str) -> str:
    return f"“{name}” is larger than the {limit_text()} limit for one file."


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
    if upload.size == 0:
        return None, f"“{name}” is empty (0 bytes). Choose the photo or video again."
    if upload.size > settings.DISCSUB_UPLOAD_MAX_BYTES:
        return None, too_large_text(name)
    upload.seek(0)
    content_type = sniff_content_type(upload.read(200))
    upload.seek(0)
    if content_type is None:
        return None, f"“{name}” is not a photo or video we recognise, whatever its name or type says."
    return content_type, None
