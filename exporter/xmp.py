"""XMP sidecars: ``<file name>.xmp`` next to each original on a disc.

digiKam, darktable, Lightroom and exiftool read a sidecar named after the
file it describes.  It carries the title, the caption, the capture date with
its UTC offset and the item's albums as keywords: flat (``dc:subject``),
hierarchical for Lightroom (``lr:hierarchicalSubject``, ``Travel|Roma``) and
for digiKam (``digiKam:TagsList``, ``Travel/Roma``).

Every path of an item (one per album) gets its own sidecar, so each album
folder is complete on its own; the bytes are stored once, as hard links.
The XML is written by hand with strict escaping, so the bytes depend only on
the item's metadata (ElementTree's namespace prefixes are process-global).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from exporter import names

SUFFIX = ".xmp"

NAMESPACES = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "digiKam": "http://www.digikam.org/ns/1.0/",
}

# XML 1.0 §2.2: characters outside Char cannot appear at all, not even as
# character references.  Each becomes U+FFFD; manifest.json keeps the exact
# text.
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Separators of the hierarchical keyword formats, inside one album name.
_LR_SEPARATOR = "|"
_DIGIKAM_SEPARATOR = "/"
_SEPARATOR_TWINS = {"|": "\uff5c", "/": "\uff0f"}  # fullwidth look-alikes


def _text(value: str) -> str:
    """Character data, escaped for an element's content."""
    value = _NOT_XML_CHAR.sub("\ufffd", value)
    # A literal CR would be read back as LF (XML end-of-line handling).
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _keyword(name: str, separator: str) -> str:
    return name.replace(separator, _SEPARATOR_TWINS[separator])


def _lang_alt(tag: str, value: str) -> list[str]:
    return [
        f"   <{tag}>",
        "    <rdf:Alt>",
        f'     <rdf:li xml:lang="x-default">{_text(value)}</rdf:li>',
        "    </rdf:Alt>",
        f"   </{tag}>",
    ]


def _array(tag: str, kind: str, values: Iterable[str]) -> list[str]:
    values = list(values)
    if not values:
        return []
    return [
        f"   <{tag}>",
        f"    <rdf:{kind}>",
        *(f"     <rdf:li>{_text(v)}</rdf:li>" for v in values),
        f"    </rdf:{kind}>",
        f"   </{tag}>",
    ]


def sidecar_xml(metadata: Mapping[str, Any]) -> bytes:
    """The sidecar of one item, from its disc snapshot (see
    :func:`exporter.planning.snapshot`).  Same snapshot, same bytes."""
    albums = [tuple(a) for a in metadata.get("albums") or []]
    subjects = sorted({name for album in albums for name in album})
    lines = [
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>',
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Discsub">',
        f' <rdf:RDF xmlns:rdf="{NAMESPACES["rdf"]}">',
        '  <rdf:Description rdf:about=""',
        *(f'    xmlns:{prefix}="{uri}"' for prefix, uri in NAMESPACES.items() if prefix not in ("x", "rdf")),
        "   >",
    ]
    if metadata.get("title"):
        lines += _lang_alt("dc:title", metadata["title"])
    if metadata.get("caption"):
        lines += _lang_alt("dc:description", metadata["caption"])
    lines += _array("dc:subject", "Bag", subjects)
    lines += _array(
        "lr:hierarchicalSubject",
        "Bag",
        sorted(_LR_SEPARATOR.join(_keyword(n, _LR_SEPARATOR) for n in album) for album in albums if album),
    )
    lines += _array(
        "digiKam:TagsList",
        "Seq",
        sorted(_DIGIKAM_SEPARATOR.join(_keyword(n, _DIGIKAM_SEPARATOR) for n in album) for album in albums if album),
    )
    captured = metadata.get("captured_at")
    if captured:
        # ISO 8601 with the UTC offset, as the XMP date type wants.
        for tag in ("xmp:CreateDate", "photoshop:DateCreated", "exif:DateTimeOriginal"):
            lines.append(f"   <{tag}>{_text(captured)}</{tag}>")
    if metadata.get("original_name"):
        # The name as uploaded: the disc may have had to rename the file.
        lines.append(f"   <xmpMM:PreservedFileName>{_text(metadata['original_name'])}</xmpMM:PreservedFileName>")
    lines += ["  </rdf:Description>", " </rdf:RDF>", "</x:xmpmeta>", '<?xpacket end="w"?>', ""]
    return "\n".join(lines).encode("utf-8")


def sidecar_paths(paths_per_item: Sequence[Sequence[str]], occupied: Iterable[str]) -> list[list[str]]:
    """One sidecar path per disc path: ``path + ".xmp"``.

    ``occupied`` are the other paths of the disc (files and folders).  Where
    ``<name>.xmp`` is taken (a user's own ``IMG_1.JPG.xmp`` next to
    ``IMG_1.JPG``, case- and normalisation-insensitively) or too long for
    the disc, the sidecar yields: ``<name> (2).xmp``, or a shortened name.
    ``manifest.json`` records where every sidecar went.  Deterministic for
    the same input.
    """
    taken = {names.fold(p) for p in occupied}
    result = []
    for paths in paths_per_item:
        sidecars = []
        for path in paths:
            folder, _, name = path.rpartition("/")
            n = 1
            while True:
                suffix = SUFFIX if n == 1 else f" ({n}){SUFFIX}"
                candidate = f"{folder}/{names._shorten(name, name, names.fits_everywhere, suffix, split=False)}"
                if names.fold(candidate) not in taken:
                    break
                n += 1
            taken.add(names.fold(candidate))
            sidecars.append(candidate)
        result.append(sidecars)
    return result


def folders_of(paths: Iterable[str]) -> set[str]:
    """Every folder above ``paths``."""
    folders = set()
    for path in paths:
        parts = path.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return folders
