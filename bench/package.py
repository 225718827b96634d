"""``cvhub bench package``: what inert text costs the finance package's CSV and XLSX writers.

Builds N synthetic matched rows and N/10 exceptions in memory (1 % of the text values are
injection payloads, the rest the usual ids, names and Chinese remittance text) and times
``render_csv`` and ``render_xlsx`` from ``ledger.recon.package`` (every text cell through
``ledger.inert``) against a baseline measured in the same run: the bare ``csv.writer`` and bare
openpyxl ``append`` writing the same values (what the writers did before issue #19). No database.

Prints ``package ratio_csv=<bare/ours> ratio_xlsx=<bare/ours>`` and the seconds (best of 3).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from datetime import date

DAY = date(2026, 12, 16)
PAYLOADS = ("=cmd|' /C calc'!A0", '=HYPERLINK("http://127.0.0.1:9/x","click")', "@SUM(1+1)", "－1+1")


def _data(n: int) -> object:
    from ledger.recon.package import ExceptionRecord, MatchedRecord, PackageData

    def text(i: int, usual: str) -> str:
        return PAYLOADS[i % len(PAYLOADS)] if i % 100 == 7 else usual

    matched = [MatchedRecord(
        account="6222000000000001", statement_id="CAMT-20261216", line_no=i + 1, value_date=DAY,
        direction="DBIT", amount_minor=100_00 + i, currency="CNY", item_kind="clearing",
        item_id=f"CI{i:09d}", item_ref=f"E2E{i:09d}", voucher_no=f"V{i // 3:08d}",
        piece_no=f"V{i // 3:08d}-1",
        obligor_uscc="91110000MA01ABCD1M", rule="ref_end_to_end_id", group_no=i + 1,
        counterparty=text(i, f"二级供应商{i % 97}有限公司 / 622200000{i:010d}"),
        bank_ref=text(i + 1, f"B{i}"),
        due_date=DAY, item_amount_minor=100_00 + i) for i in range(n)]
    exceptions = [ExceptionRecord(
        code="UNMATCHED_LINE", account="6222000000000001", statement_id="CAMT-20261216", line_no=n + i + 1,
        item_id=None, amount_minor=5_00 + i, currency="CNY", obligor_uscc=None, status="open",
        detail="no expected item fits", business_date=DAY, value_date=DAY, direction="CRDT",
        remittance_info=text(i, f"货款 {i}"), counterparty=text(i + 3, f"未知付款人{i}"))
        for i in range(max(1, n // 10))]
    return PackageData(DAY, "all", None, matched=matched, exceptions=exceptions, open_exceptions=exceptions,
                       daily={"CNY": [(DAY, 0, 0)]})


def _bare_csv(data: object) -> bytes:
    from ledger.recon.package import CSV_COLUMNS, PackageData, _money

    assert isinstance(data, PackageData)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    bd = data.business_date.isoformat()
    for r in data.matched:
        w.writerow(("MATCHED", bd, r.account, r.statement_id, r.line_no, r.value_date, r.direction,
                    _money(r.amount_minor, r.currency), r.currency, r.item_kind, r.item_id, r.item_ref,
                    r.voucher_no, r.piece_no, r.obligor_uscc, r.rule, r.group_no, r.counterparty, r.bank_ref,
                    "matched", "", ""))
    for x in data.exceptions:
        w.writerow(("EXCEPTION", bd, x.account, x.statement_id, x.line_no, x.value_date, x.direction,
                    _money(x.amount_minor, x.currency), x.currency, "", x.item_id, "", "", "", x.obligor_uscc,
                    x.code, "", x.counterparty, "", x.status, f"{x.detail}; remittance: {x.remittance_info}",
                    ""))
    return buf.getvalue().encode("utf-8-sig")


def _bare_xlsx(data: object) -> bytes:
    from openpyxl import Workbook

    from ledger.recon.package import PackageData, _dec

    assert isinstance(data, PackageData)
    wb = Workbook()
    wm = wb.active
    assert wm is not None
    for r in data.matched:
        wm.append((r.account, r.statement_id, r.line_no, r.value_date, r.direction,
                   _dec(r.amount_minor, r.currency), r.currency, r.item_kind, r.item_id, r.item_ref,
                   r.voucher_no, r.piece_no, r.obligor_uscc, r.rule, r.group_no, r.counterparty, r.bank_ref))
    wx = wb.create_sheet("exceptions")
    for x in data.exceptions:
        wx.append((x.code, x.account, x.statement_id, x.line_no, x.item_id, _dec(x.amount_minor, x.currency),
                   x.currency, x.obligor_uscc, x.status, x.value_date, x.direction, x.remittance_info,
                   x.counterparty, x.detail, "next"))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _best(fn: object, arg: object, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(arg)  # type: ignore[operator]
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cvhub bench package", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20_000, help="matched rows (exceptions: a tenth)")
    args = ap.parse_args(argv)

    from ledger.recon.package import package_totals, render_csv, render_xlsx

    data = _data(args.rows)
    totals = package_totals(data)  # type: ignore[arg-type]
    bare_csv = _best(_bare_csv, data)
    ours_csv = _best(lambda d: render_csv(d, "utf-8-sig"), data)
    bare_xlsx = _best(_bare_xlsx, data)
    ours_xlsx = _best(lambda d: render_xlsx(d, totals), data)
    print(f"rows: matched={args.rows:,} exceptions={max(1, args.rows // 10):,} (1% injection payloads)")
    print(f"csv:  bare csv.writer {bare_csv:.2f}s, render_csv {ours_csv:.2f}s")
    print(f"xlsx: bare openpyxl append {bare_xlsx:.2f}s, render_xlsx {ours_xlsx:.2f}s "
          "(includes the summary sheet, styles and the fixed-time zip rewrite)")
    print(f"package ratio_csv={bare_csv / ours_csv:.2f} ratio_xlsx={bare_xlsx / ours_xlsx:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
