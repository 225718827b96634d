"""ERP flows: AP export files in (confirmed payables), GL journal files out.

``import_ap_exports`` (erp_ap_import): every new complete AP export on the ERP's SFTP outbox
(done-marker / sidecar checked, each file once, archived raw) is mapped (``mappings.payables``) and
its payables registered in the ledger (parties first if unknown; keys ``erp:payable:<id>``), in
one transaction per file with the quarantine rows of its bad records. A payable the SRM flow
already registered answers ``payable_exists``: the same payable, nothing to do.

``export_gl`` (erp_gl_export): the ledger journal entries of the business date that move money
(issue, disburse, settle, repurchase) become one balanced GL journal (one posting per entry, one
line per ledger posting, account codes from ``CHART``), rendered by ``mappings.gl`` and delivered
to the ERP inbox (idempotent: same bytes again is a no-op).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from connectors.archive import Archive
from cvhub.settings import Settings
from ledger import quarantine
from ledger.canonical import GlJournal, GlLine, GlPosting
from ledger.models import JournalEntry, PartyRow, Posting
from ledger.money import to_decimal_text
from plugins.cvhub_flows.batches import batch_path
from plugins.cvhub_flows.hooks import ErpHook
from plugins.cvhub_flows.ledger_session import ledger_for, ledger_session

FLOW = "erp_ap_import"
BENIGN = ("ok", "exists", "party_exists", "payable_exists")
GL_COMMANDS = {"issue": "issuance", "disburse": "financing", "settle": "clearing", "repurchase": "financing"}
# ledger account prefix -> the ERP's chart-of-accounts code (the platform's own books)
CHART = {
    "obligation": "2202.01", "offered": "1122.01", "held": "1122.02", "quota_free": "9001.01",
    "quota_reserved": "9001.02", "quota_line": "9001.03", "cash": "1002.01",
    "financing_offered": "1122.03", "financing_pending": "1122.04", "interest_income": "6011.01",
    "interest_expense": "6603.01", "cleared": "2202.02", "settled": "2202.03",
}
COMPANY = "CVHUB"


def _connector(settings: Settings) -> Any:
    from connectors.erp.connector import ErpConnector
    from connectors.sftp_record import ProcessedFiles, default_db_url

    return ErpConnector(ErpHook().get_settings(), archive=Archive(settings.archive_dir),
                        record=ProcessedFiles(default_db_url(settings.data_dir)))


def import_ap_exports(settings: Settings, *, on: date, interval: str, at: datetime) -> dict[str, int]:
    """Fetch, map and register every new AP export (see the module docstring)."""
    counts = {"files": 0, "payables": 0, "quarantined": 0}
    local_dir = batch_path(settings, FLOW, interval, "files")
    local_dir.mkdir(parents=True, exist_ok=True)
    ledger = ledger_for(settings)
    day = on.isoformat()

    def register(export: Any) -> None:
        with ledger_session(settings) as s:
            for rej in export.result.rejected:
                quarantine.put(s, flow=FLOW, item_ref=f"{export.name}:{rej.line}",
                               source_sha256=export.sha256, source_name=export.name, line=rej.line,
                               record=rej.field, reason_code=rej.reason, message=rej.message,
                               raw=rej.raw, at=at, context={"business_date": day})
            usccs = {u for p in export.payables for u in (p.obligor_uscc, p.supplier_uscc)}
            known = set(s.scalars(select(PartyRow.uscc).where(PartyRow.uscc.in_(usccs)))) if usccs else set()
            cmds: list[dict[str, Any]] = []
            for p in export.payables:
                for uscc, name, role in ((p.obligor_uscc, None, "obligor"),
                                         (p.supplier_uscc, p.supplier_name, "supplier")):
                    if uscc not in known:
                        known.add(uscc)
                        cmds.append({"cmd": "register_party", "key": f"party:{uscc}", "on": day, "uscc": uscc,
                                     "name": name or uscc, "roles": [role]})
                cmd: dict[str, Any] = {"cmd": "register_payable", "key": f"erp:payable:{p.payable_id}",
                                       "on": day, "payable_id": p.payable_id, "obligor": p.obligor_uscc,
                                       "supplier": p.supplier_uscc, "currency": p.currency,
                                       "amount": to_decimal_text(p.amount_minor, p.currency)}
                for k in ("invoice_no", "contract_no", "receipt_no"):
                    if getattr(p, k):
                        cmd[k] = getattr(p, k)
                if p.due_date:
                    cmd["due_date"] = p.due_date.isoformat()
                cmds.append(cmd)
            results = ledger.apply(cmds, session=s)
            for cmd, r in zip(cmds, results, strict=True):
                if r.result in BENIGN:
                    counts["payables"] += cmd["cmd"] == "register_payable"
                    continue
                counts["quarantined"] += 1
                quarantine.put(s, flow=FLOW, item_ref=str(cmd.get("payable_id") or cmd["key"]),
                               source_sha256=export.sha256, source_name=export.name, reason_code=r.result,
                               message=r.detail or r.result, at=at,
                               raw=json.dumps(cmd, ensure_ascii=False, sort_keys=True).encode(),
                               context={"business_date": day, "command": True})
            counts["quarantined"] += len(export.result.rejected)
        counts["files"] += 1

    report = _connector(settings).fetch_ap_exports(local_dir, register)
    failed = report.transport.failed if report.transport else []
    if failed:
        name, err = failed[0]
        raise RuntimeError(f"erp: {len(failed)} AP export(s) failed, first {name}: {err}")
    return counts


def build_gl_journal(settings: Settings, *, on: date) -> GlJournal:
    """The business date's money-moving journal entries as one GL journal."""
    with ledger_session(settings) as s:
        entries = list(s.scalars(select(JournalEntry).where(JournalEntry.business_date == on,
                                                            JournalEntry.cmd.in_(list(GL_COMMANDS)))
                                 .order_by(JournalEntry.seq)))
        seqs = [e.seq for e in entries]
        postings: dict[int, list[Posting]] = {}
        for i in range(0, len(seqs), 500):
            for p in s.scalars(select(Posting).where(Posting.entry_seq.in_(seqs[i:i + 500]))
                               .order_by(Posting.entry_seq, Posting.idx)):
                postings.setdefault(p.entry_seq, []).append(p)
    out: list[GlPosting] = []
    for e in entries:
        body = json.loads(e.body)
        lines = []
        for p in postings.get(e.seq, []):
            if p.amount_minor == 0:
                continue
            prefix, _, party = p.account.partition(":")
            lines.append(GlLine(account_code=CHART.get(prefix, "9999.99"),
                                debit_minor=max(p.amount_minor, 0), credit_minor=max(-p.amount_minor, 0),
                                currency=p.currency, party_uscc=party or None,
                                voucher_id=body.get("voucher_no"), piece_id=body.get("piece_no"),
                                memo=prefix))
        if lines:
            out.append(GlPosting(posting_id=f"L{e.seq}", kind=GL_COMMANDS[e.cmd],  # type: ignore[arg-type]
                                 posting_date=on, description=f"{e.cmd} {e.key}"[:140], lines=tuple(lines)))
    return GlJournal(journal_id=f"CVHUB{on:%Y%m%d}", company_code=COMPANY, journal_date=on,
                     postings=tuple(out))


def export_gl(settings: Settings, *, on: date) -> dict[str, Any]:
    """Render and deliver the day's GL journal to the ERP (idempotent)."""
    journal = build_gl_journal(settings, on=on)
    if not journal.postings:
        return {"postings": 0, "delivered": None}
    up = _connector(settings).deliver_gl_journal(journal)
    return {"postings": len(journal.postings), "delivered": up.name, "status": up.status, "sha256": up.sha256}


def replay_ap_record(item: quarantine.QuarantineItem) -> str:
    """Replay handler of ``erp_ap_import`` items: a refused ledger command is applied again under
    its original key; a row the mapping rejected cannot be replayed as is (the ERP must resend a
    corrected export, which arrives as a new file)."""
    if not item.context_dict.get("command"):
        raise ValueError(f"{item.item_ref}: the row itself is invalid ({item.reason_code}); "
                         "have the ERP export it again corrected, or discard this item")
    cmd = json.loads(item.raw or b"{}")
    result = ledger_for(Settings.from_env()).apply_one(cmd)
    if result.result not in BENIGN:
        raise ValueError(f"{cmd.get('key')}: {result.result} {result.detail or ''}")
    return f"{cmd.get('key')}: {result.result}"
