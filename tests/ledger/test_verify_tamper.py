"""``verify`` names every edit of every column of every ledger table (issue #22).

The tables and columns come from the ledger's metadata (``ledger.models.Base``), not from a list in
this file: a column added later is walked too. A small ledger is built once (every state table has
rows, every nullable column a non-NULL value somewhere); each edit is made with plain ``sqlite3`` on
a copy of its file, as an auditor (or an attacker) would, and ``verify`` must name the table, the key
and the column. A second walk writes a value each column cannot hold: a violation, never a traceback.
The invariants scenario's tampers are walked here too, for the invariant each one breaks.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean, Column, Date, Integer, String

from ledger.api import Ledger
from ledger.db import make_engine
from ledger.models import Base
from ledger.verify import ReplayCache, Violation, verify_database

SCENARIO = Path(__file__).parent / "scenarios" / "invariants.jsonl"
JOURNAL, POSTINGS, HEAD = "ledger_journal", "ledger_postings", "ledger_chain_head"


def _scenario() -> tuple[dict[str, str], list[dict[str, Any]]]:
    aliases: dict[str, str] = {}
    cmds: list[dict[str, Any]] = []
    for line in SCENARIO.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        step = json.loads(line)
        if "aliases" in step:
            aliases = step["aliases"]
        elif "cmd" in step:
            step.pop("expect")
            cmds.append(step)
    text = json.dumps(cmds, ensure_ascii=False)
    for k, v in aliases.items():
        text = text.replace(f'"${k}"', json.dumps(v))
    return aliases, json.loads(text)


ALIASES, COMMANDS = _scenario()
S, T = ALIASES["S"], ALIASES["T"]
# beyond the invariants scenario: a wallet (cnaps NULL), a payable's due date and references, an
# instruction sent and returned (message_id, return_reason), a voided transfer
EXTRA: list[dict[str, Any]] = [
    {
        "cmd": "add_account",
        "key": "a3",
        "on": "2026-03-02",
        "uscc": T,
        "wallet_id": "0031000012345678",
        "currency": "CNY",
    },
    {
        "cmd": "register_payable",
        "key": "rp2",
        "on": "2026-03-02",
        "payable_id": "PO-2",
        "obligor": ALIASES["O"],
        "supplier": S,
        "amount": "100.00",
        "currency": "CNY",
        "due_date": "2026-05-31",
        "invoice_no": "INV-7",
    },
    {"cmd": "mark_sent", "key": "ms4", "on": "2026-03-31", "instruction_id": "CIV4-1", "message_id": "MSG-1"},
    {"cmd": "mark_returned", "key": "mr4", "on": "2026-04-01", "instruction_id": "CIV4-1", "reason": "AC04"},
    {"cmd": "void_transfer", "key": "t2v", "on": "2026-03-05", "transfer_id": "t2"},
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tamper") / "ledger.sqlite"
    led = Ledger.open(f"sqlite:///{path}")
    try:
        results = led.apply(COMMANDS + EXTRA)
        assert all(r.result == "ok" for r in results), [r.to_json() for r in results if not r.ok]
        assert led.verify().ok
    finally:
        led.close()  # checkpoints the WAL: the file alone is the ledger
    return path


@pytest.fixture(scope="module")
def cache() -> Iterator[ReplayCache]:
    c = ReplayCache()  # the copies share one journal: replayed once, not once per edit
    yield c
    c.clear()


def _verify(path: Path, cache: ReplayCache | None) -> Violation | None:
    engine = make_engine(f"sqlite:///{path}")
    try:
        report = verify_database(engine, cache=cache)
    finally:
        engine.dispose()
    assert report.ok == (report.first_violation is None), report.summary
    return report.first_violation


def _edited(value: Any, col: Column[Any], attempt: int) -> Any:
    """A plausible value of the column's type, different from ``value`` (a one-character edit)."""
    if isinstance(col.type, Boolean):
        return 1 - int(value)
    if isinstance(col.type, Integer):
        return value + 1000 + attempt if col.primary_key else value + 1 + attempt
    if isinstance(col.type, Date):
        return (date.fromisoformat(value) + timedelta(days=1 + attempt)).isoformat()
    assert isinstance(col.type, String) and isinstance(value, str) and value
    pos = (len(value) - 1 - attempt) % len(value)
    ch = value[pos]
    new = "X" if ch not in "Xx" else "Y"
    if ch.isdigit():
        new = "7" if ch != "7" else "8"
    return value[:pos] + new + value[pos + 1 :]


