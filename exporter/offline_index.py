"""``index.html``: the disc's offline catalog, for people.

Rendered from the manifest document (docs/disc-layout.md) with the Django
template ``disc/index.html``, autoescaped, and its per-item rows formatted
here with the same escaping: every name and caption on it came from a user.
The page works from the disc in any browser, with no network and no
JavaScript: the style is inline, every link is relative and percent-encoded
(``#``, ``?``, ``%``, spaces and any Unicode in a name would otherwise break
a ``file://`` link), and the thumbnails are the disc's own tag files under
``index/`` (see :mod:`exporter.thumbnails`).

The same document always gives the same bytes: no clock, no locale.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from exporter.layout import DiscFile
from exporter.thumbnails import PLACEHOLDER_PATH

INDEX_HTML = "index.html"
TEMPLATE = "disc/index.html"
# The first cards load at once; the rest when scrolled to (no script needed).
EAGER_IMAGES = 24
_DIGITS = re.compile(r"(\d+)")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MEDIA = {"cd": "CD-R", "dvd": "DVD±R", "dvd-dl": "DVD+R DL", "bd": "BD-R"}
# On every disc of layout 1 (the README is written after the index).
DESCRIBED_BY = (("README.txt", "how to check and restore it"), ("manifest.json", "for machines"))


def href(path: str) -> str:
    """A relative URL for a disc path: every byte outside unreserved ASCII
    percent-encoded (UTF-8), ``/`` kept."""
    return quote(path, safe="/")


@functools.lru_cache(maxsize=1 << 16)
def natural(text: str) -> tuple:
    """Sort key: ``IMG 9`` before ``IMG 10``, case folded, ties broken by the
    exact text.  (Cached: a page sorts the same names several times.)"""
    parts = _DIGITS.split(text.casefold())
    return (tuple([(int(p), "") if i % 2 else (-1, p) for i, p in enumerate(parts)]), text)


def _instant(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def day(value: str | None) -> str:
    moment = _instant(value)
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}" if moment else ""


def moment_text(value: str | None) -> str:
    """``2 May 2024, 19:44``: the wall-clock time where it was taken."""
    moment = _instant(value)
    return f"{day(value)}, {moment:%H:%M}" if moment else ""


def day_range(first: str | None, last: str | None) -> str:
    if not first:
        return ""
    a, b = day(first), day(last or first)
    return a if a == b else f"{a} – {b}"


def size_text(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return ""


def kind_text(name: str, content_type: str | None) -> str:
    """``JPEG``, ``MP4``: what the file is, from its name or type."""
    stem, dot, ext = name.rpartition(".")
    if dot and stem and 0 < len(ext) <= 5 and ext.isalnum():
        return ext.upper()
    major = (content_type or "").partition("/")[0]
    return major.capitalize() if major and major != "application" else "File"


def album_text(albums: Sequence[Sequence[str]]) -> str:
    return "; ".join(" › ".join(a) for a in albums if a) if albums else ""


# --- albums --------------------------------------------------------------------------


@dataclass
class _Album:
    path: tuple[str, ...]
    cards: list[dict] = field(default_factory=list)
    total: int = 0


def _sort_key(card: dict) -> tuple:
    moment = card["moment"]
    return (moment is None, moment.timestamp() if moment else 0, natural(card["name"]), card["href"])


def _albums(files: Sequence[Mapping[str, Any]]) -> list[dict]:
    """The albums as one list in reading order (each after its parent), each
    with its depth, crumbs and cards; an item appears in each of its albums,
    linked to the copy in that album's folder."""
    nodes: dict[tuple[str, ...], _Album] = {}
    for number, record in enumerate(files):
        paths = [record["path"], *record.get("links", [])]
        albums = [tuple(a) for a in record.get("albums") or []] or [()]
        for index, album in enumerate(albums):
            for depth in range(len(album) + 1):
                nodes.setdefault(album[:depth], _Album(album[:depth]))
            nodes[album].cards.append(_card(record, paths[index] if index < len(paths) else paths[0], number))
    for path, node in nodes.items():
        node.cards.sort(key=_sort_key)
        # An album counts its sub-albums' items; loose items count alone.
        for depth in range(1 if path else 0, len(path) + 1):
            nodes[path[:depth]].total += len(node.cards)
    # Albums by name, each followed by its sub-albums; loose items last.
    order = sorted(nodes, key=lambda p: (not p, [natural(n) for n in p]))
    result = []
    for anchor, path in enumerate(order):
        node = nodes[path]
        if not path and not node.cards:
            continue
        result.append(
            {
                "anchor": f"album-{anchor}",
                "name": path[-1] if path else "Not in an album",
                "crumbs": list(path[:-1]),
                "depth": min(len(path), 6),
                "heading": min(len(path) + 2, 6),
                "cards": node.cards,
                "total": node.total,
            }
        )
    eager = EAGER_IMAGES
    for album in result:
        for card in album["cards"]:
            card["lazy"] = eager <= 0
            eager -= 1
    return result


