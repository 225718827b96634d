"""Bank B financing over REST: submit an application, follow decision and disbursement notices,
query by serial number.

Every request is HMAC-signed (``RestConfig.signer`` is required: Bank B refuses unsigned calls).
The serial number is the idempotency key. A submission whose answer is lost (``OutcomeUnknown``)
is resolved by querying the serial: found -> that is the answer; not found -> resend under the
same serial. Amounts travel as decimal strings and are converted to integer minor units here with
``ledger.money``; anything malformed is ``ValidationFailed`` naming the serial and field.
It must never resend a financing request blindly, log the signing secret, or float an amount.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from connectors.archive import Archive
from connectors.errors import ConfigurationError, FatalError, NotFound, OutcomeUnknown, ValidationFailed
from connectors.rest import RestClient, RestConfig, RestResponse, path_segment
from ledger.money import AmountError, to_decimal_text, to_minor

log = logging.getLogger("cvhub.connectors.bank_b")

SYSTEM = "bank_b"
BASE = "/openapi/v2/financing"
Status = Literal["RECEIVED", "APPROVED", "REJECTED", "DISBURSED"]


@dataclass(frozen=True, slots=True)
class FinancingApplication:
    """A request to finance (discount) one voucher piece at Bank B.

    serial_no: cvhub's serial, unique per application (the idempotency key; reuse it on resend).
    registration_no: the registry (中登网) registration of the assignment; Bank B rejects without.
    """

    serial_no: str
    voucher_id: str
    piece_id: str
    applicant_uscc: str
    applicant_name: str
    applicant_account: str
    applicant_cnaps: str
    amount_minor: int
    currency: str
    maturity_date: date
    registration_no: str | None
    recourse: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "serial_no": self.serial_no,
            "voucher_id": self.voucher_id,
            "piece_id": self.piece_id,
            "applicant": {
                "uscc": self.applicant_uscc,
                "name": self.applicant_name,
                "account": self.applicant_account,
                "cnaps": self.applicant_cnaps,
            },
            "amount": to_decimal_text(self.amount_minor, self.currency),
            "currency": self.currency,
            "maturity_date": self.maturity_date.isoformat(),
            "registration_no": self.registration_no,
            "recourse": self.recourse,
        }


@dataclass(frozen=True, slots=True)
class FinancingState:
    """Where an application stands at Bank B (amounts in minor units)."""

    serial_no: str
    application_id: str
    status: Status
    amount_minor: int
    currency: str
    reason_code: str | None = None
    rate_bp: int | None = None
    discount_interest_minor: int | None = None
    disbursed_amount_minor: int | None = None
    value_date: date | None = None
    bank_ref: str | None = None
    raw_sha256: str | None = None
    replayed: bool = False  # Bank B already had this serial (idempotent replay / resolved by query)


@dataclass(frozen=True, slots=True)
class FinancingNotice:
    """A decision or disbursement notice, with the raw JSON it was read from."""

    notice_id: str
    type: Literal["DECISION", "DISBURSEMENT"]
    serial_no: str
    status: Status
    state: FinancingState
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class NoticePage:
    number: int
    notices: tuple[FinancingNotice, ...]
    cursor: str  # persist after the notices are processed; pass as ``since`` next time
    sha256: str
    last: bool


def _minor(text: object, currency: str, *, serial: str, name: str) -> int:
    try:
        return to_minor(str(text), currency)
    except AmountError as e:
        raise ValidationFailed(f"field {name}: {e}", system=SYSTEM, operation="parse", ref=serial) from e


def state_from_json(
    doc: Mapping[str, Any], *, sha256: str | None = None, replayed: bool = False
) -> FinancingState:
    """A Bank B application view (or notice) -> ``FinancingState``; ``ValidationFailed`` if malformed."""
    serial = str(doc.get("serial_no") or "")
    try:
        currency = str(doc.get("currency") or (doc.get("disbursement") or {}).get("currency") or "CNY")
        status = str(doc["status"])
        if status not in ("RECEIVED", "APPROVED", "REJECTED", "DISBURSED"):
            raise ValueError(f"unknown status {status!r}")
        decision = doc.get("decision") or {}
        disb = doc.get("disbursement") or {}
        return FinancingState(
            serial_no=serial,
            application_id=str(doc["application_id"]),
            status=status,  # type: ignore[arg-type]
            amount_minor=_minor(doc["amount"], currency, serial=serial, name="amount"),
            currency=currency,
            reason_code=decision.get("reason_code"),
            rate_bp=decision.get("rate_bp"),
            discount_interest_minor=(
                _minor(
                    decision["discount_interest"], currency, serial=serial, name="decision.discount_interest"
                )
                if decision.get("discount_interest")
                else None
            ),
            disbursed_amount_minor=(
                _minor(disb["amount"], currency, serial=serial, name="disbursement.amount")
                if disb.get("amount")
                else None
            ),
            value_date=date.fromisoformat(disb["value_date"]) if disb.get("value_date") else None,
            bank_ref=disb.get("bank_ref"),
            raw_sha256=sha256,
            replayed=replayed,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, ValidationFailed):
            raise
        raise ValidationFailed(
            f"bad application record: {e}", system=SYSTEM, operation="parse", ref=serial
        ) from e


class BankBClient:
    """Bank B's financing API. ``config.signer`` is required."""

    def __init__(
        self, config: RestConfig, *, archive: Archive, page_size: int = 100, rest: RestClient | None = None
    ) -> None:
        if config.signer is None:
            raise ConfigurationError(
                "Bank B requires request signing: give RestConfig.signer",
                system=config.system,
                operation="configure",
            )
        self.config = config
        self.page_size = page_size
        self.rest = rest or RestClient(config, archive=archive)

    def close(self) -> None:
        self.rest.close()

    def check(self) -> None:
        """A signed cheap call: proves the endpoint, the clock and the signing key."""
        self.rest.get(f"{BASE}/notices", operation="list_notices", params={"limit": "1"})

    def _state(
        self, resp: RestResponse, operation: str, serial: str, *, replayed: bool = False
    ) -> FinancingState:
        doc = self.rest.json_object(resp, operation, serial)
        return state_from_json(
            doc,
            sha256=resp.response_sha256,
            replayed=replayed or resp.headers.get("Idempotent-Replayed", "").lower() == "true",
        )

    def submit_financing(self, application: FinancingApplication) -> FinancingState:
        """Submit (idempotent by serial). Unknown outcome -> query by serial -> resend only if unseen."""
        serial = application.serial_no
        body = application.to_json()
        path = f"{BASE}/applications"
        try:
            resp = self.rest.post(
                path, body, operation="submit_application", ref=serial, idempotency_key=serial
            )
        except OutcomeUnknown as unknown:
            log.warning("%s; querying serial %s before any resend", unknown, serial)
            try:
                found = self.query(serial)
            except NotFound:
                log.info("bank_b: serial %s never arrived; resending under the same serial", serial)
            else:
                if (found.amount_minor, found.currency) != (application.amount_minor, application.currency):
                    # the serial is Bank B's idempotency key: what it holds under it is another application
                    raise FatalError(
                        f"serial already used for another application ({found.currency} "
                        f"{to_decimal_text(found.amount_minor, found.currency)})",
                        system=SYSTEM, operation="submit_application", ref=serial) from unknown
                return FinancingState(**{**_fields(found), "replayed": True})
            resp = self.rest.post(
                path, body, operation="submit_application", ref=serial, idempotency_key=serial
            )
        return self._state(resp, "submit_application", serial)

    def query(self, serial_no: str) -> FinancingState:
        """The application's current state; ``NotFound`` if Bank B never received the serial."""
        seg = path_segment(serial_no, system=self.rest.config.system, operation="query_application")
        resp = self.rest.get(f"{BASE}/applications/{seg}", operation="query_application", ref=serial_no)
        return self._state(resp, "query_application", serial_no)

    def iter_notices(self, since: str | None = None) -> Iterator[NoticePage]:
        """Decision and disbursement notices after cursor ``since``, to the end. A notice Bank B
        delivers twice is yielded once per run; across runs, key processing by ``notice_id``."""
        params = {"limit": str(self.page_size)}
        if since:
            params["cursor"] = since
        seen: set[str] = set()
        for page in self.rest.paginate(f"{BASE}/notices", operation="list_notices", params=params):
            notices = []
            for raw in page.items:
                notice_id = str(raw.get("notice_id") or "") if isinstance(raw, dict) else ""
                if not notice_id:
                    raise ValidationFailed(
                        f"page {page.number}: notice without notice_id",
                        system=SYSTEM,
                        operation="list_notices",
                        ref=page.response.response_sha256,
                    )
                if notice_id in seen:
                    log.info("bank_b.list_notices: %s delivered twice, kept once", notice_id)
                    continue
                seen.add(notice_id)
                kind = raw.get("type")
                if kind not in ("DECISION", "DISBURSEMENT"):
                    raise ValidationFailed(
                        f"notice {notice_id}: unknown type {kind!r}",
                        system=SYSTEM,
                        operation="list_notices",
                        ref=notice_id,
                    )
                state = state_from_json(raw, sha256=page.response.response_sha256)
                notices.append(FinancingNotice(notice_id, kind, state.serial_no, state.status, state, raw))
            cursor = page.body.get("cursor")
            if not isinstance(cursor, str):
                raise ValidationFailed(
                    f"page {page.number}: no cursor",
                    system=SYSTEM,
                    operation="list_notices",
                    ref=page.response.response_sha256,
                )
            yield NoticePage(
                page.number, tuple(notices), cursor, page.response.response_sha256, page.next_cursor is None
            )


def _fields(state: FinancingState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in state.__dataclass_fields__}
