"""Signing in and out, failed attempts limited per username and per address,
password change and reset by email."""

import datetime as dt
import re

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

LOGIN = "/login/"
T0 = dt.datetime(2026, 3, 2, 9, 0, 5, tzinfo=dt.UTC)


@pytest.fixture
def clock():
    """Time stands still unless a test moves it."""
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


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


def test_the_site_root_and_the_header_lead_staff_to_the_queue_and_subscribers_to_their_library(client, alice, sam):
    client.force_login(sam)
    assert client.get(reverse("home"))["Location"] == reverse("staff:queue")
    library = client.get(reverse("library")).content.decode()
    assert f'href="{reverse("staff:queue")}">Staff queue</a>' in library
    client.force_login(alice)
    assert client.get(reverse("home"))["Location"] == reverse("library")
    assert "Staff queue" not in client.get(reverse("library")).content.decode()


def test_wrong_passwords_slow_down_only_that_username_from_that_client(client, alice, bob, settings, clock):
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER = 3
    for _ in range(3):
        response = sign_in(client, "alice", "wrong")
        assert response.status_code == 200
        assert "don’t match" in response.content.decode()
    # The limit is reached for alice from this client: no password is checked
    # during the wait, not even the right one…
    response = sign_in(client, "alice", "alice-password-1")
    assert response.status_code == 429
    assert "Wait 30 seconds, then try again: the right password works then." in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert sign_in(client, "ALICE", "alice-password-1").status_code == 429  # any letter case
    # …but nobody can lock alice out: from another client her password works at once,
    assert sign_in(Client(), "alice", "alice-password-1", ip="10.9.9.9").status_code == 302
    # and other people are not slowed down by her attempts.
    assert sign_in(Client(), "bob", "bob-password-1").status_code == 302


def test_after_the_wait_the_right_password_signs_in_from_the_same_client(client, alice, settings, clock):
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER = 3
    for _ in range(3):
        sign_in(client, "alice", "wrong")
    # Refused attempts during the wait do not make it longer (whoever shares
    # the client's address cannot keep alice waiting).
    for _ in range(10):
        clock.shift(2)
        assert sign_in(client, "alice", "wrong").status_code == 429
    clock.shift(11)  # 31 s after the last checked attempt
    # Past the limit, one attempt per wait: a wrong one starts a new wait…
    assert sign_in(client, "alice", "wrong").status_code == 200
    assert sign_in(client, "alice", "alice-password-1").status_code == 429
    clock.shift(31)
    # …and the right one signs in.
    assert sign_in(client, "alice", "alice-password-1").status_code == 302


def test_the_window_slides_so_no_burst_across_an_edge_gets_double(client, alice, settings, clock):
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER = 3
    settings.DISCSUB_LOGIN_DELAY_SECONDS = 15 * 60  # no attempt between: the window alone
    for _ in range(3):
        assert sign_in(client, "alice", "wrong").status_code == 200
    # Every minute of the next 15 (and a second before their end), three more
    # tries: a fixed 15-minute window has an edge somewhere in there, past
    # which it would check three more passwords.
    checked = 0
    for seconds in [*range(60, 900, 60), 899]:
        clock.move_to(T0 + dt.timedelta(seconds=seconds))
        checked += sum(sign_in(client, "alice", "wrong").status_code == 200 for _ in range(3))
    assert checked == 0
    clock.move_to(T0 + dt.timedelta(seconds=901))  # the first three have left the window
    assert sign_in(client, "alice", "alice-password-1").status_code == 302


def test_wrong_passwords_are_limited_per_address(client, alice, bob, settings, clock):
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_IP = 4
    for n in range(4):
        assert sign_in(client, f"nobody{n}", "guess", ip="10.6.6.6").status_code == 200
    assert sign_in(client, "bob", "bob-password-1", ip="10.6.6.6").status_code == 429
    assert sign_in(client, "bob", "bob-password-1", ip="10.7.7.7").status_code == 302
    client.post(reverse("logout"))
    clock.shift(31)
    assert sign_in(client, "bob", "bob-password-1", ip="10.6.6.6").status_code == 302


def test_an_ipv6_client_counts_as_its_slash_64(client, alice, settings, clock):
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER = 2
    for n in range(2):
        sign_in(client, "alice", "wrong", ip=f"2001:db8:1:2::{n + 1}")
    assert sign_in(client, "alice", "alice-password-1", ip="2001:db8:1:2:ffff::9").status_code == 429
    assert sign_in(client, "alice", "alice-password-1", ip="2001:db8:1:3::1").status_code == 302


