"""The quarantine: items a flow could not process, kept with the reason until replayed or discarded;
and the flows' cursors, so a flow's read position commits in the same transaction as its effects.

A flow that meets a bad record (a payable the ledger refuses, a statement line that does not map, a
financing the bank rejects as malformed) puts it here with its raw bytes and the reason, and lets the
good rest flow. An operator lists and inspects items (``cvhub quarantine list|show``) and, once the
cause is fixed, replays them (``cvhub quarantine replay``): the item runs again through its flow's
replay handler, which applies it with the same idempotency keys as the first attempt, so a replay
never has a second effect.

Items are idempotent by (flow, item_ref, source_sha256): putting the same failed item again counts
an occurrence instead of adding a row. Status moves open -> replayed | discarded; a replayed or
discarded item that fails again is reopened. The tables are created by migration ``0003_quarantine``.

Cursors (``get_cursor``/``set_cursor``): a flow that reads a source incrementally (SRM payables
since a cursor, bank notices after a sequence) stores where it got to in ``flow_cursors`` inside the
transaction that applies what it read, so a crash never skips or doubles anything.

This module stores and transitions items only: it never imports connectors, mappings or Airflow,
and it does not know how to replay anything — the caller hands in the handler.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class QuarantineStatus(StrEnum):
    OPEN = "open"
    REPLAYED = "replayed"
    DISCARDED = "discarded"


class QuarantineError(Exception):
    """An operator asked for something the quarantine cannot do (unknown id, discarded item...)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


class ReplayFailed(QuarantineError):
    """The replay handler raised: the item stays open with the new reason."""


class QuarantineBase(DeclarativeBase):
    """Declarative base of the quarantine table (schema owned by migration 0003_quarantine)."""


