"""index.html: the disc's offline catalog, in a real browser, from a real disc."""

import hashlib
import io
import json
import os
import random
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from django.core.files.storage import default_storage
from PIL import Image, ImageDraw

from exporter import build, deletion, library, offline_index, thumbnails
from exporter.models import DiscStatus
from exporter.planning import plan_next_disc
from tests.browser import SHOTS, chromium_browser
from tests.factories import add_file
from tests.tools import require_tool

pytestmark = pytest.mark.django_db


# --- the page, without a browser ----------------------------------------------------


def document(files, **extra) -> dict:
    return {
        "schema": "discsub-manifest",
        "schema_version": 1,
        "disc": {
            "number": 2,
            "series": "discsub-7",
            "subscriber": "Dana <b>Demo</b>",
            "medium": "dvd",
            "planned_at": "2026-11-26T07:02:11+00:00",
            "captured": {"first": "2024-05-02T19:44:10+02:00", "last": "2024-06-01T08:00:00+00:00"},
        },
        "files": files,
        "changes": {"added": [f["item"] for f in files], "new_version": [], "edited": [], "deleted": []},
        "held_back": [],
        "catalog": {
            f["item"]: {
                "disc": 2,
                "version": 1,
                "path": f["path"],
                "original_name": f["original_name"],
                "albums": f["albums"],
                "deleted": False,
            }
            for f in files
        },
        **extra,
    }


def file_record(n: int, name: str, albums=(("Travel", "Roma"),), caption="", thumbnail=True) -> dict:
    item = f"00000000-0000-4000-8000-{n:012d}"
    paths = ["data/" + "/".join([*album, name]) for album in albums] or [f"data/{name}"]
    return {
        "item": item,
        "version": 1,
        "change": "added",
        "previous_disc": None,
        "path": paths[0],
        "links": paths[1:],
        "albums": [list(a) for a in albums],
        "thumbnail": f"index/thumbs/{item}-v1.jpg" if thumbnail else None,
        "original_name": name,
        "size": 2_811_234,
        "sha256": "0" * 64,
        "content_type": "image/jpeg",
        "title": "",
        "caption": caption,
        "captured_at": "2024-05-02T19:44:10+02:00",
        "uploaded_at": "2024-05-03T08:00:00+00:00",
    }


def test_hostile_text_is_escaped_and_links_are_percent_encoded():
    files = [
        file_record(1, "a b#c?d%20e.jpg", caption='<img src=x onerror="alert(1)"> & co'),
        file_record(2, "Ｆｕｌｌ ｗｉｄｔｈ.jpg", albums=(("Été", "<script>"),)),
        file_record(3, "clip.mp4", albums=(), thumbnail=False),
    ]
    html = offline_index.render_index(document(files)).decode("utf-8")
    assert "<img src=x" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; co" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Dana &lt;b&gt;Demo&lt;/b&gt;" in html
    assert 'href="data/Travel/Roma/a%20b%23c%3Fd%2520e.jpg"' in html
    assert 'href="data/%C3%89t%C3%A9/%3Cscript%3E/%EF%BC%A6%EF%BD%95%EF%BD%8C%EF%BD%8C' in html
    assert 'src="index/placeholder.svg"' in html
    # Nothing on the page reaches for the network or runs a script.
    assert "<script" not in html.lower() and "http://" not in html and "https://" not in html


def test_an_item_in_two_albums_links_to_its_copy_in_each():
    record = file_record(1, "IMG_1.JPG", albums=(("Travel", "Roma"), ("Best of",)))
    html = offline_index.render_index(document([record])).decode()
    assert html.count('href="data/Travel/Roma/IMG_1.JPG"') >= 2  # thumbnail and name
    assert html.count('href="data/Best%20of/IMG_1.JPG"') >= 2


def test_the_same_manifest_always_gives_the_same_page():
    files = [file_record(n, f"IMG_{n}.JPG") for n in range(30)]
    assert offline_index.render_index(document(files)) == offline_index.render_index(document(files))


