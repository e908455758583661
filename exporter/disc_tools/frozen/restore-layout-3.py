#!/usr/bin/env python3
"""Restore Discsub discs into one folder.  Needs Python 3.8+ and nothing else.

    python3 restore.py --into FOLDER [--apply-deletions] [--require-all] [--dry-run] DISC...

Each DISC is a disc folder (a mounted disc, or a disc copied or extracted to
a folder), an ISO image file read from a disc, or the drive itself
(/dev/sr0).  Give the discs of one series in any order, all at once or a few
at a time into the same FOLDER: each run adds what it is given, in disc order.

- An image or a drive is first checked against the sector recovery data
  that discs made since 2026-12 carry after their filesystem.  A damaged
  one (sectors that cannot be read, or were silently altered) is repaired
  by repair.py, beside this file, into FOLDER/.discsub-restore/ and the
  restore reads the repaired image.  What cannot be repaired is named.
- Every file is checked against its sha256 (manifest.json and
  manifest-sha256.txt) while it is copied.  A damaged file is named and not
  restored; you are told how to repair the disc (repair.py with its image,
  or the exact `par2 repair` command for older discs with PAR2 files)
  before trying again.
- Photos land at FOLDER/<album>/<sub-album>/<name> under their original names
  where this computer allows them, else under the disc's safe name.  An item
  in several albums is in each album folder (hard links where possible).
  Each has its XMP sidecar <name>.xmp beside it.
- A newer version replaces the file; the older one is kept in
  FOLDER/Older versions/<album>/<name> (version 1 from disc 1).jpg
- Metadata edits replace the sidecar and move the item to its new albums.
- A file too large for one disc comes in parts (NAME.001, NAME.002 ...) on
  consecutive discs: each part is checked, the parts are joined in order
  and the joined file is checked against the whole file's sha256.  Give
  every disc that holds a part; a missing one is named.
- Deletions are only reported.  With --apply-deletions the item's files are
  moved to FOLDER/Deleted items/<the same path>.  Nothing is ever erased.
- A missing disc ("disc 3 is missing") is reported and the rest restored;
  give it later and run again.  --require-all restores nothing instead.
- --dry-run checks every disc and prints what would be done, writing nothing.
- An interrupted restore (power cut, Ctrl-C) is finished by running the same
  command again: files are written under temporary names and renamed into
  place, FOLDER/.discsub-restore/ keeps a journal, and files already in place
  with the right sha256 are kept.
- Nothing is ever written outside FOLDER, whatever a disc holds: unsafe
  paths and symbolic links (on the disc or in FOLDER) are reported and skipped.
- A disc whose manifest.json does not match its schema (a field of the wrong
  kind, a number or list out of bounds, nesting too deep) is named with the
  field and not used; payload files that manifest.json does not describe are
  named and skipped.

Exit status: 0 when every file was verified and is in place; 1 with one
line per problem otherwise; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import stat
import sys
import tempfile
import time
import unicodedata

SCHEMA = "discsub-manifest"
SCHEMA_VERSION = 1
SECTOR = 2048
BLOCK = 1024 * 1024
# Manifests and other tag files are read whole.  manifest.json carries the catalog
# of the whole series: about 220 bytes an item, so 512 MiB holds a library of
# 1,000,000 items with room for longer names and more albums (~3 GB of memory
# to check it).
SMALL_LIMIT = 512 * 1024 * 1024
STATE_DIR = ".discsub-restore"
JOURNAL = "journal.jsonl"
STAGING = "tmp"
REPAIRED = "repaired"
OLDER = "Older versions"
DELETED = "Deleted items"
WINDOWS = os.name == "nt"
O_BINARY = getattr(os, "O_BINARY", 0)
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_BAG_LINE = re.compile(r"([0-9a-fA-F]{64})[ \t]+\*?(.+)\Z")
_WINDOWS_BAD = set('<>:"/\\|?*')
# Bidirectional overrides and isolates make "gpj.exe" look like "exe.jpg": a name
# holding one is not recreated (the disc's own name has U+FFFD there, as
# exporter/names.py writes it), in a file name and an album name alike.
_BIDI_CONTROLS = frozenset([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL"} | {d + n for d in ("COM", "LPT") for n in "123456789¹²³"}
_RESERVED_AT_ROOT = {STATE_DIR.casefold(), OLDER.casefold(), DELETED.casefold()}


class RestoreError(Exception):
    """A problem that makes a disc (or the whole run) unusable."""


# --- names and paths ------------------------------------------------------------------


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def fold(rel: str) -> str:
    """Two paths with the same fold are one file on Windows and macOS."""
    return nfc(rel).casefold()


def host_allows(name: object) -> bool:
    """Can ``name`` be one file or folder name here?  Control characters are
    refused everywhere: they break shells, scripts and other tools."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name:
        return False
    if any(ord(c) < 32 or ord(c) == 127 or ord(c) in _BIDI_CONTROLS for c in name):
        return False
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    if WINDOWS:
        if any(c in _WINDOWS_BAD for c in name) or name[-1] in ". ":
            return False
        if name.split(".")[0].rstrip(" ").upper() in _WINDOWS_DEVICES:
            return False
        return len(name.encode("utf-16-le")) // 2 <= 255
    return len(encoded) <= 255


