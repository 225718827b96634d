"""Call deadlines: a wall-time bound on one outbound call, enforced by a watchdog.

A socket timeout bounds each *read*: a server that drips one byte every few seconds, or sends
header after header, never trips it and holds the caller for ever. A ``Deadline`` is the total a
call may take (connect + send + the whole answer, retries and backoff included); a watchdog
thread ends the call when it passes by shutting down the call's sockets (HTTP) or closing the SSH
transport (SFTP), which wakes the blocked read at once. The caller then sees that the guard
``fired`` and maps the failure to ``DeadlineExceeded`` or, for a state-changing call that may have
been applied, ``OutcomeUnknown``.

For HTTP (``requests``/urllib3, used by the REST and SOAP transports) ``guard_session(session)``
mounts an adapter whose connections register their socket with the call's ``HttpCallGuard``
(opened with ``http_call(deadline)``) and mark the moment the request starts to leave (``sent``),
so that a deadline that passes while connecting is known to have sent nothing.

Durations only: ``time.monotonic()``, never the wall clock, never a business date.
This module never imports airflow and never logs a payload.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

log = logging.getLogger(__name__)


class Deadline:
    """A point in monotonic time ``seconds`` from now. ``remaining()`` never goes below zero."""

    __slots__ = ("at", "seconds")

    def __init__(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError("a deadline must be positive")
        self.seconds = float(seconds)
        self.at = time.monotonic() + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def cap(self, seconds: float) -> float:
        """``seconds`` shortened to what is left (a small positive floor, so a timeout stays a timeout)."""
        return max(0.001, min(seconds, self.remaining()))


@contextmanager
def watchdog(deadline: Deadline, on_expiry: Callable[[], None]) -> Iterator[threading.Event]:
    """Run ``on_expiry`` (from a timer thread) if the block is still running at ``deadline``.

    Yields an event that is set when it fired. ``on_expiry`` must only close things: it runs
    concurrently with the guarded code.
    """
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        try:
            on_expiry()
        except Exception:  # the guarded code may be closing the same thing right now
            log.debug("deadline watchdog: closing failed", exc_info=True)

    timer = threading.Timer(deadline.remaining(), expire)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


# --- HTTP -----------------------------------------------------------------------------------------


class HttpCallGuard:
    """The state of one HTTP exchange under a deadline: its sockets, whether the request started
    to leave, whether the watchdog ended it."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.sent = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._done = False
        self.fired = threading.Event()

    def attach(self, sock: socket.socket | Any) -> None:
        """Watch ``sock`` (a plain or TLS socket) through a duplicate of its descriptor: a shutdown
        reaches the connection whatever wraps it, and the duplicate keeps the descriptor number
        from being reused by someone else before we are done."""
        try:
            dup = socket.socket(fileno=os.dup(sock.fileno()))
        except (OSError, ValueError):
            return
        with self._lock:
            if self._done:
                dup.close()
                return
            self._socks.append(dup)
            late = self.fired.is_set()
        if late:
            self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def expire(self) -> None:
        self.fired.set()
        self._shutdown()

    def release(self) -> None:
        with self._lock:
            self._done = True
            socks, self._socks = self._socks, []
        for s in socks:
            with suppress(OSError):
                s.close()


_GUARD: contextvars.ContextVar[HttpCallGuard | None] = contextvars.ContextVar("cvhub_http_guard",
                                                                              default=None)


@contextmanager
def http_call(deadline: Deadline) -> Iterator[HttpCallGuard]:
    """Guard the HTTP exchanges made in this block (this thread) by ``deadline``."""
    guard = HttpCallGuard(deadline)
    token = _GUARD.set(guard)
    try:
        with watchdog(deadline, guard.expire):
            yield guard
    finally:
        _GUARD.reset(token)
        guard.release()


class _GuardedMixin:
    """urllib3 connection hooks: register the socket with the current guard; mark ``sent``."""

    sock: Any

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        guard = _GUARD.get()
        if guard is not None:
            guard.attach(sock)
            self._cvhub_guard = guard
        return sock  # type: ignore[no-any-return]

    def request(self, *args: Any, **kwargs: Any) -> None:
        guard = _GUARD.get()
        if guard is not None:
            if self.sock is None:
                self.connect()  # type: ignore[attr-defined]  # connect first: a failure here sent nothing
            if getattr(self, "_cvhub_guard", None) is not guard and self.sock is not None:
                guard.attach(self.sock)  # a pooled connection reused by this call
                self._cvhub_guard = guard
            guard.sent = True
        super().request(*args, **kwargs)  # type: ignore[misc]


class _GuardedHTTPConnection(_GuardedMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections report to the current ``HttpCallGuard``."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def guard_session(session: Any) -> Any:
    """Mount ``GuardedAdapter`` for http and https on ``session`` (a ``requests.Session``)."""
    adapter = GuardedAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


__all__ = ["Deadline", "GuardedAdapter", "HttpCallGuard", "guard_session", "http_call", "watchdog"]