def every_kind_of_row() -> dict:
    """A page with every branch of every row: cards with and without a title,
    caption, date or thumbnail, a new version, lazy images; each kind of
    change; catalog rows here, on an earlier disc, deleted, never on a disc;
    hostile text everywhere."""
    files = []
    for n in range(40):
        name = ["IMG_{n}.JPG", "a b#c?d%20e {n}.jpg", "<b>{n}</b>'\".mp4", "Été {n}.heic"][n % 4].format(n=n)
        albums = [(("Travel", "Roma"),), (("Été", "<script>"), ("Best of",)), (), (("A & B",),)][n % 4]
        record = file_record(n, name, albums=albums, caption=["", "Caption & <i>it</i>"][n % 2], thumbnail=n % 3 > 0)
        record["title"] = ["", "Title 'quoted'"][n % 5 == 0]
        record["captured_at"] = [None, "2024-05-02T19:44:10+02:00", "not a date"][n % 3]
        if n % 7 == 0:
            record.update(change="new_version", version=3, previous_disc=[None, 1][n % 2])
        files.append(record)
    page = document(files)
    page["changes"].update(
        new_version=[{"item": f["item"], "version": 3, "previous_disc": f["previous_disc"]} for f in files[::7]],
        edited=[
            {
                "item": "e1",
                "original_name": "edited <1>.jpg",
                "disc": 1,
                "title": "T",
                "caption": "C & c",
                "captured_at": "2023-01-01T00:00:00+00:00",
                "albums": [["X", "Y"]],
                "sidecar": files[0]["path"] + ".xmp",
            },
            {"item": "e2", "original_name": "", "disc": None},
        ],
        deleted=[{"item": "d1", "original_name": "gone.jpg", "last_disc": 1, "version": 2}, {"item": "d2"}],
    )
    page["held_back"] = [{"item": "h1", "original_name": "bad.jpg", "reason": "checksum <mismatch>"}, {"item": "h2"}]
    page["catalog"].update(
        {
            "c1": {
                "disc": 1,
                "version": 2,
                "path": "data/old.jpg",
                "original_name": "old & <gold>.jpg",
                "albums": [["Z"]],
            },
            "c2": {"disc": 1, "version": 1, "deleted": True, "original_name": "deleted.jpg"},
            "c3": {"disc": None, "deleted": True, "original_name": "never on a disc.jpg"},
            "c4": {"disc": None, "version": None, "original_name": ""},
        }
    )
    return page


# Layout 1's index.html for that page.  Discs already shipped are rebuilt from
# their manifests years later and must come out byte-identical (DESIGN §2.6):
# a change to this page's bytes belongs in a new layout version, not here.
LAYOUT_1_PAGE_SHA256 = "88d6943f8b9e519b398556d491253835f8a0f46b908bb68b8d70f5a552bd66a4"


def test_the_page_of_layout_1_keeps_its_bytes():
    page = offline_index.render_index(every_kind_of_row())
    assert hashlib.sha256(page).hexdigest() == LAYOUT_1_PAGE_SHA256


def test_an_index_of_two_thousand_items_is_quick_and_compact():
    files = [
        file_record(n, f"IMG_{n:05d}.JPG", albums=((f"Album {n % 40}", f"Part {n % 3}"),), caption="Caption " * 3)
        for n in range(2000)
    ]
    started = time.perf_counter()
    html = offline_index.render_index(document(files))
    elapsed = time.perf_counter() - started
    assert elapsed < 5, f"{elapsed:.1f} s"
    assert len(html) < 3_000_000, f"{len(html):,} bytes"
    assert html.count(b'class="card"') == 2000


# --- a real disc, in a real browser -----------------------------------------------------


def photo(seed: int, width: int, height: int, orientation: int | None = None) -> bytes:
    """A small landscape-like picture with an EXIF date, so a screenshot shows
    something real.  With orientation 6 the pixels are stored turned, as a
    camera held upright stores them: only the EXIF tag makes them upright."""
    rnd = random.Random(seed)
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    top = (rnd.randint(40, 120), rnd.randint(90, 170), rnd.randint(170, 240))
    bottom = (rnd.randint(200, 255), rnd.randint(150, 220), rnd.randint(100, 180))
    for y in range(height):
        t = y / height
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    draw.ellipse([width * 0.62, height * 0.14, width * 0.62 + height * 0.16, height * 0.30], fill=(255, 240, 200))
    for layer in range(3):
        base = height * (0.55 + 0.12 * layer)
        ridge = [(x, base - rnd.randint(0, int(height * 0.15))) for x in range(0, width + 40, 40)]
        draw.polygon([(0, height), *ridge, (width, height)], fill=(rnd.randint(30, 90), rnd.randint(80, 140), 60))
    exif = Image.Exif()
    month, day, hour = 1 + seed % 12, 1 + seed * 3 % 28, 8 + seed % 12
    exif.get_ifd(0x8769)[0x9003] = f"2024:{month:02d}:{day:02d} {hour:02d}:{seed % 60:02d}:00"
    if orientation == 6:
        img = img.transpose(Image.Transpose.ROTATE_90)
        exif[0x0112] = orientation
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


