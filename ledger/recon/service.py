"""Reconciliation as a database service: load the open items, run the engine, persist, settle.

``run_statement`` is one transaction in the caller's ``Session``: the statement, its lines, the
matches and exceptions are written with bulk inserts, and every matched clearing instruction is
settled through the ledger's normal ``settle`` command in that same transaction. Re-running the
same statement (same account + statement id, same content) changes nothing and returns the stored
result; the same identity with different content is a conflict. Items come from the ledger's open
clearing instructions and from ``recon_expected`` (disbursements and repayments registered by
other flows). The engine itself (``engine.py``) never touches the database.

This module must never import connectors or mappings, nor open its own transactions.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import islice
from operator import itemgetter
from typing import Any, Protocol

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from ledger.canonical import PaymentStatus, Statement, StatementEntry
from ledger.lexical import FORBIDDEN
from ledger.models import InstructionRow
from ledger.money import to_decimal_text
from ledger.recon.engine import MatchOutcome, match_statement
from ledger.recon.model import (
    EXC_RETURN,
    EXC_UNMATCHED_EXPECTED,
    ExpectedItem,
    ItemKind,
    MatchConfig,
    normalise_account,
)
from ledger.recon.models import ExceptionRow, ExpectedRow, LineRow, MatchRow, StatementRow

PRIOR_REF_LOOKBACK_DAYS = 120   # strong refs of items matched this recently flag duplicates/returns


class ReconError(Exception):
    """Base of reconciliation errors (the caller must stop: nothing was written)."""


class StatementConflict(ReconError):
    """A statement with this identity was reconciled before with different content."""


class ExpectedConflict(ReconError):
    """An expected item id registered before with different content; ``field`` names the first."""

    def __init__(self, item_id: str, field_name: str, old: object, new: object) -> None:
        super().__init__(f"expected item {item_id}: field {field_name!r} was {old!r}, now {new!r}")
        self.item_id = item_id
        self.field = field_name


class LedgerPort(Protocol):
    """What reconciliation needs from ``ledger.api.Ledger`` (open instructions, ``settle``)."""

    def open_instructions(self, session: Session | None = None, *,
                          due_on_or_before: date | None = None) -> Sequence[Any]: ...

    def apply(self, commands: Sequence[Mapping[str, Any]], *,
              session: Session | None = None) -> Sequence[Any]: ...


@dataclass(frozen=True, slots=True)
class RunResult:
    """Counts of one reconciliation run (or of the stored run, when ``replayed``)."""

    statement_key: str
    statement_pk: int
    business_date: date
    line_count: int
    matched_lines: int
    match_count: int
    exception_count: int
    settled_instructions: int
    exceptions_by_code: dict[str, int] = field(default_factory=dict)
    matches_by_rule: dict[str, int] = field(default_factory=dict)
    replayed: bool = False


# ---- identities ---------------------------------------------------------------------------

def statement_key(statement: Statement) -> str:
    return f"{normalise_account(statement.account)}|{statement.statement_id}"


def statement_digest(statement: Statement) -> str:
    """SHA-256 over the statement's reconciliation-relevant content (header + every entry)."""
    h = hashlib.sha256()
    h.update(repr((statement.account, statement.statement_id, statement.currency, statement.sequence,
                   statement.from_date, statement.to_date)).encode())
    h.update("\n".join([
        f"{e.amount_minor}|{e.currency}|{e.credit_debit}|{e.value_date}|{e.booking_date}|{e.reversal}|"
        f"{e.end_to_end_id}|{e.instruction_id}|{e.mandate_or_serial}|{e.account_servicer_ref}|"
        f"{e.return_reason}|{e.remittance_info}" for e in statement.entries]).encode())
    return h.hexdigest()


def business_date_of(statement: Statement) -> date:
    if statement.to_date is not None:
        return statement.to_date
    dates = [d for e in statement.entries for d in (e.booking_date, e.value_date) if d is not None]
    if dates:
        return max(dates)
    if statement.created_at is not None:
        return statement.created_at.date()
    raise ReconError(f"statement {statement.statement_id}: no date to take the business date from")


# ---- bulk writes --------------------------------------------------------------------------

class DbDates(dict[date | None, Any]):
    """date -> the value the driver stores (ISO text on SQLite, as SQLAlchemy's ``Date`` does;
    the date itself elsewhere). Memoised: a statement has few distinct dates and a million rows."""

    def __init__(self, sqlite: bool) -> None:
        super().__init__({None: None})
        self.sqlite = sqlite

    def __missing__(self, d: date) -> Any:
        v = d.isoformat() if self.sqlite else d
        self[d] = v
        return v


