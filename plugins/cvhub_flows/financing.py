"""Financing flows: registry registration before financing, applications to banks, decisions back.

The holder asks for financing on the platform (a ledger ``finance`` command: pending). Then:
- ``registry_sync`` (``register_financings``): for each pending financing without a registration,
  query the registry by grantor (a live registration over the voucher filed by someone else is a
  conflict: the financing is rejected with that reason), then register the assignment and record
  the registration number in the ledger. The manual-queue adapter answers PENDING_MANUAL until an
  operator confirms the packet (``cvhub registry confirm``); the financing simply waits.
  ``cancel_settled``: once a financed voucher is settled, its registrations are cancelled (注销).
- ``financing_<bank>`` (``submit_applications`` then ``collect_decisions``): registered pending
  financings go to the funder bank under a serial derived from the financing id (the bank's
  idempotency key); its decisions come back as ``disburse`` / ``reject_financing`` commands.

Remote calls never run inside a ledger transaction (SQLite holds its write lock for a transaction's
whole life): a step reads, calls out, then applies everything it learned in one transaction. Ledger
keys derive from the financing id, so reruns and replays have no second effect. A remote refusal
(fatal error) of one item is quarantined and the others go on; retriable errors fail the task and
Airflow retries it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from connectors.archive import Archive
from connectors.errors import FatalError
from cvhub.settings import Settings
from ledger import quarantine
from ledger.models import AccountRow, FinancingRow, PartyRow, PieceRow, VoucherRow
from plugins.cvhub_flows.banks import Application, bank, financing_desk
from plugins.cvhub_flows.hooks import RegistryHook
from plugins.cvhub_flows.ledger_session import ledger_for, ledger_session

FLOW = "financing"
REGISTRY_FLOW = "registry_sync"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def serial_for(financing_id: str) -> str:
    """The bank serial of a financing: deterministic, <= 35 characters, [A-Z0-9]."""
    return "CVF" + _digest(financing_id)[:24].upper()


def _financings(s: Any, *, state: str, funder: str | None = None,
                registered: bool | None = None) -> list[dict[str, Any]]:
    stmt = (select(FinancingRow, PieceRow, VoucherRow)
            .join(PieceRow, PieceRow.piece_no == FinancingRow.piece_no)
            .join(VoucherRow, VoucherRow.voucher_no == PieceRow.voucher_no)
            .where(FinancingRow.state == state).order_by(FinancingRow.financing_id))
    if funder is not None:
        stmt = stmt.where(FinancingRow.funder_uscc == funder)
    if registered is True:
        stmt = stmt.where(FinancingRow.registration_no.is_not(None))
    elif registered is False:
        stmt = stmt.where(FinancingRow.registration_no.is_(None))
    rows = s.execute(stmt).all()
    usccs = {u for f, _, _ in rows for u in (f.seller_uscc, f.funder_uscc)}
    names = dict(s.execute(select(PartyRow.uscc, PartyRow.name).where(PartyRow.uscc.in_(usccs))).all()) \
        if usccs else {}
    accounts: dict[tuple[str, str], tuple[str, str | None]] = {}
    if usccs:
        stmt_a = select(AccountRow).where(AccountRow.party_uscc.in_(usccs), AccountRow.kind == "bank")
        for a in s.scalars(stmt_a.order_by(AccountRow.account_id)):
            accounts.setdefault((a.party_uscc, a.currency), (a.account_no, a.cnaps))
    out = []
    for f, p, v in rows:
        acct = accounts.get((f.seller_uscc, v.currency), ("", None))
        out.append({"financing_id": f.financing_id, "piece_no": p.piece_no, "voucher_no": v.voucher_no,
                    "obligor": v.obligor_uscc, "seller": f.seller_uscc,
                    "seller_name": names.get(f.seller_uscc, ""),
                    "funder": f.funder_uscc, "funder_name": names.get(f.funder_uscc, ""),
                    "amount_minor": f.amount_minor, "currency": v.currency, "due_date": v.due_date,
                    "registration_no": f.registration_no, "registration_state": f.registration_state,
                    "recourse": f.recourse, "rate": f.rate, "day_count": f.day_count,
                    "voucher_state": v.state, "seller_account": acct[0], "seller_cnaps": acct[1] or ""})
    return out


def _quarantine(settings: Settings, item: dict[str, Any], *, flow: str, reason: str, message: str,
                at: datetime, context: dict[str, Any]) -> None:
    raw = json.dumps(item, default=str, sort_keys=True, ensure_ascii=False).encode()
    with ledger_session(settings) as s:
        quarantine.put(s, flow=flow, item_ref=item["financing_id"],
                       source_sha256=hashlib.sha256(raw).hexdigest(), reason_code=reason,
                       message=message, raw=raw, at=at, context=context)


def _apply(settings: Settings, cmds: list[dict[str, Any]]) -> list[Any]:
    if not cmds:
        return []
    results = ledger_for(settings).apply(cmds)
    refused = [r for r in results if not r.ok]
    if refused:
        # the flow only issues commands the ledger's state allowed a moment ago; a refusal is a bug
        # or a concurrent change, and must be looked at rather than retried
        raise RuntimeError(f"ledger refused {len(refused)} command(s): "
                           + "; ".join(f"{r.key}: {r.result} {r.detail or ''}" for r in refused[:5]))
    return results


# --- registry_sync ----------------------------------------------------------------------------------

def _request_no(prefix: str, financing_id: str) -> str:
    return f"cvhub-{prefix}-{_digest(financing_id)[:32]}"


def register_financings(settings: Settings, *, on: date, at: datetime) -> dict[str, int]:
    """Query, then register, every pending unregistered financing; record registration numbers."""
    from connectors.registry.model import RegistrationRequest

    with ledger_session(settings) as s:
        todo = _financings(s, state="pending", registered=False)
    counts = {"registered": 0, "waiting_manual": 0, "conflicts": 0, "quarantined": 0}
    if not todo:
        return counts
    registry = RegistryHook().get_registry(Archive(settings.archive_dir), data_dir=settings.data_dir)
    cmds: list[dict[str, Any]] = []
    day = on.isoformat()
    try:
        by_grantor: dict[str, list[Any]] = {}
        for f in todo:
            own = _request_no("reg", f["financing_id"])
            if f["seller"] not in by_grantor:
                by_grantor[f["seller"]] = registry.query_by_grantor(f["seller"])
            clash = [r for r in by_grantor[f["seller"]] if r.live and r.voucher_id == f["voucher_no"]
                     and not str(r.request_no).startswith("cvhub-")]
            if clash:
                counts["conflicts"] += 1
                cmds.append({"cmd": "reject_financing", "key": f"registry:conflict:{f['financing_id']}",
                             "on": day, "financing_id": f["financing_id"],
                             "reason": f"registry conflict: {clash[0].registration_no} "
                                       f"over {f['voucher_no']}"})
                continue
            days = max(1, (f["due_date"] - on).days)
            try:
                reg = registry.register(RegistrationRequest(
                    request_no=own, kind="TRANSFER", grantor_uscc=f["seller"], grantor_name=f["seller_name"],
                    grantee_uscc=f["funder"], grantee_name=f["funder_name"], voucher_id=f["voucher_no"],
                    piece_id=f["piece_no"], amount_minor=f["amount_minor"], currency=f["currency"],
                    term_months=min(360, days // 30 + 2)))
            except (FatalError, ValueError) as e:
                counts["quarantined"] += 1
                _quarantine(settings, f, flow=REGISTRY_FLOW, reason=type(e).__name__, message=str(e), at=at,
                            context={"step": "register", "business_date": day})
                continue
            if reg.pending:
                counts["waiting_manual"] += 1
            elif reg.live and reg.registration_no:
                counts["registered"] += 1
                cmds.append({"cmd": "record_registration", "key": f"registry:{f['financing_id']}", "on": day,
                             "financing_id": f["financing_id"], "registration_no": reg.registration_no})
            else:
                counts["quarantined"] += 1
                _quarantine(settings, f, flow=REGISTRY_FLOW, reason=f"registry_{reg.status.lower()}",
                            message=f"registry answered {reg.status}", at=at,
                            context={"step": "register", "business_date": day})
    finally:
        close = getattr(registry, "close", None)
        if close:
            close()
    _apply(settings, cmds)
    return counts


def cancel_settled(settings: Settings, *, at: datetime) -> dict[str, int]:
    """Cancel the registrations of financings whose voucher is settled (once each)."""
    with ledger_session(settings) as s:
        done = [f for f in _financings(s, state="disbursed", registered=True)
                if f["voucher_state"] == "settled"]
        todo = [f for f in done
                if quarantine.get_cursor(s, REGISTRY_FLOW, f"cancelled:{f['financing_id']}") is None]
    if not todo:
        return {"cancelled": 0}
    registry = RegistryHook().get_registry(Archive(settings.archive_dir), data_dir=settings.data_dir)
    cancelled = 0
    try:
        for f in todo:
            reg = registry.cancel(f["registration_no"], request_no=_request_no("cxl", f["financing_id"]),
                                  reason=f"voucher {f['voucher_no']} settled")
            if reg.status == "CANCELLED":
                cancelled += 1
                with ledger_session(settings) as s:
                    quarantine.set_cursor(s, REGISTRY_FLOW, f"cancelled:{f['financing_id']}",
                                          f["registration_no"], at=at)
    finally:
        close = getattr(registry, "close", None)
        if close:
            close()
    return {"cancelled": cancelled}


# --- financing_<bank> -----------------------------------------------------------------------------

def _application(f: dict[str, Any], cfg: Any) -> Application:
    return Application(serial=serial_for(f["financing_id"]), financing_id=f["financing_id"],
                       voucher_no=f["voucher_no"], piece_no=f["piece_no"], obligor_uscc=f["obligor"],
                       seller_uscc=f["seller"], seller_name=f["seller_name"],
                       seller_account=f["seller_account"],
                       seller_cnaps=f["seller_cnaps"], amount_minor=f["amount_minor"], currency=f["currency"],
                       maturity=f["due_date"], registration_no=f["registration_no"], recourse=f["recourse"],
                       rate=f["rate"], day_count=f["day_count"])


def submit_applications(settings: Settings, bank_name: str, *, on: date, at: datetime) -> dict[str, int]:
    """Send every registered pending financing of this bank (idempotent by serial at the bank)."""
    cfg = bank(bank_name)
    with ledger_session(settings) as s:
        todo = _financings(s, state="pending", funder=cfg.funder_uscc, registered=True)
    counts = {"submitted": 0, "quarantined": 0}
    if not todo:
        return counts
    desk = financing_desk(cfg, Archive(settings.archive_dir))
    try:
        for f in todo:
            try:
                desk.submit(_application(f, cfg))
                counts["submitted"] += 1
            except FatalError as e:
                counts["quarantined"] += 1
                _quarantine(settings, f, flow=FLOW, reason=type(e).__name__, message=str(e), at=at,
                            context={"bank": bank_name, "step": "submit", "business_date": on.isoformat()})
    finally:
        desk.close()
    return counts


def collect_decisions(settings: Settings, bank_name: str, *, on: date, at: datetime) -> dict[str, int]:
    """Ask the bank about each submitted financing; apply disbursements and rejections."""
    cfg = bank(bank_name)
    with ledger_session(settings) as s:
        todo = _financings(s, state="pending", funder=cfg.funder_uscc, registered=True)
    counts = {"disbursed": 0, "rejected": 0, "pending": 0}
    if not todo:
        return counts
    from ledger.recon.model import ExpectedItem
    from ledger.recon.service import register_expected

    desk = financing_desk(cfg, Archive(settings.archive_dir))
    cmds: list[dict[str, Any]] = []
    expected: list[ExpectedItem] = []
    day = on.isoformat()
    flow = f"financing_{bank_name}"
    with ledger_session(settings) as s:
        since = quarantine.get_cursor(s, flow, "notices")
    try:
        # the bank's notices first (what it pushed since last time), then a query per serial left
        pushed, cursor = desk.notices(since)
        for f in todo:
            serial = serial_for(f["financing_id"])
            d = pushed.get(serial)
            if d is None or d.status in ("PENDING", "APPROVED"):
                d = desk.status(serial) or d
            if d is None or d.status in ("PENDING", "APPROVED"):
                counts["pending"] += 1
            elif d.status == "DISBURSED":
                counts["disbursed"] += 1
                cmds.append({"cmd": "disburse", "key": f"{bank_name}:disburse:{f['financing_id']}", "on": day,
                             "financing_id": f["financing_id"]})
                if d.disbursed_minor and f["seller_account"]:
                    # the proceeds the bank credits to the seller: reconciliation expects that line
                    expected.append(ExpectedItem(
                        item_id=f"disbursement:{f['financing_id']}", kind="disbursement",
                        account=f["seller_account"], currency=f["currency"], direction="CRDT",
                        amount_minor=d.disbursed_minor, due_date=on, end_to_end_id=serial,
                        serial_no=serial, voucher_no=f["voucher_no"], piece_no=f["piece_no"],
                        obligor_uscc=f["obligor"]))
            else:
                counts["rejected"] += 1
                cmds.append({"cmd": "reject_financing", "key": f"{bank_name}:reject:{f['financing_id']}",
                             "on": day, "financing_id": f["financing_id"],
                             "reason": f"{bank_name}: {d.reason or 'rejected'}"})
    finally:
        desk.close()
    with ledger_session(settings) as s:
        if cmds:
            results = ledger_for(settings).apply(cmds, session=s)
            refused = [r for r in results if not r.ok]
            if refused:
                raise RuntimeError("ledger refused: " + "; ".join(f"{r.key}: {r.result} {r.detail or ''}"
                                                                  for r in refused[:5]))
            register_expected(s, expected)
        if cursor is not None and cursor != since:
            quarantine.set_cursor(s, flow, "notices", cursor, at=at)
    return counts


def replay_financing(item: quarantine.QuarantineItem) -> str:
    """Replay handler of ``financing`` items: resubmit under the same serial."""
    settings = Settings.from_env()
    ctx = item.context_dict
    cfg = bank(str(ctx["bank"]))
    with ledger_session(settings) as s:
        found = [f for f in _financings(s, state="pending", funder=cfg.funder_uscc, registered=True)
                 if f["financing_id"] == item.item_ref]
    if not found:
        return f"financing {item.item_ref} is no longer pending: nothing to resubmit"
    desk = financing_desk(cfg, Archive(settings.archive_dir))
    try:
        d = desk.submit(_application(found[0], cfg))
    finally:
        desk.close()
    return f"resubmitted {item.item_ref} to {cfg.name} as {serial_for(item.item_ref)}: {d.status}"


def replay_registration(item: quarantine.QuarantineItem) -> str:
    """Replay handler of ``registry_sync`` items: run registration again for the business date."""
    settings = Settings.from_env()
    on = date.fromisoformat(str(item.context_dict.get("business_date")))
    counts = register_financings(settings, on=on, at=settings.clock())
    with ledger_session(settings) as s:
        rows = s.scalars(select(FinancingRow).where(FinancingRow.financing_id == item.item_ref)).all()
    if rows and rows[0].registration_no is None and rows[0].state == "pending":
        raise RuntimeError(f"financing {item.item_ref} still not registered ({counts})")
    return f"registration of {item.item_ref} done ({counts})"
