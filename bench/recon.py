"""``cvhub bench recon``: one million statement lines against one million expected items.

Mix (of N): 90% lines carry the item's EndToEndId (pass 1), 8% carry no reference and match on
amount + account + window (pass 2), 2% are grouped (one line paying a voucher's two items, pass 3)
or unmatched on either side. Timed end to end, from loading (parse the canonical statement JSON,
read the open items from the database) through matching to persisted results (statement, lines,
matches, exceptions bulk-inserted, committed). In the same run a bare dict join over the same data
(EndToEndId -> item, probe every line, compare the amount) is timed as the baseline.

Prints ``recon ratio=<bare dict-join seconds / our matching-core seconds> seconds=<end to end>``
and the per-stage times. SQLite by default (a temporary file); ``--db`` for PostgreSQL.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ACCOUNT = "6222020000000000001"
DAY = date(2026, 12, 15)


def generate(n: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Statement entries (JSON objects) and expected items (dicts) in the benchmark's mix."""
    rnd = random.Random(seed)
    n_ref = n * 90 // 100
    n_win = n * 8 // 100
    n_grp = n * 5 // 1000            # lines paying two items each
    n_unl = n - n_ref - n_win - n_grp  # unmatched lines
    n_uni = n - n_ref - n_win - 2 * n_grp  # unmatched items (overdue)
    lines: list[dict] = []
    items: list[dict] = []
    for i in range(n_ref):
        amt = rnd.randrange(100, 10**9)
        due = DAY - timedelta(days=i % 3)
        e2e = f"CI{i:09d}"
        items.append({"item_id": f"IT{i:09d}", "amount_minor": amt, "due_date": due, "end_to_end_id": e2e})
        lines.append({"amount_minor": amt, "credit_debit": "DBIT", "booking_date": DAY.isoformat(),
                      "value_date": due.isoformat(), "end_to_end_id": e2e, "account_servicer_ref": f"B{i}"})
    for k in range(n_win):
        amt = 10**10 + k                 # unique amounts: the window pass is unambiguous by design
        due = DAY - timedelta(days=k % 3)
        items.append({"item_id": f"WN{k:09d}", "amount_minor": amt, "due_date": due, "end_to_end_id": None})
        lines.append({"amount_minor": amt, "credit_debit": "DBIT", "booking_date": DAY.isoformat(),
                      "value_date": DAY.isoformat(), "remittance_info": "货款"})
    for g in range(n_grp):
        a, b = 2 * 10**10 + 2 * g, 2 * 10**10 + 2 * g + 1
        items.append({"item_id": f"GA{g:09d}", "amount_minor": a, "due_date": DAY, "end_to_end_id": None,
                      "voucher_no": f"V{g:09d}"})
        items.append({"item_id": f"GB{g:09d}", "amount_minor": b, "due_date": DAY, "end_to_end_id": None,
                      "voucher_no": f"V{g:09d}"})
        lines.append({"amount_minor": a + b, "credit_debit": "DBIT", "booking_date": DAY.isoformat(),
                      "value_date": DAY.isoformat(), "remittance_info": f"兑付 V{g:09d}"})
    for u in range(n_unl):
        lines.append({"amount_minor": 3 * 10**10 + u, "credit_debit": "CRDT", "booking_date": DAY.isoformat(),
                      "value_date": DAY.isoformat(), "remittance_info": "unknown"})
    for u in range(n_uni):
        items.append({"item_id": f"UN{u:09d}", "amount_minor": 4 * 10**10 + u,
                      "due_date": DAY - timedelta(days=20), "end_to_end_id": None})
    rnd.shuffle(lines)
    return lines, items