def db_dates(session: Session) -> DbDates:
    return DbDates(session.connection().dialect.name == "sqlite")


def bulk_insert(session: Session, table: Table | Any, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                chunk: int = 50_000) -> int:
    """executemany (SQLite) or COPY (PostgreSQL) straight through the session connection's DBAPI
    cursor, so the rows are in the caller's transaction.

    Rows must be DB-ready: dates converted with ``db_dates(session)``. Built for a million rows: no
    per-row work here beyond batching.
    """
    conn = session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    name = table.name if isinstance(table, Table) else table.__table__.name
    sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cur = dbapi_conn.cursor()
    n = 0
    if conn.dialect.name == "postgresql" and hasattr(cur, "copy"):
        # psycopg 3: COPY ... FROM STDIN, several times faster than a pipelined executemany
        try:
            with cur.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        finally:
            cur.close()
        return n
    try:
        it = iter(rows)
        while True:
            batch = list(islice(it, chunk))
            if not batch:
                break
            cur.executemany(sql, batch)
            n += len(batch)
    finally:
        cur.close()
    return n


# ---- expected items -----------------------------------------------------------------------

_EXPECTED_FIELDS = ("kind", "account", "currency", "direction", "amount_minor", "due_date",
                    "end_to_end_id", "serial_no", "voucher_no", "piece_no", "obligor_uscc",
                    "counterparty", "window_before_days", "window_after_days")


def register_expected(session: Session, items: Iterable[ExpectedItem]) -> int:
    """Register expected disbursements/repayments; idempotent by item id. Returns rows added.

    Same id with the same content is a no-op; with different content ``ExpectedConflict``.
    Clearing instructions are not registered here: they come from the ledger.
    """
    new = {it.item_id: it for it in items}
    for it in new.values():
        if it.kind not in ("disbursement", "repayment", "clearing") or it.direction not in ("CRDT", "DBIT"):
            raise ReconError(
                f"expected item {it.item_id}: bad kind {it.kind!r} or direction {it.direction!r}")
        if it.amount_minor <= 0 or isinstance(it.amount_minor, bool):
            raise ReconError(f"expected item {it.item_id}: amount_minor must be a positive int")
    if not new:
        return 0
    existing: dict[str, ExpectedRow] = {}
    ids = list(new)
    for i in range(0, len(ids), 500):
        for row in session.scalars(select(ExpectedRow).where(ExpectedRow.item_id.in_(ids[i:i + 500]))):
            existing[row.item_id] = row
    for item_id, row in existing.items():
        it = new.pop(item_id)
        for f in _EXPECTED_FIELDS:
            old, now = getattr(row, f), getattr(it, f)
            if f == "account":
                now = normalise_account(now)
            if old != now:
                raise ExpectedConflict(item_id, f, old, now)
    dd = db_dates(session)
    return bulk_insert(session, ExpectedRow, ("item_id", *_EXPECTED_FIELDS), (
        (it.item_id, it.kind, normalise_account(it.account), it.currency, it.direction, it.amount_minor,
         dd[it.due_date], *it[7:]) for it in new.values()))


def item_from_instruction(view: Any) -> ExpectedItem:
    """A ledger clearing instruction as an expected debit on the payer's (obligor's) account."""
    return ExpectedItem(
        item_id=view.instruction_id, kind="clearing", account=normalise_account(view.payer_account),
        currency=view.currency, direction="DBIT", amount_minor=view.amount_minor, due_date=view.due_date,
        end_to_end_id=view.end_to_end_id, voucher_no=view.voucher_no, piece_no=view.piece_no,
        obligor_uscc=view.obligor_uscc, counterparty=f"{view.payee_uscc} {view.payee_account}")


