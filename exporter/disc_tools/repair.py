#!/usr/bin/env python3
"""Repair a damaged Discsub disc image.  Needs Python 3.8+ and nothing else.

    python3 repair.py IMAGE_OR_DEVICE --to REPAIRED.iso
    python3 repair.py IMAGE_OR_DEVICE --check

IMAGE_OR_DEVICE is an image file read from the disc (zeros where the drive
could not read, or cut short) or the drive itself (/dev/sr0).  The disc's
recovery data sits after the end of its ISO 9660 volume, where every reader
ignores it; this tool finds it again without the filesystem, checks every
sector against its CRC-32, rebuilds the damaged ones and writes the image
alone (without the recovery data) to REPAIRED.iso, then checks the whole
image against the sha256 recorded when the disc was made.

Exit status: 0 when the written image has the recorded sha256 (or, with
--check, when the image is undamaged or repairable); 1 otherwise, with
exactly what could not be repaired; 2 for a usage error.

The format (version 1), all numbers little-endian, sectors of 2048 bytes:

- The image of N sectors, padded with virtual zero sectors (never stored)
  to k layers of L sectors: layer i holds image sectors i*L .. i*L+L-1.
  Group g is sector g of every layer.  m parity layers make each byte
  position of a group a codeword of k + m <= 255 bytes of a systematic
  Reed-Solomon (MDS) code over GF(2^8), polynomial 0x11D: parity byte
  j = sum over i of a[j][i] * data byte i, with the Cauchy matrix
  a[j][i] = 1 / ((k + j) XOR i), as Intel ISA-L's gf_gen_cauchy1_matrix makes
  it.  Every square submatrix of a Cauchy matrix is invertible, so any m
  lost sectors of a group come back.  One dead sector costs one byte in
  each of the 2048 codewords of one group; a run of dead sectors spreads
  over consecutive groups: up to m*L contiguous sectors come back.
- After the image: header copy 0, CRC table copy 0, parity layers
  0 .. h-1 (h = ceil(m/2)), header copy 1, CRC table copy 1, parity layers
  h .. m-1, header copy 2, CRC table copy 2, header copy 3 (the last sector).
- A header sector starts with "DISCSUB-ECC-HDR\\n" and ends with the CRC-32
  of its first 2044 bytes (see HEADER below for the fields).
- The CRC table holds the CRC-32 (as zlib.crc32) of every sector of layers
  0 .. k+m-1 (entry layer*L + g; virtual sectors have the CRC of zeros).
  Each table sector starts with "DISCSUB-ECC-CRC\\n", its index, the number
  of entries, 0, the CRC-32 of the sector with these 4 bytes left out, and
  then up to 504 entries.  A sector with no readable copy of its CRC is
  treated as damaged whenever its group can afford it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
import struct
import sys
import time
import zlib
from array import array

SECTOR = 2048
FORMAT_VERSION = 1
HEADER_MAGIC = b"DISCSUB-ECC-HDR\n"
CRC_MAGIC = b"DISCSUB-ECC-CRC\n"
POLYNOMIAL = 0x11D
MATRIX_CAUCHY1 = 1
DEFAULT_PARITY = 32  # with k = 223: dvdisaster RS03 "normal" (14.3 %)
MAX_CODEWORD = 255
HEADER_COPIES = 4
CRC_COPIES = 3
CRC_PREAMBLE = 32
CRCS_PER_SECTOR = (SECTOR - CRC_PREAMBLE) // 4
ZERO_SECTOR = bytes(SECTOR)
ZERO_CRC = zlib.crc32(ZERO_SECTOR)

# magic, version, k, m, L, N, image sha256, polynomial, matrix, CRC table
# sectors, h, this copy's index, 4 header, 3 CRC table and 2 parity positions.
HEADER = struct.Struct("<16sIIIQQ32sIIQII4Q3Q2Q")
HEADER_NOTE = (
    b"Discsub sector recovery data (Reed-Solomon over GF(2^8), per-sector CRC-32). "
    b"Repair with repair.py, beside restore.py on the disc: python3 repair.py IMAGE --to REPAIRED.iso\n"
)
HEADER_NOTE_AT = 1024
CRC_SECTOR = struct.Struct("<16sIIII")


class RecoveryDataError(Exception):
    """No usable recovery data (none there, or of a format this tool does not know)."""


# --- GF(2^8) ----------------------------------------------------------------------------------


def _gf_tables():
    exp, log, x = [0] * 512, [0] * 256, 1
    for i in range(255):
        exp[i], log[x] = x, i
        x <<= 1
        if x & 0x100:
            x ^= POLYNOMIAL
    for i in range(255, 512):
        exp[i] = exp[i - 255]
    return exp, log


EXP, LOG = _gf_tables()


def gf_mul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else EXP[LOG[a] + LOG[b]]


def gf_inv(a: int) -> int:
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return EXP[255 - LOG[a]]


def cauchy_rows(k: int, m: int) -> list:
    """The m parity rows of ISA-L's gf_gen_cauchy1_matrix(k + m, k)."""
    return [[gf_inv(r ^ i) for i in range(k)] for r in range(k, k + m)]