def bare_dict_join(entries: list, items: list) -> tuple[float, int]:
    """The baseline: index items by EndToEndId, probe every line, compare the amount."""
    t = time.perf_counter()
    idx = {it.end_to_end_id: it for it in items}
    out = []
    for e in entries:
        it = idx.get(e.end_to_end_id)
        if it is not None and it.amount_minor == e.amount_minor:
            out.append((e, it))
    return time.perf_counter() - t, len(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cvhub bench recon", description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="statement lines (= expected items)")
    ap.add_argument("--db", default=None, help="database URL (default: a temporary SQLite file)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    from sqlalchemy.orm import Session

    from ledger.db import make_engine, migrate
    from ledger.recon.model import ExpectedItem, normalise_account
    from ledger.recon.service import open_items, register_expected, run_statement
    from ledger.recon.statement_json import load_statements

    n = args.lines
    with tempfile.TemporaryDirectory(prefix="cvhub-bench-recon-") as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'recon.sqlite'}"
        print(f"setup: generating {n:,} lines and {n:,} items; database {url.split('://')[0]}", flush=True)
        t = time.perf_counter()
        lines, raw_items = generate(n, args.seed)
        stmt_path = Path(tmp) / "statement.json"
        stmt_path.write_text(json.dumps({
            "source_format": "camt.053.001.08", "statement_id": f"BENCH-{DAY}", "account": ACCOUNT,
            "currency": "CNY", "sequence": 1, "from_date": DAY.isoformat(), "to_date": DAY.isoformat(),
            "entries": lines}, ensure_ascii=False), encoding="utf-8")
        del lines
        engine = make_engine(url)
        migrate(engine)
        acct = normalise_account(ACCOUNT)
        with Session(engine) as s, s.begin():
            register_expected(s, (ExpectedItem(
                d["item_id"], "repayment", acct, "CNY", "DBIT", d["amount_minor"], d["due_date"],
                end_to_end_id=d["end_to_end_id"], voucher_no=d.get("voucher_no"), obligor_uscc=None)
                for d in raw_items))
        del raw_items
        gc.collect()
        print(f"setup: {time.perf_counter() - t:.1f}s (not timed below)", flush=True)

        timings: dict[str, float] = {}
        gc.disable()   # both contenders run without the cyclic GC (nothing here is cyclic)
        t0 = time.perf_counter()
        [statement] = load_statements(stmt_path.read_bytes(), str(stmt_path))
        t_load = time.perf_counter() - t0
        with Session(engine) as s:
            with s.begin():
                t1 = time.perf_counter()
                items = open_items(s, acct, ledger=None)
                t_items = time.perf_counter() - t1
                r = run_statement(s, statement, items=items, timings=timings)
                t2 = time.perf_counter()
            t_end = time.perf_counter()
        total = t_end - t0
        commit = t_end - t2

        # matching core vs the bare dict join, same data, same process state: best of 3 each
        from ledger.recon.engine import match_statement

        entries = list(statement.entries)
        core = [timings["match"]]
        bares = []
        for _ in range(3):
            bares.append(bare_dict_join(entries, items))
            if len(core) < 3:
                t = time.perf_counter()
                match_statement(acct, statement.entries, items, as_of=DAY)
                core.append(time.perf_counter() - t)
        bare, bare_n = min(bares)
        best_core = min(core)
        gc.enable()
        engine.dispose()

    ratio = bare / best_core
    print(f"matched lines={r.matched_lines:,} matches={r.match_count:,} exceptions={r.exception_count:,} "
          f"({', '.join(f'{k}={v:,}' for k, v in sorted(r.exceptions_by_code.items()))})")
    print(f"rules: {', '.join(f'{k}={v:,}' for k, v in sorted(r.matches_by_rule.items()))}")
    print(f"stages: load_statement={t_load:.2f}s load_items={t_items:.2f}s "
          f"identity={timings['identity']:.2f}s prior_refs={timings['items']:.2f}s "
          f"match={timings['match']:.2f}s "
          f"persist={timings['persist']:.2f}s commit={commit:.2f}s")
    print(f"baseline: bare dict join {bare:.2f}s ({bare_n:,} pairs, best of 3); matching core "
          f"{best_core:.2f}s (best of 3, {timings['match']:.2f}s in the run) = {best_core / bare:.2f}x")
    print(f"recon ratio={ratio:.2f} seconds={total:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
