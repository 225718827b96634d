"""ERP connector: AP exports in (GB18030/UTF-8, mapped, archived, once), GL journals out (idempotent)."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from connectors.archive import Archive
from connectors.erp import ApExport, ErpConnector
from connectors.sftp import SftpSettings
from connectors.sftp_record import ProcessedFiles
from ledger.canonical import GlJournal, GlLine, GlPosting
from mappings.gl import parse_gl_journal
from sandbox import erp as erp_sandbox

OBLIGOR = "91310000MA1FL0000N"
SUPPLIER = "91110108MA0000001D"


def row(pid: str, amount: str, supplier: str = SUPPLIER) -> dict[str, str]:
    return {"payable_id": pid, "obligor_uscc": OBLIGOR, "supplier_uscc": supplier,
            "supplier_name": "上海某某机械有限公司", "amount": amount, "currency": "CNY",
            "due_date": "2027-03-01", "invoice_no": f"INV-{pid}"}


@pytest.fixture
def erp(sftp_sandbox: Any, sandbox_settings: Any, data_dir: Path) -> ErpConnector:
    erp_sandbox.prepare(sftp_sandbox.box)
    settings: SftpSettings = sandbox_settings(system="erp", inbox="/" + erp_sandbox.AP_DIR,
                                              outbox="/" + erp_sandbox.GL_DIR)
    return ErpConnector(settings, archive=Archive(data_dir / "archive"),
                        record=ProcessedFiles.for_data_dir(data_dir))


def test_ap_exports_in_mapped_archived_once(erp: ErpConnector, sftp_sandbox: Any, tmp_path: Path) -> None:
    box = sftp_sandbox.box
    erp_sandbox.drop_ap_export(box, "AP_20261128.csv",
                               [row("AP-1", "1000.00"), row("AP-2", "12.5"), row("AP-3", "1.234")])
    erp_sandbox.drop_ap_export(box, "AP_20261129.csv", [row("AP-4", "7")], encoding="utf-8")
    got: list[ApExport] = []
    report = erp.fetch_ap_exports(tmp_path / "local", got.append)
    assert [e.name for e in got] == ["AP_20261128.csv", "AP_20261129.csv"]
    first = got[0]
    assert [(p.payable_id, p.amount_minor, p.currency) for p in first.payables] == [
        ("AP-1", 100000, "CNY"), ("AP-2", 1250, "CNY")]
    (bad,) = first.result.rejected  # 1.234 CNY has too many decimals: rejected, the rest flows
    assert bad.line == 4 and "amount" in (bad.field or "")
    raw = (box.root / erp_sandbox.AP_DIR / "AP_20261128.csv").read_bytes()
    assert first.sha256 == hashlib.sha256(raw).hexdigest()
    assert erp.archive.read(first.sha256) == raw  # archived raw, byte for byte (GB18030)
    assert got[1].payables[0].supplier_name == "上海某某机械有限公司"
    assert report.transport is not None and report.transport.failed == []
    again = erp.fetch_ap_exports(tmp_path / "local", got.append)
    assert len(got) == 2 and again.files == []


def test_ap_export_with_bad_header_is_quarantined(erp: ErpConnector, sftp_sandbox: Any,
                                                  tmp_path: Path) -> None:
    box = sftp_sandbox.box
    box.put_file(erp_sandbox.AP_DIR, "AP_broken.csv", "编号,金额\r\n1,2\r\n".encode("gb18030"))
    erp_sandbox.drop_ap_export(box, "AP_ok.csv", [row("AP-9", "9.00")])
    got: list[ApExport] = []
    report = erp.fetch_ap_exports(tmp_path / "local", got.append)
    assert [e.name for e in got] == ["AP_ok.csv"]
    assert report.transport is not None
    ((name, err),) = report.transport.failed
    assert name == "AP_broken.csv" and "header lacks columns" in str(err)
    assert [k.name for k, _ in erp.record.failed("erp")] == ["AP_broken.csv"]


def _journal(amount: int) -> GlJournal:
    lines = (GlLine("2202", amount, 0, "CNY", party_uscc=SUPPLIER, voucher_id="V1"),
             GlLine("2201", 0, amount, "CNY", party_uscc=SUPPLIER, voucher_id="V1"))
    return GlJournal("J-20261128", "C001", date(2026, 11, 28),
                     (GlPosting("E-1", "issuance", date(2026, 11, 28), "开立 V1", lines),))


def test_gl_journal_out_idempotent_and_versioned(erp: ErpConnector, sftp_sandbox: Any) -> None:
    first = erp.deliver_gl_journal(_journal(100000))
    same = erp.deliver_gl_journal(_journal(100000))
    changed = erp.deliver_gl_journal(_journal(200000))
    assert (first.status, same.status, changed.status) == ("uploaded", "unchanged", "versioned")
    assert first.name == "GL_C001_20261128_J-20261128.csv"
    assert changed.name == "GL_C001_20261128_J-20261128.v2.csv"
    gl_dir = sftp_sandbox.root / erp_sandbox.GL_DIR
    back = parse_gl_journal((gl_dir / first.name).read_bytes(), source=first.name)
    assert back == _journal(100000)
    assert (gl_dir / (first.name + ".done")).exists()
    assert erp.archive.read(first.sha256) == (gl_dir / first.name).read_bytes()


@pytest.mark.sshd
def test_gl_journal_out_against_openssh(sshd_settings: Any, data_dir: Path) -> None:
    settings: SftpSettings = sshd_settings(system="erp")
    conn = ErpConnector(settings, archive=Archive(data_dir / "archive"),
                        record=ProcessedFiles.for_data_dir(data_dir), gl_encoding="gb18030")
    up = conn.deliver_gl_journal(_journal(5000))
    assert conn.deliver_gl_journal(_journal(5000)).status == "unchanged"
    data = (Path(settings.outbox) / up.name).read_bytes()
    assert parse_gl_journal(data, source=up.name, encoding="gb18030") == _journal(5000)