_TABLES = {}


def mul_table(c: int) -> bytes:
    """bytes.translate table multiplying every byte by c."""
    table = _TABLES.get(c)
    if table is None:
        table = _TABLES[c] = bytes(gf_mul(c, x) for x in range(256))
    return table


def gf_invert(matrix: list) -> list:
    """Inverse of a square matrix over GF(2^8) (Gauss-Jordan); ValueError if singular."""
    n = len(matrix)
    rows = [list(row) + [1 if i == j else 0 for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if rows[r][col]), None)
        if pivot is None:
            raise ValueError("singular matrix")
        rows[col], rows[pivot] = rows[pivot], rows[col]
        inv = gf_inv(rows[col][col])
        rows[col] = [gf_mul(inv, v) for v in rows[col]]
        for r in range(n):
            factor = rows[r][col]
            if r != col and factor:
                row, pivot_row = rows[r], rows[col]
                rows[r] = [row[c] ^ gf_mul(factor, pivot_row[c]) for c in range(2 * n)]
    return [row[n:] for row in rows]


def mul_into(acc: int, data: bytes, c: int) -> int:
    """acc XOR c*data, with data as a little-endian int (the whole sector at once)."""
    if c == 0:
        return acc
    if c != 1:
        data = data.translate(mul_table(c))
    return acc ^ int.from_bytes(data, "little")


# --- layout -----------------------------------------------------------------------------------


