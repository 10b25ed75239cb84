"""The failed-login throttle: a username and an address are each refused after repeated failures,
whatever form the username is typed in and whatever else the address logs in to."""

import datetime as dt

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from kefu.accounts.models import LoginFailure
from kefu.accounts.services import (
    login_attempt_failed,
    login_attempt_start,
    login_attempt_succeeded,
    login_username_key,
)
from kefu.accounts.tests.factories import UserFactory
from kefu.audit.models import AuditEntry

pytestmark = pytest.mark.django_db

PASSWORD = "pw-kefu-123"


def _login(client: Client, username: str, password: str, url: str = "") -> bool:
    """True when the post logged the client in."""
    client.post(url or reverse("accounts:login"), {"username": username, "password": password})
    logged_in = "_auth_user_id" in client.session
    if logged_in:
        client.post(reverse("accounts:logout"))
    return logged_in


def test_the_username_key_is_the_name_authentication_reads():
    """NFKC, as Django's login form normalizes it, then case and surrounding space folded."""
    assert login_username_key("ａgent07") == "agent07"  # fullwidth a
    assert login_username_key("  Agent07 ") == "agent07"
    assert login_username_key("ＡＧＥＮＴ０７") == "agent07"


@override_settings(LOGIN_MAX_FAILURES=3)
def test_a_locked_username_stays_locked_when_typed_in_fullwidth_letters():
    """After agent07 is locked, ａgent07 (which authentication reads as agent07) is locked too,
    even with the right password."""
    # given
    UserFactory(username="agent07", role="agent")
    client = Client()
    for _ in range(3):
        assert not _login(client, "agent07", "wrong")
    # when: from another address, so that only the username's lock stands in the way
    other = Client(REMOTE_ADDR="10.0.0.9")
    response = other.post(reverse("accounts:login"), {"username": "ａgent07", "password": PASSWORD})
    # then
    assert "_auth_user_id" not in other.session
    assert response.context["form"].has_error("__all__", code="locked")
    assert not _login(other, "agent07", PASSWORD)


@override_settings(LOGIN_MAX_FAILURES=3, LOGIN_MAX_ADDRESS_FAILURES=6)
def test_logging_in_to_ones_own_account_does_not_reset_the_address_count():
    """One address guessing other people's passwords is stopped after its failures add up, even
    when it logs in to its own account between the guesses."""
    # given
    UserFactory(username="mallory", role="agent")
    victims = [UserFactory(username=f"victim{i}", role="agent") for i in range(4)]
    client = Client()
    # when: two guesses per victim (under the username limit), each followed by a login of its own
    for victim in victims[:3]:
        for _ in range(2):
            assert not _login(client, victim.username, "guess")
        if victim != victims[2]:
            assert _login(client, "mallory", PASSWORD)
    # then: six failures from the address: everything from it is refused, its own login too
    assert not _login(client, "mallory", PASSWORD)
    assert not _login(client, "victim3", PASSWORD)
    # another address is not affected
    assert _login(Client(REMOTE_ADDR="10.0.0.2"), "victim3", PASSWORD)


@override_settings(LOGIN_MAX_FAILURES=3)
def test_a_post_without_a_password_does_not_reset_the_username_count(agent):
    """Only a login that succeeds clears the username's failures; a post with an empty password
    is no login at all."""
    client = Client()
    for _ in range(2):
        assert not _login(client, "agent", "wrong")
    # when
    client.post(reverse("accounts:login"), {"username": "agent", "password": ""})
    # then: the third failure locks
    assert not _login(client, "agent", "wrong")
    assert not _login(Client(REMOTE_ADDR="10.0.0.3"), "agent", PASSWORD)


@override_settings(LOGIN_MAX_FAILURES=3)
def test_the_administration_site_login_is_throttled_too(administrator):
    client = Client()
    for _ in range(3):
        assert not _login(client, "admin", "wrong", url="/admin/login/")
    # when: the right password, on the admin login and on the staff login
    client.post("/admin/login/", {"username": "admin", "password": PASSWORD})
    # then
    assert "_auth_user_id" not in client.session
    assert not _login(Client(REMOTE_ADDR="10.0.0.4"), "admin", PASSWORD)
    assert AuditEntry.objects.filter(action="login.failed").count() == 3


@override_settings(LOGIN_MAX_FAILURES=3, LOGIN_LOCK_SECONDS=900)
def test_the_lock_lifts_when_the_failures_age_out_of_the_window(agent, time_machine):
    # given
    time_machine.move_to(dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC), tick=False)
    client = Client()
    for _ in range(3):
        assert not _login(client, "agent", "wrong")
    time_machine.move_to(dt.datetime(2026, 3, 2, 9, 14, tzinfo=dt.UTC), tick=False)
    assert not _login(client, "agent", PASSWORD)
    # when
    time_machine.move_to(dt.datetime(2026, 3, 2, 9, 15, 1, tzinfo=dt.UTC), tick=False)
    # then
    assert _login(client, "agent", PASSWORD)
    assert not LoginFailure.objects.filter(created_at__lt=timezone.now() - dt.timedelta(hours=1))


@override_settings(LOGIN_MAX_FAILURES=3, LOGIN_MAX_ADDRESS_FAILURES=100)
def test_attempts_in_flight_count_before_their_password_is_checked(agent):
    """Parallel guesses cannot slip past the limit: an attempt counts as a failure from the
    moment it starts, so no more than the limit are ever checked at once."""
    now = timezone.now()
    # when: four attempts start before any of them is decided
    attempts = [login_attempt_start(username="agent", ip="10.1.1.1", now=now) for _ in range(4)]
    # then
    assert [a is not None for a in attempts] == [True, True, True, False]
    assert LoginFailure.objects.count() == 3
    login_attempt_succeeded(attempts[0])
    login_attempt_failed(attempts[1])
    assert LoginFailure.objects.filter(username="agent", user_cleared=False).count() == 0


@override_settings(LOGIN_MAX_FAILURES=5)
def test_a_successful_login_clears_the_username_but_not_the_address(agent):
    client = Client()
    for _ in range(4):
        assert not _login(client, "agent", "wrong")
    assert _login(client, "agent", PASSWORD)
    # the username starts afresh: four more failures do not lock it
    for _ in range(4):
        assert not _login(Client(REMOTE_ADDR="10.0.0.5"), "agent", "wrong")
    assert _login(Client(REMOTE_ADDR="10.0.0.5"), "agent", PASSWORD)
    # the first address keeps its four failures
    assert LoginFailure.objects.filter(ip="127.0.0.1").count() == 4
