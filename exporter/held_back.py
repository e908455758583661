"""Why an item is held back, in words for the people who read it.

A held-back item's reason travels on the disc (``manifest.json``,
``index.html``) and may reach the portal and emails: it is a sentence written
for the subscriber, never a storage path, object key or exception text.  The
technical detail goes to the server log only (:func:`exporter.build._hold_back`).
"""

from __future__ import annotations

from exporter.models import ItemIssue

_FOR_PEOPLE = {
    ItemIssue.Kind.MISSING_OBJECT: (
        "Its stored original could not be found when this disc was made. We have been told and will put it "
        "on a later disc."
    ),
    ItemIssue.Kind.UNREADABLE: (
        "Its stored original could not be read when this disc was made. We have been told and will put it on a "
        "later disc."
    ),
    ItemIssue.Kind.CHECKSUM_MISMATCH: (
        "Its stored original did not match the checksum recorded when it was uploaded, so it was kept off this "
        "disc rather than copied damaged. We have been told and will put it on a later disc."
    ),
}
_ANYTHING_ELSE = "It could not be copied when this disc was made. We have been told and will put it on a later disc."


def reason_for_people(kind: str) -> str:
    """The sentence shown for an item held back because of ``kind`` (an
    :class:`ItemIssue.Kind`); a kind without its own sentence gets a general one."""
    return _FOR_PEOPLE.get(kind, _ANYTHING_ELSE)
