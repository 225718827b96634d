"""The configured banks: one ``financing_<bank>`` and one ``statements_<bank>`` DAG per entry.

A bank is declared as data (a frozen ``BankConfig``): who it is as a funder, which connections
reach it, its financing style and its statement format. Adding a bank = one entry here, one
connector package, its connections (``docs/operations.md``). Parsed at DAG import time, so this
module is pure declarations: no I/O, no environment, no network.

``financing_desk(bank, archive)`` builds the bank's financing client through its hook and wraps it
in the one small interface the financing flow needs (submit by serial, query by serial), so the
flow does not care whether a bank speaks SOAP or REST.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal, Protocol

log = logging.getLogger("cvhub.flows.banks")


@dataclass(frozen=True, slots=True)
class BankConfig:
    """One bank.

    name: short id used in DAG ids, connection ids and archive entries (``bank_a``).
    funder_uscc / funder_name: the bank as a ledger party (role funder) and registry grantee.
    financing: "soap" (bank A style) or "rest" (bank B style, signed requests).
    financing_conn_id / sftp_conn_id: Airflow connections of its financing API and SFTP server.
    statement_format: what its statements are (``camt053``, ``mt940``, ``csv:<profile>``).
    statement_dir / statement_prefix / statement_suffix: where on its SFTP server statements
        appear, and how their names start and end.
    annual_rate: the financing rate the platform applies for (decimal text), day_count its basis.
    """

    name: str
    title: str
    funder_uscc: str
    funder_name: str
    financing: Literal["soap", "rest"]
    financing_conn_id: str
    sftp_conn_id: str
    statement_format: str
    statement_dir: str
    statement_prefix: str
    statement_suffix: str
    annual_rate: str = "0.0385"
    day_count: str = "ACT/360"


BANKS: tuple[BankConfig, ...] = (
    BankConfig(name="bank_a", title="Bank A (SOAP financing, camt.053 over SFTP)",
               funder_uscc="91110000300000010H", funder_name="示范银行股份有限公司",
               financing="soap", financing_conn_id="cvhub_bank_a", sftp_conn_id="cvhub_bank_a_sftp",
               statement_format="camt053", statement_dir="outbox/statements", statement_prefix="camt053_",
               statement_suffix=".xml"),
    BankConfig(name="bank_b", title="Bank B (REST financing, MT940 over SFTP)",
               funder_uscc="91310000300000029U", funder_name="样例商业银行股份有限公司",
               financing="rest", financing_conn_id="cvhub_bank_b", sftp_conn_id="cvhub_bank_b_sftp",
               statement_format="mt940", statement_dir="statements", statement_prefix="BANKB_",
               statement_suffix=".sta"),
)

BANKS_BY_NAME = {b.name: b for b in BANKS}


def bank(name: str) -> BankConfig:
    try:
        return BANKS_BY_NAME[name]
    except KeyError as e:
        raise KeyError(f"no bank {name!r} configured (known: {', '.join(BANKS_BY_NAME)})") from e


@dataclass(frozen=True, slots=True)
class Application:
    """What cvhub asks a bank to finance: one ledger financing of one piece."""

    serial: str
    financing_id: str
    voucher_no: str
    piece_no: str
    obligor_uscc: str
    seller_uscc: str
    seller_name: str
    seller_account: str
    seller_cnaps: str
    amount_minor: int
    currency: str
    maturity: date
    registration_no: str
    recourse: bool
    rate: str
    day_count: str


@dataclass(frozen=True, slots=True)
class Decision:
    """A bank's answer in the flow's terms: PENDING, APPROVED, REJECTED (reason) or DISBURSED."""

    status: Literal["PENDING", "APPROVED", "REJECTED", "DISBURSED"]
    reason: str | None = None
    bank_ref: str | None = None
    disbursed_minor: int | None = None


class FinancingDesk(Protocol):
    def submit(self, app: Application) -> Decision: ...
    def status(self, serial: str) -> Decision | None: ...   # None: the bank never received it
    def notices(self, since: str | None) -> tuple[dict[str, Decision], str | None]: ...
    def close(self) -> None: ...


class _SoapDesk:
    def __init__(self, client: Any) -> None:
        self.client = client

    def submit(self, app: Application) -> Decision:
        from connectors.bank_a.financing import FinancingRequest

        ack = self.client.submit_financing(FinancingRequest(
            serial=app.serial, voucher_id=app.voucher_no, piece_id=app.piece_no,
            obligor_uscc=app.obligor_uscc, seller_uscc=app.seller_uscc, seller_name=app.seller_name,
            seller_account=app.seller_account, amount_minor=app.amount_minor, currency=app.currency,
            annual_rate=Decimal(app.rate), maturity_date=app.maturity, registration_no=app.registration_no,
            recourse=app.recourse, day_count=app.day_count))
        return _normalise(str(ack.status), None, None, None)

    def status(self, serial: str) -> Decision | None:
        from connectors.errors import NotFound

        try:
            st = self.client.query_financing(serial)
        except NotFound:
            return None
        return _normalise(st.status, st.decision_reason, st.bank_reference, st.disbursed_amount_minor)

    def notices(self, since: str | None) -> tuple[dict[str, Decision], str | None]:
        """Disbursement notices after sequence ``since`` (decisions come from ``status``)."""
        out: dict[str, Decision] = {}
        last = int(since or 0)
        for n in self.client.disbursement_notices(after_sequence=last):
            out[n.serial] = Decision("DISBURSED", None, n.bank_reference, n.disbursed_amount_minor)
            last = max(last, n.sequence)
        return out, str(last)

    def close(self) -> None:
        self.client.close()


class _RestDesk:
    def __init__(self, client: Any) -> None:
        self.client = client

    def submit(self, app: Application) -> Decision:
        from connectors.bank_b.client import FinancingApplication

        st = self.client.submit_financing(FinancingApplication(
            serial_no=app.serial, voucher_id=app.voucher_no, piece_id=app.piece_no,
            applicant_uscc=app.seller_uscc, applicant_name=app.seller_name,
            applicant_account=app.seller_account, applicant_cnaps=app.seller_cnaps,
            amount_minor=app.amount_minor, currency=app.currency, maturity_date=app.maturity,
            registration_no=app.registration_no, recourse=app.recourse))
        return _normalise(st.status, st.reason_code, st.bank_ref, st.disbursed_amount_minor)

    def status(self, serial: str) -> Decision | None:
        from connectors.errors import NotFound

        try:
            st = self.client.query(serial)
        except NotFound:
            return None
        return _normalise(st.status, st.reason_code, st.bank_ref, st.disbursed_amount_minor)

    def notices(self, since: str | None) -> tuple[dict[str, Decision], str | None]:
        """Decision and disbursement notices after cursor ``since``; the latest per serial wins."""
        from connectors.errors import PaginationLimit

        out: dict[str, Decision] = {}
        cursor = since
        try:
            for page in self.client.iter_notices(since=since):
                for n in page.notices:
                    st = n.state
                    out[n.serial_no] = _normalise(st.status, st.reason_code, st.bank_ref,
                                                  st.disbursed_amount_minor)
                cursor = page.cursor
        except PaginationLimit as limit:
            # bounded run: what came is processed and its cursor saved; the next run resumes there
            log.warning("%s (%d notices kept)", limit, len(out))
        return out, cursor

    def close(self) -> None:
        self.client.close()


def _normalise(status: str, reason: str | None, ref: str | None, disbursed: int | None) -> Decision:
    s = status.upper()
    if s in ("RECEIVED", "PENDING", "SUBMITTED"):
        return Decision("PENDING", reason, ref, None)
    if s in ("APPROVED", "REJECTED", "DISBURSED"):
        return Decision(s, reason, ref, disbursed)  # type: ignore[arg-type]
    raise ValueError(f"unknown financing status {status!r}")


def financing_desk(cfg: BankConfig, archive: Any) -> FinancingDesk:
    """The bank's financing client (built from its connection by ``BankHook``) as a desk."""
    from plugins.cvhub_flows.hooks import BankHook

    client = BankHook(cfg).get_financing_client(archive)
    return _SoapDesk(client) if cfg.financing == "soap" else _RestDesk(client)
