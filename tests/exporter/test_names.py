import random
import re
import unicodedata
from collections import defaultdict

import pytest

from exporter.names import (
    NameRequest,
    assign_disc_paths,
    fits_everywhere,
    fold,
    safe_name,
    short_names,
)

# DESIGN §3, every case.  Each entry: (album folders, original name).
HOSTILE = [
    (("Holidays", "Été"), "Café.jpg"),  # NFC
    (("Holidays", "Été"), "Cafe\u0301.jpg"),  # the same name in NFD
    (("Holidays", "Été"), "😀 party 🎉.jpg"),
    (("Holidays", "Été"), "👨\u200d👩\u200d👧 family.jpg"),
    (("Holidays", "Été"), "a" * 260 + "-one.jpg"),
    (("Holidays", "Été"), "a" * 260 + "-two.jpg"),
    (("Holidays", "Été"), "é" * 200 + ".jpg"),
    (("Holidays", "Été"), "漢" * 120 + ".jpg"),
    (("Holidays", "Été"), "😀" * 70 + ".png"),
    *[(("Chars",), f"x{c}y.jpg") for c in '/\\:*?"<>|'],
    (("Chars",), "tab\there.jpg"),
    (("Chars",), "new\nline\r.jpg"),
    (("Chars",), "nul\x00bell\x07.jpg"),
    (("Chars",), "del\x7f.jpg"),
    (("Chars",), "100%.jpg"),
    (("Chars",), "evil\u202egpj.exe"),
    (("Chars",), "lone\ud800surrogate.jpg"),
    (("Edges",), ".hidden.jpg"),
    (("Edges",), "trailing dot."),
    (("Edges",), " leading space.jpg"),
    (("Edges",), "trailing space.jpg "),
    (("Edges",), "..."),
    (("Edges",), "."),
    (("Edges",), ".."),
    (("Edges",), ""),
    (("Reserved",), "CON"),
    (("Reserved",), "prn.txt"),
    (("Reserved",), "Aux.tar.gz"),
    (("Reserved",), "NUL"),
    (("Reserved",), "com1.jpg"),
    (("Reserved",), "LPT9"),
    (("Reserved",), "lpt9.JPG"),
    (("Reserved",), "CONSOLE.jpg"),  # not reserved
    (("Case",), "IMG_0001.JPG"),
    (("Case",), "img_0001.jpg"),
    (("Case",), "Img_0001.Jpg"),
    (("Case",), "img_0001 (2).jpg"),  # already has the name a clash would get
    (("Absolute",), "/etc/passwd"),
    (("Absolute",), "C:\\x"),
    (("Absolute",), "\\\\server\\share"),
    (("Twice",), "same.jpg"),
    (("Twice",), "same.jpg"),
    (("..",), "in dotdot album.jpg"),
    ((".", "/", "C:"), "odd albums.jpg"),
    ((), "no album.jpg"),
    (tuple(f"Level {n}" for n in range(12)), "deep.jpg"),
    (("Case", "Sub"), "x.jpg"),
    (("Case", "sub"), "x.jpg"),  # a second album differing only in case
    (("Case",), "SUB"),  # a file clashing with the albums
]

FORBIDDEN = set('/\\:*?"<>|%') | {chr(c) for c in range(0x20)} | {"\x7f", "\u202e"}
RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM[1-9¹²³]|LPT[1-9¹²³])(\..*)?$", re.IGNORECASE)


def hostile_requests():
    return [NameRequest(key=n, folders=folders, name=name) for n, (folders, name) in enumerate(HOSTILE)]


@pytest.fixture(scope="module")
def assigned():
    return assign_disc_paths(hostile_requests())


def test_every_request_gets_a_path_under_the_root(assigned):
    assert set(assigned) == set(range(len(HOSTILE)))
    assert all(path.startswith("data/") for path in assigned.values())


def test_names_are_legal_on_every_system(assigned):
    for path in assigned.values():
        for part in path.split("/"):
            assert part not in ("", ".", "..")
            assert unicodedata.is_normalized("NFC", part)
            assert not FORBIDDEN & set(part), part
            assert not RESERVED.match(part.split(".")[0].rstrip() + ".x"), part
            assert part[0] not in ". " and part[-1] not in ". ", part
            assert not part[-1].isspace()
            assert len(part.encode("utf-8")) <= 255
            assert fits_everywhere(part), part


def test_names_are_unique_ignoring_case_and_normalisation(assigned):
    by_folder = defaultdict(set)
    for path in assigned.values():
        folder, _, name = path.rpartition("/")
        by_folder[fold(folder)].add(fold(name))
    assert sum(len(names) for names in by_folder.values()) == len(assigned)
    # A file never clashes with an album of the same name either.
    folders = {fold(p.rpartition("/")[0]) for p in assigned.values()}
    assert not folders & {fold(p) for p in assigned.values()}


