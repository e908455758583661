"""Optional authenticator codes for staff: enrolling with a real TOTP app's
code, then signing in (and reaching the staff pages) needs the code too."""

import datetime as dt

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC)
QUEUE = "/staff/"


@pytest.fixture(autouse=True)
def clock():
    cache.clear()  # sign-in counts start at zero
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller
    cache.clear()


def code(device: TOTPDevice) -> str:
    """What the authenticator app shows now (RFC 6238, computed here)."""
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def wrong_code(device: TOTPDevice) -> str:
    return "000000" if code(device) != "000000" else "111111"


def sign_in(client, password="sam-password-1", ip="10.0.0.1"):
    return client.post("/login/", {"username": "sam", "password": password}, REMOTE_ADDR=ip)


def shown_key(page) -> bytes:
    """The key the enrolment page shows under its QR code."""
    import base64
    import re

    text = re.search(r'Key: <span class="mono">([A-Z2-7 ]+)</span>', page.content.decode()).group(1).replace(" ", "")
    return base64.b32decode(text + "=" * (-len(text) % 8))


def key_code(key: bytes) -> str:
    return f"{totp(key):06d}"


def open_enrolment(client, password="sam-password-1") -> bytes:
    """Past the password step: the key this enrolment shows."""
    page = client.get(reverse("staff:two-factor"))
    assert page.status_code == 200 and "Key:" not in page.content.decode()  # the password first
    assert client.post(reverse("staff:two-factor"), {"password": password}).status_code == 302
    page = client.get(reverse("staff:two-factor"))
    assert page.status_code == 200 and 'class="qr"' in page.content.decode()  # the QR code
    return shown_key(page)


def enrol(client, clock) -> TOTPDevice:
    stored = set(TOTPDevice.objects.values_list("pk", flat=True))
    key = open_enrolment(client)
    assert set(TOTPDevice.objects.values_list("pk", flat=True)) == stored  # nothing stored before the code
    wrong = "000000" if key_code(key) != "000000" else "111111"
    assert client.post(reverse("staff:two-factor"), {"code": wrong}).status_code == 400
    clock.shift(2)
    assert client.post(reverse("staff:two-factor"), {"code": key_code(key)}).status_code == 302
    device = TOTPDevice.objects.get(user__username="sam")
    assert device.confirmed and device.bin_key == key
    clock.shift(30)  # a code is good once: the next one is the next step's
    return device


def test_without_an_authenticator_the_password_is_enough(client, sam):
    assert sign_in(client)["Location"] == reverse("staff:queue")
    assert client.get(QUEUE).status_code == 200


def test_once_enrolled_signing_in_needs_the_code(sam, clock):
    staff = Client()
    staff.force_login(sam)
    device = enrol(staff, clock)
    assert staff.get(QUEUE).status_code == 200  # the session that enrolled is verified

    client = Client()
    response = sign_in(client)
    assert response["Location"] == reverse("login_code")
    assert "_auth_user_id" not in client.session  # not signed in on the password alone
    assert client.get(QUEUE)["Location"].startswith("/login/?next=")
    wrong = client.post(reverse("login_code"), {"code": wrong_code(device)})
    assert wrong.status_code == 400 and "does not match" in wrong.content.decode()
    clock.shift(2)
    right = client.post(reverse("login_code"), {"code": code(device)}, REMOTE_ADDR="10.0.0.1")
    assert right.status_code == 302 and right["Location"] == reverse("staff:queue")
    assert client.get(QUEUE).status_code == 200


def test_a_session_signed_in_before_enrolling_is_ended(sam, clock):
    earlier = Client()
    earlier.force_login(sam)
    assert earlier.get(QUEUE).status_code == 200
    enrolling = Client()
    enrolling.force_login(sam)
    enrol(enrolling, clock)
    assert earlier.get(QUEUE)["Location"].startswith("/login/")