def split_ext(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0 or len(name) - dot > 16:
        return name, ""
    return name[:dot], name[dot:]


def portable(name: str, room: int = 230) -> str:
    """A name every system accepts, close to ``name`` (the last resort)."""
    text = "".join(
        "_" if ord(c) < 32 or ord(c) == 127 or c in _WINDOWS_BAD or 0xD800 <= ord(c) < 0xE000 else c
        for c in nfc(str(name)).translate(dict.fromkeys(_BIDI_CONTROLS, "\ufffd"))
    ).strip(" .")
    if not text:
        text = "unnamed"
    if text.split(".")[0].upper() in _WINDOWS_DEVICES:
        text = "_" + text
    stem, ext = split_ext(text)
    while len((stem + ext).encode("utf-8")) > room and len(stem) > 1:
        stem = stem[: max(1, len(stem) - 8)]
    return stem + ext


def numbered(name: str, n: int) -> str:
    stem, ext = split_ext(name)
    return f"{stem} ({n}){ext}"


def disc_path_ok(path: object) -> bool:
    """A payload path from a manifest that stays inside the disc's data/."""
    if not isinstance(path, str) or not path.startswith("data/"):
        return False
    if "\\" in path or ":" in path or any(ord(c) < 32 for c in path):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def parse_bag_manifest(data: bytes) -> dict:
    """path -> sha256 from BagIt lines ``<sha256>  <path>`` (RFC 8493 escapes)."""
    sums = {}
    for line in data.decode("utf-8-sig", "replace").splitlines():
        match = _BAG_LINE.match(line)
        if match:
            path = re.sub(r"%(0[dDaA]|25)", lambda m: chr(int(m.group(1), 16)), match.group(2))
            sums[path] = match.group(1).lower()
    return sums


def quote(path: str) -> str:
    return f'"{path}"' if WINDOWS else shlex.quote(path)


# --- manifest.json: its schema, checked before anything in it is used ----------------------
# A disc can be crafted: a consistent tagmanifest proves nothing.  So every number,
# list and string has a bound, and nothing is allocated from a number in the manifest.

MAX_DISC = 1_000_000  # disc numbers of a series
MAX_VERSION = 1_000_000  # versions of one item
MAX_SEQ = 1 << 62  # change sequence numbers
MAX_DISC_BYTES = 11_826_176 * SECTOR  # BD-R 25 GB, the largest medium: a file on one disc
MAX_FILE_BYTES = 1 << 40  # a whole file (a split one spans discs)
MAX_PARTS = 10_000  # parts of one split file
MAX_ENTRIES = 10_000_000  # records in one list (files, changes, the catalog)
MAX_ALBUMS, MAX_ALBUM_DEPTH = 1_000, 100
MAX_ID, MAX_NAME, MAX_PATH, MAX_TEXT = 200, 4096, 32_768, 1_000_000  # characters
MAX_JSON_DEPTH = 64  # ours nests 5 deep
_HEX64_ANY = re.compile(r"[0-9a-fA-F]{64}\Z")
# A string (to its end, even one left open: every match succeeds, so the scan is
# linear), a bracket, or a run of 20 digits.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]|[0-9]{20,}', re.S)


class SchemaError(RestoreError):
    """manifest.json does not match its schema; the message names the field."""


def _found(value: object) -> str:
    if isinstance(value, (dict, list)):
        return f"{'an object' if isinstance(value, dict) else 'a list'} of {len(value)}"
    if isinstance(value, str) and len(value) > 60:
        return f"a string of {len(value)} characters"
    return "null" if value is None else repr(value)


def _fail(where: str, expected: str, value: object):
    raise SchemaError(f"{where}: expected {expected}, found {_found(value)}")


def _int(lo: int, hi: int, null: bool = False):
    def check(value, where):
        if value is None and null:
            return
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            _fail(where, f"an integer from {lo} to {hi}" + (" or null" if null else ""), value)

    return check


def _str(hi: int, lo: int = 0, null: bool = False, pattern=None):
    def check(value, where):
        if value is None and null:
            return
        if not isinstance(value, str) or not lo <= len(value) <= hi or (pattern and not pattern.match(value)):
            what = "a sha256 (64 hex digits)" if pattern else f"a string of {lo} to {hi} characters"
            _fail(where, what + (" or null" if null else ""), value)

    return check


def _bool(value, where):
    if not isinstance(value, bool):
        _fail(where, "true or false", value)


def _list(of, hi: int, null: bool = False):
    def check(value, where):
        if value is None and null:
            return
        if not isinstance(value, list) or len(value) > hi:
            _fail(where, f"a list of at most {hi}" + (" or null" if null else ""), value)
        for i, member in enumerate(value):
            of(member, f"{where}[{i}]")

    return check


def _obj(required: dict, optional: dict):
    """An object with ``required`` fields; ``optional`` ones are checked when
    present, and unknown ones ignored (a later minor version may add some)."""

    def check(value, where):
        if not isinstance(value, dict):
            _fail(where or "the document", "an object", value)
        where = where + "." if where else ""
        for key, field in required.items():
            if key not in value:
                raise SchemaError(f"{where}{key}: missing")
            field(value[key], f"{where}{key}")
        for key, field in optional.items():
            if key in value:
                field(value[key], f"{where}{key}")

    return check


def _map(of, hi: int):
    def check(value, where):
        if not isinstance(value, dict) or len(value) > hi:
            _fail(where, f"an object of at most {hi} members", value)
        for key, member in value.items():
            if len(key) > MAX_ID:
                _fail(f"{where} key", f"a string of at most {MAX_ID} characters", key)
            of(member, f"{where}[{json.dumps(key)}]")

    return check


def _pair(first, second):
    def check(value, where):
        if not isinstance(value, list) or len(value) != 2:
            _fail(where, "a list of 2", value)
        first(value[0], f"{where}[0]")
        second(value[1], f"{where}[1]")

    return check


def _schema():
    disc_no, null_disc = _int(1, MAX_DISC), _int(1, MAX_DISC, null=True)
    version, item, name, text = _int(1, MAX_VERSION), _str(MAX_ID, 1), _str(MAX_NAME), _str(MAX_TEXT, null=True)
    path, null_path, paths = _str(MAX_PATH, 1), _str(MAX_PATH, 1, null=True), _list(_str(MAX_PATH, 1), MAX_ALBUMS)
    sha, date = _str(64, 64, pattern=_HEX64_ANY), _str(64, null=True)
    albums = _list(_list(_str(MAX_NAME), MAX_ALBUM_DEPTH), MAX_ALBUMS)
    about = {"item": item, "version": version, "original_name": name, "albums": albums}
    extra = {"title": text, "caption": text, "captured_at": date, "uploaded_at": date, "content_type": text}
    extra.update(links=paths, sidecar=null_path, sidecar_links=paths, change=_str(32, null=True))
    extra.update(previous_disc=null_disc, thumbnail=null_path)
    a_file = _obj({**about, "path": path, "size": _int(0, MAX_DISC_BYTES), "sha256": sha}, extra)
    edited = _obj(about, {**extra, "disc": null_disc, "path": null_path})
    part = {"number": _int(1, MAX_PARTS), "offset": _int(0, MAX_FILE_BYTES), "size": _int(0, MAX_DISC_BYTES)}
    a_part = _obj({**part, "count": _int(1, MAX_PARTS), "path": path, "sha256": sha}, {})
    part_of = _obj({**part, "sha256": sha}, {"disc": null_disc, "path": null_path})
    split = _obj(
        {**about, "path": path, "size": _int(0, MAX_FILE_BYTES), "sha256": sha, "part": a_part},
        {**extra, "completes": _bool, "parts": _list(part_of, MAX_PARTS)},
    )
    catalog = {"disc": null_disc, "version": _int(1, MAX_VERSION, True), "path": null_path, "original_name": name}
    catalog.update(albums=albums, deleted=_bool, parts=_list(_pair(null_disc, null_path), MAX_PARTS))
    deleted = _obj({"item": item}, {"original_name": name, "last_disc": null_disc, "version": catalog["version"]})
    new_version = _obj({"item": item}, {"version": version, "previous_disc": null_disc, "previous_version": version})
    changes = _obj(
        {},
        {
            "added": _list(item, MAX_ENTRIES),
            "new_version": _list(new_version, MAX_ENTRIES),
            "edited": _list(edited, MAX_ENTRIES),
            "deleted": _list(deleted, MAX_ENTRIES),
        },
    )
    disc = _obj(
        {"number": disc_no, "series": item},
        {
            **{"layout_version": _int(1, 1000), "first_change": _int(0, MAX_SEQ), "last_change": _int(0, MAX_SEQ)},
            **{"subscriber": text, "medium": _str(32), "planned_at": date, "volume_id": _str(32)},
            "captured": _obj({}, {"first": date, "last": date}),
        },
    )
    held = _obj({}, {"item": _str(MAX_ID, null=True), "original_name": _str(MAX_NAME, null=True), "reason": text})
    return _obj(
        {
            "disc": disc,
            "files": _list(a_file, MAX_ENTRIES),
            "changes": changes,
            "held_back": _list(held, MAX_ENTRIES),
            "catalog": _map(_obj({}, catalog), MAX_ENTRIES),
        },
        {"parts": _list(split, MAX_ENTRIES)},
    )


_MANIFEST = _schema()


def load_manifest(raw: bytes) -> dict:
    """manifest.json's document, checked against the schema before anything
    uses it: nesting and numbers are scanned in the raw bytes before parsing,
    then every field.  Raises :class:`RestoreError` (:class:`SchemaError`
    naming the field for a document that does not match)."""
    if len(raw) > SMALL_LIMIT:
        raise SchemaError(f"expected at most {SMALL_LIMIT} bytes, found {len(raw)}")
    depth = 0
    for token in _JSON_TOKEN.finditer(raw):
        c = raw[token.start()]
        if c in b"[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise SchemaError(f"expected at most {MAX_JSON_DEPTH} levels of nesting, found more")
        elif c in b"]}":
            depth -= 1
        elif c != 0x22:  # 20 digits or more: no field holds one, and Python 3.8 parses a long one slowly
            digits = token.end() - token.start()
            raise SchemaError(f"expected numbers of at most 19 digits, found {digits}")
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=lambda name: _fail("a number", "a finite number", name))
    except (ValueError, RecursionError) as exc:
        raise RestoreError(f"manifest.json is not readable JSON ({str(exc)[:200]})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise RestoreError("manifest.json is not a Discsub manifest")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise RestoreError(
            f"manifest version {_found(doc.get('schema_version'))}; this restore.py reads version "
            f"{SCHEMA_VERSION}: use the restore.py of the newest disc"
        )
    _MANIFEST(doc, "")
    return doc


def payload_of(doc: dict) -> dict:
    """path -> (size or None, sha256 or None) of every payload file a checked
    manifest.json names: the files and their links, parts, and sidecars."""
    named = {}
    for f in doc["files"]:
        for path in [f["path"], *f.get("links", [])]:
            named[path] = (f["size"], f["sha256"].lower())
    for p in doc.get("parts", []):
        named[p["part"]["path"]] = (p["part"]["size"], p["part"]["sha256"].lower())
    for r in doc["files"] + doc["changes"].get("edited", []) + doc.get("parts", []):
        for path in [r.get("sidecar"), *r.get("sidecar_links", [])]:
            if path is not None:
                named.setdefault(path, (None, None))
    return named


# --- reading a disc: an ISO 9660 image (through its Rock Ridge names) or a folder ----------


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "little")


