"""Recon fixtures: a real ledger with clearing instructions due, and statement builders.

The ledger is driven only through its public commands (``Ledger.apply``); nothing is inserted
behind its back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.api import ClearingInstructionView, Ledger
from ledger.canonical import Party, Statement, StatementEntry

OBLIGOR = "91110000MA01ABCD1M"
SUPPLIER_1 = "91310000MA1FL0000N"
SUPPLIER_2 = "91440300MA5EXXXX09"
OBLIGOR_ACCOUNT = "6222000000000001"
DUE = date(2026, 12, 15)
ISSUED = date(2026, 11, 2)


@dataclass
class ClearingWorld:
    ledger: Ledger
    url: str
    instructions: list[ClearingInstructionView]

    def by_amount(self, minor: int) -> ClearingInstructionView:
        return next(i for i in self.instructions if i.amount_minor == minor)


def _ok(led: Ledger, cmds: list[dict[str, Any]]) -> list[Any]:
    res = led.apply(cmds)
    bad = [r for r in res if not r.ok]
    assert not bad, bad
    return res


def build_world(url: str) -> ClearingWorld:
    """Obligor O issues V1 (1,000.00 to S1, who passes 300.00 on to S2) and V2 (250.50 to S2, and a
    second 99.99 voucher V3 to S1); all mature on DUE, clearing opened: four instructions."""
    led = Ledger.open(url)
    on = ISSUED.isoformat()
    cmds: list[dict[str, Any]] = [
        {"cmd": "register_party", "key": "p-o", "uscc": OBLIGOR, "name": "核心企业", "roles": ["obligor"],
         "on": on},
        {"cmd": "register_party", "key": "p-s1", "uscc": SUPPLIER_1, "name": "一级供应商",
         "roles": ["supplier"], "on": on},
        {"cmd": "register_party", "key": "p-s2", "uscc": SUPPLIER_2, "name": "二级供应商",
         "roles": ["supplier"], "on": on},
        {"cmd": "add_account", "key": "a-o", "uscc": OBLIGOR, "currency": "CNY",
         "account_no": OBLIGOR_ACCOUNT, "cnaps": "102100099996", "on": on},
        {"cmd": "add_account", "key": "a-s1", "uscc": SUPPLIER_1, "currency": "CNY",
         "account_no": "6222000000000002", "cnaps": "102100099996", "on": on},
        {"cmd": "add_account", "key": "a-s2", "uscc": SUPPLIER_2, "currency": "CNY",
         "account_no": "6222000000000003", "cnaps": "103100000026", "on": on},
        {"cmd": "set_quota", "key": "q-o", "obligor": OBLIGOR, "currency": "CNY", "limit": "1000000.00",
         "on": on},
    ]
    for n, (supplier, amount) in enumerate(((SUPPLIER_1, "1000.00"), (SUPPLIER_2, "250.50"),
                                            (SUPPLIER_1, "99.99")), start=1):
        cmds += [
            {"cmd": "register_payable", "key": f"pay-{n}", "payable_id": f"AP{n}", "obligor": OBLIGOR,
             "supplier": supplier, "currency": "CNY", "amount": amount, "on": on},
            {"cmd": "issue", "key": f"iss-{n}", "voucher_no": f"V{n}", "obligor": OBLIGOR,
             "supplier": supplier, "currency": "CNY", "amount": amount, "maturity": DUE.isoformat(),
             "backing": [{"payable_id": f"AP{n}", "amount": amount}], "on": on},
            {"cmd": "accept", "key": f"acc-{n}", "voucher_no": f"V{n}", "on": on},
        ]
    cmds += [
        {"cmd": "transfer", "key": "t-1", "transfer_id": "T1", "piece_no": "V1-1", "from": SUPPLIER_1,
         "to": SUPPLIER_2, "currency": "CNY", "amount": "300.00", "on": "2026-11-10"},
        {"cmd": "accept_transfer", "key": "t-1-acc", "transfer_id": "T1", "on": "2026-11-11"},
    ]
    cmds += [{"cmd": "open_clearing", "key": f"clr-{n}", "voucher_no": f"V{n}", "on": DUE.isoformat()}
             for n in (1, 2, 3)]
    _ok(led, cmds)
    return ClearingWorld(led, url, led.open_instructions())


def entry(amount_minor: int, cd: str = "DBIT", *, on: date = DUE, ccy: str = "CNY",
          **kw: Any) -> StatementEntry:
    return StatementEntry(amount_minor=amount_minor, currency=ccy, credit_debit=cd,  # type: ignore[arg-type]
                          booking_date=on, value_date=on, **kw)


def statement(entries: list[StatementEntry], *, sid: str = "STMT-1", account: str = OBLIGOR_ACCOUNT,
              to_date: date = DUE, ccy: str = "CNY") -> Statement:
    return Statement(source_format="test", statement_id=sid, account=account, currency=ccy, sequence=1,
                     created_at=None, from_date=to_date, to_date=to_date, opening_balance_minor=None,
                     closing_balance_minor=None, entries=tuple(entries))


def counterparty(name: str) -> Party:
    return Party(name=name)
