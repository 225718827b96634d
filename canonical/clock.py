"""The one clock: where every part of cvhub and its sandboxes gets "now" and "today".

A ``Clock`` is any callable returning the current instant as an aware UTC ``datetime``. Business
code never reads the wall clock: it is handed a clock (the business clock of a flow run, the demo's
clock, a sandbox's clock) or, better, the business date itself. This module is the **only** place
that reads the wall clock (ruff's ``TID251`` banned-API rule and the ``DTZ`` rules enforce it; see
``pyproject.toml``):

- ``SYSTEM_CLOCK`` is the real time. It is right where real time is the point: security protocol
  timestamps (WS-Security ``Created``/``Expires``, request-signature windows, TLS certificate
  validity), leases between processes, audit stamps of an operator's action. Code that takes a
  clock defaults to it only in those places.
- ``SettableClock`` is a business clock that starts at a given instant and then runs on with
  elapsed real time (measured with ``time.monotonic()``, never the wall clock), so delays
  ("decide 0.2 s after receipt") work while the date is the one the scenario chose. ``set_day``
  moves it to another business day (the demo's maturity date).
- ``FrozenClock`` never moves unless told to (tests).

Durations and timeouts are not "now": they use ``time.monotonic()`` directly, anywhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

Clock = Callable[[], datetime]
"""A source of the current instant: an aware UTC ``datetime``."""

BUSINESS_DAY_START = dtime(9, 0, tzinfo=UTC)
"""Where a business clock put on a day starts: 09:00 UTC, well inside the day whatever runs."""


def system_now() -> datetime:
    """The real time (UTC). The one wall-clock read of the project."""
    return datetime.now(UTC)


SYSTEM_CLOCK: Clock = system_now


def today(clock: Clock) -> date:
    """The clock's current date (UTC)."""
    return clock().astimezone(UTC).date()


def start_of(day: date) -> datetime:
    """``day`` at ``BUSINESS_DAY_START``."""
    return datetime.combine(day, BUSINESS_DAY_START)


class SettableClock:
    """A business clock: starts at ``start`` and runs on with real elapsed time (monotonic).

    ``set(at)`` and ``set_day(day)`` move it; ``advance(delta)`` jumps forward. Thread-safe: the
    sandboxes serve requests from several threads.
    """

    def __init__(self, start: datetime, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._anchor = _aware(start)
        self._anchor_mono = monotonic()

    @classmethod
    def on_day(cls, day: date) -> SettableClock:
        return cls(start_of(day))

    def __call__(self) -> datetime:
        with self._lock:
            return self._anchor + timedelta(seconds=self._monotonic() - self._anchor_mono)

    def set(self, at: datetime) -> None:
        with self._lock:
            self._anchor, self._anchor_mono = _aware(at), self._monotonic()

    def set_day(self, day: date) -> None:
        """Move to ``day`` at ``BUSINESS_DAY_START`` (time runs on from there)."""
        self.set(start_of(day))

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._anchor += delta

    def today(self) -> date:
        return today(self)


class FrozenClock:
    """A clock that stands still at ``at`` until ``set``/``advance`` (tests, replays)."""

    def __init__(self, at: datetime) -> None:
        self._lock = threading.Lock()
        self._at = _aware(at)

    def __call__(self) -> datetime:
        with self._lock:
            return self._at

    def set(self, at: datetime) -> None:
        with self._lock:
            self._at = _aware(at)

    def set_day(self, day: date) -> None:
        self.set(start_of(day))

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._at += delta

    def today(self) -> date:
        return today(self)


def parse_clock_start(text: str) -> datetime:
    """``YYYY-MM-DD`` (that day at ``BUSINESS_DAY_START``) or an ISO 8601 instant with its offset.

    The value of ``CVHUB_CLOCK`` (read at the edge, ``cvhub.settings``): "run as if it were then".
    """
    t = text.strip()
    if len(t) == 10 and t[4] == "-" and t[7] == "-" and t.replace("-", "").isascii() \
            and t.replace("-", "").isdigit():
        return start_of(date.fromisoformat(t))
    try:
        at = datetime.fromisoformat(t)
    except ValueError as e:
        raise ValueError(f"clock start {text!r}: give YYYY-MM-DD or an ISO 8601 instant with offset") from e
    if at.tzinfo is None:
        raise ValueError(f"clock start {text!r}: an instant needs its UTC offset (e.g. +00:00 or Z)")
    return at.astimezone(UTC)


def business_clock(start: datetime | None) -> Clock:
    """The clock the edge hands down: a ``SettableClock`` from ``start``, else the system clock."""
    return SettableClock(start) if start is not None else SYSTEM_CLOCK


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a clock needs an aware datetime (UTC)")
    return at.astimezone(UTC)