def test_legal_names_are_kept_as_they_are(assigned):
    assert assigned[0] == "data/Holidays/Été/Café.jpg"
    assert assigned[2] == "data/Holidays/Été/😀 party 🎉.jpg"
    assert assigned[3] == "data/Holidays/Été/👨\u200d👩\u200d👧 family.jpg"
    assert assigned[HOSTILE.index((("Reserved",), "CONSOLE.jpg"))] == "data/Reserved/CONSOLE.jpg"
    assert assigned[HOSTILE.index(((), "no album.jpg"))] == "data/no album.jpg"


def test_illegal_names_are_replaced_visibly(assigned):
    def path(folders, name):
        return assigned[HOSTILE.index((folders, name))]

    assert path(("Chars",), "x/y.jpg") == "data/Chars/x／y.jpg"
    assert path(("Chars",), "x\\y.jpg") == "data/Chars/x＼y.jpg"
    assert path(("Chars",), 'x"y.jpg') == "data/Chars/x＂y.jpg"
    assert path(("Chars",), "tab\there.jpg") == "data/Chars/tab␉here.jpg"
    assert path(("Chars",), "new\nline\r.jpg") == "data/Chars/new␊line␍.jpg"
    assert path(("Chars",), "100%.jpg") == "data/Chars/100％.jpg"
    assert path(("Chars",), "lone\ud800surrogate.jpg") == "data/Chars/lone\ufffdsurrogate.jpg"
    assert path(("Edges",), ".hidden.jpg") == "data/Edges/．hidden.jpg"
    assert path(("Edges",), "trailing dot.") == "data/Edges/trailing dot．"
    assert path(("Edges",), " leading space.jpg") == "data/Edges/␣leading space.jpg"
    assert path(("Edges",), "..") == "data/Edges/．．"
    assert path(("Edges",), "") == "data/Edges/unnamed"
    assert path(("Reserved",), "CON") == "data/Reserved/CON_"
    assert path(("Reserved",), "Aux.tar.gz") == "data/Reserved/Aux_.tar.gz"
    assert path(("Reserved",), "com1.jpg") == "data/Reserved/com1_.jpg"
    assert path(("Absolute",), "/etc/passwd") == "data/Absolute/／etc／passwd"
    assert path(("Absolute",), "C:\\x") == "data/Absolute/C：＼x"
    assert path(("..",), "in dotdot album.jpg") == "data/．．/in dotdot album.jpg"
    assert path((".", "/", "C:"), "odd albums.jpg") == "data/．/／/C：/odd albums.jpg"


def test_clashes_are_numbered_in_key_order(assigned):
    def path(n):
        return assigned[n].rsplit("/", 1)[1]

    nfc, nfd = 0, 1
    assert (path(nfc), path(nfd)) == ("Café.jpg", "Café (2).jpg")
    case = [HOSTILE.index((("Case",), n)) for n in ("IMG_0001.JPG", "img_0001.jpg", "Img_0001.Jpg")]
    # "img_0001 (2).jpg" keeps its own name, so the clashes skip to (3).
    assert [path(n) for n in case] == ["IMG_0001.JPG", "img_0001 (3).jpg", "Img_0001 (4).Jpg"]
    assert path(HOSTILE.index((("Case",), "img_0001 (2).jpg"))) == "img_0001 (2).jpg"
    twice = [n for n, entry in enumerate(HOSTILE) if entry == (("Twice",), "same.jpg")]
    assert [path(n) for n in twice] == ["same.jpg", "same (2).jpg"]
    # Albums first, then files: "Sub", "sub (2)", and the file "SUB (3)".
    assert assigned[HOSTILE.index((("Case", "Sub"), "x.jpg"))] == "data/Case/Sub/x.jpg"
    assert assigned[HOSTILE.index((("Case", "sub"), "x.jpg"))] == "data/Case/sub (2)/x.jpg"
    assert assigned[HOSTILE.index((("Case",), "SUB"))] == "data/Case/SUB (3)"


def test_long_names_are_cut_keeping_the_extension_and_what_told_them_apart(assigned):
    one, two = assigned[4].rsplit("/", 1)[1], assigned[5].rsplit("/", 1)[1]
    assert one != two
    for name in (one, two):
        assert name.endswith(".jpg") and re.search(r"~[0-9a-f]{8}\.jpg$", name)
        assert len(name.encode()) <= 255
    latin, cjk, emoji = (assigned[n].rsplit("/", 1)[1] for n in (6, 7, 8))
    assert len(latin) <= 253 and latin.startswith("éééé")
    assert len(cjk.encode("utf-16-be")) // 2 <= 126 and cjk.endswith(".jpg")
    assert len(emoji.encode("utf-16-be")) // 2 <= 126 and emoji.endswith(".png")
    assert "\ud83d" not in emoji  # no emoji cut in half


