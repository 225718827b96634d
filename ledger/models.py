"""The ledger's tables as SQLAlchemy 2 typed models.

The schema is created only by the Alembic migrations in ``ledger/migrations`` (revision
``0001_ledger``); these classes describe it for queries and must stay in step with that migration.
State tables (parties ... instructions) are a projection of the journal kept in the same
transaction; the journal and its postings are append-only and never updated or deleted.
Nothing here holds business rules: those live in ``ledger.commands``.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

GENESIS_HASH = "0" * 64


class Base(DeclarativeBase):
    """Declarative base of the ledger tables (other parts add their own bases and migrations)."""


class ChainHead(Base):
    """The single row holding the last journal seq and hash: the lock every writer takes first."""

    __tablename__ = "ledger_chain_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class JournalEntry(Base):
    """One accepted command: its canonical body, result data and place in the hash chain."""

    __tablename__ = "ledger_journal"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    cmd: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # canonical JSON of the command without "key"
    business_date: Mapped[date] = mapped_column(Date)
    result_data: Mapped[str] = mapped_column(Text)  # canonical JSON of CommandResult.data
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Posting(Base):
    """One leg of an entry's double-entry postings (amount > 0 debit, < 0 credit)."""

    __tablename__ = "ledger_postings"
    entry_seq: Mapped[int] = mapped_column(ForeignKey("ledger_journal.seq"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(120), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)


class PartyRow(Base):
    __tablename__ = "ledger_parties"
    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    roles: Mapped[str] = mapped_column(String(60))  # comma-separated, sorted: funder,obligor,supplier


class AccountRow(Base):
    __tablename__ = "ledger_accounts"
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    party_uscc: Mapped[str] = mapped_column(ForeignKey("ledger_parties.uscc"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # "bank" | "ecny"
    account_no: Mapped[str] = mapped_column(String(40))  # bank account number or e-CNY wallet id
    cnaps: Mapped[str | None] = mapped_column(String(12))
    currency: Mapped[str] = mapped_column(String(3))


class QuotaRow(Base):
    __tablename__ = "ledger_quotas"
    obligor_uscc: Mapped[str] = mapped_column(ForeignKey("ledger_parties.uscc"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    limit_minor: Mapped[int] = mapped_column(BigInteger)
    reserved_minor: Mapped[int] = mapped_column(BigInteger)


class PayableRow(Base):
    __tablename__ = "ledger_payables"
    payable_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    obligor_uscc: Mapped[str] = mapped_column(ForeignKey("ledger_parties.uscc"))
    supplier_uscc: Mapped[str] = mapped_column(ForeignKey("ledger_parties.uscc"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    backed_minor: Mapped[int] = mapped_column(BigInteger)
    due_date: Mapped[date | None] = mapped_column(Date)
    reference: Mapped[str | None] = mapped_column(Text)  # invoice / contract / receipt numbers


class VoucherRow(Base):
    __tablename__ = "ledger_vouchers"
    voucher_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    obligor_uscc: Mapped[str] = mapped_column(ForeignKey("ledger_parties.uscc"), index=True)
    supplier_uscc: Mapped[str] = mapped_column(ForeignKey("ledger_parties.uscc"))
    face_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    issue_date: Mapped[date] = mapped_column(Date)
    maturity_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)  # maturity moved by the business-day rule
    state: Mapped[str] = mapped_column(
        String(12)
    )  # issued accepted rejected revoked clearing settled overdue
    settled_minor: Mapped[int] = mapped_column(BigInteger)
    next_piece: Mapped[int] = mapped_column(Integer)


class BackingRow(Base):
    __tablename__ = "ledger_backings"
    voucher_no: Mapped[str] = mapped_column(ForeignKey("ledger_vouchers.voucher_no"), primary_key=True)
    payable_id: Mapped[str] = mapped_column(ForeignKey("ledger_payables.payable_id"), primary_key=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)


class PieceRow(Base):
    __tablename__ = "ledger_pieces"
    piece_no: Mapped[str] = mapped_column(String(60), primary_key=True)
    voucher_no: Mapped[str] = mapped_column(ForeignKey("ledger_vouchers.voucher_no"), index=True)
    parent_no: Mapped[str | None] = mapped_column(String(60))
    holder_uscc: Mapped[str] = mapped_column(ForeignKey("ledger_parties.uscc"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(10))  # offered live locked consumed clearing settled void


class TransferRow(Base):
    __tablename__ = "ledger_transfers"
    transfer_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    piece_no: Mapped[str] = mapped_column(ForeignKey("ledger_pieces.piece_no"), index=True)
    from_uscc: Mapped[str] = mapped_column(String(18))
    to_uscc: Mapped[str] = mapped_column(String(18))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(10))  # pending accepted voided expired
    created_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)


class FinancingRow(Base):
    __tablename__ = "ledger_financings"
    __table_args__ = (
        # A piece is financed at most once: one financing per piece that was not rejected.
        Index(
            "ux_ledger_financings_piece_live",
            "piece_no",
            unique=True,
            sqlite_where=text("state <> 'rejected'"),
            postgresql_where=text("state <> 'rejected'"),
        ),
    )
    financing_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    piece_no: Mapped[str] = mapped_column(ForeignKey("ledger_pieces.piece_no"), index=True)
    seller_uscc: Mapped[str] = mapped_column(String(18))
    funder_uscc: Mapped[str] = mapped_column(String(18))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    rate: Mapped[str] = mapped_column(String(20))
    day_count: Mapped[str] = mapped_column(String(8))
    days: Mapped[int] = mapped_column(Integer)
    interest_minor: Mapped[int] = mapped_column(BigInteger)
    recourse: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(12))  # pending disbursed rejected repurchased
    registration_no: Mapped[str | None] = mapped_column(String(100))
    registration_state: Mapped[str] = mapped_column(String(10))  # none registered cancelled
    value_date: Mapped[date] = mapped_column(Date)


class InstructionRow(Base):
    __tablename__ = "ledger_instructions"
    instruction_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    end_to_end_id: Mapped[str] = mapped_column(String(35), unique=True)
    voucher_no: Mapped[str] = mapped_column(ForeignKey("ledger_vouchers.voucher_no"), index=True)
    piece_no: Mapped[str] = mapped_column(ForeignKey("ledger_pieces.piece_no"))
    obligor_uscc: Mapped[str] = mapped_column(String(18))
    payee_uscc: Mapped[str] = mapped_column(String(18))
    payee_account: Mapped[str] = mapped_column(String(40))
    payee_agent: Mapped[str | None] = mapped_column(String(12))
    payer_account: Mapped[str] = mapped_column(String(40))
    payer_agent: Mapped[str | None] = mapped_column(String(12))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(10))  # open sent settled returned superseded
    message_id: Mapped[str | None] = mapped_column(String(35))
    statement_ref: Mapped[str | None] = mapped_column(String(200))
    return_reason: Mapped[str | None] = mapped_column(Text)


# Tables in foreign-key order (inserts go in this order, verify reads them by name).
STATE_TABLES = [
    PartyRow,
    AccountRow,
    QuotaRow,
    PayableRow,
    VoucherRow,
    BackingRow,
    PieceRow,
    TransferRow,
    FinancingRow,
    InstructionRow,
]
