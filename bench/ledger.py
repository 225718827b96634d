"""Ledger batch posting vs a bare ``executemany`` of the same rows, on SQLite and PostgreSQL.

Posts >= 100,000 mixed commands (parties, accounts, quotas, payables, issue, accept, reject, revoke,
transfer/split and its acceptance or void, financing with registration and disbursement, clearing,
sent/settled) through ``Ledger.apply`` in batches, with every rule and the hash chain on. Then
copies exactly the rows the ledger left in its tables into a fresh database of the same kind with
plain DBAPI ``executemany`` (``COPY`` on PostgreSQL; same number of transactions) and times that. Prints
``ledger[<db>] ratio=<bare time / ledger time>``. The business dates are synthetic; nothing is
read from the clock except the timer.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stdnum.cn import uscc as stdnum_uscc

TABLES = [
    "ledger_parties",
    "ledger_accounts",
    "ledger_quotas",
    "ledger_payables",
    "ledger_vouchers",
    "ledger_backings",
    "ledger_pieces",
    "ledger_transfers",
    "ledger_financings",
    "ledger_instructions",
    "ledger_journal",
    "ledger_postings",
]


def make_uscc(prefix: str, n: int) -> str:
    base = f"91{prefix}MA{n:07d}"[:17]
    return base + stdnum_uscc.calc_check_digit(base)


def fen(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def commands(vouchers: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """A deterministic mixed workload: setup, then one lifecycle per voucher (~11 commands each)."""
    import random

    rnd = random.Random(seed)
    obligors = [make_uscc("110000", i) for i in range(20)]
    suppliers = [make_uscc("310000", i) for i in range(400)]
    funders = [make_uscc("440300", i) for i in range(8)]
    d0 = "2026-01-05"
    for roles, group in ((["obligor"], obligors), (["supplier"], suppliers), (["funder"], funders)):
        for u in group:
            yield {
                "cmd": "register_party",
                "key": f"p:{u}",
                "on": d0,
                "uscc": u,
                "name": f"Party {u}",
                "roles": roles,
            }
            yield {
                "cmd": "add_account",
                "key": f"a:{u}",
                "on": d0,
                "uscc": u,
                "currency": "CNY",
                "account_no": f"6222{u[8:17]}",
                "cnaps": "102100099996",
            }
    for u in obligors:
        yield {
            "cmd": "set_quota",
            "key": f"q:{u}",
            "on": d0,
            "obligor": u,
            "limit": "100000000000.00",
            "currency": "CNY",
        }
    for n in range(vouchers):
        o = obligors[n % len(obligors)]
        s1, s2 = rnd.sample(suppliers, 2)
        f = funders[n % len(funders)]
        amount = rnd.randrange(1_000_00, 5_000_000_00)
        part = rnd.randrange(1, amount)
        vno = f"BV{n:08d}"
        day = 5 + n % 20
        on = f"2026-02-{day:02d}"
        due = "2026-07-15"
        yield {
            "cmd": "register_payable",
            "key": f"rp:{n}",
            "on": on,
            "payable_id": f"PAY{n:08d}",
            "obligor": o,
            "supplier": s1,
            "amount": fen(amount),
            "currency": "CNY",
            "invoice_no": f"INV{n}",
        }
        yield {
            "cmd": "issue",
            "key": f"i:{n}",
            "on": on,
            "voucher_no": vno,
            "obligor": o,
            "supplier": s1,
            "amount": fen(amount),
            "currency": "CNY",
            "maturity": due,
            "backing": [{"payable_id": f"PAY{n:08d}", "amount": fen(amount)}],
        }
        if n % 25 == 0:
            yield {
                "cmd": "reject" if n % 50 == 0 else "revoke",
                "key": f"r:{n}",
                "on": on,
                "voucher_no": vno,
                "reason": "goods returned",
            }
            continue
        yield {"cmd": "accept", "key": f"ac:{n}", "on": on, "voucher_no": vno}
        yield {
            "cmd": "transfer",
            "key": f"t:{n}",
            "on": on,
            "piece_no": f"{vno}-1",
            "from": s1,
            "to": s2,
            "amount": fen(part),
            "currency": "CNY",
        }
        if n % 10 == 3:
            yield {"cmd": "void_transfer", "key": f"tv:{n}", "on": on, "transfer_id": f"t:{n}"}
            pieces = [(f"{vno}-1", s1)]
        else:
            yield {"cmd": "accept_transfer", "key": f"ta:{n}", "on": on, "transfer_id": f"t:{n}"}
            pieces = [(f"{vno}-2", s2), (f"{vno}-3", s1)]
        fp, holder = pieces[0]
        yield {
            "cmd": "finance",
            "key": f"f:{n}",
            "on": on,
            "piece_no": fp,
            "holder": holder,
            "funder": f,
            "rate": "0.0325",
            "recourse": n % 2 == 0,
        }
        yield {
            "cmd": "record_registration",
            "key": f"fr:{n}",
            "on": on,
            "financing_id": f"f:{n}",
            "registration_no": f"ZD{n:012d}",
        }
        yield {"cmd": "disburse", "key": f"fd:{n}", "on": on, "financing_id": f"f:{n}"}
        yield {"cmd": "open_clearing", "key": f"c:{n}", "on": due, "voucher_no": vno}
        total = amount
        for i, (pno, _) in enumerate(pieces):
            amt = part if (len(pieces) == 2 and i == 0) else (amount - part if len(pieces) == 2 else total)
            yield {
                "cmd": "mark_sent",
                "key": f"ms:{n}:{i}",
                "on": due,
                "instruction_id": f"CI{pno}",
                "message_id": f"MSG{n:08d}",
            }
            yield {
                "cmd": "settle",
                "key": f"st:{n}:{i}",
                "on": "2026-07-16",
                "instruction_id": f"CI{pno}",
                "statement_ref": f"STMT{n:08d}{i}",
                "amount": fen(amt),
                "currency": "CNY",
            }


def run_ledger(url: str, cmds: list[dict[str, Any]], batch: int, profile: bool) -> tuple[float, int]:
    from ledger.api import Ledger

    led = Ledger.open(url)
    bad = 0
    prof: Any = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    for i in range(0, len(cmds), batch):
        for r in led.apply(cmds[i : i + batch]):
            if r.result != "ok":
                bad += 1
                if bad <= 5:
                    print(f"  unexpected: {r.to_json()}", file=sys.stderr)
    elapsed = time.perf_counter() - t0
    if prof is not None:
        import pstats

        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
    report = led.verify()
    print(f"  verify: {report.summary}")
    led.close()
    return elapsed, bad


def dump_rows(url: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    from ledger.db import make_engine

    engine = make_engine(url)
    out = {}
    with engine.connect() as conn:
        for t in TABLES:
            res = conn.exec_driver_sql(f"SELECT * FROM {t}")
            out[t] = (list(res.keys()), [tuple(r) for r in res.all()])
    engine.dispose()
    return out


def bare_write(
    url: str, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]], transactions: int
) -> float:
    """Insert ``rows`` by raw DBAPI executemany (COPY on PostgreSQL) in ``transactions`` commits; seconds."""
    from ledger.db import make_engine, migrate

    migrate(url)
    engine = make_engine(url)
    raw = engine.raw_connection()
    dbapi = raw.driver_connection
    assert dbapi is not None
    pg = engine.dialect.name == "postgresql"
    ph = "%s" if pg else "?"
    # One flat stream in foreign-key order, cut into the same number of transactions as the ledger used.
    stream = [(t, row) for t in TABLES for row in rows[t][1]]
    per_tx = max(1, -(-len(stream) // transactions))
    t0 = time.perf_counter()
    cur = dbapi.cursor()
    for k in range(0, len(stream), per_tx):
        part = stream[k : k + per_tx]
        if not pg:
            cur.execute("BEGIN IMMEDIATE")
        start = 0
        while start < len(part):
            t = part[start][0]
            end = start
            while end < len(part) and part[end][0] == t:
                end += 1
            cols = rows[t][0]
            if pg:  # COPY: the fastest way PostgreSQL accepts rows, a stricter baseline than executemany
                with cur.copy(f"COPY {t} ({', '.join(cols)}) FROM STDIN") as copy:
                    for _, r in part[start:end]:
                        copy.write_row(r)
            else:
                cur.executemany(
                    f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({', '.join([ph] * len(cols))})",
                    [r for _, r in part[start:end]],
                )
            start = end
        dbapi.commit()
    elapsed = time.perf_counter() - t0
    raw.close()
    engine.dispose()
    return elapsed


def _keep_sqlite(url: str, dest: Path) -> None:
    """Copy the benchmark's ledger to ``dest`` (SQLite's online backup: consistent, WAL included)."""
    import sqlite3

    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    src = sqlite3.connect(url.split("///", 1)[1])
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    print(f"  kept the ledger at {dest} (cvhub ledger verify --db sqlite:///{dest})")


def _pg_create(admin: str, name: str) -> str:
    import psycopg

    plain = admin.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"


def _pg_drop(admin: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_one(
    kind: str,
    cmds: list[dict[str, Any]],
    batch: int,
    pg_admin: str,
    profile: bool,
    *,
    keep: Path | None = None,
) -> float:
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="cvhub-bench-") as tmp:
        if kind == "sqlite":
            led_url, bare_url = (
                f"sqlite:///{Path(tmp) / 'ledger.sqlite'}",
                f"sqlite:///{Path(tmp) / 'bare.sqlite'}",
            )
        else:
            led_url = _pg_create(pg_admin, f"cvhub_bench_ledger_{tag}")
            bare_url = _pg_create(pg_admin, f"cvhub_bench_bare_{tag}")
        try:
            led_time, bad = run_ledger(led_url, cmds, batch, profile)
            rows = dump_rows(led_url)
            nrows = sum(len(r) for _, r in rows.values())
            bare_time = bare_write(bare_url, rows, transactions=(len(cmds) + batch - 1) // batch)
            if keep is not None and kind == "sqlite":
                _keep_sqlite(led_url, keep)
        finally:
            if kind == "postgresql":
                _pg_drop(pg_admin, f"cvhub_bench_ledger_{tag}")
                _pg_drop(pg_admin, f"cvhub_bench_bare_{tag}")
    print(
        f"  ledger: {len(cmds)} commands in {led_time:.2f}s = {len(cmds) / led_time:,.0f} commands/s "
        f"({bad} not ok); rows written: {nrows:,}"
    )
    print(
        f"  bare {'COPY' if kind == 'postgresql' else 'executemany'} of the same {nrows:,} rows: "
        f"{bare_time:.2f}s = {nrows / bare_time:,.0f} rows/s"
    )
    return bare_time / led_time


def _contention_worker(  # noqa: PLR0917 - a thread target
    n: int,
    url: str,
    mode: str,
    holders: list[str],
    batches: int,
    pairs: int,
    counts: dict[str, int],
    mutex: Any,
) -> None:
    from ledger.api import Ledger

    d0 = "2026-03-02"
    rnd = random.Random(n)
    from ledger.api import LedgerBusy

    w = Ledger.open(url, concurrency=mode, migrate_schema=False)  # type: ignore[arg-type]
    for b in range(batches):
        with w.engine.connect() as conn:
            live = conn.exec_driver_sql(
                "SELECT piece_no, holder_uscc FROM ledger_pieces WHERE state = 'live'"
            ).all()
        cmds: list[dict[str, Any]] = []
        for k, (pno, holder) in enumerate(rnd.sample(live, min(pairs, len(live)))):
            tid = f"w{n}b{b}k{k}"
            to = rnd.choice([h for h in holders if h != holder])
            cmds += [
                {
                    "cmd": "transfer",
                    "key": tid,
                    "on": d0,
                    "piece_no": pno,
                    "from": holder,
                    "to": to,
                    "amount": "1.00",
                    "currency": "CNY",
                },
                {"cmd": "accept_transfer", "key": tid + "a", "on": d0, "transfer_id": tid},
            ]
        try:
            res = w.apply(cmds)
        except LedgerBusy:  # the retry deadline was spent: the caller's retriable error
            with mutex:
                counts["busy"] += 1
            continue
        with mutex:
            counts["ok"] += sum(r.result == "ok" for r in res)
            counts["refused"] += sum(r.result != "ok" for r in res)
    with mutex:
        counts["retries"] += w.retries
    w.close()


def contention(pg_admin: str, workers: int, batches: int, pairs: int) -> None:
    """``workers`` writers on overlapping pieces: chain-head row lock vs SERIALIZABLE with retry
    (back-off with jitter until the deadline), same work; retries per 1,000 commands applied."""
    import threading

    from ledger.api import Ledger

    holders = [make_uscc("310000", 900 + i) for i in range(4)]
    obligor = make_uscc("110000", 900)
    for mode in ("lock", "serializable"):
        tag = uuid.uuid4().hex[:8]
        url = _pg_create(pg_admin, f"cvhub_bench_cont_{tag}")
        try:
            led = Ledger.open(url)
            d0 = "2026-03-02"
            setup: list[dict[str, Any]] = [
                {"cmd": "register_party", "key": f"p:{u}", "on": d0, "uscc": u, "name": u, "roles": [r]}
                for u, r in [(obligor, "obligor")] + [(h, "supplier") for h in holders]
            ]
            setup += [
                {
                    "cmd": "set_quota",
                    "key": "q",
                    "on": d0,
                    "obligor": obligor,
                    "limit": "1000000000.00",
                    "currency": "CNY",
                },
                {
                    "cmd": "register_payable",
                    "key": "rp",
                    "on": d0,
                    "payable_id": "PO",
                    "obligor": obligor,
                    "supplier": holders[0],
                    "amount": "1000000000.00",
                    "currency": "CNY",
                },
            ]
            for i in range(16):
                setup += [
                    {
                        "cmd": "issue",
                        "key": f"i{i}",
                        "on": d0,
                        "voucher_no": f"CC{i}",
                        "obligor": obligor,
                        "supplier": holders[0],
                        "amount": "10000.00",
                        "currency": "CNY",
                        "maturity": "2026-06-30",
                        "backing": [{"payable_id": "PO", "amount": "10000.00"}],
                    },
                    {"cmd": "accept", "key": f"a{i}", "on": d0, "voucher_no": f"CC{i}"},
                ]
            led.apply(setup)
            led.close()
            counts = {"ok": 0, "refused": 0, "retries": 0, "busy": 0}
            mutex = threading.Lock()

            threads = [
                threading.Thread(
                    target=_contention_worker, args=(n, url, mode, holders, batches, pairs, counts, mutex)
                )
                for n in range(workers)
            ]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
            check = Ledger.open(url, migrate_schema=False)
            ok = check.verify().ok
            check.close()
            done = counts["ok"] + counts["refused"]
            print(
                f"contention[{mode}]: {workers} workers x {batches} batches x {2 * pairs} commands in "
                f"{elapsed:.2f}s = {done / elapsed:,.0f} commands/s; "
                f"ok={counts['ok']} refused={counts['refused']} retries={counts['retries']} "
                f"({1000 * counts['retries'] / max(done, 1):.0f} per 1,000 commands) "
                f"ledger_busy={counts['busy']} verify={'ok' if ok else 'FAILED'}"
            )
        finally:
            _pg_drop(pg_admin, f"cvhub_bench_cont_{tag}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cvhub bench ledger", description=__doc__)
    ap.add_argument("--vouchers", type=int, default=9_500, help="voucher lifecycles (~11 commands each)")
    ap.add_argument("--batch", type=int, default=1000, help="commands per transaction")
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--profile", action="store_true", help="cProfile the ledger run")
    ap.add_argument(
        "--keep",
        type=Path,
        metavar="PATH",
        help="SQLite: keep a copy of the benchmark ledger at PATH (e.g. to time `cvhub ledger verify`)",
    )
    ap.add_argument(
        "--contention",
        action="store_true",
        help="instead: PostgreSQL writers on overlapping pieces, row lock vs SERIALIZABLE+retry",
    )
    ap.add_argument("--workers", type=int, default=16, help="with --contention: concurrent writers")
    args = ap.parse_args(argv)
    pg_admin = os.environ.get("CVHUB_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    if args.contention:
        contention(pg_admin, workers=args.workers, batches=40, pairs=5)
        return 0
    cmds = list(commands(args.vouchers))
    print(f"workload: {len(cmds):,} commands, batches of {args.batch}")
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    ratios = {}
    for kind in kinds:
        print(f"[{kind}]")
        ratios[kind] = bench_one(kind, cmds, args.batch, pg_admin, args.profile, keep=args.keep)
    for kind, r in ratios.items():
        print(f"ledger[{kind}] ratio={r:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
