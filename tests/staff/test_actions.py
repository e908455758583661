"""Staff actions through the views: illegal moves are refused with a clear
message and change nothing; double submissions are harmless; bad input
keeps what the staff member typed."""

import pytest
from django.urls import reverse

from exporter.models import CopyEvent, CopyStatus, DiscCopy, ReadBackCheck, Shipment, Subscription
from tests.staff.conftest import EVERY_STATE

pytestmark = pytest.mark.django_db

# Every copy action and the states it may start from.
LEGAL_FROM = {
    "claim": {CopyStatus.QUEUED},
    "release": {CopyStatus.CLAIMED},
    "burned": {CopyStatus.CLAIMED},
    "burn-failed": {CopyStatus.CLAIMED},
    "read-back": {CopyStatus.BURNED},
    "labelled": {CopyStatus.CHECKED},
    "delivered": {CopyStatus.SHIPPED},
    "returned": {CopyStatus.SHIPPED},
}
FORM = {"drive": "Drive A", "media_batch": "B-1", "method": "checkisomd5", "value": "PASS"}


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def snapshot(copy: DiscCopy) -> tuple:
    copy.refresh_from_db()
    return copy.status, copy.events.count(), copy.read_backs.count(), copy.claimed_by_id


@pytest.mark.parametrize("state", EVERY_STATE)
def test_every_action_from_a_state_it_cannot_leave_is_refused_and_changes_nothing(client, alice, sam, make_copy, state):
    copy = make_copy(alice, state)
    client.force_login(sam)
    for action, legal in LEGAL_FROM.items():
        if state in legal:
            continue
        before = snapshot(copy)
        response = client.post(reverse("staff:copy-action", args=[copy.pk, action]), FORM, follow=True)
        said = " ".join(messages_of(response)) + response.content.decode()
        assert "cannot be" in said or "it cannot be marked" in said, (state, action)
        assert snapshot(copy) == before, (state, action)


def test_a_double_submitted_burn_is_refused_the_second_time(client, alice, sam, make_copy):
    copy = make_copy(alice, CopyStatus.CLAIMED)
    client.force_login(sam)
    url = reverse("staff:copy-action", args=[copy.pk, "burned"])
    first = client.post(url, FORM, follow=True)
    second = client.post(url, FORM, follow=True)
    assert messages_of(first) == ["Marked burned: disc 1 of Alice Archer."]
    assert messages_of(second) == [
        f"Disc 1 of alice (copy {copy.pk}) is to read back; it cannot be marked to read back."
    ]
    assert copy.events.filter(to_status=CopyStatus.BURNED).count() == 1
    copy.refresh_from_db()
    assert copy.burn_attempts == 1


def test_a_batch_action_reports_each_refusal_once_and_moves_the_rest(client, alice, sam, make_copy):
    claimed = [make_copy(alice, CopyStatus.CLAIMED) for _ in range(3)]
    checked = make_copy(alice, CopyStatus.CHECKED)
    client.force_login(sam)
    response = client.post(
        reverse("staff:batch"),
        {"copies": [c.pk for c in claimed] + [checked.pk, 999999], "action": "burned", **FORM},
        follow=True,
    )
    said = messages_of(response)
    assert said[0] == "3 copies marked burned."
    assert any("is to label; it cannot be marked to read back" in m for m in said)
    assert "A selected copy no longer exists." in said
    assert DiscCopy.objects.filter(status=CopyStatus.BURNED).count() == 3
    checked.refresh_from_db()
    assert checked.status == CopyStatus.CHECKED


def test_burning_without_drive_or_batch_is_refused(client, alice, sam, make_copy):
    copy = make_copy(alice, CopyStatus.CLAIMED)
    client.force_login(sam)
    response = client.post(
        reverse("staff:batch"), {"copies": [copy.pk], "action": "burned", "drive": " ", "media_batch": ""}, follow=True
    )
    assert messages_of(response) == ["Say which drive and which batch of blank discs were used."]
    assert snapshot(copy)[0] == CopyStatus.CLAIMED