def test_deep_albums_nest(assigned):
    deep = assigned[HOSTILE.index((tuple(f"Level {n}" for n in range(12)), "deep.jpg"))]
    assert deep.count("/") == 13


def test_the_same_requests_in_any_order_give_the_same_paths(assigned):
    for seed in range(5):
        shuffled = hostile_requests()
        random.Random(seed).shuffle(shuffled)
        assert assign_disc_paths(shuffled) == assigned


def test_keys_of_mixed_types_still_sort_deterministically():
    requests = [NameRequest("b", (), "x.jpg"), NameRequest(1, (), "X.JPG"), NameRequest((2, 0), (), "x.Jpg")]
    first = assign_disc_paths(requests)
    assert assign_disc_paths(list(reversed(requests))) == first
    assert len({fold(p) for p in first.values()}) == 3


def test_duplicate_keys_and_unsafe_roots_are_refused():
    with pytest.raises(ValueError):
        assign_disc_paths([NameRequest(1, (), "a"), NameRequest(1, (), "b")])
    with pytest.raises(ValueError):
        assign_disc_paths([], root="../x")


def test_safe_name_is_idempotent():
    for _, name in HOSTILE:
        once = safe_name(name)
        assert safe_name(once) == once


# --- ISO 9660 and Joliet ---------------------------------------------------


@pytest.fixture(scope="module")
def shorts(assigned):
    return short_names(assigned.values())


def test_short_names_cover_files_and_every_folder(assigned, shorts):
    folders = {p.rsplit("/", n)[0] for p in assigned.values() for n in range(1, p.count("/") + 1)}
    assert set(shorts) == set(assigned.values()) | folders
    assert "data" in shorts


def test_iso9660_names_are_level_3_d_characters(assigned, shorts):
    files = set(assigned.values())
    for path, (iso, _) in shorts.items():
        assert iso.startswith("/") and iso.count("/") == path.count("/") + 1
        name = iso.rsplit("/", 1)[1]
        if path in files:
            assert re.fullmatch(r"[A-Z0-9_]+\.[A-Z0-9_]{0,8};1", name), name
            assert len(name) - 2 <= 30
        else:
            assert re.fullmatch(r"[A-Z0-9_]{1,31}", name), name


def test_joliet_names_fit_and_avoid_forbidden_characters(shorts):
    for _, joliet in shorts.values():
        for part in joliet.strip("/").split("/"):
            assert len(part.encode("utf-16-be")) // 2 <= 64
            assert len(part.encode("utf-8")) <= 64  # what pycdlib checks
            assert not set(part) & set("*/:;?\\")


@pytest.mark.parametrize("which", [0, 1])
def test_short_names_are_unique_per_folder(shorts, which):
    seen = defaultdict(set)
    for path, names in shorts.items():
        parent, _, name = names[which].rpartition("/")
        key = fold(name.removesuffix(";1").rstrip("."))
        assert key not in seen[parent], path
        seen[parent].add(key)


def test_short_names_keep_long_names_apart(shorts):
    long_names = [p for p in shorts if p.rpartition("/")[2].startswith("aaaa")]
    assert len(long_names) == 2
    isos = {shorts[p][0] for p in long_names}
    joliets = {shorts[p][1] for p in long_names}
    assert len(isos) == len(joliets) == 2
    for iso in isos:
        assert re.search(r"_[0-9A-F]{6}\.JPG;1$", iso)


def test_short_names_examples():
    names = short_names(["data/Holidays/IMG 1.jpg", "data/Holidays/Café.jpeg", "data/rr_moved/x", "README.txt"])
    assert names["data/Holidays/IMG 1.jpg"] == ("/DATA/HOLIDAYS/IMG_1.JPG;1", "/data/Holidays/IMG 1.jpg")
    assert names["data/Holidays/Café.jpeg"] == ("/DATA/HOLIDAYS/CAFE.JPEG;1", "/data/Holidays/Café.jpeg")
    assert names["README.txt"] == ("/README.TXT;1", "/README.txt")
    assert names["data/rr_moved"][0] == "/DATA/RR_MOVED"  # only the top is pycdlib's


def test_short_names_are_deterministic(assigned, shorts):
    paths = list(assigned.values())
    random.Random(7).shuffle(paths)
    assert short_names(paths) == shorts


def test_a_path_cannot_be_file_and_folder():
    with pytest.raises(ValueError):
        short_names(["data/a", "data/a/b"])
