"""The ledger's public face: open a ledger, apply commands in batches, verify, list clearing work.

``Ledger.apply`` runs many commands in one transaction (or inside the caller's, with ``session=``);
each command either fully succeeds (one journal entry with balanced postings, chained by hash) or
is refused with a result code and leaves nothing behind. Idempotency: the same key with the same
content gives ``exists`` and the original result; with different content ``conflict`` naming the
field. On PostgreSQL writers serialise on the chain-head row lock (``concurrency="lock"``, the
default) or run SERIALIZABLE and retry (``"serializable"``); see docs/ledger.md for the figures.
Never reads the clock for business logic and never imports connectors or mappings.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ledger.canonical import Party as CanonicalParty
from ledger.canonical import PaymentInstruction
from ledger.chain import canonical_json, entry_hash
from ledger.commands import HANDLERS, REFERENCES, CommandError, Ctx, LedgerConfig, screen_command
from ledger.db import READ_OPTIONS, make_engine, migrate
from ledger.models import InstructionRow, JournalEntry
from ledger.state import PendingEntry, Store

if TYPE_CHECKING:
    from ledger.verify import ReplayCache, StoreCheck, VerifyReport

Concurrency = Literal["lock", "serializable"]
MAX_KEY_LEN = 200
RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
# SERIALIZABLE retries: back-off doubling from RETRY_BASE up to RETRY_CAP seconds, each sleep
# drawn from [half, all] of it ("equal jitter": writers that collided once do not collide again in
# lock-step, and none retries at once); the batch is retried until RETRY_DEADLINE seconds after its
# first attempt began, and only then the caller gets ``LedgerBusy``.
RETRY_BASE = 0.002
RETRY_CAP = 0.25
RETRY_DEADLINE = 30.0


class LedgerBusy(RuntimeError):
    """A batch could not commit before its retry deadline (SERIALIZABLE mode on PostgreSQL: other
    writers kept winning the chain head). Nothing of the batch was applied. Retriable: the same
    batch may simply be applied again later (keys make it idempotent)."""

    retriable = True

    def __init__(self, attempts: int, elapsed: float, deadline: float) -> None:
        super().__init__(
            f"ledger busy: the batch hit a serialization failure on each of {attempts} attempts in "
            f"{elapsed:.1f}s (retry deadline {deadline:g}s); nothing was applied, apply it again"
        )
        self.attempts = attempts
        self.elapsed = elapsed
        self.deadline = deadline


@dataclass(frozen=True, slots=True)
class CommandResult:
    """Outcome of one command. ``result`` is "ok", "exists" or an error code; ``data`` the result data."""

    key: str | None
    result: str
    detail: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.result in ("ok", "exists")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "result": self.result}
        if self.seq is not None:
            out["seq"] = self.seq
        if self.detail is not None:
            out["detail"] = self.detail
        out["data"] = self.data
        return out


@dataclass(frozen=True, slots=True)
class ClearingInstructionView:
    """An instruction to pay a piece's holder at maturity, as the payment and recon flows see it."""

    instruction_id: str
    end_to_end_id: str
    voucher_no: str
    piece_no: str
    obligor_uscc: str
    payee_uscc: str
    payee_account: str
    payee_agent: str | None
    payer_account: str
    payer_agent: str | None
    amount_minor: int
    currency: str
    due_date: date
    status: str
    message_id: str | None = None

    def as_payment_instruction(self) -> PaymentInstruction:
        return PaymentInstruction(
            instruction_id=self.instruction_id,
            end_to_end_id=self.end_to_end_id,
            amount_minor=self.amount_minor,
            currency=self.currency,
            requested_execution_date=self.due_date,
            debtor=CanonicalParty(account=self.payer_account, agent=self.payer_agent, uscc=self.obligor_uscc),
            creditor=CanonicalParty(account=self.payee_account, agent=self.payee_agent, uscc=self.payee_uscc),
            remittance_info=f"{self.voucher_no} {self.piece_no}",
        )


