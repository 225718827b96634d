"""srm_payables flow: SRM confirmed payables -> vouchers issued in the ledger -> voucher numbers back.

Steps (each a task of ``dags/srm_payables.py``, each idempotent for its data interval):
1. ``fetch_payables``: pages of confirmed payables since the SRM cursor (raw pages are archived by
   the transport) into the interval's batch file; a rerun of the interval reuses that file.
2. ``issue_vouchers``: maps the batch (``mappings.payables``), registers unknown parties and their
   settlement accounts, registers each payable and issues one voucher per payable, in ONE ledger
   transaction together with the quarantine rows of the bad records and the advanced SRM cursor.
   Idempotency keys come from the SRM's payable ids, so a rerun or a replay has no second effect.
3. ``write_back``: tells the SRM each voucher number and status, 500 per batch POST (batch key
   from the interval and the batch's payable ids; each item idempotent on the SRM side).

A record that does not map, or that the ledger refuses (no quota, payable exceeded...), is
quarantined with the raw record and the reason; the rest of the batch flows. Never logs a token or
a record's content; secrets stay in the hook.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from connectors.archive import Archive
from connectors.errors import ClientError, FatalError, PaginationLimit
from cvhub.settings import Settings
from ledger import quarantine
from ledger.canonical import Payable
from ledger.models import AccountRow, PartyRow
from ledger.money import to_decimal_text
from mappings.payables import parse_srm_payables
from plugins.cvhub_flows.batches import batch_path, existing, read_json, write_json
from plugins.cvhub_flows.hooks import SrmHook
from plugins.cvhub_flows.ledger_session import ledger_for, ledger_session

if TYPE_CHECKING:
    from connectors.srm import SrmClient

log = logging.getLogger("cvhub.flows.srm_payables")

FLOW = "srm_payables"
CURSOR = "srm"
PAGE_SIZE = 500
WRITE_BACK_WORKERS = 8
WRITE_BACK_BATCH = 500  # the SRM's batch limit
BENIGN = ("ok", "exists", "party_exists", "account_exists", "payable_exists")


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """The SRM API's payable (nested ``obligor``/``supplier`` objects) in the flat shape that
    ``mappings.payables`` documents (``obligor_uscc``, ``supplier_uscc``, ``supplier_name``).
    Flat records pass through unchanged."""
    out = {k: v for k, v in record.items() if k not in ("obligor", "supplier", "voucher")}
    obligor, supplier = record.get("obligor"), record.get("supplier")
    if isinstance(obligor, dict):
        out.setdefault("obligor_uscc", obligor.get("uscc"))
        out.setdefault("obligor_name", obligor.get("name"))
    if isinstance(supplier, dict):
        out.setdefault("supplier_uscc", supplier.get("uscc"))
        out.setdefault("supplier_name", supplier.get("name"))
        out.setdefault("supplier_account", supplier.get("bank_account"))
        out.setdefault("supplier_cnaps", supplier.get("cnaps"))
    return out


def fetch_payables(settings: Settings, *, interval: str) -> dict[str, Any]:
    """Step 1: the interval's batch of raw SRM payables (reused on a rerun); a BatchRef + counts."""
    path = batch_path(settings, FLOW, interval, "payables.json")
    ref = existing(path)
    if ref is None:
        with ledger_session(settings) as s:
            since = quarantine.get_cursor(s, FLOW, CURSOR)
        client = SrmHook().get_client(Archive(settings.archive_dir), page_size=PAGE_SIZE)
        try:
            records: list[dict[str, Any]] = []
            cursor = since
            try:
                for page in client.iter_pages(since=since):
                    records.extend(page.records)
                    cursor = page.cursor
            except PaginationLimit as limit:
                # bounded run: keep what came and its cursor (issue advances it); the next run resumes
                log.warning("%s (%d payables kept)", limit, len(records))
        finally:
            client.close()
        ref = write_json(path, {"since": since, "cursor": cursor, "payables": records})
    doc = read_json(ref)
    return {**ref, "count": len(doc["payables"])}


