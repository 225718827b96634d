"""Follow-ups of the second review, each pinned by a test that failed before its fix:

1. ``reverse_settlement``: a settled instruction whose payment came back is reversed by a new,
   balanced journal entry (the settle entry untouched); ``reinstruct`` pays again under a new id.
2. A command line with a duplicate key is refused (``duplicate_field``), never silently resolved.
3. Tenor is checked on the effective maturity (the due date after the holiday roll).
4. ``disburse`` is refused on or after the due date (``voucher_matured``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ledger.api import Ledger
from ledger.calendar import HolidayCalendar
from ledger.cli import app
from ledger.command_text import DuplicateField, loads_strict
from ledger.commands import LedgerConfig

OB, S, T, B = "91110000MA0000001L", "91310000MA00000025", "91440300MA0000003T", "91110000MA0000004X"
ISSUED, DUE = "2026-03-02", "2026-06-30"


def setup_cmds(*, quota: str = "1000000.00") -> list[dict[str, Any]]:
    cmds: list[dict[str, Any]] = []
    for u, role in ((OB, "obligor"), (S, "supplier"), (T, "supplier"), (B, "funder")):
        cmds += [
            {"cmd": "register_party", "key": f"p-{u}", "uscc": u, "name": role, "roles": [role]},
            {"cmd": "add_account", "key": f"a-{u}", "uscc": u, "currency": "CNY",
             "account_no": f"6222{u[8:16]}", "cnaps": "102100099996"},
        ]
    cmds += [
        {"cmd": "add_account", "key": "a2-S", "uscc": S, "currency": "CNY", "account_no": "6222999999",
         "cnaps": "103100000026"},
        {"cmd": "set_quota", "key": "q", "obligor": OB, "currency": "CNY", "limit": quota},
        {"cmd": "register_payable", "key": "ap", "payable_id": "AP1", "obligor": OB, "supplier": S,
         "currency": "CNY", "amount": "1000.00"},
    ]
    return [{"on": ISSUED, **c} for c in cmds]


def world_cmds() -> list[dict[str, Any]]:
    """V1 1,000.00 to S; 300.00 passed to T (V1-2), financed to B and disbursed; S keeps V1-3."""
    return [*setup_cmds(), *[{"on": ISSUED, **c} for c in (
        {"cmd": "issue", "key": "iss", "voucher_no": "V1", "obligor": OB, "supplier": S, "currency": "CNY",
         "amount": "1000.00", "maturity": DUE, "backing": [{"payable_id": "AP1", "amount": "1000.00"}]},
        {"cmd": "accept", "key": "acc", "voucher_no": "V1"},
        {"cmd": "transfer", "key": "tr", "transfer_id": "T1", "piece_no": "V1-1", "from": S, "to": T,
         "currency": "CNY", "amount": "300.00"},
        {"cmd": "accept_transfer", "key": "tra", "transfer_id": "T1"},
        {"cmd": "finance", "key": "fin", "financing_id": "F1", "piece_no": "V1-2", "holder": T, "funder": B,
         "rate": "0.035"},
        {"cmd": "record_registration", "key": "reg", "financing_id": "F1", "registration_no": "ZD1"},
        {"cmd": "disburse", "key": "dis", "financing_id": "F1"},
    )], {"cmd": "open_clearing", "key": "clr", "voucher_no": "V1", "on": DUE}]


def ok(led: Ledger, cmds: list[dict[str, Any]]) -> list[Any]:
    res = led.apply(cmds)
    assert all(r.result == "ok" for r in res), [r.to_json() for r in res if r.result != "ok"]
    return res


def settle(iid: str, amount: str, key: str | None = None, on: str = DUE) -> dict[str, Any]:
    return {"cmd": "settle", "key": key or f"st-{iid}", "on": on, "instruction_id": iid,
            "statement_ref": f"STMT-1#{iid}", "amount": amount, "currency": "CNY"}


def reverse(iid: str, amount: str, key: str | None = None, on: str = "2026-07-03") -> dict[str, Any]:
    return {"cmd": "reverse_settlement", "key": key or f"rev-{iid}", "on": on, "instruction_id": iid,
            "statement_ref": "STMT-2#1", "amount": amount, "currency": "CNY", "reason": "AC04 closed account"}


@pytest.fixture
def led(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ok(ledger, world_cmds())
    try:
        yield ledger
    finally:
        ledger.close()


def q1(led: Ledger, sql: str) -> tuple[Any, ...]:
    with led.engine.connect() as c:
        return tuple(c.exec_driver_sql(sql).one())


def state(led: Ledger) -> dict[str, Any]:
    return {
        "voucher": q1(led, "SELECT state, settled_minor FROM ledger_vouchers WHERE voucher_no = 'V1'"),
        "pieces": q1(led, "SELECT group_concat(piece_no || ':' || state, ',') FROM "
                          "(SELECT piece_no, state FROM ledger_pieces ORDER BY piece_no)"),
        "reserved": q1(led, f"SELECT reserved_minor FROM ledger_quotas WHERE obligor_uscc = '{OB}'")[0],
        "registration": q1(
            led, "SELECT registration_state FROM ledger_financings WHERE financing_id = 'F1'"
        )[0],
    }


# --- 1. reverse_settlement ------------------------------------------------------------------------


def test_reverse_settlement_restores_the_state_before_settlement(led: Ledger) -> None:
    ok(led, [settle("CIV1-2", "300.00")])
    before = state(led)
    (settle_seq,) = q1(led, "SELECT MAX(seq) FROM ledger_journal")
    settle_entry = q1(led, f"SELECT * FROM ledger_journal WHERE seq = {settle_seq}")
    r = ok(led, [settle("CIV1-3", "700.00")])[0]
    assert r.data["voucher_settled"] is True and r.data["registrations_to_cancel"] == ["ZD1"]
    assert state(led)["voucher"] == ("settled", 100000)
    rev = led.apply_one(reverse("CIV1-3", "700.00"))
    # before the fix: unknown_command -- no way to book the returned payment, voucher stayed settled
    assert rev.result == "ok", rev.to_json()
    assert rev.data["voucher_state"] == "clearing" and rev.data["registrations_restored"] == ["ZD1"]
    assert state(led) == before                      # voucher, pieces, quota, registration as before
    # the settle entry is untouched; the reversal is a new entry whose postings negate the settle's
    assert q1(led, f"SELECT * FROM ledger_journal WHERE seq = {settle_seq}") == settle_entry
    with led.engine.connect() as c:
        legs = {s: sorted(c.exec_driver_sql(
            f"SELECT account, currency, amount_minor FROM ledger_postings WHERE entry_seq = {s}").all())
            for s in (r.seq, rev.seq)}
    assert sorted((a, cur, -m) for a, cur, m in legs[r.seq]) == legs[rev.seq]
    views = {v.instruction_id: v.status for v in led.open_instructions()}
    assert views == {"CIV1-3": "returned"}
    assert led.verify().ok
    # idempotent; a second reversal of the same instruction is refused
    assert led.apply_one(reverse("CIV1-3", "700.00")).result == "exists"
    assert led.apply_one(reverse("CIV1-3", "700.00", key="rev-again")).result == "not_settled"
    # re-payable only under a new instruction: reconciliation never matches an EndToEndId twice
    assert led.apply_one({"cmd": "mark_sent", "key": "ms", "on": "2026-07-03", "instruction_id": "CIV1-3",
                          "message_id": "M2"}).result == "reinstruct_required"
    bad = led.apply_one({"cmd": "reinstruct", "key": "re0", "on": "2026-07-03", "instruction_id": "CIV1-3",
                         "account_no": "6222000000"})
    assert bad.result == "unknown_account"
    re = led.apply_one({"cmd": "reinstruct", "key": "re", "on": "2026-07-03", "instruction_id": "CIV1-3",
                        "account_no": "6222999999"})
    assert re.result == "ok", re.to_json()
    assert re.data["instruction_id"] == "CIV1-3R2" and re.data["superseded"] == "CIV1-3"
    assert [(v.instruction_id, v.payee_account, v.status) for v in led.open_instructions()] == [
        ("CIV1-3R2", "6222999999", "open")]
    ok(led, [settle("CIV1-3R2", "700.00")])
    assert state(led)["voucher"] == ("settled", 100000)
    assert led.verify().ok


def test_reversal_returns_an_overdue_voucher_to_overdue(led: Ledger) -> None:
    ok(led, [settle("CIV1-2", "300.00"),
             {"cmd": "mark_overdue", "key": "od", "on": "2026-07-01", "voucher_no": "V1"},
             settle("CIV1-3", "700.00", on="2026-07-02")])
    assert state(led)["voucher"] == ("settled", 100000)
    rev = led.apply_one(reverse("CIV1-3", "700.00"))
    assert rev.result == "ok" and rev.data["voucher_state"] == "overdue"
    assert state(led)["voucher"] == ("overdue", 30000)
    assert led.verify().ok


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"instruction_id": "CIX"}, "unknown_instruction"),
        ({"instruction_id": "CIV1-3"}, "not_settled"),
        ({"amount": "299.99"}, "amount_mismatch"),
        ({"currency": "USD"}, "currency_mismatch"),
        ({"amount": "-1.00"}, "negative_amount"),
        ({"reason": ""}, "missing_field"),
        ({"statement_ref": None}, "missing_field"),
    ],
)
def test_reverse_settlement_refusals_write_nothing(led: Ledger, change: dict[str, Any], code: str) -> None:
    ok(led, [settle("CIV1-2", "300.00")])
    n = q1(led, "SELECT COUNT(*) FROM ledger_journal")
    r = led.apply_one({**reverse("CIV1-2", "300.00"), **change})
    assert r.result == code, r.to_json()
    assert q1(led, "SELECT COUNT(*) FROM ledger_journal") == n


def test_reversal_refused_when_the_quota_cannot_take_it_back(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'q.sqlite'}")
    try:
        ok(ledger, world_cmds())
        ok(ledger, [settle("CIV1-2", "300.00"),
                    # the freed 300.00 is taken away: the limit drops to what stays reserved
                    {"cmd": "set_quota", "key": "q2", "on": "2026-07-01", "obligor": OB, "currency": "CNY",
                     "limit": "700.00"}])
        r = ledger.apply_one(reverse("CIV1-2", "300.00"))
        assert r.result == "quota_exceeded", r.to_json()
        ok(ledger, [{"cmd": "set_quota", "key": "q3", "on": "2026-07-02", "obligor": OB, "currency": "CNY",
                     "limit": "1000.00"}])
        assert ledger.apply_one(reverse("CIV1-2", "300.00", key="rev2")).result == "ok"
        assert ledger.verify().ok
    finally:
        ledger.close()


# --- 2. duplicate keys ------------------------------------------------------------------------------


def test_loads_strict_refuses_duplicate_keys_at_any_depth() -> None:
    assert loads_strict('{"a": 1, "b": {"c": 2}}') == {"a": 1, "b": {"c": 2}}
    for text, name in (('{"a": 1, "a": 2}', "a"), ('{"b": [{"c": 1, "c": 1}]}', "c")):
        with pytest.raises(DuplicateField) as e:
            loads_strict(text)
        assert e.value.field == name and e.value.code == "duplicate_field"


def test_cli_apply_refuses_a_line_with_a_duplicate_key(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    lines = [json.dumps(c, ensure_ascii=False) for c in setup_cmds()]
    # the second "amount" would silently win with json.loads: 1000.00 instead of the 1.00 shown first
    dup = ('{"cmd": "register_payable", "key": "ap2", "on": "2026-03-02", "payable_id": "AP2", '
           f'"obligor": "{OB}", "supplier": "{S}", "currency": "CNY", '
           '"amount": "1.00", "amount": "1000.00"}')
    path = tmp_path / "cmds.jsonl"
    path.write_text("\n".join([*lines, dup]) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["apply", str(path), "--db", db])
    out = [json.loads(x) for x in res.output.splitlines()]
    assert res.exit_code == 1
    assert all(o["result"] == "ok" for o in out[:-1])
    assert out[-1]["result"] == "duplicate_field" and out[-1]["data"] == {"line": len(lines) + 1,
                                                                         "field": "amount"}
    led = Ledger.open(db)
    try:
        assert q1(led, "SELECT COUNT(*) FROM ledger_payables WHERE payable_id = 'AP2'") == (0,)
    finally:
        led.close()


def test_offline_journal_check_refuses_duplicate_keys(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'j.sqlite'}"
    led = Ledger.open(db)
    ok(led, setup_cmds())
    led.close()
    out = tmp_path / "journal.jsonl"
    res = CliRunner().invoke(app, ["export", "--format", "jsonl", "--out", str(out), "--db", db])
    assert res.exit_code == 0
    first, *rest = out.read_text(encoding="utf-8").splitlines()
    out.write_text("\n".join([first[:-1] + ', "seq": 1}', *rest]) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["verify", "--journal", str(out)])
    assert res.exit_code == 1 and "twice" in res.output


# --- 3. tenor on the effective maturity -------------------------------------------------------------


def issue_cmd(on: str, maturity: str, key: str = "iss") -> dict[str, Any]:
    return {"cmd": "issue", "key": key, "on": on, "voucher_no": f"V-{key}", "obligor": OB, "supplier": S,
            "currency": "CNY", "amount": "1.00", "maturity": maturity,
            "backing": [{"payable_id": "AP1", "amount": "1.00"}]}


def test_tenor_is_checked_on_the_due_date_after_the_holiday_roll(tmp_path: Path) -> None:
    led = Ledger.open(f"sqlite:///{tmp_path / 't.sqlite'}")
    try:
        ok(led, setup_cmds())
        # 2027-03-06 is a Saturday exactly one year after the issue date: due Monday 2027-03-08
        r = led.apply_one(issue_cmd("2026-03-06", "2027-03-06"))
        assert r.result == "tenor_exceeded", r.to_json()   # before the fix: ok, due date > 1 year
        assert "2027-03-08" in (r.detail or "")
        r = led.apply_one(issue_cmd("2026-03-06", "2027-03-05", key="iss2"))
        assert r.result == "ok" and r.data["due_date"] == "2027-03-05"
        # 2026-09-05 (Saturday) is exactly 6 months after 2026-03-05: due 2026-09-07, above 6 months
        r = led.apply_one(issue_cmd("2026-03-05", "2026-09-05", key="iss3"))
        assert r.result == "ok" and r.data["due_date"] == "2026-09-07"
        assert r.data["warnings"] == ["tenor_over_6_months", "maturity_adjusted"]  # before: no tenor warning
        r = led.apply_one(issue_cmd("2026-03-05", "2026-09-04", key="iss4"))
        assert "warnings" not in r.data
    finally:
        led.close()


def test_preceding_rule_cannot_roll_the_due_date_onto_the_issue_date(tmp_path: Path) -> None:
    cfg = LedgerConfig(calendar=HolidayCalendar.load("cn"), business_day_rule="preceding")
    led = Ledger.open(f"sqlite:///{tmp_path / 'p.sqlite'}", config=cfg)
    try:
        ok(led, setup_cmds())
        # Friday 2026-03-06, maturity Saturday: "preceding" makes it due the issue date itself
        r = led.apply_one(issue_cmd("2026-03-06", "2026-03-07"))
        assert r.result == "maturity_in_past", r.to_json()   # before the fix: ok, due on the issue date
    finally:
        led.close()


# --- 4. no disbursement at or after maturity ----------------------------------------------------------


def test_disburse_refused_on_or_after_the_due_date(tmp_path: Path) -> None:
    led = Ledger.open(f"sqlite:///{tmp_path / 'd.sqlite'}")
    try:
        cmds = [c for c in world_cmds() if c["key"] not in ("dis", "clr")]
        ok(led, cmds)
        n = q1(led, "SELECT COUNT(*) FROM ledger_journal")
        for on in (DUE, "2026-07-15"):
            r = led.apply_one({"cmd": "disburse", "key": f"dis-{on}", "on": on, "financing_id": "F1"})
            assert r.result == "voucher_matured", r.to_json()   # before the fix: ok
            assert r.data == {"field": "on"}
        assert q1(led, "SELECT COUNT(*) FROM ledger_journal") == n
        assert led.apply_one({"cmd": "disburse", "key": "dis", "on": "2026-06-29",
                              "financing_id": "F1"}).result == "ok"
        assert led.verify().ok
    finally:
        led.close()