def open_items(session: Session, account: str, *, ledger: LedgerPort | None,
               due_on_or_before: date | None = None) -> list[ExpectedItem]:
    """Open expected items of ``account``: unmatched registered items plus open ledger instructions.

    Registered items are read with one query through the DBAPI cursor (a million rows per run).
    """
    acct = normalise_account(account)
    conn = session.connection()
    ph = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    dd = db_dates(session)
    sql = ("SELECT e.item_id, e.kind, e.account, e.currency, e.direction, e.amount_minor, e.due_date, "
           "e.end_to_end_id, e.serial_no, e.voucher_no, e.piece_no, e.obligor_uscc, e.counterparty, "
           "e.window_before_days, e.window_after_days FROM recon_expected e "
           f"LEFT JOIN recon_matches m ON m.item_id = e.item_id WHERE e.account = {ph} AND m.item_id IS NULL")
    params: list[Any] = [acct]
    if due_on_or_before is not None:
        sql += f" AND e.due_date <= {ph}"
        params.append(dd[due_on_or_before])
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cur = dbapi_conn.cursor()
    try:
        cur.execute(sql, params)
        rows = cur.fetchall()
    finally:
        cur.close()
    # kind and direction were validated by register_expected, the only writer of recon_expected
    parse: dict[Any, date] = {}
    new = tuple.__new__
    out: list[ExpectedItem] = []
    append = out.append
    for r in rows:
        due = r[6]
        if not isinstance(due, date):
            d = parse.get(due)
            if d is None:
                d = parse[due] = date.fromisoformat(due)
            due = d
        append(new(ExpectedItem, (*r[:6], due, *r[7:])))
    if ledger is not None:
        views = ledger.open_instructions(session, due_on_or_before=due_on_or_before)
        ids = [v.instruction_id for v in views]
        done: set[str] = set()
        for i in range(0, len(ids), 500):
            done.update(session.scalars(select(MatchRow.item_id).where(MatchRow.item_id.in_(ids[i:i + 500]))))
        for v in views:
            if normalise_account(v.payer_account) == acct and v.instruction_id not in done \
                    and getattr(v, "status", "open") in ("open", "sent", "returned"):
                out.append(item_from_instruction(v))
    return out


def prior_refs(session: Session, account: str, since: date,
               refs: Iterable[str] | None = None) -> dict[str, str]:
    """Strong references (EndToEndId, serial) of items matched on ``account`` since ``since``;
    only those among ``refs`` when given (what a statement cites beyond its open items: memory
    stays bounded however many items were matched in the look-back period)."""
    m, st, e, ins = MatchRow, StatementRow, ExpectedRow, InstructionRow
    base = (select(e.end_to_end_id, e.serial_no, ins.end_to_end_id, m.item_id)
            .join(st, st.id == m.statement_pk)
            .outerjoin(e, e.item_id == m.item_id)
            .outerjoin(ins, ins.instruction_id == m.item_id)
            .where(st.account == normalise_account(account), st.business_date >= since))
    wanted_set = None if refs is None else set(refs)
    wanted = sorted(wanted_set) if wanted_set is not None else []
    queries = [base] if wanted_set is None else [
        base.where(e.end_to_end_id.in_(chunk) | e.serial_no.in_(chunk) | ins.end_to_end_id.in_(chunk))
        for chunk in (wanted[i:i + 500] for i in range(0, len(wanted), 500))]
    out: dict[str, str] = {}
    for q in queries:
        for e2e, serial, ins_e2e, item_id in session.execute(q):
            for ref in (e2e, serial, ins_e2e):
                if ref and (wanted_set is None or ref in wanted_set):
                    out[ref] = item_id
    return out


def _cited_beyond(lines: Sequence[StatementEntry], items: Sequence[ExpectedItem]) -> set[str]:
    """References the lines cite that no open item carries (candidates for duplicates/returns)."""
    cited = {e.end_to_end_id for e in lines} | {e.instruction_id for e in lines} \
        | {e.mandate_or_serial for e in lines}
    cited.discard(None)
    if not cited:
        return set()
    known = {it[7] for it in items} | {it[0] for it in items} | {it[8] for it in items}
    return {r for r in cited - known if r}


_NO_BANK_REF = frozenset({"", "NOTPROVIDED", "NONREF", "NONE"})