def _commands(p: Payable, raw: dict[str, Any], on: date, parties: set[str],
              accounts: set[str]) -> list[dict[str, Any]]:
    """Ledger commands for one payable: unknown parties and account, the payable, the voucher."""
    cmds: list[dict[str, Any]] = []
    day = on.isoformat()
    for uscc, name, role in ((p.obligor_uscc, raw.get("obligor_name"), "obligor"),
                             (p.supplier_uscc, p.supplier_name, "supplier")):
        if uscc not in parties:
            parties.add(uscc)
            cmds.append({"cmd": "register_party", "key": f"party:{uscc}", "on": day, "uscc": uscc,
                         "name": str(name or uscc), "roles": [role]})
    account, cnaps = raw.get("supplier_account"), raw.get("supplier_cnaps")
    if account and cnaps and f"{p.supplier_uscc}/{account}" not in accounts:
        accounts.add(f"{p.supplier_uscc}/{account}")
        cmds.append({"cmd": "add_account", "key": f"account:{p.supplier_uscc}:{account}", "on": day,
                     "uscc": p.supplier_uscc, "currency": p.currency, "account_no": str(account),
                     "cnaps": str(cnaps)})
    amount = to_decimal_text(p.amount_minor, p.currency)
    payable: dict[str, Any] = {"cmd": "register_payable", "key": f"srm:payable:{p.payable_id}", "on": day,
                               "payable_id": p.payable_id, "obligor": p.obligor_uscc,
                               "supplier": p.supplier_uscc, "currency": p.currency, "amount": amount}
    for k in ("invoice_no", "contract_no", "receipt_no"):
        if getattr(p, k):
            payable[k] = getattr(p, k)
    if p.due_date:
        payable["due_date"] = p.due_date.isoformat()
    cmds.append(payable)
    cmds.append({"cmd": "issue", "key": f"srm:issue:{p.payable_id}", "on": day, "obligor": p.obligor_uscc,
                 "supplier": p.supplier_uscc, "currency": p.currency, "amount": amount,
                 "maturity": (p.due_date or on).isoformat(),
                 "backing": [{"payable_id": p.payable_id, "amount": amount}]})
    return cmds


def _known(s: Any, usccs: set[str], account_ids: set[str]) -> tuple[set[str], set[str]]:
    parties = set(s.scalars(select(PartyRow.uscc).where(PartyRow.uscc.in_(usccs)))) if usccs else set()
    accounts = set(s.scalars(select(AccountRow.account_id).where(AccountRow.account_id.in_(account_ids)))) \
        if account_ids else set()
    return parties, accounts


def apply_payables(settings: Settings, payables: list[tuple[Payable, dict[str, Any], int]], *, on: date,
                   source_sha256: str, source_name: str, at: datetime,
                   session: Any) -> tuple[list[dict[str, Any]], int]:
    """Issue vouchers for ``payables`` inside ``session``; quarantine refusals. Returns the vouchers
    (payable_id, voucher_no, amount, currency) and the number quarantined."""
    usccs = {u for p, _, _ in payables for u in (p.obligor_uscc, p.supplier_uscc)}
    ids = {f"{p.supplier_uscc}/{r.get('supplier_account')}" for p, r, _ in payables}
    parties, accounts = _known(session, usccs, ids)
    cmds: list[dict[str, Any]] = []
    spans: list[tuple[int, int]] = []
    for p, raw, _ in payables:
        start = len(cmds)
        cmds.extend(_commands(p, raw, on, parties, accounts))
        spans.append((start, len(cmds)))
    results = ledger_for(settings).apply(cmds, session=session)
    open_refs = set(session.scalars(select(quarantine.QuarantineItem.item_ref).where(
        quarantine.QuarantineItem.flow == FLOW, quarantine.QuarantineItem.status == "open")))
    vouchers: list[dict[str, Any]] = []
    bad = 0
    for (p, raw, line), (start, end) in zip(payables, spans, strict=True):
        failed = next((r for r in results[start:end] if r.result not in BENIGN), None)
        if failed is None:
            issued = results[end - 1]
            vouchers.append({"payable_id": p.payable_id, "voucher_no": issued.data["voucher_no"],
                             "amount": to_decimal_text(p.amount_minor, p.currency), "currency": p.currency})
            if p.payable_id in open_refs:  # an earlier failure of this payable is now resolved
                quarantine.resolve(session, flow=FLOW, item_ref=p.payable_id,
                                   resolution=f"issued {issued.data['voucher_no']}", at=at)
            continue
        bad += 1
        quarantine.put(session, flow=FLOW, item_ref=p.payable_id, source_sha256=source_sha256,
                       source_name=source_name, line=line, reason_code=failed.result,
                       message=failed.detail or failed.result, at=at,
                       raw=json.dumps(raw, ensure_ascii=False, sort_keys=True).encode(),
                       context={"kind": "issue", "business_date": on.isoformat()})
    return vouchers, bad