def library_with_hostile_names(owner):
    roma = library.ensure_album_path(owner, ["Travel", "Roma"])
    lisboa = library.ensure_album_path(owner, ["Travel", "Lisboa 2024"])
    party = library.ensure_album_path(owner, ["Family", "Birthdays", "Mía turns 5 🎉"])
    odd = library.ensure_album_path(owner, ["100% #odd? <names>"])
    best = library.ensure_album_path(owner, ["Best of"])
    items = {
        "colosseum": add_file(
            owner,
            "Colosseum at dusk.jpg",
            photo(1, 640, 480),
            albums=[roma, best],
            caption="Colosseum at dusk, with the crowds finally gone",
        ),
        "turned": add_file(
            owner, "IMG_0002.JPG", photo(2, 360, 480, orientation=6), albums=[roma], title="Turned camera"
        ),
        "tram": add_file(owner, "tram 28 #1?.jpg", photo(3, 640, 360), albums=[lisboa]),
        "cafe": add_file(owner, "Cafe\u0301 100%.jpg", photo(4, 500, 500), albums=[lisboa]),
        "wide": add_file(
            owner,
            "Ｆｕｌｌｗｉｄｔｈ 写真.jpg",
            photo(5, 640, 420),
            albums=[party],
            caption="<script>alert('caption')</script> & cake",
        ),
        "clip": add_file(owner, "candles.mp4", b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000), albums=[party]),
        "broken": add_file(owner, "half a photo.jpg", photo(6, 400, 300)[:900], albums=[odd]),
        "hash": add_file(owner, "#1 ?.jpg", photo(7, 400, 600), albums=[odd]),
        "loose": add_file(owner, "loose one.jpg", photo(8, 500, 400)),
        "edited": add_file(owner, "to be edited.jpg", photo(9, 480, 320), albums=[best]),
        "doomed": add_file(owner, "to be deleted.jpg", photo(10, 480, 320), albums=[best]),
    }
    return items


def manifest_of(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text("utf-8"))


def built(owner):
    disc = build.build_disc(plan_next_disc(owner, allow_partial=True).pk)
    assert disc.status == DiscStatus.VERIFIED, disc.last_error
    assert disc.image_size == disc.planned_sectors * 2048
    return disc


def extract(disc, out: Path) -> Path:
    seven = require_tool("7z", "p7zip-full")
    result = subprocess.run([seven, "x", "-y", f"-o{out}", str(build.image_path(disc))], capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def open_page(chromium, url: str, *, width: int = 1280, javascript: bool = True):
    context = chromium.new_context(viewport={"width": width, "height": 900}, java_script_enabled=javascript)
    page = context.new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url, wait_until="load")
    return context, page, requests


def load_every_image(page) -> list[dict]:
    """Scroll each image into view (lazy ones load then) and wait, with a deadline."""
    images = page.locator("img")
    for n in range(images.count()):
        images.nth(n).scroll_into_view_if_needed()
    deadline = time.monotonic() + 15
    while True:
        states = page.eval_on_selector_all(
            "img", "els => els.map(e => ({src: e.getAttribute('src'), done: e.complete, width: e.naturalWidth}))"
        )
        if all(s["done"] for s in states) or time.monotonic() > deadline:
            return states
        time.sleep(0.05)


def assert_every_link_resolves(page, root: Path) -> int:
    links = page.eval_on_selector_all("a[href]", "els => els.map(e => [e.getAttribute('href'), e.href])")
    assert links
    for raw, absolute in links:
        if raw.startswith("#"):
            assert page.locator(f"[id='{raw[1:]}']").count() == 1, raw
            continue
        parts = urlsplit(absolute)
        assert parts.scheme == "file" and not parts.query and not parts.fragment, (raw, absolute)
        target = Path(unquote(parts.path))
        assert target.is_file(), f"{raw} -> {target}"
        assert root in target.parents, f"{raw} leaves the disc"
    return len(links)


