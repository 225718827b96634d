"""Issue #23, ledger side: hostile and careless inputs are exact or refused, never rounded, never
half-applied - the same on SQLite and PostgreSQL. One corpus test per case of the issue:

1. amounts past 28 significant digits (were rounded), 10^6 digits and ``1e999999`` (were
   ``decimal.Overflow``);
2. ``cvhub ledger apply`` with a deep line, bad UTF-8/GBK bytes, a 10^6-digit amount and NUL in a
   key or a name among 1,200 + 10 good lines (was a traceback after 1,000 applied, or a rolled-back
   batch on PostgreSQL);
3. validators: full-width and Arabic-Indic digits, ``"PO1\\n"``, ``"V1\\n"``, ``20260302``,
   ``2026-W10-1``, lone surrogates, NUL in field names;
7. SERIALIZABLE: a serialization failure is retried until the deadline, and only then is the
   caller told (``LedgerBusy``), with nothing applied.

Plus: the declared field spec (``COMMAND_FIELDS``) covers every field a handler reads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cvhub.cli import app
from ledger.api import Ledger, LedgerBusy
from ledger.money import AmountError, to_minor

OB, S = "91110000MA0000001L", "91310000MA00000025"
ON = "2026-03-02"
runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'l.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def led(url: str) -> Iterator[Ledger]:
    ledger = Ledger.open(url)
    ledger.apply(parties())
    try:
        yield ledger
    finally:
        ledger.close()


def parties() -> list[dict[str, Any]]:
    return [
        {"cmd": "register_party", "key": "p1", "on": ON, "uscc": OB, "name": "o", "roles": ["obligor"]},
        {"cmd": "register_party", "key": "p2", "on": ON, "uscc": S, "name": "s", "roles": ["supplier"]},
    ]


def payable(i: int | str, amount: str = "10.00", **extra: Any) -> dict[str, Any]:
    return {"cmd": "register_payable", "key": f"rp{i}", "on": ON, "payable_id": f"PO{i}", "obligor": OB,
            "supplier": S, "amount": amount, "currency": "CNY", **extra}


def table_counts(led: Ledger) -> dict[str, int]:
    with led.read_engine.connect() as c:
        return {t: int(c.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in ("ledger_journal", "ledger_postings", "ledger_parties", "ledger_accounts",
                          "ledger_payables", "ledger_vouchers")}


# --- 1. amounts: exact or refused -------------------------------------------------------------

AMOUNTS_REFUSED = [
    ("1.00000000000000000000000000001", "over_precise"),     # was 100 minor units
    ("999999999999.9999999999999999999", "over_precise"),    # was ok, 100000000000000 (rounded up)
    ("0.0000000000000000000000000000001", "over_precise"),
    ("12345678901234567890123456789.01", "invalid_amount"),  # 29 integer digits
    ("1" * 10**6, "invalid_amount"),                          # was decimal.Overflow
    ("1e999999", "invalid_amount"),
    ("1E3", "invalid_amount"),
    ("１００.００", "invalid_amount"),
    ("١٠٠.٠٠", "invalid_amount"),
    ("100.00\u200b", "invalid_amount"),
    ("1,000.00", "invalid_amount"),
    ("NaN", "invalid_amount"),
    ("-Infinity", "invalid_amount"),
    ("0x10", "invalid_amount"),
    ("1_000", "invalid_amount"),
    (".", "invalid_amount"),
    ("10000000000000.01", "invalid_amount"),                  # above MAX_AMOUNT_MINOR
    ("0.00", "zero_amount"),
    ("-1.00", "negative_amount"),
]
AMOUNTS_EXACT = [("1000.5", 100050), (" 7.10 ", 710), ("0007.00", 700), ("1.500", 150), (".5", 50),
                 ("9999999999999.99", 999999999999999), ("+3", 300)]


@pytest.mark.parametrize(("amount", "code"), AMOUNTS_REFUSED)
def test_to_minor_corpus(amount: str, code: str) -> None:
    if code in ("zero_amount",):
        assert to_minor(amount, "CNY") == 0
        return
    if "10000000000000" in amount:  # within to_minor's bounds; the ledger's cap refuses it
        assert to_minor(amount, "CNY") == 10**15 + 1
        return
    with pytest.raises(AmountError) as e:
        to_minor(amount, "CNY")
    assert e.value.code == code, e.value


def test_register_payable_amount_corpus(led: Ledger) -> None:
    before = table_counts(led)
    cmds = [payable(i, a) for i, (a, _) in enumerate(AMOUNTS_REFUSED)]
    results = led.apply(cmds)
    assert [(r.result, r.data.get("field")) for r in results] == [(c, "amount") for _, c in AMOUNTS_REFUSED]
    assert table_counts(led) == before  # every refusal leaves every table unchanged
    exact = led.apply([payable(f"x{i}", a) for i, (a, _) in enumerate(AMOUNTS_EXACT)])
    assert [r.result for r in exact] == ["ok"] * len(AMOUNTS_EXACT)
    with led.read_engine.connect() as c:
        got = dict(c.execute(text("SELECT payable_id, amount_minor FROM ledger_payables")).all())
    assert got == {f"POx{i}": m for i, (_, m) in enumerate(AMOUNTS_EXACT)}


# --- 3. identifiers, codes, dates, characters ---------------------------------------------------

def test_validator_corpus(led: Ledger) -> None:
    assert led.apply([payable(1)])[0].result == "ok"
    acct = {"cmd": "add_account", "key": "a", "on": ON, "uscc": S, "account_no": "6222000001",
            "cnaps": "102100099996", "currency": "CNY"}
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({**payable("n"), "payable_id": "PO1\n"}, "invalid_character", "payable_id"),   # was a 2nd PO1
        ({**payable("t"), "payable_id": "PO1\t"}, "invalid_character", "payable_id"),
        ({**payable("f"), "payable_id": "ＰＯ１"}, "invalid_field", "payable_id"),
        ({**payable("d1"), "due_date": "20260302"}, "invalid_date", "due_date"),
        ({**payable("d2"), "due_date": "2026-W10-1"}, "invalid_date", "due_date"),
        ({**payable("d3"), "due_date": "２０２６-03-02"}, "invalid_date", "due_date"),
        ({**payable("d4"), "due_date": "2026-03-02\n"}, "invalid_character", "due_date"),
        ({**payable("d5"), "due_date": "2026-02-30"}, "invalid_date", "due_date"),
        ({**payable("o1"), "on": "20260302"}, "invalid_date", "on"),
        ({**payable("o2"), "on": "2026-W10-1"}, "invalid_date", "on"),
        ({**payable("s"), "invoice_no": "INV\ud800"}, "invalid_character", "invoice_no"),
        ({**payable("s2"), "invoice_no": "\udfff"}, "invalid_character", "invoice_no"),
        ({**payable("z"), "invoice_no": "I\x00"}, "invalid_character", "invoice_no"),
        ({**payable("c1"), "invoice_no": "I\x85"}, "invalid_character", "invoice_no"),
        ({**payable("k"), "extra\x00": 1}, "invalid_character", "extra\\u0000"),
        ({**payable("k2"), "extra": {"deep": ["x\ud800"]}}, "invalid_character", "extra.deep[0]"),
        ({**payable("u"), "obligor": "９1110000MA0000001L"}, "invalid_uscc", "obligor"),
        ({**acct, "key": "a1", "cnaps": "１０２１０００９９９９６"}, "invalid_field", "cnaps"),
        ({**acct, "key": "a2", "cnaps": "102100099996\n"}, "invalid_character", "cnaps"),
        ({**acct, "key": "a3", "account_no": "６２２２０００００１"}, "invalid_field", "account_no"),
        ({"cmd": "accept", "key": "v", "on": ON, "voucher_no": "V1\n"}, "invalid_character", "voucher_no"),
        ({"cmd": "accept", "key": "v2", "on": ON, "voucher_no": "V1 "}, "invalid_field", "voucher_no"),
        ({**payable("deep"), "x": [[[[[[[[["too deep"]]]]]]]]]}, "too_deep", "x[0][0][0][0][0][0][0]"),
    ]
    before = table_counts(led)
    results = led.apply([c for c, _, _ in cases])
    assert [(r.result, r.data.get("field")) for r in results] == [(code, f) for _, code, f in cases]
    assert all(r.detail and r.detail.isprintable() for r in results)
    assert table_counts(led) == before
    # a NUL or a surrogate in the key itself: refused, and the key is not echoed
    r1, r2 = led.apply([{**payable("kn"), "key": "rp\x00"}, {**payable("ks"), "key": "rp\ud800"}])
    assert (r1.result, r1.key, r1.data) == ("invalid_character", None, {"field": "key"})
    assert (r2.result, r2.key, r2.data) == ("invalid_character", None, {"field": "key"})
    assert table_counts(led) == before


def test_finance_rate_is_plain_ascii_decimal() -> None:
    from ledger.commands import CommandError, _rate

    class C:
        def __init__(self, rate: Any) -> None:
            self.cmd = {"rate": rate}

    for bad in ("３.５", " 0.035", "0.035 ", "3.5E-2", ".035", "0.035\n", "1", "1.0", "0.123456789"):
        with pytest.raises(CommandError):
            _rate(C(bad))  # type: ignore[arg-type]
    assert _rate(C("0.0385"))[0] == "0.0385"  # type: ignore[arg-type]


# --- 2. ledger apply: every line read, per-line results, nothing half-applied -------------------

def hostile_file(path: Path) -> list[tuple[str, str | None]]:
    """The issue's file: 1,200 good lines, then a deep line, then hostile lines, then 10 good
    ones; returns the expected (result, field) per non-blank line."""
    lines: list[bytes] = [json.dumps(c).encode() for c in parties()]
    expect: list[tuple[str, str | None]] = [("ok", None)] * 2
    lines += [json.dumps(payable(i)).encode() for i in range(1200)]
    expect += [("ok", None)] * 1200
    lines.append(b"[" * 5000 + b"]" * 5000)
    expect.append(("too_deep", None))
    lines += [json.dumps(payable(i)).encode() for i in range(1200, 1205)]
    expect += [("ok", None)] * 5
    hostile: list[tuple[bytes, str, str | None]] = [
        (b'{"cmd": "register_payable", "key": "bad\xff"}', "bad_encoding", None),
        ('{"cmd": "register_payable", "key": "gbk", "invoice_no": "发票"}'.encode("gbk"), "bad_encoding",
         None),
        (json.dumps(payable("huge", "1" * 10**6)).encode(), "invalid_amount", "amount"),
        (json.dumps({**payable("nulkey"), "key": "nul\x00"}).encode(), "invalid_character", "key"),
        (json.dumps(payable("nulname", invoice_no="a\x00b")).encode(), "invalid_character", "invoice_no"),
        (json.dumps({"cmd": "register_party", "key": "np", "on": ON, "uscc": "91440300MA0000003T",
                     "name": "x\x00y", "roles": ["supplier"]}).encode(), "invalid_character", "name"),
        (json.dumps(payable("sur", invoice_no="\ud800")).encode(), "invalid_character", "invoice_no"),
        (json.dumps(payable("dup"))[:-1].encode() + b', "amount": "99.00"}', "duplicate_field", "amount"),
        (b'{"cmd": "register_payable", "key": "half', "malformed_json", None),
        (b'{"x": ' + b"1" * 5000 + b"}", "malformed_json", None),
        (b'"just a string"', "malformed", None),
        (b"x" * (1024 * 1024 + 10), "line_too_long", None),
    ]
    for raw, code, field in hostile:
        lines.append(raw)
        expect.append((code, field))
    lines.append(b"")  # a blank line is skipped
    lines += [json.dumps(payable(i)).encode() for i in range(1205, 1215)]
    expect += [("ok", None)] * 10
    path.write_bytes(b"\r\n".join(lines) + b"\n")
    return expect


def test_apply_reads_every_line_and_costs_only_the_bad_ones(url: str, tmp_path: Path) -> None:
    f = tmp_path / "hostile.jsonl"
    expect = hostile_file(f)
    res = runner.invoke(app, ["ledger", "apply", str(f), "--db", url])
    assert res.exit_code == 1, res.output[-2000:]
    out = [json.loads(x) for x in res.stdout.splitlines()]
    assert [(o["result"], o["data"].get("field")) for o in out] == expect
    assert [o["line"] for o in out] == sorted(o["line"] for o in out)  # input order, each with its line
    assert out[1202]["line"] == 1203 and "nested" in out[1202]["detail"]
    led = Ledger.open(url)
    try:
        assert table_counts(led)["ledger_payables"] == 1215  # every good line applied
        assert led.verify().ok
    finally:
        led.close()
    # again: every good line answers exists, the bad ones the same refusals
    again = runner.invoke(app, ["ledger", "apply", str(f), "--db", url])
    out2 = [json.loads(x) for x in again.stdout.splitlines()]
    assert [o["result"] for o in out2] == [("exists" if c == "ok" else c) for c, _ in expect]


def test_apply_same_results_on_both_databases(pg_url: str, tmp_path: Path) -> None:
    f = tmp_path / "hostile.jsonl"
    hostile_file(f)
    outs = []
    for u in (f"sqlite:///{tmp_path / 'x.sqlite'}", pg_url):
        res = runner.invoke(app, ["ledger", "apply", str(f), "--db", u])
        outs.append([json.loads(x) for x in res.stdout.splitlines()])
    assert outs[0] == outs[1]


def test_a_database_refusal_costs_only_its_command(pg_url: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: with the character screen switched off (the only way to get a NUL to
    PostgreSQL now), the DataError rolls back the batch, and the batch is re-applied command by
    command: the NUL command is ``storage_error``, the other 999 apply."""
    import ledger.api

    monkeypatch.setattr(ledger.api, "screen_command", lambda cmd: None)
    cmds = [*parties(), *(payable(i) for i in range(997)), payable("nul", invoice_no="a\x00b")]
    cmds += [payable(i) for i in range(997, 1010)]
    f = tmp_path / "c.jsonl"
    f.write_text("\n".join(json.dumps(c) for c in cmds) + "\n", encoding="utf-8")
    res = runner.invoke(app, ["ledger", "apply", str(f), "--db", pg_url])
    out = [json.loads(x) for x in res.stdout.splitlines()]
    assert res.exit_code == 1
    assert [o["result"] for o in out] == ["ok"] * 999 + ["storage_error"] + ["ok"] * 13
    assert out[999]["line"] == 1000 and "NUL" in out[999]["detail"]