def _cells() -> Iterator[tuple[str, str]]:
    for table in Base.metadata.sorted_tables:
        for col in table.columns:
            yield table.name, col.name


CELLS = list(_cells())


def test_the_walk_covers_every_column_of_every_ledger_table() -> None:
    tables = {t for t, _ in CELLS}
    assert tables == set(Base.metadata.tables) and len(tables) == 13
    assert len(CELLS) == sum(len(t.columns) for t in Base.metadata.sorted_tables)


def _pick(db: sqlite3.Connection, table: str, col: str) -> tuple[str, tuple[Any, ...], Any]:
    """A row of ``table`` with a non-NULL ``col`` (rowid, primary key, value)."""
    t = Base.metadata.tables[table]
    pk = [c.name for c in t.primary_key.columns]
    row = db.execute(
        f"SELECT rowid, {', '.join(pk)}, {col} FROM {table} WHERE {col} IS NOT NULL ORDER BY rowid LIMIT 1 "
        f"OFFSET (SELECT COUNT(*) / 2 FROM {table} WHERE {col} IS NOT NULL)"
    ).fetchone()
    assert row is not None, f"{table}.{col}: no row with a value (extend the scenario)"
    return row[0], tuple(row[1:-1]), row[-1]


@pytest.mark.parametrize(("table", "col"), CELLS, ids=[f"{t}.{c}" for t, c in CELLS])
def test_one_edit_of_the_column_is_named(
    built: Path, cache: ReplayCache, tmp_path: Path, table: str, col: str
) -> None:
    copy = tmp_path / "ledger.sqlite"
    shutil.copy(built, copy)
    column = Base.metadata.tables[table].columns[col]
    db = sqlite3.connect(copy, isolation_level=None)  # foreign keys off: nothing stops an auditor's edit
    try:
        rowid, key, old = _pick(db, table, col)
        for attempt in range(5):
            new = _edited(old, column, attempt)
            try:
                db.execute(f"UPDATE {table} SET {col} = ? WHERE rowid = ?", (new, rowid))
                break
            except sqlite3.IntegrityError:  # a unique key taken: another edit
                continue
        else:
            pytest.fail(f"{table}.{col}: no edit the database accepts")
    finally:
        db.close()
    v = _verify(copy, cache)
    assert v is not None, f"{table}.{col}: {old!r} -> {new!r} not detected"
    where = f"{v.entry}: {v.field}: {v.message}"
    if table == JOURNAL:
        seq = key[0]
        assert v.entry == f"journal seq {seq}", where
        assert col in v.field.split(" or "), where  # key and body: the hash covers both (see docs)
    elif table == POSTINGS:
        assert v.entry == f"journal seq {key[0]}", where
        assert v.field == f"ledger_postings.{col}", where
    elif table == HEAD:
        assert (v.entry, v.field) == (HEAD, col), where
    else:
        assert v.entry.startswith(f"{table} "), where
        assert v.field == col, where
        if column.primary_key:  # the row is named by its key, old or new
            assert any(f"{col}={k}" in v.entry or f"{col}={k}" in v.message for k in (old, new)), where
        else:
            assert all(f"={k}" in v.entry for k in key), where


def _unparsable(col: Column[Any]) -> Any:
    if isinstance(col.type, Boolean):
        return 7
    if isinstance(col.type, Integer):
        return "12x"
    if isinstance(col.type, Date):
        return "2026-02-30"
    assert isinstance(col.type, String)
    return "Z" * (col.type.length + 1) if col.type.length else b"\x00raw"  # Text: a BLOB is not text


STATE_CELLS = [(t, c) for t, c in CELLS if t not in (JOURNAL, POSTINGS, HEAD)]


