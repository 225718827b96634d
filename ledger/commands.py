"""The ledger's commands: validation, business rules, state changes and postings, one handler each.

A handler receives the parsed command and the working set (``ledger.state.Store``), checks every
rule first and only then changes state, so a failed command leaves nothing behind. It returns the
result data and the entry's double-entry postings. Handlers never read the clock (each command
carries its business date in ``on``), never commit, and never touch connectors or mappings.
Result codes and their order of precedence are documented per command in ``docs/ledger.md``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from stdnum.cn import uscc as stdnum_uscc

from ledger.calendar import HolidayCalendar
from ledger.lexical import FORBIDDEN, describe, iso_date
from ledger.money import AmountError, exponent, to_minor
from ledger.state import (
    Account,
    Backing,
    Financing,
    Instruction,
    Party,
    Payable,
    Piece,
    Quota,
    Store,
    Transfer,
    Voucher,
)

ROLES = ("funder", "obligor", "supplier")
DAY_COUNTS = {"ACT/360": 360, "ACT/365": 365}
# Tenor (SPEC §1): the due date (maturity after the business-day roll) at most 1 calendar year after
# the issue date (error tenor_exceeded), a warning when it is more than 6 calendar months after it.
TENOR_MAX_YEARS = 1
TENOR_WARN_MONTHS = 6
DEFAULT_TRANSFER_DAYS = 7  # a pending transfer expires this many days after it was offered
# Every pattern anchored with \A...\Z (``$`` also matches before a final "\n": "PO1\n" passed as a
# second payable beside "PO1") and ASCII-only (``\d`` matches "１" and "١" too).
_ID_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}\Z", re.ASCII)
_CNAPS_RE = re.compile(r"\A[0-9]{12}\Z", re.ASCII)
_ACCOUNT_RE = re.compile(r"\A[0-9A-Za-z-]{6,40}\Z", re.ASCII)
_E2E_RE = re.compile(r"\A[A-Za-z0-9-]{1,35}\Z", re.ASCII)
_USCC_RE = re.compile(r"\A[0-9A-Z]{18}\Z", re.ASCII)
_RATE_RE = re.compile(r"\A[0-9]{1,11}(?:\.[0-9]{1,8})?\Z", re.ASCII)
Posting = tuple[str, str, int]
# Largest amount a command may carry, in minor units (10**15 fen = 10 trillion yuan): far above any
# real voucher, and far enough below the 64-bit columns that sums over many rows cannot overflow.
MAX_AMOUNT_MINOR = 10**15


@lru_cache(maxsize=65536)
def _valid_uscc(v: str) -> bool:
    """USCC check digit (python-stdnum); exactly 18 characters, upper case, no separators accepted.

    stdnum upper-cases before checking, so "91310000ma00000025" would pass it, and it takes other
    scripts' digits ("９1110000MA0000001L"): both refused here by an ASCII pattern first, or the
    same legal entity could be registered twice under two spellings of its code.
    """
    return _USCC_RE.match(v) is not None and bool(stdnum_uscc.is_valid(v))


class CommandError(Exception):
    """A command refused: ``code`` (machine-readable), ``field`` it concerns, human message."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


# --- what a command may carry -------------------------------------------------------------------

#: Nesting a command may have (a command object, its ``backing`` list, a backing object, a value):
#: deeper is ``too_deep`` before anything recurses over it.
MAX_DEPTH = 8

#: The fields each command reads besides ``cmd``, ``key`` and ``on``, with their kind - the one
#: declaration per command that the readers of ``Ctx`` (one per kind) enforce field by field, and
#: that ``tests/ledger/test_ledger_inputs.py`` holds the handlers to (a handler reading a field not
#: declared here fails it). Kinds: ``ident`` (1..200 of [A-Za-z0-9._:/-]), ``uscc``, ``currency``,
#: ``amount`` (decimal string), ``date`` (YYYY-MM-DD), ``text`` (free text), ``flag`` (bool),
#: ``roles``, ``backing`` (list of {payable_id: ident, amount: amount}), ``rate``, ``day_count``,
#: ``account_no``, ``cnaps``. Issue #17 adds the refusal of undeclared fields and NFC checks here.
COMMAND_FIELDS: dict[str, dict[str, str]] = {
    "register_party": {"uscc": "uscc", "name": "text", "roles": "roles"},
    "add_account": {"uscc": "uscc", "currency": "currency", "account_no": "account_no",
                    "wallet_id": "account_no", "cnaps": "cnaps"},
    "set_quota": {"obligor": "uscc", "currency": "currency", "limit": "amount"},
    "register_payable": {"payable_id": "ident", "obligor": "uscc", "supplier": "uscc",
                         "currency": "currency", "amount": "amount", "due_date": "date",
                         "invoice_no": "text", "contract_no": "text", "receipt_no": "text"},
    "issue": {"voucher_no": "ident", "obligor": "uscc", "supplier": "uscc", "currency": "currency",
              "amount": "amount", "maturity": "date", "backing": "backing"},
    "accept": {"voucher_no": "ident"},
    "reject": {"voucher_no": "ident", "reason": "text"},
    "revoke": {"voucher_no": "ident", "reason": "text"},
    "transfer": {"transfer_id": "ident", "piece_no": "ident", "from": "uscc", "to": "uscc",
                 "currency": "currency", "amount": "amount", "expires_on": "date"},
    "accept_transfer": {"transfer_id": "ident"},
    "void_transfer": {"transfer_id": "ident"},
    "expire_transfer": {"transfer_id": "ident"},
    "finance": {"financing_id": "ident", "piece_no": "ident", "holder": "uscc", "funder": "uscc",
                "rate": "rate", "day_count": "day_count", "recourse": "flag"},
    "record_registration": {"financing_id": "ident", "registration_no": "ident"},
    "disburse": {"financing_id": "ident"},
    "reject_financing": {"financing_id": "ident", "reason": "text"},
    "open_clearing": {"voucher_no": "ident"},
    "mark_sent": {"instruction_id": "ident", "message_id": "text"},
    "mark_returned": {"instruction_id": "ident", "reason": "text"},
    "settle": {"instruction_id": "ident", "statement_ref": "text", "currency": "currency",
               "amount": "amount"},
    "mark_overdue": {"voucher_no": "ident"},
    "repurchase": {"financing_id": "ident"},
    "reverse_settlement": {"instruction_id": "ident", "statement_ref": "text", "currency": "currency",
                           "amount": "amount", "reason": "text"},
    "reinstruct": {"instruction_id": "ident", "account_no": "account_no"},
}
COMMON_FIELDS = ("cmd", "key", "on")


