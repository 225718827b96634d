"""The ledger's working set: state rows cached in memory, loaded in bulk, written back in bulk.

Commands read and change plain Python objects here; ``flush`` writes the journal, the postings and
every new or changed state row with one ``executemany`` per table and statement. The cache may
outlive a transaction: it is keyed to the chain head (seq, hash), and because every write to the
ledger advances the head under its row lock, an unchanged head proves the cache is current.
Holds no business rules (``ledger.commands`` does) and never commits (the caller's session does).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, ClassVar

from sqlalchemy import Connection

from ledger.models import GENESIS_HASH


@dataclass(slots=True)
class Party:
    TABLE: ClassVar[str] = "ledger_parties"
    PK: ClassVar[str] = "uscc"
    uscc: str
    name: str
    roles: str


@dataclass(slots=True)
class Account:
    TABLE: ClassVar[str] = "ledger_accounts"
    PK: ClassVar[str] = "account_id"
    account_id: str
    party_uscc: str
    kind: str
    account_no: str
    cnaps: str | None
    currency: str


@dataclass(slots=True)
class Quota:
    TABLE: ClassVar[str] = "ledger_quotas"
    PK: ClassVar[str] = "obligor_uscc"
    obligor_uscc: str
    currency: str
    limit_minor: int
    reserved_minor: int


@dataclass(slots=True)
class Payable:
    TABLE: ClassVar[str] = "ledger_payables"
    PK: ClassVar[str] = "payable_id"
    payable_id: str
    obligor_uscc: str
    supplier_uscc: str
    amount_minor: int
    currency: str
    backed_minor: int
    due_date: date | None
    reference: str | None


@dataclass(slots=True)
class Voucher:
    TABLE: ClassVar[str] = "ledger_vouchers"
    PK: ClassVar[str] = "voucher_no"
    voucher_no: str
    obligor_uscc: str
    supplier_uscc: str
    face_minor: int
    currency: str
    issue_date: date
    maturity_date: date
    due_date: date
    state: str
    settled_minor: int
    next_piece: int


@dataclass(slots=True)
class Backing:
    TABLE: ClassVar[str] = "ledger_backings"
    PK: ClassVar[str] = "voucher_no"  # with payable_id; backings are only ever inserted
    voucher_no: str
    payable_id: str
    amount_minor: int


@dataclass(slots=True)
class Piece:
    TABLE: ClassVar[str] = "ledger_pieces"
    PK: ClassVar[str] = "piece_no"
    piece_no: str
    voucher_no: str
    parent_no: str | None
    holder_uscc: str
    amount_minor: int
    state: str


@dataclass(slots=True)
class Transfer:
    TABLE: ClassVar[str] = "ledger_transfers"
    PK: ClassVar[str] = "transfer_id"
    transfer_id: str
    piece_no: str
    from_uscc: str
    to_uscc: str
    amount_minor: int
    state: str
    created_on: date
    expires_on: date


@dataclass(slots=True)
class Financing:
    TABLE: ClassVar[str] = "ledger_financings"
    PK: ClassVar[str] = "financing_id"
    financing_id: str
    piece_no: str
    seller_uscc: str
    funder_uscc: str
    amount_minor: int
    rate: str
    day_count: str
    days: int
    interest_minor: int
    recourse: bool
    state: str
    registration_no: str | None
    registration_state: str
    value_date: date


@dataclass(slots=True)
class Instruction:
    TABLE: ClassVar[str] = "ledger_instructions"
    PK: ClassVar[str] = "instruction_id"
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
    message_id: str | None
    statement_ref: str | None
    return_reason: str | None


ENTITIES: tuple[type[Any], ...] = (
    Party,
    Account,
    Quota,
    Payable,
    Voucher,
    Backing,
    Piece,
    Transfer,
    Financing,
    Instruction,
)
COLUMNS: dict[type[Any], tuple[str, ...]] = {cls: tuple(f.name for f in fields(cls)) for cls in ENTITIES}


@dataclass(slots=True)
class PendingEntry:
    seq: int
    key: str
    cmd: str
    body: str
    business_date: str
    result_data: str
    prev_hash: str
    hash: str
    postings: list[tuple[str, str, int]]


class Store:
    """Cached state rows of one ledger, plus what the current batch has yet to write."""

    MAX_CACHED = 2_000_000  # rows; beyond this the cache is dropped at the next batch

    def __init__(self) -> None:
        self.head_seq = -1
        self.head_hash = ""
        self.rows: dict[type[Any], dict[str, Any]] = {cls: {} for cls in ENTITIES}
        self.accounts_by_party: dict[str, list[str]] = {}
        self.accounts_complete: set[str] = set()
        self.pieces_by_voucher: dict[str, list[str]] = {}
        self.financing_by_piece: dict[str, str] = {}  # live (non-rejected) financing per piece
        self.financings_complete: set[str] = set()  # pieces whose financings are all loaded
        self.backings_by_voucher: dict[str, list[Backing]] = {}  # vouchers issued while cached
        self.reset_batch()

    # --- batch lifecycle --------------------------------------------------------------------
    def reset_batch(self) -> None:
        self.new: dict[type[Any], dict[str, Any]] = {cls: {} for cls in ENTITIES}
        self.dirty: dict[type[Any], dict[str, Any]] = {cls: {} for cls in ENTITIES}
        self.entries: list[PendingEntry] = []
        self.keys: dict[str, tuple[str, str, str, int]] = {}  # key -> (cmd, body, result, seq)

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def size(self) -> int:
        return sum(len(v) for v in self.rows.values())

    def begin(self, conn: Connection, *, lock: bool) -> None:
        """Read (and on PostgreSQL lock) the chain head; drop the cache if anyone else wrote."""
        sql = "SELECT seq, hash FROM ledger_chain_head WHERE id = 1"
        if lock and conn.dialect.name == "postgresql":
            sql += " FOR UPDATE"
        row = conn.exec_driver_sql(sql).one()
        seq, hsh = int(row[0]), str(row[1])
        if (seq, hsh) != (self.head_seq, self.head_hash) or self.size() > self.MAX_CACHED:
            self.clear()
        self.reset_batch()
        self.head_seq, self.head_hash = seq, hsh
        self.db_head = (seq, hsh)

    # --- access -----------------------------------------------------------------------------
    def get(self, conn: Connection, cls: type[Any], pk: str) -> Any:
        cache = self.rows[cls]
        if pk in cache:
            return cache[pk]
        self.load(conn, cls, [pk])
        return cache.get(pk)

    def load(
        self, conn: Connection, cls: type[Any], pks: Iterable[str], column: str | None = None
    ) -> list[str]:
        """Bulk-load rows whose ``column`` (default the primary key) is in ``pks``; cache misses too.

        Returns the primary keys of the rows found. Rows already cached keep their cached object
        (it may carry this batch's unflushed changes).
        """
        col = column or cls.PK
        cache = self.rows[cls]
        wanted = [pk for pk in dict.fromkeys(pks) if column is not None or pk not in cache]
        cols = COLUMNS[cls]
        ph = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        found: list[str] = []
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            sql = f"SELECT {', '.join(cols)} FROM {cls.TABLE} WHERE {col} IN ({', '.join([ph] * len(chunk))})"
            for row in conn.exec_driver_sql(sql, tuple(chunk)).all():
                obj = cls(*_from_db(cls, row))
                key = getattr(obj, cls.PK)
                found.append(key)
                if cache.get(key) is None:
                    cache[key] = obj
                    self._index(obj)
            if column is None:
                for pk in chunk:
                    cache.setdefault(pk, None)
        return found

    def _index(self, obj: Any) -> None:
        if isinstance(obj, Piece):
            lst = self.pieces_by_voucher.get(obj.voucher_no)
            if lst is not None and obj.piece_no not in lst:
                lst.append(obj.piece_no)
        elif isinstance(obj, Financing):
            if obj.state != "rejected":
                self.financing_by_piece[obj.piece_no] = obj.financing_id
        elif isinstance(obj, Account):
            lst2 = self.accounts_by_party.setdefault(obj.party_uscc, [])
            if obj.account_id not in lst2:
                lst2.append(obj.account_id)

    def pieces_of(self, conn: Connection, voucher_no: str) -> list[Piece]:
        lst = self.pieces_by_voucher.get(voucher_no)
        if lst is None:
            # the database has every flushed piece; this batch's new ones are only in self.new
            lst = self.pieces_by_voucher[voucher_no] = []
            for key in self.load(conn, Piece, [voucher_no], column="voucher_no"):
                if key not in lst:
                    lst.append(key)
            for key, p in self.new[Piece].items():
                if p.voucher_no == voucher_no and key not in lst:
                    lst.append(key)
        return [self.rows[Piece][n] for n in lst]

    def accounts_of(self, conn: Connection, uscc: str) -> list[Account]:
        if uscc not in self.accounts_complete:
            self.load(conn, Account, [uscc], column="party_uscc")
            self.accounts_complete.add(uscc)
        return [self.rows[Account][a] for a in self.accounts_by_party.get(uscc, [])]

    def live_financing(self, conn: Connection, piece_no: str) -> Financing | None:
        if piece_no not in self.financings_complete:
            self.load(conn, Financing, [piece_no], column="piece_no")
            self.financings_complete.add(piece_no)
        fid = self.financing_by_piece.get(piece_no)
        return None if fid is None else self.rows[Financing][fid]

    # --- change -----------------------------------------------------------------------------
    def add(self, obj: Any) -> None:
        cls = type(obj)
        if cls is Backing:
            self.backings_by_voucher.setdefault(obj.voucher_no, []).append(obj)
            self.new[cls][obj.voucher_no + "\x00" + obj.payable_id] = obj
            return
        pk = getattr(obj, cls.PK)
        self.rows[cls][pk] = obj
        self.new[cls][pk] = obj
        if cls is Piece:
            lst = self.pieces_by_voucher.get(obj.voucher_no)
            if lst is not None:  # otherwise pieces_of loads the voucher's pieces and merges the cache
                lst.append(obj.piece_no)
            self.financings_complete.add(obj.piece_no)  # a new piece has no financing anywhere
        elif cls is Voucher:
            self.pieces_by_voucher.setdefault(obj.voucher_no, [])
        elif cls is Financing:
            self.financing_by_piece[obj.piece_no] = obj.financing_id
            self.financings_complete.add(obj.piece_no)
        elif cls is Account:
            self._index(obj)
        elif cls is Party:
            self.accounts_complete.add(obj.uscc)

    def touch(self, obj: Any) -> None:
        cls = type(obj)
        pk = getattr(obj, cls.PK)
        if pk not in self.new[cls]:
            self.dirty[cls][pk] = obj
        if cls is Financing and obj.state == "rejected" and self.financing_by_piece.get(obj.piece_no) == pk:
            del self.financing_by_piece[obj.piece_no]

    # --- write ------------------------------------------------------------------------------
    def flush(self, conn: Connection) -> None:
        """Write this batch's entries, postings and state rows; advance the chain head."""
        if not self.entries:
            return
        pg = conn.dialect.name == "postgresql"
        ph = "%s" if pg else "?"
        inserts: list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]] = [
            (
                "ledger_journal",
                ("seq", "key", "cmd", "body", "business_date", "result_data", "prev_hash", "hash"),
                [
                    (e.seq, e.key, e.cmd, e.body, e.business_date, e.result_data, e.prev_hash, e.hash)
                    for e in self.entries
                ],
            ),
            (
                "ledger_postings",
                ("entry_seq", "idx", "account", "currency", "amount_minor"),
                [(e.seq, i, a, c, m) for e in self.entries for i, (a, c, m) in enumerate(e.postings)],
            ),
        ]
        for cls in ENTITIES:
            if self.new[cls]:
                cols = COLUMNS[cls]
                inserts.append((cls.TABLE, cols, [_to_db(obj, cols, pg) for obj in self.new[cls].values()]))
        if pg:
            # COPY into the transaction's own connection: one round trip per table, all constraints checked.
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            for table, cols, rows in inserts:
                if rows:
                    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
        else:
            for table, cols, rows in inserts:
                if rows:
                    conn.exec_driver_sql(
                        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([ph] * len(cols))})",
                        rows,
                    )
        for cls in ENTITIES:
            dirty = self.dirty[cls]
            if dirty:
                cols = tuple(c for c in COLUMNS[cls] if c != cls.PK)
                sets = ", ".join(f"{c} = {ph}" for c in cols)
                conn.exec_driver_sql(
                    f"UPDATE {cls.TABLE} SET {sets} WHERE {cls.PK} = {ph}",
                    [(*_to_db(obj, cols, pg), getattr(obj, cls.PK)) for obj in dirty.values()],
                )
        last = self.entries[-1]
        conn.exec_driver_sql(
            f"UPDATE ledger_chain_head SET seq = {ph}, hash = {ph} WHERE id = 1", (last.seq, last.hash)
        )
        self.head_seq, self.head_hash = last.seq, last.hash
        self.reset_batch()


_DATE_COLS = {"due_date", "issue_date", "maturity_date", "created_on", "expires_on", "value_date"}


def _to_db(obj: Any, cols: Iterable[str], pg: bool) -> tuple[Any, ...]:
    # SQLite gets dates through the ISO adapter ledger.db registers, booleans as 0/1 (int subclass).
    return tuple(getattr(obj, c) for c in cols)


def _from_db(cls: type[Any], row: Any) -> tuple[Any, ...]:
    out: list[Any] = []
    for name, value in zip(COLUMNS[cls], row, strict=True):
        if name in _DATE_COLS and isinstance(value, str):
            out.append(date.fromisoformat(value))
        elif name == "recourse":
            out.append(bool(value))
        else:
            out.append(value)
    return tuple(out)


def genesis() -> tuple[int, str]:
    return 0, GENESIS_HASH