def test_the_index_of_a_real_disc_works_offline_in_a_browser(alice, tmp_path):
    items = library_with_hostile_names(alice)
    first = built(alice)
    # Disc 2 carries every kind of change, and something held back.
    library.replace_bytes(items["colosseum"], io.BytesIO(photo(11, 640, 480)))
    library.edit_metadata(items["edited"], caption="Now with a caption", title="Edited")
    deletion.delete_now(items["doomed"])
    newcomer = add_file(alice, "new on disc 2.jpg", photo(12, 600, 400), albums=[items["edited"].albums.first()])
    spoiled = add_file(alice, "spoiled.jpg", photo(13, 300, 200))
    planned = plan_next_disc(alice, allow_partial=True)
    with default_storage.open(spoiled.current_version.storage_name, "wb") as fh:
        fh.write(b"changed after upload")
    second = build.build_disc(planned.pk)
    assert second.status == DiscStatus.VERIFIED, second.last_error
    root1, root = extract(first, tmp_path / "disc1"), extract(second, tmp_path / "disc2")

    manifest = manifest_of(root)
    thumb = {f["original_name"]: f["thumbnail"] for f in manifest["files"]}["new on disc 2.jpg"]
    assert thumb and (root / thumb).is_file()
    assert "<script>alert" not in (root1 / "index.html").read_text("utf-8")
    SHOTS.mkdir(parents=True, exist_ok=True)

    with chromium_browser() as chromium:
        for width, name in ((1280, "desktop"), (390, "phone")):
            context, page, requests = open_page(chromium, (root / "index.html").as_uri(), width=width)
            states = load_every_image(page)
            assert states and all(s["width"] > 0 for s in states), [s for s in states if not s["width"]]
            assert assert_every_link_resolves(page, root) > 10
            assert all(url.startswith("file://") for url in requests), requests
            # Nothing sticks out sideways on a phone.
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(SHOTS / f"disc2-{name}.png"))
            page.screenshot(path=str(SHOTS / f"disc2-{name}-full.png"), full_page=True)
            context.close()

        # Disc 1 without JavaScript: thumbnails for every readable photo, placeholders for the rest.
        context, page, _ = open_page(chromium, (root1 / "index.html").as_uri(), javascript=False)
        states = load_every_image(page)
        assert all(s["width"] > 0 for s in states)
        sources = [s["src"] for s in states]
        assert sources.count("index/placeholder.svg") == 2  # the video and the broken photo
        assert len(sources) == 12  # 11 items, one of them in two albums
        body = page.inner_text("body")
        for shown in (
            "Colosseum at dusk.jpg",
            "Ｆｕｌｌｗｉｄｔｈ 写真.jpg",
            "<script>alert('caption')</script> & cake",
            "Mía turns 5 🎉",
            "100% #odd? <names>",
            "Not in an album",
            "Disc 1 of the series",
        ):
            assert shown in body, shown
        assert_every_link_resolves(page, root1)
        page.screenshot(path=str(SHOTS / "disc1-desktop-nojs-full.png"), full_page=True)
        context.close()

        # Disc 2 without JavaScript still shows everything: changes, held back, catalog.
        context, page, _ = open_page(chromium, (root / "index.html").as_uri(), javascript=False)
        body = page.inner_text("body")
        assert "Version 2 · replaces disc 1" in body
        assert "Now with a caption" in body and "to be deleted.jpg" in body
        assert "spoiled.jpg" in page.inner_text(".held")
        rows = page.locator("#catalog tbody tr")
        assert rows.count() == len(manifest["catalog"]) == 12  # disc 1's 11 and the newcomer
        # tram 28 is on disc 1: named, not linked; the newcomer is here: linked.
        assert page.locator("#catalog tbody tr", has_text="tram 28 #1?.jpg").locator("a").count() == 0
        assert page.locator("#catalog tbody tr", has_text=newcomer.original_name).locator("a").count() == 1
        context.close()


def test_an_index_of_two_thousand_items_opens_quickly(tmp_path):
    files = [
        file_record(n, f"IMG_{n:05d}.JPG", albums=((f"Album {n % 40}", f"Part {n % 3}"),), thumbnail=False)
        for n in range(2000)
    ]
    (tmp_path / "index").mkdir()
    (tmp_path / thumbnails.PLACEHOLDER_PATH).write_bytes(thumbnails.PLACEHOLDER_SVG)
    (tmp_path / "index.html").write_bytes(offline_index.render_index(document(files)))
    with chromium_browser() as chromium:
        started = time.perf_counter()
        context, page, _ = open_page(chromium, (tmp_path / "index.html").as_uri())
        elapsed = time.perf_counter() - started
        assert page.locator(".card").count() == 2000
        assert elapsed < 10, f"{elapsed:.1f} s to load"
        context.close()
