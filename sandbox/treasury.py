"""Sandbox treasury (司库): executes pain.001 payment batches asynchronously, reports pain.002.

Serves the contract ``connectors/treasury/treasury.wsdl`` through ``sandbox.soap_server``:
``SubmitPaymentBatch`` accepts a pain.001 (validated against the official ISO XSD), idempotent by
batch serial (same serial + same document = the original answer, never a second batch; same
serial + other document = ``Client.SerialConflict``; a MsgId already executed under another
serial = ``Client.DuplicateMessage``); ``QueryBatchStatus`` answers with a pain.002 report;
``GetStatusReports`` lists the final reports published as batches are executed (cursor by sequence).
Batches are PDNG until ``execution_delay`` has passed on the sandbox clock, then each transaction
settles (ACSC) or is rejected (RJCT) by the switchable ``reject_rule``. Executed payments are kept
so the sandbox banks can put them on their statements (``PaymentEngine.executed()``).

The ``PaymentEngine`` is also what sandbox bank A uses for pain.001 files received over SFTP.
Sandbox only: state lives in memory, never import airflow.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from lxml import etree

from canonical.clock import SYSTEM_CLOCK, Clock
from ledger.canonical import PaymentInstruction, PaymentStatus
from mappings.errors import MappingError
from mappings.pain001 import parse_pain001, validate_pain001
from mappings.pain002 import render_pain002
from sandbox.soap_server import (
    FaultInjector,
    SecurityPolicy,
    SoapFaultError,
    SoapServer,
    SoapService,
    parse_hardened,
)

TREASURY_NS = "urn:cvhub:treasury:1"
CONTRACT_DIR = Path(__file__).resolve().parent.parent / "connectors" / "treasury"
RejectRule = Callable[[PaymentInstruction], tuple[str, str] | None]


@dataclass
class RejectAccounts:
    """Default reject rule: creditor accounts known closed (AC04) and an amount ceiling (AM02).
    Mutable on purpose: tests and the demo switch rejections on and off while running."""

    closed_accounts: set[str] = field(default_factory=set)
    max_amount_minor: int | None = None

    def __call__(self, i: PaymentInstruction) -> tuple[str, str] | None:
        if i.creditor.account in self.closed_accounts:
            return "AC04", "creditor account closed"
        if self.max_amount_minor is not None and i.amount_minor > self.max_amount_minor:
            return "AM02", "amount above the allowed maximum"
        return None


@dataclass(frozen=True, slots=True)
class ExecutedPayment:
    """One transaction after execution, as a bank statement would show it."""

    batch_serial: str
    message_id: str
    payment_info_id: str
    instruction: PaymentInstruction
    status: str                      # ACSC or RJCT
    reason_code: str | None
    executed_at: datetime

    @property
    def value_date(self) -> date:
        return self.executed_at.date()


@dataclass
class Batch:
    serial: str
    sha256: str
    version: str                     # "03" or "09"
    message_id: str
    received_at: datetime
    due_at: datetime
    instructions: list[tuple[str, PaymentInstruction]]   # (PmtInfId, instruction)
    results: list[ExecutedPayment] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.results:
            return "PDNG"
        states = {r.status for r in self.results}
        return states.pop() if len(states) == 1 else "PART"


@dataclass(frozen=True, slots=True)
class PublishedReport:
    """A final pain.002 published when a batch has been executed (``GetStatusReports``)."""

    sequence: int
    serial: str
    status: str
    report: bytes


class PaymentFileError(ValueError):
    """A pain.001 the payment engine refuses; ``code`` is the stable detail code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _pmtinf_ids(data: bytes) -> dict[str, str]:
    """EndToEndId -> PmtInfId. parse_pain001 returns instructions without their PmtInf, and a
    pain.002 names it; this small lookup stays in the sandbox on purpose."""
    root = parse_hardened(data)
    out: dict[str, str] = {}
    for pmt in root.iter("{*}PmtInf"):
        pid = pmt.findtext("{*}PmtInfId") or ""
        for e2e in pmt.iterfind("{*}CdtTrfTxInf/{*}PmtId/{*}EndToEndId"):
            out[(e2e.text or "").strip()] = pid
    return out