@pytest.mark.parametrize(("table", "col"), STATE_CELLS, ids=[f"{t}.{c}" for t, c in STATE_CELLS])
def test_a_value_the_column_cannot_hold_is_a_violation_not_a_traceback(
    built: Path, cache: ReplayCache, tmp_path: Path, table: str, col: str
) -> None:
    copy = tmp_path / "ledger.sqlite"
    shutil.copy(built, copy)
    column = Base.metadata.tables[table].columns[col]
    bad = _unparsable(column)
    db = sqlite3.connect(copy, isolation_level=None)
    try:
        rowid, _, _ = _pick(db, table, col)
        db.execute(f"UPDATE {table} SET {col} = ? WHERE rowid = ?", (bad, rowid))
    finally:
        db.close()
    v = _verify(copy, cache)
    assert v is not None and v.field == col and v.entry.startswith(f"{table} "), v
    assert v.message.startswith(f"unparsable value {bad!r}"), v


@pytest.mark.parametrize(
    ("sql", "entry", "field"),
    [
        ("UPDATE ledger_journal SET result_data = '{not json' WHERE seq = 9", "journal seq 9", "result_data"),
        ("UPDATE ledger_journal SET body = 'not json' WHERE seq = 9", "journal seq 9", "body"),
        (
            "UPDATE ledger_journal SET business_date = '2026-02-30' WHERE seq = 9",
            "journal seq 9",
            "business_date",
        ),
        (
            "UPDATE ledger_journal SET business_date = 20260302 WHERE seq = 9",
            "journal seq 9",
            "business_date",
        ),
        ("UPDATE ledger_journal SET key = 42 WHERE seq = 9", "journal seq 9", "key or body"),
        ("UPDATE ledger_journal SET seq = 'nine' WHERE seq = 9", "journal seq 9", "seq"),
        (
            "UPDATE ledger_postings SET amount_minor = 'abc' WHERE entry_seq = 9 AND idx = 0",
            "ledger_postings entry_seq=9 idx=0",
            "amount_minor",
        ),
        (
            "UPDATE ledger_postings SET entry_seq = 'x' WHERE entry_seq = 9 AND idx = 0",
            "journal seq 9",
            "ledger_postings.entry_seq",
        ),
        ("UPDATE ledger_chain_head SET hash = 12", HEAD, "hash"),
    ],
)
def test_unparsable_journal_values_are_violations(
    built: Path, cache: ReplayCache, tmp_path: Path, sql: str, entry: str, field: str
) -> None:
    copy = tmp_path / "ledger.sqlite"
    shutil.copy(built, copy)
    db = sqlite3.connect(copy, isolation_level=None)
    try:
        db.execute(sql)
    finally:
        db.close()
    v = _verify(copy, cache)
    assert v is not None and (v.entry, v.field) == (entry, field), v


def test_the_invariant_each_scenario_tamper_breaks(tmp_path: Path) -> None:
    """invariants.jsonl: besides the edited cell (checked by the scenario walk), ``Violation.also``
    names the invariant the edit breaks, where one does."""
    led = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    checked = 0
    try:
        for raw in SCENARIO.read_text(encoding="utf-8").splitlines():
            if not raw.strip() or raw.startswith("#") or "aliases" in raw:
                continue
            line = raw
            for k, val in ALIASES.items():
                line = line.replace(f"${k}", val)
            step = json.loads(line)
            expect = step.pop("expect")
            if "tamper" not in step:
                if "cmd" in step:
                    assert led.apply_one(step).ok
                continue
            with led.engine.begin() as conn:
                for sql in step["tamper"]:
                    conn.exec_driver_sql(sql)
            v = led.verify().first_violation
            with led.engine.begin() as conn:
                for sql in step["undo"]:
                    conn.exec_driver_sql(sql)
            assert v is not None and (v.entry, v.field) == (expect["entry"], expect["field"]), (line, v)
            want = expect.get("invariant")
            got = None if v.also is None else {"entry": v.also.entry, "field": v.also.field}
            assert got == want, (line, v)
            checked += want is not None
        assert checked >= 15
    finally:
        led.close()
