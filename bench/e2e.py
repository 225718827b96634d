"""``cvhub bench e2e --vouchers N``: the daily cycle for N vouchers through the DAGs (dag.test()).

Against the sandboxes on loopback, on SQLite (or CVHUB_DB_URL): N confirmed SRM payables ->
srm_payables (issue N vouchers) -> acceptance (ledger batch, as the front-end) -> maturity_clearing
(pain.001 batches to the treasury) -> the bank's camt.053 over SFTP -> statements_bank_a
(reconciliation, settlement) -> finance_package -> ledger_verify. Prints seconds per stage, the
total, and the share of each DAG run spent in Airflow itself: the baseline, measured in the same
run, is the time inside the flow steps (``flow_step`` timings); Airflow overhead = DAG run time -
step time. Last line: ``e2e vouchers=<N> seconds=<s>``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cvhub bench e2e", description=__doc__.splitlines()[0])
    p.add_argument("--vouchers", type=int, default=100_000)
    p.add_argument("--keep", action="store_true", help="Keep the temporary data directory.")
    args = p.parse_args(argv)
    n = args.vouchers
    work = Path(tempfile.mkdtemp(prefix="cvhub-bench-e2e-"))
    os.environ["CVHUB_DATA_DIR"] = str(work / "data")
    try:
        return _run(n, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _run(n: int, work: Path) -> int:
    from cvhub.settings import Settings
    from plugins.cvhub_flows.airflow_env import configure_airflow, migrate_metadata_db

    settings = Settings.from_env()
    settings.ensure_dirs()
    configure_airflow(work / "airflow")
    t0 = time.perf_counter()
    migrate_metadata_db()
    stages: dict[str, float] = {"airflow db migrate": time.perf_counter() - t0}

    from canonical.clock import SettableClock
    from plugins.cvhub_flows.airflow_env import run_dag
    from plugins.cvhub_flows.banks import BANKS
    from plugins.cvhub_flows.dag_defaults import logical_date_for
    from plugins.cvhub_flows.demo import first_business_date
    from plugins.cvhub_flows.failure import step_timings
    from plugins.cvhub_flows.ledger_session import ledger_for
    from plugins.cvhub_flows.sandbox_stack import SandboxStack
    from sandbox.rest_parties import OBLIGOR

    d0 = first_business_date(settings.data_dir, settings.clock)  # the business clock's today
    d1 = d0 + timedelta(days=91)
    dag_total = step_total = 0.0

    def stage(name: str, fn):  # type: ignore[no-untyped-def]
        nonlocal dag_total, step_total
        step_timings(clear=True)
        start = time.perf_counter()
        out = fn()
        secs = time.perf_counter() - start
        stages[name] = secs
        if hasattr(out, "seconds"):
            inner = sum(s for _, s in step_timings())
            dag_total += out.seconds
            step_total += inner
            print(f"  {name:<28} {secs:8.2f}s   in flow steps {inner:8.2f}s   "
                  f"airflow {out.seconds - inner:6.2f}s", flush=True)
            for step, step_secs in step_timings():
                print(f"      {step:<40} {step_secs:8.2f}s", flush=True)
        else:
            print(f"  {name:<28} {secs:8.2f}s", flush=True)
        return out

    clock = SettableClock.on_day(d0)
    with SandboxStack(work / "sandbox", clock, obligor_accounts={OBLIGOR.account}) as stack:
        stack.export()
        ledger = ledger_for(settings)
        day = d0.isoformat()
        ledger.apply([
            {"cmd": "register_party", "key": f"party:{OBLIGOR.uscc}", "on": day, "uscc": OBLIGOR.uscc,
             "name": OBLIGOR.name, "roles": ["obligor"]},
            {"cmd": "set_quota", "key": "bench:quota", "on": day, "obligor": OBLIGOR.uscc, "currency": "CNY",
             "limit": "900000000000.00"},
            {"cmd": "add_account", "key": f"account:{OBLIGOR.uscc}:{OBLIGOR.account}", "on": day,
             "uscc": OBLIGOR.uscc, "currency": "CNY", "account_no": OBLIGOR.account, "cnaps": OBLIGOR.cnaps},
        ])
        print(f"e2e: {n} vouchers, data in {work}", flush=True)
        t = time.perf_counter()
        for i in range(n):
            stack.srm.add_payable(amount=f"{1000 + i % 9000}.{i % 100:02d}", due_date=d1)
        stages["seed SRM sandbox"] = time.perf_counter() - t
        start = time.perf_counter()
        stage("srm_payables", lambda: run_dag("srm_payables", logical_date=datetime(
            d0.year, d0.month, d0.day, 9, 15, tzinfo=UTC)))

        def accept() -> None:
            from sqlalchemy import select

            from ledger.models import VoucherRow
            from plugins.cvhub_flows.ledger_session import ledger_session

            with ledger_session(settings) as s:
                vouchers = list(s.scalars(select(VoucherRow.voucher_no).where(VoucherRow.state == "issued")))
            for i in range(0, len(vouchers), 5000):
                ledger.apply([{"cmd": "accept", "key": f"bench:accept:{v}", "on": day, "voucher_no": v}
                              for v in vouchers[i:i + 5000]])

        stage("accept (ledger batch)", accept)
        stack.clock.set_day(d1)
        stage("maturity_clearing", lambda: run_dag("maturity_clearing", logical_date=logical_date_for(d1)))
        time.sleep(1.0)
        stage("banks close the day", lambda: stack.close_day(d1))
        bank_a = BANKS[0].name
        stage(f"statements_{bank_a}",
              lambda: run_dag(f"statements_{bank_a}", logical_date=logical_date_for(d1)))
        stage("finance_package", lambda: run_dag("finance_package", logical_date=logical_date_for(d1)))
        stage("ledger_verify", lambda: run_dag("ledger_verify", logical_date=logical_date_for(d1)))
        total = time.perf_counter() - start

        from plugins.cvhub_flows.demo import collect_counts

        c = collect_counts(settings)
    share = (dag_total - step_total) / dag_total if dag_total else 0.0
    print(f"vouchers {c['vouchers']}  cleared {c['cleared']}/{c['instructions']}  matched {c['matched']}  "
          f"exceptions {c['exceptions']}  quarantined {c['quarantined']}")
    ratio = step_total / dag_total if dag_total else 0.0
    print(f"DAG runs {dag_total:.2f}s, inside flow steps {step_total:.2f}s: "
          f"airflow overhead share={share:.3f} (ratio steps/dag={ratio:.3f})")
    ok = c["vouchers"] == n and c["cleared"] == c["instructions"] == n
    if not ok:
        print(f"e2e: INCOMPLETE: {c}", file=sys.stderr)
    print(f"e2e vouchers={n} seconds={total:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
