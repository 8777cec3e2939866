"""The one backoff rule (`syndicate.retry.Backoff`) and the numbers each layer gives it."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from syndicate.deliver.http_post import BACKOFF, MAX_WAIT
from syndicate.retry import Backoff


def test_doubles_from_first_up_to_the_cap():
    daemon = Backoff(first=60.0, cap=3600.0)
    assert [daemon.delay(n) for n in range(1, 9)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_job_failing_for_ever_never_overflows():
    assert Backoff(first=60.0, cap=3600.0).delay(100_000) == 3600
    assert Backoff(first=0.0, cap=900.0).delay(5000) == 0  # retry_delay: 0 stays 0


def test_jitter_spreads_the_capped_wait_with_the_given_random_source():
    draws = []

    def uniform(low: float, high: float) -> float:
        draws.append((low, high))
        return high

    policy = Backoff(first=30.0, cap=900.0, jitter=(1.0, 1.2), uniform=uniform)
    assert policy.delay(1) == pytest.approx(36.0)
    assert policy.delay(10) == pytest.approx(1080.0)  # the cap is applied before the jitter
    assert draws == [(1.0, 1.2), (1.0, 1.2)]


def test_a_seeded_random_source_gives_the_same_waits_every_run():
    def waits(seed: int) -> list[float]:
        policy = Backoff(1.0, 60.0, jitter=(0.5, 1.0), uniform=random.Random(seed).uniform)
        return [policy.delay(n) for n in range(1, 8)]

    assert waits(7) == waits(7)
    assert all(
        0.5 * min(2.0 ** (n - 1), 60) <= w <= min(2.0 ** (n - 1), 60) for n, w in enumerate(waits(7), 1)
    )


def test_no_jitter_draws_nothing():
    def uniform(low: float, high: float) -> float:
        raise AssertionError("drawn")

    assert Backoff(1.0, 60.0, uniform=uniform).delay(3) == 4.0


def test_retry_after_replaces_the_computed_wait_capped_and_never_negative():
    def uniform(low: float, high: float) -> float:
        raise AssertionError("a server's wait is not jittered")

    policy = Backoff(1.0, 60.0, jitter=(0.5, 1.0), asked_cap=300.0, uniform=uniform)
    assert policy.delay(1, retry_after=7.0) == 7.0
    assert policy.delay(1, retry_after=120.0) == 120.0  # past the backoff cap: the server knows best
    assert policy.delay(1, retry_after=86_400.0) == 300.0
    assert policy.delay(1, retry_after=-5.0) == 0.0  # an HTTP date already past
    assert Backoff(1.0, 60.0).delay(1, retry_after=500.0) == 60.0  # no asked_cap: the cap


def test_http_targets_keep_their_numbers():
    assert Backoff(first=1.0, cap=60.0, jitter=(0.5, 1.0), asked_cap=MAX_WAIT) == BACKOFF
    seeded = replace(BACKOFF, uniform=lambda low, high: low)  # the lowest draw every time
    assert [seeded.delay(n) for n in (1, 2, 7, 8)] == [0.5, 1.0, 30.0, 30.0]


@pytest.mark.parametrize(
    "kwargs",
    [{"first": -1.0, "cap": 1.0}, {"first": 1.0, "cap": -1.0}, {"first": 1, "cap": 2, "jitter": (2, 1)}],
)
def test_a_nonsense_policy_is_refused(kwargs):
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_attempts_count_from_one():
    with pytest.raises(ValueError):
        Backoff(1.0, 2.0).delay(0)
