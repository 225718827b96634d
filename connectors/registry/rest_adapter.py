"""REST adapter of the registry interface, for third-party 中登网 API providers.

Registration, amendment and cancellation are POSTs keyed by the caller's ``request_no`` (sent as
the Idempotency-Key and in the body). A lost answer (``OutcomeUnknown``) is resolved by querying
the provider by ``request_no``; only if the provider never saw it is the request resent, under the
same ``request_no``. It must never log the API key or resend a registration blindly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from connectors.archive import Archive
from connectors.errors import NotFound, OutcomeUnknown, ValidationFailed
from connectors.registry.model import Registration, RegistrationRequest
from connectors.rest import RestClient, RestConfig, RestResponse, path_segment
from ledger.money import to_decimal_text

log = logging.getLogger("cvhub.connectors.registry")


def registration_from_json(doc: Mapping[str, Any], *, sha256: str | None = None) -> Registration:
    """A provider registration record -> ``Registration`` (``ValidationFailed`` on a bad record)."""
    try:
        status = str(doc["status"])
        if status not in ("REGISTERED", "AMENDED", "CANCELLED"):
            raise ValueError(f"unknown status {status!r}")
        registered = doc.get("registered_at")
        expires = doc.get("expires_at")
        return Registration(
            status=status,  # type: ignore[arg-type]
            request_no=str(doc["request_no"]),
            registration_no=str(doc["registration_no"]),
            grantor_uscc=doc.get("grantor", {}).get("uscc"),
            grantee_uscc=doc.get("grantee", {}).get("uscc"),
            voucher_id=doc.get("property", {}).get("voucher_id"),
            registered_at=datetime.fromisoformat(registered) if registered else None,
            expires_at=date.fromisoformat(expires) if expires else None,
            conflicts=tuple(str(c) for c in doc.get("conflicts", ())),
            raw_sha256=sha256,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValidationFailed(
            f"bad registration record: {e}",
            system="registry",
            operation="parse",
            ref=str(doc.get("request_no") if isinstance(doc, Mapping) else None),
        ) from e


class RestRegistry:
    """``Registry`` over a provider's REST API. ``status(ref)`` takes the request number."""

    def __init__(
        self, config: RestConfig, *, archive: Archive, page_size: int = 50, rest: RestClient | None = None
    ) -> None:
        self.config = config
        self.page_size = page_size
        self.rest = rest or RestClient(config, archive=archive)

    def close(self) -> None:
        self.rest.close()

    def _seg(self, value: str, operation: str) -> str:
        return path_segment(value, system=self.config.system, operation=operation)

    def _record(self, resp: RestResponse, operation: str, ref: str) -> Registration:
        return registration_from_json(
            self.rest.json_object(resp, operation, ref), sha256=resp.response_sha256
        )

    def _post_resolving(
        self,
        path: str,
        body: dict[str, Any],
        *,
        operation: str,
        request_no: str,
        matches: Callable[[Registration], bool],
    ) -> Registration:
        try:
            resp = self.rest.post(path, body, operation=operation, ref=request_no, idempotency_key=request_no)
        except OutcomeUnknown as unknown:
            log.warning("%s; querying request %s before any resend", unknown, request_no)
            try:
                found = self.status(request_no)
            except NotFound:
                found = None
            if found is not None and matches(found):
                return found
            resp = self.rest.post(path, body, operation=operation, ref=request_no, idempotency_key=request_no)
        return self._record(resp, operation, request_no)

    def check(self) -> None:
        self.rest.get(
            "/api/v1/registrations",
            operation="list_by_grantor",
            params={"grantor_uscc": "0" * 18, "limit": "1"},
        )

    def register(self, request: RegistrationRequest) -> Registration:
        body = {
            "request_no": request.request_no,
            "kind": request.kind,
            "grantor": {"uscc": request.grantor_uscc, "name": request.grantor_name},
            "grantee": {"uscc": request.grantee_uscc, "name": request.grantee_name},
            "property": {
                "voucher_id": request.voucher_id,
                "piece_id": request.piece_id,
                "description": request.description or f"电子债权凭证 {request.voucher_id} 项下应收账款",
                "amount": to_decimal_text(request.amount_minor, request.currency),
                "currency": request.currency,
            },
            "term_months": request.term_months,
        }
        return self._post_resolving(
            "/api/v1/registrations",
            body,
            operation="register",
            request_no=request.request_no,
            matches=lambda r: True,
        )

    def query_by_grantor(self, grantor_uscc: str) -> list[Registration]:
        out: dict[str, Registration] = {}
        for page in self.rest.paginate(
            "/api/v1/registrations",
            operation="list_by_grantor",
            params={"grantor_uscc": grantor_uscc, "limit": str(self.page_size)},
        ):
            for doc in page.items:
                reg = registration_from_json(doc, sha256=page.response.response_sha256)
                out.setdefault(reg.registration_no or reg.request_no, reg)
        return list(out.values())

    def amend(self, registration_no: str, *, request_no: str, changes: Mapping[str, Any]) -> Registration:
        return self._post_resolving(
            f"/api/v1/registrations/{self._seg(registration_no, 'amend')}/amendments",
            {"request_no": request_no, "changes": dict(changes)},
            operation="amend",
            request_no=request_no,
            matches=lambda r: r.status in ("AMENDED", "CANCELLED"),
        )

    def cancel(self, registration_no: str, *, request_no: str, reason: str) -> Registration:
        return self._post_resolving(
            f"/api/v1/registrations/{self._seg(registration_no, 'cancel')}/cancellation",
            {"request_no": request_no, "reason": reason},
            operation="cancel",
            request_no=request_no,
            matches=lambda r: r.status == "CANCELLED",
        )

    def status(self, ref: str) -> Registration:
        """The registration produced by request ``ref``; ``NotFound`` if the provider never saw it."""
        seg = path_segment(ref, system=self.config.system, operation="get_by_request")
        resp = self.rest.get(f"/api/v1/registrations/by-request/{seg}", operation="get_by_request", ref=ref)
        return self._record(resp, "get_by_request", ref)
