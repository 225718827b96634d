"""Base of the REST sandboxes: a FastAPI app served by uvicorn in a background thread on loopback.

``RestSandbox`` gives every REST sandbox the same handle, which is also the conformance kit's
``ConformanceSandbox`` protocol (``connectors.testing``): ``start()/stop()`` (or ``with``),
``url``, ``inject/clear_faults``, a request ``journal`` (operation, serial) in arrival order,
``effects(serial)`` (state changes applied), ``reset()``, ``seed(n)``, ``secrets()`` and
``credentials()``. Every sandbox serves its OpenAPI document at ``/openapi.json`` and an admin API
under ``/_sandbox`` (faults, journal, reset, seed) that is excluded from the OpenAPI document and from
fault injection.

Sandboxes bind 127.0.0.1 only, on an ephemeral port unless one is given; with ``https``/``tls_dir``
they serve https with a certificate from a throwaway private CA (``ca_bundle``, see
``sandbox.rest_tls``). They must never be exposed beyond loopback: their credentials are printed
on the console by ``cvhub sandbox up``.
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from canonical.clock import SYSTEM_CLOCK, Clock
from sandbox.rest_faults import ALL_KINDS, Fault, FaultMiddleware, FaultPlan
from sandbox.rest_tls import SandboxTls, make_sandbox_tls


class Contract(BaseModel):
    """Base of the sandboxes' documented request/response bodies: undocumented fields are errors,
    so the OpenAPI document is exactly what goes over the wire (checked by tests/sandbox)."""

    model_config = ConfigDict(extra="forbid")


class ApiError(Contract):
    """Every sandbox error body: a stable machine code and a human message (never a secret)."""

    code: str
    message: str


def json_request_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON request body. Handlers read the raw bytes themselves
    (signatures are over the exact bytes; errors keep the sandbox's own codes and order)."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def documented(model: type[BaseModel] | None, *errors: int, status: int = 200) -> dict[int | str, Any]:
    """``responses=`` for a route: the success model and the ``ApiError`` statuses it can answer."""
    out: dict[int | str, Any] = {code: {"model": ApiError} for code in errors}
    if model is not None:
        out[status] = {"model": model}
    return out


class RestSandbox:
    """Common state and lifecycle of a REST sandbox; subclasses add routes in ``build_routes``."""

    name: ClassVar[str] = "rest"
    title: ClassVar[str] = "REST sandbox"
    supported_faults: frozenset[str] = frozenset(ALL_KINDS)

    def __init__(
        self,
        *,
        timeout_delay: float = 1.5,
        https: bool = False,
        tls_dir: Path | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        # The sandbox's business clock (canonical.clock): dates of statements, registration numbers,
        # decisions and audit stamps. The sandbox stack hands every sandbox the same one.
        self.clock: Clock = clock
        self.faults = FaultPlan()
        self.https = https or tls_dir is not None
        self.tls_dir = tls_dir
        self._tls_tmp: tempfile.TemporaryDirectory[str] | None = None
        self.tls: SandboxTls | None = None
        self.timeout_delay = timeout_delay
        self._lock = threading.RLock()
        self._journal: list[tuple[str, str | None]] = []
        self._effects: Counter[str] = Counter()
        # The sandbox module's docstring (API, authentication, faults) becomes the document's description.
        description = sys.modules[type(self).__module__].__doc__ or ""
        self.app = FastAPI(title=self.title, version="1.0.0", description=description)
        self._admin_routes()
        self.build_routes(self.app)
        self.asgi = FaultMiddleware(self.app, self)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.host = "127.0.0.1"
        self.port = 0

    # --- to override --------------------------------------------------------------------------
    def build_routes(self, app: FastAPI) -> None:
        raise NotImplementedError

    def reset_data(self) -> None:
        """Forget every business record (called by ``reset``)."""

    def seed(self, count: int) -> None:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        return []

    def credentials(self) -> dict[str, str]:
        return {}

    def ref_of(
        self, operation: str, path_params: dict[str, Any], headers: dict[str, str], body: bytes
    ) -> str | None:
        """The serial a request concerns: a path parameter, a serial field of the body, or its key."""
        if path_params:
            return str(next(iter(path_params.values())))
        if body:
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                for name in ("serial_no", "request_no", "serial"):
                    if isinstance(doc.get(name), str):
                        return str(doc[name])
        return headers.get("idempotency-key")

    # --- journal and effects ------------------------------------------------------------------
    def record(self, operation: str, ref: str | None) -> None:
        with self._lock:
            self._journal.append((operation, ref))

    def applied(self, ref: str) -> None:
        """Count one applied state change under ``ref`` (handlers call this exactly when they apply)."""
        with self._lock:
            self._effects[ref] += 1

    def journal(self) -> list[tuple[str, str | None]]:
        with self._lock:
            return list(self._journal)

    def requests(self, operation: str | None = None) -> int:
        with self._lock:
            return sum(1 for op, _ in self._journal if operation is None or op == operation)

    def effects(self, ref: str) -> int:
        with self._lock:
            return self._effects[ref]

    def inject(
        self, kind: str, *, operation: str | None = None, times: int | None = 1, **params: Any
    ) -> None:
        if operation is not None and operation not in self.operations():
            raise ValueError(f"{self.name}: unknown operation {operation!r}; known: {self.operations()}")
        self.faults.arm(Fault(kind, operation, times, dict(params)))

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self._journal.clear()
            self._effects.clear()
            self.reset_data()

    def operations(self) -> list[str]:
        return [
            str(getattr(r, "name", ""))
            for r in self.app.router.routes
            if getattr(r, "include_in_schema", False)
        ]

    # --- admin API ----------------------------------------------------------------------------
    def _admin_routes(self) -> None:
        app = self.app

        @app.get("/_sandbox/faults", include_in_schema=False)
        def list_faults() -> list[dict[str, Any]]:
            return [f.to_json() for f in self.faults.armed()]

        @app.post("/_sandbox/faults", include_in_schema=False)
        async def arm_fault(request: Request) -> JSONResponse:
            doc = await request.json()
            try:
                self.inject(
                    str(doc["kind"]),
                    operation=doc.get("operation"),
                    times=doc.get("times", 1),
                    **dict(doc.get("params") or {}),
                )
            except (KeyError, ValueError) as e:
                return JSONResponse({"code": "BAD_FAULT", "message": str(e)}, status_code=400)
            return JSONResponse({"armed": [f.to_json() for f in self.faults.armed()]}, status_code=201)

        @app.delete("/_sandbox/faults", include_in_schema=False)
        def clear() -> dict[str, str]:
            self.clear_faults()
            return {"status": "cleared"}

        @app.get("/_sandbox/journal", include_in_schema=False)
        def journal() -> list[list[str | None]]:
            return [[op, ref] for op, ref in self.journal()]

        @app.post("/_sandbox/reset", include_in_schema=False)
        def reset() -> dict[str, str]:
            self.reset()
            return {"status": "reset"}

        @app.post("/_sandbox/seed", include_in_schema=False)
        async def seed(request: Request) -> dict[str, Any]:
            count = int((await request.json()).get("count", 10))
            self.seed(count)
            return {"status": "seeded", "count": count}

    # --- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError(f"{self.name} sandbox is not started")
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_bundle(self) -> str | None:
        """The CA file clients must trust (``RestConfig.ca_bundle``) when serving https, else None."""
        return str(self.tls.ca_file) if self.tls else None

    def start(self, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 10.0) -> RestSandbox:
        if self._server is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self.host, self.port = host, sock.getsockname()[1]
        tls_options: dict[str, Any] = {}
        if self.https:
            if self.tls_dir is None:
                self._tls_tmp = tempfile.TemporaryDirectory(prefix=f"cvhub-{self.name}-tls-")
            self.tls = make_sandbox_tls(self.tls_dir or Path(self._tls_tmp.name))  # type: ignore[union-attr]
            tls_options = {"ssl_certfile": str(self.tls.cert_file), "ssl_keyfile": str(self.tls.key_file)}
        config = uvicorn.Config(
            self.asgi,
            http="h11",
            loop="asyncio",  # the stdlib loop: predictable transports for the dropped-connection faults
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
            timeout_keep_alive=5,
            **tls_options,
        )
        server = uvicorn.Server(config)
        # uvicorn captures signals only in the main thread, so Ctrl-C stays with the caller.
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{self.name}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} sandbox did not start on {host}:{self.port}")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None
        if self._tls_tmp is not None:
            self._tls_tmp.cleanup()
            self._tls_tmp = None

    def __enter__(self) -> RestSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