def _printable(text: str) -> str:
    """``text`` with every forbidden character written as ``\\uXXXX`` (safe in any output)."""
    return FORBIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def screen_command(cmd: Mapping[str, Any]) -> CommandError | None:
    """The checks every command passes before anything reads it or sends it to a database.

    Every string in the command - values and object keys, at any depth - is free of control
    characters, NUL and lone surrogates (``invalid_character``: PostgreSQL cannot store NUL, UTF-8
    cannot encode a surrogate, and SQLite would store both, so without this the two databases
    disagree); nesting is at most ``MAX_DEPTH`` (``too_deep``); keys are strings and values plain
    JSON types (``malformed``). Walks iteratively, in document order; returns the first problem.
    """
    stack: list[tuple[Any, str, int]] = [(cmd, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            m = FORBIDDEN.search(value)
            if m is not None:
                where = path or "command"
                return CommandError(
                    "invalid_character",
                    f"{where}: contains {describe(m.group())} at position {m.start()}",
                    where,
                )
            continue
        if value is None or isinstance(value, (bool, int)):
            continue
        if isinstance(value, (Mapping, list, tuple)):
            if depth > MAX_DEPTH:
                where = path or "command"
                return CommandError("too_deep", f"{where}: nested deeper than {MAX_DEPTH} levels", where)
            children: list[tuple[Any, str, int]] = []
            if isinstance(value, Mapping):
                for k, v in value.items():
                    if not isinstance(k, str):
                        where = path or "command"
                        return CommandError("malformed", f"{where}: a field name is not a string", where)
                    m = FORBIDDEN.search(k)
                    name = f"{path}.{_printable(k)}" if path else _printable(k)
                    if m is not None:
                        return CommandError(
                            "invalid_character",
                            f"{name}: the field name contains {describe(m.group())}",
                            name,
                        )
                    children.append((v, name, depth + 1))
            else:
                children = [(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
            stack.extend(reversed(children))
            continue
        # floats, Decimals, objects: canonical JSON refuses or a reader refuses them by type;
        # a float has no characters to check
        continue
    return None


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """Rules the ledger is configured with (not per command): calendar and conventions."""

    calendar: HolidayCalendar
    business_day_rule: str = "following"
    default_day_count: str = "ACT/360"
    transfer_expiry_days: int = DEFAULT_TRANSFER_DAYS

    @classmethod
    def default(cls) -> LedgerConfig:
        return cls(calendar=HolidayCalendar.load("cn"))


class Ctx:
    """What a handler works with: the connection, the working set, the config and the command."""

    __slots__ = ("cfg", "cmd", "conn", "on", "store")

    def __init__(self, conn: Connection, store: Store, cfg: LedgerConfig, cmd: Mapping[str, Any]) -> None:
        self.conn = conn
        self.store = store
        self.cfg = cfg
        self.cmd = cmd
        self.on = date.min

    # --- field readers: each raises CommandError naming the field -----------------------------
    def text(self, name: str, *, required: bool = True, max_len: int = 200) -> str:
        v = self.cmd.get(name)
        if v is None or v == "":
            if required:
                raise CommandError("missing_field", f"{name}: required", name)
            return ""
        if not isinstance(v, str):
            raise CommandError("invalid_field", f"{name}: must be a string", name)
        if len(v) > max_len:
            raise CommandError("invalid_field", f"{name}: longer than {max_len} characters", name)
        return v

    def ident(self, name: str, *, required: bool = True) -> str:
        v = self.text(name, required=required)
        if v and not _ID_RE.match(v):
            raise CommandError(
                "invalid_field", f"{name}: {v!r} is not a valid identifier (letters, digits, . _ : / -)", name
            )
        return v

    def day(self, name: str, *, required: bool = True) -> date | None:
        v = self.cmd.get(name)
        if v is None:
            if required:
                raise CommandError("missing_field", f"{name}: required (ISO date YYYY-MM-DD)", name)
            return None
        if not isinstance(v, str):
            raise CommandError("invalid_date", f"{name}: must be an ISO date string", name)
        try:
            return iso_date(v)  # exactly YYYY-MM-DD: fromisoformat alone takes 20260302, 2026-W10-1
        except ValueError:
            raise CommandError(
                "invalid_date", f"{name}: {v!r} is not an ISO date (YYYY-MM-DD)", name
            ) from None

    def req_day(self, name: str) -> date:
        d = self.day(name)
        assert d is not None
        return d

    def currency(self, name: str = "currency") -> str:
        cur = self.text(name, max_len=3)
        try:
            exponent(cur)
        except AmountError as e:
            raise CommandError(e.code, f"{name}: {e}", name) from e
        return cur

    def amount(self, name: str, currency: str, *, allow_zero: bool = False) -> int:
        v = self.cmd.get(name)
        if v is None:
            raise CommandError("missing_field", f"{name}: required (decimal string)", name)
        if not isinstance(v, str):
            raise CommandError("invalid_amount", f'{name}: must be a decimal string like "1000.00"', name)
        try:
            minor = to_minor(v, currency, allow_negative=True)
        except AmountError as e:
            raise CommandError(e.code, f"{name}: {e}", name) from e
        if minor < 0:
            raise CommandError("negative_amount", f"{name}: {v} is negative", name)
        if minor == 0 and not allow_zero:
            raise CommandError("zero_amount", f"{name}: must be greater than zero", name)
        if minor > MAX_AMOUNT_MINOR:
            raise CommandError(
                "invalid_amount",
                f"{name}: {v} exceeds the largest amount accepted ({MAX_AMOUNT_MINOR} minor units)",
                name,
            )
        return minor

    def uscc(self, name: str) -> str:
        v = self.text(name, max_len=100)
        if not _valid_uscc(v):
            raise CommandError(
                "invalid_uscc", f"{name}: {v!r} is not a valid unified social credit code", name
            )
        return v

    def flag(self, name: str, default: bool) -> bool:
        v = self.cmd.get(name, default)
        if not isinstance(v, bool):
            raise CommandError("invalid_field", f"{name}: must be true or false", name)
        return v

    # --- lookups ------------------------------------------------------------------------------
    def party(self, uscc: str, field: str, role: str | None = None) -> Party:
        p: Party | None = self.store.get(self.conn, Party, uscc)
        if p is None:
            raise CommandError("unknown_party", f"{field}: party {uscc} is not registered", field)
        if role is not None and role not in p.roles.split(","):
            raise CommandError("wrong_role", f"{field}: party {uscc} does not have the role {role}", field)
        return p

    def voucher(self, field: str = "voucher_no") -> Voucher:
        no = self.ident(field)
        v: Voucher | None = self.store.get(self.conn, Voucher, no)
        if v is None:
            raise CommandError("unknown_voucher", f"{field}: voucher {no} does not exist", field)
        return v

    def piece(self, field: str = "piece_no") -> Piece:
        no = self.ident(field)
        p: Piece | None = self.store.get(self.conn, Piece, no)
        if p is None:
            raise CommandError("unknown_piece", f"{field}: piece {no} does not exist", field)
        return p

    def get(self, cls: type[Any], field: str, code: str, what: str) -> Any:
        ident = self.ident(field)
        obj = self.store.get(self.conn, cls, ident)
        if obj is None:
            raise CommandError(code, f"{field}: {what} {ident} does not exist", field)
        return obj


Handler = Callable[[Ctx], tuple[dict[str, Any], list[Posting]]]


# --- parties, accounts, quota, payables --------------------------------------------------------


def register_party(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    uscc = c.uscc("uscc")
    name = c.text("name", max_len=200)
    roles = c.cmd.get("roles")
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise CommandError("invalid_field", f"roles: a non-empty list of {', '.join(ROLES)}", "roles")
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise CommandError(
            "invalid_field", f"roles: unknown role {bad[0]!r} (one of {', '.join(ROLES)})", "roles"
        )
    if c.store.get(c.conn, Party, uscc) is not None:
        raise CommandError("party_exists", f"uscc: party {uscc} is already registered", "uscc")
    c.store.add(Party(uscc=uscc, name=name, roles=",".join(sorted(set(roles)))))
    return {"uscc": uscc}, []


def add_account(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    uscc = c.uscc("uscc")
    currency = c.currency()
    account_no = c.text("account_no", required=False, max_len=40)
    wallet = c.text("wallet_id", required=False, max_len=40)
    if bool(account_no) == bool(wallet):
        raise CommandError(
            "invalid_field", "account_no: give either account_no (+ cnaps) or wallet_id", "account_no"
        )
    cnaps: str | None = None
    if account_no:
        if not _ACCOUNT_RE.match(account_no):
            raise CommandError(
                "invalid_field", f"account_no: {account_no!r} is not an account number", "account_no"
            )
        cnaps = c.text("cnaps", max_len=12)
        if not _CNAPS_RE.match(cnaps):
            raise CommandError(
                "invalid_field", f"cnaps: {cnaps!r} is not a 12-digit CNAPS bank code", "cnaps"
            )
    elif not _ACCOUNT_RE.match(wallet):
        raise CommandError("invalid_field", f"wallet_id: {wallet!r} is not an e-CNY wallet id", "wallet_id")
    c.party(uscc, "uscc")
    number = account_no or wallet
    account_id = f"{uscc}/{number}"
    if c.store.get(c.conn, Account, account_id) is not None:
        raise CommandError(
            "account_exists", f"account_no: {number} is already registered for {uscc}", "account_no"
        )
    c.store.add(
        Account(
            account_id=account_id,
            party_uscc=uscc,
            kind="bank" if account_no else "ecny",
            account_no=number,
            cnaps=cnaps,
            currency=currency,
        )
    )
    return {"account_id": account_id}, []


def set_quota(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    obligor = c.uscc("obligor")
    currency = c.currency()
    limit = c.amount("limit", currency, allow_zero=True)
    c.party(obligor, "obligor", "obligor")
    q: Quota | None = c.store.get(c.conn, Quota, obligor)
    old = 0
    if q is not None:
        if q.currency != currency:
            raise CommandError(
                "currency_mismatch", f"currency: quota of {obligor} is in {q.currency}", "currency"
            )
        if limit < q.reserved_minor:
            raise CommandError(
                "quota_below_reserved",
                f"limit: {obligor} has {q.reserved_minor} minor units reserved, more than the new limit",
                "limit",
            )
        old = q.limit_minor
        q.limit_minor = limit
        c.store.touch(q)
    else:
        c.store.add(Quota(obligor_uscc=obligor, currency=currency, limit_minor=limit, reserved_minor=0))
    delta = limit - old
    postings = [(f"quota_line:{obligor}", currency, -delta), (f"quota_free:{obligor}", currency, delta)]
    return {"obligor": obligor, "limit_minor": limit}, postings if delta else []


def register_payable(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    pid = c.ident("payable_id")
    obligor = c.uscc("obligor")
    supplier = c.uscc("supplier")
    currency = c.currency()
    amount = c.amount("amount", currency)
    due = c.day("due_date", required=False)
    refs = {k: c.text(k, required=False) for k in ("invoice_no", "contract_no", "receipt_no")}
    c.party(obligor, "obligor", "obligor")
    c.party(supplier, "supplier", "supplier")
    if c.store.get(c.conn, Payable, pid) is not None:
        raise CommandError("payable_exists", f"payable_id: payable {pid} is already registered", "payable_id")
    reference = ";".join(f"{k}={v}" for k, v in refs.items() if v) or None
    c.store.add(
        Payable(
            payable_id=pid,
            obligor_uscc=obligor,
            supplier_uscc=supplier,
            amount_minor=amount,
            currency=currency,
            backed_minor=0,
            due_date=due,
            reference=reference,
        )
    )
    return {"payable_id": pid}, []


# --- issue, accept, reject, revoke ---------------------------------------------------------------


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _add_months(d: date, months: int) -> date:
    m = d.month - 1 + months
    y, m = d.year + m // 12, m % 12 + 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(y, m, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def voucher_number(key: str, issue_date: date) -> str:
    """Deterministic voucher number from the issue command's key (when the caller gives none)."""
    return f"CV{issue_date:%Y%m%d}{hashlib.sha256(key.encode()).hexdigest()[:12].upper()}"


def issue(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    obligor = c.uscc("obligor")
    supplier = c.uscc("supplier")
    currency = c.currency()
    amount = c.amount("amount", currency)
    maturity = c.req_day("maturity")
    backing = c.cmd.get("backing")
    if not isinstance(backing, list) or not backing or not all(isinstance(b, Mapping) for b in backing):
        raise CommandError("missing_field", "backing: a non-empty list of {payable_id, amount}", "backing")
    voucher_no = c.ident("voucher_no", required=False) or voucher_number(str(c.cmd["key"]), c.on)
    if len(voucher_no) > 40:
        raise CommandError("invalid_field", "voucher_no: longer than 40 characters", "voucher_no")
    parts: list[tuple[str, int]] = []
    for i, b in enumerate(backing):
        sub = Ctx(c.conn, c.store, c.cfg, b)
        fname = f"backing[{i}]"
        try:
            parts.append((sub.ident("payable_id"), sub.amount("amount", currency)))
        except CommandError as e:
            raise CommandError(e.code, f"{fname}.{e}", f"{fname}.{e.field}") from e
    if len({p for p, _ in parts}) != len(parts):
        raise CommandError("invalid_field", "backing: a payable appears twice", "backing")
    if obligor == supplier:
        raise CommandError("invalid_field", "supplier: must differ from the obligor", "supplier")
    c.party(obligor, "obligor", "obligor")
    c.party(supplier, "supplier", "supplier")
    # Tenor is checked on the EFFECTIVE maturity: the due date, i.e. the maturity moved by the
    # business-day rule on the holiday calendar (the day the money is actually due).
    due = c.cfg.calendar.adjust(maturity, c.cfg.business_day_rule)  # type: ignore[arg-type]
    if maturity <= c.on or due <= c.on:
        raise CommandError(
            "maturity_in_past",
            f"maturity: {maturity} (due {due}) is not after the issue date {c.on}",
            "maturity",
        )
    if due > _add_years(c.on, TENOR_MAX_YEARS):
        raise CommandError(
            "tenor_exceeded",
            f"maturity: {maturity} is due on {due} (business-day rule {c.cfg.business_day_rule}), "
            f"more than one year after {c.on}",
            "maturity",
        )
    if c.store.get(c.conn, Voucher, voucher_no) is not None:
        raise CommandError("voucher_exists", f"voucher_no: voucher {voucher_no} already exists", "voucher_no")
    if sum(a for _, a in parts) != amount:
        raise CommandError(
            "backing_mismatch", "backing: amounts do not add up to the voucher amount", "backing"
        )
    payables: list[Payable] = []
    for i, (pid, part) in enumerate(parts):
        fname = f"backing[{i}].payable_id"
        p: Payable | None = c.store.get(c.conn, Payable, pid)
        if p is None:
            raise CommandError("unknown_payable", f"{fname}: payable {pid} is not registered", fname)
        if p.obligor_uscc != obligor or p.supplier_uscc != supplier:
            raise CommandError("payable_mismatch", f"{fname}: payable {pid} is between other parties", fname)
        if p.currency != currency:
            raise CommandError("currency_mismatch", f"{fname}: payable {pid} is in {p.currency}", fname)
        if p.backed_minor + part > p.amount_minor:
            raise CommandError(
                "payable_overbacked",
                f"{fname}: payable {pid} has only {p.amount_minor - p.backed_minor} minor units left to back",
                fname,
            )
        payables.append(p)
    q: Quota | None = c.store.get(c.conn, Quota, obligor)
    if q is None:
        raise CommandError("no_quota", f"obligor: {obligor} has no issuance quota", "obligor")
    if q.currency != currency:
        raise CommandError(
            "currency_mismatch", f"currency: quota of {obligor} is in {q.currency}", "currency"
        )
    if q.reserved_minor + amount > q.limit_minor:
        raise CommandError(
            "quota_exceeded",
            f"amount: exceeds the free quota of {obligor} ({q.limit_minor - q.reserved_minor} minor units)",
            "amount",
        )
    # all checks passed: change state
    for p, (pid, part) in zip(payables, parts, strict=True):
        p.backed_minor += part
        c.store.touch(p)
        c.store.add(Backing(voucher_no=voucher_no, payable_id=pid, amount_minor=part))
    q.reserved_minor += amount
    c.store.touch(q)
    piece_no = f"{voucher_no}-1"
    c.store.add(
        Voucher(
            voucher_no=voucher_no,
            obligor_uscc=obligor,
            supplier_uscc=supplier,
            face_minor=amount,
            currency=currency,
            issue_date=c.on,
            maturity_date=maturity,
            due_date=due,
            state="issued",
            settled_minor=0,
            next_piece=2,
        )
    )
    c.store.add(
        Piece(
            piece_no=piece_no,
            voucher_no=voucher_no,
            parent_no=None,
            holder_uscc=supplier,
            amount_minor=amount,
            state="offered",
        )
    )
    data: dict[str, Any] = {"voucher_no": voucher_no, "piece_no": piece_no, "due_date": due.isoformat()}
    warnings = []
    if due > _add_months(c.on, TENOR_WARN_MONTHS):
        warnings.append("tenor_over_6_months")
    if due != maturity:
        warnings.append("maturity_adjusted")
    if not c.cfg.calendar.covers(maturity):
        warnings.append("calendar_not_covering_maturity")
    if warnings:
        data["warnings"] = warnings
    return data, [
        (f"obligation:{obligor}", currency, -amount),
        (f"offered:{supplier}", currency, amount),
        (f"quota_free:{obligor}", currency, -amount),
        (f"quota_reserved:{obligor}", currency, amount),
    ]


def accept(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    v = c.voucher()
    if v.state != "issued":
        raise CommandError(
            "invalid_state", f"voucher_no: voucher {v.voucher_no} is {v.state}, not issued", "voucher_no"
        )
    root = c.store.get(c.conn, Piece, f"{v.voucher_no}-1")
    v.state = "accepted"
    root.state = "live"
    c.store.touch(v)
    c.store.touch(root)
    s, cur, a = v.supplier_uscc, v.currency, v.face_minor
    return {"voucher_no": v.voucher_no, "piece_no": root.piece_no}, [
        (f"offered:{s}", cur, -a),
        (f"held:{s}", cur, a),
    ]


def _unissue(c: Ctx, new_state: str, reason_required: bool) -> tuple[dict[str, Any], list[Posting]]:
    v = c.voucher()
    reason = c.text("reason", required=reason_required, max_len=500)
    if v.state != "issued":
        code = "already_accepted" if v.state == "accepted" else "invalid_state"
        raise CommandError(code, f"voucher_no: voucher {v.voucher_no} is {v.state}, not issued", "voucher_no")
    root = c.store.get(c.conn, Piece, f"{v.voucher_no}-1")
    q = c.store.get(c.conn, Quota, v.obligor_uscc)
    backings = [b for b in _backings(c, v.voucher_no)]
    for b in backings:
        p = c.store.get(c.conn, Payable, b.payable_id)
        p.backed_minor -= b.amount_minor
        c.store.touch(p)
    q.reserved_minor -= v.face_minor
    c.store.touch(q)
    v.state = new_state
    root.state = "void"
    c.store.touch(v)
    c.store.touch(root)
    o, s, cur, a = v.obligor_uscc, v.supplier_uscc, v.currency, v.face_minor
    data: dict[str, Any] = {"voucher_no": v.voucher_no}
    if reason:
        data["reason"] = reason
    return data, [
        (f"offered:{s}", cur, -a),
        (f"obligation:{o}", cur, a),
        (f"quota_reserved:{o}", cur, -a),
        (f"quota_free:{o}", cur, a),
    ]


def _backings(c: Ctx, voucher_no: str) -> list[Backing]:
    found = c.store.backings_by_voucher.get(voucher_no)
    if found is not None:
        return found
    ph = "?" if c.conn.dialect.paramstyle == "qmark" else "%s"
    rows = c.conn.exec_driver_sql(
        f"SELECT voucher_no, payable_id, amount_minor FROM ledger_backings WHERE voucher_no = {ph}",
        (voucher_no,),
    ).all()
    return [Backing(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def reject(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    return _unissue(c, "rejected", reason_required=True)


def revoke(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    return _unissue(c, "revoked", reason_required=False)


# --- transfer / split (two-phase) ----------------------------------------------------------------


def _live_piece(c: Ctx, holder_field: str = "from") -> tuple[Piece, Voucher]:
    p = c.piece()
    holder = c.uscc(holder_field)
    v: Voucher = c.store.get(c.conn, Voucher, p.voucher_no)
    if p.holder_uscc != holder:
        raise CommandError(
            "not_holder", f"{holder_field}: {holder} does not hold piece {p.piece_no}", holder_field
        )
    if p.state != "live":
        code = "piece_locked" if p.state == "locked" else "piece_not_live"
        raise CommandError(code, f"piece_no: piece {p.piece_no} is {p.state}", "piece_no")
    if c.on >= v.due_date:
        raise CommandError("voucher_matured", f"on: voucher {v.voucher_no} is due on {v.due_date}", "on")
    return p, v


def transfer(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    tid = c.ident("transfer_id", required=False) or str(c.cmd["key"])
    to = c.uscc("to")
    currency = c.currency()
    amount = c.amount("amount", currency)
    expires = c.day("expires_on", required=False) or c.on + timedelta(days=c.cfg.transfer_expiry_days)
    p, v = _live_piece(c)
    c.party(to, "to")
    if to == p.holder_uscc:
        raise CommandError("invalid_field", "to: must differ from the holder", "to")
    if currency != v.currency:
        raise CommandError(
            "currency_mismatch", f"currency: voucher {v.voucher_no} is in {v.currency}", "currency"
        )
    if amount > p.amount_minor:
        raise CommandError(
            "exceeds_piece", f"amount: piece {p.piece_no} holds only {p.amount_minor} minor units", "amount"
        )
    if expires < c.on:
        raise CommandError("invalid_field", "expires_on: before the business date", "expires_on")
    if c.store.get(c.conn, Transfer, tid) is not None:
        raise CommandError("transfer_exists", f"transfer_id: transfer {tid} already exists", "transfer_id")
    p.state = "locked"
    c.store.touch(p)
    c.store.add(
        Transfer(
            transfer_id=tid,
            piece_no=p.piece_no,
            from_uscc=p.holder_uscc,
            to_uscc=to,
            amount_minor=amount,
            state="pending",
            created_on=c.on,
            expires_on=expires,
        )
    )
    return (
        {"transfer_id": tid, "piece_no": p.piece_no, "expires_on": expires.isoformat()},
        [
            (f"transfer_offered:{p.holder_uscc}", currency, -amount),
            (f"transfer_pending:{to}", currency, amount),
        ],
    )


def _pending_transfer(c: Ctx) -> tuple[Transfer, Piece]:
    t: Transfer = c.get(Transfer, "transfer_id", "unknown_transfer", "transfer")
    if t.state != "pending":
        raise CommandError(
            "transfer_not_pending", f"transfer_id: transfer {t.transfer_id} is {t.state}", "transfer_id"
        )
    return t, c.store.get(c.conn, Piece, t.piece_no)


def _release_transfer(c: Ctx, t: Transfer, p: Piece, state: str) -> list[Posting]:
    t.state = state
    p.state = "live"
    c.store.touch(t)
    c.store.touch(p)
    v: Voucher = c.store.get(c.conn, Voucher, p.voucher_no)
    return [
        (f"transfer_offered:{t.from_uscc}", v.currency, t.amount_minor),
        (f"transfer_pending:{t.to_uscc}", v.currency, -t.amount_minor),
    ]


def accept_transfer(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    t, p = _pending_transfer(c)
    if c.on > t.expires_on:
        raise CommandError(
            "transfer_expired", f"on: transfer {t.transfer_id} expired on {t.expires_on}", "on"
        )
    v: Voucher = c.store.get(c.conn, Voucher, p.voucher_no)
    if c.on >= v.due_date:
        raise CommandError("voucher_matured", f"on: voucher {v.voucher_no} is due on {v.due_date}", "on")
    postings = _release_transfer(c, t, p, "accepted")
    p.state = "consumed"
    n = v.next_piece
    child = Piece(
        piece_no=f"{v.voucher_no}-{n}",
        voucher_no=v.voucher_no,
        parent_no=p.piece_no,
        holder_uscc=t.to_uscc,
        amount_minor=t.amount_minor,
        state="live",
    )
    c.store.add(child)
    data: dict[str, Any] = {"transfer_id": t.transfer_id, "piece_no": child.piece_no}
    n += 1
    rest = p.amount_minor - t.amount_minor
    if rest:
        remainder = Piece(
            piece_no=f"{v.voucher_no}-{n}",
            voucher_no=v.voucher_no,
            parent_no=p.piece_no,
            holder_uscc=t.from_uscc,
            amount_minor=rest,
            state="live",
        )
        c.store.add(remainder)
        data["remainder_piece_no"] = remainder.piece_no
        n += 1
    v.next_piece = n
    c.store.touch(v)
    cur = v.currency
    postings += [(f"held:{t.from_uscc}", cur, -t.amount_minor), (f"held:{t.to_uscc}", cur, t.amount_minor)]
    data["obligor_notified"] = v.obligor_uscc  # the assignment notice the obligor receives
    return data, postings


def void_transfer(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    t, p = _pending_transfer(c)
    return {"transfer_id": t.transfer_id}, _release_transfer(c, t, p, "voided")


def expire_transfer(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    t, p = _pending_transfer(c)
    v: Voucher = c.store.get(c.conn, Voucher, p.voucher_no)
    # From the due date on a pending transfer can never be accepted (voucher_matured), so it may be
    # expired then too: otherwise a far-off expires_on would keep the piece locked and block clearing.
    if c.on <= t.expires_on and c.on < v.due_date:
        raise CommandError("not_expired", f"on: transfer {t.transfer_id} is valid until {t.expires_on}", "on")
    return {"transfer_id": t.transfer_id}, _release_transfer(c, t, p, "expired")


# --- financing ----------------------------------------------------------------------------------


def _rate(c: Ctx) -> tuple[str, Fraction]:
    v = c.cmd.get("rate")
    if not isinstance(v, str) or len(v) > 20:  # stored as given, in a 20-character column
        raise CommandError(
            "missing_field" if v is None else "invalid_field",
            'rate: annual rate as a decimal string of at most 20 characters, e.g. "0.035"',
            "rate",
        )
    # ASCII digits and one point, checked before Decimal() (which takes "３.５", " 0.1", "1E-2")
    if not _RATE_RE.match(v):
        raise CommandError("invalid_field", f"rate: {v!r} is not a plain decimal number", "rate")
    d = Decimal(v)
    if d >= 1:
        raise CommandError("invalid_field", "rate: must be in [0, 1) with at most 8 decimals", "rate")
    return v, Fraction(d)


def discount_interest(amount_minor: int, rate: Fraction, days: int, basis: int) -> int:
    """amount × rate × days / basis in minor units, rounded half up, computed exactly in integers."""
    num = amount_minor * rate.numerator * days
    den = rate.denominator * basis
    return (2 * num + den) // (2 * den)


def finance(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    fid = c.ident("financing_id", required=False) or str(c.cmd["key"])
    funder = c.uscc("funder")
    rate_text, rate = _rate(c)
    day_count = c.cmd.get("day_count", c.cfg.default_day_count)
    if day_count not in DAY_COUNTS:
        raise CommandError("invalid_field", f"day_count: one of {', '.join(DAY_COUNTS)}", "day_count")
    recourse = c.flag("recourse", True)
    p, v = _live_piece(c, "holder")
    c.party(funder, "funder", "funder")
    if funder == p.holder_uscc:
        raise CommandError("invalid_field", "funder: must differ from the holder", "funder")
    if c.store.get(c.conn, Financing, fid) is not None:
        raise CommandError(
            "financing_exists", f"financing_id: financing {fid} already exists", "financing_id"
        )
    if c.store.live_financing(c.conn, p.piece_no) is not None:
        raise CommandError(
            "already_financed", f"piece_no: piece {p.piece_no} is already financed", "piece_no"
        )
    days = (v.due_date - c.on).days
    interest = discount_interest(p.amount_minor, rate, days, DAY_COUNTS[day_count])
    p.state = "locked"
    c.store.touch(p)
    c.store.add(
        Financing(
            financing_id=fid,
            piece_no=p.piece_no,
            seller_uscc=p.holder_uscc,
            funder_uscc=funder,
            amount_minor=p.amount_minor,
            rate=rate_text,
            day_count=day_count,
            days=days,
            interest_minor=interest,
            recourse=recourse,
            state="pending",
            registration_no=None,
            registration_state="none",
            value_date=c.on,
        )
    )
    cur = v.currency
    return (
        {
            "financing_id": fid,
            "piece_no": p.piece_no,
            "days": days,
            "interest_minor": interest,
            "proceeds_minor": p.amount_minor - interest,
        },
        [
            (f"financing_offered:{p.holder_uscc}", cur, -p.amount_minor),
            (f"financing_pending:{funder}", cur, p.amount_minor),
        ],
    )


def _financing(c: Ctx, *states: str) -> tuple[Financing, Piece, Voucher]:
    f: Financing = c.get(Financing, "financing_id", "unknown_financing", "financing")
    if f.state not in states:
        raise CommandError(
            "invalid_state", f"financing_id: financing {f.financing_id} is {f.state}", "financing_id"
        )
    p: Piece = c.store.get(c.conn, Piece, f.piece_no)
    return f, p, c.store.get(c.conn, Voucher, p.voucher_no)


def record_registration(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    reg = c.ident("registration_no")
    if len(reg) > 100:  # the column's width: longer failed the whole batch on PostgreSQL
        raise CommandError("invalid_field", "registration_no: longer than 100 characters", "registration_no")
    f, _, _ = _financing(c, "pending")
    if f.registration_no is not None:
        raise CommandError(
            "already_registered",
            f"financing_id: registration {f.registration_no} is recorded",
            "financing_id",
        )
    f.registration_no = reg
    f.registration_state = "registered"
    c.store.touch(f)
    return {"financing_id": f.financing_id, "registration_no": reg}, []


def disburse(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    f, p, v = _financing(c, "pending")
    if c.on >= v.due_date:
        # money advanced on or after the due date would finance nothing: the obligor pays the
        # holder now. The pending financing must be rejected (reject_financing) to unlock the piece.
        raise CommandError(
            "voucher_matured",
            f"on: voucher {v.voucher_no} is due on {v.due_date}; financing {f.financing_id} can no longer "
            "be disbursed (reject it)",
            "on",
        )
    if f.registration_no is None:
        raise CommandError(
            "registration_missing",
            f"financing_id: financing {f.financing_id} has no registry registration recorded",
            "financing_id",
        )
    f.state = "disbursed"
    p.state = "live"
    p.holder_uscc = f.funder_uscc
    c.store.touch(f)
    c.store.touch(p)
    cur, a, s, fu = v.currency, f.amount_minor, f.seller_uscc, f.funder_uscc
    proceeds = a - f.interest_minor
    return (
        {"financing_id": f.financing_id, "piece_no": p.piece_no, "proceeds_minor": proceeds},
        [
            (f"financing_offered:{s}", cur, a),
            (f"financing_pending:{fu}", cur, -a),
            (f"held:{s}", cur, -a),
            (f"held:{fu}", cur, a),
            (f"cash:{fu}", cur, -proceeds),
            (f"cash:{s}", cur, proceeds),
            (f"interest_income:{fu}", cur, -f.interest_minor),
            (f"interest_expense:{s}", cur, f.interest_minor),
        ],
    )


def reject_financing(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    reason = c.text("reason", max_len=500)
    f, p, v = _financing(c, "pending")
    f.state = "rejected"
    if f.registration_state == "registered":
        f.registration_state = "cancelled"
    p.state = "live"
    c.store.touch(f)
    c.store.touch(p)
    cur, a = v.currency, f.amount_minor
    return (
        {"financing_id": f.financing_id, "reason": reason},
        [(f"financing_offered:{f.seller_uscc}", cur, a), (f"financing_pending:{f.funder_uscc}", cur, -a)],
    )


# --- clearing, settlement, overdue, repurchase ---------------------------------------------------


def end_to_end_id(instruction_id: str) -> str:
    """<= 35 characters, deterministic: the instruction id itself when it fits, else a hash of it."""
    if _E2E_RE.match(instruction_id):
        return instruction_id
    return "CV" + hashlib.sha256(instruction_id.encode()).hexdigest()[:32].upper()


def _settlement_account(c: Ctx, uscc: str, currency: str, field: str) -> Account:
    for a in c.store.accounts_of(c.conn, uscc):
        if a.currency == currency:
            return a
    raise CommandError(
        "no_settlement_account", f"{field}: party {uscc} has no {currency} settlement account", field
    )


def _new_instruction(c: Ctx, v: Voucher, p: Piece, n: int, payee: Account | None = None) -> Instruction:
    payee = payee or _settlement_account(c, p.holder_uscc, v.currency, "voucher_no")
    payer = _settlement_account(c, v.obligor_uscc, v.currency, "voucher_no")
    iid = f"CI{p.piece_no}" if n == 1 else f"CI{p.piece_no}R{n}"
    return Instruction(
        instruction_id=iid,
        end_to_end_id=end_to_end_id(iid),
        voucher_no=v.voucher_no,
        piece_no=p.piece_no,
        obligor_uscc=v.obligor_uscc,
        payee_uscc=p.holder_uscc,
        payee_account=payee.account_no,
        payee_agent=payee.cnaps,
        payer_account=payer.account_no,
        payer_agent=payer.cnaps,
        amount_minor=p.amount_minor,
        currency=v.currency,
        due_date=v.due_date,
        status="open",
        message_id=None,
        statement_ref=None,
        return_reason=None,
    )


def open_clearing(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    v = c.voucher()
    if v.state not in ("accepted", "overdue"):
        raise CommandError("invalid_state", f"voucher_no: voucher {v.voucher_no} is {v.state}", "voucher_no")
    if c.on < v.due_date:
        raise CommandError("not_due", f"on: voucher {v.voucher_no} is due on {v.due_date}", "on")
    pieces = c.store.pieces_of(c.conn, v.voucher_no)
    locked = [p.piece_no for p in pieces if p.state == "locked"]
    if locked:
        raise CommandError(
            "pieces_locked",
            f"voucher_no: piece {locked[0]} has a pending transfer or financing",
            "voucher_no",
        )
    live = [p for p in pieces if p.state == "live"]
    instructions = [_new_instruction(c, v, p, 1) for p in live]
    postings: list[Posting] = []
    for p, ins in zip(live, instructions, strict=True):
        p.state = "clearing"
        c.store.touch(p)
        c.store.add(ins)
        postings += [
            (f"held:{p.holder_uscc}", v.currency, -p.amount_minor),
            (f"clearing:{p.holder_uscc}", v.currency, p.amount_minor),
        ]
    if v.state == "accepted":
        v.state = "clearing"
        c.store.touch(v)
    return {"voucher_no": v.voucher_no, "instructions": [i.instruction_id for i in instructions]}, postings


def _instruction(c: Ctx, *statuses: str) -> Instruction:
    ins: Instruction = c.get(Instruction, "instruction_id", "unknown_instruction", "instruction")
    if ins.status not in statuses:
        code = "already_settled" if ins.status == "settled" else "invalid_state"
        raise CommandError(
            code, f"instruction_id: instruction {ins.instruction_id} is {ins.status}", "instruction_id"
        )
    return ins


def mark_sent(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    msg = c.text("message_id", max_len=35)
    ins = _instruction(c, "open", "returned")
    if ins.status == "returned" and ins.statement_ref is not None:
        # its settlement was reversed: reconciliation matched its EndToEndId once already and never
        # matches an item twice, so a re-sent payment would be reported, not settled: pay anew
        raise CommandError(
            "reinstruct_required",
            f"instruction_id: the settlement of {ins.instruction_id} was reversed; use reinstruct",
            "instruction_id",
        )
    ins.status = "sent"
    ins.message_id = msg
    c.store.touch(ins)
    return {"instruction_id": ins.instruction_id, "message_id": msg}, []


def mark_returned(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    reason = c.text("reason", max_len=500)
    ins = _instruction(c, "open", "sent")
    ins.status = "returned"
    ins.return_reason = reason
    c.store.touch(ins)
    return {"instruction_id": ins.instruction_id, "reason": reason}, []


def settle(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    ref = c.text("statement_ref")
    currency = c.currency()
    amount = c.amount("amount", currency)
    ins = _instruction(c, "open", "sent", "returned")
    if currency != ins.currency:
        raise CommandError(
            "currency_mismatch",
            f"currency: instruction {ins.instruction_id} is in {ins.currency}",
            "currency",
        )
    if amount != ins.amount_minor:
        raise CommandError(
            "amount_mismatch",
            f"amount: instruction {ins.instruction_id} is for {ins.amount_minor} minor units",
            "amount",
        )
    p: Piece = c.store.get(c.conn, Piece, ins.piece_no)
    v: Voucher = c.store.get(c.conn, Voucher, ins.voucher_no)
    q: Quota = c.store.get(c.conn, Quota, v.obligor_uscc)
    ins.status = "settled"
    ins.statement_ref = ref
    p.state = "settled"
    v.settled_minor += amount
    q.reserved_minor -= amount
    data: dict[str, Any] = {"instruction_id": ins.instruction_id, "voucher_no": v.voucher_no}
    if v.settled_minor == v.face_minor:
        v.state = "settled"
        data["voucher_settled"] = True
        cancelled = []
        for piece in c.store.pieces_of(c.conn, v.voucher_no):
            f = c.store.live_financing(c.conn, piece.piece_no)
            if f is not None and f.registration_state == "registered":
                f.registration_state = "cancelled"  # 注销: the registry cancellation is now due
                c.store.touch(f)
                cancelled.append(f.registration_no)
        if cancelled:
            data["registrations_to_cancel"] = cancelled
    for obj in (ins, p, v, q):
        c.store.touch(obj)
    o, h, cur = v.obligor_uscc, p.holder_uscc, v.currency
    return data, [
        (f"clearing:{h}", cur, -amount),
        (f"obligation:{o}", cur, amount),
        (f"quota_reserved:{o}", cur, -amount),
        (f"quota_free:{o}", cur, amount),
        (f"cash:{o}", cur, -amount),
        (f"cash:{h}", cur, amount),
    ]


def mark_overdue(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    v = c.voucher()
    if v.state not in ("accepted", "clearing"):
        raise CommandError("invalid_state", f"voucher_no: voucher {v.voucher_no} is {v.state}", "voucher_no")
    if c.on <= v.due_date:
        raise CommandError("not_overdue", f"on: voucher {v.voucher_no} is due on {v.due_date}", "on")
    v.state = "overdue"
    c.store.touch(v)
    return {"voucher_no": v.voucher_no, "unsettled_minor": v.face_minor - v.settled_minor}, []


def repurchase(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    f, p, v = _financing(c, "disbursed")
    if not f.recourse:
        raise CommandError(
            "no_recourse", f"financing_id: financing {f.financing_id} is without recourse", "financing_id"
        )
    if v.state != "overdue":
        raise CommandError(
            "not_overdue", f"financing_id: voucher {v.voucher_no} is {v.state}, not overdue", "financing_id"
        )
    if p.state not in ("live", "clearing") or p.holder_uscc != f.funder_uscc:
        raise CommandError("invalid_state", f"financing_id: piece {p.piece_no} is {p.state}", "financing_id")
    cur, a, s, fu = v.currency, f.amount_minor, f.seller_uscc, f.funder_uscc
    account = "clearing" if p.state == "clearing" else "held"
    data: dict[str, Any] = {"financing_id": f.financing_id, "piece_no": p.piece_no}
    if p.state == "clearing":
        mine = _instructions_of_piece(c, p.piece_no)
        old = [i for i in mine if i.status in ("open", "sent", "returned")]
        sent = [i.instruction_id for i in old if i.status == "sent"]
        if sent:
            # The payment to the funder may still be executed: superseding it now and paying the seller
            # too would let the obligor pay twice, and the bank's confirmation would match nothing.
            raise CommandError(
                "instruction_in_flight",
                f"financing_id: instruction {sent[0]} was sent; wait for its statement or mark it returned",
                "financing_id",
            )
        as_seller = Piece(p.piece_no, p.voucher_no, p.parent_no, s, p.amount_minor, p.state)
        new = _new_instruction(c, v, as_seller, len(mine) + 1)  # may refuse: nothing changed yet
        for i in old:
            i.status = "superseded"
            c.store.touch(i)
        c.store.add(new)
        data["instruction_id"] = new.instruction_id
    p.holder_uscc = s
    f.state = "repurchased"
    c.store.touch(p)
    c.store.touch(f)
    return data, [
        (f"{account}:{fu}", cur, -a),
        (f"{account}:{s}", cur, a),
        (f"cash:{s}", cur, -a),
        (f"cash:{fu}", cur, a),
    ]


def _instructions_of_piece(c: Ctx, piece_no: str) -> list[Instruction]:
    """Every instruction ever made for a piece (flushed and this batch's), in creation order."""
    ph = "?" if c.conn.dialect.paramstyle == "qmark" else "%s"
    ids = [
        str(r[0])
        for r in c.conn.exec_driver_sql(
            f"SELECT instruction_id FROM ledger_instructions WHERE piece_no = {ph}", (piece_no,)
        ).all()
    ]
    ids += [i for i in c.store.new[Instruction] if c.store.new[Instruction][i].piece_no == piece_no]
    return [c.store.get(c.conn, Instruction, i) for i in dict.fromkeys(ids)]


def _was_marked_overdue(c: Ctx, voucher_no: str) -> bool:
    """Whether a ``mark_overdue`` entry exists for the voucher (journal, or this batch).

    A voucher leaves ``overdue`` only by being settled, so this tells the state it had before its
    final settlement: ``overdue`` if it was ever marked so, else ``clearing``.
    """
    for e in c.store.entries:
        if e.cmd == "mark_overdue" and json.loads(e.body).get("voucher_no") == voucher_no:
            return True
    ph = "?" if c.conn.dialect.paramstyle == "qmark" else "%s"
    rows = c.conn.exec_driver_sql(
        f"SELECT body FROM ledger_journal WHERE cmd = 'mark_overdue' AND body LIKE {ph}",
        (f'%"voucher_no":"{voucher_no}"%',),
    ).all()  # LIKE narrows ("_" may over-match); the parsed body decides
    return any(json.loads(str(r[0])).get("voucher_no") == voucher_no for r in rows)


def reverse_settlement(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    """Correction of a ``settle``: the payment that settled an instruction came back (return /
    R-transaction / reject after booking). Reverses the settle postings; the instruction is
    ``returned`` again, its piece ``clearing``, the quota reserved again, the voucher unsettled."""
    ref = c.text("statement_ref")
    currency = c.currency()
    amount = c.amount("amount", currency)
    reason = c.text("reason", max_len=500)
    ins: Instruction = c.get(Instruction, "instruction_id", "unknown_instruction", "instruction")
    if ins.status != "settled":
        raise CommandError(
            "not_settled",
            f"instruction_id: instruction {ins.instruction_id} is {ins.status}, not settled "
            "(a return before settlement is mark_returned)",
            "instruction_id",
        )
    if currency != ins.currency:
        raise CommandError(
            "currency_mismatch",
            f"currency: instruction {ins.instruction_id} is in {ins.currency}",
            "currency",
        )
    if amount != ins.amount_minor:
        raise CommandError(
            "amount_mismatch",
            f"amount: instruction {ins.instruction_id} settled {ins.amount_minor} minor units "
            "(a partial return is not a reversal: escalate)",
            "amount",
        )
    p: Piece = c.store.get(c.conn, Piece, ins.piece_no)
    v: Voucher = c.store.get(c.conn, Voucher, ins.voucher_no)
    q: Quota = c.store.get(c.conn, Quota, v.obligor_uscc)
    if q.reserved_minor + amount > q.limit_minor:
        raise CommandError(
            "quota_exceeded",
            f"amount: re-reserving {amount} minor units exceeds the quota of {v.obligor_uscc} "
            f"({q.limit_minor - q.reserved_minor} free): raise it with set_quota, then reverse",
            "amount",
        )
    data: dict[str, Any] = {
        "instruction_id": ins.instruction_id,
        "voucher_no": v.voucher_no,
        "piece_no": p.piece_no,
        "reversed_statement_ref": ins.statement_ref,
    }
    if v.state == "settled":
        v.state = "overdue" if _was_marked_overdue(c, v.voucher_no) else "clearing"
        restored = []
        for piece in c.store.pieces_of(c.conn, v.voucher_no):
            f = c.store.live_financing(c.conn, piece.piece_no)
            if f is not None and f.registration_state == "cancelled":
                f.registration_state = "registered"  # the settlement made the 注销 due; it is not any more
                c.store.touch(f)
                restored.append(f.registration_no)
        if restored:
            data["registrations_restored"] = restored
    data["voucher_state"] = v.state
    ins.status = "returned"
    ins.return_reason = f"{ref}: {reason}"[:500]
    p.state = "clearing"
    v.settled_minor -= amount
    q.reserved_minor += amount
    for obj in (ins, p, v, q):
        c.store.touch(obj)
    o, h, cur = v.obligor_uscc, p.holder_uscc, v.currency
    return data, [
        (f"clearing:{h}", cur, amount),
        (f"obligation:{o}", cur, -amount),
        (f"quota_reserved:{o}", cur, amount),
        (f"quota_free:{o}", cur, -amount),
        (f"cash:{o}", cur, amount),
        (f"cash:{h}", cur, -amount),
    ]


def reinstruct(c: Ctx) -> tuple[dict[str, Any], list[Posting]]:
    """A returned instruction is replaced by a new one (new id and EndToEndId) paying the piece's
    holder, optionally at another of its registered accounts (corrected payee details)."""
    account_no = c.text("account_no", required=False, max_len=40)
    ins = _instruction(c, "returned")
    p: Piece = c.store.get(c.conn, Piece, ins.piece_no)
    v: Voucher = c.store.get(c.conn, Voucher, ins.voucher_no)
    payee: Account | None = None
    if account_no:
        payee = next(
            (
                a
                for a in c.store.accounts_of(c.conn, p.holder_uscc)
                if a.account_no == account_no and a.currency == v.currency
            ),
            None,
        )
        if payee is None:
            raise CommandError(
                "unknown_account",
                f"account_no: {account_no} is not a {v.currency} account of the holder {p.holder_uscc}",
                "account_no",
            )
    mine = _instructions_of_piece(c, p.piece_no)
    new = _new_instruction(c, v, p, len(mine) + 1, payee)  # may refuse: nothing changed yet
    ins.status = "superseded"
    c.store.touch(ins)
    c.store.add(new)
    return {
        "instruction_id": new.instruction_id,
        "end_to_end_id": new.end_to_end_id,
        "superseded": ins.instruction_id,
        "payee_account": new.payee_account,
    }, []


HANDLERS: dict[str, Handler] = {
    "register_party": register_party,
    "add_account": add_account,
    "set_quota": set_quota,
    "register_payable": register_payable,
    "issue": issue,
    "accept": accept,
    "reject": reject,
    "revoke": revoke,
    "transfer": transfer,
    "accept_transfer": accept_transfer,
    "void_transfer": void_transfer,
    "expire_transfer": expire_transfer,
    "finance": finance,
    "record_registration": record_registration,
    "disburse": disburse,
    "reject_financing": reject_financing,
    "open_clearing": open_clearing,
    "mark_sent": mark_sent,
    "mark_returned": mark_returned,
    "settle": settle,
    "mark_overdue": mark_overdue,
    "repurchase": repurchase,
    "reverse_settlement": reverse_settlement,
    "reinstruct": reinstruct,
}

# Ids each command refers to, by field -> entity; the batch prefetches them in bulk.
REFERENCES: dict[str, type[Any]] = {
    "voucher_no": Voucher,
    "piece_no": Piece,
    "transfer_id": Transfer,
    "financing_id": Financing,
    "instruction_id": Instruction,
    "obligor": Party,
    "supplier": Party,
    "to": Party,
    "from": Party,
    "funder": Party,
    "holder": Party,
    "uscc": Party,
    "payable_id": Payable,
}
