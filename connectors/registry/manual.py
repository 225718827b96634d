"""Human-in-the-loop adapter of the registry interface: a persistent manual queue of packets.

The receivables registry (中登网) has no public API. This adapter files each register / amend /
cancel request as a *packet* into a table (SQLAlchemy Core; default a SQLite file
``<data_dir>/connectors.sqlite``, created idempotently) and answers ``PENDING_MANUAL``. An operator
files it on the registry's website, then completes it with
``cvhub registry confirm PACKET_ID REGISTRATION_NO`` (or ``reject``). Financing waits until
``status(packet_id)`` is no longer pending.

Idempotent by ``request_no``: filing the same request again returns the same packet; the same
request_no with different content is refused naming the first differing field. Packets are never
deleted or rewritten except for their completion columns. ``query_by_grantor`` can only answer
from what operators confirmed here (the registry itself cannot be queried without a person).
This module must never hold a secret: packets contain business data only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from canonical.clock import SYSTEM_CLOCK, Clock
from connectors.errors import FatalError, NotFound, ValidationFailed
from connectors.registry.model import Registration, RegistrationRequest, RegistryStatus
from ledger.money import to_decimal_text

SYSTEM = "registry"
REGISTRATION_NO = re.compile(r"^[0-9A-Za-z-]{8,40}$")

metadata = MetaData()
packets = Table(
    "registry_packets",
    metadata,
    Column("packet_id", String(40), primary_key=True),
    Column("request_no", String(64), nullable=False, unique=True),
    Column("operation", String(16), nullable=False),  # register | amend | cancel
    Column("status", String(16), nullable=False),  # PENDING | CONFIRMED | REJECTED
    Column("target_registration_no", String(40)),  # amend / cancel: which registration
    Column("grantor_uscc", String(18)),
    Column("voucher_id", String(64)),
    Column("payload", Text, nullable=False),  # canonical JSON, what the operator files
    Column("payload_sha256", String(64), nullable=False),
    Column("registration_no", String(40)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    Column("completed_by", String(64)),
    Column("note", Text),
    Index("ix_registry_packets_status", "status"),
    Index("ix_registry_packets_grantor", "grantor_uscc"),
)


class PacketConflict(FatalError):
    """The same request number was filed with different content, or confirmed twice differently."""


def default_db_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir) / 'connectors.sqlite'}"


def _packet_id(request_no: str) -> str:
    return "RP-" + hashlib.sha256(request_no.encode()).hexdigest()[:12].upper()


def _canonical(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _first_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return key
    return "?"


class ManualRegistry:
    """``Registry`` whose every change is a packet for an operator. ``status(ref)`` takes the packet id."""

    def __init__(
        self,
        db_url: str | None = None,
        *,
        data_dir: Path | None = None,
        engine: Engine | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.clock = clock  # packet filing and operator decisions are stamped with it
        self._owns_engine = engine is None
        if engine is None:
            if db_url is None:
                if data_dir is None:
                    from cvhub.settings import Settings

                    data_dir = Settings.from_env().data_dir
                Path(data_dir).mkdir(parents=True, exist_ok=True)
                db_url = default_db_url(data_dir)
            engine = create_engine(db_url)
        self.engine = engine
        metadata.create_all(engine, checkfirst=True)

    def close(self) -> None:
        """Release the database connections this registry opened (not a borrowed engine's)."""
        if self._owns_engine:
            self.engine.dispose()

    # --- filing -------------------------------------------------------------------------------
    def _file(
        self,
        *,
        request_no: str,
        operation: str,
        payload: dict[str, Any],
        grantor_uscc: str | None,
        voucher_id: str | None,
        target: str | None,
    ) -> Registration:
        text = _canonical(payload)
        row = {
            "packet_id": _packet_id(request_no),
            "request_no": request_no,
            "operation": operation,
            "status": "PENDING",
            "target_registration_no": target,
            "grantor_uscc": grantor_uscc,
            "voucher_id": voucher_id,
            "payload": text,
            "payload_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "created_at": self.clock(),
        }
        try:
            with self.engine.begin() as conn:
                found = conn.execute(
                    select(packets.c.packet_id).where(packets.c.request_no == request_no)
                ).first()
                if found is None:
                    conn.execute(insert(packets).values(**row))
        except SqlIntegrityError:
            pass  # a concurrent filer of the same request won: compare with theirs below
        with self.engine.connect() as conn:
            existing = (
                conn.execute(select(packets).where(packets.c.request_no == request_no)).mappings().one()
            )
        if existing["payload"] != text or existing["operation"] != operation:
            field = (
                _first_difference(json.loads(existing["payload"]), payload)
                if existing["operation"] == operation
                else "operation"
            )
            raise PacketConflict(
                f"request_no filed before with a different {field}",
                system=SYSTEM,
                operation=operation,
                ref=request_no,
            )
        return self._registration(dict(existing))

    def register(self, request: RegistrationRequest) -> Registration:
        payload = {
            "登记类型 kind": request.kind,
            "出让人 grantor": {"uscc": request.grantor_uscc, "name": request.grantor_name},
            "受让人 grantee": {"uscc": request.grantee_uscc, "name": request.grantee_name},
            "标的 property": {
                "voucher_id": request.voucher_id,
                "piece_id": request.piece_id,
                "description": request.description or f"电子债权凭证 {request.voucher_id} 项下应收账款",
                "amount": to_decimal_text(request.amount_minor, request.currency),
                "currency": request.currency,
            },
            "登记期限(月) term_months": request.term_months,
        }
        return self._file(
            request_no=request.request_no,
            operation="register",
            payload=payload,
            grantor_uscc=request.grantor_uscc,
            voucher_id=request.voucher_id,
            target=None,
        )

    def amend(self, registration_no: str, *, request_no: str, changes: Mapping[str, Any]) -> Registration:
        if not changes:
            raise ValidationFailed("no changes given", system=SYSTEM, operation="amend", ref=request_no)
        known = self._by_registration_no(registration_no)
        return self._file(
            request_no=request_no,
            operation="amend",
            payload={"登记证明编号 registration_no": registration_no, "变更 changes": dict(changes)},
            grantor_uscc=known.get("grantor_uscc") if known else None,
            voucher_id=known.get("voucher_id") if known else None,
            target=registration_no,
        )

    def cancel(self, registration_no: str, *, request_no: str, reason: str) -> Registration:
        known = self._by_registration_no(registration_no)
        return self._file(
            request_no=request_no,
            operation="cancel",
            payload={"登记证明编号 registration_no": registration_no, "注销原因 reason": reason},
            grantor_uscc=known.get("grantor_uscc") if known else None,
            voucher_id=known.get("voucher_id") if known else None,
            target=registration_no,
        )

    # --- reading ------------------------------------------------------------------------------
    def status(self, ref: str) -> Registration:
        """The packet's state: ``PENDING_MANUAL`` until an operator confirms or rejects it."""
        return self._registration(self.show(ref))

    def show(self, packet_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(packets).where(packets.c.packet_id == packet_id)).mappings().first()
        if row is None:
            raise NotFound(f"no packet {packet_id}", system=SYSTEM, operation="status", ref=packet_id)
        return dict(row)

    def list_packets(self, status: str | None = None) -> list[dict[str, Any]]:
        query = select(packets).order_by(packets.c.created_at, packets.c.packet_id)
        if status:
            query = query.where(packets.c.status == status.upper())
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def query_by_grantor(self, grantor_uscc: str) -> list[Registration]:
        """Registrations operators confirmed here for this grantor, with later amend/cancel applied."""
        with self.engine.connect() as conn:
            rows = [
                dict(r)
                for r in conn.execute(
                    select(packets)
                    .where(packets.c.status == "CONFIRMED")
                    .order_by(packets.c.completed_at, packets.c.packet_id)
                ).mappings()
            ]
        regs: dict[str, Registration] = {}
        for row in rows:
            if row["operation"] == "register" and row["grantor_uscc"] == grantor_uscc:
                regs[row["registration_no"]] = self._registration(row)
        for row in rows:
            target = row["target_registration_no"]
            if row["operation"] in ("amend", "cancel") and target in regs:
                old = regs[target]
                regs[target] = Registration(
                    status="AMENDED" if row["operation"] == "amend" else "CANCELLED",
                    request_no=old.request_no,
                    registration_no=target,
                    packet_id=old.packet_id,
                    grantor_uscc=old.grantor_uscc,
                    voucher_id=old.voucher_id,
                    registered_at=old.registered_at,
                )
        return list(regs.values())

    def _by_registration_no(self, registration_no: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(packets)
                    .where(packets.c.registration_no == registration_no)
                    .where(packets.c.operation == "register")
                )
                .mappings()
                .first()
            )
        return dict(row) if row else None

    # --- operator actions ---------------------------------------------------------------------
    def confirm(
        self, packet_id: str, registration_no: str, *, operator: str = "operator", note: str | None = None
    ) -> Registration:
        """Complete a packet with the registration number the registry issued (idempotent)."""
        registration_no = registration_no.strip()
        if not REGISTRATION_NO.match(registration_no):
            raise ValidationFailed(
                f"registration number {registration_no!r} is not 8-40 letters/digits",
                system=SYSTEM,
                operation="confirm",
                ref=packet_id,
            )
        return self._complete(
            packet_id, "CONFIRMED", registration_no=registration_no, operator=operator, note=note
        )

    def reject(self, packet_id: str, reason: str, *, operator: str = "operator") -> Registration:
        """Record that the registry refused the packet (financing must not proceed)."""
        return self._complete(packet_id, "REJECTED", registration_no=None, operator=operator, note=reason)

    def _complete(
        self, packet_id: str, status: str, *, registration_no: str | None, operator: str, note: str | None
    ) -> Registration:
        row = self.show(packet_id)
        if row["status"] != "PENDING":
            if row["status"] == status and row["registration_no"] == registration_no:
                return self._registration(row)
            raise PacketConflict(
                f"packet already {row['status']}"
                + (f" with {row['registration_no']}" if row["registration_no"] else ""),
                system=SYSTEM,
                operation=status.lower(),
                ref=packet_id,
            )
        if row["operation"] != "register" and status == "CONFIRMED":
            registration_no = registration_no or row["target_registration_no"]
        with self.engine.begin() as conn:
            done = conn.execute(
                update(packets)
                .where(packets.c.packet_id == packet_id)
                .where(packets.c.status == "PENDING")
                .values(
                    status=status,
                    registration_no=registration_no,
                    completed_at=self.clock(),
                    completed_by=operator,
                    note=note,
                )
            )
            if done.rowcount != 1:
                raise PacketConflict(
                    "packet completed concurrently", system=SYSTEM, operation=status.lower(), ref=packet_id
                )
        return self.status(packet_id)

    # --- mapping rows -------------------------------------------------------------------------
    def _registration(self, row: dict[str, Any]) -> Registration:
        state: RegistryStatus
        if row["status"] == "PENDING":
            state = "PENDING_MANUAL"
        elif row["status"] == "REJECTED":
            state = "REJECTED"
        else:
            state = {"register": "REGISTERED", "amend": "AMENDED", "cancel": "CANCELLED"}[row["operation"]]  # type: ignore[assignment]
        completed = row.get("completed_at")
        payload = json.loads(row["payload"])
        grantee = payload.get("受让人 grantee", {})
        return Registration(
            status=state,
            request_no=row["request_no"],
            packet_id=row["packet_id"],
            registration_no=row["registration_no"] or row.get("target_registration_no"),
            grantor_uscc=row["grantor_uscc"],
            grantee_uscc=grantee.get("uscc"),
            voucher_id=row["voucher_id"],
            registered_at=completed if state == "REGISTERED" else None,
            raw_sha256=row["payload_sha256"],
            extra={"operation": row["operation"]},
        )
