"""Names on the disc (DESIGN §3).

User-supplied album and file names are hostile.  :func:`assign_disc_paths`
turns them into *canonical* disc paths: the one name each file has in the
UDF and Rock Ridge views, in the BagIt manifests and in ``manifest.json``.
It must extract unchanged with 7-Zip (UDF) and xorriso (Rock Ridge) on
Windows, macOS and Linux, so a name keeps the original (NFC) spelling where
it is legal everywhere and is renamed visibly and deterministically where it
is not.

:func:`short_names` derives the ISO 9660 (level 3) and Joliet names, which
are shortened, unique and never lose the part that told two names apart.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

# Characters Windows (and, for ``/``, every system) refuses in a name, and
# ``%``, which is the BagIt manifest escape character: RFC 8493 wants it as
# ``%25`` while bagit-python does not decode that, so a literal ``%`` cannot
# survive both.  Each is replaced by its fullwidth twin, which looks alike.
_FULLWIDTH = {c: chr(0xFF00 + ord(c) - 0x20) for c in '/\\:*?"<>|%'}

# Bidirectional overrides and isolates can make "gpj.exe" look like
# "exe.jpg"; a name should read as it is.
_BIDI_CONTROLS = frozenset([0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])

_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"]
    + [f"{dev}{n}" for dev in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")]
)

_DOT = "\uff0e"  # FULLWIDTH FULL STOP, for leading and trailing dots
_SPACE = "\u2423"  # OPEN BOX, for leading and trailing white space
_UNNAMED = "unnamed"

# Rock Ridge / Linux / macOS: 255 bytes of UTF-8.  UDF as pycdlib writes it
# (udf.py UDFFileIdentifierDescriptor.new): 8-bit CS0 when every character
# is latin-1, at most 253 characters; otherwise UTF-16 big-endian (non-BMP
# characters as surrogate pairs), at most 126 code units.
MAX_NAME_BYTES = 255
MAX_UDF_LATIN1 = 253
MAX_UDF_UNITS = 126

# A shortened name ends with "~" and this many hex digits of the sha256 of
# the whole original, so long names that differ only at the end stay apart.
_HASH_DIGITS = 8
_MAX_EXT = 16


@dataclass(frozen=True)
class NameRequest:
    """One file to place: ``folders`` are album names from the top down."""

    key: Hashable
    folders: tuple[str, ...]
    name: str


# --- canonical names -------------------------------------------------------


def _utf16_units(name: str) -> int:
    return len(name.encode("utf-16-be", "surrogatepass")) // 2


def fits_everywhere(name: str) -> bool:
    """True when ``name`` fits Rock Ridge/Linux and pycdlib's UDF names."""
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return False
    if all(ord(c) < 256 for c in name):
        return len(name) <= MAX_UDF_LATIN1
    return _utf16_units(name) <= MAX_UDF_UNITS


def _replace_char(c: str) -> str:
    o = ord(c)
    if o < 0x20:
        return chr(0x2400 + o)  # control pictures: ␀ … ␟
    if o == 0x7F:
        return "\u2421"  # ␡
    if 0x80 <= o < 0xA0 or 0xD800 <= o < 0xE000 or o in _BIDI_CONTROLS:
        return "\ufffd"  # C1 controls, lone surrogates, bidi controls
    return _FULLWIDTH.get(c, c)


def _is_end_junk(c: str) -> bool:
    return c == "." or c.isspace()


def _end_replacement(c: str) -> str:
    return _DOT if c == "." else _SPACE


def _split_ext(name: str) -> tuple[str, str]:
    """``("IMG 1", ".jpg")``; a name that is all extension, or an absurdly
    long one, counts as having none."""
    dot = name.rfind(".")
    if dot <= 0 or len(name) - dot > _MAX_EXT:
        return name, ""
    return name[:dot], name[dot:]


def _tag(original: str) -> str:
    return "~" + hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_DIGITS]


def _trim(stem: str, fits: Callable[[str], bool], tail: str) -> str:
    """The longest prefix ``p`` of ``stem`` with ``fits(p + tail)``."""
    lo, hi = 0, len(stem)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(stem[:mid] + tail):
            lo = mid
        else:
            hi = mid - 1
    # Do not end on half of an emoji sequence.
    return stem[:lo].rstrip("\u200d\ufe0f\ufe0e")


def _shorten(name: str, original: str, fits: Callable[[str], bool], suffix: str = "", split: bool = True) -> str:
    """Make ``name + suffix`` fit, keeping the extension; a cut adds the tag."""
    stem, ext = _split_ext(name) if split else (name, "")
    if fits(stem + suffix + ext):
        return stem + suffix + ext
    tail = _tag(original) + suffix + ext
    return _trim(stem, fits, tail) + tail