class Layout:
    """Where everything is, in sectors from the start of the image."""

    def __init__(self, image_sectors: int, k: int, m: int, layer: int):
        if not (1 <= m and 1 <= k and k + m <= MAX_CODEWORD and layer >= 1 and k * layer >= image_sectors >= 1):
            raise RecoveryDataError(f"impossible code shape: N={image_sectors} k={k} m={m} L={layer}")
        self.image_sectors, self.k, self.m, self.layer = image_sectors, k, m, layer
        self.crc_entries = (k + m) * layer
        self.crc_sectors = -(-self.crc_entries // CRCS_PER_SECTOR)
        self.first_half = (m + 1) // 2
        h0 = image_sectors
        p0 = h0 + 1 + self.crc_sectors
        h1 = p0 + self.first_half * layer
        p1 = h1 + 1 + self.crc_sectors
        h2 = p1 + (m - self.first_half) * layer
        h3 = h2 + 1 + self.crc_sectors
        self.headers = (h0, h1, h2, h3)
        self.crc_copies = (h0 + 1, h1 + 1, h2 + 1)
        self.parity_starts = (p0, p1)
        self.total_sectors = h3 + 1

    @classmethod
    def for_image(cls, image_sectors: int, parity: int = DEFAULT_PARITY) -> Layout:
        k = MAX_CODEWORD - parity
        return cls(image_sectors, k, parity, max(1, -(-image_sectors // k)))

    def parity_sector(self, j: int, g: int) -> int:
        if j < self.first_half:
            return self.parity_starts[0] + j * self.layer + g
        return self.parity_starts[1] + (j - self.first_half) * self.layer + g

    def recovery_sectors(self) -> int:
        return self.total_sectors - self.image_sectors


def pack_header(layout: Layout, sha256: bytes, copy: int) -> bytes:
    fields = HEADER.pack(
        HEADER_MAGIC,
        FORMAT_VERSION,
        layout.k,
        layout.m,
        layout.layer,
        layout.image_sectors,
        sha256,
        POLYNOMIAL,
        MATRIX_CAUCHY1,
        layout.crc_sectors,
        layout.first_half,
        copy,
        *layout.headers,
        *layout.crc_copies,
        *layout.parity_starts,
    )
    body = bytearray(SECTOR - 4)
    body[: len(fields)] = fields
    body[HEADER_NOTE_AT : HEADER_NOTE_AT + len(HEADER_NOTE)] = HEADER_NOTE
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def parse_header(sector: bytes):
    """(layout, sha256, copy index) of a header sector, or None if it is not a sound one."""
    if len(sector) != SECTOR or not sector.startswith(HEADER_MAGIC):
        return None
    if struct.unpack_from("<I", sector, SECTOR - 4)[0] != zlib.crc32(sector[: SECTOR - 4]):
        return None
    fields = HEADER.unpack_from(sector)
    version, k, m, layer, image_sectors, sha256, poly, matrix, _crc, _half, copy = fields[1:12]
    if version != FORMAT_VERSION or poly != POLYNOMIAL or matrix != MATRIX_CAUCHY1:
        raise RecoveryDataError(
            f"recovery data of format {version} (polynomial {poly:#x}, matrix {matrix}): "
            "this repair.py reads format 1 only; use the repair.py of the disc itself"
        )
    try:
        layout = Layout(image_sectors, k, m, layer)
    except RecoveryDataError:
        return None
    if fields[9:] != (layout.crc_sectors, layout.first_half, copy) + layout.headers + layout.crc_copies + (
        layout.parity_starts
    ):
        return None
    return layout, sha256, copy


def pack_crc_table(layout: Layout, crcs) -> list:
    """The CRC table sectors for ``crcs`` (one per entry, in entry order)."""
    sectors = []
    for t in range(layout.crc_sectors):
        chunk = crcs[t * CRCS_PER_SECTOR : (t + 1) * CRCS_PER_SECTOR]
        body = bytearray(SECTOR)
        struct.pack_into(f"<{len(chunk)}I", body, CRC_PREAMBLE, *chunk)
        CRC_SECTOR.pack_into(body, 0, CRC_MAGIC, t, len(chunk), 0, 0)
        struct.pack_into("<I", body, 28, zlib.crc32(body[:28] + body[32:]))
        sectors.append(bytes(body))
    return sectors


def _parse_crc_sector(sector, t: int, layout: Layout):
    if sector is None or not sector.startswith(CRC_MAGIC):
        return None
    _magic, index, count, _zero, check = CRC_SECTOR.unpack_from(sector)
    expected = min(CRCS_PER_SECTOR, layout.crc_entries - t * CRCS_PER_SECTOR)
    if index != t or count != expected or check != zlib.crc32(sector[:28] + sector[32:]):
        return None
    return struct.unpack_from(f"<{count}I", sector, CRC_PREAMBLE)


# --- reading a damaged image ------------------------------------------------------------------


class Reader:
    """Sectors of an image file; None for a sector that cannot be read or is cut off."""

    def __init__(self, fd: int):
        self.fd = fd
        self.sectors = os.lseek(fd, 0, os.SEEK_END) // SECTOR

    def read(self, start: int, count: int) -> list:
        have = max(0, min(count, self.sectors - start))
        result = [None] * count
        if have:
            try:
                data = os.pread(self.fd, have * SECTOR, start * SECTOR)
            except OSError:
                data = None
            if data is not None and len(data) == have * SECTOR:
                for n in range(have):
                    result[n] = data[n * SECTOR : (n + 1) * SECTOR]
            else:
                for n in range(have):
                    try:
                        one = os.pread(self.fd, SECTOR, (start + n) * SECTOR)
                    except OSError:
                        continue
                    result[n] = one if len(one) == SECTOR else None
        return result

    def sector(self, n: int):
        return self.read(n, 1)[0]


def find_header(reader: Reader):
    """(layout, sha256, how it was found) from the first sound header copy.

    Looks at the last sector, then after the ISO 9660 volume (its size from
    the primary volume descriptor), then scans backwards from the end."""
    tried = set()

    def attempt(n, how):
        if n in tried or not 0 <= n < reader.sectors:
            return None
        tried.add(n)
        found = parse_header(reader.sector(n) or b"")
        return (found[0], found[1], f"header copy {found[2]} at sector {n}, {how}") if found else None

    found = attempt(reader.sectors - 1, "the last sector")
    pvd = reader.sector(16)
    if not found and pvd and pvd[:6] == b"\x01CD001":
        found = attempt(struct.unpack_from("<I", pvd, 80)[0], "after the ISO 9660 volume")
    chunk = 2048  # sectors
    end = reader.sectors
    while not found and end > 0:
        start = max(0, end - chunk)
        blob = b"".join(s or ZERO_SECTOR for s in reader.read(start, end - start))
        at = blob.rfind(HEADER_MAGIC)
        while at >= 0 and not found:
            if at % SECTOR == 0:
                found = attempt(start + at // SECTOR, "by scanning")
            at = blob.rfind(HEADER_MAGIC, 0, at)
        end = start
    if not found:
        raise RecoveryDataError("no recovery data found: this image has no Discsub sector recovery data")
    return found


def load_crcs(reader: Reader, layout: Layout):
    """(crcs, known): every entry's CRC-32, and 1 where a sound copy of it was read."""
    crcs = array("I", bytes(4 * layout.crc_entries))
    known = bytearray(layout.crc_entries)
    missing = list(range(layout.crc_sectors))
    for copy in layout.crc_copies:
        if not missing:
            break
        sectors = reader.read(copy, layout.crc_sectors)
        still = []
        for t in missing:
            values = _parse_crc_sector(sectors[t], t, layout)
            if values is None:
                still.append(t)
                continue
            at = t * CRCS_PER_SECTOR
            crcs[at : at + len(values)] = array("I", values)
            known[at : at + len(values)] = b"\x01" * len(values)
        missing = still
    return crcs, known


# --- repair -----------------------------------------------------------------------------------


class Report:
    """What a check or a repair found and did."""

    def __init__(self, layout: Layout, found_by: str):
        self.layout, self.found_by = layout, found_by
        self.bad_image = 0  # image sectors found damaged
        self.bad_recovery = 0  # parity sectors found damaged
        self.no_crc = 0  # stored sectors with no readable CRC
        self.rebuilt = 0
        self.failed_groups = []  # (group, damaged sectors in it, [lost image sectors])
        self.sha256_expected = ""
        self.sha256_written = None  # None: no image written
        self.output = None

    @property
    def repairable(self) -> bool:
        return not self.failed_groups

    @property
    def ok(self) -> bool:
        if self.sha256_written is None:
            return self.repairable
        return self.sha256_written == self.sha256_expected

    def lost_sectors(self) -> list:
        return sorted(s for _g, _n, lost in self.failed_groups for s in lost)

    def lines(self) -> list:
        lay = self.layout
        out = [
            f"recovery data: {self.found_by}; image of {lay.image_sectors} sectors in {lay.k} layers "
            f"of {lay.layer} sectors, {lay.m} parity layers (any {lay.m} of {lay.k + lay.m} sectors per group)",
            f"checked {lay.image_sectors + lay.m * lay.layer} sectors: {self.bad_image} damaged in the image, "
            f"{self.bad_recovery} in the parity layers, {self.no_crc} without a readable CRC",
        ]
        if self.rebuilt:
            out.append(f"rebuilt {self.rebuilt} image sectors")
        if self.failed_groups:
            lost = self.lost_sectors()
            out.append(
                f"COULD NOT REPAIR {len(self.failed_groups)} of {lay.layer} groups (more than {lay.m} damaged "
                f"sectors in each): {len(lost)} image sectors stay damaged"
            )
            for g, n, group_lost in sorted(self.failed_groups)[:50]:
                shown = ", ".join(str(s) for s in group_lost[:12]) + (" ..." if len(group_lost) > 12 else "")
                out.append(f"  group {g}: {n} damaged sectors; image sectors lost: {shown or 'none'}")
            if len(self.failed_groups) > 50:
                out.append(f"  ... and {len(self.failed_groups) - 50} more groups")
        if self.sha256_written is not None:
            if self.sha256_written == self.sha256_expected:
                out.append(f"image sha256 OK: {self.sha256_written}")
            else:
                out.append(
                    f"IMAGE SHA256 WRONG: {self.sha256_written}, recorded {self.sha256_expected}: "
                    f"the image in {self.output} is not the disc's image"
                )
        return out


class _Progress:
    """A line every 5 s on ``stream``; or, when ``stream`` is a function,
    ``stream(what, done, total)`` at every step (a caller's progress bar)."""

    def __init__(self, stream, total: int, what: str):
        self.stream, self.total, self.what = stream, total, what
        self.start = self.last = time.monotonic()

    def show(self, done: int) -> None:
        if callable(self.stream):
            self.stream(self.what, done, self.total)
            return
        now = time.monotonic()
        if self.stream is not None and now - self.last >= 5 and self.total:
            self.last = now
            self.stream.write(f"{self.what}: {done * 100 // self.total}% after {now - self.start:.0f} s\n")
            self.stream.flush()


def _solve(k, rows, data, parity, erased, use, size):
    """The erased data rows: an e x e system, solved once for every byte.

    ``data[i]`` and ``parity[j]`` are the surviving rows of the groups that
    share this erasure pattern, joined: a run of damage solves many groups
    at once."""
    inverse = gf_invert([[rows[j][i] for i in erased] for j in use])
    syndromes = []
    for j in use:
        row = rows[j]
        acc = int.from_bytes(parity[j], "little")
        for i in range(k):
            if data[i] is not None:
                acc = mul_into(acc, data[i], row[i])
        syndromes.append(acc.to_bytes(size, "little"))
    rebuilt = {}
    for x, i in enumerate(erased):
        acc = 0
        for r, syndrome in enumerate(syndromes):
            acc = mul_into(acc, syndrome, inverse[x][r])
        rebuilt[i] = acc.to_bytes(size, "little")
    return rebuilt


def repair(source, to=None, progress=None, block: int = 64) -> Report:
    """Check the image at ``source`` against its recovery data and, with ``to``,
    write the repaired image there.  Raises RecoveryDataError when there is no
    usable recovery data; otherwise the Report says what happened (``ok``)."""
    fd = os.open(str(source), os.O_RDONLY)
    rescued = None
    try:
        if to is not None and not stat.S_ISREG(os.fstat(fd).st_mode):
            rescued = str(to) + ".rescued"
            _rescue_copy(fd, rescued, progress)
            os.close(fd)
            fd = os.open(rescued, os.O_RDONLY)
        reader = Reader(fd)
        layout, sha256, how = find_header(reader)
        crcs, known = load_crcs(reader, layout)
        report = Report(layout, how)
        report.sha256_expected = sha256.hex()
        out = None
        if to is not None:
            out = os.open(str(to), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.ftruncate(out, layout.image_sectors * SECTOR)
            report.output = str(to)
        try:
            shown = _Progress(progress, layout.layer, "checking" if to is None else "repairing")
            _repair_groups(reader, layout, crcs, known, report, out, shown, block)
            if out is not None:
                os.fsync(out)
        finally:
            if out is not None:
                os.close(out)
        if to is not None:
            report.sha256_written = _sha256_file(str(to))
        return report
    finally:
        os.close(fd)
        if rescued is not None and os.path.exists(rescued):
            os.unlink(rescued)


def check(source, progress=None) -> Report:
    """repair() without writing anything: is the image undamaged or repairable?"""
    return repair(source, None, progress)


def _repair_groups(reader, layout, crcs, known, report, out, progress, block):
    k, m, big_l, n_img = layout.k, layout.m, layout.layer, layout.image_sectors
    rows = cauchy_rows(k, m)
    crc32 = zlib.crc32
    for g0 in range(0, big_l, block):
        width = min(block, big_l - g0)
        data_cols = []
        for i in range(k):
            first = i * big_l + g0
            stored = max(0, min(width, n_img - first))
            data_cols.append((reader.read(first, stored) if stored else []) + [ZERO_SECTOR] * (width - stored))
        parity_cols = [reader.read(layout.parity_sector(j, g0), width) for j in range(m)]
        patterns = {}
        for d in range(width):
            g = g0 + d
            erased, unsure, bad_parity, good_parity, unsure_parity = [], [], 0, [], []
            for i in range(k):
                at = i * big_l + g
                if at >= n_img:
                    continue
                s = data_cols[i][d]
                if s is None:
                    erased.append(i)
                elif not known[at]:
                    unsure.append(i)
                elif crc32(s) != crcs[at]:
                    erased.append(i)
            for j in range(m):
                at = (k + j) * big_l + g
                s = parity_cols[j][d]
                if s is None:
                    bad_parity += 1
                elif not known[at]:
                    unsure_parity.append(j)
                elif crc32(s) != crcs[at]:
                    bad_parity += 1
                else:
                    good_parity.append(j)
            report.bad_image += len(erased)
            report.bad_recovery += bad_parity
            report.no_crc += len(unsure) + len(unsure_parity)
            if len(erased) + bad_parity + len(unsure) + len(unsure_parity) <= m:
                erased = sorted(erased + unsure)  # a sector with no CRC is only trusted when it must be
            else:
                good_parity += unsure_parity
            if len(erased) > len(good_parity):
                report.failed_groups.append((g, len(erased) + bad_parity, [i * big_l + g for i in erased]))
            elif erased and out is not None:  # a check leaves a repairable group to the repair
                patterns.setdefault((tuple(erased), tuple(good_parity[: len(erased)])), []).append(d)
        for (erased, use), groups in patterns.items():
            data = [None if i in erased else b"".join(data_cols[i][d] for d in groups) for i in range(k)]
            parity = [b"".join(parity_cols[j][d] for d in groups) if j in use else None for j in range(m)]
            rebuilt = _solve(k, rows, data, parity, erased, use, len(groups) * SECTOR)
            for n, d in enumerate(groups):
                g = g0 + d
                sectors = {i: rebuilt[i][n * SECTOR : (n + 1) * SECTOR] for i in erased}
                if all(not known[i * big_l + g] or crc32(s) == crcs[i * big_l + g] for i, s in sectors.items()):
                    for i, s in sectors.items():
                        data_cols[i][d] = s
                    report.rebuilt += len(erased)
                else:
                    report.failed_groups.append((g, len(erased), [i * big_l + g for i in erased]))
        if out is not None:
            for i in range(k):
                first = i * big_l + g0
                stored = max(0, min(width, n_img - first))
                if stored:
                    blob = b"".join(s if s is not None else ZERO_SECTOR for s in data_cols[i][:stored])
                    os.pwrite(out, blob, first * SECTOR)
        progress.show(g0 + width)


def _rescue_copy(fd, path, progress) -> None:
    """Copy a drive to a file, zeros where it cannot read (the CRCs find those)."""
    size = os.lseek(fd, 0, os.SEEK_END)
    reader = Reader(fd)
    reader.sectors = size // SECTOR
    show = _Progress(progress, reader.sectors, "reading the disc")
    with open(path, "wb") as out:
        for start in range(0, reader.sectors, 512):
            count = min(512, reader.sectors - start)
            out.write(b"".join(s or ZERO_SECTOR for s in reader.read(start, count)))
            show.show(start + count)


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="repair.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image", help="the damaged image file, or the drive (/dev/sr0)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--to", help="where to write the repaired image (without the recovery data)")
    what.add_argument("--check", action="store_true", help="only say whether the image is damaged and repairable")
    args = parser.parse_args(argv)
    if args.to is not None and os.path.abspath(args.to) == os.path.abspath(args.image):
        parser.error("--to must be another file than the image")
    try:
        report = repair(args.image, args.to, sys.stderr)
    except (RecoveryDataError, OSError) as exc:
        print(f"repair.py: {exc}", file=sys.stderr)
        return 1
    for line in report.lines():
        print(line)
    if args.to is not None:
        print(f"wrote {args.to}" + ("" if report.ok else " (NOT the disc's image: see above)"))
    elif report.ok:
        print("no damage" if not (report.bad_image or report.bad_recovery) else "damaged, and repairable")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
