# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one bounded "try again until it holds or the deadline passes" loop.

Every wait of the collection is this loop: a verification until the endpoint answers as
expected, the revoke guard's quiet period, "is the old value dead yet", a new AWS key
until STS accepts it, an ExternalSecret until its Secret holds the new value, rollouts,
deliveries to webhook receivers.

- Bounded twice: by the deadline on ``clock`` and by a number of attempts (one now, then one
  per interval), so it ends even when the clock does not move.
- ``last_at_deadline=True``: the last sleep is shortened so that one more try is made at the
  deadline. ``False``: no sleep that would end past the deadline (the loop ends instead).
- ``backoff``: each sleep is ``backoff`` times the one before, up to ``max_interval``.
- ``clock`` and ``sleep`` are parameters: unit tests pass a fake clock whose ``sleep`` only
  moves it, so no test sleeps.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import time
from collections import namedtuple

#: the last value ``attempt`` returned, whether ``done`` held for it, how many attempts were
#: made and the seconds they took (unrounded)
Polled = namedtuple("Polled", ["value", "done", "attempts", "elapsed"])


def max_attempts(deadline, interval):
    """The most attempts a deadline allows: one now, then one per interval (a hard bound
    that holds even if the clock does not move)."""
    if deadline <= 0:
        return 1
    return int(math.ceil(float(deadline) / max(interval, 0.001))) + 1


def poll_until(attempt, done=bool, deadline=0, interval=1.0, backoff=1.0, max_interval=None,
               last_at_deadline=True, clock=time.monotonic, sleep=time.sleep):
    """Call ``attempt()`` until ``done(value)`` holds for what it returns, or the deadline
    (seconds from now) passes. Exceptions of ``attempt`` end the loop (they are not retried).

    Returns ``Polled(value, done, attempts, elapsed)``.
    """
    deadline = float(deadline or 0)
    start = clock()
    end = start + max(0.0, deadline)
    limit = max_attempts(deadline, interval)
    wait = float(interval)
    attempts = 0
    while True:
        attempts += 1
        value = attempt()
        if done(value):
            return Polled(value, True, attempts, clock() - start)
        now = clock()
        if attempts >= limit:
            break
        if last_at_deadline:
            if now >= end:
                break
            sleep(max(0.0, min(wait, end - now)))
        else:
            if now + wait > end:
                break
            sleep(wait)
        wait = wait * backoff
        if max_interval is not None:
            wait = min(wait, float(max_interval))
    return Polled(value, False, attempts, clock() - start)