def prior_lines(session: Session, account: str, lines: Sequence[StatementEntry]) -> dict[int, str]:
    """Lines that are bank entries already reconciled in an earlier statement of ``account``.

    A bank entry is identified by its account servicer reference (AcctSvcrRef / MT940 :61: bank
    reference) with its direction and value date; the same day delivered twice under different
    statement ids (an MT940 beside the camt.053, a re-sent file) must not match twice. Looks only at
    statements whose business date is near the lines' dates (existing indexes: statement account and
    date, match/line statement_pk). Lines without a usable bank reference cannot be recognised.
    Returns line index -> the earlier statement's key.
    """
    acct = normalise_account(account)
    if session.scalars(select(StatementRow.id).where(StatementRow.account == acct).limit(1)).first() is None:
        return {}  # the account's first statement: nothing to compare with
    wanted: dict[tuple[str, str, date], list[int]] = {}
    for i, e in enumerate(lines):
        ref, d = e.account_servicer_ref, e.value_date or e.booking_date
        if ref and ref not in _NO_BANK_REF and d is not None:
            wanted.setdefault((ref, e.credit_debit, d), []).append(i)
    if not wanted:
        return {}
    days = [k[2] for k in wanted]
    stmts = dict(session.execute(select(StatementRow.id, StatementRow.statement_key).where(
        StatementRow.account == acct,
        StatementRow.business_date >= min(days) - timedelta(days=7),
        StatementRow.business_date <= max(days) + timedelta(days=40))).all())
    out: dict[int, str] = {}
    ids = sorted(stmts)
    for table in (MatchRow, LineRow):
        for c in range(0, len(ids), 500):
            rows = session.execute(select(table.bank_ref, table.credit_debit, table.value_date,
                                          table.statement_pk).where(table.statement_pk.in_(ids[c:c + 500])))
            for ref, cd, vd, spk in rows:
                if ref is None or vd is None:
                    continue
                for i in wanted.get((ref, cd, vd if isinstance(vd, date) else date.fromisoformat(vd)), ()):
                    out.setdefault(i, stmts[spk])
    return out


# ---- the run ------------------------------------------------------------------------------

def _stored_result(session: Session, row: StatementRow) -> RunResult:
    on_day = MatchRow.statement_pk == row.id
    rules = Counter(session.scalars(select(MatchRow.rule).where(on_day)))
    codes = Counter(session.scalars(select(ExceptionRow.code).where(
        (ExceptionRow.business_date == row.business_date) & (ExceptionRow.statement_pk == row.id))))
    settled = len(set(session.scalars(
        select(MatchRow.item_id).where(on_day, MatchRow.item_kind == "clearing"))))
    return RunResult(row.statement_key, row.id, row.business_date, row.line_count, row.matched_lines,
                     sum(rules.values()), row.exception_count, settled, dict(codes), dict(rules),
                     replayed=True)


def _counterparty(e: StatementEntry) -> str | None:
    cp = e.counterparty
    if cp.name is None and cp.account is None:
        return None
    parts = [p for p in (cp.name, cp.account, cp.agent) if p]
    return " / ".join(parts) if parts else None


def run_statement(
    session: Session,
    statement: Statement,
    *,
    ledger: LedgerPort | None = None,
    config: MatchConfig | None = None,
    as_of: date | None = None,
    items: Sequence[ExpectedItem] | None = None,
    timings: dict[str, float] | None = None,
) -> RunResult:
    """Reconcile one statement inside the caller's transaction (see the module docstring).

    items: the open items to match against; default: ``open_items(...)`` from the database and the
    ledger. ledger: settles matched clearing instructions (``settle`` commands, same session).
    timings: if given, filled with seconds per stage (identity, items, match, persist).
    """
    clock = time.perf_counter
    t0 = clock()
    cfg = config or MatchConfig()
    key = statement_key(statement)
    digest = statement_digest(statement)
    existing = session.scalars(select(StatementRow).where(StatementRow.statement_key == key)).first()
    if existing is not None:
        if existing.content_sha256 != digest:
            raise StatementConflict(
                f"statement {key}: already reconciled with different content "
                f"(sha256 {existing.content_sha256[:12]}..., now {digest[:12]}...)")
        return _stored_result(session, existing)

    acct = normalise_account(statement.account)
    bdate = business_date_of(statement)
    as_of = as_of or bdate
    t1 = clock()
    if items is None:
        items = open_items(session, acct, ledger=ledger,
                           due_on_or_before=bdate + timedelta(days=cfg.window_before_days))
    prior = prior_refs(session, acct, bdate - timedelta(days=PRIOR_REF_LOOKBACK_DAYS),
                       refs=_cited_beyond(statement.entries, items))
    lines = statement.entries
    seen = prior_lines(session, acct, lines)
    t2 = clock()
    outcome = match_statement(acct, lines, items, config=cfg, as_of=as_of, prior_refs=prior, seen_lines=seen)
    t3 = clock()
    exc_items = {x.item_id for x in outcome.exceptions if x.item_id}
    obligor_of = {it.item_id: it.obligor_uscc for it in items if it.item_id in exc_items} if exc_items else {}
    # a savepoint: if anything below fails (e.g. the ledger refuses a settle), none of this
    # statement's rows stay behind even when the caller goes on with its transaction
    with session.begin_nested():
        # returns of instructions settled by an EARLIER statement: the ledger's reverse_settlement,
        # in this same transaction as the RETURN exception rows (whose detail records the outcome)
        outcome = reverse_returned_settlements(session, key, lines, outcome,
                                               {it.item_id for it in items}, business_date=bdate,
                                               ledger=ledger)
        result = persist_outcome(session, statement, outcome, key=key, digest=digest, business_date=bdate,
                                 ledger=ledger, obligor_of=obligor_of)
        mark_returns(session, key, lines, outcome, {it.item_id: it for it in items if it.kind == "clearing"},
                     business_date=bdate, ledger=ledger)
    if timings is not None:
        timings.update(identity=t1 - t0, items=t2 - t1, match=t3 - t2, persist=clock() - t3)
    return result