def issue_vouchers(settings: Settings, ref: dict[str, Any], *, on: date, interval: str,
                   at: datetime) -> dict[str, Any]:
    """Step 2: map the batch and issue its vouchers in one transaction (see module docstring)."""
    doc = read_json(ref)
    flat = [_flat(r) for r in doc["payables"]]
    source = f"srm:{interval}"
    mapped = parse_srm_payables(json.dumps(flat, ensure_ascii=False).encode(), source=source)
    by_id = {str(r.get("payable_id")): (r, n) for n, r in enumerate(flat, start=1)}
    good = [(p, by_id[p.payable_id][0], by_id[p.payable_id][1]) for p in mapped.records]
    with ledger_session(settings) as s:
        for rej in mapped.rejected:
            quarantine.put(s, flow=FLOW, item_ref=_ref_of(rej.raw, rej.line), source_sha256=ref["sha256"],
                           source_name=source, line=rej.line, record=rej.field, reason_code=rej.reason,
                           message=rej.message, raw=rej.raw, at=at,
                           context={"kind": "issue", "business_date": on.isoformat()})
        vouchers, refused = apply_payables(settings, good, on=on, source_sha256=ref["sha256"],
                                           source_name=source, at=at, session=s)
        if quarantine.get_cursor(s, FLOW, CURSOR) == doc["since"] and doc["cursor"] is not None:
            quarantine.set_cursor(s, FLOW, CURSOR, doc["cursor"], at=at)
    out = write_json(batch_path(settings, FLOW, interval, "vouchers.json"), vouchers)
    return {**out, "issued": len(vouchers), "quarantined": refused + len(mapped.rejected)}


def _ref_of(raw: bytes, line: int | None) -> str:
    try:
        pid = json.loads(raw).get("payable_id")
    except (ValueError, AttributeError):
        pid = None
    return str(pid) if pid else f"record:{line}"


def batch_key(interval: str, payable_ids: list[str]) -> str:
    """The idempotency key of one write-back batch: the data interval and the batch's payable ids
    (a rerun of the interval re-sends the same batches under the same keys; the SRM replays)."""
    digest = hashlib.sha256("\n".join(payable_ids).encode()).hexdigest()[:32]
    return f"srm-wb:{interval}:{len(payable_ids)}:{digest}"


