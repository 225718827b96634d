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
    transactions: tuple[TransactionDetail, ...] = ()  # batch bookings: one per payment (camt TxDtls)

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
    page: int | None = None                      # camt StmtPgntn/PgNb, MT940 :28C: /page


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


# --- additions by the mappings part (additive; the types above keep their names and fields) ----


@dataclass(frozen=True, slots=True)
class TransactionDetail:
    """One transaction inside a batch-booked statement entry (camt ``NtryDtls/TxDtls``).

    A single-transaction entry copies its references onto the :class:`StatementEntry` itself; a
    batch entry (one booking for many payments) lists each payment here so reconciliation can
    match every EndToEndId. ``amount_minor`` is None when the bank does not itemise amounts.
    """

    amount_minor: int | None
    currency: str | None
    credit_debit: CreditDebit | None
    end_to_end_id: str | None = None
    instruction_id: str | None = None
    payment_info_id: str | None = None
    account_servicer_ref: str | None = None
    remittance_info: str | None = None
    return_reason: str | None = None
    counterparty: Party = field(default_factory=Party)


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A record of a batch file that could not be mapped: reported as data, never dropped.

    The rest of the batch still maps; the ledger's quarantine stores these with the raw bytes so an
    operator can fix and replay them. ``line`` is the 1-based physical line (CSV) or record number.
    """

    source: str                                  # file name / archive ref the caller passed in
    line: int | None
    reason: str                                  # machine-readable code, e.g. "over_precise"
    message: str                                 # human-readable, names the field
    raw: bytes
    field: str | None = None


@dataclass(frozen=True, slots=True)
class FinancingDecision:
    """A bank's (funder's) answer to a financing request for one voucher piece.

    ``decision``: APPROVED (offer made, not yet paid), DISBURSED (money paid to the holder: the
    funder now holds the piece), REJECTED (``reason`` says why). Interest is the discount the bank
    keeps: amount x rate x days / basis, in minor units as the bank computed it.
    """

    request_id: str                              # cvhub's serial number for the request
    bank_ref: str | None
    decision: Literal["APPROVED", "DISBURSED", "REJECTED"]
    piece_id: str | None
    amount_minor: int | None
    currency: str | None
    interest_minor: int | None = None
    net_amount_minor: int | None = None
    annual_rate: str | None = None               # decimal text, e.g. "0.0345"; never a float
    day_count: str | None = None                 # "ACT/360", "ACT/365"
    with_recourse: bool | None = None
    value_date: date | None = None
    decided_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RegistryConflict:
    """A registration at the registry that overlaps the receivable cvhub wants to register."""

    registration_no: str
    registrant: str | None
    registered_at: datetime | None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class RegistryResponse:
    """The registry's answer to register / query / amend / cancel.

    ``status``: REGISTERED, AMENDED, CANCELLED, FOUND (query with conflicts listed), NOT_FOUND,
    PENDING (filed, waiting for the registry or an operator), REJECTED (``reason``).
    """

    request_id: str
    operation: Literal["register", "query", "amend", "cancel"]
    status: str
    registration_no: str | None = None
    registered_at: datetime | None = None
    expires_on: date | None = None
    conflicts: tuple[RegistryConflict, ...] = ()
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RegistrationRequest:
    """What cvhub files at the registry for one financing (a transfer/pledge of receivables).

    Rendered into a registration packet (JSON or XML) by ``mappings.registry``.
    """

    request_id: str
    registration_type: Literal["transfer", "pledge"]
    transferor: Party                            # the holder assigning the receivable (uscc required)
    transferee: Party                            # the funder
    obligor: Party
    voucher_id: str
    piece_id: str
    amount_minor: int
    currency: str
    maturity_date: date
    period_months: int                           # registration period the registrant pays for
    description: str | None = None
    amends_registration_no: str | None = None


@dataclass(frozen=True, slots=True)
class GlLine:
    """One line of a GL journal entry: either a debit or a credit (the other is 0)."""

    account_code: str                            # the ERP's chart-of-accounts code
    debit_minor: int
    credit_minor: int
    currency: str
    party_uscc: str | None = None
    voucher_id: str | None = None
    piece_id: str | None = None
    memo: str | None = None


@dataclass(frozen=True, slots=True)
class GlPosting:
    """One balanced GL journal entry for an issuance, financing or clearing event of the ledger."""

    posting_id: str                              # ledger journal entry id (idempotency key in the ERP)
    kind: Literal["issuance", "financing", "clearing", "other"]
    posting_date: date
    description: str
    lines: tuple[GlLine, ...]


@dataclass(frozen=True, slots=True)
class GlJournal:
    """A batch of GL postings for one company (ledger entity) and one day, sent to the ERP as a file."""

    journal_id: str
    company_code: str
    journal_date: date
    postings: tuple[GlPosting, ...]
