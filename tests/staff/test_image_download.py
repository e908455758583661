"""Staff download images through discsub.downloads: streamed, resumable with
a Range request, refused with a clear status for what cannot be served."""

import pytest
from django.urls import reverse

from exporter import build
from exporter.models import DiscStatus
from tests.factories import verified_disc

pytestmark = pytest.mark.django_db

DATA = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def disc(alice):
    disc = verified_disc(alice)
    path = build.image_path(disc)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(DATA)
    return disc


def get(client, disc, **headers):
    return client.get(reverse("staff:disc-image", args=[disc.pk]), headers=headers)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_whole_image_is_an_attachment(client, sam, disc):
    client.force_login(sam)
    response = get(client, disc)
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(len(DATA))
    assert response["Content-Disposition"] == 'attachment; filename="Discsub disc 0001 (Alice Archer).iso"'
    assert body(response) == DATA


@pytest.mark.parametrize(
    "header, first, last",
    [
        ("bytes=0-99", 0, 99),
        ("bytes=10000-", 10000, 10239),
        ("bytes=-40", 10200, 10239),
        ("bytes=10200-99999", 10200, 10239),
    ],
)
def test_a_broken_download_resumes_with_a_range(client, sam, disc, header, first, last):
    client.force_login(sam)
    response = get(client, disc, Range=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert response["Content-Length"] == str(last - first + 1)
    assert body(response) == DATA[first : last + 1]


@pytest.mark.parametrize("header", ["bytes=20000-", "bytes=-0"])
def test_a_range_that_cannot_be_served_is_416(client, sam, disc, header):
    client.force_login(sam)
    response = get(client, disc, Range=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(DATA)}"


# An invalid range-set is ignored (RFC 9110 §14.2), not refused: 416 is for a valid one past the end.
@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "lines=1-2", "bytes=50-10", "bytes=-", "bytes=x-y"])
def test_several_ranges_other_units_or_invalid_ranges_get_the_whole_file(client, sam, disc, header):
    client.force_login(sam)
    response = get(client, disc, Range=header)
    assert response.status_code == 200 and body(response) == DATA


@pytest.mark.parametrize(
    "first, last, expected",
    [
        ("Dana", "Demo", "Discsub disc 0001 (Dana Demo).iso"),
        # Path separators, quotes, Windows' reserved characters and control characters never reach the name.
        ('../..\\evil"', "<x>|:*?\r\nname", "Discsub disc 0001 (evil x name).iso"),
        ("\u202eexe.gpj", "", "Discsub disc 0001 (exe.gpj).iso"),  # no right-to-left override
    ],
)
def test_the_image_is_named_for_people_without_the_owner_number(client, sam, disc, alice, first, last, expected):
    alice.first_name, alice.last_name = first, last
    alice.save()
    client.force_login(sam)
    whole, part = get(client, disc), get(client, disc, Range="bytes=0-9")
    for response in (whole, part):
        disposition = response["Content-Disposition"]
        assert disposition == f'attachment; filename="{expected}"', disposition
        assert str(alice.pk) not in disposition.replace("0001", "")


def test_a_name_beyond_ascii_is_sent_in_both_forms(client, sam, disc, alice):
    alice.first_name, alice.last_name = "Zoë", "Ørsted 京都"
    alice.save()
    client.force_login(sam)
    disposition = get(client, disc)["Content-Disposition"]
    assert disposition == (
        "attachment; filename*=utf-8''Discsub%20disc%200001%20%28Zo%C3%AB%20%C3%98rsted%20%E4%BA%AC%E9%83%BD%29.iso"
    )


def test_a_missing_file_or_an_unverified_image_is_404(client, sam, disc):
    client.force_login(sam)
    build.image_path(disc).unlink()
    assert get(client, disc).status_code == 404
    disc.status = DiscStatus.FAILED
    disc.save(update_fields=["status"])
    assert get(client, disc).status_code == 404
