"""Canonical value types exchanged between mappings, connectors, the ledger and reconciliation.

Small immutable records; amounts are integer minor units with their currency, dates are
``datetime.date``, times are timezone-aware. ``mappings/`` produces and consumes these and imports
nothing else from the ledger; the ledger and reconciliation consume them without knowing any
external format. Every field is documented in ``docs/mappings.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

CreditDebit = Literal["CRDT", "DBIT"]


@dataclass(frozen=True, slots=True)
class Party:
    """A counterparty as a bank or ERP file names it (not necessarily a registered ledger party)."""

    name: str | None = None
    account: str | None = None          # IBAN, domestic account number or e-CNY wallet id
    agent: str | None = None            # BIC or 12-digit CNAPS bank code
    uscc: str | None = None             # unified social credit code, when the source carries it


@dataclass(frozen=True, slots=True)
class StatementEntry:
    """One booked (or pending) line of a bank statement or debit/credit notification.

    amount_minor is always positive; credit_debit gives the direction from the account holder's
    side. ``line`` is where the entry starts in its source (line number, or record number) for
    error reports and traceability.
    """

    amount_minor: int
    currency: str
    credit_debit: CreditDebit
    booking_date: date | None
    value_date: date | None
    reversal: bool = False
    status: str = "BOOK"
    entry_ref: str | None = None                 # NtryRef / MT940 :61: reference for the account owner
    account_servicer_ref: str | None = None      # AcctSvcrRef / :61: bank reference
    end_to_end_id: str | None = None
    instruction_id: str | None = None
    mandate_or_serial: str | None = None
    remittance_info: str | None = None
    bank_tx_code: str | None = None              # ISO BkTxCd domain/family/subfamily or SWIFT code
    return_reason: str | None = None             # ISO return reason (R-transactions)
    counterparty: Party = field(default_factory=Party)
    line: int | None = None

    @property
    def signed_minor(self) -> int:
        return self.amount_minor if self.credit_debit == "CRDT" else -self.amount_minor


@dataclass(frozen=True, slots=True)
class Statement:
    """A bank statement (camt.053 / MT940 / CSV) or notification (camt.054) for one account.

    Balances are signed minor units (negative = debit balance). ``sequence`` is the electronic
    sequence number (camt ElctrncSeqNb, MT940 :28C:), used to detect gaps and repeats.
    """

    source_format: str                           # e.g. "camt.053.001.08", "mt940", "csv:<profile>"
    statement_id: str
    account: str
    currency: str
    sequence: int | None
    created_at: datetime | None
    from_date: date | None
    to_date: date | None
    opening_balance_minor: int | None
    closing_balance_minor: int | None
    entries: tuple[StatementEntry, ...]
    legal_sequence: int | None = None
    account_servicer: str | None = None          # BIC / CNAPS of the account's bank
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentInstruction:
    """One credit transfer to make (rendered as a pain.001 CdtTrfTxInf).

    instruction_id is the ledger's clearing instruction id; end_to_end_id travels through the
    banks and comes back on the statement, which is how reconciliation finds it.
    """

    instruction_id: str
    end_to_end_id: str
    amount_minor: int
    currency: str
    requested_execution_date: date
    debtor: Party
    creditor: Party
    remittance_info: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentStatus:
    """A status from a pain.002 report, at group, payment-information or transaction level."""

    level: Literal["group", "payment", "transaction"]
    original_message_id: str
    status: str                                  # ISO code: ACCP, ACSC, ACSP, ACTC, PDNG, RJCT, PART, ...
    original_payment_info_id: str | None = None
    original_instruction_id: str | None = None
    original_end_to_end_id: str | None = None
    reason_code: str | None = None
    reason_info: str | None = None
    amount_minor: int | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class Payable:
    """A confirmed account payable of an obligor to a supplier (SRM or ERP), which can back vouchers."""

    payable_id: str
    obligor_uscc: str
    supplier_uscc: str
    amount_minor: int
    currency: str
    due_date: date | None = None
    invoice_no: str | None = None
    contract_no: str | None = None
    receipt_no: str | None = None
    confirmed_at: datetime | None = None
    supplier_name: str | None = None
