"""Quarantine of failed items (flows put what they could not process here, with the reason), and
the flows' cursors (how far a flow has read a source, committed with what it wrote).

Revision ID: 0003_quarantine
Revises: 0002_recon
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_quarantine"
down_revision = "0002_recon"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantine_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("flow", sa.String(60), nullable=False),
        sa.Column("item_ref", sa.String(200), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("source_name", sa.Text, nullable=True),
        sa.Column("line", sa.Integer, nullable=True),
        sa.Column("record", sa.Text, nullable=True),
        sa.Column("reason_code", sa.String(60), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=True),
        sa.Column("context", sa.Text, nullable=False, server_default="{}"),
        sa.Column("status", sa.String(10), nullable=False, server_default="open"),
        sa.Column("occurrences", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.UniqueConstraint("flow", "item_ref", "source_sha256", name="uq_quarantine_item"),
        sa.CheckConstraint("status in ('open', 'replayed', 'discarded')", name="ck_quarantine_status"),
    )
    op.create_index("ix_quarantine_status_flow", "quarantine_items", ["status", "flow"])
    op.create_table(
        "flow_cursors",
        sa.Column("flow", sa.String(60), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("flow_cursors")
    op.drop_index("ix_quarantine_status_flow", table_name="quarantine_items")
    op.drop_table("quarantine_items")
