"""The print sheet: disc labels two to a page, one mailing label and packing
slip per envelope, from the address snapshot, on A4 or Letter."""

import pytest
from django.urls import reverse

from exporter.models import CopyStatus, Subscription
from tests.staff.conftest import carry

pytestmark = pytest.mark.django_db


def sheet(client, chosen, **params) -> str:
    query = "&".join([*(f"copies={c.pk}" for c in chosen), *(f"{k}={v}" for k, v in params.items())])
    response = client.get(reverse("staff:print") + "?" + query)
    assert response.status_code == 200
    return response.content.decode()


def test_one_slip_per_envelope_from_the_address_snapshot(client, alice, bob, sam, make_copy):
    a1, a2, b1 = (
        make_copy(alice, CopyStatus.CHECKED),
        make_copy(alice, CopyStatus.CHECKED),
        make_copy(bob, CopyStatus.CHECKED),
    )
    carry(a1.disc, "2024-03-03T08:30:00+00:00")
    # Alice moves after her discs were claimed: the envelope still goes where the copies were claimed for.
    Subscription.objects.filter(user=alice).update(address_line1="99 Elsewhere Road")
    client.force_login(sam)
    page = sheet(client, [a1, a2, b1])
    assert page.count('alt="Disc label') == 3
    assert page.count('aria-label="Disc labels, page') == 2  # two labels to a page
    assert page.count("<h2>Packing slip</h2>") == 2
    assert "12 Quay Street" in page and "99 Elsewhere Road" not in page
    assert "UNITED KINGDOM" in page and "UNITED STATES" in page
    assert "3 Mar 2024" in page
    assert "2 discs in this envelope" in page and "1 disc in this envelope" in page
    assert "Mark 3 labelled" in page


@pytest.mark.parametrize("paper, size", [("a4", "size: A4;"), ("letter", "size: Letter;"), ("tabloid", "size: A4;")])
def test_the_page_size_is_the_paper_chosen(client, alice, sam, make_copy, paper, size):
    copy = make_copy(alice, CopyStatus.CHECKED)
    client.force_login(sam)
    assert size in sheet(client, [copy], paper=paper)


def test_labels_only_or_slips_only(client, alice, sam, make_copy):
    copy = make_copy(alice, CopyStatus.CHECKED)
    client.force_login(sam)
    labels_only, slips_only = sheet(client, [copy], what="labels"), sheet(client, [copy], what="slips")
    assert 'alt="Disc label' in labels_only and "<h2>Packing slip</h2>" not in labels_only
    assert 'alt="Disc label' not in slips_only and "<h2>Packing slip</h2>" in slips_only


def test_nothing_chosen_or_forged_ids_print_nothing(client, sam):
    client.force_login(sam)
    page = sheet(client, [], copies="abc")
    assert "Choose copies to print" in page and "Packing slip</h2>" not in page
