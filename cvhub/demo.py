"""``cvhub demo --ledger-only``: a ledger scenario run from issuance to settlement, no Airflow.

Registers an obligor, two suppliers and a bank, issues a voucher against a confirmed payable,
splits and transfers part of it, finances that part, opens clearing at maturity, settles every
instruction by a statement reference and verifies the ledger. Every command has a stable key, so a
second run changes nothing (every command answers ``exists``). The business date moves forward
with the scenario; nothing reads the clock. The full main job is ``plugins.cvhub_flows.demo``.
"""

from __future__ import annotations

from typing import Any

OBLIGOR = "91110000MA0000001L"  # 核心企业 (obligor)
SUPPLIER = "91310000MA00000025"  # tier-1 supplier
SUB_SUPPLIER = "91440300MA0000003T"  # tier-2 supplier
BANK = "91110000MA0000004X"  # funder


def scenario() -> list[dict[str, Any]]:
    """The demo's commands before clearing (clearing needs the instruction ids the ledger assigns)."""
    d0, d1, d2 = "2026-03-02", "2026-03-03", "2026-03-10"
    cmds: list[dict[str, Any]] = [
        {
            "cmd": "register_party",
            "key": "demo:party:obligor",
            "on": d0,
            "uscc": OBLIGOR,
            "name": "华北建设集团有限公司",
            "roles": ["obligor"],
        },
        {
            "cmd": "register_party",
            "key": "demo:party:supplier",
            "on": d0,
            "uscc": SUPPLIER,
            "name": "上海钢材供应有限公司",
            "roles": ["supplier"],
        },
        {
            "cmd": "register_party",
            "key": "demo:party:sub",
            "on": d0,
            "uscc": SUB_SUPPLIER,
            "name": "深圳五金制品有限公司",
            "roles": ["supplier"],
        },
        {
            "cmd": "register_party",
            "key": "demo:party:bank",
            "on": d0,
            "uscc": BANK,
            "name": "示范商业银行北京分行",
            "roles": ["funder"],
        },
    ]
    for who, acct, cnaps in (
        (OBLIGOR, "110060224018800012345", "102100099996"),
        (SUPPLIER, "310066771018010056789", "103290035021"),
        (SUB_SUPPLIER, "443066285018010011223", "105584000005"),
        (BANK, "110060224018800099999", "102100099996"),
    ):
        cmds.append(
            {
                "cmd": "add_account",
                "key": f"demo:account:{who}",
                "on": d0,
                "uscc": who,
                "account_no": acct,
                "cnaps": cnaps,
                "currency": "CNY",
            }
        )
    cmds += [
        {
            "cmd": "set_quota",
            "key": "demo:quota",
            "on": d0,
            "obligor": OBLIGOR,
            "limit": "10000000.00",
            "currency": "CNY",
        },
        {
            "cmd": "register_payable",
            "key": "demo:payable:PO-2026-0001",
            "on": d0,
            "payable_id": "PO-2026-0001",
            "obligor": OBLIGOR,
            "supplier": SUPPLIER,
            "amount": "1000000.00",
            "currency": "CNY",
            "invoice_no": "INV-88001",
            "contract_no": "HT-2026-017",
        },
        {
            "cmd": "issue",
            "key": "demo:issue:1",
            "on": d0,
            "voucher_no": "CVDEMO0001",
            "obligor": OBLIGOR,
            "supplier": SUPPLIER,
            "amount": "800000.00",
            "currency": "CNY",
            "maturity": "2026-09-26",
            "backing": [{"payable_id": "PO-2026-0001", "amount": "800000.00"}],
        },
        {"cmd": "accept", "key": "demo:accept:1", "on": d1, "voucher_no": "CVDEMO0001"},
        {
            "cmd": "transfer",
            "key": "demo:transfer:1",
            "on": d1,
            "piece_no": "CVDEMO0001-1",
            "from": SUPPLIER,
            "to": SUB_SUPPLIER,
            "amount": "300000.00",
            "currency": "CNY",
        },
        {
            "cmd": "accept_transfer",
            "key": "demo:transfer:1:accept",
            "on": d2,
            "transfer_id": "demo:transfer:1",
        },
        {
            "cmd": "finance",
            "key": "demo:finance:1",
            "on": d2,
            "piece_no": "CVDEMO0001-2",
            "holder": SUB_SUPPLIER,
            "funder": BANK,
            "rate": "0.0350",
            "recourse": True,
        },
        {
            "cmd": "record_registration",
            "key": "demo:finance:1:registration",
            "on": d2,
            "financing_id": "demo:finance:1",
            "registration_no": "ZD2026031000012345",
        },
        {"cmd": "disburse", "key": "demo:finance:1:disburse", "on": d2, "financing_id": "demo:finance:1"},
        {"cmd": "open_clearing", "key": "demo:clearing:1", "on": "2026-09-28", "voucher_no": "CVDEMO0001"},
    ]
    return cmds


def run_demo(db_url: str | None) -> int:
    from rich.console import Console

    from ledger.api import Ledger

    console = Console()
    led = Ledger.open(db_url)
    try:
        results = led.apply(scenario())
        instructions = [i for i in led.open_instructions() if i.voucher_no == "CVDEMO0001"]
        follow: list[dict[str, Any]] = []
        for n, ins in enumerate(sorted(instructions, key=lambda i: i.instruction_id), 1):
            amount = f"{ins.amount_minor // 100}.{ins.amount_minor % 100:02d}"
            follow += [
                {
                    "cmd": "mark_sent",
                    "key": f"demo:sent:{ins.instruction_id}",
                    "on": "2026-09-28",
                    "instruction_id": ins.instruction_id,
                    "message_id": "DEMO-PAIN001-0001",
                },
                {
                    "cmd": "settle",
                    "key": f"demo:settle:{ins.instruction_id}",
                    "on": "2026-09-29",
                    "instruction_id": ins.instruction_id,
                    "statement_ref": f"DEMO-STMT-0929-{n:03d}",
                    "amount": amount,
                    "currency": ins.currency,
                },
            ]
        results += led.apply(follow)
        bad = [r for r in results if not r.ok]
        for r in bad:
            console.print(f"[red]{r.key}: {r.result}: {r.detail}[/red]")
        ok = sum(r.result == "ok" for r in results)
        exists = sum(r.result == "exists" for r in results)
        warnings = sorted({w for r in results for w in r.data.get("warnings", [])})
        report = led.verify()
        console.print(f"ledger: {led.engine.url.render_as_string(hide_password=True)}")
        console.print(
            f"commands: {len(results)} ({ok} applied, {exists} already there, {len(bad)} refused)"
            + (f"; warnings: {', '.join(warnings)}" if warnings else "")
        )
        console.print(f"verify: {report.summary}")
        return 0 if report.ok and not bad else 1
    finally:
        led.close()
