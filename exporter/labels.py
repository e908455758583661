"""The printed face of a disc: a 120 mm label image made with Pillow.

The label carries what a person needs to tell discs apart on a shelf
(subscriber, disc N, the dates its photos were taken, the volume label) and a
QR code of the image's sha256, so a scan ties the physical disc to the image
it was burned from.  Mailing labels and packing slips are HTML
(``templates/staff/print.html``): the browser prints text better than a
bitmap would."""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont

from exporter.manifest import disc_description
from exporter.media import Medium
from exporter.models import Disc, DiscEntry, EntryKind
from exporter.offline_index import day_range

DPI = 300
DISC_MM = 120.0
# Printable discs print from just inside the rim to around the hub's
# stacking ring; the hole itself is 15 mm.
PRINTABLE_OUTER_MM = 118.0
PRINTABLE_INNER_MM = 42.0
HOLE_MM = 15.0
QR_MM = 21.0

INK = (29, 35, 48, 255)
MUTED = (91, 100, 115, 255)
ACCENT = (47, 91, 211, 255)
CUT_LINE = (170, 176, 186, 255)
HUB = (236, 238, 242, 255)
WHITE = (255, 255, 255, 255)

_FONTS = Path("/usr/share/fonts/truetype/dejavu")


def px(mm: float) -> int:
    return round(mm * DPI / 25.4)


@cache
def _font(kind: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf", "mono": "DejaVuSansMono.ttf"}[kind]
    try:
        return ImageFont.truetype(str(_FONTS / name), size)
    except OSError:
        # Pillow's own font: plainer, but the label still prints.
        return ImageFont.load_default(size)


def printable(text: str) -> str:
    """The text without control and format characters (a hostile name must
    not break the layout) and without characters beyond the BMP (emoji: the
    label's fonts have none, and a row of empty boxes helps nobody)."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" and ord(ch) <= 0xFFFF).strip()


def disc_date_ranges(discs: Iterable[Disc]) -> dict[int, str]:
    """``{disc id: "3 Mar 2024 – 9 May 2024"}`` from the capture dates of what
    each disc carries, the way its README and index.html state them (one query)."""
    discs = list(discs)
    carried: dict[int, list[DiscEntry]] = {d.pk: [] for d in discs}
    entries = DiscEntry.objects.filter(disc__in=discs, kind=EntryKind.FILE, held_back=False).only(
        "disc_id", "kind", "metadata"
    )
    for entry in entries:
        carried[entry.disc_id].append(entry)
    out = {}
    for disc in discs:
        captured = disc_description(disc, carried[disc.pk])["captured"]
        out[disc.pk] = day_range(captured["first"], captured["last"])
    return out


def qr_matrix(text: str) -> list[list[bool]]:
    """The QR code's modules, dark = True, without the quiet zone."""
    code = segno.make_qr(text, error="m")
    return [[bool(m) for m in row] for row in code.matrix]


def _fit(draw: ImageDraw.ImageDraw, text: str, kind: str, size: int, width: int) -> tuple[str, ImageFont.ImageFont]:
    """The text in the largest font (down to 60 % of ``size``) that fits ``width``, shortened with … if need be."""
    for step in range(size, int(size * 0.6) - 1, -2):
        font = _font(kind, step)
        if draw.textlength(text, font=font) <= width:
            return text, font
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "…", font


def _chord(y_mm: float, radius_mm: float) -> int:
    """Width in pixels of the printable ring at ``y_mm`` from the centre."""
    return px(2 * math.sqrt(max(radius_mm**2 - y_mm**2, 0)))


def disc_label_png(
    *, subscriber: str, number: int, date_range: str, volume_id: str, image_sha256: str, medium: str
) -> bytes:
    """A 120 mm disc label at 300 dpi (PNG, transparent outside the disc and in the hole)."""
    size = px(DISC_MM)
    c = size / 2
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)

    def circle(diameter_mm: float, **kw) -> None:
        r = px(diameter_mm) / 2
        draw.ellipse((c - r, c - r, c + r, c + r), **kw)

    circle(DISC_MM, fill=WHITE, outline=CUT_LINE, width=3)
    circle(PRINTABLE_OUTER_MM - 4, outline=ACCENT, width=px(0.8))
    circle(PRINTABLE_INNER_MM, fill=HUB, outline=CUT_LINE, width=2)
    circle(HOLE_MM, fill=(0, 0, 0, 0), outline=CUT_LINE, width=2)

    outer = PRINTABLE_OUTER_MM / 2 - 5

    def line(y_mm: float, text: str, kind: str, size_mm: float, fill, *, spacing: float = 0) -> None:
        text = printable(text)
        if not text:
            return
        text, font = _fit(draw, text, kind, px(size_mm), _chord(abs(y_mm) + size_mm / 2, outer))
        draw.text((c, c + px(y_mm)), text, font=font, fill=fill, anchor="mm")

    line(-48, "DISCSUB · YOUR OWN COPY", "bold", 3.0, ACCENT)
    line(-39, subscriber, "bold", 6.5, INK)
    line(-28, f"Disc {number}", "bold", 10.0, INK)
    line(28, date_range or "no dated photos", "regular", 4.2, INK)
    line(36, volume_id, "mono", 3.6, MUTED)
    line(43, Medium(medium).label if medium in Medium.values else medium, "regular", 3.2, MUTED)

    # The QR code left of the hub, the sha256's start right of it, both
    # well inside the ring.
    matrix = qr_matrix(image_sha256)
    quiet = 2
    modules = len(matrix) + 2 * quiet
    module = max(px(QR_MM) // modules, 1)
    side = module * modules
    left, top = round(c - px(40) - side / 2), round(c - side / 2)
    draw.rectangle((left, top, left + side - 1, top + side - 1), fill=WHITE)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                x0, y0 = left + (x + quiet) * module, top + (y + quiet) * module
                draw.rectangle((x0, y0, x0 + module - 1, y0 + module - 1), fill=INK)
    caption = _font("regular", px(2.4))
    draw.text((c + px(40), c - px(4)), "image sha256", font=caption, fill=MUTED, anchor="mm")
    mono = _font("mono", px(2.8))
    draw.text((c + px(40), c + px(0.5)), image_sha256[:16], font=mono, fill=INK, anchor="mm")
    draw.text((c + px(40), c + px(4.5)), image_sha256[16:32] + "…", font=mono, fill=INK, anchor="mm")

    out = io.BytesIO()
    # No optimize=True: it triples the time for 3 % fewer bytes.
    img.save(out, "PNG", dpi=(DPI, DPI))
    return out.getvalue()


def label_for(disc: Disc, date_range: str) -> bytes:
    owner = disc.owner
    return disc_label_png(
        subscriber=owner.get_full_name() or owner.get_username(),
        number=disc.number,
        date_range=date_range,
        volume_id=disc.volume_id,
        image_sha256=disc.image_sha256,
        medium=disc.medium,
    )