def write_back(settings: Settings, ref: dict[str, Any], *, at: datetime,
               workers: int = WRITE_BACK_WORKERS, interval: str | None = None,
               batch_size: int = WRITE_BACK_BATCH) -> dict[str, Any]:
    """Step 3: voucher numbers and status ISSUED back to the SRM in batches of ``batch_size`` (one
    POST each, key from ``interval`` -- default: the batch file's interval directory -- and the
    batch's payable ids), ``workers`` batches in flight (one client each). An item the SRM refuses
    is quarantined (``writeback:<payable_id>``, ``ClientError``, as a refused single write-back is),
    the others go on. A batch the SRM refuses as a whole (4xx, e.g. an SRM without the batch
    endpoint) falls back to one write-back per voucher, refusals quarantined the same way. A
    retriable error or an unresolved unknown outcome fails the task after the in-flight batches
    finish (the retry repeats them safely under the same keys)."""
    from concurrent.futures import ThreadPoolExecutor

    from connectors.srm import WriteBackItem

    vouchers = read_json(ref)
    if not vouchers:
        return {"written": 0, "quarantined": 0}
    interval = interval or Path(ref["path"]).parent.name
    archive = Archive(settings.archive_dir)
    batches = [vouchers[i:i + batch_size] for i in range(0, len(vouchers), batch_size)]
    lanes = [batches[i::workers] for i in range(min(workers, len(batches)))]

    def single(client: SrmClient, v: dict[str, Any]) -> FatalError | None:
        try:
            client.write_back(v["payable_id"], v["voucher_no"], "ISSUED", amount=v["amount"],
                              currency=v["currency"])
        except FatalError as e:
            return e
        return None

    def run(lane: list[list[dict[str, Any]]]) -> list[tuple[dict[str, Any], FatalError]]:
        refused: list[tuple[dict[str, Any], FatalError]] = []
        client = SrmHook().get_client(archive)
        try:
            for batch in lane:
                items = [WriteBackItem(v["payable_id"], v["voucher_no"], "ISSUED", v["amount"], v["currency"])
                         for v in batch]
                key = batch_key(interval, [v["payable_id"] for v in batch])
                try:
                    result = client.write_back_batch(items, batch_key=key)
                except FatalError as e:
                    log.warning("%s; writing this batch back one voucher at a time", e)
                    refused.extend((v, err) for v in batch if (err := single(client, v)) is not None)
                    continue
                by_id = {v["payable_id"]: v for v in batch}
                for r in result.refused:
                    refused.append((by_id[r.item.payable_id], ClientError(
                        f"{r.code}: {r.message}", status=422, system="srm",
                        operation="write_back_vouchers_batch", ref=r.item.payable_id)))
        finally:
            client.close()
        return refused

    with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="srm-write-back") as pool:
        results = [f.result() for f in [pool.submit(run, lane) for lane in lanes]]
    refused = [r for part in results for r in part]
    if refused:
        with ledger_session(settings) as s:
            for v, e in refused:
                quarantine.put(s, flow=FLOW, item_ref=f"writeback:{v['payable_id']}",
                               source_sha256=ref["sha256"], source_name="vouchers.json",
                               reason_code=type(e).__name__, message=str(e), at=at,
                               raw=json.dumps(v, sort_keys=True).encode(), context={"kind": "write_back"})
    return {"written": len(vouchers) - len(refused), "quarantined": len(refused)}


def replay_payable(item: quarantine.QuarantineItem) -> str:
    """Replay handler of ``srm_payables`` items: issue (same keys) and write back, or write back."""
    settings = Settings.from_env()
    ctx = item.context_dict
    raw = json.loads(item.raw or b"{}")
    at = settings.clock()  # when the replay happened (an operator's action)
    if ctx.get("kind") == "write_back":
        client = SrmHook().get_client(Archive(settings.archive_dir))
        try:
            client.write_back(raw["payable_id"], raw["voucher_no"], "ISSUED", amount=raw["amount"],
                              currency=raw["currency"])
        finally:
            client.close()
        return f"wrote back {raw['voucher_no']} for {raw['payable_id']}"
    on = date.fromisoformat(ctx["business_date"])
    mapped = parse_srm_payables(json.dumps([raw], ensure_ascii=False).encode(), source=f"replay:{item.id}")
    if mapped.rejected:
        rej = mapped.rejected[0]
        raise ValueError(f"{rej.reason}: {rej.message}")
    with ledger_session(settings) as s:
        vouchers, refused = apply_payables(settings, [(mapped.records[0], raw, item.line or 1)], on=on,
                                           source_sha256=item.source_sha256, source_name="replay",
                                           at=at, session=s)
        if refused:
            latest = quarantine.list_items(s, status="open", flow=FLOW, limit=1)
            raise ValueError(latest[0].message if latest else "ledger refused the payable again")
    v = vouchers[0]
    client = SrmHook().get_client(Archive(settings.archive_dir))
    try:
        client.write_back(v["payable_id"], v["voucher_no"], "ISSUED", amount=v["amount"],
                          currency=v["currency"])
    finally:
        client.close()
    return f"issued {v['voucher_no']} for {v['payable_id']} and wrote it back"