class _Source:
    def read_small(self, path: str) -> bytes | None:
        """A tag file (manifest.json …) whole, or None when it is not there."""
        try:
            size, blocks = self.chunks(path)
        except OSError:
            return None
        return b"".join(blocks) if size <= SMALL_LIMIT else None


class IsoImage(_Source):
    """The files of an ISO 9660 image, named as Rock Ridge names them: the disc's
    canonical paths.  Handles SUSP continuation areas, relocated deep folders
    (CL/RE) and files over 4 GiB (several multi-extent records)."""

    def __init__(self, path: str):
        self.path = path
        self.fh = open(path, "rb")
        # Directories read so far: in a real image they never overlap, so never
        # more than the image (a crafted one could make each folder claim it all).
        self._budget = self.fh.seek(0, os.SEEK_END)  # (a drive's st_size is 0)
        self.entries = {}  # path -> ("file", [(offset, length), ...]) | ("dir" | "link" | "odd", None)
        self._skip, self._rock_ridge, self._visited = 0, False, set()
        self._walk(self._root(), "", 0)
        if not self._rock_ridge:
            raise RestoreError(f"{path}: no Rock Ridge names in this image: mount it or extract it and give the folder")

    def _read(self, offset: int, length: int) -> bytes:
        self.fh.seek(offset)
        return self.fh.read(length)

    def _root(self) -> dict:
        for sector in range(16, 116):
            desc = self._read(sector * SECTOR, SECTOR)
            if len(desc) < SECTOR or desc[1:6] != b"CD001" or desc[0] == 255:
                break
            if desc[0] == 1:  # the primary volume descriptor
                if int.from_bytes(desc[128:130], "little") != SECTOR:
                    raise RestoreError(f"{self.path}: unsupported logical block size")
                root = self._record(desc[156:190])
                dot = next(self._records(root), None)
                if dot is not None and dot["su"][:2] == b"SP" and dot["su"][4:6] == b"\xbe\xef":
                    self._skip = dot["su"][6]
                return root
        raise RestoreError(f"{self.path}: not an ISO 9660 image")

    def _record(self, raw: bytes, skip: int = 0) -> dict:
        n = raw[32]
        return {
            "lba": _u32(raw, 2) + raw[1],  # plus the extended attribute record
            "len": _u32(raw, 10),
            "flags": raw[25],
            "interleaved": raw[26] or raw[27],
            "name": raw[33 : 33 + n],
            "su": raw[33 + n + (1 - n % 2) + skip :],
        }

    def _records(self, directory: dict):
        data = self._read(directory["lba"] * SECTOR, min(directory["len"], 64 * 1024 * 1024))
        self._budget -= len(data)
        if self._budget < 0:
            raise RestoreError(f"{self.path}: a damaged directory tree (its folders are larger than the image)")
        pos, first = 0, True
        while pos < len(data):
            n = data[pos]
            if n == 0:  # records never cross a sector: the rest of this one is padding
                pos = (pos // SECTOR + 1) * SECTOR
                continue
            if n < 34 or pos + n > len(data):
                raise RestoreError(f"{self.path}: a damaged directory")
            yield self._record(data[pos : pos + n], 0 if first else self._skip)
            pos, first = pos + n, False

    def _susp(self, area: bytes) -> list:
        entries, areas, hops = [], [area], 0
        while areas:
            area, i = areas.pop(0), 0
            while i + 4 <= len(area):
                sig, length = area[i : i + 2], area[i + 2]
                if length < 4 or i + length > len(area) or sig == b"ST":
                    break
                body = area[i : i + length]
                if sig == b"CE" and length >= 28 and hops < 64:  # the entries go on elsewhere
                    hops += 1
                    areas.append(self._read(_u32(body, 4) * SECTOR + _u32(body, 12), min(_u32(body, 20), 1 << 17)))
                else:
                    entries.append((sig, body))
                i += length
        return entries

    def _walk(self, directory: dict, prefix: str, depth: int) -> None:
        if depth > 100 or directory["lba"] in self._visited:
            raise RestoreError(f"{self.path}: a damaged directory tree (a loop)")
        self._visited.add(directory["lba"])
        continued = None
        for rec in self._records(directory):
            if continued is not None:  # the next part of a file over 4 GiB
                continued.append((rec["lba"] * SECTOR, rec["len"]))
                continued = continued if rec["flags"] & 0x80 else None
                continue
            if rec["name"] in (b"\x00", b"\x01"):
                continue
            parts, relocated, child, link = [], False, None, False
            for sig, body in self._susp(rec["su"]):
                if sig == b"NM" and len(body) >= 5 and not body[4] & 0x06:
                    parts.append(body[5:])
                relocated = relocated or sig == b"RE"
                child = _u32(body, 4) if sig == b"CL" and len(body) >= 8 else child
                link = link or sig == b"SL" or (sig == b"PX" and len(body) >= 8 and stat.S_ISLNK(_u32(body, 4)))
            self._rock_ridge = self._rock_ridge or bool(parts)
            name = b"".join(parts).decode("utf-8", "replace") if parts else rec["name"].decode("ascii", "replace")
            path = prefix + (name if parts else name.split(";")[0].rstrip("."))
            if relocated:
                continue  # a deep folder moved aside: its CL entry lists it where it belongs
            if name in ("", ".", "..") or "/" in name or link:
                self.entries[path] = ("link" if link else "odd", None)
            elif child is not None or rec["flags"] & 0x02:
                self.entries[path] = ("dir", None)
                if child is not None:
                    dot = next(self._records({"lba": child, "len": SECTOR}), None)
                    rec = {"lba": child, "len": dot["len"] if dot else SECTOR}
                self._walk(rec, path + "/", depth + 1)
            elif rec["interleaved"]:
                self.entries[path] = ("odd", None)
            else:
                self.entries[path] = ("file", [(rec["lba"] * SECTOR, rec["len"])])
                continued = self.entries[path][1] if rec["flags"] & 0x80 else None

    def kind(self, path: str) -> str | None:
        entry = self.entries.get(path) or self.entries.get(nfc(path))
        return entry[0] if entry else None

    def chunks(self, path: str) -> tuple:
        kind, extents = self.entries.get(path) or self.entries.get(nfc(path)) or ("missing", None)
        if kind != "file":
            raise OSError("not on the disc" if kind == "missing" else f"not a regular file on the disc ({kind})")

        def read():
            for offset, length in extents:
                while length:
                    data = self._read(offset, min(BLOCK, length))
                    if not data:
                        raise OSError("the image ends early (truncated?)")
                    offset, length = offset + len(data), length - len(data)
                    yield data

        return sum(length for _, length in extents), read()

    def listdir(self, folder: str) -> list:
        return [p[len(folder) + 1 :] for p in self.entries if p.startswith(folder + "/") and p.count("/") == 1]


class FolderDisc(_Source):
    """A disc folder.  Symbolic links on it are never followed."""

    def __init__(self, path: str):
        self.root = os.path.realpath(path)

    def _full(self, path: str) -> str:
        here = self.root
        for part in path.split("/"):
            if part in ("", ".", "..") or "\\" in part:
                raise OSError("an unsafe path")
            if here != self.root and not stat.S_ISDIR(os.lstat(here).st_mode):
                raise OSError(f"{os.path.basename(here)} is a symbolic link or not a folder on the disc")
            here = os.path.join(here, part)
        return here

    def chunks(self, path: str) -> tuple:
        fd = os.open(self._full(path), os.O_RDONLY | O_BINARY | O_NOFOLLOW)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise OSError("not a regular file on the disc")

        def read():
            with os.fdopen(fd, "rb") as fh:
                yield from iter(lambda: fh.read(BLOCK), b"")

        return info.st_size, read()

    def listdir(self, folder: str) -> list:
        try:
            return os.listdir(self._full(folder))
        except OSError:
            return []


# --- one disc and its manifest ----------------------------------------------------------


class Disc:
    """A disc and its manifest, checked: unusable entries become ``problems``."""

    def __init__(self, path: str):
        self.label = path
        self.source = FolderDisc(path) if os.path.isdir(path) else IsoImage(path)
        self.problems, self.notes = [], []
        raw = self.source.read_small("manifest.json")
        if raw is None:
            raise RestoreError(f"{path}: no manifest.json here: not a Discsub disc (or not its top folder)")
        tags = parse_bag_manifest(self.source.read_small("tagmanifest-sha256.txt") or b"")
        bag = self.source.read_small("manifest-sha256.txt")
        for name, data in (("manifest.json", raw), ("manifest-sha256.txt", bag)):
            if data is not None and name in tags and hashlib.sha256(data).hexdigest() != tags[name]:
                raise RestoreError(f"{path}: {name} is damaged (its sha256 differs from tagmanifest-sha256.txt)")
        try:
            doc = load_manifest(raw)
        except SchemaError as exc:
            raise RestoreError(
                f"{path}: manifest.json does not match its schema: {exc}: nothing restored from it"
            ) from None
        except RestoreError as exc:
            raise RestoreError(f"{path}: {exc}") from None
        self.number, self.series = doc["disc"]["number"], doc["disc"]["series"]
        self.digest = hashlib.sha256(raw).hexdigest()
        self.bag = parse_bag_manifest(bag) if bag is not None else None
        if self.bag is None:
            self.problems.append(f"disc {self.number}: manifest-sha256.txt is missing")
        if "manifest.json" not in tags:
            self.problems.append(f"disc {self.number}: tagmanifest-sha256.txt does not list manifest.json")
        named = payload_of(doc)
        for extra in sorted(p for p in self.bag or () if p.startswith("data/") and p not in named):
            self.problems.append(f"disc {self.number}: {extra}: in manifest-sha256.txt, not in manifest.json: skipped")
        changes = _dict(doc.get("changes"))
        self.files = [f for f in (self._entry(e, "file") for e in _list(doc.get("files"))) if f]
        self.edited = [f for f in (self._entry(e, "edit") for e in _list(changes.get("edited"))) if f]
        self.deleted = [e for e in _list(changes.get("deleted")) if isinstance(e, dict) and _item_id(e.get("item"))]
        self.parts = [p for p in (self._part(e) for e in _list(doc.get("parts"))) if p]
        self.catalog = _dict(doc.get("catalog"))
        for held in filter(lambda h: isinstance(h, dict), _list(doc.get("held_back"))):
            name, reason = held.get("original_name"), held.get("reason")
            self.notes.append(f"disc {self.number}: {name!r} was held back ({reason}); it comes on a later disc")
        recovery = self.source.listdir("recovery")
        self.par2 = sorted(n for n in recovery if n.endswith(".par2") and not re.search(r"\.vol\d", n))

    def _entry(self, e: object, kind: str) -> dict | None:
        """A files or changes.edited entry with every field the restore uses checked."""
        where = f"disc {self.number}"
        if not isinstance(e, dict) or not _item_id(e.get("item")):
            self.problems.append(f"{where}: an entry of manifest.json without a usable item id: skipped")
            return None
        name, albums, version, path, sidecar = (
            e.get(k) for k in ("original_name", "albums", "version", "path", "sidecar")
        )
        digest = str(e.get("sha256", "")).lower()
        bad = [
            f"unsafe path {path!r}" if kind == "file" and not disc_path_ok(path) else "",
            f"unsafe sidecar path {sidecar!r}" if sidecar is not None and not disc_path_ok(sidecar) else "",
            "no original name" if not isinstance(name, str) or not name else "",
            "unreadable albums" if not _albums_ok(albums) else "",
            "no version" if not isinstance(version, int) or version < 1 else "",
            "no size" if kind == "file" and (not isinstance(e.get("size"), int) or e["size"] < 0) else "",
            "no sha256" if kind == "file" and not _HEX64.match(digest) else "",
        ]
        if any(bad):
            bad = ", ".join(b for b in bad if b)
            self.problems.append(f"{where}: manifest.json entry for item {e['item']} ({path!r}): {bad}: skipped")
            return None
        out = {"item": e["item"], "version": version, "name": nfc(name), "albums": albums, "sidecar": None}
        out["paths"] = [path] if disc_path_ok(path) else []
        for link in _list(e.get("links")):
            if disc_path_ok(link):
                out["paths"].append(link)
            else:
                self.problems.append(f"{where}: unsafe path {link!r} in manifest.json: skipped")
        if kind == "file":
            out.update(size=e["size"], sha256=digest, path=path)
            if self.bag is not None and self.bag.get(path) != digest:
                self.problems.append(f"{where}: {path}: manifest.json and manifest-sha256.txt disagree: skipped")
                return None
        else:
            out["bytes_disc"] = e.get("disc") if isinstance(e.get("disc"), int) else None
        if sidecar is not None and (self.bag or {}).get(sidecar) is None:
            self.problems.append(f"{where}: {sidecar}: not listed in manifest-sha256.txt: not restored")
        elif sidecar is not None:
            out["sidecar"] = {"disc": self.number, "path": sidecar, "sha256": self.bag[sidecar]}
        return out

    def _part(self, e: object) -> dict | None:
        """A ``parts`` entry: one part of a file split across discs, checked."""
        out, part, where = self._entry(e, "edit"), _dict(_dict(e).get("part")), f"disc {self.number}"
        n, count, path, size = (part.get(k) for k in ("number", "count", "path", "size"))
        digest, whole = str(part.get("sha256", "")).lower(), str(_dict(e).get("sha256", "")).lower()
        if out is None:
            return None
        if not (all(isinstance(v, int) for v in (n, count, size, e.get("size"))) and 1 <= n <= count and size >= 0):
            path = None  # reported below
        if not (disc_path_ok(path) and out["paths"] and _HEX64.match(digest) and _HEX64.match(whole)):
            self.problems.append(f"{where}: an unreadable part of a split file in manifest.json ({path!r}): skipped")
            return None
        if self.bag is not None and self.bag.get(path) != digest:
            self.problems.append(f"{where}: {path}: manifest.json and manifest-sha256.txt disagree: skipped")
            return None
        discs = {str(p.get("number")): p.get("disc") for p in _list(e.get("parts")) if isinstance(p, dict)}
        out.update(size=e["size"], sha256=whole, completes=e.get("completes") is True, number=n, count=count)
        out.update(part={"disc": self.number, "path": path, "size": size, "sha256": digest}, discs=discs)
        return out

    def repair_hint(self) -> str | None:
        if not self.par2 and self.source.read_small("repair.py") is not None and not isinstance(self.source, IsoImage):
            return (
                f"disc {self.number}: to repair it, give restore.py the drive (e.g. /dev/sr0) or an image read "
                f"from it with its recovery data (README.txt, REPAIRING A DAMAGED DISC) instead of the folder"
            )
        if not self.par2:
            return None
        if isinstance(self.source, IsoImage):
            folder = os.path.splitext(self.label)[0]
            commands = "; ".join(
                f"par2 repair -B {quote(folder)} {quote(os.path.join(folder, 'recovery', index))}"
                for index in self.par2
            )
            return (
                f"disc {self.number}: to repair it, extract {quote(self.label)} to a folder (e.g. 7z x "
                f"{quote(self.label)} -o{quote(folder)}), run: {commands}; then restore from that folder"
            )
        commands = "; ".join(
            f"par2 repair -B {quote(self.label)} {quote(os.path.join(self.label, 'recovery', index))}"
            for index in self.par2
        )
        return (
            f"disc {self.number}: to repair it, copy the disc to a folder you can write to if it is read-only, "
            f"run: {commands}; then run this restore again"
        )


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _item_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 200


def _albums_ok(albums: object) -> bool:
    return isinstance(albums, list) and all(
        isinstance(a, list) and all(isinstance(n, str) and n for n in a) for a in albums
    )


# --- the target folder: every change to it goes through here -----------------------------


class Target:
    """FOLDER.  Every path is checked part by part: symbolic links (and
    anything that is not a folder) on the way are refused, never followed,
    and what is reached must still be inside FOLDER."""

    def __init__(self, root: str):
        self.root = os.path.realpath(root)

    def full(self, rel: str) -> str:
        parts = rel.split("/")
        if not all(host_allows(p) for p in parts):
            raise RestoreError(f"refusing an unsafe path {rel!r}")
        return os.path.join(self.root, *parts)

    def probe(self, rel: str, create: bool = False) -> tuple:
        """(missing | file | link | dir | odd, a problem or None) for ``rel``;
        with ``create``, the folders on the way are made."""
        parts, here = rel.split("/"), self.root
        for i, part in enumerate(parts):
            here, last, upto = os.path.join(here, part), i == len(parts) - 1, "/".join(parts[: i + 1])
            try:
                mode = os.lstat(here).st_mode
            except FileNotFoundError:
                if last or not create:
                    return "missing", None
                os.mkdir(here)
                mode = os.lstat(here).st_mode
            if stat.S_ISLNK(mode) and last:
                return "link", f"{rel}: a symbolic link is there: left alone"
            if stat.S_ISLNK(mode):
                return "link", f"{rel}: {upto} is a symbolic link: not followed, nothing written through it"
            if not last and not stat.S_ISDIR(mode):
                return "odd", f"{rel}: {upto} is in the way (not a folder)"
            real = os.path.realpath(here)
            if real != self.root and not real.startswith(self.root.rstrip(os.sep) + os.sep):
                return "odd", f"{rel}: leads outside {self.root}: refused"
        return ("file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else "odd"), None

    def open_new(self, rel: str) -> int:
        return os.open(self.full(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_BINARY | O_NOFOLLOW, 0o666)

    def read(self, rel: str):
        return os.fdopen(os.open(self.full(rel), os.O_RDONLY | O_BINARY | O_NOFOLLOW), "rb")


class Journal:
    """FOLDER/.discsub-restore/journal.jsonl: what is known about the series and
    which file this restore put where.  One JSON object per line, appended as
    the work is done (a torn last line, from a kill mid-write, is ignored);
    each run ends by rewriting it as one line."""

    def __init__(self, target: Target, write: bool):
        self.target, self.write, self.fh, self.lock = target, write, None, None
        self.state = {"series": None, "discs": {}, "items": {}, "files": {}, "names": {}, "dirs": {}}
        kind, problem = target.probe(STATE_DIR)
        if problem or kind not in ("missing", "dir"):
            raise RestoreError(f"{target.root}: {STATE_DIR} is not a plain folder: refusing to use it")
        if write:
            target.probe(STATE_DIR + "/" + STAGING + "/x", create=True)
            self._lock()
        try:
            with target.read(STATE_DIR + "/" + JOURNAL) as fh:
                for line in fh:
                    try:
                        self._apply(json.loads(line.decode("utf-8")))
                    except (ValueError, KeyError, TypeError, AttributeError):
                        break
        except FileNotFoundError:
            pass

    def _lock(self) -> None:
        self.lock = open(self.target.full(STATE_DIR + "/lock"), "a+b")
        try:
            try:
                import fcntl
            except ImportError:  # Windows
                import msvcrt

                msvcrt.locking(self.lock.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                fcntl.flock(self.lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.lock.close()
            raise RestoreError(f"another restore is writing into {self.target.root}: let it finish first") from None

    def _apply(self, op: dict) -> None:
        s, kind = self.state, op["op"]
        if kind == "state":
            self.state = op["state"]
        elif kind == "series":
            s["series"] = op["series"]
        elif kind in ("disc", "item", "file", "name", "dir"):
            table = s[{"disc": "discs", "item": "items", "file": "files", "name": "names", "dir": "dirs"}[kind]]
            if op["value"] is None:
                table.pop(op["key"], None)
            else:
                table[op["key"]] = op["value"]

    def log(self, op: str, key: str = "", value: object = None) -> None:
        entry = {"op": op, "key": key, "value": value} if op != "series" else {"op": op, "series": value}
        self._apply(entry)
        if self.write:
            if self.fh is None:
                self.fh = open(self.target.full(STATE_DIR + "/" + JOURNAL), "a", encoding="utf-8")
            self.fh.write(json.dumps(entry, sort_keys=True) + "\n")
            self.fh.flush()

    def close(self) -> None:
        """Rewrite the journal as one line, atomically, and let the folder go."""
        if self.write:
            if self.fh is not None:
                self.fh.close()
            rel = STATE_DIR + "/" + STAGING + "/journal.new"
            with open(self.target.full(rel), "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"op": "state", "state": self.state}, sort_keys=True) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(self.target.full(rel), self.target.full(STATE_DIR + "/" + JOURNAL))
        if self.lock is not None:
            self.lock.close()


# --- what the discs say, item by item -----------------------------------------------------


def _new_item(order: list) -> dict:
    # safe: the disc paths of the newest description, one per album; wanted:
    # the version the newest disc calls current, and the disc holding its bytes.
    rec = dict(order=order, name="", albums=[], safe=[], meta_disc=0, sidecar=None, versions={}, wanted=[0, 0])
    rec.update(deleted=0, deletion_applied=False, complete=False)
    return rec


def _take_meta(rec: dict, number: int, entry: dict, bytes_disc: int | None) -> None:
    # The newest disc that describes an item has the last word on its name,
    # albums and sidecar, whatever order the discs come in.
    if number >= rec["meta_disc"]:
        rec.update(meta_disc=number, name=entry["name"], albums=entry["albums"], safe=entry["paths"])
        rec["sidecar"] = entry["sidecar"]
    if entry["version"] > rec["wanted"][0]:
        rec["wanted"] = [entry["version"], bytes_disc or 0]


def fold_disc(items: dict, disc: Disc, scope: set) -> set:
    """Add what ``disc`` says to ``items``; the disc numbers it refers to."""
    n, refs = disc.number, {disc.number}
    for index, f in enumerate(disc.files):
        rec = items.setdefault(f["item"], _new_item([n, index]))
        version = {"disc": n, "sha256": f["sha256"], "size": f["size"], "name": f["name"], "path": f["path"]}
        rec["versions"][str(f["version"])] = version
        _take_meta(rec, n, f, n)
    for index, f in enumerate(disc.edited):
        rec = items.setdefault(f["item"], _new_item([n, len(disc.files) + index]))
        _take_meta(rec, n, f, f["bytes_disc"])
        refs.add(f["bytes_disc"])
    for d in disc.deleted:
        rec = items.setdefault(d["item"], _new_item([n, 1 << 30]))
        rec["deleted"] = max(rec["deleted"], n)
        rec["name"] = rec["name"] or str(d.get("original_name") or "")
        refs.add(d.get("last_disc"))
    for index, p in enumerate(disc.parts):
        rec = items.setdefault(p["item"], _new_item([n, len(disc.files) + len(disc.edited) + index]))
        split = rec.setdefault("split", {}).setdefault(str(p["version"]), {"parts": {}, "discs": {}})
        split.update(count=p["count"], size=p["size"], sha256=p["sha256"], name=p["name"])
        split["parts"][str(p["number"])] = p["part"]
        split["discs"].update(p["discs"])
        refs.update(p["discs"].values())
        if p["completes"]:  # the disc that completes the file carries its change
            _take_meta(rec, n, p, n)
    scope.update(f["item"] for f in disc.files + disc.edited + disc.deleted + disc.parts)
    for item_id, info in disc.catalog.items():
        refs.add(_dict(info).get("disc"))
        rec, version = items.get(item_id), _dict(info).get("version")
        if rec is not None and isinstance(version, int) and version > rec["wanted"][0]:
            rec["wanted"] = [version, info["disc"]]
    return {r for r in refs if isinstance(r, int) and r > 0}


def join_splits(items: dict, scope: set) -> None:
    """A split file whose every part was given becomes a version of its item
    (its bytes: the parts, in order); one that lacks parts says which."""
    for rec in (items[item] for item in scope):
        rec["split_missing"] = {}
        for version, split in rec.get("split", {}).items():
            numbers = [str(n) for n in range(1, split["count"] + 1)]
            absent, parts = [n for n in numbers if n not in split["parts"]], list(map(split["parts"].get, numbers))
            if not absent:
                joined = [[p["disc"], p["path"], p["size"], p["sha256"]] for p in parts]
                rec["versions"][version] = dict(split, disc=parts[-1]["disc"], path=None, parts=joined)
                continue
            where = ", ".join(
                f"part {n}" + (f" on disc {split['discs'][n]}" if split["discs"].get(n) else "") for n in absent
            )
            rec["name"], rec["wanted"] = rec["name"] or split["name"], max(rec["wanted"], [int(version), 0])
            rec["split_missing"][version] = (
                f"{split['name']!r} is split across discs and {where} of {split['count']} not given"
            )


def _source(info: dict) -> tuple:
    """Where a version's bytes are: (disc, path), or ("parts", [[disc, path, size, sha256], ...])."""
    return ("parts", info["parts"]) if info.get("parts") else (info["disc"], info["path"])


# --- where each file goes ------------------------------------------------------------------


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _candidates(names: list, start: int = 2):
    """(0, name) for each usable name, then (n, "name (n)") from ``start``."""
    seen = []
    for name in names:
        if name and host_allows(name) and name not in seen:
            seen.append(name)
            yield 0, name
    base = seen[0] if seen else "unnamed"
    for n in range(start, start + 100000):
        yield n, numbered(base, n) if host_allows(numbered(base, n)) else numbered(portable(base, 200), n)


class Namer:
    """Chooses every restored path once: a name given is kept by later runs
    (it is in the journal).  Two paths that differ only in case or Unicode
    normalisation are never both used, so the folder also works on Windows
    and macOS.  A role is ``[item, what, which]``, JSON-encoded."""

    def __init__(self, journal: Journal):
        self.journal, state = journal, journal.state
        self.owner = {fold(rel): role for role, rel in state["names"].items()}
        for rel, f in state["files"].items():
            self.owner.setdefault(fold(rel), ["file", f["item"]])
        self.dir_owner = {fold(rel): album for album, rel in state["dirs"].items()}
        # Within one run a path only ever becomes taken: each numbered series
        # goes on from where it stopped (linear, however many share a name).
        self.next_number = {}
        self.roles_of = {}
        for role in state["names"]:
            self.roles_of.setdefault(json.loads(role)[0], set()).add(role)

    def _choose(self, parent: str, names: list, free) -> str:
        key = json.dumps([fold(parent), names])
        for n, cand in _candidates(names, self.next_number.get(key, 2)):
            rel = _join(parent, cand)
            if free(cand, rel):
                if n:
                    self.next_number[key] = n + 1
                return rel
        return rel

    def _free(self, rel: str, role: str, item: str, ours: bool) -> bool:
        key = fold(rel)
        if self.owner.get(key, role) not in (role, ["file", item]) or key in self.dir_owner:
            return False
        parts = key.split("/")
        if parts[0] in _RESERVED_AT_ROOT and not ours:
            return False
        return not any("/".join(parts[:i]) in self.owner for i in range(1, len(parts)))

    def album_dir(self, album: list, safe: list | None) -> str:
        parent = ""
        for i, name in enumerate(album):
            key = json.dumps(album[: i + 1])
            rel = self.journal.state["dirs"].get(key)
            if rel is None:

                def free(cand, rel, key=key, parent=parent):
                    taken = self.dir_owner.get(fold(rel), key) != key or fold(rel) in self.owner
                    return not taken and (parent or fold(cand) not in _RESERVED_AT_ROOT)

                rel = self._choose(parent, [nfc(name), safe[i] if safe else None, portable(name)], free)
                self.dir_owner[fold(rel)] = key
                self.journal.log("dir", key, rel)
            parent = rel
        return parent

    def place(self, item: str, what: str, which: object, parent: str, names: list) -> tuple:
        """(the role, its path) of one file of ``item``."""
        role = json.dumps([item, what, which])
        rel = self.journal.state["names"].get(role)
        if rel is None:
            rel = self._choose(parent, names, lambda cand, rel: self._free(rel, role, item, what in ("old", "del")))
            self.owner[fold(rel)] = role
            self.journal.log("name", role, rel)
            self.roles_of.setdefault(item, set()).add(role)
        return role, rel

    def release_others(self, item: str, roles: set) -> None:
        files, names = self.journal.state["files"], self.journal.state["names"]
        for role in sorted(self.roles_of.get(item, set()) - roles):
            rel = names[role]
            self.roles_of[item].discard(role)
            self.journal.log("name", role, None)
            if rel in files:
                self.owner[fold(rel)] = ["file", files[rel]["item"]]
            else:
                self.owner.pop(fold(rel), None)


class Want:
    """One file that must end up at ``rel`` with ``sha256``; ``source`` is
    (disc number, path on that disc)."""

    __slots__ = ("rel", "item", "sha256", "size", "kind", "source")

    def __init__(self, rel, item, sha256, size, kind, source):
        self.rel, self.item, self.sha256, self.size, self.kind, self.source = rel, item, sha256, size, kind, source


def layout(items: dict, order: list, namer: Namer, apply_deletions: bool) -> tuple:
    """(every file the items in ``order`` need, their problems by item).  The
    originals are named first: a user's own ``IMG_1.JPG.xmp`` keeps its name
    and the sidecar of ``IMG_1.JPG`` yields."""
    wants, roles, problems, albums = [], {}, {}, {}
    for item in order:
        rec, roles[item], problems[item], albums[item] = items[item], set(), [], []
        versions = {int(v): info for v, info in rec["versions"].items()}
        have, (wanted, wanted_disc) = max(versions, default=0), rec["wanted"]
        split_missing = rec.get("split_missing", {}).get(str(wanted))
        if wanted > have and not rec["deleted"] and split_missing:
            problems[item].append(split_missing + (f"; version {have} restored" if have else ""))
        elif wanted > have and not rec["deleted"]:
            got = f"version {have} restored" if have else "not restored"
            problems[item].append(
                f"{rec['name']!r}: version {wanted} is on disc {wanted_disc or '?'}, which was not given; {got}"
            )
        if not have:
            continue
        current = versions[have]
        for index, album in enumerate(rec["albums"] or [[]]):
            safe_dirs, safe_name = None, None
            parts = rec["safe"][index].split("/")[1:] if index < len(rec["safe"]) else []
            if len(parts) == len(album) + 1:
                safe_dirs, safe_name = parts[:-1], parts[-1]
            parent = namer.album_dir(album, safe_dirs)
            names = [rec["name"], safe_name, portable(rec["name"])]
            role, rel = namer.place(item, "cur", [album, rec["name"]], parent, names)
            roles[item].add(role)
            albums[item].append((parent, rel))
            wants.append(Want(rel, item, current["sha256"], current["size"], "file", _source(current)))
        for number, info in sorted(versions.items()):
            if number != have:
                (stem, ext), label = split_ext(info["name"]), f" (version {number} from disc {info['disc']})"
                names = [stem + label + ext, portable(stem, 150) + label + ext]
                role, rel = namer.place(item, "old", number, _join(OLDER, albums[item][0][0]), names)
                roles[item].add(role)
                wants.append(Want(rel, item, info["sha256"], info["size"], "file", _source(info)))
    for item in order:
        sidecar = items[item]["sidecar"]
        for parent, rel in albums[item] if sidecar else ():
            base = rel.rsplit("/", 1)[-1]
            role, side = namer.place(item, "side", rel, parent, [base + ".xmp", portable(base, 200) + ".xmp"])
            roles[item].add(role)
            wants.append(Want(side, item, sidecar["sha256"], None, "sidecar", (sidecar["disc"], sidecar["path"])))
    for want in wants:
        rec = items[want.item]
        if rec["deleted"] and (apply_deletions or rec["deletion_applied"]):
            folder, _, base = want.rel.rpartition("/")
            role, want.rel = namer.place(want.item, "del", want.rel, _join(DELETED, folder), [base])
            roles[want.item].add(role)
    for item in order:
        namer.release_others(item, roles[item])
    return wants, problems


# --- putting files in place ------------------------------------------------------------------


class Progress:
    """A percentage on stderr: one updating line on a terminal, else a line per 10 %."""

    def __init__(self, stream, total: int):
        self.stream, self.total, self.done, self.shown, self.when = stream, total, 0, -1, 0.0
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def add(self, n: int) -> None:
        self.done += n
        percent = min(100, self.done * 100 // self.total) if self.total else 100
        if self.tty and percent != self.shown and (time.monotonic() - self.when > 0.2 or percent == 100):
            self.stream.write(f"\rrestoring: {percent:3d}% of {self.total / 1e6:.1f} MB")
            self.stream.flush()
            self.shown, self.when = percent, time.monotonic()
        elif not self.tty and self.total and percent // 10 > self.shown // 10:
            self.stream.write(f"restoring: {percent - percent % 10}%\n")
            self.shown = percent

    def finish(self) -> None:
        if self.tty and self.shown >= 0:
            self.stream.write("\n")


class Executor:
    """Makes FOLDER hold the wanted files: keeps what is already right, moves
    or links what this restore put elsewhere, copies the rest from the discs
    (checking every byte), and never touches a file it did not write."""

    def __init__(self, target: Target, journal: Journal, discs: dict, report, progress: Progress):
        self.target, self.journal, self.discs, self.report, self.progress = target, journal, discs, report, progress
        self.dry = not journal.write
        self.hashes, self.counter, self.failed, self.satisfied, self.hinted = {}, 0, set(), {}, set()

    def fail(self, item: str | None, text: str) -> None:
        self.report.problem(text)
        self.failed.add(item)

    def hash(self, rel: str) -> str | None:
        """The sha256 of the file at ``rel`` (hard links are read once)."""
        try:
            with self.target.read(rel) as fh:
                info = os.fstat(fh.fileno())
                key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
                if key not in self.hashes:
                    digest = hashlib.sha256()
                    for block in iter(lambda: fh.read(BLOCK), b""):
                        digest.update(block)
                        self.progress.add(len(block))
                    self.hashes[key] = digest.hexdigest()
                return self.hashes[key]
        except OSError:
            return None

    def _staging(self) -> str:
        self.counter += 1
        return f"{STATE_DIR}/{STAGING}/{os.getpid()}-{self.counter}.part"

    def _record(self, rel: str, record: dict) -> None:
        if self.journal.state["files"].get(rel) != record:
            self.journal.log("file", rel, record)

    def _prune(self, rel: str) -> None:
        """Remove the album folders that moving ``rel`` away left empty."""
        parts = rel.split("/")[:-1]
        while parts and parts[0] != STATE_DIR:
            try:
                os.rmdir(self.target.full("/".join(parts)))
            except OSError:
                return
            parts.pop()

    def _move(self, src: str, dest: str) -> None:
        if not self.dry:
            os.replace(self.target.full(src), self.target.full(dest))
            self._prune(src)
        self._record(dest, self.journal.state["files"][src])
        self.journal.log("file", src, None)

    def _place(self, want: Want, how: str, src: str) -> bool:
        """Rename ``src`` (staged or set aside, holding the right bytes) to ``want.rel``."""
        if not self.dry:
            kind, problem = self.target.probe(want.rel, create=True)
            if problem or kind != "missing":
                self.fail(want.item, problem or f"{want.rel}: something appeared there: left alone")
                return False
        self._record(src, {"item": want.item, "sha256": want.sha256, "kind": want.kind})
        self._move(src, want.rel)
        self.satisfied.setdefault(want.sha256, want.rel)
        self.report.did(how, want)
        return True

    def run(self, wants: list, scope: set) -> None:
        files, pending = self.journal.state["files"], []
        wanted_at, by_sha = {w.rel for w in wants}, {w.sha256: w for w in wants}
        staging = f"{STATE_DIR}/{STAGING}"
        for name in [] if self.dry else os.listdir(self.target.full(staging)):
            rel = f"{staging}/{name}"  # left by an interrupted run: a half copy goes, a file set aside is used
            want = None if rel in files else by_sha.get(self.hash(rel) or "")
            if want is not None:
                self._record(rel, {"item": want.item, "sha256": want.sha256, "kind": want.kind})
            elif rel not in files:
                os.unlink(self.target.full(rel))
        for want in wants:
            kind, problem = self.target.probe(want.rel)
            ours = files.get(want.rel, {})
            if problem or kind not in ("missing", "file"):
                self.fail(want.item, problem or f"{want.rel}: a {kind} is in the way: left alone")
            elif kind == "missing":
                pending.append(want)
            elif self.hash(want.rel) == want.sha256:
                self._record(want.rel, {"item": want.item, "sha256": want.sha256, "kind": want.kind})
                self.satisfied.setdefault(want.sha256, want.rel)
                self.report.did("kept", want)
            elif ours.get("item") in scope and self.hash(want.rel) == ours["sha256"]:
                self._move(want.rel, self._staging())  # ours but out of date: set aside, it may be wanted elsewhere
                pending.append(want)
            else:
                self.fail(
                    want.item, f"{want.rel}: a different file is already there: left alone (move it away and run again)"
                )
        spares = {}  # what this restore put where it is no longer wanted, by sha256
        for rel, record in list(files.items()):
            if record["item"] in scope and rel not in wanted_at:
                if self.target.probe(rel) == ("file", None):
                    spares.setdefault(record["sha256"], []).append(rel)
                else:
                    self.journal.log("file", rel, None)
        for want in pending:
            try:
                if not (self._from_spare(want, spares) or self._from_twin(want) or self._from_disc(want)):
                    self.fail(want.item, f"{want.rel}: its bytes are on disc {want.source[0]}, which was not given")
            except OSError as exc:
                self.fail(want.item, f"{want.rel}: cannot write it ({exc})")
        for digest, rels in spares.items():
            for rel in rels:  # a copy whose bytes are in place elsewhere, or a replaced sidecar, goes
                if rel in files and (digest in self.satisfied or files[rel]["kind"] == "sidecar"):
                    if self.hash(rel) == digest and not self.dry:
                        os.unlink(self.target.full(rel))
                        self._prune(rel)
                    elif self.hash(rel) != digest:
                        self.report.note(f"{rel}: changed since it was restored: left alone")
                    self.journal.log("file", rel, None)

    def _from_spare(self, want: Want, spares: dict) -> bool:
        rels = spares.get(want.sha256) or []
        while rels:
            rel = rels.pop(0)
            if self.hash(rel) == want.sha256:
                return self._place(want, "moved", rel) or True
            self.report.note(f"{rel}: changed since it was restored: left alone")
            self.journal.log("file", rel, None)
        return False

    def _from_twin(self, want: Want) -> bool:
        twin = self.satisfied.get(want.sha256)
        if twin is None:
            return False
        staged = self._staging()
        try:
            if not self.dry:
                os.link(self.target.full(twin), self.target.full(staged))
        except (OSError, AttributeError, NotImplementedError):  # no hard links here: copy
            with self.target.read(twin) as fh:
                return self._copy(want, iter(lambda: fh.read(BLOCK), b""), staged, "copied") is True
        self.progress.add(want.size or 0)
        return self._place(want, "linked", staged) or True

    def _from_disc(self, want: Want) -> bool:
        if want.source[0] == "parts":
            return self._from_parts(want)
        number, path = want.source
        for disc in self.discs.get(number, []):
            try:
                size, blocks = disc.source.chunks(path)
                found = f"is {size} bytes, the manifest says {want.size}" if size != (want.size or size) else None
            except OSError as exc:
                found = f"cannot be read: {exc}"
            found = found or self._copy(want, blocks, self._staging(), "restored")
            if found is True:
                return True
            self.fail(want.item, f"disc {number}: {path} {found}: not restored ({disc.label})")
            if disc.repair_hint() and number not in self.hinted:
                self.hinted.add(number)
                self.report.problem(disc.repair_hint())
        return want.item in self.failed

    def _from_parts(self, want: Want) -> bool:
        """Join a split file, checking each part on the way (and, in _copy, the whole)."""
        parts = want.source[1]
        for index, number in ((i, p[0]) for i, p in enumerate(parts, start=1) if p[0] not in self.discs):
            return self.fail(want.item, f"{want.rel}: part {index} is on disc {number}, which was not given") or True

        def blocks():
            for index, (number, path, size, digest) in enumerate(parts, start=1):
                found, chunks = self.discs[number][0].source.chunks(path)
                check, what = hashlib.sha256(), f"part {index} (disc {number}: {path})"
                for block in chunks if found == size else ():
                    check.update(block)
                    yield block
                if found != size or check.hexdigest() != digest:
                    raise OSError(
                        f"{what} is damaged ({found} bytes, sha256 {check.hexdigest()}; the manifest: {size}, {digest})"
                    )

        found = self._copy(want, blocks(), self._staging(), "restored")
        return (
            found is True
            or self.fail(want.item, f"{want.rel}: joining its parts failed: {found}: not restored")
            or True
        )

    def _copy(self, want: Want, blocks, staged: str, how: str):
        """Copy ``blocks`` to ``staged`` checking the sha256, then put it in
        place; True, or what was found instead of the right bytes."""
        fd = None if self.dry else self.target.open_new(staged)
        digest, found = hashlib.sha256(), None
        try:
            while True:
                try:
                    block = next(blocks, None)
                except OSError as exc:
                    found = f"cannot be read: {exc}"
                    break
                if block is None:
                    break
                digest.update(block)
                self.progress.add(len(block))
                while fd is not None and block:
                    block = block[os.write(fd, block) :]
            if found is None and digest.hexdigest() != want.sha256:
                found = f"is damaged: sha256 {digest.hexdigest()}, the manifest says {want.sha256}"
            if found is None and fd is not None:
                os.fsync(fd)
        finally:
            if fd is not None:
                os.close(fd)
                if found is not None:
                    os.unlink(self.target.full(staged))
        return found or self._place(want, how, staged) or True


# --- the run ----------------------------------------------------------------------------------


class Report:
    def __init__(self, out, err, dry_run: bool):
        self.out, self.err, self.dry = out, err, dry_run
        self.problems, self.notes, self.counts, self.journal, self.seen = [], [], {}, None, set()

    def problem(self, text: str) -> None:
        if text not in self.seen:
            self.seen.add(text)
            self.problems.append(text)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def did(self, how: str, want: Want) -> None:
        key = "old" if want.rel.startswith(OLDER + "/") else how
        self.counts[key] = self.counts.get(key, 0) + 1
        if how != "kept" and self.dry:
            self.say(f"would be {how}: {want.rel}")

    def say(self, text: str) -> None:
        try:
            self.out.write(text + "\n")
        except UnicodeEncodeError:  # a console that cannot show every name
            self.out.write(text.encode("ascii", "backslashreplace").decode("ascii") + "\n")


def _repair_tool():
    """repair.py from beside this file (on a disc, both are at its top), or None."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "repair.py")
    if not os.path.isfile(path):
        return None
    spec = importlib.util.spec_from_file_location("discsub_disc_repair", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def repaired(path: str, workdir: str, report) -> str:
    """What to read for the disc at ``path``: ``path`` itself when it is a
    folder, has no sector recovery data or is undamaged; else the image
    repaired from its recovery data, written under ``workdir``."""
    tool = None if os.path.isdir(path) else _repair_tool()
    if tool is None:
        return path
    try:
        found = tool.check(path, report.err)
    except (tool.RecoveryDataError, OSError):
        return path  # an older disc (PAR2 or nothing), or unreadable: said when it is read
    if not (found.bad_image or found.no_crc or found.failed_groups):
        return path
    os.makedirs(workdir, exist_ok=True)
    target = os.path.join(workdir, "disc-%d.iso" % len(os.listdir(workdir)))
    report.say(f"{path}: {found.bad_image} damaged sectors; repairing it from its recovery data into {target}")
    fixed = tool.repair(path, target, report.err)
    if fixed.ok:
        report.note(f"{path} was damaged: {fixed.rebuilt} sectors were rebuilt from its recovery data")
    else:
        report.problem(f"{path}: damaged beyond what its recovery data rebuilds: " + "; ".join(fixed.lines()[1:]))
    return target


def restore(paths, into, apply_deletions=False, dry_run=False, require_all=False, out=None, err=None) -> int:
    """Restore the discs at ``paths`` into ``into``; the exit status (0 or 1)."""
    report = Report(out or sys.stdout, err or sys.stderr, dry_run)
    workdir = None
    try:
        try:
            if dry_run:  # nothing is written to FOLDER: a repair goes to the temporary folder
                workdir = tempfile.mkdtemp(prefix="discsub-repaired-")
            else:
                workdir = os.path.join(into, STATE_DIR, REPAIRED)
            paths = [repaired(path, workdir, report) for path in paths]
            _restore(paths, into, apply_deletions, require_all, report)
        finally:
            if report.journal is not None:
                report.journal.close()
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
    except (RestoreError, OSError) as exc:
        report.problem(str(exc))
    except KeyboardInterrupt:
        report.problem("interrupted: run the same command again to finish")
    for note in report.notes:
        report.say("note: " + note)
    c = report.counts
    report.say(
        f"{'dry run, nothing written: ' if dry_run else ''}{c.get('restored', 0)} restored from the discs, "
        f"{c.get('moved', 0)} moved, {c.get('linked', 0) + c.get('copied', 0)} linked, {c.get('kept', 0)} already "
        f"in place; {c.get('old', 0)} older versions kept in {OLDER!r}"
    )
    for text in report.problems:
        report.say("problem: " + text)
    report.say(f"{len(report.problems)} problem(s)" if report.problems else "OK: every file verified")
    return 1 if report.problems else 0


def missing_runs(known: set, last: int) -> list:
    """(first, last) of each run of disc numbers up to ``last`` not in ``known``:
    as long as ``known``, whatever ``last`` is."""
    runs, after = [], 0
    for number in sorted(n for n in known if n <= last) + [last + 1]:
        if number > after + 1:
            runs.append((after + 1, number - 1))
        after = number
    return runs


def _restore(paths, into, apply_deletions, require_all, report) -> None:
    discs = {}
    for path in paths:
        try:
            disc = Disc(path)
        except (RestoreError, OSError) as exc:
            report.problem(str(exc) if isinstance(exc, RestoreError) else f"{path}: cannot read it ({exc})")
            continue
        for text in disc.problems:
            report.problem(text)
        report.notes.extend(disc.notes)
        discs.setdefault(disc.number, []).append(disc)  # the same disc twice: a second source
    series = sorted({d.series for copies in discs.values() for d in copies})
    if len(series) > 1:
        raise RestoreError(f"these discs are of different series ({', '.join(series)}): restore one series at a time")
    for number, copies in discs.items():
        if len({d.digest for d in copies}) > 1:
            raise RestoreError(f"two different discs say they are disc {number}: {', '.join(d.label for d in copies)}")
    if not discs:
        return
    if not report.dry:
        os.makedirs(into, exist_ok=True)
    target = Target(into)
    journal = report.journal = Journal(target, write=not report.dry)
    state = journal.state
    if state["series"] not in (None, series[0]):
        raise RestoreError(f"{target.root} holds discs of series {state['series']}, not {series[0]}")
    for number, copies in discs.items():
        if state["discs"].get(str(number), copies[0].digest) != copies[0].digest:
            raise RestoreError(f"{target.root} was restored from a different disc {number}")
    items, scope, refs = json.loads(json.dumps(state["items"])), set(), set()
    for number in sorted(discs):
        refs |= fold_disc(items, discs[number][0], scope)
    join_splits(items, scope)
    known = set(discs) | {int(n) for n in state["discs"]}
    missing = missing_runs(known, max(known | refs))
    for first, last in missing:
        report.problem(f"disc {first} is missing" if first == last else f"discs {first} to {last} are missing")
    if missing and require_all:
        raise RestoreError("--require-all: nothing restored while a disc is missing")
    journal.log("series", value=series[0])
    order = sorted(scope, key=lambda i: (items[i]["order"], i))
    wants, item_problems = layout(items, order, namer=Namer(journal), apply_deletions=apply_deletions)
    progress = Progress(report.err, sum(w.size or 0 for w in wants))
    executor = Executor(target, journal, discs, report, progress)
    executor.run(wants, scope)
    progress.finish()
    files_of = {}
    for want in wants:
        if want.kind == "file":
            files_of.setdefault(want.item, []).append(want.rel)
    for item in order:
        rec = items[item]
        for text in item_problems[item]:
            executor.fail(item, text)
        rec["complete"] = item not in executor.failed
        if rec["deleted"] and (apply_deletions or rec["deletion_applied"]):
            rec["deletion_applied"] = rec["deletion_applied"] or rec["complete"]
        elif rec["deleted"]:
            where = ", ".join(files_of.get(item, ())) or repr(rec["name"])
            report.note(f"deleted on disc {rec['deleted']}: {where} (kept; --apply-deletions moves it to {DELETED!r})")
        journal.log("item", item, rec)
    for number in sorted(discs):
        journal.log("disc", str(number), discs[number][0].digest)
    for item, rec in sorted(items.items()):
        if item not in scope and not rec["complete"]:
            report.problem(f"{rec['name']!r} is not fully restored (from an earlier run): give its discs again")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="restore.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--into", required=True, metavar="FOLDER", help="where to restore (created if needed)")
    parser.add_argument(
        "--apply-deletions", action="store_true", help=f"move deleted items to FOLDER/{DELETED}/ (else only reported)"
    )
    parser.add_argument("--require-all", action="store_true", help="restore nothing if a disc of the series is missing")
    parser.add_argument("--dry-run", action="store_true", help="check the discs and say what would be done")
    parser.add_argument("paths", nargs="+", metavar="DISC", help="a disc folder, an ISO image or a drive")
    args = parser.parse_args(argv)
    return restore(args.paths, args.into, args.apply_deletions, args.dry_run, args.require_all)


if __name__ == "__main__":
    sys.exit(main())