# --- 7. SERIALIZABLE: retried until the deadline, then LedgerBusy --------------------------------

def _hold_chain_head(pg_url: str, led: Ledger,
                     cmds: list[dict[str, Any]]) -> tuple[list[Any], list[BaseException]]:
    """Apply ``cmds`` while another transaction holds an update of the chain head, committed once
    the apply waits on it: the apply's first attempt is a real serialization failure (40001)."""
    import psycopg

    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    results: list[Any] = []
    errors: list[BaseException] = []
    with psycopg.connect(dsn) as blocker, psycopg.connect(dsn, autocommit=True) as watch:
        blocker.execute("UPDATE ledger_chain_head SET seq = seq WHERE id = 1")
        me = blocker.info.backend_pid

        def run() -> None:
            try:
                results.extend(led.apply(cmds))
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=run)
        t.start()
        for _ in range(3000):  # wait (not a timing assertion) until the apply waits on the lock
            row = watch.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> %s",
                (me,)).fetchone()
            if row and row[0]:
                break
            t.join(0.01)
        blocker.commit()
        t.join()
    return results, errors


def test_serializable_failure_is_retried(pg_url: str) -> None:
    led = Ledger.open(pg_url, concurrency="serializable")
    try:
        led.apply(parties())
        results, errors = _hold_chain_head(pg_url, led, [payable(1)])
        assert errors == [] and [r.result for r in results] == ["ok"]
        assert led.retries == 1
        assert led.verify().ok
    finally:
        led.close()