def _toc(albums: list[dict]) -> list[list[dict]]:
    """The albums grouped by top-level album, so no group splits across columns."""
    groups: list[list[dict]] = []
    for album in albums:
        if album["depth"] <= 1 or not groups:
            groups.append([])
        groups[-1].append(album)
    return groups


def _card(record: Mapping[str, Any], path: str, number: int) -> dict:
    thumbnail = record.get("thumbnail")
    name = record.get("original_name") or path.rsplit("/", 1)[-1]
    return {
        "name": name,
        "href": href(path),
        "path": path,
        "img": href(thumbnail or PLACEHOLDER_PATH),
        "placeholder": not thumbnail,
        "kind": kind_text(name, record.get("content_type")),
        "title": record.get("title") or "",
        "caption": record.get("caption") or "",
        "moment": _instant(record.get("captured_at")),
        "captured": moment_text(record.get("captured_at")),
        "captured_iso": record.get("captured_at") or "",
        "size": size_text(record.get("size")),
        "version": record.get("version"),
        "new_version": record.get("change") == "new_version",
        "previous_disc": record.get("previous_disc"),
    }


# --- changes and catalog -----------------------------------------------------------


def _changes(document: Mapping[str, Any], by_item: Mapping[str, Mapping], present: Collection[str]) -> dict:
    changes = document.get("changes") or {}

    def named(item: str) -> dict:
        record = by_item.get(item) or {}
        return {"name": record.get("original_name") or item, "href": href(record["path"]) if record else ""}

    added = sorted((named(item) for item in changes.get("added", [])), key=lambda c: (natural(c["name"]), c["href"]))
    new_versions = [
        {**named(c["item"]), "version": c.get("version"), "previous_disc": c.get("previous_disc")}
        for c in changes.get("new_version", [])
    ]
    edited = []
    for change in changes.get("edited", []):
        sidecar = change.get("sidecar")
        edited.append(
            {
                "name": change.get("original_name") or change.get("item"),
                "disc": change.get("disc"),
                "title": change.get("title") or "",
                "caption": change.get("caption") or "",
                "captured": moment_text(change.get("captured_at")),
                "albums": album_text(change.get("albums") or []),
                "sidecar": href(sidecar) if sidecar and sidecar in present else "",
            }
        )
    deleted = [
        {"name": d.get("original_name") or d.get("item"), "last_disc": d.get("last_disc"), "version": d.get("version")}
        for d in changes.get("deleted", [])
    ]
    for group in (new_versions, edited, deleted):
        group.sort(key=lambda c: natural(c["name"]))
    held = sorted(
        (
            {"name": h.get("original_name") or h.get("item") or "", "reason": h.get("reason")}
            for h in document.get("held_back", [])
        ),
        key=lambda h: natural(h["name"]),
    )
    return {
        "added": added,
        "new_versions": new_versions,
        "edited": edited,
        "deleted": deleted,
        "held_back": held,
        "any": bool(added or new_versions or edited or deleted or held),
    }


def _catalog(document: Mapping[str, Any], number: int, present: Collection[str]) -> dict:
    rows = []
    discs: dict[int, int] = {}
    for item, place in (document.get("catalog") or {}).items():
        disc, path = place.get("disc"), place.get("path")
        here = disc == number and path in present and not place.get("deleted")
        rows.append(
            {
                "name": place.get("original_name") or item,
                "albums": album_text(place.get("albums") or []),
                "disc": disc,
                "here": disc == number,
                "version": place.get("version"),
                "deleted": bool(place.get("deleted")),
                "href": href(path) if here else "",
            }
        )
        if not place.get("deleted") and disc is not None:
            discs[disc] = discs.get(disc, 0) + 1
    rows.sort(key=lambda r: (r["disc"] or 0, natural(r["albums"]), natural(r["name"])))
    live = sum(1 for r in rows if not r["deleted"])
    return {
        "rows": rows,
        "live": live,
        "deleted": len(rows) - live,
        "per_disc": [{"disc": d, "count": c, "here": d == number} for d, c in sorted(discs.items())],
    }


# --- the rows --------------------------------------------------------------------------
#
# Each item has three rows on the page (its card, its line under "Added" and
# its catalog row): 16,000 on a BD of photos.  They are formatted here, each
# row in one piece of markup, because Django's template engine took 0.5 s of
# the planner's time for them (the planner renders the page to measure the
# image).  The escaping is the template's own (django.utils.html.escape is
# html.escape), so the bytes are those the template loops made; the page
# around them stays in the template.


