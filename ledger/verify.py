"""``ledger.verify``: checks the hash chain, rebuilds the state from the journal and compares it with
every stored state row, checks every invariant of SPEC §1, and reports the first violation.

Reads only, in one snapshot, in this order:

1. the hash chain over every journal entry and posting, and the chain head; a broken entry is
   diagnosed down to the column where the database allows it (see ``_diagnose``);
2. the journal's commands replayed in order into a scratch ledger (``ledger.rebuild``): every entry
   must come out the same (result data, postings, hash);
3. every column of every state table compared, row by row, with the rebuilt state; a value the
   column cannot hold (a bad date, text in an integer column...) is a violation, never a traceback;
4. the invariants, on the stored rows: what the first difference of 3 breaks is attached to it
   (``Violation.also``); on their own they guard against a rule the code itself got wrong;
5. the checks of other stores derived from the journal (recon, quarantine, registry packets,
   processed files...), handed in by the caller as ``StoreCheck``s: this package never imports
   connectors, the edge (``cvhub ledger verify``, the ``ledger_verify`` DAG) composes them.

The same chain check runs on an exported journal file offline (``verify_journal_file``), which can
also replay the journal into a scratch ledger and compare.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    String,
    Table,
)
from sqlalchemy.exc import DBAPIError

from ledger.chain import GENESIS_HASH, canonical_json, entry_hash
from ledger.command_text import loads_strict
from ledger.models import STATE_TABLES

if TYPE_CHECKING:
    from ledger.commands import LedgerConfig
    from ledger.rebuild import Replayer

LIVE = ("live", "locked")
JOURNAL_SELECT = "SELECT seq, key, cmd, body, business_date, result_data, prev_hash, hash FROM ledger_journal"
POSTINGS_SELECT = "SELECT entry_seq, idx, account, currency, amount_minor FROM ledger_postings"


@dataclass(frozen=True, slots=True)
class Violation:
    """Where verification fails: ``entry`` (journal seq, or table and key of a state row), ``field``
    (the column), what is wrong; ``also``: an invariant the difference breaks, when one does."""

    entry: str
    field: str
    message: str
    also: Violation | None = None

    def __str__(self) -> str:
        text = f"{self.entry}: {self.field}: {self.message}"
        return text if self.also is None else f"{text} (this breaks: {self.also})"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    summary: str
    first_violation: Violation | None = None
    entries: int = 0
    head_hash: str | None = None  # the last entry's full hash: keep it outside the database (anchor)


class _Found(Exception):
    def __init__(self, v: Violation) -> None:
        super().__init__(str(v))
        self.violation = v


def _fail(entry: str, fld: str, message: str) -> None:
    raise _Found(Violation(entry, fld, message))


def _failed(v: Violation) -> VerifyReport:
    return VerifyReport(False, f"FAILED {v}", v)


# --- what other stores' checks get ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalFact:
    """One verified journal entry, parsed: the command (``body``, without its key) and result data."""

    seq: int
    key: str
    cmd: str
    body: dict[str, Any]
    data: dict[str, Any]
    business_date: str


class JournalView:
    """The verified journal, read-only, for the checks of tables derived from it (``StoreCheck``).

    Reads in verify's own snapshot, up to the verified head ``head_seq``; bodies and result data are
    trusted (the hash chain over them was checked first). ``stable_seq``: the last entry journaled
    before the stores were read (``StoreCheck.read``), so a rule "this entry has its row in the
    store" holds only up to there, while "this row has its entry in the journal" holds up to the
    head. ``connection``: the snapshot itself, for stores kept in the ledger's own database (see
    ``same_database``): their rows and the journal are then read in one consistent view.
    """

    def __init__(self, conn: Connection, head_seq: int, stable_seq: int | None = None) -> None:
        self.connection = conn
        self.head_seq = head_seq
        self.stable_seq = head_seq if stable_seq is None else min(stable_seq, head_seq)

    def same_database(self, engine: Engine) -> Connection | None:
        """The snapshot connection when ``engine`` is the ledger's own database, else None."""
        mine = self.connection.engine.url
        if engine.url.render_as_string(hide_password=False) == mine.render_as_string(hide_password=False):
            return self.connection
        return None

    def facts(self, *cmds: str) -> Iterator[JournalFact]:
        """Entries of the given commands (all entries when none given), in journal order."""
        conn = self.connection
        ph = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        sql = f"SELECT seq, key, cmd, body, business_date, result_data FROM ledger_journal WHERE seq <= {ph}"
        params: list[Any] = [self.head_seq]
        if cmds:
            sql += f" AND cmd IN ({', '.join([ph] * len(cmds))})"
            params += list(cmds)
        for seq, key, cmd, body, bdate, rdata in conn.exec_driver_sql(sql + " ORDER BY seq", tuple(params)):
            yield JournalFact(
                int(seq),
                str(key),
                str(cmd),
                json.loads(body),
                json.loads(rdata),
                bdate if isinstance(bdate, str) else bdate.isoformat(),
            )


class StoreCheck:
    """A check of tables another part of cvhub keeps, derived from the journal (or from other
    recorded facts, such as the raw archive). Subclassed by each owner, composed at the edge.

    ``read()`` is called before verify takes its snapshot of the ledger (load a store kept in
    another database here); ``check(journal)`` after the ledger verified, yielding violations in
    order (the first is reported). Neither may raise on a damaged store: verify reports it if one
    does, naming the check. ``summary`` (after ``check``): what was checked, for the report.
    """

    name = "store"

    def read(self) -> None:
        """Load what the check needs from its own store (nothing by default)."""

    def check(self, journal: JournalView) -> Iterable[Violation]:
        raise NotImplementedError

    @property
    def summary(self) -> str:
        return self.name


