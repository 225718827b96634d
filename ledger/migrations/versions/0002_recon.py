"""Reconciliation tables: statements, lines, expected items, matches, exceptions.

Revision ID: 0002_recon
Revises: 0001_ledger
Create Date: 2026-11-28

Kept in step with ``ledger/recon/models.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_recon"
down_revision: str | None = "0001_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recon_statements",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("statement_key", sa.String(220), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("statement_id", sa.String(140), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("source_format", sa.String(40), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("matched_lines", sa.Integer(), nullable=False),
        sa.Column("exception_count", sa.Integer(), nullable=False),
        sa.UniqueConstraint("statement_key", name="uq_recon_statements_key"),
    )
    op.create_index("ix_recon_statements_account", "recon_statements", ["account"])
    op.create_index("ix_recon_statements_business_date", "recon_statements", ["business_date"])
    op.create_table(
        "recon_lines",
        sa.Column("statement_pk", sa.Integer(), primary_key=True),
        sa.Column("line_no", sa.Integer(), primary_key=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("credit_debit", sa.String(4), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.Column("end_to_end_id", sa.String(140), nullable=True),
        sa.Column("bank_ref", sa.String(140), nullable=True),
        sa.Column("remittance_info", sa.Text(), nullable=True),
        sa.Column("counterparty", sa.Text(), nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "recon_expected",
        sa.Column("item_id", sa.String(100), primary_key=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("end_to_end_id", sa.String(140), nullable=True),
        sa.Column("serial_no", sa.String(140), nullable=True),
        sa.Column("voucher_no", sa.String(100), nullable=True),
        sa.Column("piece_no", sa.String(100), nullable=True),
        sa.Column("obligor_uscc", sa.String(18), nullable=True),
        sa.Column("counterparty", sa.Text(), nullable=True),
        sa.Column("window_before_days", sa.Integer(), nullable=True),
        sa.Column("window_after_days", sa.Integer(), nullable=True),
    )
    op.create_index("ix_recon_expected_account", "recon_expected", ["account"])
    op.create_table(
        "recon_matches",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("statement_pk", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(100), nullable=False),
        sa.Column("item_kind", sa.String(12), nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("group_no", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("credit_debit", sa.String(4), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.Column("bank_ref", sa.String(140), nullable=True),
        sa.Column("counterparty", sa.Text(), nullable=True),
        sa.UniqueConstraint("item_id", name="uq_recon_match_item"),  # an item is matched at most once
    )
    op.create_index("ix_recon_matches_statement_pk", "recon_matches", ["statement_pk"])
    op.create_table(
        "recon_exceptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("exc_key", sa.String(300), nullable=False),
        sa.Column("code", sa.String(24), nullable=False),
        sa.Column("statement_pk", sa.Integer(), nullable=True),
        sa.Column("line_no", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.String(100), nullable=True),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("obligor_uscc", sa.String(18), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("resolved_on", sa.Date(), nullable=True),
        sa.UniqueConstraint("exc_key", name="uq_recon_exceptions_key"),
    )
    op.create_index("ix_recon_exceptions_business_date", "recon_exceptions", ["business_date"])


def downgrade() -> None:
    op.drop_table("recon_exceptions")
    op.drop_table("recon_matches")
    op.drop_table("recon_expected")
    op.drop_table("recon_lines")
    op.drop_table("recon_statements")