def test_a_password_only_session_is_asked_for_the_code_on_staff_pages(sam, clock):
    enrol_client = Client()
    enrol_client.force_login(sam)
    device = enrol(enrol_client, clock)
    other = Client()
    other.force_login(sam)  # any sign-in without the code
    response = other.get("/staff/dashboard/")
    assert response.status_code == 302 and response["Location"] == "/login/code/?next=/staff/dashboard/"
    done = other.post("/login/code/?next=/staff/dashboard/", {"code": code(device), "next": "/staff/dashboard/"})
    assert done["Location"] == "/staff/dashboard/"
    assert other.get("/staff/dashboard/").status_code == 200


def test_wrong_codes_count_as_failed_sign_ins(sam, settings, clock):
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER = 3
    staff = Client()
    staff.force_login(sam)
    device = enrol(staff, clock)
    client = Client()
    sign_in(client)
    for _ in range(3):
        wrong = client.post(reverse("login_code"), {"code": wrong_code(device)}, REMOTE_ADDR="10.0.0.1")
        assert wrong.status_code == 400
    assert client.post(reverse("login_code"), {"code": code(device)}, REMOTE_ADDR="10.0.0.1").status_code == 429
    # The password again does not buy new tries at the code.
    assert sign_in(client).status_code == 429
    clock.shift(31)
    assert client.post(reverse("login_code"), {"code": code(device)}, REMOTE_ADDR="10.0.0.1").status_code == 302


def test_turning_the_authenticator_off(sam, clock):
    staff = Client()
    staff.force_login(sam)
    enrol(staff, clock)
    assert staff.post(reverse("staff:two-factor-off")).status_code == 302
    assert not TOTPDevice.objects.filter(user=sam).exists()
    assert sign_in(Client())["Location"] == reverse("staff:queue")


def test_a_key_seen_by_another_session_before_enrolling_is_worthless(sam, clock):
    """A session with the password alone (or a stolen cookie) that looked at
    the enrolment page learns no key that the member will later confirm."""
    attacker = Client()
    attacker.force_login(sam)
    page = attacker.get(reverse("staff:two-factor"))
    assert "Key:" not in page.content.decode()  # no key without the password again
    assert not TOTPDevice.objects.exists()
    copied = open_enrolment(attacker)  # even with the password: a key for this session only
    assert not TOTPDevice.objects.exists()

    member = Client()
    member.force_login(sam)
    device = enrol(member, clock)
    assert device.bin_key != copied
    assert attacker.get(QUEUE)["Location"].startswith("/login/")  # its session was ended
    thief = Client()
    assert sign_in(thief)["Location"] == reverse("login_code")
    assert thief.post(reverse("login_code"), {"code": key_code(copied)}).status_code == 400
    assert thief.get(QUEUE)["Location"].startswith("/login/")


def test_enrolling_asks_for_the_password_again(sam, clock):
    staff = Client()
    staff.force_login(sam)
    wrong = staff.post(reverse("staff:two-factor"), {"password": "not-my-password"})
    assert wrong.status_code == 400 and "Key:" not in wrong.content.decode()
    assert "Key:" not in staff.get(reverse("staff:two-factor")).content.decode()


def test_confirming_deletes_every_other_device(sam, clock):
    left_over = TOTPDevice.objects.create(user=sam, name="left over", confirmed=False)
    staff = Client()
    staff.force_login(sam)
    device = enrol(staff, clock)
    assert list(TOTPDevice.objects.filter(user=sam)) == [device] and device.pk != left_over.pk


def test_replacing_the_authenticator_needs_a_verified_session(sam, clock):
    staff = Client()
    staff.force_login(sam)
    old = enrol(staff, clock)
    password_only = Client()
    password_only.force_login(sam)
    assert password_only.get(reverse("staff:two-factor"))["Location"].startswith("/login/code/")
    refused = password_only.post(reverse("staff:two-factor"), {"password": "sam-password-1"})
    assert refused.status_code == 302 and refused["Location"].startswith("/login/code/")
    # The verified session may: the new app's code replaces the old one.
    key = open_enrolment(staff)
    assert staff.post(reverse("staff:two-factor"), {"code": key_code(key)}).status_code == 302
    (new,) = TOTPDevice.objects.filter(user=sam)
    assert new.bin_key == key and new.pk != old.pk
