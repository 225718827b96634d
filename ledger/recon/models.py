"""Reconciliation tables as SQLAlchemy 2 typed models (statements, lines, expected items, matches,
exceptions).

Created only by the Alembic revision ``0002_recon`` in ``ledger/migrations/versions``; these
classes describe that schema for queries and must stay in step with it. Natural keys make every
write idempotent: a statement by (account, statement id), a line by (statement, line number), a
match by (statement, line, item) with an item matched at most once, an exception by its key.
No business rules here (those are in ``engine.py`` and ``service.py``).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class ReconBase(DeclarativeBase):
    """Declarative base of the recon tables (separate metadata; the schema comes from Alembic)."""


class StatementRow(ReconBase):
    __tablename__ = "recon_statements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    statement_key: Mapped[str] = mapped_column(String(220), unique=True)   # account|statement_id
    account: Mapped[str] = mapped_column(String(64), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    statement_id: Mapped[str] = mapped_column(String(140))
    sequence: Mapped[int | None] = mapped_column(Integer)
    source_format: Mapped[str] = mapped_column(String(40))
    content_sha256: Mapped[str] = mapped_column(String(64))
    business_date: Mapped[date] = mapped_column(Date, index=True)
    line_count: Mapped[int] = mapped_column(Integer)
    matched_lines: Mapped[int] = mapped_column(Integer)
    exception_count: Mapped[int] = mapped_column(Integer)


class LineRow(ReconBase):
    """Statement lines that matched nothing (each has an exception). A matched line's facts live on
    its match row: a million-line statement then costs one row per line, not two."""

    __tablename__ = "recon_lines"
    __table_args__ = ({"sqlite_with_rowid": False},)
    statement_pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)        # 1-based position
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    credit_debit: Mapped[str] = mapped_column(String(4))
    value_date: Mapped[date | None] = mapped_column(Date)                 # value date, else booking date
    end_to_end_id: Mapped[str | None] = mapped_column(String(140))
    bank_ref: Mapped[str | None] = mapped_column(String(140))             # AcctSvcrRef / entry ref
    remittance_info: Mapped[str | None] = mapped_column(Text)
    counterparty: Mapped[str | None] = mapped_column(Text)


class ExpectedRow(ReconBase):
    """Expected items registered by flows other than clearing (disbursements, repayments)."""

    __tablename__ = "recon_expected"
    item_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    account: Mapped[str] = mapped_column(String(64), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    direction: Mapped[str] = mapped_column(String(4))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    due_date: Mapped[date] = mapped_column(Date)
    end_to_end_id: Mapped[str | None] = mapped_column(String(140))
    serial_no: Mapped[str | None] = mapped_column(String(140))
    voucher_no: Mapped[str | None] = mapped_column(String(100))
    piece_no: Mapped[str | None] = mapped_column(String(100))
    obligor_uscc: Mapped[str | None] = mapped_column(String(18))
    counterparty: Mapped[str | None] = mapped_column(Text)
    window_before_days: Mapped[int | None] = mapped_column(Integer)
    window_after_days: Mapped[int | None] = mapped_column(Integer)


class MatchRow(ReconBase):
    """One line-to-item allocation with the line's own facts (direction, value date, bank reference,
    counterparty). The item's details are in ``recon_expected`` or the ledger's
    ``ledger_instructions`` (joined when reporting): narrow on purpose, a million per run."""

    __tablename__ = "recon_matches"
    __table_args__ = (UniqueConstraint("item_id", name="uq_recon_match_item"),)  # matched at most once
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    statement_pk: Mapped[int] = mapped_column(Integer, index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    item_id: Mapped[str] = mapped_column(String(100))
    item_kind: Mapped[str] = mapped_column(String(12))
    rule: Mapped[str] = mapped_column(String(40))
    group_no: Mapped[int] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(BigInteger)                 # allocated to the item
    credit_debit: Mapped[str] = mapped_column(String(4))                  # the line's direction
    value_date: Mapped[date | None] = mapped_column(Date)                 # the line's value/booking date
    bank_ref: Mapped[str | None] = mapped_column(String(140))
    counterparty: Mapped[str | None] = mapped_column(Text)


class ExceptionRow(ReconBase):
    __tablename__ = "recon_exceptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exc_key: Mapped[str] = mapped_column(String(300), unique=True)        # natural key (idempotency)
    code: Mapped[str] = mapped_column(String(24))
    statement_pk: Mapped[int | None] = mapped_column(Integer)
    line_no: Mapped[int | None] = mapped_column(Integer)
    item_id: Mapped[str | None] = mapped_column(String(100))
    account: Mapped[str] = mapped_column(String(64))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    business_date: Mapped[date] = mapped_column(Date, index=True)
    detail: Mapped[str] = mapped_column(Text)
    obligor_uscc: Mapped[str | None] = mapped_column(String(18))
    status: Mapped[str] = mapped_column(String(10))                       # open | resolved
    resolved_on: Mapped[date | None] = mapped_column(Date)
