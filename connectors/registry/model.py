"""The registry interface and its value types, shared by the REST and manual adapters.

A registration request carries the caller's serial (``request_no``), which is the idempotency key
everywhere: the same request_no with the same content is the same registration, never a second
one. This module holds no I/O and must never learn a transport.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol, runtime_checkable

RegistryStatus = Literal["REGISTERED", "AMENDED", "CANCELLED", "PENDING_MANUAL", "REJECTED"]
LIVE_STATUSES = frozenset({"REGISTERED", "AMENDED"})


@dataclass(frozen=True, slots=True)
class RegistrationRequest:
    """An initial registration (初始登记) of an assignment or pledge of receivables.

    request_no: the caller's serial, unique per registration (the idempotency key).
    kind: ``TRANSFER`` (应收账款转让) or ``PLEDGE`` (应收账款质押).
    grantor: the assignor (出让人/出质人), the supplier holding the piece; grantee: the funder.
    voucher_id / piece_id: what is assigned; amount_minor + currency: its face amount.
    term_months: registration period (登记期限), 1..360.
    """

    request_no: str
    kind: Literal["TRANSFER", "PLEDGE"]
    grantor_uscc: str
    grantor_name: str
    grantee_uscc: str
    grantee_name: str
    voucher_id: str
    amount_minor: int
    currency: str
    term_months: int
    piece_id: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if not self.request_no or len(self.request_no) > 64:
            raise ValueError("request_no: 1..64 characters required")
        if self.kind not in ("TRANSFER", "PLEDGE"):
            raise ValueError(f"kind: TRANSFER or PLEDGE, not {self.kind!r}")
        if self.amount_minor <= 0:
            raise ValueError("amount_minor: must be positive")
        if not 1 <= self.term_months <= 360:
            raise ValueError("term_months: 1..360")
        for name in ("grantor_uscc", "grantee_uscc"):
            if len(getattr(self, name)) != 18:
                raise ValueError(f"{name}: an 18-character unified social credit code is required")


@dataclass(frozen=True, slots=True)
class Registration:
    """What the registry (or the manual queue) says about one registration.

    ``ref`` is what ``Registry.status`` takes: the packet id for the manual adapter, the request
    number for the REST adapter. ``conflicts`` lists live registrations by the same grantor over
    the same voucher held by someone else (found at filing time).
    """

    status: RegistryStatus
    request_no: str
    registration_no: str | None = None
    packet_id: str | None = None
    grantor_uscc: str | None = None
    grantee_uscc: str | None = None
    voucher_id: str | None = None
    registered_at: datetime | None = None
    expires_at: date | None = None
    conflicts: tuple[str, ...] = ()
    raw_sha256: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return self.packet_id or self.request_no

    @property
    def pending(self) -> bool:
        return self.status == "PENDING_MANUAL"

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


@runtime_checkable
class Registry(Protocol):
    """The registry as cvhub needs it. Every method is idempotent by ``request_no``."""

    def register(self, request: RegistrationRequest) -> Registration: ...

    def query_by_grantor(self, grantor_uscc: str) -> list[Registration]: ...

    def amend(self, registration_no: str, *, request_no: str, changes: Mapping[str, Any]) -> Registration: ...

    def cancel(self, registration_no: str, *, request_no: str, reason: str) -> Registration: ...

    def status(self, ref: str) -> Registration: ...


def conflicting(
    registrations: Iterable[Registration], voucher_id: str, *, own_registration_no: str | None = None
) -> list[Registration]:
    """Live registrations over ``voucher_id`` other than our own: financing must not proceed."""
    return [
        r
        for r in registrations
        if r.live and r.voucher_id == voucher_id and r.registration_no != own_registration_no
    ]
