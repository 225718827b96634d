"""maturity_clearing flow: vouchers due -> clearing instructions -> pain.001 to the treasury -> pain.002.

Steps (tasks of ``dags/maturity_clearing.py``), each idempotent for its business date:
1. ``open_due``: ``open_clearing`` for every accepted voucher due on or before the business date
   (one instruction per live piece, payee = holder). A voucher with a pending transfer/financing
   is skipped and counted as blocked (it is opened on a later day); keys ``clearing:open:<voucher>``.
2. ``plan_batches``: open instructions grouped per (payer account, currency) into pain.001 batches
   of at most ``MAX_BATCH`` instructions,
   rendered deterministically (MsgId from the instructions, creation time from the business date)
   and written to batch files; returns one reference per batch (the DAG maps ``send`` over them).
3. ``send_batch``: submit one batch to the treasury under its MsgId as serial (idempotent there;
   an unknown outcome is resolved by query inside the connector), then ``mark_sent``.
4. ``check_status``: each sent batch's pain.002; rejected transactions become ``mark_returned`` and
   RETURN exceptions for reconciliation. Settlement itself comes from bank statements (recon). A
   sent batch the treasury has no record of is resent under the same MsgId (its planned pain.001),
   never under a new one.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import select

from connectors.archive import Archive
from connectors.errors import NotFound
from cvhub.settings import Settings
from ledger.canonical import Party, PaymentInstruction
from ledger.models import InstructionRow, PartyRow, VoucherRow
from plugins.cvhub_flows.batches import batch_path, read_batch, read_json, write_batch, write_json
from plugins.cvhub_flows.hooks import TreasuryHook
from plugins.cvhub_flows.ledger_session import ledger_for, ledger_session

FLOW = "maturity_clearing"
PAIN001_VERSION: Literal["03", "09"] = "09"
MAX_BATCH = 2000   # instructions per pain.001 (keeps each SOAP message a few MB)
BLOCKED = ("pieces_locked",)


def open_due(settings: Settings, *, on: date) -> dict[str, int]:
    """Step 1: open clearing for the accepted vouchers due by ``on``."""
    with ledger_session(settings) as s:
        due = list(s.scalars(select(VoucherRow.voucher_no).where(VoucherRow.state == "accepted",
                                                                 VoucherRow.due_date <= on)
                             .order_by(VoucherRow.voucher_no)))
    if not due:
        return {"opened": 0, "blocked": 0}
    cmds = [{"cmd": "open_clearing", "key": f"clearing:open:{v}", "on": on.isoformat(), "voucher_no": v}
            for v in due]
    results = ledger_for(settings).apply(cmds)
    blocked = [r for r in results if r.result in BLOCKED]
    refused = [r for r in results if not r.ok and r.result not in BLOCKED]
    if refused:
        raise RuntimeError("open_clearing refused: " + "; ".join(f"{r.key}: {r.result} {r.detail}"
                                                                  for r in refused[:5]))
    return {"opened": sum(1 for r in results if r.ok), "blocked": len(blocked)}


def plan_batches(settings: Settings, *, on: date, interval: str) -> list[dict[str, Any]]:
    """Step 2: pain.001 batches of the open instructions due by ``on``; one reference per batch."""
    from mappings.pain001 import message_id_for, render_pain001

    views = ledger_for(settings).open_instructions(due_on_or_before=on)
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for v in views:
        if v.status == "open":
            groups.setdefault((v.obligor_uscc, v.payer_account, v.currency), []).append(v)
    created = datetime(on.year, on.month, on.day, tzinfo=UTC)
    usccs = {u for v in views for u in (v.obligor_uscc, v.payee_uscc)}
    with ledger_session(settings) as s:
        names = dict(s.execute(select(PartyRow.uscc, PartyRow.name).where(PartyRow.uscc.in_(usccs))).all()) \
            if usccs else {}
    refs = []
    chunks = [(key, items[i:i + MAX_BATCH]) for key, items in sorted(groups.items())
              for i in range(0, len(items), MAX_BATCH)]
    for (obligor, account, currency), items in chunks:
        instructions = [_named(v.as_payment_instruction(), names) for v in items]
        msg_id = message_id_for(instructions, PAIN001_VERSION)
        pain = render_pain001(instructions, version=PAIN001_VERSION, created_at=created,
                              initiating_party=Party(name="cvhub", uscc=obligor))
        doc = write_batch(batch_path(settings, FLOW, interval, f"{msg_id}.xml"), pain)
        meta = write_json(batch_path(settings, FLOW, interval, f"{msg_id}.json"),
                          {"message_id": msg_id, "account": account, "currency": currency,
                           "instruction_ids": [v.instruction_id for v in items], "pain001": doc})
        refs.append({**meta, "message_id": msg_id, "count": len(items)})
    return refs


def _named(pi: PaymentInstruction, names: dict[str, str]) -> PaymentInstruction:
    """The instruction with debtor and creditor names from the ledger's parties (pain.001 needs them)."""
    return replace(pi, debtor=replace(pi.debtor, name=pi.debtor.name or names.get(pi.debtor.uscc or "")),
                   creditor=replace(pi.creditor, name=pi.creditor.name or names.get(pi.creditor.uscc or "")))


