"""Carriers staff ship with: their tracking-number formats and tracking pages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from exporter.errors import ExportError


class InvalidTracking(ExportError):
    pass


@dataclass(frozen=True)
class Carrier:
    code: str
    name: str
    # Accepted tracking numbers (after removing spaces, upper case); None: any 4–40 letters/digits.
    pattern: re.Pattern | None
    example: str
    # Where a subscriber follows the envelope; "{}" is the tracking number.
    url: str


CARRIERS: dict[str, Carrier] = {
    c.code: c
    for c in [
        Carrier(
            "royal-mail",
            "Royal Mail",
            re.compile(r"[A-Z]{2}\d{9}GB"),
            "AB123456789GB",
            "https://www.royalmail.com/track-your-item#/tracking-results/{}",
        ),
        Carrier(
            "usps",
            "USPS",
            re.compile(r"(9\d{19,21}|[A-Z]{2}\d{9}US)"),
            "9400111899223197428490",
            "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
        ),
        Carrier(
            "ups", "UPS", re.compile(r"1Z[0-9A-Z]{16}"), "1Z999AA10123456784", "https://www.ups.com/track?tracknum={}"
        ),
        Carrier(
            "fedex",
            "FedEx",
            re.compile(r"(\d{12}|\d{15}|\d{20})"),
            "123456789012",
            "https://www.fedex.com/fedextrack/?trknbr={}",
        ),
        Carrier(
            "dhl",
            "DHL Express",
            re.compile(r"\d{10}"),
            "1234567890",
            "https://www.dhl.com/global-en/home/tracking.html?tracking-id={}",
        ),
        Carrier("other", "Other carrier", None, "", ""),
    ]
}

CARRIER_CHOICES = [(c.code, c.name) for c in CARRIERS.values()]
_ANY = re.compile(r"[0-9A-Z-]{4,40}")


def normalize_tracking(carrier: str, tracking: str) -> str:
    """The tracking number in its canonical form, or :class:`InvalidTracking` with the expected format."""
    found = CARRIERS.get(carrier)
    if found is None:
        raise InvalidTracking(f"Unknown carrier {carrier!r}.")
    number = re.sub(r"\s+", "", tracking or "").upper()
    if not number:
        raise InvalidTracking("Enter the tracking number from the label.")
    if not (found.pattern or _ANY).fullmatch(number):
        if found.example:
            raise InvalidTracking(f"{number[:40]} is not a {found.name} tracking number (like {found.example}).")
        raise InvalidTracking("A tracking number is 4 to 40 letters and digits.")
    return number


def tracking_url(carrier: str, tracking: str) -> str:
    found = CARRIERS.get(carrier)
    if found is None or not found.url or not tracking:
        return ""
    return found.url.format(quote(tracking))


def carrier_name(carrier: str) -> str:
    found = CARRIERS.get(carrier)
    return found.name if found else carrier
