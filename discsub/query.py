"""Reading query parameters: every ``request.GET`` value a view uses goes
through a form or one of these helpers, so a hostile value gives a safe
default or a clear 400, never a 500.

A number is ASCII digits only.  ``str.isdigit()`` is true for "²", which
``int()`` refuses, and ``int()`` takes "٣" (Arabic-Indic three) and 5,000-digit
strings only to refuse those past 4,300 digits: none of these is a number a
link of ours writes."""

from __future__ import annotations

import re

from django.http import HttpRequest

_DIGITS = re.compile(r"[0-9]{1,18}", re.ASCII)  # 18 digits stay below 2**63, a BigAutoField's range


def number(value: str | None, *, default: int | None = None, maximum: int = 2**63 - 1) -> int | None:
    """``value`` as a whole number from 0 to ``maximum``, or ``default``."""
    if value is None or not _DIGITS.fullmatch(value):
        return default
    found = int(value)
    return found if found <= maximum else default


def page_number(request: HttpRequest) -> int:
    """The ``page`` a paginated list asks for; 1 for anything but a page number.
    (Paginator.get_page then clips a number past the end to the last page.)"""
    return number(request.GET.get("page"), default=1) or 1


def choice(request: HttpRequest, name: str, choices, default: str) -> str:
    """The parameter when it is one of ``choices``, else ``default``."""
    value = request.GET.get(name)
    return value if value in choices else default


def ids(values: list[str], *, limit: int) -> list[int]:
    """The values that are object ids (at most ``limit``, in order, without
    repeats); the others are dropped, as a forged id finds nothing anyway."""
    found = (number(v) for v in values)
    return list(dict.fromkeys(v for v in found if v is not None))[:limit]