def send_batch(settings: Settings, ref: dict[str, Any], *, on: date) -> dict[str, Any]:
    """Step 3: submit one batch to the treasury (serial = MsgId), then mark its instructions sent."""
    meta = read_json(ref)
    pain = read_batch(meta["pain001"])
    with TreasuryHook().get_client(Archive(settings.archive_dir)) as treasury:
        ack = treasury.submit_batch(meta["message_id"], pain)
    cmds = [{"cmd": "mark_sent", "key": f"clearing:sent:{i}", "on": on.isoformat(), "instruction_id": i,
             "message_id": meta["message_id"]} for i in meta["instruction_ids"]]
    results = ledger_for(settings).apply(cmds)
    # an instruction settled meanwhile (fast statement) cannot be marked sent any more: fine
    refused = [r for r in results if not r.ok and r.result != "invalid_state"]
    if refused:
        raise RuntimeError("mark_sent refused: " + "; ".join(f"{r.key}: {r.result}" for r in refused[:5]))
    return {"message_id": meta["message_id"], "status": ack.status, "duplicate": ack.duplicate,
            "sent": len(cmds)}


def _sent_document(settings: Settings, msg_id: str) -> bytes:
    """The pain.001 that ``plan_batches`` wrote for ``msg_id`` (the latest interval's, if planned on
    several days: the treasury has none of them, and they differ only in their creation time)."""
    root = settings.data_dir / "flows" / FLOW
    found = sorted(root.glob(f"*/{msg_id}.xml")) if root.is_dir() else []
    if not found:
        raise RuntimeError(f"batch {msg_id} is unknown to the treasury and its pain.001 is not under {root}: "
                           "it cannot be resent under the same MsgId (restore the batch file)")
    return found[-1].read_bytes()


def check_status(settings: Settings, *, on: date, interval: str) -> dict[str, int]:
    """Step 4: pain.002 of every sent batch; rejected transactions are marked returned."""
    from ledger.recon.service import record_payment_statuses
    from mappings.pain002 import parse_pain002

    with ledger_session(settings) as s:
        sent = sorted(set(s.scalars(select(InstructionRow.message_id)
                                    .where(InstructionRow.status == "sent",
                                           InstructionRow.message_id.is_not(None)))))
    counts = {"batches": len(sent), "accepted": 0, "rejected": 0, "pending": 0, "resent": 0}
    if not sent:
        return counts
    statuses = []
    with TreasuryHook().get_client(Archive(settings.archive_dir)) as treasury:
        for msg_id in sent:
            try:
                st = treasury.query_batch(msg_id)
            except NotFound:
                # the ledger sent this batch but the treasury has no record of it: the unknown-outcome
                # rule, resolved here — resend the same pain.001 under the SAME MsgId (never a new one)
                treasury.resolve_submit(msg_id, _sent_document(settings, msg_id))
                counts["resent"] += 1
                counts["pending"] += 1
                continue
            write_batch(batch_path(settings, FLOW, interval, f"{msg_id}.pain002.xml"), st.report)
            statuses.extend(parse_pain002(st.report, source=f"treasury:{msg_id}"))
    returns = []
    for st in statuses:
        if st.level != "transaction":
            continue
        if st.status == "RJCT" and st.original_instruction_id:
            counts["rejected"] += 1
            returns.append({"cmd": "mark_returned", "key": f"clearing:returned:{st.original_instruction_id}",
                            "on": on.isoformat(), "instruction_id": st.original_instruction_id,
                            "reason": f"pain.002 RJCT {st.reason_code or ''} "
                                      f"{st.reason_info or ''}".strip()[:500]})
        elif st.status in ("ACCP", "ACSC", "ACSP", "ACTC", "ACWC"):
            counts["accepted"] += 1
        else:
            counts["pending"] += 1
    with ledger_session(settings) as s:
        if returns:
            results = ledger_for(settings).apply(returns, session=s)
            bad = [r for r in results if not r.ok and r.result != "invalid_state"]
            if bad:
                raise RuntimeError("mark_returned refused: " + "; ".join(f"{r.key}: {r.result}" for r in bad))
        record_payment_statuses(s, statuses, business_date=on)
    return counts
