"""The main job through Airflow: the whole product end to end against the sandboxes.

``run_demo(db_url)`` sets up Airflow under ``<data_dir>/airflow`` (SQLite metadata DB, migrated
once), starts every sandbox on loopback, exports their ``AIRFLOW_CONN_*`` connections, and runs
the DAGs in order with ``dag.test()``:

  SRM payables -> vouchers issued (srm_payables) -> accepted, split and transferred by the suppliers
  (ledger commands, as the platform front-end would) -> financing requested at two banks ->
  registry query + registration (registry_sync) -> applications and disbursements
  (financing_bank_a, financing_bank_b) -> the business date moves to maturity -> clearing
  instructions, pain.001 to the treasury, pain.002 back (maturity_clearing) -> banks publish
  statements over SFTP -> reconciliation (statements_bank_a, statements_bank_b) -> finance package
  delivered over SFTP (finance_package) -> registrations cancelled (registry_sync) -> ledger_verify.

It prints a summary (with every open exception and quarantine item and its next action) and the
package path. Everything is keyed (ledger idempotency keys, bank serials, registry request numbers,
processed-file records), so running it again changes nothing; and the sandboxes keep their state
under ``<data_dir>/sandbox`` (``sandbox.state``), so a run killed at any point (``kill -9``
included) is finished by the next one with the same summary and journal head (``bench/crash.py``).
Time: the demo's issue date is the business clock's today (``CVHUB_CLOCK`` or the system clock),
moved to the next business day on the ledger's holiday calendar; it is fixed on the first run (kept
in ``<data_dir>/demo/business_date``) so that a rerun is the same run. Every sandbox follows the one
``SettableClock`` of the sandbox stack, which the scenario moves to the maturity date; no part of the
chain reads the wall clock for a business date, so the chain does the same on any day of the week.
Airflow must not have been imported before ``run_demo`` (it reads its configuration on import).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from canonical.clock import Clock, SettableClock, today

PAYABLES = ("1280000.00", "965000.00", "2350000.00", "1500000.00", "780000.50", "3100000.00")
RATE = "0.0385"
BANK_ACCOUNTS = {"bank_a": ("110000000000009001", "105100000017"),
                 "bank_b": ("310000000000009002", "308290003011")}


@dataclass
class DemoResult:
    """What the demo did; ``summary`` lines are printed, tests read the rest."""

    business_date: date
    maturity: date
    package_dir: Path | None = None
    manifest: Path | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    verify_ok: bool = False
    verify_summary: str = ""
    dag_seconds: dict[str, float] = field(default_factory=dict)
    journal_entries: int = 0
    head_hash: str | None = None

    def summary(self) -> list[str]:
        c = self.counts
        lines = [
            f"business dates: issue {self.business_date}, maturity {self.maturity}",
            f"vouchers {c.get('vouchers', 0)}  pieces {c.get('pieces', 0)}  "
            f"financed {c.get('financed', 0)}  cleared {c.get('cleared', 0)}/{c.get('instructions', 0)}",
            f"statement lines matched {c.get('matched', 0)}  exceptions {c.get('exceptions', 0)}  "
            f"quarantined {c.get('quarantined', 0)}",
        ]
        # what each exception is, so that a reader knows what to do without opening the package
        lines += [f"  exception {x['code']} {x['item']}: {x['detail']} -> {x['next_action']}"
                  for x in c.get("exception_list", [])]
        # and each open quarantine item (a registry finding, a refused write-back...) with its next step
        lines += [f"  quarantined #{q['id']} {q['flow']} {q['item']}: {q['reason']}: {q['message']} "
                  f"-> {q['next_action']}" for q in c.get("quarantine_list", [])]
        lines += [f"verify: {self.verify_summary}", f"finance package: {self.package_dir}"]
        return lines


def first_business_date(data_dir: Path, clock: Clock) -> date:
    """The demo's issue date: the clock's today, or the next business day after it on the ledger's
    holiday calendar; fixed on the first run (``<data_dir>/demo/business_date``) so that a rerun is
    the same run whatever the clock says by then."""
    from ledger.calendar import HolidayCalendar

    marker = data_dir / "demo" / "business_date"
    if marker.exists():
        return date.fromisoformat(marker.read_text().strip())
    d = HolidayCalendar.load("cn").adjust(today(clock), "following")
    marker.parent.mkdir(parents=True, exist_ok=True)
    # temp name + rename: a run killed while writing it must not leave an empty marker behind
    tmp = marker.with_name(f".{marker.name}.tmp")
    tmp.write_text(d.isoformat())
    os.replace(tmp, marker)
    return d


def _at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def run_scenario(settings: Any, stack: Any, *, d0: date, say: Callable[[str], None] = print,
                 settle_wait: float = 2.0) -> DemoResult:
    """The scenario on an already configured Airflow and a started ``SandboxStack``."""
    from plugins.cvhub_flows.airflow_env import run_dag
    from plugins.cvhub_flows.banks import BANKS
    from plugins.cvhub_flows.dag_defaults import logical_date_for
    from plugins.cvhub_flows.ledger_session import ledger_for
    from sandbox.rest_parties import OBLIGOR

    ledger = ledger_for(settings)
    result = DemoResult(business_date=d0, maturity=d0)
    day = d0.isoformat()

    def dag(dag_id: str, when: datetime, conf: dict[str, Any] | None = None) -> Any:
        r = run_dag(dag_id, logical_date=when, conf=conf)
        result.dag_seconds[dag_id] = result.dag_seconds.get(dag_id, 0.0) + r.seconds
        say(f"  {dag_id:<20} {r.state:<8} {r.seconds:5.1f}s")
        return r

    def apply(cmds: list[dict[str, Any]]) -> list[Any]:
        res = ledger.apply(cmds)
        bad = [r for r in res if not r.ok]
        if bad:
            raise RuntimeError("ledger refused: " + "; ".join(f"{r.key}: {r.result} {r.detail}" for r in bad))
        return res

    say("1. platform set-up: obligor, quota, settlement accounts, funders")
    setup: list[dict[str, Any]] = [
        {"cmd": "register_party", "key": f"party:{OBLIGOR.uscc}", "on": day, "uscc": OBLIGOR.uscc,
         "name": OBLIGOR.name, "roles": ["obligor"]},
        {"cmd": "set_quota", "key": "demo:quota", "on": day, "obligor": OBLIGOR.uscc, "currency": "CNY",
         "limit": "50000000.00"},
        {"cmd": "add_account", "key": f"account:{OBLIGOR.uscc}:{OBLIGOR.account}", "on": day,
         "uscc": OBLIGOR.uscc, "currency": "CNY", "account_no": OBLIGOR.account, "cnaps": OBLIGOR.cnaps},
    ]
    for b in BANKS:
        acct, cnaps = BANK_ACCOUNTS[b.name]
        setup += [{"cmd": "register_party", "key": f"party:{b.funder_uscc}", "on": day, "uscc": b.funder_uscc,
                   "name": b.funder_name, "roles": ["funder"]},
                  {"cmd": "add_account", "key": f"account:{b.funder_uscc}:{acct}", "on": day,
                   "uscc": b.funder_uscc, "currency": "CNY", "account_no": acct, "cnaps": cnaps}]
    apply(setup)

    say("2. SRM confirmed payables -> vouchers issued -> written back (srm_payables)")
    maturity_hint = d0 + timedelta(days=91)
    for n, amount in enumerate(PAYABLES, 1):
        # one by one: a run stopped half-way through confirms only the missing ones on the rerun
        if not stack.srm.payable(payable_id := f"AP-20261128-{n:06d}"):
            stack.srm.add_payable(amount=amount, due_date=maturity_hint, payable_id=payable_id,
                                  supplier=n % 50 + 1)
    dag("srm_payables", _at(d0, 9, 15))

    from sqlalchemy import select

    from ledger.models import VoucherRow
    from ledger.money import to_decimal_text
    from plugins.cvhub_flows.ledger_session import ledger_session

    with ledger_session(settings) as s:
        vouchers = list(s.execute(select(VoucherRow.voucher_no, VoucherRow.supplier_uscc,
                                         VoucherRow.face_minor, VoucherRow.due_date)
                                  .order_by(VoucherRow.voucher_no)).all())
    if len(vouchers) < 4:
        raise RuntimeError(f"expected at least 4 vouchers after srm_payables, found {len(vouchers)}")
    result.maturity = max(v.due_date for v in vouchers)

    say("3. suppliers accept, split and transfer (ledger commands, as the front-end would)")
    apply([{"cmd": "accept", "key": f"demo:accept:{v.voucher_no}", "on": day, "voucher_no": v.voucher_no}
           for v in vouchers])
    v1, v2, v3, v4 = vouchers[0], vouchers[1], vouchers[2], vouchers[3]
    part = to_decimal_text(v1.face_minor * 2 // 5, "CNY")
    t = apply([{"cmd": "transfer", "key": "demo:transfer:1", "on": day, "piece_no": f"{v1.voucher_no}-1",
                "from": v1.supplier_uscc, "to": v2.supplier_uscc, "currency": "CNY", "amount": part}])[0]
    apply([{"cmd": "accept_transfer", "key": "demo:accept_transfer:1", "on": day,
            "transfer_id": t.data["transfer_id"]}])

    say("4. financing requested at two banks; registry query + registration; bank decisions")
    banks = list(BANKS)
    apply([{"cmd": "finance", "key": f"demo:finance:{b.name}", "on": day, "piece_no": f"{v.voucher_no}-1",
            "holder": v.supplier_uscc, "funder": b.funder_uscc, "rate": RATE, "recourse": True}
           for b, v in zip(banks, (v3, v4), strict=False)])
    dag("registry_sync", _at(d0, 9, 30))
    for b in banks:
        dag(f"financing_{b.name}", _at(d0, 9, 30))
    # the banks decide and disburse asynchronously: the scheduled runs every 15 minutes pick the
    # answers up; here the next few intervals run until no financing is pending any more
    for round_no in range(6):
        if not _pending_financings(settings):
            break
        time.sleep(settle_wait / 2)
        for b in banks:
            dag(f"financing_{b.name}", _at(d0, 9, 45) + timedelta(minutes=15 * round_no))

    d1 = result.maturity
    say(f"5. business date moves to maturity {d1}: clearing via the treasury (maturity_clearing)")
    stack.advance_to_day(d1)
    dag("maturity_clearing", logical_date_for(d1))
    time.sleep(settle_wait)  # the treasury executes the batch
    dag("maturity_clearing", logical_date_for(d1))

    say("6. banks publish statements over SFTP; reconciliation (statements_<bank>)")
    stack.close_day(d1)
    for b in banks:
        dag(f"statements_{b.name}", logical_date_for(d1))

    say("7. finance package delivered over SFTP; registrations cancelled; ledger verified")
    dag("finance_package", logical_date_for(d1))
    dag("registry_sync", _at(d1, 12, 0), conf={"business_date": d1.isoformat()})
    dag("ledger_verify", logical_date_for(d1))

    result.counts = collect_counts(settings)
    from plugins.cvhub_flows.flow_verify import store_checks

    report = ledger.verify(stores=store_checks(settings, ledger.engine))  # every store, as the DAG does
    result.verify_ok, result.verify_summary = report.ok, report.summary
    result.journal_entries = report.entries
    result.head_hash = report.head_hash
    from plugins.cvhub_flows.package import package_dir

    pdir = package_dir(settings, d1)
    manifests = sorted(pdir.rglob("manifest.json"))
    result.package_dir = pdir
    result.manifest = manifests[0] if manifests else None
    return result


def _pending_financings(settings: Any) -> int:
    from sqlalchemy import func, select

    from ledger.models import FinancingRow
    from plugins.cvhub_flows.ledger_session import ledger_session

    with ledger_session(settings) as s:
        return int(s.scalar(select(func.count()).select_from(FinancingRow)
                            .where(FinancingRow.state == "pending")) or 0)


def collect_counts(settings: Any) -> dict[str, Any]:
    """Ledger and reconciliation totals for the summary (and the tests)."""
    from sqlalchemy import func, select

    from ledger.models import FinancingRow, InstructionRow, PieceRow, VoucherRow
    from ledger.quarantine import QuarantineItem
    from ledger.recon.models import ExceptionRow, MatchRow
    from plugins.cvhub_flows.ledger_session import ledger_session

    def count(s: Any, stmt: Any) -> int:
        return int(s.scalar(stmt) or 0)

    from ledger.recon.model import NEXT_ACTION

    with ledger_session(settings) as s:
        open_items = [
            {"id": q.id, "flow": q.flow, "item": q.item_ref, "reason": q.reason_code, "message": q.message,
             "next_action": q.context_dict.get("next_action")
             or f"fix the cause, then `cvhub quarantine replay {q.id}` (or discard it with the reason)"}
            for q in s.scalars(select(QuarantineItem).where(QuarantineItem.status == "open")
                               .order_by(QuarantineItem.id))]
        exceptions = [
            {"code": x.code, "item": x.item_id or f"{x.account} line {x.line_no}",
             "detail": x.detail, "next_action": NEXT_ACTION.get(x.code, "look at it"), "status": x.status}
            for x in s.scalars(select(ExceptionRow).order_by(ExceptionRow.id))]
        return {
            "exception_list": [x for x in exceptions if x["status"] == "open"],
            "quarantine_list": open_items,
            "vouchers": count(s, select(func.count()).select_from(VoucherRow)),
            "face_minor": count(s, select(func.sum(VoucherRow.face_minor))),
            "pieces": count(s, select(func.count()).select_from(PieceRow)),
            "financed": count(s, select(func.count()).select_from(FinancingRow)
                              .where(FinancingRow.state == "disbursed")),
            "instructions": count(s, select(func.count()).select_from(InstructionRow)),
            "cleared": count(s, select(func.count()).select_from(InstructionRow)
                             .where(InstructionRow.status == "settled")),
            "cleared_minor": count(s, select(func.sum(InstructionRow.amount_minor))
                                   .where(InstructionRow.status == "settled")),
            "settled_vouchers": count(s, select(func.count()).select_from(VoucherRow)
                                      .where(VoucherRow.state == "settled")),
            "matched": count(s, select(func.count()).select_from(MatchRow)),
            "exceptions": count(s, select(func.count()).select_from(ExceptionRow)),
            "quarantined": count(s, select(func.count()).select_from(QuarantineItem)
                                 .where(QuarantineItem.status == "open")),
        }


def run_demo(db_url: str | None = None, *, say: Callable[[str], None] = print) -> int:
    """``cvhub demo``: the whole product through Airflow; exit code 0 when verify holds."""
    from cvhub.settings import Settings

    if db_url:
        # the DAG tasks read their settings from the environment, as they would on a worker
        os.environ["CVHUB_DB_URL"] = db_url
    settings = Settings.from_env()
    settings.ensure_dirs()
    from plugins.cvhub_flows.airflow_env import configure_airflow, migrate_metadata_db

    configure_airflow(settings.data_dir / "airflow")
    started = time.perf_counter()
    secs = migrate_metadata_db()
    say(f"cvhub demo: data in {settings.data_dir}; Airflow metadata DB ready ({secs:.1f}s)")
    from plugins.cvhub_flows.sandbox_stack import SandboxStack
    from sandbox.rest_parties import OBLIGOR

    d0 = first_business_date(settings.data_dir, settings.clock)
    stack = SandboxStack(settings.data_dir / "sandbox", SettableClock.on_day(d0),
                         obligor_accounts={OBLIGOR.account})
    with stack:
        stack.export()
        say(f"sandboxes up on 127.0.0.1 (SRM {stack.srm.url}, treasury {stack.treasury.url}, ...)")
        result = run_scenario(settings, stack, d0=d0, say=say)
    for line in result.summary():
        say(line)
    say(f"done in {time.perf_counter() - started:.1f}s")
    return 0 if result.verify_ok else 1
