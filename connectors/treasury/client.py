"""``TreasuryClient``: submit pain.001 batches by serial, query pain.002 status, resolve unknowns.

Must never resend a batch whose outcome is unknown without querying it first, and never put the
WS-Security password anywhere but the outgoing envelope (see ``connectors.soap``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.errors import (
    FatalError,
    NotFound,
    OutcomeUnknown,
    RetriableError,
    ServerError,
    SoapFault,
    ValidationFailed,
)
from connectors.soap import SoapServiceClient

log = logging.getLogger(__name__)

SYSTEM = "treasury"
WSDL = Path(__file__).resolve().with_name("treasury.wsdl")
BINDING = "{urn:cvhub:treasury:1}TreasuryBinding"
_PAIN001_NS = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:pain\.001\.001\.(\d\d)")


@dataclass(frozen=True, slots=True)
class BatchAck:
    """The treasury's receipt of a batch. ``duplicate``: it already had this serial (same document);
    ``resolved_by_query``: the receipt came from a status query after an unknown outcome."""

    serial: str
    status: str
    document_sha256: str
    received_at: datetime | None
    duplicate: bool
    resolved_by_query: bool = False


@dataclass(frozen=True, slots=True)
class BatchStatus:
    serial: str
    status: str                      # PDNG, ACSC, PART, RJCT (group status)
    document_sha256: str
    report: bytes                    # the pain.002, byte for byte


@dataclass(frozen=True, slots=True)
class PublishedReport:
    """A final status report the treasury published once a batch was executed."""

    sequence: int
    serial: str
    status: str
    report: bytes


def detect_pain001_format(data: bytes) -> str:
    """``pain.001.001.03`` or ``pain.001.001.09`` from the document's namespace."""
    m = _PAIN001_NS.search(data[:4096])
    if m is None or m.group(1) not in (b"03", b"09"):
        raise ValidationFailed("not a pain.001.001.03/09 document", system=SYSTEM,
                               operation="SubmitPaymentBatch")
    return f"pain.001.001.{m.group(1).decode()}"


class TreasuryClient(SoapServiceClient):
    """SOAP client of the treasury. One per process and endpoint; thread-safe."""

    system = SYSTEM
    default_wsdl = WSDL
    binding = BINDING

    # -- operations --------------------------------------------------------------------------

    def submit_batch(self, serial: str, pain001: bytes, *, resolve_unknown: bool = True) -> BatchAck:
        """Submit ``pain001`` under ``serial``. With ``resolve_unknown`` (default) an unknown
        outcome is resolved by query-then-resend; otherwise ``OutcomeUnknown`` is raised."""
        try:
            return self._submit_once(serial, pain001)
        except (OutcomeUnknown, ServerError) as e:
            if not resolve_unknown:
                if isinstance(e, ServerError):
                    raise OutcomeUnknown(f"HTTP {e.status} after sending; query before any resend",
                                         system=SYSTEM, operation="SubmitPaymentBatch", ref=serial) from e
                raise
            log.warning("treasury batch %s: outcome unknown (%s); resolving by query", serial,
                        type(e).__name__)
            return self.resolve_submit(serial, pain001)

    def resolve_submit(self, serial: str, pain001: bytes) -> BatchAck:
        """After an unknown outcome: query by serial; resend under the same serial only if unknown
        to the treasury. Raises ``OutcomeUnknown`` if the treasury cannot be asked right now."""
        sha = hashlib.sha256(pain001).hexdigest()
        try:
            st = self.query_batch(serial)
        except NotFound:
            log.info("treasury batch %s: not received, resending under the same serial", serial)
            return self._submit_once(serial, pain001)
        except RetriableError as e:
            raise OutcomeUnknown("status query failed too; still unknown, try again later",
                                 system=SYSTEM, operation="SubmitPaymentBatch", ref=serial) from e
        if st.document_sha256 != sha:
            raise FatalError(f"serial already used for another document (sha256 {st.document_sha256})",
                             system=SYSTEM, operation="SubmitPaymentBatch", ref=serial)
        return BatchAck(serial, st.status, st.document_sha256, None, duplicate=True, resolved_by_query=True)

    def query_batch(self, serial: str) -> BatchStatus:
        """Status of a batch with its pain.002; ``NotFound`` if the treasury does not know it."""
        try:
            r = self.soap.call("QueryBatchStatus", ref=serial, state_changing=False, BatchSerial=serial)
        except SoapFault as e:
            if e.code.endswith("UnknownBatch"):
                raise NotFound(f"batch not known to the treasury ({e.detail})", system=SYSTEM,
                               operation="QueryBatchStatus", ref=serial) from e
            raise
        d = r.data
        return BatchStatus(serial=d["BatchSerial"], status=d["Status"], document_sha256=d["DocumentSha256"],
                           report=_bytes(d["StatusReport"]))

    def query_status(self, serial: str) -> bytes:
        """The pain.002 status report of batch ``serial`` (bytes, as the treasury sent it)."""
        return self.query_batch(serial).report

    def status_reports(self, after_sequence: int = 0, *, page_size: int = 100) -> Iterator[PublishedReport]:
        """Every final status report published after ``after_sequence``, paging to the end. The
        cursor only moves forward, so a record delivered twice is yielded once."""
        cursor = after_sequence
        while True:
            r = self.soap.call("GetStatusReports", ref=f"after:{cursor}", state_changing=False,
                               AfterSequence=cursor, MaxCount=page_size)
            items = r.data.get("Report") or []
            for item in items:
                seq = int(item["Sequence"])
                if seq <= cursor:
                    continue  # duplicate delivery
                cursor = seq
                yield PublishedReport(seq, item["BatchSerial"], item["Status"], _bytes(item["StatusReport"]))
            if not r.data.get("HasMore") or not items:
                return

    def _submit_once(self, serial: str, pain001: bytes) -> BatchAck:
        r = self.soap.call(
            "SubmitPaymentBatch", ref=serial, state_changing=True, BatchSerial=serial,
            DocumentFormat=detect_pain001_format(pain001), DocumentSha256=hashlib.sha256(pain001).hexdigest(),
            Document=pain001,
        )
        d = r.data
        return BatchAck(serial=d["BatchSerial"], status=d["Status"], document_sha256=d["DocumentSha256"],
                        received_at=d.get("ReceivedAt"), duplicate=bool(d["Duplicate"]))


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else bytes(value)
