"""A small world for the store checks of ``verify``: a ledger with reconciliation (settles, an
unmatched line, a return before and after settlement, a pain.002 reject after booking), quarantine
items of the SRM flow, an SRM write-back batch, a financing registered through the manual registry
queue (confirmed, its cancellation filed), and processed SFTP files (done, duplicate, failed) with
their raw archive. Everything is written through the owners' own APIs, nothing behind their backs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.archive import Archive
from connectors.registry.manual import ManualRegistry, default_db_url
from connectors.registry.model import RegistrationRequest
from connectors.sftp_record import FileKey, ProcessedFiles
from cvhub.settings import Settings
from ledger import quarantine
from ledger.canonical import PaymentStatus
from ledger.recon.model import ExpectedItem
from ledger.recon.service import record_payment_statuses, register_expected, run_statement
from plugins.cvhub_flows.flow_verify import REGISTRY_FLOW, SRM_FLOW, issue_key, request_no
from tests.recon.recon_world import DUE, ISSUED, OBLIGOR, SUPPLIER_1, build_world, entry, statement

FUNDER = "91440300MA5FUND001"
AT = datetime(2026, 12, 20, 9, 0, tzinfo=UTC)
SHA_A = "a" * 64


def _ok(led: Any, cmds: list[dict[str, Any]]) -> list[Any]:
    res = led.apply(cmds)
    assert all(r.ok for r in res), [r.to_json() for r in res if not r.ok]
    return res


def build(data_dir: Path, db_url: str | None = None) -> Settings:
    """The world under ``data_dir`` (its ledger at ``db_url``, default ``data_dir/ledger.sqlite``)."""
    settings = Settings(data_dir=data_dir, db_url=db_url or f"sqlite:///{data_dir / 'ledger.sqlite'}")
    w = build_world(settings.db_url)
    led = w.ledger
    on = ISSUED.isoformat()
    # SRM-issued vouchers (keys srm:issue:<payable>) and a financed one, registered via the queue
    cmds: list[dict[str, Any]] = [
        {
            "cmd": "register_party",
            "key": "p-f",
            "uscc": FUNDER,
            "name": "银行",
            "roles": ["funder"],
            "on": on,
        },
    ]
    for n, amount in ((7, "10.00"), (8, "20.00"), (9, "5000.00")):
        cmds += [
            {
                "cmd": "register_payable",
                "key": f"srm:payable:AP{n}",
                "payable_id": f"AP{n}",
                "obligor": OBLIGOR,
                "supplier": SUPPLIER_1,
                "currency": "CNY",
                "amount": amount,
                "on": on,
            },
            {
                "cmd": "issue",
                "key": issue_key(f"AP{n}"),
                "obligor": OBLIGOR,
                "supplier": SUPPLIER_1,
                "currency": "CNY",
                "amount": amount,
                "maturity": (DUE + timedelta(days=60)).isoformat(),
                "backing": [{"payable_id": f"AP{n}", "amount": amount}],
                "on": on,
            },
        ]
    res = _ok(led, cmds)
    vouchers = {f"AP{n}": r.data["voucher_no"] for n, r in zip((7, 8, 9), res[2::2], strict=True)}
    v9 = vouchers["AP9"]
    _ok(
        led,
        [
            {"cmd": "accept", "key": "acc-9", "voucher_no": v9, "on": on},
            {
                "cmd": "finance",
                "key": "fin-9",
                "financing_id": "F9",
                "piece_no": f"{v9}-1",
                "holder": SUPPLIER_1,
                "funder": FUNDER,
                "rate": "0.03",
                "on": on,
            },
        ],
    )
    registry = ManualRegistry(default_db_url(data_dir))
    try:
        reg = registry.register(
            RegistrationRequest(
                request_no=request_no("reg", "F9"),
                kind="TRANSFER",
                grantor_uscc=SUPPLIER_1,
                grantor_name="一级供应商",
                grantee_uscc=FUNDER,
                grantee_name="银行",
                voucher_id=v9,
                piece_id=f"{v9}-1",
                amount_minor=500000,
                currency="CNY",
                term_months=3,
            )
        )
        assert reg.packet_id is not None
        registry.confirm(reg.packet_id, "ZD2026000123")
        _ok(
            led,
            [
                {
                    "cmd": "record_registration",
                    "key": "registry:F9",
                    "on": on,
                    "financing_id": "F9",
                    "registration_no": "ZD2026000123",
                }
            ],
        )
        registry.cancel("ZD2026000123", request_no=request_no("cxl", "F9"), reason="test")
    finally:
        registry.close()
    # reconciliation: STMT-1 pays three instructions and has a line nobody expects; STMT-2 returns
    # one instruction still open and one STMT-1 settled; a pain.002 rejects one after booking
    by = {i.amount_minor: i for i in w.instructions}
    with led.session() as s:
        register_expected(
            s,
            [
                ExpectedItem(
                    "repay:1",
                    "repayment",
                    "6222000000000001",
                    "CNY",
                    "CRDT",
                    777,
                    DUE,
                    serial_no="SER-1",
                    counterparty="某银行",
                )
            ],
        )
    st1 = statement(
        [entry(by[m].amount_minor, end_to_end_id=by[m].end_to_end_id) for m in (30000, 70000, 9999)]
        + [entry(4242, "CRDT")]
    )
    back = DUE + timedelta(days=3)
    st2 = statement(
        [
            entry(25050, "CRDT", on=back, end_to_end_id=by[25050].end_to_end_id, return_reason="AC01"),
            entry(9999, "CRDT", on=back, end_to_end_id=by[9999].end_to_end_id, return_reason="AC04"),
        ],
        sid="STMT-2",
        to_date=back,
    )
    for st in (st1, st2):
        with led.session() as s:
            run_statement(s, st, ledger=led)
    with led.session() as s:
        rejected = PaymentStatus(
            original_message_id="MSG-1",
            level="transaction",
            status="RJCT",
            original_instruction_id=by[30000].instruction_id,
            reason_code="AC04",
        )
        assert record_payment_statuses(s, [rejected], business_date=back, ledger=led) == 1
        # the SRM flow's quarantine: a write-back the SRM refused, a payable replayed, one still open
        quarantine.put(
            s,
            flow=SRM_FLOW,
            item_ref="writeback:AP7",
            source_sha256=SHA_A,
            reason_code="ClientError",
            message="422",
            at=AT,
            source_name="vouchers.json",
            context={"kind": "write_back"},
            raw=json.dumps(
                {"payable_id": "AP7", "voucher_no": vouchers["AP7"], "amount": "10.00", "currency": "CNY"},
                sort_keys=True,
            ).encode(),
        )
        quarantine.put(
            s,
            flow=SRM_FLOW,
            item_ref="AP8",
            source_sha256=SHA_A,
            reason_code="no_quota",
            message="no quota",
            at=AT,
            line=2,
            context={"kind": "issue", "business_date": on},
        )
        quarantine.resolve(s, flow=SRM_FLOW, item_ref="AP8", resolution=f"issued {vouchers['AP8']}", at=AT)
        quarantine.put(
            s,
            flow=SRM_FLOW,
            item_ref="AP-NEVER",
            source_sha256=SHA_A,
            reason_code="unknown_party",
            message="obligor unknown",
            at=AT,
            line=3,
            context={"kind": "issue", "business_date": on},
        )
        quarantine.set_cursor(s, REGISTRY_FLOW, "cancelled:F9", "ZD2026000123", at=AT)
    batch = data_dir / "flows" / SRM_FLOW / "2026-11-02" / "vouchers.json"
    batch.parent.mkdir(parents=True)
    batch.write_text(
        json.dumps(
            [
                {"payable_id": p, "voucher_no": vouchers[p], "amount": a, "currency": "CNY"}
                for p, a in (("AP7", "10.00"), ("AP8", "20.00"))
            ]
        ),
        encoding="utf-8",
    )
    # processed files: one done, a duplicate delivery of it under another name, one failed
    archive = Archive(settings.archive_dir)
    record = ProcessedFiles(default_db_url(data_dir))
    try:
        for name, data, how in (
            ("stmt-1.xml", b"<Document>1</Document>", "done"),
            ("stmt-1-again.xml", b"<Document>1</Document>", "duplicate"),
            ("broken.xml", b"<Docu", "failed"),
        ):
            item = archive.store(data, system="bank_a", operation="fetch", direction="in", ref=f"/out/{name}")
            claim = record.claim(FileKey("bank_a", "/out", name, len(data), 1767225600), now=AT)
            assert claim is not None
            if how == "done":
                record.commit(claim, item.sha256)
            elif how == "duplicate":
                record.commit(claim, item.sha256, duplicate_of="/out/stmt-1.xml")
            else:
                record.fail(claim, "ValueError: truncated", sha256=item.sha256)
    finally:
        record.dispose()
    led.close()
    return settings
