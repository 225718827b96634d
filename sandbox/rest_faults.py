"""Switchable fault injection for the REST sandboxes, as an ASGI middleware.

A ``FaultPlan`` holds armed faults (kind, operation, how many times, parameters); the
``FaultMiddleware`` wraps a FastAPI app, names each request by its route (the operation), records
it in the sandbox's journal with its serial/ref, and applies the first armed fault that matches:

- ``latency`` / ``timeout``: sleep ``delay`` seconds, then answer normally (``timeout`` uses the
  sandbox's ``timeout_delay``, longer than the clients' read timeout in tests);
- ``server_error``: answer ``status`` (503) without applying anything;
- ``rate_limit``: 429 with ``Retry-After`` (``retry_after`` seconds, or an HTTP-date if
  ``http_date=True``);
- ``client_error``: answer ``status`` (400);
- ``drop_before``: read the request, apply nothing, close the TCP connection without an answer;
- ``drop_after``: apply the request fully, discard the answer, close the connection;
- ``duplicate`` is not handled here: list endpoints ask the plan themselves and deliver twice.

Faults can be armed from Python (``sandbox.inject``) or over HTTP (``POST /_sandbox/faults``).
This module must never be used outside sandboxes: it exists to misbehave on purpose.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import format_datetime
from typing import Any, Protocol

from starlette.routing import Match

from canonical.clock import SYSTEM_CLOCK

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MIDDLEWARE_KINDS = frozenset(
    {"latency", "timeout", "server_error", "rate_limit", "client_error", "drop_before", "drop_after"}
)
ALL_KINDS = MIDDLEWARE_KINDS | {"duplicate"}


@dataclass
class Fault:
    kind: str
    operation: str | None = None  # None: any operation
    times: int | None = 1  # None: until cleared
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "operation": self.operation, "times": self.times, "params": self.params}


class FaultPlan:
    """Thread-safe list of armed faults; ``take`` consumes one matching occurrence."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def arm(self, fault: Fault) -> None:
        if fault.kind not in ALL_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; known: {sorted(ALL_KINDS)}")
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def armed(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, operation: str, kinds: frozenset[str]) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.kind in kinds and (f.operation is None or f.operation == operation):
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self._faults.remove(f)
                    return f
        return None


class FaultHost(Protocol):
    """What the middleware needs from a sandbox."""

    faults: FaultPlan
    timeout_delay: float

    def record(self, operation: str, ref: str | None) -> None: ...
    def ref_of(
        self, operation: str, path_params: dict[str, Any], headers: dict[str, str], body: bytes
    ) -> str | None: ...


class FaultMiddleware:
    """Names, journals and (when armed) sabotages every API request of a FastAPI app."""

    def __init__(self, app: Any, host: FaultHost) -> None:
        self.app = app
        self.host = host

    def _operation(self, scope: Scope) -> tuple[str | None, dict[str, Any]]:
        for route in self.app.router.routes:
            if not getattr(route, "include_in_schema", False):
                continue
            match, child = route.matches(scope)
            if match == Match.FULL:
                return route.name, dict(child.get("path_params", {}))
        return None, {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        operation, path_params = self._operation(scope)
        if operation is None:  # docs, openapi.json, the /_sandbox admin API: never sabotaged
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        self.host.record(operation, self.host.ref_of(operation, path_params, headers, body))
        replay = _replay(body)
        fault = self.host.faults.take(operation, MIDDLEWARE_KINDS)
        if fault is None:
            await self.app(scope, replay, send)
            return
        p = fault.params
        if fault.kind in ("latency", "timeout"):
            await asyncio.sleep(
                float(p.get("delay", self.host.timeout_delay if fault.kind == "timeout" else 0.2))
            )
            await self.app(scope, replay, send)
        elif fault.kind == "server_error":
            await _json(
                send,
                int(p.get("status", 503)),
                {"code": "SANDBOX_UNAVAILABLE", "message": "injected server error"},
            )
        elif fault.kind == "rate_limit":
            seconds = int(p.get("retry_after", 1))
            value = (
                format_datetime(SYSTEM_CLOCK() + timedelta(seconds=seconds), usegmt=True)  # HTTP time
                if p.get("http_date")
                else str(seconds)
            )
            await _json(
                send,
                429,
                {"code": "RATE_LIMITED", "message": "slow down"},
                [(b"retry-after", value.encode())],
            )
        elif fault.kind == "client_error":
            await _json(
                send,
                int(p.get("status", 400)),
                {"code": "SANDBOX_BAD_REQUEST", "message": "injected client error"},
            )
        elif fault.kind == "drop_before":
            await _drop(receive)
        elif fault.kind == "drop_after":

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, replay, swallow)
            await _drop(receive)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a real client that sent everything: nothing more
        return {"type": "http.disconnect"}

    return receive


async def _drop(receive: Receive) -> None:
    """Close the TCP connection with no answer at all (uvicorn's h11 cycle owns the transport)."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("dropping a connection needs uvicorn's h11 protocol (http='h11')")
    transport.abort()
    if cycle is not None:
        cycle.disconnected = True  # so uvicorn does not try to answer the closed connection


async def _json(
    send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
