"""Streaming disc images to a browser: the one home for file downloads.

Images are hundreds of megabytes to tens of gigabytes, so they are streamed
from disk in chunks (never read into memory) and a download that broke off
resumes with an HTTP Range request.  When images live in object storage the
browser is sent to a short-lived signed URL instead.  The portal and the
staff queue both call :func:`image_response` after their own access check."""

from __future__ import annotations

import re
from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse

from exporter import build, storage
from exporter.models import Disc, DiscStatus

CHUNK = 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _chunks(path: Path, start: int, length: int):
    with open(path, "rb") as f:
        f.seek(start)
        while length > 0:
            data = f.read(min(CHUNK, length))
            if not data:
                return
            length -= len(data)
            yield data


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``bytes=`` range, clipped to the file;
    None when the header asks for nothing we can satisfy.  Several ranges
    are not served (a client then gets the whole file)."""
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        n = int(last)
        return (max(size - n, 0), size - 1) if n and size else None
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return None
    return start, end


def file_response(request: HttpRequest, path: Path, *, filename: str, content_type: str) -> HttpResponse:
    """The file as an attachment, honouring a single Range request."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise Http404("The image file is not on this server.") from None
    header = request.headers.get("Range", "").strip()
    # Other units and multiple ranges are ignored, as RFC 9110 allows: the whole file.
    if header.startswith("bytes=") and "," not in header:
        wanted = parse_range(header, size)
        if wanted is None:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        start, end = wanted
        response = StreamingHttpResponse(_chunks(path, start, end - start + 1), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    else:
        response = FileResponse(open(path, "rb"), as_attachment=True, filename=filename, content_type=content_type)
    response["Accept-Ranges"] = "bytes"
    return response


def image_filename(disc: Disc) -> str:
    return f"{disc.volume_id or 'disc'}-{disc.number:04d}.iso"


def image_response(request: HttpRequest, disc: Disc) -> HttpResponse:
    """The disc's image: a redirect to object storage, or the local file streamed.
    The caller has checked that the user may have it."""
    if disc.status != DiscStatus.VERIFIED:
        raise Http404("Only a verified image can be downloaded.")
    url = storage.image_download_url(disc)
    if url:
        return HttpResponseRedirect(url)
    return file_response(
        request, build.image_path(disc), filename=image_filename(disc), content_type="application/x-iso9660-image"
    )
