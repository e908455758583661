"""Every query parameter of the staff pages is validated (issue #12, finding
7): a hostile value gives a safe default, never a 500.
Unicode digits matter: str.isdigit() is true for '²' (int() refuses it) and
int() takes '٣'."""

import pytest
from django.urls import reverse

from exporter.models import CopyStatus

pytestmark = pytest.mark.django_db

HOSTILE = ["²", "٣", "9" * 5000, "9" * 20, "-1", "", "abc", "1e3", "1\x00", "%"]


@pytest.mark.parametrize("value", HOSTILE)
def test_the_print_sheet_ignores_copies_that_are_not_copy_numbers(client, alice, sam, make_copy, value):
    copy = make_copy(alice, CopyStatus.CHECKED)
    client.force_login(sam)
    response = client.get(reverse("staff:print"), {"copies": [value, copy.pk]})
    assert response.status_code == 200
    assert response.content.decode().count('alt="Disc label') == 1


def test_the_print_sheet_takes_each_copy_once(client, alice, sam, make_copy):
    copy = make_copy(alice, CopyStatus.CHECKED)
    client.force_login(sam)
    response = client.get(reverse("staff:print"), {"copies": [copy.pk, copy.pk, 10**17]})
    assert response.status_code == 200
    assert response.content.decode().count('alt="Disc label') == 1


@pytest.mark.parametrize("name", ["paper", "what"])
@pytest.mark.parametrize("value", HOSTILE)
def test_the_print_sheet_falls_back_to_its_defaults(client, alice, sam, make_copy, name, value):
    copy = make_copy(alice, CopyStatus.CHECKED)
    client.force_login(sam)
    response = client.get(reverse("staff:print"), {"copies": copy.pk, name: value})
    assert response.status_code == 200
    assert "size: A4;" in response.content.decode()


@pytest.mark.parametrize("name", ["page", "age", "medium", "mine"])
@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("step", ["burn", "ship"])
def test_the_queue_falls_back_to_its_defaults(client, alice, sam, make_copy, name, value, step):
    make_copy(alice, CopyStatus.QUEUED)
    client.force_login(sam)
    response = client.get(reverse("staff:step", args=[step]), {name: value})
    assert response.status_code == 200


@pytest.mark.parametrize("value", HOSTILE)
def test_a_batch_action_with_copies_that_are_not_copy_numbers_selects_nothing(client, alice, sam, make_copy, value):
    """The same rule for the batch form's posted copy ids."""
    make_copy(alice, CopyStatus.CLAIMED)
    client.force_login(sam)
    response = client.post(reverse("staff:batch"), {"copies": [value], "action": "claim"}, follow=True)
    assert response.status_code == 200
    assert "Select some copies first." in [str(m) for m in response.context["messages"]]