def safe_name(raw: str) -> str:
    """The canonical form of one name, before de-duplication."""
    # Pair up surrogates that arrived split; a lone one becomes U+FFFD.
    name = raw.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    name = unicodedata.normalize("NFC", name)
    name = "".join(_replace_char(c) for c in name)
    if not name:
        return _UNNAMED
    # Windows drops trailing dots and spaces, and leading ones hide a file
    # or get lost in manifests: show them instead.
    start = 0
    while start < len(name) and _is_end_junk(name[start]):
        start += 1
    end = len(name)
    while end > start and _is_end_junk(name[end - 1]):
        end -= 1
    name = "".join(map(_end_replacement, name[:start])) + name[start:end] + "".join(map(_end_replacement, name[end:]))
    stem, dot, rest = name.partition(".")
    if stem.rstrip(" ").upper() in _RESERVED:
        name = stem + "_" + dot + rest
    name = unicodedata.normalize("NFC", name)
    if not fits_everywhere(name):
        name = _shorten(name, raw, fits_everywhere)
    return name


def fold(name: str) -> str:
    """Unicode canonical caseless form: what Windows and macOS treat as equal."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


def _dedupe(entries: list[tuple[object, str, bool]]) -> dict[object, str]:
    """Unique names in one folder.  ``entries`` are ``(id, name, is_file)`` in
    priority order; the first of each caseless group keeps its name, the rest
    get `` (2)``, `` (3)`` … that nobody else has."""
    taken: set[str] = set()
    result: dict[object, str] = {}
    losers = []
    for ident, name, is_file in entries:
        key = fold(name)
        if key in taken:
            losers.append((ident, name, is_file))
        else:
            taken.add(key)
            result[ident] = name
    for ident, name, is_file in losers:
        n = 2
        while True:
            candidate = _shorten(name, name, fits_everywhere, f" ({n})", split=is_file)
            if fold(candidate) not in taken:
                break
            n += 1
        taken.add(fold(candidate))
        result[ident] = candidate
    return result


def _key_ranks(keys: Sequence[Hashable]) -> dict[Hashable, int]:
    try:
        ordered = sorted(keys)  # type: ignore[type-var]
    except TypeError:
        ordered = sorted(keys, key=lambda k: (type(k).__name__, repr(k)))
    return {k: i for i, k in enumerate(ordered)}


def assign_disc_paths(requests: Sequence[NameRequest], root: str = "data") -> dict[Hashable, str]:
    """The canonical disc path (``root/Album/Sub/name``) for each request key.

    Deterministic for the same set of requests in any order.  Albums are told
    apart by their exact names from the top; files in one album that clash
    (case- and normalisation-insensitively, with each other or with a
    sub-album) are numbered in the sorted order of their keys, sub-albums
    first.
    """
    root = root.strip("/")
    if not root or any(part in ("", ".", "..") or safe_name(part) != part for part in root.split("/")):
        raise ValueError(f"unsafe root folder {root!r}")
    keys = [r.key for r in requests]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate keys in name requests")
    ranks = _key_ranks(keys)

    files_in: dict[tuple[str, ...], list[NameRequest]] = defaultdict(list)
    subfolders: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for request in requests:
        files_in[request.folders].append(request)
        for depth in range(len(request.folders)):
            subfolders[request.folders[:depth]].add(request.folders[depth])

    result: dict[Hashable, str] = {}
    pending = [((), root)]
    while pending:
        folder, disc_path = pending.pop()
        entries: list[tuple[object, str, bool]] = [
            (("folder", sub), safe_name(sub), False) for sub in sorted(subfolders.get(folder, ()))
        ]
        for request in sorted(files_in.get(folder, ()), key=lambda r: ranks[r.key]):
            entries.append((("file", request.key), safe_name(request.name), True))
        for (kind, ident), name in _dedupe(entries).items():  # type: ignore[misc]
            if kind == "folder":
                pending.append(((*folder, ident), f"{disc_path}/{name}"))
            else:
                result[ident] = f"{disc_path}/{name}"
    return result


# --- ISO 9660 and Joliet ---------------------------------------------------

# Ecma-119 7.5.2 / 7.6.3: a file identifier has at most 30 characters (name,
# dot and extension; pycdlib does not check this at level 3), a directory
# identifier at most 31.  Joliet allows 64 UCS-2 units, but pycdlib checks
# the length of the UTF-8 name against 64 (pycdlib.py,
# _joliet_name_and_parent_from_path), so that stricter limit is the real one.
ISO_FILE_MAX = 30
ISO_DIR_MAX = 31
ISO_EXT_MAX = 8
JOLIET_MAX_BYTES = 64
_ISO_HASH = 6
_JOLIET_BAD = frozenset("*/:;?\\")
# pycdlib relocates directories deeper than 7 levels into /RR_MOVED (with
# Rock Ridge CL/RE links), so nothing of ours may take that name at the top.
_ISO_RESERVED_AT_ROOT = frozenset(["RR_MOVED"])


def _d_chars(text: str) -> str:
    """Upper-case d-characters (A-Z 0-9 _), accents dropped, runs of others as ``_``."""
    text = unicodedata.normalize("NFKD", text)
    out = []
    for c in text:
        if unicodedata.combining(c):
            continue
        c = c.upper()
        if ("A" <= c <= "Z") or ("0" <= c <= "9"):
            out.append(c)
        elif not out or out[-1] != "_":
            out.append("_")
    return "".join(out).strip("_")


def _short_hash(name: str, salt: int) -> str:
    data = name if not salt else f"{name}\x00{salt}"
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:_ISO_HASH].upper()


def _iso_candidate(name: str, is_dir: bool, salt: int | None) -> str:
    """The ISO identifier (without ``;1``); ``salt`` None for the plain form,
    else a hash of the full canonical name (salted on repeats) is added."""
    if is_dir:
        stem, ext, limit = _d_chars(name) or "_", "", ISO_DIR_MAX
    else:
        raw_stem, raw_ext = _split_ext(name)
        stem = _d_chars(raw_stem) or "_"
        ext = _d_chars(raw_ext[1:])[:ISO_EXT_MAX] if raw_ext else ""
        limit = ISO_FILE_MAX - 1 - len(ext)
    if salt is None and len(stem) <= limit:
        return stem if is_dir else f"{stem}.{ext}"
    tag = "_" + _short_hash(name, salt or 0)
    stem = stem[: limit - len(tag)] + tag
    return stem if is_dir else f"{stem}.{ext}"


def _joliet_fits(name: str) -> bool:
    return len(name.encode("utf-8", "surrogatepass")) <= JOLIET_MAX_BYTES


def _joliet_candidate(name: str, is_dir: bool, salt: int | None) -> str:
    clean = "".join("_" if c in _JOLIET_BAD or ord(c) < 0x20 else c for c in name)
    if salt is None and _joliet_fits(clean):
        return clean
    stem, ext = (clean, "") if is_dir else _split_ext(clean)
    if len(ext.encode("utf-8")) > ISO_EXT_MAX + 1:
        stem, ext = clean, ""
    tail = "~" + _short_hash(name, salt or 0).lower() + ext
    return _trim(stem, _joliet_fits, tail) + tail


def _unique(
    children: list[tuple[str, bool]],
    candidate: Callable[[str, bool, int | None], str],
    key: Callable[[str, bool], str],
    reserved: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """Names for one directory: plain where unique, else tagged with a hash."""
    plain = {name: candidate(name, is_dir, None) for name, is_dir in children}
    counts: dict[str, int] = defaultdict(int)
    for name, is_dir in children:
        counts[key(plain[name], is_dir)] += 1
    taken = set(reserved)
    result = {}
    clashing = []
    for name, is_dir in children:
        k = key(plain[name], is_dir)
        if counts[k] == 1 and k not in reserved:
            result[name] = plain[name]
            taken.add(k)
        else:
            clashing.append((name, is_dir))
    for name, is_dir in clashing:
        salt = 0
        while True:
            short = candidate(name, is_dir, salt)
            if key(short, is_dir) not in taken:
                break
            salt += 1
        taken.add(key(short, is_dir))
        result[name] = short
    return result


def _iso_key(identifier: str, is_dir: bool) -> str:
    return identifier.rstrip(".")


def _joliet_key(identifier: str, is_dir: bool) -> str:
    return fold(identifier)


def short_names(paths: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``canonical path -> (iso9660_path, joliet_path)`` for every file path and
    every directory above one.  Both are absolute (``/DATA/IMG_1.JPG;1``,
    ``/data/IMG 1.jpg``) and ready for pycdlib."""
    tree: dict[str, dict[str, bool]] = defaultdict(dict)  # dir -> {child name: is_dir}
    files = set()
    for path in paths:
        parts = path.strip("/").split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"not a canonical disc path: {path!r}")
        files.add("/".join(parts))
        for depth in range(len(parts)):
            parent = "/".join(parts[:depth])
            is_dir = depth < len(parts) - 1
            tree[parent][parts[depth]] = tree[parent].get(parts[depth], False) or is_dir
    clash = [f for f in files if tree.get(f)]
    if clash:
        raise ValueError(f"{sorted(clash)[0]!r} is both a file and a folder")

    result: dict[str, tuple[str, str]] = {}
    pending = [("", "", "")]
    while pending:
        directory, iso_dir, joliet_dir = pending.pop()
        children = sorted(tree.get(directory, {}).items())
        reserved = _ISO_RESERVED_AT_ROOT if not directory else frozenset()
        iso = _unique(children, _iso_candidate, _iso_key, reserved)
        joliet = _unique(children, _joliet_candidate, _joliet_key)
        for name, is_dir in children:
            path = f"{directory}/{name}" if directory else name
            iso_path = f"{iso_dir}/{iso[name]}" + ("" if is_dir else ";1")
            joliet_path = f"{joliet_dir}/{joliet[name]}"
            result[path] = (iso_path, joliet_path)
            if is_dir:
                pending.append((path, iso_path, joliet_path))
    return result