class PaymentEngine:
    """Receives pain.001 batches, executes them when due, keeps what was paid. Thread-safe."""

    def __init__(self, *, clock: Clock | None = None, execution_delay: timedelta = timedelta(seconds=0.3),
                 reject_rule: RejectRule | None = None, name: str = "treasury") -> None:
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.execution_delay = execution_delay
        self.reject_rule: RejectRule = reject_rule or RejectAccounts()
        self.name = name
        self.batches: dict[str, Batch] = {}
        self.reports: list[PublishedReport] = []
        self.applied: Counter[str] = Counter()   # serial -> times a new batch was registered
        self._by_msg_id: dict[str, str] = {}
        self._lock = threading.RLock()
        self._report_seq = 0

    def reset(self) -> None:
        with self._lock:
            self.batches.clear()
            self.reports.clear()
            self.applied.clear()
            self._by_msg_id.clear()

    def accept(self, serial: str, data: bytes, version: str) -> tuple[Batch, bool]:
        """Register a batch; returns (batch, duplicate). Idempotent by serial + content hash."""
        sha = hashlib.sha256(data).hexdigest()
        with self._lock:
            known = self.batches.get(serial)
            if known is not None:
                if known.sha256 != sha:
                    raise PaymentFileError("SERIAL_CONFLICT",
                                           f"batch {serial} already received with another document")
                return known, True
            if version not in ("03", "09"):
                raise PaymentFileError("UNSUPPORTED_FORMAT", f"pain.001 version {version} not supported")
            try:
                validate_pain001(data, version)  # type: ignore[arg-type]
                msg_id, instructions = parse_pain001(data, source=f"{self.name}:{serial}")
            except MappingError as e:
                raise PaymentFileError("INVALID_DOCUMENT", str(e)) from e
            if msg_id in self._by_msg_id:
                raise PaymentFileError("DUPLICATE_MESSAGE",
                                       f"MsgId {msg_id} already received as batch {self._by_msg_id[msg_id]}")
            pmtinf = _pmtinf_ids(data)
            now = self.clock()
            batch = Batch(serial, sha, version, msg_id, now, now + self.execution_delay,
                          [(pmtinf.get(i.end_to_end_id, ""), i) for i in instructions])
            self.batches[serial] = batch
            self.applied[serial] += 1
            self._by_msg_id[msg_id] = serial
            return batch, False

    def advance(self) -> int:
        """Execute every batch that is due; returns how many transactions were executed."""
        n = 0
        with self._lock:
            now = self.clock()
            for batch in self.batches.values():
                if batch.results or batch.due_at > now:
                    continue
                for pmt_id, i in batch.instructions:
                    rej = self.reject_rule(i)
                    batch.results.append(ExecutedPayment(
                        batch.serial, batch.message_id, pmt_id, i, "RJCT" if rej else "ACSC",
                        rej[0] if rej else None, batch.due_at))
                    n += 1
                self.reports.append(PublishedReport(len(self.reports) + 1, batch.serial, batch.status,
                                                    self.status_report(batch)))
        return n

    def get(self, serial: str) -> Batch | None:
        self.advance()
        with self._lock:
            return self.batches.get(serial)

    def reports_after(self, after: int, limit: int) -> tuple[list[PublishedReport], bool]:
        self.advance()
        with self._lock:
            items = [r for r in self.reports if r.sequence > after]
        return items[:limit], len(items) > limit

    def executed(self, *, settled_only: bool = True) -> list[ExecutedPayment]:
        """Every executed transaction (settled only, by default), in execution order."""
        self.advance()
        with self._lock:
            out = [r for b in self.batches.values() for r in b.results]
        return [r for r in out if r.status == "ACSC"] if settled_only else out

    def status_report(self, batch: Batch) -> bytes:
        """The pain.002 for ``batch`` as it stands now (PDNG, or per-transaction ACSC/RJCT)."""
        with self._lock:
            self._report_seq += 1
            seq = self._report_seq
        statuses = [PaymentStatus(level="group", original_message_id=batch.message_id, status=batch.status)]
        if batch.results:
            for r in batch.results:
                statuses.append(PaymentStatus(
                    level="transaction", original_message_id=batch.message_id, status=r.status,
                    original_payment_info_id=r.payment_info_id,
                    original_instruction_id=r.instruction.instruction_id,
                    original_end_to_end_id=r.instruction.end_to_end_id,
                    reason_code=r.reason_code, amount_minor=r.instruction.amount_minor,
                    currency=r.instruction.currency))
        return render_pain002(statuses, message_id=f"STS-{batch.serial}-{seq}"[:35],
                              created_at=self.clock(),
                              original_message_name=f"pain.001.001.{batch.version}",
                              version="03" if batch.version == "03" else "10")


