"""Registry sandbox: a third-party API provider in front of the receivables registry (中登网).

The registry itself has no public API; commercial providers offer one. This sandbox behaves like
such a provider (OpenAPI document at ``/openapi.json``; ``X-Api-Key`` on every call):

- ``POST /api/v1/registrations`` (``register``): ``{"request_no", "kind": "TRANSFER"|"PLEDGE",
  "grantor": {"uscc","name"}, "grantee": {"uscc","name"}, "property": {"voucher_id",
  "description", "amount", "currency"}, "term_months"}`` -> ``201`` with a 20-digit
  ``registration_no`` (登记证明编号), ``registered_at``, ``expires_at`` and ``conflicts``: the
  numbers of live registrations by the same grantor over the same voucher. A repeated
  ``request_no`` with the same content answers the original (``200``); with other content ``409``.
- ``GET /api/v1/registrations/by-request/{request_no}`` (``get_by_request``): query by serial.
- ``GET /api/v1/registrations?grantor_uscc=...&cursor=...&limit=...`` (``list_by_grantor``): every
  registration naming the grantor (查询), oldest first, cursor-paginated.
- ``GET /api/v1/registrations/{registration_no}`` (``get_registration``).
- ``POST /api/v1/registrations/{registration_no}/amendments`` (``amend``): ``{"request_no",
  "changes": {...}}`` (变更登记); ``.../cancellation`` (``cancel``): ``{"request_no", "reason"}``
  (注销登记). Both idempotent by ``request_no``.

Faults: see ``sandbox.rest_faults`` (``duplicate`` on ``list_by_grantor`` repeats a record).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as pysecrets
from datetime import timedelta
from typing import Any, ClassVar

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from stdnum.cn import uscc as uscc_check

from canonical.clock import SYSTEM_CLOCK, Clock
from sandbox.rest_parties import OBLIGOR, enterprise
from sandbox.rest_server import Contract, RestSandbox, documented, json_request_body

KINDS = ("TRANSFER", "PLEDGE")


class PartyRef(Contract):
    uscc: str = Field(
        min_length=18, max_length=18, description="unified social credit code (check digit verified)"
    )
    name: str


class PropertyRef(Contract):
    voucher_id: str | None = None
    piece_id: str | None = None
    description: str | None = None
    amount: str = Field(pattern=r"^[0-9]+\.[0-9]{2}$")
    currency: str


class RegistrationBody(Contract):
    """An initial registration (初始登记). ``request_no`` is the caller's serial and idempotency key."""

    request_no: str = Field(max_length=64)
    kind: str = Field(description="TRANSFER (应收账款转让) | PLEDGE (应收账款质押)")
    grantor: PartyRef
    grantee: PartyRef
    property: PropertyRef
    term_months: int = Field(ge=1, le=360)


class RegistrationRecord(Contract):
    registration_no: str = Field(description="登记证明编号, 20 digits")
    request_no: str
    kind: str
    status: str = Field(description="REGISTERED | AMENDED | CANCELLED")
    grantor: PartyRef
    grantee: PartyRef
    property: PropertyRef
    term_months: int
    registered_at: str
    expires_at: str
    amendments: list[dict[str, Any]]
    cancelled_at: str | None = None
    cancel_reason: str | None = None
    conflicts: list[str] = Field(default_factory=list, description="live registrations over the same voucher")
    operation: str | None = Field(None, description="by-request queries: which request produced it")


class RegistrationPage(Contract):
    items: list[RegistrationRecord]
    next_cursor: str | None


class AmendmentBody(Contract):
    request_no: str = Field(max_length=64)
    changes: dict[str, Any] = Field(description="grantee, property and/or term_months")


class CancellationBody(Contract):
    request_no: str = Field(max_length=64)
    reason: str


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"reg:{seq}".encode()).decode().rstrip("=")


def _seq_of(cursor: str | None) -> int | None:
    if not cursor:
        return 0
    try:
        prefix, seq = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":", 1)
        return int(seq) if prefix == "reg" else None
    except ValueError:
        return None