def _e(value: object) -> str:
    return html.escape(str(value))


def _card_html(card: Mapping[str, Any]) -> str:
    kind = _e(card["kind"])
    link = _e(card["href"])
    out = [
        f'<li class="card"><a class="thumb" href="{link}" tabindex="-1"><img src="{_e(card["img"])}"'
        f' alt="{_e(card["title"] or card["name"])}"'
    ]
    if card["placeholder"]:
        out.append(' class="ph"')
    if card["lazy"]:
        out.append(' loading="lazy"')
    out.append(' decoding="async">')
    if card["placeholder"]:
        out.append(f'<span class="kind">{kind}</span>')
    out.append(f'</a><div class="meta"><a class="name" href="{link}">{_e(card["name"])}</a>')
    if card["title"]:
        out.append(f'<p class="title">{_e(card["title"])}</p>')
    if card["caption"]:
        out.append(f'<p class="caption">{_e(card["caption"])}</p>')
    if card["captured"]:
        out.append(f'<time class="sub" datetime="{_e(card["captured_iso"])}">{_e(card["captured"])}</time>')
    out.append(f'<span class="sub">{kind} · {_e(card["size"])}</span>')
    if card["new_version"]:
        out.append(f'<span class="badge">Version {_e(card["version"])}')
        if card["previous_disc"]:
            out.append(f" · replaces disc {_e(card['previous_disc'])}")
        out.append("</span>")
    out.append("</div></li>\n")
    return "".join(out)


def _added_html(change: Mapping[str, Any]) -> str:
    return f'<li><a href="{_e(change["href"])}">{_e(change["name"])}</a></li>'


def _catalog_html(row: Mapping[str, Any]) -> str:
    out = ['<tr class="gone">' if row["deleted"] else '<tr class="here">' if row["here"] else "<tr>"]
    name = _e(row["name"])
    out.append(f'<td class="w"><a href="{_e(row["href"])}">{name}</a>' if row["href"] else f'<td class="w">{name}')
    out.append(f'</td><td class="w">{_e(row["albums"])}</td><td class="n">')
    if row["deleted"]:
        out.append("deleted")
        if row["disc"]:
            out.append(f'<span class="v">was on {_e(row["disc"])}</span>')
    elif row["disc"]:
        out.append(f'{_e(row["disc"])}<span class="v">version {_e(row["version"])}</span>')
    else:
        out.append("—")
    out.append("</td></tr>\n")
    return "".join(out)


def _joined(render, rows) -> SafeString:
    return mark_safe("".join(map(render, rows)))  # every value escaped by the row


# --- the page ------------------------------------------------------------------------


def context(document: Mapping[str, Any], present: Collection[str] = ()) -> dict[str, Any]:
    """What the template needs, all text already formatted."""
    disc = document.get("disc") or {}
    files = list(document.get("files") or [])
    present = set(present) | {p for f in files for p in [f["path"], *f.get("links", [])]}
    by_item = {f["item"]: f for f in files}
    albums = _albums(files)
    for album in albums:
        album["cards_html"] = _joined(_card_html, album["cards"])
    captured = disc.get("captured") or {}
    number = disc.get("number")
    changes = _changes(document, by_item, present)
    changes["added_html"] = _joined(_added_html, changes["added"])
    catalog = _catalog(document, number, present)
    catalog["rows_html"] = _joined(_catalog_html, catalog["rows"])
    return {
        "disc": disc,
        "number": number,
        "subscriber": disc.get("subscriber") or "",
        "series": disc.get("series") or "",
        "medium": MEDIA.get(disc.get("medium"), disc.get("medium") or ""),
        "planned": day(disc.get("planned_at")),
        "planned_iso": disc.get("planned_at") or "",
        "date_range": day_range(captured.get("first"), captured.get("last")),
        "file_count": len(files),
        "total_size": size_text(sum(f.get("size") or 0 for f in files)),
        "albums": albums,
        "toc": _toc(albums),
        "changes": changes,
        "catalog": catalog,
        "described_by": [{"href": href(p), "name": p, "what": w} for p, w in DESCRIBED_BY],
    }


def render_index(document: Mapping[str, Any], present: Collection[str] = ()) -> bytes:
    """``index.html`` for a manifest document.  ``present``: the disc's paths,
    so the page links only to files that are there."""
    return render_to_string(TEMPLATE, context(document, present)).encode("utf-8")


def index_files(document: Mapping[str, Any], before: Sequence[DiscFile]) -> list[DiscFile]:
    """``index.html`` for the manifest ``document``; ``before``: the disc's
    files so far (the page links only to files that are there)."""
    present = {p for f in before for p in f.all_paths}
    return [DiscFile.from_bytes(INDEX_HTML, render_index(document, present))]
