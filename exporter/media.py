"""The physical media a disc can be burned to, and their exact capacities."""

from django.db import models

SECTOR_SIZE = 2048


class Medium(models.TextChoices):
    CD = "cd", "CD-R 80 min"
    DVD = "dvd", "DVD±R"
    DVD_DL = "dvd-dl", "DVD+R DL"
    BD = "bd", "BD-R 25 GB"


# Capacities in 2048-byte sectors (DESIGN §2.4).  DVD is the least common
# denominator of DVD-R and DVD+R; BD assumes the drive's default defect
# management spare area.
CAPACITY_SECTORS: dict[str, int] = {
    Medium.CD: 359_424,
    Medium.DVD: 2_295_104,
    Medium.DVD_DL: 4_173_824,
    Medium.BD: 11_826_176,
}


def capacity_bytes(medium: str) -> int:
    return CAPACITY_SECTORS[medium] * SECTOR_SIZE


def sectors_for(size: int) -> int:
    return -(-size // SECTOR_SIZE)