def test_serializable_deadline_spent_is_ledger_busy_and_nothing_applied(pg_url: str) -> None:
    led = Ledger.open(pg_url, concurrency="serializable")
    led.retry_deadline = 0.0  # the deadline is spent at the first failure
    try:
        led.apply(parties())
        before = table_counts(led)
        results, errors = _hold_chain_head(pg_url, led, [payable(1)])
        assert results == [] and len(errors) == 1 and isinstance(errors[0], LedgerBusy)
        busy = errors[0]
        assert busy.retriable and busy.attempts == 1
        assert getattr(busy.__cause__, "orig", None) is not None
        assert busy.__cause__.orig.sqlstate == "40001"  # type: ignore[union-attr]
        assert table_counts(led) == before
        assert led.apply([payable(1)])[0].result == "ok"  # retriable: the same batch applies later
    finally:
        led.close()


# --- the declared field spec covers what the handlers read (#17 builds on it) -------------------

def test_handlers_read_only_declared_fields(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ledger import commands

    read: dict[str, set[str]] = {}

    class Recording(dict):  # type: ignore[type-arg]
        def get(self, k: str, default: Any = None) -> Any:
            read.setdefault(str(dict.get(self, "cmd")), set()).add(k)
            return dict.get(self, k, default)

        def __getitem__(self, k: str) -> Any:
            read.setdefault(str(dict.get(self, "cmd")), set()).add(k)
            return dict.__getitem__(self, k)

    real_init = commands.Ctx.__init__

    def init(self: Any, conn: Any, store: Any, cfg: Any, cmd: Any) -> None:
        if "cmd" in cmd:
            cmd = Recording(cmd)
        real_init(self, conn, store, cfg, cmd)

    monkeypatch.setattr(commands.Ctx, "__init__", init)
    led = Ledger.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    try:
        for f in sorted((Path(__file__).parent / "scenarios").glob("*.jsonl")):
            aliases: dict[str, str] = {}
            for raw in f.read_text(encoding="utf-8").splitlines():
                if not raw.strip() or raw.startswith("#"):
                    continue
                line = raw
                for k, v in aliases.items():
                    line = line.replace(f'"${k}"', json.dumps(v))
                step = json.loads(line)
                aliases.update(step.get("aliases", {}))
                if isinstance(step.get("cmd"), str):
                    step.pop("expect", None)
                    led.apply([step])
    finally:
        led.close()
    assert set(read) == set(commands.HANDLERS)  # the scenarios run every handler
    for name, fields in read.items():
        if name in commands.COMMAND_FIELDS:
            undeclared = fields - set(commands.COMMAND_FIELDS[name]) - set(commands.COMMON_FIELDS)
            assert not undeclared, f"{name} reads undeclared fields {undeclared}"
    assert set(commands.COMMAND_FIELDS) == set(commands.HANDLERS)