def test_there_is_no_admin_sign_in_to_guess_at(client, sam, settings):
    # The Django admin had its own sign-in page, with no limit at all (12 wrong
    # staff passwords, then the right one, signed in).  Nothing used it: it is gone.
    assert client.get("/admin/login/").status_code == 404
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER = 5
    for _ in range(12):
        client.post("/admin/login/", {"username": "sam", "password": "guess"}, REMOTE_ADDR="10.0.0.1")
        sign_in(client, "sam", "guess")
    assert sign_in(client, "sam", "sam-password-1").status_code == 429


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
    settings.DISCSUB_CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
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


def test_password_reset_is_limited_per_address_and_per_client(client, alice, bob, settings, clock):
    settings.DISCSUB_RESET_REQUESTS_PER_EMAIL = 3
    settings.DISCSUB_RESET_REQUESTS_PER_IP = 5
    reset = reverse("password_reset")
    for _ in range(3):
        assert client.post(reset, {"email": "alice@example.com"}, REMOTE_ADDR="10.1.1.1").status_code == 302
    # Nobody floods alice's inbox, from any number of clients.
    refused = client.post(reset, {"email": "ALICE@example.com"}, REMOTE_ADDR="10.2.2.2")
    assert refused.status_code == 429
    assert "Too many reset requests" in refused.content.decode()
    assert len(mail.outbox) == 3
    # One client cannot ask for resets without end either.
    assert client.post(reset, {"email": "bob@example.com"}, REMOTE_ADDR="10.1.1.1").status_code == 302
    assert client.post(reset, {"email": "nobody@example.com"}, REMOTE_ADDR="10.1.1.1").status_code == 302
    assert client.post(reset, {"email": "bob@example.com"}, REMOTE_ADDR="10.1.1.1").status_code == 429
    assert len(mail.outbox) == 4
    # The window slides: an hour after the first requests, alice may ask again.
    clock.shift(3601)
    assert client.post(reset, {"email": "alice@example.com"}, REMOTE_ADDR="10.3.3.3").status_code == 302
    assert len(mail.outbox) == 5


def test_someone_at_the_same_address_cannot_lock_out_a_known_browser(alice, bob, settings, clock):
    """An attacker behind the same NAT hammers the sign-in, for other
    usernames and for Alice's, and takes every slot the address gets; Alice's
    browser, which signed in before (its known-device cookie), still signs in
    with the right password."""
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER = 3
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_IP = 5
    victim = Client()
    assert sign_in(victim, "alice", "alice-password-1").status_code == 302
    victim.post(reverse("logout"))
    attacker = Client()
    for second in range(120):
        sign_in(attacker, f"user{second}", "guess")
        sign_in(attacker, "alice", "guess")
        sign_in(attacker, "ALICE", "guess")
        clock.shift(1)
    assert sign_in(attacker, "alice", "alice-password-1").status_code == 429  # the address waits
    assert sign_in(Client(), "alice", "alice-password-1").status_code == 429  # so does a new browser there
    assert sign_in(victim, "alice", "alice-password-1").status_code == 302  # Alice's browser does not
    # Her browser's cookie is hers: it does not exempt anyone else's username.
    victim.post(reverse("logout"))
    assert sign_in(victim, "bob", "bob-password-1").status_code == 429


def test_a_known_browser_has_its_own_limit(alice, settings, clock):
    """A stolen known-device cookie buys no unlimited guesses: the device's
    failures are limited like an address's, from whatever address."""
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER = 3
    browser = Client()
    assert sign_in(browser, "alice", "alice-password-1").status_code == 302
    browser.post(reverse("logout"))
    for n in range(3):
        assert sign_in(browser, "alice", "guess", ip=f"10.5.5.{n + 1}").status_code == 200
    assert sign_in(browser, "alice", "guess", ip="10.5.5.9").status_code == 429
    assert sign_in(browser, "alice", "alice-password-1", ip="10.5.5.9").status_code == 429
    clock.shift(31)
    assert sign_in(browser, "alice", "alice-password-1", ip="10.5.5.9").status_code == 302


def test_a_forged_known_device_cookie_is_ignored(alice, settings, clock):
    from discsub.known_devices import COOKIE

    settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER = 2
    attacker = Client()
    for _ in range(2):
        sign_in(attacker, "alice", "guess")
    attacker.cookies[COOKIE] = "0123456789abcdef:ffff"  # not signed by us
    assert sign_in(attacker, "alice", "alice-password-1").status_code == 429