class Ledger:
    """A canonical voucher ledger on one database."""

    def __init__(
        self,
        engine: Engine,
        config: LedgerConfig | None = None,
        *,
        concurrency: Concurrency = "lock",
        retry_deadline: float = RETRY_DEADLINE,
        max_retries: int | None = None,
    ) -> None:
        self.engine = engine
        self.config = config or LedgerConfig.default()
        self.concurrency = concurrency
        self.retry_deadline = retry_deadline
        self.max_retries = max_retries  # an optional cap on top of the deadline (None: none)
        self._store = Store()
        pg = engine.dialect.name == "postgresql"
        self.read_engine = engine.execution_options(**READ_OPTIONS)  # reads never take SQLite's write lock
        self._write_engine = (
            engine.execution_options(isolation_level="SERIALIZABLE")
            if pg and concurrency == "serializable"
            else engine
        )
        self.retries = 0  # serialization retries taken (for the benchmark)
        # One batch at a time per Ledger object: the working-set cache is not shared between threads
        # (writers serialise on the chain head anyway; separate processes use separate objects).
        self._mutex = threading.RLock()
        self._verify_cache: ReplayCache | None = None  # the journal replayed by the last verify

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        config: LedgerConfig | None = None,
        concurrency: Concurrency = "lock",
        migrate_schema: bool = True,
    ) -> Ledger:
        """Open the ledger at ``url`` (default: ``Settings.from_env().db_url``), migrated to head."""
        if url is None:
            from cvhub.settings import Settings

            settings = Settings.from_env()
            settings.ensure_dirs()
            url = settings.db_url
        engine = make_engine(url)
        if migrate_schema:
            migrate(engine)
        return cls(engine, config, concurrency=concurrency)

    def close(self) -> None:
        if self._verify_cache is not None:
            self._verify_cache.clear()
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A Session in its own transaction: committed on success, rolled back on error."""
        with Session(self.engine) as s, s.begin():
            yield s

    # --- commands ---------------------------------------------------------------------------
    def apply_one(self, cmd: Mapping[str, Any], *, session: Session | None = None) -> CommandResult:
        return self.apply([cmd], session=session)[0]

    def apply(
        self, commands: Iterable[Mapping[str, Any]], *, session: Session | None = None
    ) -> list[CommandResult]:
        """Apply ``commands`` in order in one transaction; one result per command."""
        cmds = list(commands)
        with self._mutex:
            return self._apply_locked(cmds, session)

    def _apply_locked(self, cmds: list[Mapping[str, Any]], session: Session | None) -> list[CommandResult]:
        if session is not None:
            try:
                return self._apply_conn(session.connection(), cmds)
            except BaseException:
                self._store.clear()
                raise
        attempt = 0
        # a duration, not business time: the deadline is measured on the monotonic clock
        started = time.monotonic()
        while True:
            try:
                with Session(self._write_engine) as s, s.begin():
                    return self._apply_conn(s.connection(), cmds)
            except Exception as e:
                self._store.clear()
                # SQLAlchemy wraps driver errors (DBAPIError.orig); COPY raises psycopg's own.
                code = getattr(e.orig if isinstance(e, DBAPIError) else e, "sqlstate", None)
                if code not in RETRY_SQLSTATES:
                    raise
                attempt += 1
                elapsed = time.monotonic() - started
                left = self.retry_deadline - elapsed
                if left <= 0 or (self.max_retries is not None and attempt > self.max_retries):
                    raise LedgerBusy(attempt, elapsed, self.retry_deadline) from e
                self.retries += 1
                step = min(RETRY_CAP, RETRY_BASE * 2 ** min(attempt - 1, 16))
                time.sleep(min(left, step / 2 + random.uniform(0, step / 2)))  # noqa: S311 - jitter only
                continue
            except BaseException:
                self._store.clear()
                raise

    def _apply_conn(self, conn: Connection, cmds: list[Mapping[str, Any]]) -> list[CommandResult]:
        store = self._store
        store.begin(conn, lock=self.concurrency == "lock")
        # Refusals that need no database come first, and nothing refused here is ever sent to the
        # database (not even in a prefetch query: a NUL in a key fails a PostgreSQL SELECT too).
        screened = [_screen(cmd) for cmd in cmds]
        self._prefetch(conn, [c for c, r in zip(cmds, screened, strict=True) if r is None])
        results = [r or self._one(conn, cmd) for cmd, r in zip(cmds, screened, strict=True)]
        try:
            store.flush(conn)
        except BaseException:
            store.clear()
            raise
        return results

    def _prefetch(self, conn: Connection, cmds: list[Mapping[str, Any]]) -> None:
        store = self._store
        keys = [c["key"] for c in cmds if isinstance(c, Mapping) and isinstance(c.get("key"), str)]
        ph = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            for row in conn.exec_driver_sql(
                f"SELECT key, cmd, body, result_data, seq FROM ledger_journal WHERE key IN "
                f"({', '.join([ph] * len(chunk))})",
                tuple(chunk),
            ).all():
                store.keys[str(row[0])] = (str(row[1]), str(row[2]), str(row[3]), int(row[4]))
        wanted: dict[type[Any], set[str]] = {}
        refs = REFERENCES
        for c in cmds:
            if not isinstance(c, Mapping):
                continue
            for name, v in c.items():
                cls = refs.get(name)
                if cls is not None and type(v) is str and v not in store.rows[cls]:
                    wanted.setdefault(cls, set()).add(v)
        for cls, ids in wanted.items():
            store.load(conn, cls, sorted(ids))

    def _one(self, conn: Connection, cmd: Mapping[str, Any]) -> CommandResult:
        """One screened command (``_screen`` passed it): idempotency, then its handler."""
        store = self._store
        key: str = cmd["key"]
        raw_name = cmd.get("cmd")
        name = raw_name if isinstance(raw_name, str) else ""
        handler = HANDLERS.get(name)
        if handler is None:
            return CommandResult(
                key, "unknown_command", f"cmd: unknown command {raw_name!r}", {"field": "cmd"}
            )
        try:
            body = canonical_json({k: v for k, v in cmd.items() if k != "key"})
        except (TypeError, ValueError) as e:
            return CommandResult(key, "malformed", f"command is not plain JSON: {e}", {"field": None})
        seen = store.keys.get(key)
        if seen is not None:
            if seen[1] == body:
                return CommandResult(key, "exists", None, json.loads(seen[2]), seen[3])
            diff = _differences(json.loads(seen[1]), json.loads(body))
            return CommandResult(
                key,
                "conflict",
                f"{diff[0]}: differs from the command first applied under this key",
                {"field": diff[0], "fields": diff},
            )
        ctx = Ctx(conn, store, self.config, cmd)
        try:
            ctx.on = ctx.req_day("on")
            data, postings = handler(ctx)
        except CommandError as e:
            return CommandResult(key, e.code, str(e), {"field": e.field})
        _check_balanced(key, postings)
        seq = store.head_seq + 1
        result_data = canonical_json(data)
        on = ctx.on.isoformat()
        h = entry_hash(store.head_hash, seq, key, name, body, on, result_data, postings)
        store.entries.append(
            PendingEntry(
                seq,
                key,
                name,
                body,
                on,
                result_data,
                store.head_hash,
                h,
                postings,
            )
        )
        store.head_seq, store.head_hash = seq, h
        store.keys[key] = (name, body, result_data, seq)
        return CommandResult(key, "ok", None, data, seq)

    # --- reads ------------------------------------------------------------------------------
    def verify(self, *, stores: Sequence[StoreCheck] = ()) -> VerifyReport:
        """Check the hash chain, the state tables against the journal replayed, every invariant and
        then ``stores`` (other parts' tables derived from the journal); the first violation.

        Keeps the replayed state between calls: the next ``verify`` replays only new entries.
        """
        from ledger.verify import ReplayCache, verify_database

        if self._verify_cache is None:
            self._verify_cache = ReplayCache()
        return verify_database(self.read_engine, config=self.config, stores=stores, cache=self._verify_cache)

    def open_instructions(
        self, session: Session | None = None, *, due_on_or_before: date | None = None
    ) -> list[ClearingInstructionView]:
        """Every unsettled clearing instruction (status open, sent or returned), by due date and id."""
        stmt = select(InstructionRow).where(InstructionRow.status.in_(("open", "sent", "returned")))
        if due_on_or_before is not None:
            stmt = stmt.where(InstructionRow.due_date <= due_on_or_before)
        stmt = stmt.order_by(InstructionRow.due_date, InstructionRow.instruction_id)

        def run(s: Session) -> list[ClearingInstructionView]:
            return [
                ClearingInstructionView(
                    instruction_id=r.instruction_id,
                    end_to_end_id=r.end_to_end_id,
                    voucher_no=r.voucher_no,
                    piece_no=r.piece_no,
                    obligor_uscc=r.obligor_uscc,
                    payee_uscc=r.payee_uscc,
                    payee_account=r.payee_account,
                    payee_agent=r.payee_agent,
                    payer_account=r.payer_account,
                    payer_agent=r.payer_agent,
                    amount_minor=r.amount_minor,
                    currency=r.currency,
                    due_date=r.due_date,
                    status=r.status,
                    message_id=r.message_id,
                )
                for r in s.scalars(stmt)
            ]

        if session is not None:
            return run(session)
        with Session(self.read_engine) as s:
            return run(s)

    def journal(self, session: Session) -> Iterator[JournalEntry]:
        yield from session.scalars(select(JournalEntry).order_by(JournalEntry.seq))


def _screen(cmd: Any) -> CommandResult | None:
    """The refusals that need no database, in order of precedence: ``malformed`` (not an object),
    ``invalid_character`` / ``too_deep`` (anywhere in it), then the key. None: go on."""
    if not isinstance(cmd, Mapping):
        return CommandResult(None, "malformed", "a command must be a JSON object", {"field": None})
    bad = screen_command(cmd)
    key = cmd.get("key")
    if bad is not None:
        # a key with a forbidden character is not echoed (a lone surrogate cannot even be printed)
        shown = key if isinstance(key, str) and bad.field != "key" else None
        return CommandResult(shown, bad.code, str(bad), {"field": bad.field})
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LEN:
        code = "missing_field" if key in (None, "") else "invalid_field"
        return CommandResult(
            key if isinstance(key, str) else None,
            code,
            f"key: a string of 1..{MAX_KEY_LEN} characters is required",
            {"field": "key"},
        )
    return None


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Top-level fields whose values differ (sorted); the first is the one a conflict names."""
    return [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)] or ["body"]


def _check_balanced(key: str, postings: list[tuple[str, str, int]]) -> None:
    totals: dict[str, int] = {}
    for _, cur, amount in postings:
        totals[cur] = totals.get(cur, 0) + amount
    bad = {c: t for c, t in totals.items() if t}
    if bad:  # a bug in a handler, never an input problem: stop the batch
        raise RuntimeError(f"command {key}: postings do not balance: {bad}")
