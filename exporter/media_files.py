"""What the library accepts as a photo or video file, by its bytes.

The one home of these checks: the portal's uploads (discsub/portal/uploads.py)
and ``manage.py import_media`` both call :func:`check_media_file`, so a file
the portal refuses is refused by the import too.  A name or a browser's
content type is never trusted: the first bytes must be a photo or video
format we know, the file must not be empty, and it must be within
``DISCSUB_UPLOAD_MAX_BYTES``."""

from __future__ import annotations

from django.conf import settings
from django.template.defaultfilters import filesizeformat

# How many first bytes :func:`sniff_content_type` needs.
HEAD_BYTES = 200

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


def too_large_text(name: str) -> str:
    return f"“{name}” is larger than the {filesizeformat(settings.DISCSUB_UPLOAD_MAX_BYTES)} limit for one file."


def check_media_file(name: str, size: int, head: bytes) -> tuple[str | None, str | None]:
    """``(content type, None)`` for a file of ``size`` bytes starting with
    ``head`` (its first :data:`HEAD_BYTES`) that may go into the library,
    ``(None, reason)`` otherwise; the reason names the file and says what to do."""
    if size == 0:
        return None, f"“{name}” is empty (0 bytes). Choose the photo or video again."
    if size > settings.DISCSUB_UPLOAD_MAX_BYTES:
        return None, too_large_text(name)
    content_type = sniff_content_type(head)
    if content_type is None:
        return None, f"“{name}” is not a photo or video we recognise, whatever its name or type says."
    return content_type, None
