"""_poll.poll_until: the one bounded wait, driven by a fake clock (no test sleeps)."""
import pytest

from ansible_collections.credops.rotation.plugins.module_utils._poll import Polled, max_attempts, poll_until
from tests.unit._fake_clock import FakeClock


class Attempts:
    """The attempt: the scripted results in turn, the last one repeated; each costs ``cost``
    seconds of the clock. ``at`` is when each began."""

    def __init__(self, results, clock=None, cost=0.0):
        self.results, self.clock, self.cost, self.at = list(results), clock, cost, []

    def __call__(self):
        self.at.append(self.clock.now if self.clock else None)
        if self.clock:
            self.clock.now += self.cost
        return self.results[min(len(self.at), len(self.results)) - 1]


@pytest.mark.parametrize("results, deadline, interval, last_at_deadline, attempts, sleeps, done", [
    ([True], 60, 2, True, 1, [], True),
    ([False, True], 60, 2, True, 2, [2.0], True),
    ([False], 5, 2, True, 4, [2.0, 2.0, 1.0], False),        # 0, 2, 4, then at the deadline
    ([False], 5, 2, False, 3, [2.0, 2.0], False),            # 0, 2, 4: no sleep past the deadline
    ([False], 0, 2, True, 1, [], False),
    ([False], None, 2, False, 1, [], False),
    ([False], -3, 2, True, 1, [], False),
    ([False], 3, 10, True, 2, [3.0], False),
    ([False], 3, 10, False, 1, [], False),
])
def test_deadline_and_interval(results, deadline, interval, last_at_deadline, attempts, sleeps, done):
    clock = FakeClock()
    attempt = Attempts(results)
    polled = poll_until(attempt, deadline=deadline, interval=interval, last_at_deadline=last_at_deadline,
                        clock=clock, sleep=clock.sleep)
    assert (polled.done, polled.attempts, clock.sleeps) == (done, attempts, sleeps)
    assert len(attempt.at) == attempts and polled.elapsed == pytest.approx(sum(sleeps))


def test_backoff_grows_to_its_cap_and_never_sleeps_past_the_deadline():
    clock = FakeClock()
    attempt = Attempts([False])
    polled = poll_until(attempt, deadline=20, interval=1.0, backoff=2.0, max_interval=5.0, last_at_deadline=False,
                        clock=clock, sleep=clock.sleep)
    assert clock.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0] and polled == Polled(False, False, 6, 17.0)


def test_done_decides_and_the_last_value_comes_back():
    clock = FakeClock()
    attempt = Attempts([None, [], ["use"]])
    polled = poll_until(attempt, bool, 60, 5, clock=clock, sleep=clock.sleep)
    assert polled.value == ["use"] and polled.done and polled.attempts == 3


def test_slow_attempts_count_against_the_deadline():
    clock = FakeClock()
    attempt = Attempts([False], clock=clock, cost=3.0)
    polled = poll_until(attempt, deadline=10, interval=2, clock=clock, sleep=clock.sleep)
    assert attempt.at == [1000, 1005, 1010] and polled.elapsed == 13.0 and not polled.done


def test_bounded_even_if_the_clock_stands_still():
    attempt = Attempts([False])
    polled = poll_until(attempt, deadline=10, interval=2, clock=lambda: 0.0, sleep=lambda s: None)
    assert polled.attempts == max_attempts(10, 2) == 6 and len(attempt.at) == 6


def test_an_exception_of_the_attempt_ends_the_wait():
    def attempt():
        raise RuntimeError("refused")
    with pytest.raises(RuntimeError):
        poll_until(attempt, deadline=10, interval=1, clock=lambda: 0.0, sleep=lambda s: None)


@pytest.mark.parametrize("deadline, interval, expected", [(0, 1, 1), (-1, 1, 1), (10, 2, 6), (7, 0.5, 15), (1, 0, 1001)])
def test_max_attempts(deadline, interval, expected):
    assert max_attempts(deadline, interval) == expected
