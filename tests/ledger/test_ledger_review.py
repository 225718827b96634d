"""Defects found in the review of the ledger, each pinned by a test that failed before its fix:
USCC spelling, amounts beyond the 64-bit columns, a pending transfer blocking clearing at maturity."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.api import Ledger

OB, S, T = "91110000MA0000001L", "91310000MA00000025", "91440300MA0000003T"
ON = "2026-03-02"


@pytest.fixture
def led(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.sqlite'}")
    try:
        yield ledger
    finally:
        ledger.close()


def setup_cmds() -> list[dict[str, Any]]:
    return [
        {"cmd": "register_party", "key": "p1", "on": ON, "uscc": OB, "name": "o", "roles": ["obligor"]},
        {"cmd": "register_party", "key": "p2", "on": ON, "uscc": S, "name": "s", "roles": ["supplier"]},
        {"cmd": "register_party", "key": "p3", "on": ON, "uscc": T, "name": "t", "roles": ["supplier"]},
        *[
            {
                "cmd": "add_account",
                "key": f"a{i}",
                "on": ON,
                "uscc": u,
                "account_no": f"62220000{i}",
                "cnaps": "102100099996",
                "currency": "CNY",
            }
            for i, u in enumerate((OB, S, T))
        ],
        {"cmd": "set_quota", "key": "q", "on": ON, "obligor": OB, "currency": "CNY", "limit": "1000.00"},
        {
            "cmd": "register_payable",
            "key": "rp",
            "on": ON,
            "payable_id": "PO-1",
            "obligor": OB,
            "supplier": S,
            "amount": "1000.00",
            "currency": "CNY",
        },
        {
            "cmd": "issue",
            "key": "i",
            "on": ON,
            "voucher_no": "V1",
            "obligor": OB,
            "supplier": S,
            "amount": "1000.00",
            "currency": "CNY",
            "maturity": "2026-06-30",
            "backing": [{"payable_id": "PO-1", "amount": "1000.00"}],
        },
        {"cmd": "accept", "key": "ac", "on": ON, "voucher_no": "V1"},
    ]


def test_lower_case_uscc_is_refused_so_one_entity_cannot_be_registered_twice(led: Ledger) -> None:
    # stdnum upper-cases before validating: without the fix the second command was "ok" and the same
    # legal entity existed twice (two quotas, two holders).
    r = led.apply(
        [
            {"cmd": "register_party", "key": "p1", "on": ON, "uscc": S, "name": "s", "roles": ["supplier"]},
            {
                "cmd": "register_party",
                "key": "p2",
                "on": ON,
                "uscc": S.lower(),
                "name": "s",
                "roles": ["supplier"],
            },
        ]
    )
    assert [x.result for x in r] == ["ok", "invalid_uscc"]
    assert r[1].data == {"field": "uscc"}


@pytest.mark.parametrize("amount", ["99999999999999999999", "10000000000000.01"])
def test_amount_beyond_the_columns_is_a_field_error_not_a_crashed_batch(led: Ledger, amount: str) -> None:
    # Before the fix: OverflowError from the driver, the whole batch (good commands too) lost.
    r = led.apply(
        [
            {"cmd": "register_party", "key": "p1", "on": ON, "uscc": OB, "name": "o", "roles": ["obligor"]},
            {"cmd": "set_quota", "key": "q", "on": ON, "obligor": OB, "currency": "CNY", "limit": amount},
        ]
    )
    assert [x.result for x in r] == ["ok", "invalid_amount"]
    assert r[1].data == {"field": "limit"}
    assert led.verify().summary.startswith("ok: 1 entries")


def test_pending_transfer_with_late_expiry_can_be_expired_at_maturity_so_clearing_proceeds(
    led: Ledger,
) -> None:
    assert all(x.result == "ok" for x in led.apply(setup_cmds()))
    t = {
        "cmd": "transfer",
        "key": "t1",
        "on": "2026-06-01",
        "piece_no": "V1-1",
        "from": S,
        "to": T,
        "amount": "400.00",
        "currency": "CNY",
        "expires_on": "2026-12-31",
    }
    assert led.apply_one(t).result == "ok"
    due = "2026-06-30"
    assert led.apply_one({"cmd": "open_clearing", "key": "c0", "on": due, "voucher_no": "V1"}).result == (
        "pieces_locked"
    )
    # before its due date the transfer is still valid
    early = {"cmd": "expire_transfer", "key": "x0", "on": "2026-06-29", "transfer_id": "t1"}
    assert led.apply_one(early).result == "not_expired"
    # the transfer can no longer be accepted (voucher_matured), so it may be expired now
    assert led.apply_one({"cmd": "accept_transfer", "key": "ta", "on": due, "transfer_id": "t1"}).result == (
        "voucher_matured"
    )
    assert (
        led.apply_one({"cmd": "expire_transfer", "key": "x1", "on": due, "transfer_id": "t1"}).result == "ok"
    )
    r = led.apply_one({"cmd": "open_clearing", "key": "c1", "on": due, "voucher_no": "V1"})
    assert r.result == "ok" and r.data["instructions"] == ["CIV1-1"]
    assert led.verify().ok


def test_repurchase_refused_while_the_payment_to_the_funder_is_in_flight(led: Ledger) -> None:
    fb = "91110000MA0000004X"
    cmds = setup_cmds()
    cmds[3:3] = [
        {"cmd": "register_party", "key": "p4", "on": ON, "uscc": fb, "name": "b", "roles": ["funder"]},
        {
            "cmd": "add_account",
            "key": "a4",
            "on": ON,
            "uscc": fb,
            "account_no": "622200004",
            "cnaps": "102100099996",
            "currency": "CNY",
        },
    ]
    cmds += [
        {
            "cmd": "finance",
            "key": "f",
            "on": "2026-03-03",
            "piece_no": "V1-1",
            "holder": S,
            "funder": fb,
            "rate": "0.03",
            "financing_id": "F1",
        },
        {
            "cmd": "record_registration",
            "key": "fr",
            "on": "2026-03-03",
            "financing_id": "F1",
            "registration_no": "ZD-1",
        },
        {"cmd": "disburse", "key": "fd", "on": "2026-03-03", "financing_id": "F1"},
        {"cmd": "open_clearing", "key": "c", "on": "2026-06-30", "voucher_no": "V1"},
        {"cmd": "mark_sent", "key": "ms", "on": "2026-06-30", "instruction_id": "CIV1-1", "message_id": "M1"},
        {"cmd": "mark_overdue", "key": "mo", "on": "2026-07-01", "voucher_no": "V1"},
    ]
    assert [r.result for r in led.apply(cmds)] == ["ok"] * len(cmds)
    rb = {"cmd": "repurchase", "key": "rb", "on": "2026-07-01", "financing_id": "F1"}
    # before the fix: ok, CIV1-1 superseded and CIV1-1R2 opened to pay the seller, while the bank may
    # still execute CIV1-1 to the funder (paid twice, and its statement line matches nothing)
    r = led.apply_one(rb)
    assert (r.result, r.data) == ("instruction_in_flight", {"field": "financing_id"})
    ret = {
        "cmd": "mark_returned",
        "key": "mr",
        "on": "2026-07-01",
        "instruction_id": "CIV1-1",
        "reason": "AC04",
    }
    assert led.apply_one(ret).result == "ok"
    r = led.apply_one(dict(rb, key="rb2"))
    assert r.result == "ok" and r.data["instruction_id"] == "CIV1-1R2"
    assert led.verify().ok


@pytest.mark.postgres
def test_over_long_registration_or_rate_is_a_field_error_not_a_failed_batch_on_postgresql(
    pg_url: str,
) -> None:
    # Before the fix the command was accepted and the batch's COPY failed on PostgreSQL
    # (varchar(100) / varchar(20)): every good command of the batch was lost with it.
    led = Ledger.open(pg_url)
    try:
        fb = "91110000MA0000004X"
        cmds = setup_cmds()
        cmds[3:3] = [
            {"cmd": "register_party", "key": "p4", "on": ON, "uscc": fb, "name": "b", "roles": ["funder"]}
        ]
        fin = {
            "cmd": "finance",
            "key": "f",
            "on": "2026-03-03",
            "piece_no": "V1-1",
            "holder": S,
            "funder": fb,
            "financing_id": "F1",
        }
        cmds += [
            dict(fin, key="f-long", rate="0." + "0" * 19 + "3"),
            dict(fin, rate="0.03"),
            {
                "cmd": "record_registration",
                "key": "fr",
                "on": "2026-03-03",
                "financing_id": "F1",
                "registration_no": "ZD" + "1" * 120,
            },
        ]
        results = [r.result for r in led.apply(cmds)]
        assert results == ["ok"] * (len(cmds) - 3) + ["invalid_field", "ok", "invalid_field"]
        assert led.verify().ok
    finally:
        led.close()