# --- the SOAP service ---------------------------------------------------------------------------

def _el(tag: str, *children: etree._Element, text: str | None = None) -> etree._Element:
    e = etree.Element(f"{{{TREASURY_NS}}}{tag}", nsmap={"t": TREASURY_NS})
    e.text = text
    e.extend(children)
    return e


def _t(request: etree._Element, tag: str) -> str:
    return (request.findtext(f"{{{TREASURY_NS}}}{tag}") or "").strip()


def _xml_time(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class TreasuryService:
    """Handlers of the treasury contract over a ``PaymentEngine``."""

    def __init__(self, engine: PaymentEngine) -> None:
        self.engine = engine

    def submit(self, request: etree._Element) -> etree._Element:
        serial = _t(request, "BatchSerial")
        fmt = _t(request, "DocumentFormat")
        data = base64.b64decode(_t(request, "Document"))
        if hashlib.sha256(data).hexdigest() != _t(request, "DocumentSha256"):
            raise SoapFaultError("Client.Integrity", f"batch {serial}: DocumentSha256 does not match",
                                 "INTEGRITY")
        try:
            batch, duplicate = self.engine.accept(serial, data, fmt.rsplit(".", 1)[-1])
        except PaymentFileError as e:
            code = {"SERIAL_CONFLICT": "Client.SerialConflict",
                    "DUPLICATE_MESSAGE": "Client.DuplicateMessage"}.get(e.code, "Client.InvalidDocument")
            raise SoapFaultError(code, f"batch {serial}: {e}", e.code) from e
        return _el("SubmitPaymentBatchResponse",
                   _el("BatchSerial", text=serial),
                   _el("Status", text="ACTC" if not batch.results else batch.status),
                   _el("ReceivedAt", text=_xml_time(batch.received_at)),
                   _el("DocumentSha256", text=batch.sha256),
                   _el("Duplicate", text="true" if duplicate else "false"))

    def query(self, request: etree._Element) -> etree._Element:
        serial = _t(request, "BatchSerial")
        batch = self.engine.get(serial)
        if batch is None:
            raise SoapFaultError("Client.UnknownBatch", f"batch {serial} not known", "UNKNOWN_BATCH")
        report = self.engine.status_report(batch)
        return _el("QueryBatchStatusResponse",
                   _el("BatchSerial", text=serial),
                   _el("Status", text=batch.status),
                   _el("DocumentSha256", text=batch.sha256),
                   _el("StatusReport", text=base64.b64encode(report).decode()))


    def published(self, request: etree._Element) -> etree._Element:
        items, more = self.engine.reports_after(int(_t(request, "AfterSequence")),
                                                int(_t(request, "MaxCount")))
        resp = _el("GetStatusReportsResponse")
        for r in items:
            resp.append(_el("Report", _el("Sequence", text=str(r.sequence)),
                            _el("BatchSerial", text=r.serial), _el("Status", text=r.status),
                            _el("StatusReport", text=base64.b64encode(r.report).decode())))
        resp.append(_el("HasMore", text="true" if more else "false"))
        return resp


class _Ticker(threading.Thread):
    """Executes due batches in the background, like a real treasury's scheduler."""

    def __init__(self, engine: PaymentEngine, interval: float) -> None:
        super().__init__(name="treasury-ticker", daemon=True)
        self.engine = engine
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.engine.advance()


@dataclass
class TreasurySandbox:
    """A running treasury sandbox: ``url`` (endpoint), ``wsdl_url``, credentials, ``faults``."""

    server: SoapServer
    service: SoapService
    engine: PaymentEngine
    username: str
    password: str = field(repr=False)
    _ticker: _Ticker | None = None

    @property
    def url(self) -> str:
        return self.server.url("/soap/treasury")

    @property
    def wsdl_url(self) -> str:
        return self.url + "?wsdl"

    @property
    def faults(self) -> FaultInjector:
        return self.service.faults

    def describe(self) -> dict[str, str]:
        """What ``cvhub sandbox up`` prints: endpoint, contract and credentials (sandbox only)."""
        return {"system": "treasury", "endpoint": self.url, "wsdl": self.wsdl_url,
                "contract": str(CONTRACT_DIR / "treasury.wsdl"), "username": self.username,
                "password": self.password, "ws-security": "UsernameToken (PasswordDigest or PasswordText)"}

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stopped.set()
        self.server.stop()

    def __enter__(self) -> TreasurySandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


SANDBOX_USERNAME = "cvhub"
SANDBOX_PASSWORD = "treasury-sandbox-pw"  # noqa: S105 - a sandbox credential, printed by `cvhub sandbox up`


def start_treasury_sandbox(*, port: int = 0, username: str = SANDBOX_USERNAME,
                           password: str = SANDBOX_PASSWORD, digest_policy: str = "any",
                           clock: Clock | None = None, security_clock: Clock | None = None,
                           execution_delay: timedelta = timedelta(seconds=0.3),
                           reject_rule: RejectRule | None = None, tick: float | None = 0.1,
                           security: SecurityPolicy | None = None,
                           tls: tuple[Path, Path] | None = None) -> TreasurySandbox:
    """Start the treasury sandbox on 127.0.0.1:<port> (0 = ephemeral). ``tick`` None: batches
    execute only when someone asks (queries, ``engine.advance()``), for tests on a manual clock.
    ``tls``: (certificate, key) to serve https (``sandbox.rest_tls.make_sandbox_tls``). ``clock`` is the
    business clock (execution, value dates); WS-Security timestamps are checked against
    ``security_clock`` (default: ``clock``, so a test pins both; the sandbox stack passes real time)."""
    engine = PaymentEngine(clock=clock, execution_delay=execution_delay, reject_rule=reject_rule)
    handlers = TreasuryService(engine)
    policy = security or SecurityPolicy(username=username, password=password, digest_policy=digest_policy)
    service = SoapService(name="treasury", wsdl_path=CONTRACT_DIR / "treasury.wsdl",
                          xsd_path=CONTRACT_DIR / "treasury.xsd", namespace=TREASURY_NS,
                          handlers={"SubmitPaymentBatch": handlers.submit,
                                    "QueryBatchStatus": handlers.query,
                                    "GetStatusReports": handlers.published},
                          security=policy, clock=security_clock or clock, ref_tags=("BatchSerial",),
                          record_tags={"GetStatusReports": "Report"})
    server = SoapServer({"/soap/treasury": service}, port=port, tls=tls).start()
    ticker = None
    if tick is not None:
        ticker = _Ticker(engine, tick)
        ticker.start()
    return TreasurySandbox(server, service, engine, policy.username, policy.password, ticker)
