"""Concurrency on PostgreSQL: 8 workers transfer and split the same pieces at once.

Each worker has its own Ledger (own cache) on the shared database and races the others for the
same live pieces. Losers get refusals (piece_locked, not_holder, piece_not_live), never a double
spend: afterwards verify passes, totals per voucher are conserved, and no piece is consumed twice.
Both concurrency modes are exercised: row lock on the chain head and SERIALIZABLE with retry.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

import pytest

from cvhub.demo import BANK, OBLIGOR, SUB_SUPPLIER, SUPPLIER
from ledger.api import Ledger

HOLDERS = [SUPPLIER, SUB_SUPPLIER, BANK]
ON = "2026-03-02"
WORKERS = 8
ROUNDS = 25


def setup_ledger(led: Ledger) -> int:
    cmds: list[dict[str, Any]] = []
    for u, role in (
        (OBLIGOR, "obligor"),
        (SUPPLIER, "supplier"),
        (SUB_SUPPLIER, "supplier"),
        (BANK, "funder"),
    ):
        cmds.append(
            {"cmd": "register_party", "key": f"p{u}", "on": ON, "uscc": u, "name": u, "roles": [role]}
        )
    cmds.append(
        {
            "cmd": "set_quota",
            "key": "q",
            "on": ON,
            "obligor": OBLIGOR,
            "limit": "100000000.00",
            "currency": "CNY",
        }
    )
    cmds.append(
        {
            "cmd": "register_payable",
            "key": "rp",
            "on": ON,
            "payable_id": "PO",
            "obligor": OBLIGOR,
            "supplier": SUPPLIER,
            "amount": "100000000.00",
            "currency": "CNY",
        }
    )
    for i in range(4):
        cmds.append(
            {
                "cmd": "issue",
                "key": f"i{i}",
                "on": ON,
                "voucher_no": f"CV{i}",
                "obligor": OBLIGOR,
                "supplier": SUPPLIER,
                "amount": "100000.00",
                "currency": "CNY",
                "maturity": "2026-06-30",
                "backing": [{"payable_id": "PO", "amount": "100000.00"}],
            }
        )
        cmds.append({"cmd": "accept", "key": f"a{i}", "on": ON, "voucher_no": f"CV{i}"})
    assert all(r.result == "ok" for r in led.apply(cmds))
    return 4 * 10_000_000


def worker(url: str, n: int, mode: str, outcomes: Counter[str], lock: threading.Lock) -> None:
    rnd = random.Random(n)
    led = Ledger.open(url, concurrency=mode, migrate_schema=False)  # type: ignore[arg-type]
    try:
        for r in range(ROUNDS):
            with led.engine.connect() as conn:
                live = conn.exec_driver_sql(
                    "SELECT piece_no, holder_uscc, amount_minor FROM ledger_pieces "
                    "WHERE state = 'live' ORDER BY piece_no"
                ).all()
            piece, holder, amount = rnd.choice(live[:6])  # overlap on purpose: everyone wants the same few
            to = rnd.choice([h for h in HOLDERS if h != holder])
            part = max(1, amount * rnd.randint(1, 100) // 100)
            tid = f"w{n}r{r}"
            transfer = {
                "cmd": "transfer",
                "key": tid,
                "on": ON,
                "piece_no": piece,
                "from": holder,
                "to": to,
                "amount": f"{part // 100}.{part % 100:02d}",
                "currency": "CNY",
            }
            settle = {
                "cmd": "accept_transfer" if rnd.random() < 0.8 else "void_transfer",
                "key": tid + "a",
                "on": ON,
                "transfer_id": tid,
            }
            results = (
                led.apply([transfer, settle])
                if rnd.random() < 0.5
                else [led.apply_one(transfer), led.apply_one(settle)]
            )
            with lock:
                for res in results:
                    outcomes[res.result] += 1
    finally:
        led.close()


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["lock", "serializable"])
def test_concurrent_transfers_conserve(pg_url: str, mode: str) -> None:
    led = Ledger.open(pg_url)
    total = setup_ledger(led)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    threads = [
        threading.Thread(target=worker, args=(pg_url, n, mode, outcomes, lock)) for n in range(WORKERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"{mode}: {dict(outcomes)}")
    assert outcomes["ok"] > WORKERS * ROUNDS // 2, outcomes  # real work happened
    assert sum(v for k, v in outcomes.items() if k != "ok") > 0, outcomes  # and the workers did collide
    assert set(outcomes) <= {
        "ok",
        "piece_locked",
        "not_holder",
        "piece_not_live",
        "transfer_not_pending",
        "unknown_transfer",
    }, outcomes
    report = led.verify()
    assert report.ok, report.summary
    with led.engine.connect() as conn:
        live = conn.exec_driver_sql(
            "SELECT SUM(amount_minor) FROM ledger_pieces WHERE state IN ('live', 'locked')"
        ).scalar()
        consumed_twice = conn.exec_driver_sql(
            "SELECT piece_no FROM ledger_transfers WHERE state = 'accepted' "
            "GROUP BY piece_no HAVING COUNT(*) > 1"
        ).all()
        per_voucher = conn.exec_driver_sql(
            "SELECT voucher_no, SUM(amount_minor) FROM ledger_pieces WHERE state IN ('live', 'locked') "
            "GROUP BY voucher_no"
        ).all()
    assert live == total
    assert consumed_twice == []
    assert all(s == 10_000_000 for _, s in per_voucher)
    led.close()
