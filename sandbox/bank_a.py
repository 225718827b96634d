"""Sandbox bank A: SOAP financing desk, camt.053 statements and pain.001/pain.002 files for SFTP.

Bank A is the "classic" bank style: financing of credit-voucher pieces over SOAP (contract
``connectors/bank_a/bank_a.wsdl``), files over SFTP. Behaviour:

- ``SubmitFinancing`` is idempotent by serial (same serial + same request = original answer; other
  request = ``Client.SerialConflict``; a piece already under financing with another serial =
  ``Client.PieceAlreadyFinanced``). A financing is PENDING, then after ``decision_delay`` APPROVED
  or REJECTED (registry conflict, credit limit, matured piece — switchable ``reject_rule``), then
  after ``disbursement_delay`` DISBURSED: discount interest = amount x rate x days / basis
  (days = maturity - disbursement date, ACT/360 or ACT/365, half-up to the fen), the rest is
  credited to the seller's account and a disbursement notice is published
  (``GetDisbursementNotices``, cursor by sequence).
- Files, under ``sftp_root`` (the directory the SFTP sandbox serves)::

      inbox/pain001/<serial>.xml            customer uploads payment batches (temp name, rename,
                                            then "<serial>.xml.done"; only then is it read)
      inbox/processed/<serial>.xml          accepted files are moved here
      outbox/pain002/<serial>.pain002.xml   status report once executed (+ ".done" marker)
      outbox/statements/camt053_<account>_<seq>.xml   statements
      (every outbox file gets a "<name>.sha256" sidecar and then a "<name>.done" marker)

  Statements (camt.053.001.08, rendered by ``mappings.camt.render_camt053``) are generated from
  what actually happened: disbursements, payments executed from bank A's own pain.001 files and,
  when linked, the treasury sandbox's executed payments. Sequence numbers continue per account
  and each opening balance is the previous closing balance.

Sandbox only: in-memory state, files written atomically (temp + rename), loopback only.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from lxml import etree

from canonical.clock import SYSTEM_CLOCK, Clock
from ledger.canonical import Party, PaymentStatus, Statement, StatementEntry
from ledger.money import AmountError, to_decimal_text, to_minor
from mappings.camt import render_camt053
from mappings.pain002 import render_pain002
from sandbox.soap_server import FaultInjector, SecurityPolicy, SoapFaultError, SoapServer, SoapService
from sandbox.treasury import PaymentEngine, PaymentFileError

BANK_A_NS = "urn:cvhub:bank-a:financing:1"
CONTRACT_DIR = Path(__file__).resolve().parent.parent / "connectors" / "bank_a"
BANK_A_CNAPS = "105100000017"
SANDBOX_USERNAME = "cvhub"
SANDBOX_PASSWORD = "bank-a-sandbox-pw"  # noqa: S105 - a sandbox credential, printed by `cvhub sandbox up`


@dataclass
class Financing:
    serial: str
    sha256: str
    voucher_id: str
    piece_id: str
    seller_name: str
    seller_account: str
    amount_minor: int
    currency: str
    rate: Decimal
    day_count: str
    recourse: bool
    maturity: date
    registration_no: str
    received_at: datetime
    status: str = "PENDING"
    decision_reason: str | None = None
    decided_at: datetime | None = None
    bank_reference: str | None = None
    disbursement_date: date | None = None
    interest_minor: int | None = None
    disbursed_minor: int | None = None


@dataclass
class FinancingRules:
    """Default decision rules; mutable so tests and the demo can switch rejections on."""

    credit_limit_minor: int = 10_000_000_00
    conflicting_registrations: set[str] = field(default_factory=set)

    def __call__(self, f: Financing, today: date) -> str | None:
        if f.registration_no in self.conflicting_registrations:
            return "REGISTRY_CONFLICT: a prior registration covers this receivable"
        if f.amount_minor > self.credit_limit_minor:
            return "LIMIT_EXCEEDED: amount above the available credit line"
        if f.maturity <= today:
            return "MATURED: the piece is due or overdue"
        return None


def discount_interest(amount_minor: int, rate: Decimal, days: int, day_count: str) -> int:
    """amount x rate x days / basis in minor units, rounded half-up (never float)."""
    basis = 365 if day_count == "ACT/365" else 360
    value = Decimal(amount_minor) * rate * Decimal(max(days, 0)) / Decimal(basis)
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class Notice:
    sequence: int
    financing: Financing


class FinancingDesk:
    """Financing applications, decisions and disbursements. Thread-safe."""

    def __init__(self, *, clock: Clock | None = None, decision_delay: timedelta = timedelta(seconds=0.2),
                 disbursement_delay: timedelta = timedelta(seconds=0.2),
                 rules: Callable[[Financing, date], str | None] | None = None) -> None:
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.decision_delay = decision_delay
        self.disbursement_delay = disbursement_delay
        self.rules = rules or FinancingRules()
        self.financings: dict[str, Financing] = {}
        self.notices: list[Notice] = []
        self.applied: Counter[str] = Counter()   # serial -> times a new application was registered
        self._pieces: dict[str, str] = {}
        self._lock = threading.RLock()
        self._seq = 0

    def reset(self) -> None:
        with self._lock:
            self.financings.clear()
            self.notices.clear()
            self.applied.clear()
            self._pieces.clear()
            self._seq = 0

    def submit(self, f: Financing) -> tuple[Financing, bool]:
        with self._lock:
            known = self.financings.get(f.serial)
            if known is not None:
                if known.sha256 != f.sha256:
                    raise SoapFaultError("Client.SerialConflict",
                                         f"financing {f.serial} already received with other content",
                                         "SERIAL_CONFLICT")
                return known, True
            other = self._pieces.get(f.piece_id)
            if other is not None and self.financings[other].status != "REJECTED":
                raise SoapFaultError("Client.PieceAlreadyFinanced",
                                     f"piece {f.piece_id} is already under financing {other}",
                                     "PIECE_ALREADY_FINANCED")
            self.financings[f.serial] = f
            self.applied[f.serial] += 1
            self._pieces[f.piece_id] = f.serial
            return f, False

    def advance(self) -> None:
        with self._lock:
            now = self.clock()
            for f in self.financings.values():
                # events happen at their scheduled time, however late somebody looks
                if f.status == "PENDING" and now >= f.received_at + self.decision_delay:
                    f.decided_at = f.received_at + self.decision_delay
                    reason = self.rules(f, f.decided_at.date())
                    f.status = "REJECTED" if reason else "APPROVED"
                    f.decision_reason = reason
                if (f.status == "APPROVED" and f.decided_at is not None
                        and now >= f.decided_at + self.disbursement_delay):
                    f.status = "DISBURSED"
                    f.disbursement_date = (f.decided_at + self.disbursement_delay).date()
                    f.bank_reference = "BA" + hashlib.sha256(f.serial.encode()).hexdigest()[:16].upper()
                    f.interest_minor = discount_interest(f.amount_minor, f.rate,
                                                         (f.maturity - f.disbursement_date).days, f.day_count)
                    f.disbursed_minor = f.amount_minor - f.interest_minor
                    self._seq += 1
                    self.notices.append(Notice(self._seq, f))

    def get(self, serial: str) -> Financing | None:
        self.advance()
        with self._lock:
            return self.financings.get(serial)

    def notices_after(self, after: int, limit: int) -> tuple[list[Notice], bool]:
        self.advance()
        with self._lock:
            items = [n for n in self.notices if n.sequence > after]
        return items[:limit], len(items) > limit


# --- SOAP handlers ---------------------------------------------------------------------------

def _el(tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    e = etree.Element(f"{{{BANK_A_NS}}}{tag}", nsmap={"a": BANK_A_NS}, **attrib)
    e.text = text
    return e


def _add(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    e = etree.SubElement(parent, f"{{{BANK_A_NS}}}{tag}", **attrib)
    e.text = text
    return e


def _amount(parent: etree._Element, tag: str, minor: int, ccy: str) -> None:
    _add(parent, tag, to_decimal_text(minor, ccy), Ccy=ccy)


def _t(req: etree._Element, tag: str) -> str:
    return (req.findtext(f"{{{BANK_A_NS}}}{tag}") or "").strip()


def _xml_time(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class FinancingService:
    def __init__(self, desk: FinancingDesk) -> None:
        self.desk = desk

    def submit(self, req: etree._Element) -> etree._Element:
        serial = _t(req, "FinancingSerial")
        amount_el = req.find(f"{{{BANK_A_NS}}}Amount")
        assert amount_el is not None  # the XSD made it required
        ccy = amount_el.get("Ccy", "")
        try:
            amount_minor = to_minor((amount_el.text or "").strip(), ccy)
        except AmountError as e:
            raise SoapFaultError("Client.InvalidAmount", f"financing {serial}: {e}", "INVALID_AMOUNT") from e
        canonical = etree.tostring(req, method="c14n")
        f = Financing(
            serial=serial, sha256=hashlib.sha256(canonical).hexdigest(), voucher_id=_t(req, "VoucherId"),
            piece_id=_t(req, "PieceId"), seller_name=_t(req, "SellerName"),
            seller_account=_t(req, "SellerAccount"), amount_minor=amount_minor, currency=ccy,
            rate=Decimal(_t(req, "AnnualRate")), day_count=_t(req, "DayCount"),
            recourse=_t(req, "Recourse") in ("true", "1"),
            maturity=date.fromisoformat(_t(req, "MaturityDate")),
            registration_no=_t(req, "RegistrationNo"), received_at=self.desk.clock(),
        )
        f, duplicate = self.desk.submit(f)
        resp = _el("SubmitFinancingResponse")
        _add(resp, "FinancingSerial", serial)
        _add(resp, "Status", f.status)
        _add(resp, "ReceivedAt", _xml_time(f.received_at))
        _add(resp, "Duplicate", "true" if duplicate else "false")
        return resp

    def query(self, req: etree._Element) -> etree._Element:
        serial = _t(req, "FinancingSerial")
        f = self.desk.get(serial)
        if f is None:
            raise SoapFaultError("Client.UnknownFinancing", f"financing {serial} not known",
                                 "UNKNOWN_FINANCING")
        resp = _el("QueryFinancingResponse")
        _add(resp, "FinancingSerial", serial)
        _add(resp, "Status", f.status)
        _add(resp, "RequestSha256", f.sha256)
        _amount(resp, "FaceAmount", f.amount_minor, f.currency)
        if f.decision_reason:
            _add(resp, "DecisionReason", f.decision_reason)
        if f.decided_at:
            _add(resp, "DecidedAt", _xml_time(f.decided_at))
        if f.status == "DISBURSED":
            assert f.interest_minor is not None and f.disbursed_minor is not None
            _add(resp, "BankReference", f.bank_reference)
            _add(resp, "DisbursementDate", str(f.disbursement_date))
            _amount(resp, "DiscountInterest", f.interest_minor, f.currency)
            _amount(resp, "DisbursedAmount", f.disbursed_minor, f.currency)
        return resp

    def notices(self, req: etree._Element) -> etree._Element:
        items, more = self.desk.notices_after(int(_t(req, "AfterSequence")), int(_t(req, "MaxCount")))
        resp = _el("GetDisbursementNoticesResponse")
        for n in items:
            f = n.financing
            assert f.interest_minor is not None and f.disbursed_minor is not None
            el = _add(resp, "Notice")
            _add(el, "Sequence", str(n.sequence))
            _add(el, "FinancingSerial", f.serial)
            _add(el, "BankReference", f.bank_reference)
            _add(el, "DisbursementDate", str(f.disbursement_date))
            _add(el, "CreditAccount", f.seller_account)
            _amount(el, "FaceAmount", f.amount_minor, f.currency)
            _amount(el, "DiscountInterest", f.interest_minor, f.currency)
            _amount(el, "DisbursedAmount", f.disbursed_minor, f.currency)
        _add(resp, "HasMore", "true" if more else "false")
        return resp


# --- files -------------------------------------------------------------------------------------

def _write_file(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes, *, done_marker: bool = True) -> Path:
    """Write ``path`` via a hidden temp name + rename, then ``<name>.sha256`` (hex digest sidecar)
    and an empty ``<name>.done`` marker: the file is complete once the marker exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_file(path, data)
    if done_marker:
        _write_file(path.with_name(path.name + ".sha256"),
                    f"{hashlib.sha256(data).hexdigest()}  {path.name}\n".encode())
        _write_file(path.with_name(path.name + ".done"), b"")
    return path


