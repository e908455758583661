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


def enrol(client, clock) -> TOTPDevice:
    page = client.get(reverse("staff:two-factor"))
    assert page.status_code == 200 and "<svg" in page.content.decode()  # the QR code
    device = TOTPDevice.objects.get(user__username="sam", confirmed=False)
    assert client.post(reverse("staff:two-factor"), {"code": wrong_code(device)}).status_code == 400
    clock.shift(2)  # django-otp slows down tries after a wrong code (1 s, then doubling)
    assert client.post(reverse("staff:two-factor"), {"code": code(device)}).status_code == 302
    device.refresh_from_db()
    assert device.confirmed
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