# --- values as the columns must hold them ------------------------------------------------------


class Unparsable(ValueError):
    """A stored value its column cannot hold (the message says what is wrong with it)."""


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def canonical_value(col: Column[Any], value: Any) -> Any:
    """The value in the form SQLite stores it (dates as ISO text, booleans 0/1), checked against the
    column's type, length and nullability; ``Unparsable`` when the column cannot hold it."""
    if value is None:
        if col.nullable:
            return None
        raise Unparsable("NULL in a NOT NULL column")
    t = col.type
    if isinstance(t, Boolean):
        if value is True or value is False:
            return int(value)
        if type(value) is int and value in (0, 1):
            return value
        raise Unparsable("not a boolean (0 or 1)")
    if isinstance(t, Integer):
        if type(value) is int:
            return value
        raise Unparsable("not an integer")
    if isinstance(t, DateTime):
        if isinstance(value, datetime):
            return value.isoformat(sep=" ")
        if type(value) is str:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise Unparsable("not a timestamp") from None
            return value
        raise Unparsable("not a timestamp")
    if isinstance(t, Date):
        if isinstance(value, date):
            return value.isoformat()
        if type(value) is str and _ISO_DATE.fullmatch(value):
            try:
                date.fromisoformat(value)
            except ValueError:
                raise Unparsable("not a valid date") from None
            return value
        raise Unparsable("not an ISO date (YYYY-MM-DD)")
    if isinstance(t, LargeBinary):
        if isinstance(value, (bytes, memoryview)):
            return bytes(value)
        raise Unparsable("not bytes")
    if isinstance(t, String):
        if type(value) is not str:
            raise Unparsable("not text")
        if t.length is not None and len(value) > t.length:
            raise Unparsable(f"longer than the column's {t.length} characters")
        return value
    return value