_SERIAL_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,34}\.xml$")


@dataclass(frozen=True, slots=True)
class _Posting:
    key: str
    account: str
    entry: StatementEntry


class BankA:
    """The bank behind the sandbox: financing desk, payment files, statements."""

    def __init__(self, *, sftp_root: Path, clock: Clock | None = None,
                 desk: FinancingDesk | None = None, engine: PaymentEngine | None = None,
                 linked_engines: Iterable[PaymentEngine] = (), accounts: set[str] | None = None,
                 opening_balances: dict[str, int] | None = None, currency: str = "CNY") -> None:
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.sftp_root = Path(sftp_root)
        self.desk = desk or FinancingDesk(clock=self.clock)
        self.engine = engine or PaymentEngine(clock=self.clock, name="bank_a")
        self.linked_engines = list(linked_engines)
        self.accounts = accounts
        self.currency = currency
        self._balances: dict[str, int] = dict(opening_balances or {})
        self._sequence: dict[str, int] = {}
        self._reported: set[str] = set()
        self._reported_batches: set[str] = set()
        self._lock = threading.RLock()
        for d in ("inbox/pain001", "inbox/processed", "outbox/pain002", "outbox/statements"):
            (self.sftp_root / d).mkdir(parents=True, exist_ok=True)

    # payment files
    def process_payment_files(self) -> list[Path]:
        """Accept new pain.001 files; write pain.002 reports for executed batches. Returns reports."""
        inbox = self.sftp_root / "inbox" / "pain001"
        written: list[Path] = []
        with self._lock:
            for path in sorted(inbox.iterdir()):
                if not _SERIAL_FILE.match(path.name):
                    continue  # markers, sidecars, temp names (".NAME.part") are not payment files
                marker = path.with_name(path.name + ".done")
                if not marker.exists():
                    continue  # bank A protocol: a file is complete once its ".done" marker exists
                serial = path.stem
                data = path.read_bytes()
                ns = re.search(rb"pain\.001\.001\.(\d\d)", data[:4096])
                try:
                    self.engine.accept(serial, data, ns.group(1).decode() if ns else "?")
                except PaymentFileError as e:
                    written.append(self._reject_file(serial, data, e))
                for part in (path, path.with_name(path.name + ".sha256"), marker):
                    if part.exists():
                        os.replace(part, self.sftp_root / "inbox" / "processed" / part.name)
            self.engine.advance()
            for serial, batch in self.engine.batches.items():
                if batch.results and serial not in self._reported_batches:
                    report = self.engine.status_report(batch)
                    target = self.sftp_root / "outbox" / "pain002" / f"{serial}.pain002.xml"
                    written.append(write_atomic(target, report))
                    self._reported_batches.add(serial)
        return written

    def _reject_file(self, serial: str, data: bytes, e: PaymentFileError) -> Path:
        m = re.search(rb"<(?:\w+:)?MsgId>([^<]{1,35})</", data)
        status = PaymentStatus(level="group", original_message_id=m.group(1).decode() if m else serial,
                               status="RJCT", reason_code="FF01", reason_info=f"{e.code}: {e}"[:105])
        report = render_pain002([status], message_id=f"RJ-{serial}"[:35], created_at=self.clock())
        self._reported_batches.add(serial)
        return write_atomic(self.sftp_root / "outbox" / "pain002" / f"{serial}.pain002.xml", report)

    # statements
    def _postings(self) -> list[_Posting]:
        out: list[_Posting] = []
        for f in self.desk.financings.values():
            if f.status == "DISBURSED" and f.disbursed_minor is not None:
                out.append(_Posting(f"FIN:{f.serial}", f.seller_account, StatementEntry(
                    amount_minor=f.disbursed_minor, currency=f.currency, credit_debit="CRDT",
                    booking_date=f.disbursement_date, value_date=f.disbursement_date,
                    account_servicer_ref=f.bank_reference, end_to_end_id=f.serial,
                    mandate_or_serial=f.serial, remittance_info=f"FINANCING {f.serial} PIECE {f.piece_id}",
                    counterparty=Party(name="Bank A", agent=BANK_A_CNAPS))))
        for engine in (self.engine, *self.linked_engines):
            for p in engine.executed():
                i = p.instruction
                ref = f"{engine.name}:{p.batch_serial}:{i.end_to_end_id}"
                for side, acct, cp in (("DBIT", i.debtor.account, i.creditor),
                                       ("CRDT", i.creditor.account, i.debtor)):
                    if acct:
                        out.append(_Posting(f"{ref}:{side}", acct, StatementEntry(
                            amount_minor=i.amount_minor, currency=i.currency, credit_debit=side,  # type: ignore[arg-type]
                            booking_date=p.value_date, value_date=p.value_date,
                            account_servicer_ref=hashlib.sha256(ref.encode()).hexdigest()[:16].upper(),
                            end_to_end_id=i.end_to_end_id, instruction_id=i.instruction_id,
                            remittance_info=i.remittance_info, counterparty=cp)))
        return out

    def write_statements(self) -> list[Path]:
        """One camt.053 per account with entries not yet reported; returns the files written."""
        self.desk.advance()
        written: list[Path] = []
        with self._lock:
            by_account: dict[str, list[_Posting]] = {}
            for p in self._postings():
                if p.key in self._reported or p.entry.currency != self.currency:
                    continue
                if self.accounts is not None and p.account not in self.accounts:
                    continue
                by_account.setdefault(p.account, []).append(p)
            now = self.clock()
            for account, postings in sorted(by_account.items()):
                seq = self._sequence.get(account, 0) + 1
                opening = self._balances.get(account, 0)
                closing = opening + sum(p.entry.signed_minor for p in postings)
                days = [p.entry.booking_date for p in postings if p.entry.booking_date] or [now.date()]
                st = Statement(
                    source_format="camt.053.001.08", statement_id=f"BA-{account}-{seq:05d}"[:35],
                    account=account, currency=self.currency, sequence=seq, created_at=now,
                    from_date=min(days), to_date=max(days), opening_balance_minor=opening,
                    closing_balance_minor=closing, entries=tuple(p.entry for p in postings),
                    account_servicer=BANK_A_CNAPS, message_id=f"BA-STMT-{account}-{seq:05d}"[:35],
                )
                data = render_camt053(st, version="08", created_at=now)
                written.append(write_atomic(
                    self.sftp_root / "outbox" / "statements" / f"camt053_{account}_{seq:05d}.xml", data))
                self._sequence[account] = seq
                self._balances[account] = closing
                self._reported.update(p.key for p in postings)
        return written

    def tick(self) -> None:
        self.desk.advance()
        self.process_payment_files()