class QuarantineItem(QuarantineBase):
    """One failed item.

    flow: the flow that failed on it (e.g. ``srm_payables``); names the replay handler.
    item_ref: the item's natural id in its source (payable id, piece id, file name + line).
    source_sha256: SHA-256 of the source the item came from (the archived file or message), or of the
        item's raw bytes when it has no containing source.
    source_name / line / record: where in the source (file name, line number, record text or path).
    reason_code / message: the specific error (code from the failing layer, human message).
    raw: the item's raw bytes, exactly as received (secrets are never in them: sources are redacted
        before archiving).
    context: JSON object with what the replay handler needs besides ``raw`` (bank name, business
        date, ...), never secrets.
    """

    __tablename__ = "quarantine_items"
    __table_args__ = (
        UniqueConstraint("flow", "item_ref", "source_sha256", name="uq_quarantine_item"),
        CheckConstraint("status in ('open', 'replayed', 'discarded')", name="ck_quarantine_status"),
        Index("ix_quarantine_status_flow", "status", "flow"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flow: Mapped[str] = mapped_column(String(60))
    item_ref: Mapped[str] = mapped_column(String(200))
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_name: Mapped[str | None] = mapped_column(Text)
    line: Mapped[int | None] = mapped_column(Integer)
    record: Mapped[str | None] = mapped_column(Text)
    reason_code: Mapped[str] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    context: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(10), default=QuarantineStatus.OPEN.value)
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(Text)

    @property
    def context_dict(self) -> dict[str, Any]:
        value = json.loads(self.context or "{}")
        if not isinstance(value, dict):
            raise QuarantineError("bad_context", f"item {self.id}: context is not a JSON object")
        return value

    def as_dict(self, *, with_raw: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "flow": self.flow, "item_ref": self.item_ref,
            "source_sha256": self.source_sha256, "source_name": self.source_name, "line": self.line,
            "record": self.record, "reason_code": self.reason_code, "message": self.message,
            "status": self.status, "occurrences": self.occurrences,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "last_seen_at": self.last_seen_at.isoformat() if self.last_seen_at else None,
            "replayed_at": self.replayed_at.isoformat() if self.replayed_at else None,
            "resolution": self.resolution, "context": self.context_dict,
            "raw_size": len(self.raw) if self.raw is not None else None,
        }
        if with_raw and self.raw is not None:
            out["raw"] = self.raw.decode("utf-8", errors="backslashreplace")
        return out


class FlowCursor(QuarantineBase):
    """How far ``flow`` has read source ``name`` (an opaque cursor, sequence or date as text)."""

    __tablename__ = "flow_cursors"

    flow: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def get_cursor(session: Session, flow: str, name: str) -> str | None:
    row = session.get(FlowCursor, (flow, name))
    return row.value if row is not None else None


def set_cursor(session: Session, flow: str, name: str, value: str, *, at: datetime,
               expect: str | None = None, check: bool = False) -> None:
    """Store the cursor in the caller's transaction. With ``check`` the stored value must still be
    ``expect`` (compare-and-set), else ``QuarantineError('cursor_moved')``: another run got there."""
    _require_aware(at)
    row = session.get(FlowCursor, (flow, name), with_for_update=True)
    current = row.value if row is not None else None
    if check and current != expect:
        raise QuarantineError("cursor_moved", f"{flow}/{name}: cursor is {current!r}, expected {expect!r}")
    if row is None:
        session.add(FlowCursor(flow=flow, name=name, value=value, updated_at=at))
    else:
        row.value = value
        row.updated_at = at
    session.flush()


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")


def put(
    session: Session,
    *,
    flow: str,
    item_ref: str,
    source_sha256: str,
    reason_code: str,
    message: str,
    at: datetime,
    raw: bytes | None = None,
    source_name: str | None = None,
    line: int | None = None,
    record: str | None = None,
    context: dict[str, Any] | None = None,
) -> QuarantineItem:
    """Quarantine an item, or count another occurrence of the same one; returns the row.

    Runs in the caller's transaction (the caller commits). A replayed/discarded item that fails
    again is reopened with the new reason.
    """
    _require_aware(at)
    if not flow or not item_ref or len(source_sha256) != 64:
        raise QuarantineError("bad_item", f"flow, item_ref and a 64-hex source_sha256 are required "
                                          f"(got flow={flow!r}, item_ref={item_ref!r})")
    ctx = json.dumps(context or {}, sort_keys=True, ensure_ascii=False)
    existing = session.scalars(
        select(QuarantineItem).where(QuarantineItem.flow == flow, QuarantineItem.item_ref == item_ref,
                                     QuarantineItem.source_sha256 == source_sha256)
        .with_for_update()
    ).one_or_none()
    if existing is not None:
        existing.occurrences += 1
        existing.last_seen_at = at
        existing.reason_code = reason_code
        existing.message = message
        if existing.status != QuarantineStatus.OPEN:
            existing.status = QuarantineStatus.OPEN.value
            existing.resolution = None
        session.flush()
        return existing
    item = QuarantineItem(
        flow=flow, item_ref=item_ref, source_sha256=source_sha256, source_name=source_name,
        line=line, record=record, reason_code=reason_code, message=message, raw=raw, context=ctx,
        status=QuarantineStatus.OPEN.value, occurrences=1, created_at=at, last_seen_at=at,
    )
    session.add(item)
    session.flush()
    return item


def get(session: Session, item_id: int) -> QuarantineItem:
    item = session.get(QuarantineItem, item_id)
    if item is None:
        raise QuarantineError("not_found", f"no quarantine item {item_id}")
    return item


def list_items(
    session: Session,
    *,
    status: str | None = None,
    flow: str | None = None,
    limit: int = 100,
) -> Sequence[QuarantineItem]:
    """Items newest first, optionally filtered by status and flow."""
    stmt = select(QuarantineItem)
    if status is not None:
        stmt = stmt.where(QuarantineItem.status == QuarantineStatus(status).value)
    if flow is not None:
        stmt = stmt.where(QuarantineItem.flow == flow)
    return session.scalars(stmt.order_by(QuarantineItem.id.desc()).limit(limit)).all()


def count_open(session: Session, *, flow: str | None = None) -> int:
    return len(list_items(session, status=QuarantineStatus.OPEN.value, flow=flow, limit=1_000_000))


def discard(session: Session, item_id: int, *, reason: str, at: datetime) -> QuarantineItem:
    """Mark an open item discarded (an operator decided it must not be processed)."""
    _require_aware(at)
    item = get(session, item_id)
    if item.status == QuarantineStatus.REPLAYED:
        raise QuarantineError("already_replayed", f"item {item_id} was replayed; it cannot be discarded")
    item.status = QuarantineStatus.DISCARDED.value
    item.resolution = f"discarded: {reason}"
    item.replayed_at = at
    session.flush()
    return item


def resolve(session: Session, *, flow: str, item_ref: str, resolution: str, at: datetime) -> int:
    """Mark every open item of (flow, item_ref) replayed because the flow has now processed it.

    Flows call this after applying an item successfully, so a fault that cleared by itself does not
    leave a stale open item behind. Returns the number of items resolved.
    """
    _require_aware(at)
    items = session.scalars(
        select(QuarantineItem).where(QuarantineItem.flow == flow, QuarantineItem.item_ref == item_ref,
                                     QuarantineItem.status == QuarantineStatus.OPEN.value)
    ).all()
    for item in items:
        item.status = QuarantineStatus.REPLAYED.value
        item.replayed_at = at
        item.resolution = resolution
    session.flush()
    return len(items)


ReplayHandler = Callable[[QuarantineItem], str]
"""Re-applies one item through its flow with the original idempotency keys; returns a one-line
resolution (what it did). Raises when the item still fails. Opens its own transactions."""

SessionScope = Callable[[], AbstractContextManager[Session]]
"""Opens a session in one transaction, committed when the block ends (rolled back if it raises)."""


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    item_id: int
    result: str          # "replayed" | "already_replayed"
    resolution: str


def replay(scope: SessionScope, item_id: int, handler: ReplayHandler, *, at: datetime) -> ReplayOutcome:
    """Replay one item with ``handler``; mark it replayed. Replaying a replayed item does nothing.

    Three short transactions: read the item, run the handler outside any quarantine transaction (it
    writes the ledger in its own; on SQLite a second open writer would wait on the first), then
    mark the item replayed. On failure the item stays open with the new reason (occurrences + 1)
    and ``ReplayFailed`` is raised.
    """
    _require_aware(at)
    with scope() as s:
        item = get(s, item_id)
        if item.status == QuarantineStatus.REPLAYED:
            return ReplayOutcome(item.id, "already_replayed", item.resolution or "")
        if item.status == QuarantineStatus.DISCARDED:
            raise QuarantineError("discarded", f"item {item_id} was discarded; it is not replayed")
        s.expunge(item)
    try:
        resolution = handler(item)
    except Exception as e:
        with scope() as s:
            row = get(s, item_id)
            row.occurrences += 1
            row.last_seen_at = at
            row.reason_code = str(getattr(e, "code", None) or type(e).__name__)[:60]
            row.message = str(e)
        raise ReplayFailed("replay_failed", f"item {item_id} ({item.flow} {item.item_ref}): {e}") from e
    with scope() as s:
        row = get(s, item_id)
        row.status = QuarantineStatus.REPLAYED.value
        row.replayed_at = at
        row.resolution = resolution
    return ReplayOutcome(item_id, "replayed", resolution)