def test_someone_elses_claim_cannot_be_burned_or_released(client, alice, sam, make_copy, django_user_model):
    from django.contrib.auth.models import Permission

    kim = django_user_model.objects.create_user("kim", is_staff=True)
    kim.user_permissions.add(Permission.objects.get(codename="change_disccopy"))
    copy = make_copy(alice, CopyStatus.CLAIMED)
    client.force_login(kim)
    for action in ["burned", "release"]:
        response = client.post(reverse("staff:copy-action", args=[copy.pk, action]), FORM, follow=True)
        assert messages_of(response) == ["Disc 1 of alice is claimed by sam."]
    assert snapshot(copy)[3] == sam.pk


def test_a_read_back_mismatch_sends_the_copy_back_to_burn(client, alice, sam, make_copy):
    copy = make_copy(alice, CopyStatus.BURNED)
    client.force_login(sam)
    response = client.post(
        reverse("staff:copy-action", args=[copy.pk, "read-back"]),
        {"method": "sha256", "value": "0" * 64, "drive": "Drive C", "media_batch": "B-9"},
        follow=True,
    )
    assert messages_of(response) == [
        "Read-back failed (burned on Drive C, media batch B-9); disc 1 goes back to the burn queue."
    ]
    copy.refresh_from_db()
    assert copy.status == CopyStatus.QUEUED
    assert ReadBackCheck.objects.get(copy=copy).ok is False
    exceptions = client.get(reverse("staff:step", args=["exceptions"])).content.decode()
    assert "Burn or read-back failed (1 burn so far)" in exceptions