class _Ticker(threading.Thread):
    def __init__(self, bank: BankA, interval: float) -> None:
        super().__init__(name="bank-a-ticker", daemon=True)
        self.bank = bank
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.bank.tick()


@dataclass
class BankASandbox:
    """A running bank A: ``url``/``wsdl_url`` (SOAP financing), ``sftp_root`` (serve it over SFTP)."""

    server: SoapServer
    service: SoapService
    bank: BankA
    username: str
    password: str = field(repr=False)
    _ticker: _Ticker | None = None

    @property
    def url(self) -> str:
        return self.server.url("/soap/bank-a/financing")

    @property
    def wsdl_url(self) -> str:
        return self.url + "?wsdl"

    @property
    def sftp_root(self) -> Path:
        return self.bank.sftp_root

    @property
    def faults(self) -> FaultInjector:
        return self.service.faults

    @property
    def desk(self) -> FinancingDesk:
        return self.bank.desk

    def write_statements(self) -> list[Path]:
        return self.bank.write_statements()

    def describe(self) -> dict[str, str]:
        """What ``cvhub sandbox up`` prints: endpoint, contract, credentials, file directory."""
        return {"system": "bank_a", "endpoint": self.url, "wsdl": self.wsdl_url,
                "contract": str(CONTRACT_DIR / "bank_a.wsdl"), "username": self.username,
                "password": self.password, "ws-security": "UsernameToken (PasswordDigest or PasswordText)",
                "sftp_root": str(self.sftp_root)}

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stopped.set()
        self.server.stop()

    def __enter__(self) -> BankASandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_bank_a_sandbox(*, sftp_root: Path, port: int = 0, username: str = SANDBOX_USERNAME,
                         password: str = SANDBOX_PASSWORD, digest_policy: str = "any",
                         clock: Clock | None = None, security_clock: Clock | None = None,
                         decision_delay: timedelta = timedelta(seconds=0.2),
                         disbursement_delay: timedelta = timedelta(seconds=0.2),
                         linked_engines: Iterable[PaymentEngine] = (), accounts: set[str] | None = None,
                         opening_balances: dict[str, int] | None = None, tick: float | None = 0.1,
                         security: SecurityPolicy | None = None,
                         tls: tuple[Path, Path] | None = None) -> BankASandbox:
    """Start bank A on 127.0.0.1:<port>; its files live under ``sftp_root``. Pass the treasury
    sandbox's ``engine`` in ``linked_engines`` so statements show the treasury's payments. ``clock`` is
    the business clock; ``security_clock`` checks WS-Security timestamps (default: ``clock``)."""
    desk = FinancingDesk(clock=clock, decision_delay=decision_delay, disbursement_delay=disbursement_delay)
    bank = BankA(sftp_root=sftp_root, clock=clock, desk=desk, linked_engines=linked_engines,
                 accounts=accounts, opening_balances=opening_balances)
    handlers = FinancingService(desk)
    policy = security or SecurityPolicy(username=username, password=password, digest_policy=digest_policy)
    service = SoapService(name="bank_a", wsdl_path=CONTRACT_DIR / "bank_a.wsdl",
                          xsd_path=CONTRACT_DIR / "bank_a.xsd", namespace=BANK_A_NS,
                          handlers={"SubmitFinancing": handlers.submit, "QueryFinancing": handlers.query,
                                    "GetDisbursementNotices": handlers.notices},
                          security=policy, clock=security_clock or clock, ref_tags=("FinancingSerial",),
                          record_tags={"GetDisbursementNotices": "Notice"})
    server = SoapServer({"/soap/bank-a/financing": service}, port=port, tls=tls).start()
    ticker = None
    if tick is not None:
        ticker = _Ticker(bank, tick)
        ticker.start()
    return BankASandbox(server, service, bank, policy.username, policy.password, ticker)
