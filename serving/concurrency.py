"""Requests in progress, averaged over time: what autoscaling on concurrency tracks.

A count sampled at the moment of publishing would miss every burst between two samples; the time-weighted average
over the interval (the integral of the in-progress count, divided by the interval) counts a request for exactly
the time it was in progress (Little's law: throughput x latency). Every change and every reading runs on the event
loop, so no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Concurrency:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self.in_progress = 0
        self._area = 0.0
        self._since = self._last = clock()
        self._peak = 0

    def started(self) -> None:
        self._advance()
        self.in_progress += 1
        if self.in_progress > self._peak:
            self._peak = self.in_progress

    def finished(self) -> None:
        self._advance()
        self.in_progress -= 1

    def take(self) -> tuple[float, int]:
        """(time-averaged requests in progress, the most at once) since the last reading; starts a new interval."""
        self._advance()
        span = self._last - self._since
        average = self._area / span if span > 0 else float(self.in_progress)
        peak = self._peak
        self._area, self._since, self._peak = 0.0, self._last, self.in_progress
        return average, peak

    def _advance(self) -> None:
        now = self._clock()
        self._area += self.in_progress * (now - self._last)
        self._last = now
