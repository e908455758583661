"""Every query parameter of the portal is validated (issue #12, finding 7):
a hostile value gives a safe default (or a 404 for an album that is not
one), never a 500."""

import pytest
from django.urls import reverse

from tests.staff.test_query_parameters import HOSTILE

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["page", "show"])
@pytest.mark.parametrize("value", HOSTILE)
def test_the_library_falls_back_to_its_defaults(client, alice, world, name, value):
    client.force_login(alice)
    response = client.get(reverse("library"), {name: value})
    assert response.status_code == 200
    assert b"beach.jpg" in response.content  # the first page of live items


def test_a_page_in_other_digits_is_the_first_page(client, alice, world):
    client.force_login(alice)
    assert client.get(reverse("library"), {"page": "٣"}).context["page"].number == 1


@pytest.mark.parametrize("value", HOSTILE)
def test_an_album_that_is_not_an_album_id_is_404(client, alice, world, value):
    client.force_login(alice)
    assert client.get(reverse("library"), {"album": value}).status_code == (200 if value == "" else 404)


@pytest.mark.parametrize("value", HOSTILE)
def test_the_manifest_page_falls_back_to_its_first_page(client, alice, world, value):
    client.force_login(alice)
    response = client.get(reverse("manifest", args=[world["disc"].public_id]), {"page": value})
    assert response.status_code == 200
