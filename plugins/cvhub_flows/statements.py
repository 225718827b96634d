"""statements_<bank> flow: bank statements over SFTP -> canonical statements -> reconciliation.

1. ``fetch_statements``: every new complete statement file on the bank's SFTP server, exactly once
   (pinned host key, verified download, archived raw, processed-file record), into the interval's
   batch directory; returns one reference per file there (a rerun of the interval returns the same
   files), and the DAG maps ``reconcile`` over them.
2. ``reconcile_file``: parses one file (``mappings.statements``: format detected, balances and the
   account's sequence checked) and reconciles each statement (``ledger.recon.service``) in one
   transaction with the account's new last sequence; matched clearing instructions are settled in
   the ledger by recon. A file that does not parse (bad balance, sequence gap, hostile XML...) is
   quarantined whole with the reason; a bad CSV row is quarantined alone and the rest reconciles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, MutableMapping
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.archive import Archive
from cvhub.settings import Settings
from ledger import quarantine
from plugins.cvhub_flows.banks import bank
from plugins.cvhub_flows.batches import batch_path, read_batch
from plugins.cvhub_flows.hooks import BankHook
from plugins.cvhub_flows.ledger_session import ledger_for, ledger_session

FLOW = "statements"
MAX_RAW_IN_QUARANTINE = 8 * 1024 * 1024


def _flow(bank_name: str) -> str:
    return f"statements_{bank_name}"


def fetch_statements(settings: Settings, bank_name: str, *, interval: str) -> list[dict[str, Any]]:
    """Step 1: new statement files of the bank into the interval's directory; one ref per file."""
    from connectors.sftp import SftpClient
    from connectors.sftp_record import ProcessedFiles, default_db_url

    cfg = bank(bank_name)
    local_dir = batch_path(settings, _flow(bank_name), interval, "files")
    local_dir.mkdir(parents=True, exist_ok=True)
    record = ProcessedFiles(default_db_url(settings.data_dir))
    with SftpClient(BankHook(cfg).get_sftp_settings(), archive=Archive(settings.archive_dir),
                    record=record) as client:
        report = client.fetch_new(local_dir, lambda fetched: None, remote_dir=cfg.statement_dir,
                                  names=lambda n: n.startswith(cfg.statement_prefix)
                                  and n.endswith(cfg.statement_suffix))
    if report.failed:
        name, err = report.failed[0]
        raise RuntimeError(f"{bank_name}: {len(report.failed)} statement file(s) failed to download, "
                           f"first {name}: {err}")
    refs = []
    for path in sorted(p for p in local_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        data = path.read_bytes()
        refs.append({"path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                     "name": path.name})
    return refs


class _SequenceCursors(MutableMapping[str, int]):
    """The accounts' last accepted statement sequences, read lazily from the flow cursors."""

    def __init__(self, session: Any, flow: str) -> None:
        self.session = session
        self.flow = flow
        self._known: dict[str, int] = {}

    def __getitem__(self, account: str) -> int:
        if account not in self._known:
            value = quarantine.get_cursor(self.session, self.flow, f"seq:{account}")
            if value is None:
                raise KeyError(account)
            self._known[account] = int(value)
        return self._known[account]

    def __setitem__(self, account: str, value: int) -> None:
        self._known[account] = value

    def __delitem__(self, account: str) -> None:
        del self._known[account]

    def __iter__(self) -> Iterator[str]:
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)


def reconcile_file(settings: Settings, bank_name: str, ref: dict[str, Any], *,
                   at: datetime) -> dict[str, Any]:
    """Step 2: parse one statement file and reconcile its statements (see the module docstring)."""
    from ledger.recon.service import ReconError, run_statement
    from mappings.errors import MappingError
    from mappings.statements import parse_statements_with_rejects

    data = read_batch(ref)
    flow = _flow(bank_name)
    source = f"{bank_name}:{ref['name']}"
    out: dict[str, Any] = {"file": ref["name"], "statements": 0, "matched": 0, "exceptions": 0,
                           "settled": 0, "quarantined": 0}
    with ledger_session(settings) as s:
        if quarantine.get_cursor(s, flow, f"file:{ref['sha256']}") is not None:
            return {**out, "already": True}
        sequences = _SequenceCursors(s, flow)
        try:
            statements, rejected = parse_statements_with_rejects(data, source=source,
                                                                 last_sequences=sequences)
        except (MappingError, ValueError) as e:
            _quarantine_file(s, flow, ref, data, e, at=at)
            return {**out, "quarantined": 1}
        for rej in rejected:
            quarantine.put(s, flow=flow, item_ref=f"{ref['name']}:{rej.line}", source_sha256=ref["sha256"],
                           source_name=ref["name"], line=rej.line, record=rej.field, reason_code=rej.reason,
                           message=rej.message, raw=rej.raw, at=at, context={"bank": bank_name})
        ledger = ledger_for(settings)
        for st in statements:
            try:
                result = run_statement(s, st, ledger=ledger)
            except ReconError as e:
                _quarantine_file(s, flow, ref, data, e, at=at)
                out["quarantined"] += 1
                continue
            out["statements"] += 1
            out["matched"] += result.matched_lines
            out["exceptions"] += result.exception_count
            out["settled"] += result.settled_instructions
            if st.sequence is not None:
                quarantine.set_cursor(s, flow, f"seq:{st.account}", str(st.sequence), at=at)
        out["quarantined"] += len(rejected)
        quarantine.set_cursor(s, flow, f"file:{ref['sha256']}", ref["name"], at=at)
        quarantine.resolve(s, flow=flow, item_ref=ref["name"], resolution="reconciled", at=at)
    return out


def _quarantine_file(s: Any, flow: str, ref: dict[str, Any], data: bytes, e: Exception, *,
                     at: datetime) -> None:
    quarantine.put(s, flow=flow, item_ref=ref["name"], source_sha256=ref["sha256"], source_name=ref["name"],
                   line=getattr(e, "line", None), record=getattr(e, "field", None),
                   reason_code=str(getattr(e, "code", None) or type(e).__name__)[:60], message=str(e),
                   raw=data if len(data) <= MAX_RAW_IN_QUARANTINE else None, at=at,
                   context={"path": ref["path"], "sha256": ref["sha256"]})


def replay_statement(item: quarantine.QuarantineItem) -> str:
    """Replay handler of ``statements_<bank>`` items: reconcile the file again (same identity)."""
    settings = Settings.from_env()
    bank_name = item.flow.removeprefix("statements_")
    ctx = item.context_dict
    path = Path(str(ctx.get("path", "")))
    if not path.is_file():
        raise FileNotFoundError(f"statement file {path} is gone; fetch it again")
    ref = {"path": str(path), "sha256": ctx["sha256"], "name": path.name}
    out = reconcile_file(settings, bank_name, ref, at=item.last_seen_at)
    if out.get("statements", 0) == 0 and out.get("quarantined"):
        raise ValueError(f"{path.name} still does not reconcile")
    return f"reconciled {path.name}: {out}"
