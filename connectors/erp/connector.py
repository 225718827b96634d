"""The ERP over SFTP: AP export files in (verified, archived, mapped), GL journal files out.

Inbound: the ERP drops AP export CSV files (GB18030 or UTF-8) into its outbox directory (our
``SftpSettings.inbox``), each completed by a done-marker (or by size stability, per endpoint). For
every complete file not processed before, ``fetch_ap_exports`` downloads it to a local temporary
file, verifies size and SHA-256, archives the raw bytes, maps it with ``mappings.payables.parse_erp_ap``
(good payables + rejected records naming file/line/field) and hands the result to the caller's
handler; only when the handler returns is the file recorded as processed. A file whose header is
unreadable is quarantined (``ProcessedFiles.failed``) with the mapping error; the other files flow.

Outbound: ``deliver_gl_journal`` renders a ``GlJournal`` with ``mappings.gl.render_gl_journal`` (or
takes ready bytes), archives them and uploads to the ERP's inbox (our ``SftpSettings.outbox``):
temporary name, rename, ``.sha256`` sidecar, done-marker. Re-delivering the same bytes is a no-op;
different bytes under the same name go to a versioned name (``GL_x.v2.csv``), never an overwrite.

This module never imports airflow and never writes to the ledger: the caller does that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from connectors.archive import Archive
from connectors.sftp import FetchedFile, FetchReport, SftpClient, SftpSettings, Upload
from connectors.sftp_record import ProcessedFiles
from ledger.canonical import GlJournal, Payable
from mappings.batch import BatchResult

SYSTEM = "erp"


@dataclass(frozen=True, slots=True)
class ApExport:
    """One AP export file: where it came from, its verified bytes' hash, and what it mapped to."""

    name: str
    sha256: str
    local_path: Path            # verified local copy (also archived under ``archive_sha256``)
    archive_sha256: str | None
    attempt: int                # > 1 when re-processing after a crash: the ledger's keys dedupe
    result: BatchResult[Payable]

    @property
    def payables(self) -> list[Payable]:
        return self.result.records


@dataclass
class ErpFetchReport:
    files: list[ApExport] = field(default_factory=list)
    transport: FetchReport | None = None


class ErpConnector:
    """AP exports in, GL journals out, over one ERP SFTP endpoint.

    ``settings.system`` should be "erp" (it names errors, archive entries and processed-file rows).
    """

    def __init__(self, settings: SftpSettings, *, archive: Archive, record: ProcessedFiles,
                 ap_encoding: str = "auto", ap_delimiter: str = ",",
                 gl_encoding: Literal["utf-8", "utf-8-sig", "gb18030"] = "utf-8",
                 ap_name_filter: Callable[[str], bool] | None = None) -> None:
        self.settings = settings
        self.archive = archive
        self.record = record
        self.ap_encoding = ap_encoding
        self.ap_delimiter = ap_delimiter
        self.gl_encoding = gl_encoding
        self.ap_name_filter = ap_name_filter or (lambda n: n.lower().endswith((".csv", ".txt")))

    def client(self) -> SftpClient:
        return SftpClient(self.settings, archive=self.archive, record=self.record)

    def fetch_ap_exports(self, local_dir: Path, handler: Callable[[ApExport], Any]) -> ErpFetchReport:
        """Fetch, verify, archive and map every new AP export; ``handler`` gets each mapped file.

        When the handler returns, the file is recorded as processed; if it raises, the file is
        retried on a later run (or quarantined for a mapping/fatal error). See ``SftpClient.fetch_new``.
        """
        from mappings.payables import parse_erp_ap

        report = ErpFetchReport()

        def on_file(f: FetchedFile) -> None:
            with open(f.local.path, "rb") as stream:
                result = parse_erp_ap(stream, source=f.remote.path, encoding=self.ap_encoding,
                                      delimiter=self.ap_delimiter)
            export = ApExport(f.name, f.sha256, f.local.path,
                              f.archived.sha256 if f.archived else None, f.attempt, result)
            handler(export)
            report.files.append(export)

        with self.client() as c:
            report.transport = c.fetch_new(local_dir, on_file, names=self.ap_name_filter)
        return report

    def render_gl_journal(self, journal: GlJournal) -> bytes:
        from mappings.gl import render_gl_journal

        return render_gl_journal(journal, encoding=self.gl_encoding)

    def deliver_gl_journal(self, journal: GlJournal | bytes, name: str | None = None) -> Upload:
        """Upload a GL journal file (idempotent: same bytes -> "unchanged"; else a versioned name)."""
        if isinstance(journal, GlJournal):
            data = self.render_gl_journal(journal)
            name = name or f"GL_{journal.company_code}_{journal.journal_date:%Y%m%d}_{journal.journal_id}.csv"
        else:
            data = journal
            if name is None:
                raise ValueError("a name is required when delivering raw bytes")
        with self.client() as c:
            return c.deliver(data, name)