def persist_outcome(session: Session, statement: Statement, outcome: MatchOutcome, *, key: str, digest: str,
                    business_date: date, ledger: LedgerPort | None,
                    obligor_of: Mapping[str, str | None] | None = None) -> RunResult:
    """Write statement, lines, matches and exceptions in bulk; settle matched clearing items.

    obligor_of: item id -> obligor, for the items named by exceptions (per-obligor packages).
    """
    obligor_of = obligor_of or {}
    acct = normalise_account(statement.account)
    lines = statement.entries
    matched_idx = {t[0] for t in outcome.raw_matches}
    srow = StatementRow(statement_key=key, account=acct, currency=statement.currency,
                        statement_id=statement.statement_id, sequence=statement.sequence,
                        source_format=statement.source_format, content_sha256=digest,
                        business_date=business_date, line_count=len(lines),
                        matched_lines=len(matched_idx), exception_count=0)
    session.add(srow)
    session.flush()
    spk = srow.id

    dd = db_dates(session)
    # lines that matched nothing: their own rows (each has an exception below)
    bulk_insert(session, LineRow, (
        "statement_pk", "line_no", "amount_minor", "currency", "credit_debit", "value_date",
        "end_to_end_id", "bank_ref", "remittance_info", "counterparty"), (
        (spk, i + 1, e.amount_minor, e.currency, e.credit_debit, dd[e.value_date or e.booking_date],
         e.end_to_end_id, e.account_servicer_ref or e.entry_ref,
         e.remittance_info[:1000] if e.remittance_info else None, _counterparty(e))
        for i, e in enumerate(lines) if i not in matched_idx))

    # matched lines: one row per allocation carrying the line's facts; sorted by item id so the
    # unique index grows by appends instead of random inserts
    match_rows = []
    for li, it, rule, grp, amt in outcome.raw_matches:
        e = lines[li]
        match_rows.append((spk, li + 1, it[0], it[1], rule, grp, amt, e.credit_debit,
                           dd[e.value_date or e.booking_date], e.account_servicer_ref or e.entry_ref,
                           _counterparty(e)))
    match_rows.sort(key=itemgetter(2))
    bulk_insert(session, MatchRow, (
        "statement_pk", "line_no", "item_id", "item_kind", "rule", "group_no", "amount_minor", "credit_debit",
        "value_date", "bank_ref", "counterparty"), match_rows)
    del match_rows
    bdate = dd[business_date]

    # exceptions: natural keys make re-reports (an item still overdue next day) no-ops
    exc_rows: list[tuple[Any, ...]] = []
    for x in outcome.exceptions:
        if x.line_index is not None:
            ek = f"{x.code}|{key}#{x.line_index + 1}"
        else:
            ek = f"{x.code}|item:{x.item_id}"
        exc_rows.append((ek, x.code, spk, None if x.line_index is None else x.line_index + 1, x.item_id, acct,
                         x.amount_minor, x.currency, bdate, x.detail, obligor_of.get(x.item_id or ""),
                         "open", None))
    item_keys = [r[0] for r in exc_rows if r[3] is None]
    seen: set[str] = set()
    for i in range(0, len(item_keys), 500):
        seen.update(session.scalars(select(ExceptionRow.exc_key).where(
            ExceptionRow.exc_key.in_(item_keys[i:i + 500]))))
    exc_rows = [r for r in exc_rows if r[0] not in seen]
    bulk_insert(session, ExceptionRow, (
        "exc_key", "code", "statement_pk", "line_no", "item_id", "account", "amount_minor", "currency",
        "business_date", "detail", "obligor_uscc", "status", "resolved_on"), exc_rows)

    # items reported overdue earlier and matched now: resolve their exception
    overdue = set(session.scalars(select(ExceptionRow.item_id).where(
        ExceptionRow.account == acct, ExceptionRow.code == EXC_UNMATCHED_EXPECTED,
        ExceptionRow.status == "open")))
    now_matched = sorted(i for i in overdue & {t[1][0] for t in outcome.raw_matches} if i)
    if now_matched:
        session.execute(update(ExceptionRow).where(
            ExceptionRow.code == EXC_UNMATCHED_EXPECTED, ExceptionRow.item_id.in_(now_matched),
            ExceptionRow.status == "open").values(status="resolved", resolved_on=business_date))

    settled = settle_matches(session, key, lines, outcome, business_date=business_date, ledger=ledger)
    srow.exception_count = len(exc_rows)
    session.flush()
    return RunResult(
        key, spk, business_date, len(lines), len(matched_idx), len(outcome.raw_matches), len(exc_rows),
        settled, dict(Counter(r[1] for r in exc_rows)), dict(Counter(t[2] for t in outcome.raw_matches)))


