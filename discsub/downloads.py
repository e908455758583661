"""Streaming disc images to a browser: the one home for file downloads.

Images are hundreds of megabytes to tens of gigabytes, so they are streamed
from disk in chunks (never read into memory) and a download that broke off
resumes with an HTTP Range request.  When images live in object storage the
browser is sent to a short-lived signed URL instead.  The portal and the
staff queue both call :func:`image_response` after their own access check."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.cache import get_conditional_response
from django.utils.http import content_disposition_header, http_date, parse_http_date_safe

from exporter import build, storage
from exporter.models import Disc, DiscStatus

CHUNK = 1024 * 1024
# More range-specs than this in one header are ignored (RFC 9110 section 14.2
# lets a server ignore a Range header; nobody resuming a download sends 100).
MAX_RANGES = 100
# Digits beyond this many cannot be a position in any file we serve; the
# value is clipped instead of parsed (int() refuses 4,300+ digits, and a
# position past the end is as good as infinite).
_MAX_DIGITS = 18
_INT_RANGE = re.compile(r"([0-9]+)-([0-9]*)", re.ASCII)
_SUFFIX_RANGE = re.compile(r"-([0-9]+)", re.ASCII)
_ENTITY_TAG = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')


def _chunks(path: Path, start: int, length: int):
    with open(path, "rb") as f:
        f.seek(start)
        while length > 0:
            data = f.read(min(CHUNK, length))
            if not data:
                return
            length -= len(data)
            yield data


def _position(digits: str) -> int:
    """A 1*DIGIT value; anything too long to be a real offset is clipped."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def _digits_less(a: str, b: str) -> bool:
    """Whether the 1*DIGIT ``a`` is less than ``b``, at any length."""
    a, b = a.lstrip("0") or "0", b.lstrip("0") or "0"
    return (len(a), a) < (len(b), b)


class Unsatisfiable(Exception):
    """The Range header is valid but no range in it overlaps the file: 416."""


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte to serve for a ``Range`` field value, or None to
    serve the whole file (no range, an invalid one, another unit, or several
    ranges); raises :class:`Unsatisfiable` when the ranges are well-formed but
    none overlaps a file of ``size`` bytes.

    The grammar is RFC 9110 section 14.1.1::

        ranges-specifier = range-unit "=" range-set
        range-set        = 1#range-spec
        range-spec       = int-range / suffix-range / other-range
        int-range        = first-pos "-" [ last-pos ]
        suffix-range     = "-" suffix-length

    and ``1#element`` (section 5.6.1) is ``element *( OWS "," OWS element )``,
    which a recipient reads as ``[ element ] *( OWS "," OWS [ element ] )``
    (empty elements ignored, section 5.6.1.2).  Whitespace is allowed only
    around the commas: ``bytes= 0-1`` (a space after "=") is not a
    ranges-specifier, so, like any invalid one, it is ignored and the whole
    file is sent (section 14.2: a server MAY ignore an invalid Range).  416 is
    only for a valid range-set that is unsatisfiable (section 15.5.17).
    DIGIT is ASCII 0-9 (RFC 5234), never other Unicode digits."""
    unit, equals, range_set = header.strip(" \t").partition("=")
    if not equals or unit.lower() != "bytes":  # units are case-insensitive (section 14.1)
        return None
    if range_set[:1] in (" ", "\t"):
        return None  # whitespace before the first element
    specs = [e for e in (e.strip(" \t") for e in range_set.split(",", MAX_RANGES + 1)) if e]
    if not specs or len(specs) > MAX_RANGES:
        return None
    wanted: list[tuple[int, int]] = []
    for spec in specs:
        if whole := _INT_RANGE.fullmatch(spec):
            if whole.group(2) and _digits_less(whole.group(2), whole.group(1)):
                return None  # invalid (section 14.1.1: last-pos < first-pos)
            first = _position(whole.group(1))
            last = _position(whole.group(2)) if whole.group(2) else None
            if first < size:
                wanted.append((first, size - 1 if last is None else min(last, size - 1)))
        elif suffix := _SUFFIX_RANGE.fullmatch(spec):
            length = _position(suffix.group(1))
            if length and size:
                wanted.append((max(size - length, 0), size - 1))
        else:  # an other-range (a kind we do not serve) or not a range-spec at all
            return None
    if not wanted:
        raise Unsatisfiable
    # Several ranges would need multipart/byteranges; the whole file is also a valid answer.
    return wanted[0] if len(wanted) == 1 else None


def strong_etag(sha256: str) -> str | None:
    """The image's sha256 is its identity: the same bytes always (DESIGN §2.6)."""
    return f'"{sha256}"' if sha256 else None


