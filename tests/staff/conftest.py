"""Copies in the states the staff pages show, made through the real transitions."""

import pytest

from exporter.models import CopyStatus, DiscCopy, DiscEntry, EntryKind
from tests.factories import COPY_MAIN_PATH, COPY_STATES_WALKED, add_sized, new_copy

MAIN_PATH = COPY_MAIN_PATH
# Every state a copy can be walked to here: the main path, and returned.
EVERY_STATE = COPY_STATES_WALKED


@pytest.fixture
def make_copy(sam):
    def make(owner, target: str = CopyStatus.QUEUED, medium: str = "cd") -> DiscCopy:
        return new_copy(owner, sam, target, medium)

    return make


def carry(disc, captured_at: str | None, *, held_back: bool = False, kind: str = EntryKind.FILE) -> None:
    """Put an item taken at ``captured_at`` on the disc (rows only, as planning leaves them)."""
    item = add_sized(disc.owner, 100, f"{captured_at}.jpg")
    DiscEntry.objects.create(
        disc=disc, item=item, kind=kind, held_back=held_back, metadata={"captured_at": captured_at}
    )
