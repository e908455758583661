"""Crafted discs: hostile ``manifest.json`` files on discs whose BagIt manifests
(``manifest-sha256.txt``, ``tagmanifest-sha256.txt``) are consistent with them,
as an attacker who writes a whole disc makes them.  Kept as test fixtures for
the restore tool and ``verify_disc`` (tests/exporter/test_crafted_discs.py).

    python -m tests.exporter.crafted_discs DIR     # writes every case as DIR/<case>/ and DIR/<case>.iso

Each case is a folder laid out as docs/disc-layout.md says; :func:`as_iso`
turns one into an image written by the project's own image writer.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

from exporter import iso, names
from exporter.layout import DiscFile

SERIES = "discsub-66"
PHOTO = b"\xff\xd8\xff\xe0 a photo, as far as anybody checks \xff\xd9"
SIDECAR = b"<x:xmpmeta/>"
ALBUM, NAME = "Album", "photo.jpg"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def good(album: str = ALBUM, name: str = NAME) -> tuple[dict, dict[str, bytes]]:
    """A well-formed disc 1 holding one photo and its sidecar: (manifest document, payload)."""
    path = names.assign_disc_paths([names.NameRequest(key=1, folders=(album,), name=name)])[1]
    payload = {path: PHOTO, path + ".xmp": SIDECAR}
    entry = {"item": "item-1", "version": 1, "original_name": name, "albums": [[album]], "path": path}
    entry |= {"links": [], "sidecar": path + ".xmp", "sidecar_links": [], "size": len(PHOTO), "sha256": sha(PHOTO)}
    entry |= {"change": "added", "previous_disc": None, "thumbnail": None, "title": "", "caption": "Hello"}
    catalog = {"item-1": {"disc": 1, "version": 1, "path": path, "original_name": name, "albums": [[album]]}}
    document = {
        "schema": "discsub-manifest",
        "schema_version": 1,
        "disc": {"number": 1, "series": SERIES, "volume_id": "DISCSUB_000066_0001", "layout_version": 2},
        "files": [entry],
        "changes": {"added": ["item-1"], "new_version": [], "edited": [], "deleted": []},
        "held_back": [],
        "catalog": {key: {**value, "deleted": False} for key, value in catalog.items()},
    }
    return document, payload


def encode(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, indent=1).encode()


def write_disc(root: Path, manifest: bytes, payload: dict[str, bytes]) -> Path:
    """The disc folder: the payload, manifest.json and BagIt manifests that agree with both."""
    root.mkdir(parents=True)
    for path, data in payload.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    bag = "".join(f"{sha(data)}  {path}\n" for path, data in sorted(payload.items())).encode()
    (root / "manifest.json").write_bytes(manifest)
    (root / "manifest-sha256.txt").write_bytes(bag)
    tags = f"{sha(bag)}  manifest-sha256.txt\n{sha(manifest)}  manifest.json\n"
    (root / "tagmanifest-sha256.txt").write_text(tags)
    return root


def as_iso(folder: Path, image: Path) -> Path:
    """The folder as an ISO 9660 + Joliet + Rock Ridge + UDF image, by our own image writer."""
    files = [
        DiscFile.from_bytes(p.relative_to(folder).as_posix(), p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]
    iso.write_image(files, image, "CRAFTED", 1_700_000_000)
    return image


# --- the cases: each gives (manifest.json bytes, payload) -------------------------------


def well_formed() -> tuple[bytes, dict]:
    """The twin of every case below, as our discs are."""
    document, payload = good()
    return encode(document), payload


def huge_disc_number() -> tuple[bytes, dict]:
    """The catalog puts an item on disc 10^12: a tool that lists the discs
    "missing" up to it runs out of memory (10.5 GB seen)."""
    document, payload = good()
    document["catalog"]["item-far"] = {"disc": 10**12, "version": 1, "path": "data/far.jpg", "original_name": "f"}
    return encode(document), payload


def deep_nesting() -> tuple[bytes, dict]:
    """100,000 nested lists under a key the reader should ignore."""
    document, payload = good()
    text = json.dumps(document)
    return (text[:-1] + ', "a_key_from_the_future": ' + "[" * 100_000 + "]" * 100_000 + "}").encode(), payload


def files_not_a_list() -> tuple[bytes, dict]:
    """``files`` is a string: nothing to restore, and a tolerant tool said OK."""
    document, payload = good()
    document["files"] = "notalist"
    return encode(document), payload


def payload_not_described() -> tuple[bytes, dict]:
    """A well-formed manifest.json that describes none of the payload."""
    document, payload = good()
    document["files"], document["changes"]["added"], document["catalog"] = [], [], {}
    return encode(document), payload


def manifest_disagrees() -> tuple[bytes, dict]:
    """manifest.json gives the photo another sha256 and size than the bag
    (which matches the bytes): a check of the bag alone says OK."""
    document, payload = good()
    document["files"][0].update(sha256=sha(b"other bytes"), size=11)
    return encode(document), payload


def long_number() -> tuple[bytes, dict]:
    """A version of 100,000 digits (Python 3.8 parses such an int in quadratic time)."""
    document, payload = good()
    return encode(document).replace(b'"version": 1', b'"version": ' + b"9" * 100_000, 1), payload


def open_string() -> tuple[bytes, dict]:
    """A string that never ends, made of escaped quotes (200 KB): a scanner that
    looks for its end again from every quote takes hours."""
    document, payload = good()
    return encode(document)[:-2] + b', "x": "' + b'\\"' * 100_000, payload


def a_million_discs() -> tuple[bytes, dict]:
    """Well-formed: the catalog names disc 1,000,000 (the bound), so 999,999 discs are missing."""
    document, payload = good()
    document["catalog"]["item-far"] = {"disc": 1_000_000, "version": 1, "path": "data/far.jpg", "original_name": "f"}
    return encode(document), payload


def many_problems() -> tuple[bytes, dict]:
    """60,000 entries with unsafe paths: 60,000 different problems to report
    (de-duplicating them in a list took 25 s)."""
    document, payload = good()
    entry = document["files"][0]
    document["files"] += [{**entry, "item": f"evil-{n}", "path": f"../evil-{n}.jpg"} for n in range(60_000)]
    return json.dumps(document, separators=(",", ":")).encode(), payload


def one_name_many_times() -> tuple[bytes, dict]:
    """5,000 items, all "photo.jpg" in the same album and at the same disc path:
    each is restored under a name of its own, "photo (2).jpg" to "photo (5000).jpg"."""
    document, payload = good()
    entry = document["files"][0]
    document["files"] += [{**entry, "item": f"item-{n}", "sidecar": None} for n in range(2, 5001)]
    return encode(document), payload


def bidi_names() -> tuple[bytes, dict]:
    """Well-formed: an album and a file name with a right-to-left override, so
    that "photo<RLO>gpj.exe" reads as "photoexe.jpg".  The disc's own paths
    have U+FFFD there (exporter/names.py)."""
    document, payload = good(album="Holiday \u202egpj.exe", name="photo\u202egpj.exe")
    return encode(document), payload


def swollen_folders(image: Path, depth: int = 7, filler: int = 40 * 1024 * 1024) -> Path:
    """An image (a real one, by our writer) with a chain of ``depth`` nested
    folders beside a ``filler``-byte file, whose ISO 9660 directory records
    then each claim the rest of the image as their folder's data: a reader that
    holds each folder while it reads the next needs ``depth`` times the image."""
    folder = image.with_suffix("")
    manifest, payload = well_formed()
    payload["data/filler.bin"] = bytes(filler)
    deep = "data/" + "/".join(f"d{n}" for n in range(depth)) + "/deep.jpg"
    payload[deep] = PHOTO
    document = json.loads(manifest)
    document["files"].append({**document["files"][0], "item": "item-deep", "path": deep, "sidecar": None})
    write_disc(folder, encode(document), payload)
    as_iso(folder, image)
    size = image.stat().st_size
    with open(image, "r+b") as fh:
        fh.seek(16 * 2048 + 156)
        root = fh.read(34)
        pending = [(int.from_bytes(root[2:6], "little"), int.from_bytes(root[10:14], "little"))]
        while pending:
            lba, length = pending.pop()
            fh.seek(lba * 2048)
            data, pos = fh.read(length), 0
            while pos < len(data):
                n = data[pos]
                if n == 0:
                    pos = (pos // 2048 + 1) * 2048
                    continue
                record = data[pos : pos + n]
                if record[25] & 0x02 and record[33:34] not in (b"\x00", b"\x01"):
                    pending.append((int.from_bytes(record[2:6], "little"), int.from_bytes(record[10:14], "little")))
                    claim = size - int.from_bytes(record[2:6], "little") * 2048
                    fh.seek(lba * 2048 + pos + 10)
                    fh.write(claim.to_bytes(4, "little") + claim.to_bytes(4, "big"))
                pos += n
    return image


REFUSED: dict[str, Callable[[], tuple[bytes, dict]]] = {
    "huge-disc-number": huge_disc_number,
    "deep-nesting": deep_nesting,
    "files-not-a-list": files_not_a_list,
    "payload-not-described": payload_not_described,
    "manifest-disagrees": manifest_disagrees,
    "long-number": long_number,
    "open-string": open_string,
}
WELL_FORMED: dict[str, Callable[[], tuple[bytes, dict]]] = {
    "well-formed": well_formed,
    "a-million-discs": a_million_discs,
    "many-problems": many_problems,
    "one-name-many-times": one_name_many_times,
    "bidi-names": bidi_names,
}


def craft(case: str, root: Path) -> Path:
    """Write the disc folder of ``case`` at ``root``."""
    manifest, payload = {**REFUSED, **WELL_FORMED}[case]()
    return write_disc(root, manifest, payload)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    for case in [*REFUSED, *WELL_FORMED]:
        as_iso(craft(case, out / case), out / f"{case}.iso")
        print(out / case, out / f"{case}.iso")