def _if_range_holds(value: str, etag: str | None, last_modified: str) -> bool:
    """RFC 9110 section 13.1.5: an entity-tag matches only by strong
    comparison; a date only when it is exactly the Last-Modified date."""
    value = value.strip(" \t")
    tag = _ENTITY_TAG.fullmatch(value)
    if tag:
        return etag is not None and not tag.group(1) and value == etag
    return parse_http_date_safe(value) is not None and value == last_modified


def file_response(
    request: HttpRequest, path: Path, *, filename: str, content_type: str, etag: str | None = None
) -> HttpResponse:
    """The file as an attachment: a single Range as 206, conditional requests
    (If-None-Match, If-Modified-Since, If-Match, If-Range) answered per RFC 9110."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise Http404("The image file is not on this server.") from None
    size, modified = stat.st_size, int(stat.st_mtime)
    last_modified = http_date(modified)
    validators = {"Last-Modified": last_modified, **({"ETag": etag} if etag else {})}
    refused = get_conditional_response(request, etag=etag, last_modified=modified)
    if refused is not None:  # 304 Not Modified or 412
        for name, value in validators.items():
            refused[name] = value
        return refused
    header = request.headers.get("Range", "")
    if_range = request.headers.get("If-Range")
    wanted = None
    # A Range with an If-Range that does not hold is ignored: the client's partial copy is of other bytes.
    if header and (if_range is None or _if_range_holds(if_range, etag, last_modified)):
        try:
            wanted = parse_range(header, size)
        except Unsatisfiable:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
    if wanted:
        start, end = wanted
        response = StreamingHttpResponse(_chunks(path, start, end - start + 1), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
        response["Content-Disposition"] = content_disposition_header(True, filename)
    else:
        response = FileResponse(open(path, "rb"), as_attachment=True, filename=filename, content_type=content_type)
    response["Accept-Ranges"] = "bytes"
    for name, value in validators.items():
        response[name] = value
    return response


# Characters that Windows, macOS or a shell would refuse or misread in a file name.
_UNSAFE_IN_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def _name_part(text: str, limit: int = 60) -> str:
    """``text`` made safe for a downloaded file's name: no path separators,
    control or format characters, or characters Windows refuses; spaces
    collapsed; at most ``limit`` characters."""
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text)
    text = " ".join(_UNSAFE_IN_NAME.sub(" ", text).split())
    return text[:limit].strip(" .")


def image_filename(disc: Disc) -> str:
    """The name a browser saves the image under, for people, not for our
    records: ``Discsub disc 0002 (Dana Demo).iso``.  The internal owner
    number that the volume id carries stays out of it."""
    owner = disc.owner
    who = _name_part(owner.get_full_name() or owner.get_username())
    brand = _name_part(settings.DISCSUB_ORGANIZATION) or "Discsub"
    return f"{brand} disc {disc.number:04d}" + (f" ({who})" if who else "") + ".iso"


def image_response(request: HttpRequest, disc: Disc) -> HttpResponse:
    """The disc's image: a redirect to object storage, or the local file streamed.
    The caller has checked that the user may have it."""
    if disc.status != DiscStatus.VERIFIED:
        raise Http404("Only a verified image can be downloaded.")
    url = storage.image_download_url(disc, filename=image_filename(disc))
    if url:
        return HttpResponseRedirect(url)
    return file_response(
        request,
        build.image_path(disc),
        filename=image_filename(disc),
        content_type="application/x-iso9660-image",
        etag=strong_etag(disc.image_sha256),
    )