@pytest.mark.parametrize(
    "method, value, error",
    [
        ("sha256", "not a digest", "Paste the 64-character sha256 the read-back printed."),
        ("checkisomd5", "it looked fine", "Paste checkisomd5&#x27;s output, or enter PASS or FAIL."),
        ("checkisomd5", "", "This field is required."),
    ],
)
def test_read_back_input_that_says_nothing_keeps_the_text_and_changes_nothing(
    client, alice, sam, make_copy, method, value, error
):
    copy = make_copy(alice, CopyStatus.BURNED)
    before = snapshot(copy)
    client.force_login(sam)
    response = client.post(
        reverse("staff:copy-action", args=[copy.pk, "read-back"]),
        {"method": method, "value": value, "drive": "Drive B", "media_batch": "B-1"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert error in page
    assert value in page  # what they pasted is still there to fix
    assert snapshot(copy) == before


def test_shipping_refusals_change_nothing(client, alice, bob, sam, make_copy):
    a, b = make_copy(alice, CopyStatus.LABELLED), make_copy(bob, CopyStatus.LABELLED)
    client.force_login(sam)
    cases = [
        ({"copies": [a.pk], "carrier": "ups", "tracking_number": "AB123456789GB"}, "is not a UPS tracking number"),
        ({"copies": [a.pk, b.pk], "carrier": "other", "tracking_number": "X1234"}, "one subscriber only"),
        ({"copies": [a.pk], "carrier": "pigeon", "tracking_number": "X1234"}, "Choose the discs"),
        ({"carrier": "usps", "tracking_number": "9400111899223197428490"}, "Choose the discs"),
    ]
    for data, error in cases:
        response = client.post(reverse("staff:ship"), data, follow=True)
        assert any(error in m for m in messages_of(response)), (data, messages_of(response))
    assert not Shipment.objects.exists()
    assert {a.status, b.status} == {CopyStatus.LABELLED}


def test_a_returned_copy_reships_from_the_exceptions_tab_once_the_address_is_fixed(client, alice, sam, make_copy):
    from django.utils import timezone

    copy = make_copy(alice, CopyStatus.RETURNED)
    client.force_login(sam)
    page = client.get(reverse("staff:step", args=["exceptions"])).content.decode()
    assert "Ready to re-ship" not in page
    Subscription.objects.filter(user=alice).update(address_line1="3 New Road", address_updated_at=timezone.now())
    page = client.get(reverse("staff:step", args=["exceptions"])).content.decode()
    assert "Ready to re-ship" in page and "3 New Road" in page
    client.post(
        reverse("staff:ship"), {"copies": [copy.pk], "carrier": "royal-mail", "tracking_number": "CD987654321GB"}
    )
    copy.refresh_from_db()
    assert copy.status == CopyStatus.SHIPPED and copy.address["line1"] == "3 New Road"


def test_a_forged_next_url_does_not_leave_the_site(client, alice, sam, make_copy):
    copy = make_copy(alice, CopyStatus.CHECKED)
    client.force_login(sam)
    response = client.post(
        reverse("staff:batch"), {"copies": [copy.pk], "action": "labelled", "next": "https://evil.example/x"}
    )
    assert response["Location"] == reverse("staff:queue")


def test_unknown_steps_and_actions_are_404(client, alice, sam, make_copy):
    copy = make_copy(alice)
    client.force_login(sam)
    assert client.get(reverse("staff:step", args=["nowhere"])).status_code == 404
    assert client.post(reverse("staff:copy-action", args=[copy.pk, "teleport"])).status_code == 404
    assert client.get(reverse("staff:copy", args=[999999])).status_code == 404
    assert CopyEvent.objects.filter(copy=copy).count() == 1


def test_the_copy_page_shows_the_whole_history(client, alice, sam, make_copy):
    copy = make_copy(alice, CopyStatus.DELIVERED)
    client.force_login(sam)
    page = client.get(reverse("staff:copy", args=[copy.pk])).content.decode()
    for step in ["To burn → Claimed", "Claimed → To read back", "To read back → To label", "To label → To ship"]:
        assert step in page
    assert "Shipped → Delivered" in page and "AB123456789GB" in page
    assert "does not add up" not in page


def test_a_replacement_links_to_the_copy_it_replaces(client, alice, sam, make_copy):
    from exporter import fulfillment

    lost = make_copy(alice, CopyStatus.DELIVERED)
    replacement = fulfillment.report_problem(lost.pk, alice, problem=CopyStatus.LOST)
    client.force_login(sam)
    page = client.get(reverse("staff:copy", args=[replacement.pk])).content.decode()
    assert f'<a href="{reverse("staff:copy", args=[lost.pk])}">a copy reported lost</a>' in page
    queue = client.get(reverse("staff:step", args=["burn"])).content.decode()
    assert "replacement" in queue


def test_after_a_read_back_the_next_disc_waiting_for_one_opens(client, alice, sam, make_copy):
    first, second = make_copy(alice, CopyStatus.BURNED), make_copy(alice, CopyStatus.BURNED)
    client.force_login(sam)
    response = client.post(
        reverse("staff:copy-action", args=[first.pk, "read-back"]),
        {"method": "sha256", "value": first.disc.image_sha256, "drive": "Drive A", "media_batch": "B-1"},
    )
    assert response["Location"] == reverse("staff:copy", args=[second.pk]) + "#read-back"
    page = client.get(response["Location"]).content.decode()
    # The form names the drive and blanks it was burned with, and the method used last.
    assert 'name="drive" id="id_rb_drive" value="Drive A"' in page
    assert 'name="media_batch" id="id_rb_batch" value="B-1"' in page
    assert 'value="sha256" id="id_method_1" required checked' in page
    # The last one leads back to its own page.
    response = client.post(
        reverse("staff:copy-action", args=[second.pk, "read-back"]),
        {"method": "sha256", "value": second.disc.image_sha256, "drive": "Drive A", "media_batch": "B-1"},
    )
    assert response["Location"] == reverse("staff:copy", args=[second.pk])


def test_the_mail_tab_links_each_envelope_to_its_carriers_tracking(client, alice, sam, make_copy):
    make_copy(alice, CopyStatus.SHIPPED)
    client.force_login(sam)
    page = client.get(reverse("staff:step", args=["mail"])).content.decode()
    assert 'href="https://www.royalmail.com/track-your-item#/tracking-results/AB123456789GB"' in page