def settle_matches(session: Session, key: str, lines: Sequence[StatementEntry], outcome: MatchOutcome, *,
                   business_date: date, ledger: LedgerPort | None) -> int:
    """One ledger ``settle`` per matched clearing instruction, in the caller's transaction."""
    first_line: dict[str, int] = {}
    items: dict[str, ExpectedItem] = {}
    for li, it, _, _, _ in outcome.raw_matches:
        if it.kind == "clearing" and it.item_id not in first_line:
            first_line[it.item_id] = li
            items[it.item_id] = it
    if not items:
        return 0
    if ledger is None:
        raise ReconError(f"statement {key}: {len(items)} clearing instruction(s) matched but no ledger "
                         "was given to settle them")
    cmds = []
    for item_id, it in items.items():
        e = lines[first_line[item_id]]
        cmds.append({
            "cmd": "settle",
            "key": "recon:" + hashlib.sha256(f"{key}|{item_id}".encode()).hexdigest()[:40],
            "instruction_id": item_id,
            "statement_ref": _ledger_text(f"{key}#{first_line[item_id] + 1}")[:200],
            "amount": to_decimal_text(it.amount_minor, it.currency),
            "currency": it.currency,
            "on": (e.value_date or e.booking_date or business_date).isoformat(),
        })
    _apply_checked(ledger, session, cmds, key)
    return len(cmds)


def _apply_checked(ledger: LedgerPort, session: Session, cmds: list[dict[str, Any]], key: str) -> None:
    """Apply ledger commands in the caller's session; any refusal aborts the whole run."""
    for cmd, res in zip(cmds, ledger.apply(cmds, session=session), strict=True):
        if not getattr(res, "ok", False):
            raise ReconError(f"statement {key}: ledger refused {cmd['cmd']} of {cmd['instruction_id']}: "
                             f"{getattr(res, 'result', '?')} {getattr(res, 'detail', '') or ''}".rstrip())


def mark_returns(session: Session, key: str, lines: Sequence[StatementEntry], outcome: MatchOutcome,
                 items: Mapping[str, ExpectedItem], *, business_date: date, ledger: LedgerPort | None) -> int:
    """Returned payments of open clearing instructions: the ledger's ``mark_returned`` command."""
    if ledger is None:
        return 0
    returned = [x for x in outcome.exceptions if x.code == EXC_RETURN and x.line_index is not None
                and x.item_id in items]
    if not returned:
        return 0
    # only instructions the ledger still has open or sent can be marked returned (a second return
    # line for an instruction already returned is reported, not re-applied)
    status = {v.instruction_id: v.status for v in ledger.open_instructions(session)}
    cmds: list[dict[str, Any]] = []
    for x in returned:
        it = items[x.item_id or ""]
        if it.kind != "clearing" or status.get(it.item_id) not in ("open", "sent") or x.line_index is None:
            continue
        status[it.item_id] = "returned"  # several return lines for one instruction: mark it once
        e = lines[x.line_index]
        cmds.append({
            "cmd": "mark_returned",
            "key": "recon:ret:" + hashlib.sha256(
                f"{key}|{x.line_index}|{it.item_id}".encode()).hexdigest()[:36],
            "instruction_id": it.item_id,
            "reason": _ledger_text(f"returned on statement {key} line {x.line_index + 1}: "
                                   f"{e.return_reason or e.bank_tx_code or 'reversal'}")[:500],
            "on": (e.value_date or e.booking_date or business_date).isoformat(),
        })
    if cmds:
        _apply_checked(ledger, session, cmds, key)
    return len(cmds)


