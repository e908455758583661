"""Signing in and out, failed attempts limited per username and per address,
password change and reset by email."""

import re

import pytest
from django.core import mail
from django.urls import reverse

pytestmark = pytest.mark.django_db

LOGIN = "/login/"


def sign_in(client, username, password, ip="10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_sign_in_and_out(client, alice):
    response = sign_in(client, "alice", "alice-password-1")
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.get(reverse("library")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("library")).status_code == 302


def test_fulfilment_staff_land_on_the_queue_unless_sent_elsewhere(client, sam):
    assert sign_in(client, "sam", "sam-password-1")["Location"] == reverse("staff:queue")
    client.post(reverse("logout"))
    response = client.post(
        f"{LOGIN}?next=/staff/dashboard/", {"username": "sam", "password": "sam-password-1"}, REMOTE_ADDR="10.0.0.1"
    )
    assert response["Location"] == "/staff/dashboard/"


def test_wrong_passwords_are_limited_per_username(client, alice, bob, settings):
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER = 3
    for _ in range(3):
        response = sign_in(client, "alice", "wrong")
        assert response.status_code == 200
        assert "don’t match" in response.content.decode()
    # The limit is reached: even the right password is not checked now.
    response = sign_in(client, "alice", "alice-password-1")
    assert response.status_code == 429
    assert "Too many sign-in attempts. Wait 15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # From another address, and in any letter case, the username stays locked.
    assert sign_in(client, "ALICE", "alice-password-1", ip="10.9.9.9").status_code == 429
    # Other people are not locked out by Alice's attempts.
    assert sign_in(client, "bob", "bob-password-1").status_code == 302


def test_wrong_passwords_are_limited_per_address(client, alice, bob, settings):
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_IP = 4
    for n in range(4):
        assert sign_in(client, f"nobody{n}", "guess", ip="10.6.6.6").status_code == 200
    assert sign_in(client, "bob", "bob-password-1", ip="10.6.6.6").status_code == 429
    assert sign_in(client, "bob", "bob-password-1", ip="10.7.7.7").status_code == 302


def test_signing_in_successfully_does_not_use_up_attempts(client, alice, settings):
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER = 2
    for _ in range(4):
        assert sign_in(client, "alice", "alice-password-1").status_code == 302
        client.post(reverse("logout"))
    assert sign_in(client, "alice", "wrong").status_code == 200


def test_the_sign_in_page_needs_the_csrf_token(alice):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(LOGIN, {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 403


def test_password_reset_by_email(client, alice):
    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    assert message.subject == "Reset your Discsub password"
    link = re.search(r"https?://[^/]+(/account/reset/\S+/)", message.body).group(1)
    form = client.get(link, follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "a-new-long-passphrase", "new_password2": "a-new-long-passphrase"}
    )
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    assert sign_in(client, "alice", "a-new-long-passphrase").status_code == 302


def test_a_reset_for_an_unknown_address_says_the_same_and_sends_nothing(client, alice):
    response = client.post(reverse("password_reset"), {"email": "mallory@example.com"}, follow=True)
    assert b"Check your email" in response.content
    assert mail.outbox == []


def test_password_change(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": "alice-password-1",
            "new_password1": "another-passphrase-9",
            "new_password2": "another-passphrase-9",
        },
    )
    assert response.status_code == 302
    client.post(reverse("logout"))
    assert sign_in(client, "alice", "another-passphrase-9").status_code == 302


def test_behind_a_proxy_the_client_address_comes_from_its_header(client, alice, bob, settings):
    settings.RATELIMIT_IP_META_KEY = "HTTP_X_REAL_IP"
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_IP = 2
    proxy = "10.0.0.254"
    for n in range(2):
        client.post(LOGIN, {"username": f"x{n}", "password": "guess"}, REMOTE_ADDR=proxy, HTTP_X_REAL_IP="203.0.113.9")
    blocked = client.post(
        LOGIN, {"username": "bob", "password": "bob-password-1"}, REMOTE_ADDR=proxy, HTTP_X_REAL_IP="203.0.113.9"
    )
    assert blocked.status_code == 429
    other_client = client.post(
        LOGIN, {"username": "bob", "password": "bob-password-1"}, REMOTE_ADDR=proxy, HTTP_X_REAL_IP="198.51.100.7"
    )
    assert other_client.status_code == 302
