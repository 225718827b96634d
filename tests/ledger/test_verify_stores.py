"""``verify``'s store checks (issue #22): reconciliation, quarantine, the flows' records, the manual
registry queue and the processed-file record, each against the journal (or the raw archive).

Every column of every table of those stores (introspected from their metadata) is classified here:
either derived from recorded facts, and then one edit of it must be named (table, key, column), or
not derived, with the reason (docs/ledger.md lists them); the classification must cover exactly the
tables' columns, so a new column has to be placed. A world of each is built once through the
owners' APIs (``verify_world``) and copied per edit.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean, Column, Date, DateTime, Integer, LargeBinary, Table

from connectors.registry.manual import packets
from connectors.sftp_record import processed_files
from cvhub.settings import Settings
from ledger.api import Ledger
from ledger.quarantine import QuarantineBase
from ledger.recon.models import ReconBase
from ledger.verify import ReplayCache, Violation
from plugins.cvhub_flows.flow_verify import REGISTRY_FLOW, SRM_FLOW, issue_key, request_no, store_checks
from tests.ledger.verify_world import build

# column -> (the table the violation names, the field), for columns derived from recorded facts
DERIVED: dict[str, dict[str, tuple[str, str]]] = {
    "recon_statements": {
        "id": ("recon_statements", "id"),
        "statement_key": ("recon_statements", "statement_key"),
        "account": ("recon_statements", "account"),
        "statement_id": ("recon_statements", "statement_id"),
        "business_date": ("recon_statements", "business_date"),
        "line_count": ("recon_statements", "line_count"),
        "matched_lines": ("recon_statements", "matched_lines"),
        "exception_count": ("recon_statements", "exception_count"),
    },
    "recon_lines": {
        "statement_pk": ("recon_lines", "statement_pk"),
        "line_no": ("recon_lines", "line_no"),
        "credit_debit": ("recon_lines", "credit_debit"),
        # an unmatched line's exception carries its amount: the check names the exception
        "amount_minor": ("recon_exceptions", "amount_minor"),
        "currency": ("recon_exceptions", "currency"),
    },
    "recon_matches": {
        "statement_pk": ("recon_matches", "statement_pk"),
        "line_no": ("recon_matches", "line_no"),
        "item_id": ("recon_matches", "item_id"),
        "item_kind": ("recon_matches", "item_kind"),
        "rule": ("recon_matches", "rule"),
        "amount_minor": ("recon_matches", "amount_minor"),
        "credit_debit": ("recon_matches", "credit_debit"),
        "value_date": ("recon_matches", "value_date"),
    },
    "recon_exceptions": {
        "exc_key": ("recon_exceptions", "exc_key"),
        "code": ("recon_exceptions", "code"),
        "statement_pk": ("recon_exceptions", "statement_pk"),
        "line_no": ("recon_exceptions", "line_no"),
        "item_id": ("recon_exceptions", "item_id"),
        "account": ("recon_exceptions", "account"),
        "amount_minor": ("recon_exceptions", "amount_minor"),
        "currency": ("recon_exceptions", "currency"),
        "business_date": ("recon_exceptions", "business_date"),
        "detail": ("recon_exceptions", "detail"),
        "obligor_uscc": ("recon_exceptions", "obligor_uscc"),
        "status": ("recon_exceptions", "status"),
        "resolved_on": ("recon_exceptions", "resolved_on"),
    },
    "recon_expected": {
        "kind": ("recon_expected", "kind"),
        "direction": ("recon_expected", "direction"),
    },
    "quarantine_items": {
        "flow": ("quarantine_items", "flow"),
        "item_ref": ("quarantine_items", "item_ref"),
        "source_sha256": ("quarantine_items", "source_sha256"),
        "raw": ("quarantine_items", "raw"),
        "context": ("quarantine_items", "context"),
        "resolution": ("quarantine_items", "resolution"),
        "created_at": ("quarantine_items", "last_seen_at"),  # ordered: the later one is named
    },
    "flow_cursors": {
        "name": ("flow_cursors", "name"),
        "value": ("flow_cursors", "value"),
    },
    "registry_packets": {
        "packet_id": ("registry_packets", "packet_id"),
        "request_no": ("registry_packets", "request_no"),
        "operation": ("registry_packets", "operation"),
        "status": ("registry_packets", "status"),
        "target_registration_no": ("registry_packets", "target_registration_no"),
        "grantor_uscc": ("registry_packets", "grantor_uscc"),
        "voucher_id": ("registry_packets", "voucher_id"),
        "payload": ("registry_packets", "payload"),
        "payload_sha256": ("registry_packets", "payload_sha256"),
        "registration_no": ("registry_packets", "registration_no"),
        "created_at": ("registry_packets", "completed_at"),  # ordered: the later one is named
    },
    "sftp_processed_files": {
        "system": ("sftp_processed_files", "system"),
        "remote_dir": ("sftp_processed_files", "remote_dir"),
        "name": ("sftp_processed_files", "name"),
        "size": ("sftp_processed_files", "size"),
        "sha256": ("sftp_processed_files", "sha256"),
        "state": ("sftp_processed_files", "state"),
        "note": ("sftp_processed_files", "note"),
    },
}
# column -> why nothing recorded elsewhere says what it must be (an edit passes, or is refused)
NOT_DERIVED: dict[str, dict[str, str]] = {
    "recon_statements": {
        "currency": "the statement's own header",
        "sequence": "the statement's own header (the flow's cursor keeps the last one per account)",
        "source_format": "how the file was read",
        "content_sha256": "digest of the parsed statement, which is not stored whole",
    },
    "recon_lines": {
        c: "the bank's line as delivered (the raw file is archived)"
        for c in ("value_date", "end_to_end_id", "bank_ref", "remittance_info", "counterparty")
    },
    "recon_matches": {
        "id": "surrogate key",
        "group_no": "the engine's grouping of one run",
        "bank_ref": "the bank's line as delivered",
        "counterparty": "the bank's line as delivered",
    },
    "recon_exceptions": {"id": "surrogate key"},
    "recon_expected": {
        c: "registered by the flows from the bank's figures, not journaled"
        for c in (
            "item_id",
            "account",
            "currency",
            "amount_minor",
            "due_date",
            "end_to_end_id",
            "serial_no",
            "voucher_no",
            "piece_no",
            "obligor_uscc",
            "counterparty",
            "window_before_days",
            "window_after_days",
        )
    },
    "quarantine_items": {
        "id": "surrogate key",
        "source_name": "where the flow read the item",
        "line": "where the flow read the item",
        "record": "where the flow read the item",
        "reason_code": "the failing layer's code at the last attempt",
        "message": "the failing layer's message at the last attempt",
        "status": "a CHECK constraint refuses other values; open/replayed follow the flow's rules",
        "occurrences": "how often it failed",
        "last_seen_at": "wall-clock time of the last failure",
        "replayed_at": "wall-clock time of the replay",
    },
    "flow_cursors": {
        "flow": "cursors of sources outside the journal (SRM, bank notices) are the flows' own",
        "updated_at": "wall-clock time",
    },
    "registry_packets": {
        "completed_at": "when the operator completed it (only its order is checked)",
        "completed_by": "the operator",
        "note": "the operator's note",
    },
    "sftp_processed_files": {
        "mtime": "the server's modification time (the archive index does not record it)",
        "token": "the claim protocol's own state",
        "attempts": "the claim protocol's own state",
        "claimed_at": "the claim protocol's own state",
        "done_at": "wall-clock time of the commit",
    },
}
# the row each column is edited in (default: the table's first row); and edits other than one character
WHERE: dict[str, str] = {
    "recon_statements": "id = 1",
    "recon_lines": "statement_pk = 1",
    "recon_matches": "item_kind = 'clearing' AND id = 2",
    "recon_exceptions": "code = 'RETURN' AND line_no = 1",
    "quarantine_items": "status = 'replayed'",
    "registry_packets": "operation = 'register'",
    "sftp_processed_files": "state = 'done'",
}
WHERE_COLUMN: dict[tuple[str, str], str] = {
    ("recon_exceptions", "detail"): "detail LIKE '%REVERSED%' AND statement_pk IS NOT NULL",
    ("recon_exceptions", "resolved_on"): "code = 'RETURN' AND line_no = 1",
    ("quarantine_items", "raw"): "item_ref LIKE 'writeback:%'",
    ("quarantine_items", "item_ref"): "item_ref LIKE 'writeback:%'",
    ("registry_packets", "target_registration_no"): "operation = 'cancel'",
    ("sftp_processed_files", "note"): "state = 'duplicate'",
}
EDIT: dict[tuple[str, str], Any] = {
    ("recon_exceptions", "detail"): lambda v: v.replace("(seq 35,", "(seq 34,"),
    ("recon_exceptions", "resolved_on"): lambda v: "2026-12-20",  # an open exception with a resolution day
    ("recon_statements", "business_date"): lambda v: "2026-12-14",
}
DB_OF = {"registry_packets": "connectors.sqlite", "sftp_processed_files": "connectors.sqlite"}
TABLES: list[Table] = [
    *ReconBase.metadata.sorted_tables,
    *QuarantineBase.metadata.sorted_tables,
    packets,
    processed_files,
]
CELLS = [(t.name, c.name) for t in TABLES for c in t.columns]


def test_every_store_column_is_classified() -> None:
    for t in TABLES:
        derived, other = set(DERIVED.get(t.name, {})), set(NOT_DERIVED.get(t.name, {}))
        assert not derived & other, t.name
        assert derived | other == {c.name for c in t.columns}, (
            t.name,
            {c.name for c in t.columns} ^ (derived | other),
        )
    assert set(DERIVED) | set(NOT_DERIVED) == {t.name for t in TABLES}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("stores") / "data"
    data.mkdir()
    build(data)
    return data


@pytest.fixture(scope="module")
def cache() -> Iterator[ReplayCache]:
    c = ReplayCache()
    yield c
    c.clear()


def _copy(world: Path, tmp_path: Path) -> Settings:
    data = tmp_path / "data"
    shutil.copytree(world, data)
    return Settings(data_dir=data, db_url=f"sqlite:///{data / 'ledger.sqlite'}")


def _verify(settings: Settings, cache: ReplayCache | None = None) -> tuple[Violation | None, str]:
    led = Ledger.open(settings.db_url)
    try:
        if cache is not None:
            led._verify_cache = cache  # the copies share one journal: replayed once
        report = led.verify(stores=store_checks(settings, led.engine))
    finally:
        led._verify_cache = None
        led.close()
    return report.first_violation, report.summary


def test_the_world_verifies_and_every_store_was_checked(world: Path, tmp_path: Path) -> None:
    v, summary = _verify(_copy(world, tmp_path))
    assert v is None, summary
    for part in (
        "recon (2 statements, 3 settles)",
        "quarantine (3 items)",
        "SRM write-backs (2 in 1 batches)",
        "registry cancellations (1)",
        "registry packets (2)",
        "SFTP processed files (3)",
    ):
        assert part in summary, summary


def _edited(old: Any, col: Column[Any], attempt: int) -> Any:
    t = col.type
    if old is None:
        return 1 if isinstance(t, Integer) else "2026-12-19" if isinstance(t, Date) else "X"
    if isinstance(t, Boolean):
        return 1 - int(old)
    if isinstance(t, Integer):
        return old + (1000 if col.primary_key else 1) + attempt
    if isinstance(t, DateTime):
        return (datetime.fromisoformat(old) + timedelta(days=1 + attempt)).isoformat(sep=" ")
    if isinstance(t, Date):
        return (date.fromisoformat(old) + timedelta(days=1 + attempt)).isoformat()
    if isinstance(t, LargeBinary):
        return bytes(old)[:-1] + b"X"
    pos = (len(old) - 1 - attempt) % len(old)
    new = ("7" if old[pos] != "7" else "8") if old[pos].isdigit() else ("X" if old[pos] != "X" else "Y")
    return old[:pos] + new + old[pos + 1 :]


@pytest.mark.parametrize(("table", "col"), CELLS, ids=[f"{t}.{c}" for t, c in CELLS])
def test_one_edit_of_a_store_column(
    world: Path, cache: ReplayCache, tmp_path: Path, table: str, col: str
) -> None:
    settings = _copy(world, tmp_path)
    t = next(x for x in TABLES if x.name == table)
    column = t.columns[col]
    pk = [c.name for c in t.primary_key.columns]
    where = WHERE_COLUMN.get((table, col)) or WHERE.get(table, "1 = 1")
    db = sqlite3.connect(settings.data_dir / DB_OF.get(table, "ledger.sqlite"), isolation_level=None)
    try:
        row = db.execute(f"SELECT {', '.join(pk)}, {col} FROM {table} WHERE {where} LIMIT 1").fetchone()
        assert row is not None, f"{table}: no row where {where} (the world lacks it)"
        key, old = row[:-1], row[-1]
        refused = True
        for attempt in range(3):
            edit = EDIT.get((table, col))
            new = edit(old) if edit else _edited(old, column, attempt)
            try:
                db.execute(
                    f"UPDATE {table} SET {col} = ? WHERE " + " AND ".join(f"{k} = ?" for k in pk), (new, *key)
                )
                refused = False
                break
            except sqlite3.IntegrityError:
                continue
    finally:
        db.close()
    v, summary = _verify(settings, cache)
    if col in NOT_DERIVED.get(table, {}):
        # nothing says what it must be: passed, refused by a constraint, or named by a shape rule
        assert v is None or v.entry.startswith(table) or refused, summary
        return
    assert not refused, f"{table}.{col}: the database refused every edit (classify it as constrained)"
    assert v is not None, f"{table}.{col}: {old!r} -> {new!r} not detected"
    want_table, want_field = DERIVED[table][col]
    assert v.entry.startswith(want_table) and v.field == want_field, (str(v), old, new)


def test_write_back_batches_against_the_journal(world: Path, tmp_path: Path) -> None:
    settings = _copy(world, tmp_path)
    batch = next((settings.data_dir / "flows" / SRM_FLOW).glob("*/vouchers.json"))
    items = json.loads(batch.read_text())
    for field, value in (
        ("voucher_no", items[0]["voucher_no"][:-1] + "0"),
        ("amount", "10.01"),
        ("currency", "USD"),
        ("payable_id", "AP-NOT-ISSUED"),
    ):
        changed = [dict(items[0], **{field: value}), *items[1:]]
        batch.write_text(json.dumps(changed))
        v, summary = _verify(settings)
        assert v is not None and v.entry == f"{batch}[0]" and v.field == field, summary
    batch.write_text("{not json")
    v, summary = _verify(settings)
    assert v is not None and v.entry == str(batch), summary


def test_an_open_quarantined_payable_the_journal_issued_is_named(world: Path, tmp_path: Path) -> None:
    settings = _copy(world, tmp_path)
    db = sqlite3.connect(settings.data_dir / "ledger.sqlite", isolation_level=None)
    try:
        db.execute("UPDATE quarantine_items SET status = 'open', resolution = NULL WHERE item_ref = 'AP8'")
    finally:
        db.close()
    v, summary = _verify(settings)
    assert v is not None and v.entry.startswith("quarantine_items") and v.field == "status", summary


def test_archived_bytes_must_hash_to_the_record(world: Path, tmp_path: Path) -> None:
    settings = _copy(world, tmp_path)
    blob = next(
        p for p in (settings.archive_dir / "sha256").rglob("*") if p.is_file() and p.stat().st_size == 22
    )
    blob.write_bytes(b"<Document>2</Document>")
    v, summary = _verify(settings)
    assert v is not None and v.entry.startswith("sftp_processed_files") and v.field == "sha256", summary


def test_a_store_that_cannot_be_read_is_a_violation(world: Path, tmp_path: Path) -> None:
    settings = _copy(world, tmp_path)
    (settings.data_dir / "connectors.sqlite").write_bytes(b"not a database at all" * 100)
    v, summary = _verify(settings)
    assert v is not None and v.entry == "registry packets" and v.field == "store", summary


@pytest.mark.postgres
def test_the_world_on_postgresql_verifies_and_an_edit_is_named(tmp_path: Path, pg_url: str) -> None:
    """Recon, quarantine and the flows' records in a PostgreSQL ledger: read in verify's snapshot."""
    data = tmp_path / "data"
    data.mkdir()
    settings = build(data, pg_url)
    v, summary = _verify(settings)
    assert v is None and "recon (2 statements, 3 settles)" in summary, summary
    led = Ledger.open(pg_url)
    try:
        with led.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE recon_matches SET amount_minor = amount_minor + 1 WHERE id = 2")
            conn.exec_driver_sql("UPDATE flow_cursors SET value = 'ZD2026000999'")
    finally:
        led.close()
    v, summary = _verify(settings)
    assert v is not None and v.entry.startswith("recon_matches") and v.field == "amount_minor", summary


def test_missing_stores_are_skipped_not_created(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    settings = Settings(data_dir=data, db_url=f"sqlite:///{data / 'ledger.sqlite'}")
    v, summary = _verify(settings)
    assert v is None and "registry packets (0)" in summary, summary
    assert not (data / "connectors.sqlite").exists()


def test_the_flows_conventions_are_the_flows_own() -> None:
    """flow_verify repeats a few names the flows use (to stay free of Airflow imports): pinned here."""
    from plugins.cvhub_flows import financing, srm

    assert SRM_FLOW == srm.FLOW and REGISTRY_FLOW == financing.REGISTRY_FLOW
    assert request_no("reg", "F1") == financing._request_no("reg", "F1")
    cmds = srm._commands(_payable(), {}, date(2026, 1, 5), set(), set())
    assert cmds[-1]["key"] == issue_key("AP1")


def _payable() -> Any:
    from ledger.canonical import Payable

    return Payable(
        payable_id="AP1",
        obligor_uscc="91110000MA01ABCD1M",
        supplier_uscc="91310000MA1FL0000N",
        supplier_name="S",
        amount_minor=100,
        currency="CNY",
    )