def _settled_instructions(session: Session, refs: Iterable[str]) -> dict[str, InstructionRow]:
    """Ledger instructions with status ``settled`` whose id or EndToEndId is among ``refs``
    (keyed by each matching reference)."""
    wanted = sorted({r for r in refs if r})
    out: dict[str, InstructionRow] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        for row in session.scalars(select(InstructionRow).where(
                InstructionRow.status == "settled",
                InstructionRow.instruction_id.in_(chunk) | InstructionRow.end_to_end_id.in_(chunk))):
            out[row.instruction_id] = row
            out[row.end_to_end_id] = row
    return out


def _reverse_command(key_seed: str, ins: InstructionRow, statement_ref: str, reason: str, *, on: date,
                     amount_minor: int | None = None, currency: str | None = None) -> dict[str, Any]:
    """The ledger command; the amount is what came back (the ledger refuses a partial return)."""
    cur = currency or ins.currency
    return {
        "cmd": "reverse_settlement",
        "key": "recon:rev:" + hashlib.sha256(key_seed.encode()).hexdigest()[:36],
        "instruction_id": ins.instruction_id,
        "statement_ref": _ledger_text(statement_ref)[:200],
        "amount": to_decimal_text(ins.amount_minor if amount_minor is None else amount_minor, cur),
        "currency": cur,
        "reason": _ledger_text(reason)[:500],
        "on": on.isoformat(),
    }


def _ledger_text(text: str) -> str:
    """Bank text embedded in a ledger command's reference or reason: the ledger refuses every
    control character (a tab in a camt Id or a return reason would fail the statement), so each
    becomes a space here; the statement line itself keeps the original."""
    return FORBIDDEN.sub(" ", text)


def _reversal_note(res: Any, iid: str) -> str:
    if getattr(res, "ok", False):
        return (f"; settlement of {iid} REVERSED in the ledger (seq {res.seq}, voucher "
                f"{res.data.get('voucher_state')}): reinstruct {iid} once the payee details are confirmed")
    why = f"{getattr(res, 'result', '?')} {getattr(res, 'detail', '') or ''}".rstrip()
    return (f"; ledger REFUSED to reverse the settlement of {iid}: {why} -- the voucher still shows it "
            "paid: fix the cause, then apply reverse_settlement by hand")


def reverse_returned_settlements(session: Session, key: str, lines: Sequence[StatementEntry],
                                 outcome: MatchOutcome, open_ids: set[str], *, business_date: date,
                                 ledger: LedgerPort | None) -> MatchOutcome:
    """A return line naming a clearing instruction that an EARLIER statement settled: apply the
    ledger's ``reverse_settlement`` (in the caller's transaction) and record what happened in the
    RETURN exception's detail. Returns the outcome with those details (nothing else changes).

    Only lines whose money comes back (a credit on the payer's account, or a reversal entry) are
    reversals; a refusal (e.g. ``amount_mismatch`` for a partial return, ``quota_exceeded``) does
    not abort the run: the exception says the ledger refused and why, for a human to resolve.
    """
    if ledger is None:
        return outcome
    cands = [(n, x) for n, x in enumerate(outcome.exceptions)
             if x.code == EXC_RETURN and x.line_index is not None and x.item_id and x.item_id not in open_ids]
    if not cands:
        return outcome
    settled = _settled_instructions(session, [x.item_id or "" for _, x in cands])
    if not settled:
        return outcome
    cmds: list[dict[str, Any]] = []
    slots: list[tuple[int, str]] = []           # exception index -> instruction reversed
    notes: dict[int, str] = {}
    first: dict[str, int] = {}
    for n, x in cands:
        ins = settled.get(x.item_id or "")
        li = x.line_index
        if ins is None or li is None:
            continue
        e = lines[li]
        if e.credit_debit != "CRDT" and not e.reversal:
            notes[n] = f"; not a reversal of {ins.instruction_id} (a debit): settlement kept, investigate"
            continue
        if ins.instruction_id in first:
            notes[n] = f"; {ins.instruction_id} reversed for line {first[ins.instruction_id] + 1} already"
            continue
        first[ins.instruction_id] = li
        cmds.append(_reverse_command(
            f"{key}|{li}|{ins.instruction_id}", ins, f"{key}#{li + 1}",
            f"returned on statement {key} line {li + 1}: {e.return_reason or e.bank_tx_code or 'reversal'}",
            on=e.value_date or e.booking_date or business_date, amount_minor=e.amount_minor,
            currency=e.currency))
        slots.append((n, ins.instruction_id))
    if cmds:
        for (n, iid), res in zip(slots, ledger.apply(cmds, session=session), strict=True):
            notes[n] = _reversal_note(res, iid)
    if not notes:
        return outcome
    excs = list(outcome.exceptions)
    for n, note in notes.items():
        excs[n] = excs[n]._replace(detail=excs[n].detail + note)
    outcome.exceptions[:] = excs
    return outcome


