"""Ledger tables: chain head, append-only journal and postings, and the state projection.

Revision ID: 0001_ledger
Revises:
Create Date: 2026-11-28

Later revisions (0002_recon, 0003_quarantine, ...) chain on this one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_ledger"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "ledger_journal",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("cmd", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("result_data", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "ledger_parties",
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("roles", sa.String(length=60), nullable=False),
        sa.PrimaryKeyConstraint("uscc"),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("party_uscc", sa.String(length=18), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("account_no", sa.String(length=40), nullable=False),
        sa.Column("cnaps", sa.String(length=12), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(
            ["party_uscc"],
            ["ledger_parties.uscc"],
        ),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_index("ix_ledger_accounts_party_uscc", "ledger_accounts", ["party_uscc"], unique=False)

    op.create_table(
        "ledger_payables",
        sa.Column("payable_id", sa.String(length=200), nullable=False),
        sa.Column("obligor_uscc", sa.String(length=18), nullable=False),
        sa.Column("supplier_uscc", sa.String(length=18), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("backed_minor", sa.BigInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["obligor_uscc"],
            ["ledger_parties.uscc"],
        ),
        sa.ForeignKeyConstraint(
            ["supplier_uscc"],
            ["ledger_parties.uscc"],
        ),
        sa.PrimaryKeyConstraint("payable_id"),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("entry_seq", sa.BigInteger(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=120), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_seq"],
            ["ledger_journal.seq"],
        ),
        sa.PrimaryKeyConstraint("entry_seq", "idx"),
    )
    op.create_index("ix_ledger_postings_account", "ledger_postings", ["account"], unique=False)

    op.create_table(
        "ledger_quotas",
        sa.Column("obligor_uscc", sa.String(length=18), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("limit_minor", sa.BigInteger(), nullable=False),
        sa.Column("reserved_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["obligor_uscc"],
            ["ledger_parties.uscc"],
        ),
        sa.PrimaryKeyConstraint("obligor_uscc"),
    )
    op.create_table(
        "ledger_vouchers",
        sa.Column("voucher_no", sa.String(length=40), nullable=False),
        sa.Column("obligor_uscc", sa.String(length=18), nullable=False),
        sa.Column("supplier_uscc", sa.String(length=18), nullable=False),
        sa.Column("face_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("maturity_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("settled_minor", sa.BigInteger(), nullable=False),
        sa.Column("next_piece", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["obligor_uscc"],
            ["ledger_parties.uscc"],
        ),
        sa.ForeignKeyConstraint(
            ["supplier_uscc"],
            ["ledger_parties.uscc"],
        ),
        sa.PrimaryKeyConstraint("voucher_no"),
    )
    op.create_index("ix_ledger_vouchers_obligor_uscc", "ledger_vouchers", ["obligor_uscc"], unique=False)

    op.create_table(
        "ledger_backings",
        sa.Column("voucher_no", sa.String(length=40), nullable=False),
        sa.Column("payable_id", sa.String(length=200), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["payable_id"],
            ["ledger_payables.payable_id"],
        ),
        sa.ForeignKeyConstraint(
            ["voucher_no"],
            ["ledger_vouchers.voucher_no"],
        ),
        sa.PrimaryKeyConstraint("voucher_no", "payable_id"),
    )
    op.create_table(
        "ledger_pieces",
        sa.Column("piece_no", sa.String(length=60), nullable=False),
        sa.Column("voucher_no", sa.String(length=40), nullable=False),
        sa.Column("parent_no", sa.String(length=60), nullable=True),
        sa.Column("holder_uscc", sa.String(length=18), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.ForeignKeyConstraint(
            ["holder_uscc"],
            ["ledger_parties.uscc"],
        ),
        sa.ForeignKeyConstraint(
            ["voucher_no"],
            ["ledger_vouchers.voucher_no"],
        ),
        sa.PrimaryKeyConstraint("piece_no"),
    )
    op.create_index("ix_ledger_pieces_holder_uscc", "ledger_pieces", ["holder_uscc"], unique=False)
    op.create_index("ix_ledger_pieces_voucher_no", "ledger_pieces", ["voucher_no"], unique=False)

    op.create_table(
        "ledger_financings",
        sa.Column("financing_id", sa.String(length=200), nullable=False),
        sa.Column("piece_no", sa.String(length=60), nullable=False),
        sa.Column("seller_uscc", sa.String(length=18), nullable=False),
        sa.Column("funder_uscc", sa.String(length=18), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("rate", sa.String(length=20), nullable=False),
        sa.Column("day_count", sa.String(length=8), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("interest_minor", sa.BigInteger(), nullable=False),
        sa.Column("recourse", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("registration_no", sa.String(length=100), nullable=True),
        sa.Column("registration_state", sa.String(length=10), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["piece_no"],
            ["ledger_pieces.piece_no"],
        ),
        sa.PrimaryKeyConstraint("financing_id"),
    )
    op.create_index("ix_ledger_financings_piece_no", "ledger_financings", ["piece_no"], unique=False)
    op.create_index(
        "ux_ledger_financings_piece_live",
        "ledger_financings",
        ["piece_no"],
        unique=True,
        sqlite_where=sa.text("state <> 'rejected'"),
        postgresql_where=sa.text("state <> 'rejected'"),
    )

    op.create_table(
        "ledger_instructions",
        sa.Column("instruction_id", sa.String(length=80), nullable=False),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=False),
        sa.Column("voucher_no", sa.String(length=40), nullable=False),
        sa.Column("piece_no", sa.String(length=60), nullable=False),
        sa.Column("obligor_uscc", sa.String(length=18), nullable=False),
        sa.Column("payee_uscc", sa.String(length=18), nullable=False),
        sa.Column("payee_account", sa.String(length=40), nullable=False),
        sa.Column("payee_agent", sa.String(length=12), nullable=True),
        sa.Column("payer_account", sa.String(length=40), nullable=False),
        sa.Column("payer_agent", sa.String(length=12), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("message_id", sa.String(length=35), nullable=True),
        sa.Column("statement_ref", sa.String(length=200), nullable=True),
        sa.Column("return_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["piece_no"],
            ["ledger_pieces.piece_no"],
        ),
        sa.ForeignKeyConstraint(
            ["voucher_no"],
            ["ledger_vouchers.voucher_no"],
        ),
        sa.PrimaryKeyConstraint("instruction_id"),
        sa.UniqueConstraint("end_to_end_id"),
    )
    op.create_index("ix_ledger_instructions_due_date", "ledger_instructions", ["due_date"], unique=False)
    op.create_index("ix_ledger_instructions_voucher_no", "ledger_instructions", ["voucher_no"], unique=False)

    op.create_table(
        "ledger_transfers",
        sa.Column("transfer_id", sa.String(length=200), nullable=False),
        sa.Column("piece_no", sa.String(length=60), nullable=False),
        sa.Column("from_uscc", sa.String(length=18), nullable=False),
        sa.Column("to_uscc", sa.String(length=18), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["piece_no"],
            ["ledger_pieces.piece_no"],
        ),
        sa.PrimaryKeyConstraint("transfer_id"),
    )
    op.create_index("ix_ledger_transfers_piece_no", "ledger_transfers", ["piece_no"], unique=False)
    # The chain starts at the genesis hash; every writer locks this row first.
    op.execute(
        sa.text("INSERT INTO ledger_chain_head (id, seq, hash) VALUES (1, 0, :h)").bindparams(h="0" * 64)
    )


def downgrade() -> None:
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_instructions")
    op.drop_table("ledger_financings")
    op.drop_table("ledger_pieces")
    op.drop_table("ledger_backings")
    op.drop_table("ledger_vouchers")
    op.drop_table("ledger_quotas")
    op.drop_table("ledger_postings")
    op.drop_table("ledger_payables")
    op.drop_table("ledger_accounts")
    op.drop_table("ledger_parties")
    op.drop_table("ledger_journal")
    op.drop_table("ledger_chain_head")
