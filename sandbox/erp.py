"""The ERP sandbox: an SFTP directory layout on ``SftpSandbox`` plus AP export files like a real ERP's.

Layout under the SFTP root: ``erp/outbox`` (the ERP writes AP export CSVs here; cvhub's inbox) and
``erp/inbox`` (cvhub delivers GL journal files here). ``drop_ap_export`` writes an AP export with
the Chinese header the ERP uses, in GB18030 by default, and completes it with a ``.sha256``
sidecar and a ``.done`` marker (or leaves it in flight / duplicates it, per the sandbox faults).
Sandbox only: never used against a real ERP.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

from sandbox.sftp_server import SftpSandbox

AP_DIR = "erp/outbox"  # ERP -> cvhub
GL_DIR = "erp/inbox"  # cvhub -> ERP

AP_HEADER_ZH = (
    "应付单号",
    "付款方统一社会信用代码",
    "供应商统一社会信用代码",
    "供应商名称",
    "金额",
    "币种",
    "到期日",
    "发票号",
    "合同号",
    "入库单号",
    "确认时间",
)
AP_KEYS = (
    "payable_id",
    "obligor_uscc",
    "supplier_uscc",
    "supplier_name",
    "amount",
    "currency",
    "due_date",
    "invoice_no",
    "contract_no",
    "receipt_no",
    "confirmed_at",
)


def render_ap_export(rows: Iterable[Mapping[str, str]], *, encoding: str = "gb18030") -> bytes:
    """AP export CSV bytes with the Chinese header; ``rows`` use the English keys of ``AP_KEYS``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(AP_HEADER_ZH)
    for r in rows:
        w.writerow([r.get(k, "") for k in AP_KEYS])
    return buf.getvalue().encode(encoding)


def prepare(box: SftpSandbox) -> None:
    for d in (AP_DIR, GL_DIR):
        box.path(d).mkdir(parents=True, exist_ok=True)


def drop_ap_export(
    box: SftpSandbox, name: str, rows: Iterable[Mapping[str, str]], *, encoding: str = "gb18030"
) -> Path:
    """Put an AP export into the ERP outbox the way the ERP does (subject to the sandbox faults)."""
    prepare(box)
    return box.put_file(AP_DIR, name, render_ap_export(rows, encoding=encoding))


# --- conformance kit handle (connectors.testing) -------------------------------------------------

FETCH_OPS = ("list", "open")


def _is_data_file(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return not base.startswith(".") and not base.endswith((".sha256", ".done", ".part", ".tmp"))


def _ref(path: str) -> str | None:
    base = path.rsplit("/", 1)[-1]
    return base[: -len(".csv")] if _is_data_file(path) and base.endswith(".csv") else None


class ErpConformanceSandbox:
    """The ERP sandbox as ``connectors.testing`` drives it (see that module for the protocol).

    Operations are SFTP requests on data files (sidecars, markers and temp files are not
    counted): ``open`` (read), ``stat``, ``rename``, ``list``..., and ``fetch`` = ``list`` or
    ``open``, what a fetch run sends (its first request is always the listing, so faults armed on
    ``fetch`` hit even an empty directory). ``seed(n)`` drops n AP exports;
    ``effects(ref)`` counts GL files ``<ref>.csv`` actually renamed into place.
    """

    supported_faults = frozenset(
        {"latency", "timeout", "server_error", "fault", "drop_before", "drop_after", "duplicate"}
    )

    def __init__(self, root: Path) -> None:
        from sandbox.sftp_server import generate_ed25519_key

        self.private_key, self.public_key = generate_ed25519_key()
        self.box = SftpSandbox(root, authorized_key=self.public_key)
        self._seeded = 0

    def __enter__(self) -> ErpConformanceSandbox:
        self.box.start()
        prepare(self.box)
        return self

    def __exit__(self, *exc: object) -> None:
        self.box.stop()

    @property
    def info(self) -> object:
        return self.box.info

    def reset(self) -> None:
        import shutil

        from sandbox.sftp_server import SftpFaults

        self.box.disarm()
        self.box.faults = SftpFaults()
        for d in (AP_DIR, GL_DIR):
            shutil.rmtree(self.box.path(d), ignore_errors=True)
        prepare(self.box)
        with self.box._lock:
            self.box.journal.clear()
            self.box.applied_renames.clear()

    def seed(self, count: int) -> None:
        for _ in range(count):
            self._seeded += 1
            n = self._seeded
            drop_ap_export(
                self.box,
                f"AP_{n:06d}.csv",
                [
                    {
                        "payable_id": f"AP-{n}",
                        "obligor_uscc": "91310000MA1FL0000N",
                        "supplier_uscc": "91110108MA0000001D",
                        "supplier_name": "供应商",
                        "amount": f"{n}.00",
                        "currency": "CNY",
                    }
                ],
            )

    def inject(self, kind: str, *, operation: str | None = None, times: int = 1, **params: object) -> None:
        if kind == "latency":
            self.box.faults.latency = float(params.get("seconds", 0.05))  # type: ignore[arg-type]
            return
        if kind == "duplicate":  # the sender delivers files a second time, under another name
            files = sorted(p for p in self.box.path(AP_DIR).iterdir() if _is_data_file(str(p)))
            for p in files[:times]:
                self.box.redeliver(AP_DIR, p.name, p.stem + ".again" + p.suffix)
            return
        seconds = float(params.get("seconds", 2.0))  # type: ignore[arg-type]
        ops = FETCH_OPS if operation == "fetch" else operation
        self.box.arm(kind, ops, times, match=_is_data_file, seconds=seconds)

    def requests(self, operation: str | None = None) -> int:
        with self.box._lock:
            ops = FETCH_OPS if operation == "fetch" else (operation,)
            return sum(
                1 for op, path in self.box.journal if (operation is None or op in ops) and _is_data_file(path)
            )

    def journal(self) -> list[tuple[str, str | None]]:
        with self.box._lock:
            return [(op, _ref(path)) for op, path in self.box.journal if _is_data_file(path)]

    def effects(self, ref: str) -> int:
        with self.box._lock:
            return sum(1 for path in self.box.applied_renames if _ref(path) == ref)

    def secrets(self) -> list[str]:
        body = [ln for ln in self.private_key.splitlines() if ln and "PRIVATE KEY" not in ln]
        return [self.private_key, *body]