def record_payment_statuses(session: Session, statuses: Iterable[PaymentStatus], *, business_date: date,
                            account_of: Mapping[str, str] | None = None,
                            ledger: LedgerPort | None = None) -> int:
    """pain.002 rejects (RJCT at transaction level) as RETURN exceptions; idempotent. Returns rows added.

    The item is found by the original instruction id or EndToEndId among registered items and
    matches; ``account_of`` (item id -> account) fills the account for ledger instructions.
    ledger: when given, a reject naming a clearing instruction that is already ``settled`` (a
    reject after booking) reverses that settlement (``reverse_settlement``) in this transaction,
    and the exception's detail says so (or why the ledger refused).
    """
    rows: list[tuple[Any, ...]] = []
    dd = db_dates(session)
    rejects = [st for st in statuses if st.status == "RJCT" and st.level == "transaction"]
    settled = _settled_instructions(session, [
        r for st in rejects for r in (st.original_instruction_id, st.original_end_to_end_id) if r]) \
        if ledger is not None and rejects else {}
    for st in rejects:
        ref = st.original_instruction_id or st.original_end_to_end_id or ""
        item_id = ref
        acct = (account_of or {}).get(ref)
        if acct is None:
            row = session.scalars(select(ExpectedRow).where(
                (ExpectedRow.item_id == ref) | (ExpectedRow.end_to_end_id == ref))).first()
            if row is not None:
                item_id, acct = row.item_id, row.account
        ek = f"{EXC_RETURN}|pain002:{st.original_message_id}:{ref}"
        rows.append((ek, EXC_RETURN, None, None, item_id, acct or "", st.amount_minor or 0, st.currency or "",
                     dd[business_date],
                     f"pain.002 RJCT {st.reason_code or ''} {st.reason_info or ''}".strip(),
                     None, "open", None))
    if not rows:
        return 0
    seen = set(session.scalars(select(ExceptionRow.exc_key).where(
        ExceptionRow.exc_key.in_([r[0] for r in rows]))))
    fresh = [(r, st) for r, st in zip(rows, rejects, strict=True) if r[0] not in seen]
    if ledger is not None and settled:
        cmds: list[dict[str, Any]] = []
        at: list[tuple[int, str]] = []
        done: set[str] = set()
        for n, (r, st) in enumerate(fresh):
            ins = settled.get(st.original_instruction_id or "") \
                or settled.get(st.original_end_to_end_id or "")
            if ins is None or ins.instruction_id in done:
                continue
            done.add(ins.instruction_id)
            cmds.append(_reverse_command(r[0], ins, f"pain002:{st.original_message_id}:{r[4]}",
                                         r[9], on=business_date, amount_minor=st.amount_minor,
                                         currency=st.currency))
            at.append((n, ins.instruction_id))
        for (n, iid), res in zip(at, ledger.apply(cmds, session=session), strict=True):
            r, st = fresh[n]
            ins = settled[iid]
            fresh[n] = ((*r[:4], iid, r[5] or normalise_account(ins.payer_account), r[6] or ins.amount_minor,
                         r[7] or ins.currency, r[8], r[9] + _reversal_note(res, iid),
                         r[10] or ins.obligor_uscc, *r[11:]), st)
    rows = [r for r, _ in fresh]
    return bulk_insert(session, ExceptionRow, (
        "exc_key", "code", "statement_pk", "line_no", "item_id", "account", "amount_minor", "currency",
        "business_date", "detail", "obligor_uscc", "status", "resolved_on"), rows)


def kind_of(value: str) -> ItemKind:
    if value == "clearing":
        return "clearing"
    if value == "disbursement":
        return "disbursement"
    if value == "repayment":
        return "repayment"
    raise ReconError(f"unknown expected item kind {value!r}")