def _typed_converter(table: Table) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """Stored row -> canonical row for a driver that returns typed values (PostgreSQL)."""
    conv: list[Callable[[Any], Any] | None] = []
    for c in table.columns:
        if isinstance(c.type, Boolean):
            conv.append(lambda v: v if v is None else int(v))
        elif isinstance(c.type, DateTime):
            conv.append(lambda v: v if not isinstance(v, datetime) else v.isoformat(sep=" "))
        elif isinstance(c.type, Date):
            conv.append(lambda v: v if not isinstance(v, date) else v.isoformat())
        elif isinstance(c.type, LargeBinary):
            conv.append(lambda v: v if not isinstance(v, memoryview) else bytes(v))
        else:
            conv.append(None)
    if all(f is None for f in conv):
        return tuple

    def convert(row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(v if f is None else f(v) for f, v in zip(conv, row, strict=True))

    return convert


def key_text(table: Table, key: Sequence[Any]) -> str:
    """``<table> <pk>=<value> ...``: how a violation names a row."""
    names = [c.name for c in table.primary_key.columns]
    return f"{table.name} " + " ".join(f"{n}={v}" for n, v in zip(names, key, strict=True))


def compare_rows(
    table: Table,
    stored: Iterable[Sequence[Any]],
    expected: dict[tuple[Any, ...], tuple[Any, ...]],
    *,
    typed: bool,
    source: str,
) -> Violation | None:
    """The first difference between the ``stored`` rows (every column of ``table``, in its column
    order, raw from the driver) and the ``expected`` canonical rows (keyed by primary key): an
    unparsable value, a differing column, a row on one side only. ``expected`` is consumed.

    ``typed``: the driver returns dates and booleans as Python objects (PostgreSQL).
    ``source``: what the expected rows come from, for the messages ("the journal").
    """
    cols = list(table.columns)
    pk = [i for i, c in enumerate(cols) if c.primary_key]
    pk_names = [cols[i].name for i in pk]
    convert = _typed_converter(table) if typed else tuple
    extra: tuple[Any, ...] | None = None
    for raw in stored:
        row = convert(raw)
        key = tuple(row[i] for i in pk)
        try:
            exp = expected.pop(key, None)
        except TypeError:  # an unhashable key value: reported as unparsable below
            exp = None
        if exp is not None and row == exp:
            continue
        where = key_text(table, key)
        values = []
        for c, v in zip(cols, row, strict=True):
            try:
                values.append(canonical_value(c, v))
            except Unparsable as e:
                return Violation(where, c.name, f"unparsable value {v!r}: {e}")
        if exp is None:
            if extra is None:
                extra = tuple(values)
            continue
        if extra is not None:
            break
        for c, v, w in zip(cols, values, exp, strict=True):
            if v != w:
                return Violation(where, c.name, f"stored {v!r}, {source} gives {w!r}")
    if extra is not None:
        key = tuple(extra[i] for i in pk)
        where = key_text(table, key)
        # a changed key: a missing row that differs from this one in one key column only
        for other in sorted(expected, key=repr):
            differ = [n for n, a, b in zip(pk_names, key, other, strict=True) if a != b]
            if len(differ) == 1:
                return Violation(
                    where,
                    differ[0],
                    f"no such row in {source}, which has {key_text(table, other)} instead (a changed key)",
                )
        return Violation(where, ",".join(pk_names), f"no such row in {source}")
    if expected:
        key = min(expected, key=repr)
        return Violation(key_text(table, key), ",".join(pk_names), f"missing: {source} has this row")
    return None


def raw_rows(conn: Connection, sql: str, *, name: str | None = None) -> Generator[tuple[Any, ...]]:
    """Rows of ``sql`` as plain tuples straight from the DBAPI cursor, in ``conn``'s transaction
    (which must have begun), fetched in chunks; ``name``: a server-side cursor on PostgreSQL (the
    rows are streamed, not held in memory)."""
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    pg = conn.dialect.name == "postgresql"
    cur = dbapi.cursor(name=name) if pg and name else dbapi.cursor()
    try:
        cur.execute(sql)
        while True:
            chunk = cur.fetchmany(5000)
            if not chunk:
                return
            yield from chunk
    finally:
        cur.close()


def table_rows(conn: Connection, table: Table, where: str = "") -> Iterator[Sequence[Any]]:
    """Every row of ``table``, every column in its order, by primary key (raw driver values)."""
    cols = ", ".join(c.name for c in table.columns)
    order = ", ".join(c.name for c in table.primary_key.columns)
    return raw_rows(conn, f"SELECT {cols} FROM {table.name} {where} ORDER BY {order}")


def read_store_table(url: str, table: Table) -> list[tuple[Any, ...]] | None:
    """Every row of ``table`` (by primary key) in the database at ``url``, or None when that database
    or table does not exist: a check reads a store without ever creating it."""
    from sqlalchemy import create_engine, inspect

    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if not path or path == ":memory:" or not Path(path).is_file():
            return None
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(table.name):
                return None
            return [tuple(r) for r in table_rows(conn, table)]
    finally:
        engine.dispose()


# --- hash chain ---------------------------------------------------------------------------------


class _Break(Exception):
    """Entry ``row``'s content does not hash to its stored hash (or its postings are misnumbered)."""

    def __init__(self, row: Sequence[Any], legs: list[tuple[int, str, str, int]], recomputed: str) -> None:
        super().__init__(f"journal seq {row[0]}")
        self.row = row
        self.legs = legs
        self.recomputed = recomputed


def _text_fields(row: Sequence[Any]) -> None:
    """Journal columns that are text must be text (the hash would mismatch; say which and why)."""
    for name, v in zip(
        ("key", "cmd", "body", "result_data", "prev_hash", "hash"), (*row[1:4], *row[5:]), strict=True
    ):
        if type(v) is not str:
            _fail(f"journal seq {row[0]}", name, f"unparsable value {v!r}: not text")


def _date_text(v: Any) -> str | None:
    if isinstance(v, date):
        return v.isoformat()
    if type(v) is str and _ISO_DATE.fullmatch(v):
        try:
            date.fromisoformat(v)
        except ValueError:
            return None
        return v
    return None


def _next_posting(postings: Iterator[Sequence[Any]]) -> tuple[int, int, str, str, int] | None:
    p = next(postings, None)
    if p is None:
        return None
    e, i, a, c, m = p
    if type(e) is int and type(i) is int and type(a) is str and type(c) is str and type(m) is int:
        return e, i, a, c, m
    where = f"ledger_postings entry_seq={e} idx={i}"
    for name, v, kind in zip(
        ("entry_seq", "idx", "account", "currency", "amount_minor"), p, (int, int, str, str, int), strict=True
    ):
        if type(v) is not kind:
            _fail(where, name, f"unparsable value {v!r}: not {'an integer' if kind is int else 'text'}")
    raise AssertionError("unreachable")


def _walk_chain(
    entries: Iterable[Sequence[Any]], postings: Iterator[Sequence[Any]]
) -> Iterator[tuple[Sequence[Any], list[tuple[str, str, int]]]]:
    """Yield each entry (seq, key, cmd, body, business_date, result_data, prev_hash, hash), in seq
    order, with its postings once its place in the chain is proven; postings come as (entry_seq,
    idx, account, currency, amount) in (entry_seq, idx) order. Raises ``_Found`` on a break it can
    name outright, ``_Break`` when the entry's content does not hash to its stored hash.
    """
    prev, expected_seq = GENESIS_HASH, 1
    dates: dict[
        Any, tuple[str, bool]
    ] = {}  # business date -> its hashed text (few distinct dates, many entries)
    nxt = _next_posting(postings)
    for row in entries:
        seq = row[0]
        if type(seq) is not int:
            _fail(f"journal seq {expected_seq}", "seq", f"unparsable value {seq!r}: not an integer")
        if seq != expected_seq:
            _fail(
                f"journal seq {expected_seq}",
                "seq",
                f"no entry {expected_seq}: the next one is numbered {seq} (entries missing, renumbered "
                "or reordered)",
            )
        _, key, cmd, body, bdate, rdata, prev_hash, stored = row
        if not (
            type(key) is str
            and type(cmd) is str
            and type(body) is str
            and type(rdata) is str
            and type(prev_hash) is str
            and type(stored) is str
        ):
            _text_fields(row)
        if prev_hash != prev:
            _fail(f"journal seq {seq}", "prev_hash", "does not equal the previous entry's hash")
        legs: list[tuple[int, str, str, int]] = []
        while nxt is not None and nxt[0] < seq:
            _fail(f"journal seq {nxt[0]}", "ledger_postings.entry_seq", "posting without a journal entry")
        while nxt is not None and nxt[0] == seq:
            legs.append(nxt[1:])
            nxt = _next_posting(postings)
        try:
            bd, valid = dates[bdate]
        except (KeyError, TypeError):
            text = _date_text(bdate)
            bd, valid = (text, True) if text is not None else (repr(bdate), False)
            with suppress(TypeError):
                dates[bdate] = bd, valid
        plain = [leg[1:] for leg in legs]
        h = entry_hash(prev, seq, key, cmd, body, bd, rdata, plain)
        numbered = all(leg[0] == i for i, leg in enumerate(legs))
        if h != stored:
            raise _Break(row, legs, h)
        where = f"journal seq {seq}"
        if not valid:  # hashes although unparsable: the ledger never writes that
            _fail(where, "business_date", f"unparsable value {bdate!r}: not an ISO date")
        if not numbered:
            bad = next(leg[0] for i, leg in enumerate(legs) if leg[0] != i)
            _fail(
                where,
                "ledger_postings.idx",
                f"postings numbered {[leg[0] for leg in legs]}, not 0..{len(legs) - 1} (idx {bad})",
            )
        totals: dict[str, int] = defaultdict(int)
        for _, cur, amt in plain:
            totals[cur] += amt
        for cur, t in totals.items():
            if t:
                _fail(where, "ledger_postings.amount_minor", f"{cur} postings do not balance (sum {t})")
        yield row, plain
        prev, expected_seq = stored, seq + 1
    if nxt is not None:
        _fail(f"journal seq {nxt[0]}", "ledger_postings.entry_seq", "posting without a journal entry")


def check_chain(entries: Iterable[Sequence[Any]], postings: Iterator[Sequence[Any]]) -> tuple[int, str]:
    """Walk entries (seq, key, cmd, body, business_date, result_data, prev_hash, hash) in seq order
    with postings (entry_seq, idx, account, currency, amount) in (entry_seq, idx) order.

    Returns (last seq, last hash); raises on the first break (without the database, an entry whose
    content changed is named with the field ``hash``).
    """
    last: tuple[int, str] = (0, GENESIS_HASH)
    try:
        for row, _ in _walk_chain(entries, postings):
            last = (int(row[0]), str(row[7]))
    except _Break as b:
        _fail(
            f"journal seq {b.row[0]}",
            "hash",
            "does not match the entry's content (key, cmd, body, business_date, result_data or "
            "postings were changed)",
        )
    return last


def _diagnose(
    row: Sequence[Any],
    legs: list[tuple[int, str, str, int]],
    recomputed: str,
    next_link: str | None,
    replayer: Replayer,
) -> Violation:
    """Which column of an entry whose content does not hash to its stored hash was changed.

    The stored hash is the witness: a candidate original value that makes the content hash to it
    again proves which column changed. ``next_link``: the next entry's ``prev_hash`` (or the chain
    head's hash for the last entry). ``replayer`` holds the state of the entries before this one.
    """
    seq, key, cmd, body, bdate, rdata, prev_hash, stored = row
    where = f"journal seq {seq}"
    plain = [leg[1:] for leg in legs]
    if next_link is not None and next_link == recomputed:
        return Violation(
            where,
            "hash",
            f"the stored hash was changed: the entry's content hashes to {recomputed[:16]}..., which "
            "the next entry (or the chain head) links to",
        )

    def rehash(**kw: Any) -> bool:
        f = {"key": key, "cmd": cmd, "body": body, "bd": bdate, "rdata": rdata, "legs": plain, **kw}
        bd = f["bd"] if type(f["bd"]) is str else _date_text(f["bd"]) or repr(f["bd"])
        return bool(
            entry_hash(prev_hash, seq, f["key"], f["cmd"], f["body"], bd, f["rdata"], f["legs"]) == stored
        )

    try:
        b = json.loads(body)
    except ValueError:
        b = None
    if isinstance(b, dict):
        on, name = b.get("on"), b.get("cmd")
        if isinstance(on, str) and on != bdate and rehash(bd=on):
            return Violation(
                where,
                "business_date",
                f"stored {bdate!r}, the entry's command says {on!r} (its hash confirms the command)",
            )
        if isinstance(name, str) and name != cmd and rehash(cmd=name):
            return Violation(
                where,
                "cmd",
                f"stored {cmd!r}, the entry's command says {name!r} (its hash confirms the command)",
            )
        t = replayer.trial(row)
        if t.result == "ok":
            if t.result_data != rdata and rehash(rdata=t.result_data):
                return Violation(
                    where,
                    "result_data",
                    f"stored {rdata}, the command gives {t.result_data} "
                    "(the entry's hash confirms the command's)",
                )
            if (t.postings != plain or not all(leg[0] == i for i, leg in enumerate(legs))) and rehash(
                legs=t.postings
            ):
                fld, msg = _posting_difference(legs, t.postings)
                return Violation(where, fld, msg + " (the entry's hash confirms the command's)")
        if canonical_json(b) != body:
            return Violation(where, "body", "not the canonical JSON the ledger writes: the body was changed")
    else:
        return Violation(where, "body", "not a JSON command object: the body was changed")
    return Violation(
        where,
        "key or body",
        "the entry's key or body was changed: its content no longer hashes to its stored hash, while its "
        "cmd, business date, result data and postings are what its command gives (the hash covers key "
        "and body alike: the database cannot tell which of the two)",
    )


def _posting_difference(
    legs: list[tuple[int, str, str, int]], want: list[tuple[str, str, int]]
) -> tuple[str, str]:
    if len(legs) != len(want):
        return (
            "ledger_postings.entry_seq",
            f"the entry has {len(legs)} postings, its command gives {len(want)} (a posting moved to or "
            "from another entry, or deleted)",
        )
    idxs = [leg[0] for leg in legs]
    if idxs != list(range(len(legs))):
        return "ledger_postings.idx", f"postings numbered {idxs}, not 0..{len(legs) - 1}"
    for (i, *got), exp in zip(legs, want, strict=True):
        for name, a, b in zip(("account", "currency", "amount_minor"), got, exp, strict=True):
            if a != b:
                return f"ledger_postings.{name}", f"posting idx {i}: stored {a!r}, the command gives {b!r}"
    return "ledger_postings", "the postings differ from the command's"


# --- database -----------------------------------------------------------------------------------


class ReplayCache:
    """Keeps the scratch ledger of the last verification (``Ledger.verify``): the next one replays
    only the entries appended since, once the stored journal shows the same hash at its seq."""

    def __init__(self) -> None:
        self.replayer: Replayer | None = None
        self.lock = threading.Lock()

    def clear(self) -> None:
        if self.replayer is not None:
            self.replayer.close()
        self.replayer = None


def verify_database(
    engine: Engine,
    *,
    config: LedgerConfig | None = None,
    stores: Sequence[StoreCheck] = (),
    cache: ReplayCache | None = None,
) -> VerifyReport:
    """Verify the ledger in ``engine`` (see the module docstring); ``config``: the ledger's rules
    (default ``LedgerConfig.default()``), which the replay must share; ``stores``: further checks
    over the verified journal; ``cache``: keep the replayed state for the next call."""
    if cache is None:
        return _verify_database(engine, config, stores, ReplayCache(), keep=False)
    with cache.lock:
        return _verify_database(engine, config, stores, cache, keep=True)


def _verify_database(
    engine: Engine,
    config: LedgerConfig | None,
    stores: Sequence[StoreCheck],
    cache: ReplayCache,
    *,
    keep: bool,
) -> VerifyReport:
    from ledger.rebuild import Replayer

    try:
        stable_seq: int | None = None
        unread: dict[str, str] = {}
        if stores:
            with engine.connect() as before:  # the head before the stores are read (JournalView.stable_seq)
                head = before.exec_driver_sql("SELECT seq FROM ledger_chain_head").first()
                stable_seq = int(head[0]) if head is not None and type(head[0]) is int else 0
            for store in stores:
                try:
                    store.read()
                except Exception as e:  # a store that cannot even be read is a finding, not a traceback
                    unread[store.name] = f"{type(e).__name__}: {e}"
        with engine.connect() as plain:
            conn = plain
            if conn.dialect.name == "postgresql":  # one snapshot for every read below
                conn = plain.execution_options(isolation_level="REPEATABLE READ")
            try:
                last_seq, last_hash, rows = _verify_ledger(conn, config, cache, Replayer)
                view = JournalView(conn, last_seq, stable_seq)
                checked = []
                for store in stores:
                    if store.name in unread:
                        _fail(store.name, "store", f"cannot be read: {unread[store.name]}")
                    try:
                        for v in store.check(view):
                            raise _Found(v)
                    except _Found:
                        raise
                    except Exception as e:  # nor one whose rows defeat the check's own reading
                        _fail(store.name, "store", f"cannot be checked: {type(e).__name__}: {e}")
                    checked.append(store.summary)
            except _Found as f:
                return _failed(f.violation)
            finally:
                if not keep:
                    cache.clear()
    except DBAPIError as e:
        return _failed(Violation("database", "tables", f"cannot read the ledger: {e.orig}"))
    also = f"; also checked: {'; '.join(checked)}" if checked else ""
    return VerifyReport(
        True,
        f"ok: {last_seq} entries, hash chain intact, the state tables ({rows} rows) are the journal "
        f"replayed, every invariant holds{also} (head {last_hash})",
        None,
        last_seq,
        last_hash,
    )


def _verify_ledger(
    conn: Connection,
    config: LedgerConfig | None,
    cache: ReplayCache,
    make: Callable[[LedgerConfig | None], Replayer],
) -> tuple[int, str, int]:
    def q(sql: str) -> list[Any]:
        return list(conn.exec_driver_sql(sql).all())

    q("SELECT 1")  # begins the snapshot every read below shares (raw cursors included)
    rep = cache.replayer
    if rep is not None and (
        rep.broken
        or (
            rep.seq and q(f"SELECT hash FROM ledger_journal WHERE seq = {int(rep.seq)}") != [(rep.head_hash,)]
        )
    ):
        cache.clear()
        rep = None
    if rep is None:
        rep = cache.replayer = make(config)
    entries = raw_rows(conn, JOURNAL_SELECT + " ORDER BY seq", name="cvhub_verify_journal")
    postings = raw_rows(conn, POSTINGS_SELECT + " ORDER BY entry_seq, idx", name="cvhub_verify_postings")
    from ledger.rebuild import BATCH

    buf: list[Sequence[Any]] = []

    def advance(rep: Replayer) -> None:
        if buf:
            d = rep.advance(buf)
            buf.clear()
            if d is not None:
                cache.clear()
                _fail(f"journal seq {d.seq}", d.field, d.message)

    last_seq, last_hash = 0, GENESIS_HASH
    try:
        for row, _ in _walk_chain(entries, postings):
            last_seq, last_hash = int(row[0]), str(row[7])
            if last_seq > rep.seq + len(buf):
                buf.append(tuple(row))
                if len(buf) >= BATCH:
                    advance(rep)
    except _Break as b:
        seq = int(b.row[0])
        entries.close()
        postings.close()
        if rep.seq + len(buf) == seq - 1:
            advance(rep)
        else:  # the cached state is past the broken entry: rebuild up to it
            buf.clear()
            cache.clear()
            rep = cache.replayer = make(config)
            buf.extend(
                tuple(r) for r in conn.exec_driver_sql(JOURNAL_SELECT + f" WHERE seq < {seq} ORDER BY seq")
            )
            advance(rep)
        link = q(f"SELECT prev_hash FROM ledger_journal WHERE seq = {seq + 1}") or q(
            "SELECT hash FROM ledger_chain_head WHERE id = 1"
        )
        raise _Found(_diagnose(b.row, b.legs, b.recomputed, str(link[0][0]) if link else None, rep)) from None
    advance(rep)
    heads = q("SELECT id, seq, hash FROM ledger_chain_head")
    if len(heads) != 1 or heads[0][0] != 1:
        _fail(
            "ledger_chain_head",
            "id",
            f"{len(heads)} rows, ids {[h[0] for h in heads]}: must be one row, id 1",
        )
    if heads[0][1] != last_seq:
        _fail("ledger_chain_head", "seq", f"head says seq {heads[0][1]!r}, the last entry is {last_seq}")
    if heads[0][2] != last_hash:
        _fail("ledger_chain_head", "hash", f"does not equal the last entry's hash (seq {last_seq})")
    diff, rows = _compare_state(conn, rep)
    if diff is not None:
        if not diff.message.startswith("unparsable"):
            # rows damaged past an invariant's own reading: the difference alone says what is wrong
            with suppress(Exception):
                diff = replace(diff, also=_invariants(q))
        raise _Found(diff)
    try:
        inv = _invariants(q)
    except Exception as e:
        inv = Violation("ledger state", "invariants", f"cannot be evaluated: {type(e).__name__}: {e}")
    if inv is not None:
        raise _Found(inv)
    return last_seq, last_hash, rows


def _compare_state(conn: Connection, rep: Replayer) -> tuple[Violation | None, int]:
    """Every column of every state table against the replayed state; the first difference."""
    typed = conn.dialect.name != "sqlite"
    total = 0
    with rep.engine.connect() as scratch:
        for model in STATE_TABLES:
            table = cast(Table, model.__table__)
            pk = [i for i, c in enumerate(table.columns) if c.primary_key]
            expected = {tuple(r[i] for i in pk): tuple(r) for r in table_rows(scratch, table)}
            total += len(expected)
            diff = compare_rows(table, table_rows(conn, table), expected, typed=typed, source="the journal")
            if diff is not None:
                return diff, total
    return None, total


def _invariants(q: Callable[[str], list[Any]]) -> Violation | None:
    try:
        _check_state(q)
        _check_instruction_accounts(q)
    except _Found as f:
        return f.violation
    return None


def _check_state(q: Any) -> None:
    bal: dict[tuple[str, str], int] = {}
    for acct, cur, total in q(
        "SELECT account, currency, SUM(amount_minor) FROM ledger_postings GROUP BY account, currency"
    ):
        bal[(str(acct), str(cur))] = int(total)
    expect: dict[tuple[str, str], int] = defaultdict(int)

    vouchers = {
        r[0]: r
        for r in q(
            "SELECT voucher_no, obligor_uscc, supplier_uscc, face_minor, currency, "
            "state, settled_minor FROM ledger_vouchers ORDER BY voucher_no"
        )
    }
    pieces = {
        r[0]: r
        for r in q(
            "SELECT piece_no, voucher_no, parent_no, holder_uscc, amount_minor, state "
            "FROM ledger_pieces ORDER BY piece_no"
        )
    }
    children: dict[str, list[Any]] = defaultdict(list)
    by_voucher: dict[str, list[Any]] = defaultdict(list)
    for p in pieces.values():
        by_voucher[p[1]].append(p)
        if p[2] is not None:
            children[p[2]].append(p)
    transfers = q(
        "SELECT transfer_id, piece_no, from_uscc, to_uscc, amount_minor, state FROM ledger_transfers"
    )
    accepted_per_piece: dict[str, list[Any]] = defaultdict(list)
    for t in transfers:
        if t[5] == "accepted":
            accepted_per_piece[t[1]].append(t)
    # conservation, single holder, no piece consumed twice
    for vno, v in vouchers.items():
        _, obligor, _supplier, face, cur, state, settled = v
        ps = by_voucher.get(vno, [])
        where = f"voucher {vno}"
        if state in ("rejected", "revoked"):
            if any(p[5] != "void" for p in ps):
                _fail(where, "ledger_pieces.state", f"{state} voucher has a piece that is not void")
            continue
        standing = sum(p[4] for p in ps if p[5] not in ("consumed", "void"))
        if standing != face:
            _fail(
                where, "ledger_pieces.amount_minor", f"live pieces + cleared = {standing}, face amount {face}"
            )
        cleared = sum(p[4] for p in ps if p[5] == "settled")
        if cleared != settled:
            _fail(
                where, "ledger_vouchers.settled_minor", f"settled pieces {cleared} != settled_minor {settled}"
            )
        if state == "settled" and settled != face:
            _fail(where, "ledger_vouchers.state", "settled while pieces remain unsettled")
        expect[(f"obligation:{obligor}", cur)] -= face - settled
        for p in ps:
            pno, _, parent, holder, amount, pstate = p
            if amount <= 0:
                _fail(f"piece {pno}", "amount_minor", "not positive")
            if pstate in LIVE:
                expect[(f"held:{holder}", cur)] += amount
            elif pstate == "clearing":
                expect[(f"clearing:{holder}", cur)] += amount
            elif pstate == "offered":
                expect[(f"offered:{holder}", cur)] += amount
            if pstate == "consumed":
                kids = children.get(pno, [])
                if sum(k[4] for k in kids) != amount:
                    _fail(f"piece {pno}", "ledger_pieces.amount_minor", "children do not add up to the piece")
                acc = accepted_per_piece.get(pno, [])
                if len(acc) != 1:
                    _fail(
                        f"piece {pno}",
                        "ledger_transfers.state",
                        f"consumed by {len(acc)} accepted transfers (must be exactly one)",
                    )
                if not any(k[4] == acc[0][4] for k in kids):
                    _fail(
                        f"piece {pno}",
                        "ledger_pieces.amount_minor",
                        "no child carries the transferred amount",
                    )
            elif pno in accepted_per_piece:
                _fail(f"piece {pno}", "ledger_pieces.state", "transferred but not consumed")
            if parent is not None and pieces.get(parent, (None,) * 6)[5] != "consumed":
                _fail(f"piece {pno}", "ledger_pieces.parent_no", "parent piece is not consumed")
    for t in transfers:
        if t[5] == "pending":
            cur = vouchers[pieces[t[1]][1]][4]
            expect[(f"transfer_pending:{t[3]}", cur)] += t[4]
            expect[(f"transfer_offered:{t[2]}", cur)] -= t[4]
            if pieces[t[1]][5] != "locked":
                _fail(
                    f"transfer {t[0]}",
                    "ledger_pieces.state",
                    "pending transfer on a piece that is not locked",
                )
    # payables: backing never exceeded
    backed: dict[str, int] = defaultdict(int)
    for vno, pid, amt in q("SELECT voucher_no, payable_id, amount_minor FROM ledger_backings"):
        if vouchers[vno][5] not in ("rejected", "revoked"):
            backed[pid] += amt
    for pid, amount, backed_minor in q(
        "SELECT payable_id, amount_minor, backed_minor FROM ledger_payables ORDER BY payable_id"
    ):
        if backed.get(pid, 0) != backed_minor:
            _fail(
                f"payable {pid}",
                "ledger_payables.backed_minor",
                f"{backed_minor} != backings {backed.get(pid, 0)}",
            )
        if backed_minor > amount:
            _fail(f"payable {pid}", "ledger_payables.backed_minor", f"backs {backed_minor} > amount {amount}")
    # quota never exceeded, reservations = outstanding vouchers
    outstanding: dict[str, int] = defaultdict(int)
    for v in vouchers.values():
        if v[5] not in ("rejected", "revoked"):
            outstanding[v[1]] += v[3] - v[6]
    for obligor, cur, limit, reserved in q(
        "SELECT obligor_uscc, currency, limit_minor, reserved_minor FROM ledger_quotas"
    ):
        where = f"quota {obligor}"
        if reserved != outstanding.get(obligor, 0):
            _fail(
                where,
                "ledger_quotas.reserved_minor",
                f"{reserved} != outstanding vouchers {outstanding.get(obligor, 0)}",
            )
        if reserved > limit:
            _fail(where, "ledger_quotas.reserved_minor", f"reserved {reserved} exceeds limit {limit}")
        expect[(f"quota_reserved:{obligor}", cur)] += reserved
        expect[(f"quota_free:{obligor}", cur)] += limit - reserved
        expect[(f"quota_line:{obligor}", cur)] -= limit
    # financing: at most one per piece, none disbursed without a registration
    live_fin: dict[str, str] = {}
    for fid, pno, seller, funder, amt, state, reg in q(
        "SELECT financing_id, piece_no, seller_uscc, funder_uscc, amount_minor, state, registration_no "
        "FROM ledger_financings ORDER BY financing_id"
    ):
        if state != "rejected":
            if pno in live_fin:
                _fail(f"financing {fid}", "piece_no", f"piece {pno} already financed by {live_fin[pno]}")
            live_fin[pno] = fid
        if state in ("disbursed", "repurchased") and not reg:
            _fail(f"financing {fid}", "registration_no", "disbursed without a registry registration")
        if state == "pending":
            cur = vouchers[pieces[pno][1]][4]
            expect[(f"financing_pending:{funder}", cur)] += amt
            expect[(f"financing_offered:{seller}", cur)] -= amt
    # settled vouchers: every instruction matched to a statement line; one payable instruction per
    # piece in clearing, paying its holder its amount
    unsettled_per_piece: dict[str, str] = {}
    for iid, vno, pno, status, ref, amt, payee in q(
        "SELECT instruction_id, voucher_no, piece_no, status, statement_ref, "
        "amount_minor, payee_uscc FROM ledger_instructions ORDER BY instruction_id"
    ):
        if status in ("open", "sent", "returned"):
            if pno in unsettled_per_piece:
                _fail(f"instruction {iid}", "piece_no", f"piece {pno} also in {unsettled_per_piece[pno]}")
            unsettled_per_piece[pno] = iid
            if pieces[pno][5] != "clearing":
                _fail(f"instruction {iid}", "status", f"{status}, but piece {pno} is {pieces[pno][5]}")
            if payee != pieces[pno][3]:
                _fail(f"instruction {iid}", "payee_uscc", f"does not pay piece {pno}'s holder")
            if amt != pieces[pno][4]:
                _fail(f"instruction {iid}", "amount_minor", f"is not piece {pno}'s amount")
        if status == "settled" and not ref:
            _fail(f"instruction {iid}", "statement_ref", "settled without a statement reference")
        if vouchers[vno][5] == "settled" and status not in ("settled", "superseded"):
            _fail(f"instruction {iid}", "status", f"voucher {vno} settled but instruction is {status}")
        if status == "settled" and pieces[pno][5] != "settled":
            _fail(f"instruction {iid}", "ledger_pieces.state", "instruction settled, piece not")
    for pno, p in pieces.items():
        if p[5] == "clearing" and pno not in unsettled_per_piece:
            _fail(f"piece {pno}", "ledger_pieces.state", "in clearing without an instruction")
    # holder balances = sum of live pieces (and every other tracked account)
    for k in sorted(set(expect) | {k for k in bal if k[0].split(":", 1)[0] in _TRACKED}):
        if k[0].split(":", 1)[0] not in _TRACKED:
            continue
        if bal.get(k, 0) != expect.get(k, 0):
            _fail(
                f"account {k[0]} {k[1]}",
                "ledger_postings.amount_minor",
                f"balance {bal.get(k, 0)} != state {expect.get(k, 0)}",
            )


def _check_instruction_accounts(q: Any) -> None:
    """Every instruction pays from a registered account of the obligor to one of the payee, in its
    currency, for a piece of its voucher, with the voucher's obligor and currency.

    (Until the state was compared with the journal replayed, this function also compared parties,
    accounts, payables, vouchers, backings and financings with the entries that created them; that
    comparison now covers every column of every state table, so only these cross-row rules remain.)
    """
    by_party: dict[tuple[str, str], set[tuple[str, str | None]]] = defaultdict(set)
    for party, number, cnaps, cur in q("SELECT party_uscc, account_no, cnaps, currency FROM ledger_accounts"):
        by_party[(party, cur)].add((number, cnaps))
    vouchers = {
        r[0]: (r[1], r[2]) for r in q("SELECT voucher_no, obligor_uscc, currency FROM ledger_vouchers")
    }
    piece_voucher = {r[0]: r[1] for r in q("SELECT piece_no, voucher_no FROM ledger_pieces")}
    for iid, vno, pno, obligor, payee, pacct, pagent, racct, ragent, cur in q(
        "SELECT instruction_id, voucher_no, piece_no, obligor_uscc, payee_uscc, payee_account, payee_agent, "
        "payer_account, payer_agent, currency FROM ledger_instructions ORDER BY instruction_id"
    ):
        where = f"instruction {iid}"
        if piece_voucher.get(pno) != vno:
            _fail(where, "voucher_no", f"piece {pno} is not a piece of voucher {vno}")
        if vouchers.get(vno) != (obligor, cur):
            _fail(where, "obligor_uscc", f"obligor or currency differ from voucher {vno}")
        if (pacct, pagent) not in by_party.get((payee, cur), set()):
            _fail(where, "payee_account", f"{pacct} is not a {cur} account of the payee {payee}")
        if (racct, ragent) not in by_party.get((obligor, cur), set()):
            _fail(where, "payer_account", f"{racct} is not a {cur} account of the obligor {obligor}")


_TRACKED = {
    "held",
    "clearing",
    "offered",
    "obligation",
    "quota_reserved",
    "quota_free",
    "quota_line",
    "transfer_pending",
    "transfer_offered",
    "financing_pending",
    "financing_offered",
}


# --- exported journal (offline) -------------------------------------------------------------------


def verify_journal_file(path: Path, *, replay: bool = False) -> VerifyReport:
    """Check an exported JSON-lines journal on its own: chain, seq order and balanced postings.

    With ``replay``, also re-apply every entry's command to a scratch ledger and require the very
    same entries (results, postings, hashes): a journal whose chain was recomputed after an edit,
    or whose postings do not follow from its commands, fails at the first differing entry.
    """
    entries: list[tuple[Any, ...]] = []
    posts: list[tuple[Any, ...]] = []
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    e = loads_strict(line)
                    entries.append(
                        (
                            e["seq"],
                            e["key"],
                            e["cmd"],
                            e["body"],
                            e["business_date"],
                            e["result_data"],
                            e["prev_hash"],
                            e["hash"],
                        )
                    )
                    posts.extend((e["seq"], i, p[0], p[1], p[2]) for i, p in enumerate(e["postings"]))
                except (ValueError, KeyError, TypeError, IndexError) as err:
                    _fail(f"{path}:{lineno}", "json", f"not a journal entry: {err}")
        last_seq, last_hash = check_chain(entries, iter(posts))
        if replay:
            _replay(entries)
    except _Found as f:
        return VerifyReport(False, f"FAILED {f.violation}", f.violation)
    if replay:
        return VerifyReport(
            True,
            f"ok: {last_seq} entries, hash chain intact, replay reproduces every entry "
            f"(head {last_hash[:16]})",
            None,
            last_seq,
        )
    return VerifyReport(
        True, f"ok: {last_seq} entries, hash chain intact (head {last_hash[:16]})", None, last_seq
    )


def _replay(entries: list[tuple[Any, ...]]) -> None:
    from ledger.rebuild import Replayer

    for e in entries:  # the file is not the ledger's own text: refuse duplicate fields and the like
        try:
            if not isinstance(loads_strict(e[3]), dict):
                raise ValueError("not an object")
        except (ValueError, TypeError) as err:
            _fail(f"journal seq {e[0]}", "body", f"not a JSON command object: {err}")
    rep = Replayer()
    try:
        d = rep.advance(entries)
    finally:
        rep.close()
    if d is not None:
        _fail(f"journal seq {d.seq}", d.field, d.message)
