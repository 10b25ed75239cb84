"""The replay guard: a nonce is good once (or again for the same request) until it expires."""

import datetime as dt
import threading

import pytest
from django.db import connection

from kefu.core.models import SeenNonce, nonce_claim

NOW = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(minutes=5)


def _claim(value: str, fingerprint: str, *, scope: str = "wechat:1", now=NOW) -> bool:
    return nonce_claim(scope=scope, value=value, fingerprint=fingerprint, expires_at=LATER, now=now)


@pytest.mark.django_db
def test_a_nonce_is_good_once_and_again_only_for_the_same_request():
    assert _claim("1796004000:11", "body-a")
    assert _claim("1796004000:11", "body-a")  # the same request again: a retry
    assert not _claim("1796004000:11", "body-b")  # the same nonce, another body: a replay
    assert _claim("1796004000:11", "body-b", scope="wechat:2")  # another channel's nonce
    assert SeenNonce.objects.count() == 2


@pytest.mark.django_db
def test_expired_nonces_are_forgotten():
    assert _claim("1796004000:12", "body-a")
    # when: the next claim after the first one's expiry
    assert _claim("1796004300:13", "body-c", now=LATER)
    # then
    assert list(SeenNonce.objects.values_list("value", flat=True)) == ["1796004300:13"]


@pytest.mark.django_db(transaction=True)
def test_two_requests_racing_with_one_nonce_and_different_bodies_let_one_through():
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def claim(fingerprint: str) -> None:
        try:
            barrier.wait()
            results.append(_claim("1796004000:14", fingerprint))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(f,)) for f in ("forged", "genuine")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