def _digest(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class RegistrySandbox(RestSandbox):
    name: ClassVar[str] = "registry"
    title: ClassVar[str] = "cvhub registry (中登网 API provider) sandbox"

    def __init__(self, *, api_key: str | None = None, **kw: Any) -> None:
        self.api_key = api_key or "reg-" + pysecrets.token_urlsafe(24)
        self._regs: dict[str, dict[str, Any]] = {}  # registration_no -> record
        self._by_request: dict[
            str, tuple[str, str, dict[str, Any]]
        ] = {}  # request_no -> (digest, op, result)
        self._seq = 0
        super().__init__(**kw)

    # --- data ---------------------------------------------------------------------------------
    def reset_data(self) -> None:
        with self._lock:
            self._regs.clear()
            self._by_request.clear()
            self._seq = 0

    def _new_number(self) -> tuple[int, str]:
        self._seq += 1
        day = self.clock().strftime("%Y%m%d")
        return self._seq, f"{day}{self._seq:012d}"

    def _register(self, doc: dict[str, Any]) -> dict[str, Any]:
        seq, number = self._new_number()
        now = self.clock()
        voucher = doc["property"].get("voucher_id")
        conflicts = [
            r["registration_no"]
            for r in self._regs.values()
            if r["status"] != "CANCELLED"
            and r["grantor"]["uscc"] == doc["grantor"]["uscc"]
            and voucher
            and r["property"].get("voucher_id") == voucher
        ]
        record = {
            "registration_no": number,
            "request_no": doc["request_no"],
            "kind": doc["kind"],
            "status": "REGISTERED",
            "grantor": doc["grantor"],
            "grantee": doc["grantee"],
            "property": doc["property"],
            "term_months": doc["term_months"],
            "registered_at": now.isoformat(),
            "expires_at": (now + timedelta(days=30 * int(doc["term_months"]))).date().isoformat(),
            "amendments": [],
            "_seq": seq,
        }
        self._regs[number] = record
        return {**_public(record), "conflicts": conflicts}

    def add_registration(
        self, *, grantor_uscc: str, voucher_id: str, grantee_no: int = 900, request_no: str | None = None
    ) -> dict[str, Any]:
        """Put a registration on file directly (e.g. a competing funder's: a conflict to detect)."""
        funder = enterprise(grantee_no)
        with self._lock:
            doc = {
                "request_no": request_no or f"EXT-{self._seq + 1:08d}",
                "kind": "TRANSFER",
                "grantor": {"uscc": grantor_uscc, "name": "出让人"},
                "grantee": {"uscc": funder.uscc, "name": funder.name.replace("有限公司", "商业保理有限公司")},
                "property": {
                    "voucher_id": voucher_id,
                    "description": f"电子债权凭证 {voucher_id} 项下应收账款",
                    "amount": "100000.00",
                    "currency": "CNY",
                },
                "term_months": 12,
            }
            result = self._register(doc)
            self._by_request[str(doc["request_no"])] = (_digest(doc), "register", result)
            return result

    def seed(self, count: int) -> None:
        self.reset_data()
        for i in range(count):
            self.add_registration(
                grantor_uscc=OBLIGOR.uscc, voucher_id=f"CV-SEED-{i:05d}", request_no=f"SEED-{i:06d}"
            )

    def registration(self, registration_no: str) -> dict[str, Any] | None:
        with self._lock:
            r = self._regs.get(registration_no)
            return _public(r) if r else None

    def secrets(self) -> list[str]:
        return [self.api_key]

    def credentials(self) -> dict[str, str]:
        return {"auth": "X-Api-Key", "api_key": self.api_key}

    def ref_of(
        self, operation: str, path_params: dict[str, Any], headers: dict[str, str], body: bytes
    ) -> str | None:
        if operation in ("amend", "cancel", "register") and body:
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and isinstance(doc.get("request_no"), str):
                return str(doc["request_no"])
        return super().ref_of(operation, path_params, headers, body)

    # --- API ----------------------------------------------------------------------------------
    def build_routes(self, app: FastAPI) -> None:
        def authorised(key: str | None) -> bool:
            return key is not None and pysecrets.compare_digest(key.encode(), self.api_key.encode())

        unauthorised = _error(401, "UNAUTHORISED", "missing or invalid API key")

        def idempotent(request_no: str, op: str, doc: dict[str, Any]) -> JSONResponse | None:
            seen = self._by_request.get(request_no)
            if seen is None:
                return None
            if seen[0] != _digest(doc) or seen[1] != op:
                return _error(
                    409, "REQUEST_NO_CONFLICT", f"request_no {request_no} was used with other content"
                )
            return JSONResponse(seen[2], status_code=200, headers={"Idempotent-Replayed": "true"})

        @app.post(
            "/api/v1/registrations",
            name="register",
            status_code=201,
            summary="File an initial registration (初始登记)",
            responses=documented(RegistrationRecord, 400, 401, 409, 422, status=201),
            openapi_extra=json_request_body(RegistrationBody),
        )
        async def register(request: Request, x_api_key: str | None = Header(None)) -> JSONResponse:
            if not authorised(x_api_key):
                return unauthorised
            try:
                doc = json.loads(await request.body())
                missing = [
                    f
                    for f in ("request_no", "kind", "grantor", "grantee", "property", "term_months")
                    if f not in doc
                ]
                if missing:
                    return _error(400, "MISSING_FIELD", f"missing {', '.join(missing)}")
                if doc["kind"] not in KINDS:
                    return _error(422, "BAD_KIND", f"kind must be one of {KINDS}")
                if not (1 <= int(doc["term_months"]) <= 360):
                    return _error(422, "BAD_TERM", "term_months must be 1..360")
                for role in ("grantor", "grantee"):
                    if not uscc_check.is_valid(str(doc[role].get("uscc") or "")):
                        return _error(
                            422, "BAD_USCC", f"{role}.uscc is not a valid unified social credit code"
                        )
            except (ValueError, TypeError, AttributeError):
                return _error(400, "BAD_REQUEST", "body must be a registration JSON object")
            with self._lock:
                replay = idempotent(doc["request_no"], "register", doc)
                if replay is not None:
                    return replay
                result = self._register(doc)
                self._by_request[doc["request_no"]] = (_digest(doc), "register", result)
                self.applied(doc["request_no"])
            return JSONResponse(result, status_code=201)

        @app.get(
            "/api/v1/registrations/by-request/{request_no}",
            name="get_by_request",
            summary="Find what a request number produced (query by serial)",
            responses=documented(RegistrationRecord, 401, 404),
        )
        def get_by_request(
            request_no: str = Path(..., max_length=64), x_api_key: str | None = Header(None)
        ) -> JSONResponse:
            if not authorised(x_api_key):
                return unauthorised
            with self._lock:
                seen = self._by_request.get(request_no)
                if seen is None:
                    return _error(404, "NOT_FOUND", f"no request {request_no}")
                current = self._regs.get(seen[2]["registration_no"])
                return JSONResponse(
                    {**seen[2], **(_public(current) if current else {}), "operation": seen[1]}
                )

        @app.get(
            "/api/v1/registrations",
            name="list_by_grantor",
            summary="Registrations naming a grantor (查询), oldest first",
            responses=documented(RegistrationPage, 400, 401, 422),
        )
        def list_by_grantor(
            grantor_uscc: str = Query(..., min_length=18, max_length=18),
            cursor: str | None = Query(None),
            limit: int = Query(50, ge=1, le=200),
            x_api_key: str | None = Header(None),
        ) -> JSONResponse:
            if not authorised(x_api_key):
                return unauthorised
            if not uscc_check.is_valid(grantor_uscc):
                return _error(422, "BAD_USCC", "grantor_uscc is not a valid unified social credit code")
            after = _seq_of(cursor)
            if after is None:
                return _error(400, "BAD_CURSOR", "unknown cursor")
            with self._lock:
                rows = sorted(
                    (
                        r
                        for r in self._regs.values()
                        if r["grantor"]["uscc"] == grantor_uscc and r["_seq"] > after
                    ),
                    key=lambda r: r["_seq"],
                )
                page = rows[:limit]
                items = [_public(r) for r in page]
                if items and self.faults.take("list_by_grantor", frozenset({"duplicate"})):
                    items.insert(0, items[-1])
                more = len(rows) > limit
                nxt = _cursor(page[-1]["_seq"]) if more else None
            return JSONResponse({"items": items, "next_cursor": nxt})

        @app.get(
            "/api/v1/registrations/{registration_no}",
            name="get_registration",
            summary="One registration",
            responses=documented(RegistrationRecord, 401, 404),
        )
        def get_registration(
            registration_no: str = Path(..., max_length=32), x_api_key: str | None = Header(None)
        ) -> JSONResponse:
            if not authorised(x_api_key):
                return unauthorised
            record = self.registration(registration_no)
            if record is None:
                return _error(404, "NOT_FOUND", f"no registration {registration_no}")
            return JSONResponse(record)

        async def change(request: Request, registration_no: str, op: str) -> JSONResponse:
            try:
                doc = json.loads(await request.body())
                request_no = str(doc["request_no"])
            except (ValueError, KeyError, TypeError):
                return _error(400, "BAD_REQUEST", "body must be JSON with request_no")
            with self._lock:
                replay = idempotent(request_no, op, {**doc, "registration_no": registration_no})
                if replay is not None:
                    return replay
                record = self._regs.get(registration_no)
                if record is None:
                    return _error(404, "NOT_FOUND", f"no registration {registration_no}")
                if record["status"] == "CANCELLED":
                    return _error(409, "CANCELLED", f"registration {registration_no} is cancelled")
                now = self.clock().isoformat()
                if op == "amend":
                    changes = doc.get("changes")
                    if not isinstance(changes, dict) or not changes:
                        return _error(422, "NO_CHANGES", "changes must be a non-empty object")
                    for k, v in changes.items():
                        if k in ("grantee", "property"):
                            record[k] = {**record[k], **v}
                        elif k == "term_months":
                            record[k] = int(v)
                        else:
                            return _error(422, "BAD_CHANGE", f"field {k} cannot be amended")
                    record["status"] = "AMENDED"
                    record["amendments"].append({"request_no": request_no, "at": now, "changes": changes})
                else:
                    record["status"] = "CANCELLED"
                    record["cancelled_at"] = now
                    record["cancel_reason"] = str(doc.get("reason") or "")
                result = _public(record)
                self._by_request[request_no] = (
                    _digest({**doc, "registration_no": registration_no}),
                    op,
                    result,
                )
                self.applied(request_no)
            return JSONResponse(result)

        @app.post(
            "/api/v1/registrations/{registration_no}/amendments",
            name="amend",
            summary="Amend a registration (变更登记)",
            responses=documented(RegistrationRecord, 400, 401, 404, 409, 422),
            openapi_extra=json_request_body(AmendmentBody),
        )
        async def amend(
            request: Request,
            registration_no: str = Path(..., max_length=32),
            x_api_key: str | None = Header(None),
        ) -> JSONResponse:
            if not authorised(x_api_key):
                return unauthorised
            return await change(request, registration_no, "amend")

        @app.post(
            "/api/v1/registrations/{registration_no}/cancellation",
            name="cancel",
            summary="Cancel a registration (注销登记)",
            responses=documented(RegistrationRecord, 400, 401, 404, 409),
            openapi_extra=json_request_body(CancellationBody),
        )
        async def cancel(
            request: Request,
            registration_no: str = Path(..., max_length=32),
            x_api_key: str | None = Header(None),
        ) -> JSONResponse:
            if not authorised(x_api_key):
                return unauthorised
            return await change(request, registration_no, "cancel")


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def start_registry(
    *, port: int = 0, api_key: str | None = None, clock: Clock = SYSTEM_CLOCK
) -> RegistrySandbox:
    """Start a registry API-provider sandbox on 127.0.0.1; ``.url``, ``.api_key``, ``.stop()``."""
    sandbox = RegistrySandbox(api_key=api_key, clock=clock)
    sandbox.start(port=port)
    return sandbox
