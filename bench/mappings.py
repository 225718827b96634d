"""Benchmark: camt.053 and MT940 parsing vs a bare lxml iterparse pass / bare line scan, and PyPI parsers.

Generates (with cvhub's own writers) a camt.053 of >= --camt-mb MB and an MT940 with the same
number of entries in a temp dir, then runs each parser in its own subprocess and prints, per
format: entries/s, our time, the bare pass's time, ``ratio = bare / ours`` (target >= 0.8) and
``peak_mib`` = the parser subprocess's peak RSS (``VmHWM`` from /proc/self/status, measured in
that subprocess: whole process = interpreter + lxml + data; target < 64 MiB; ``ru_maxrss`` is not
used on Linux because it carries over the spawning parent's peak across exec). The established PyPI parsers
(pycamt for camt.053, mt-940 for MT940) build the whole document in memory, so they are compared
on a smaller file (--pypi-entries) against our parser on that same file.

"Ours" is the product as shipped: the parsers with their compiled accelerators (mappings/accel.py;
the first line printed says whether they are built). ``--pure`` also times the pure-Python
reference parsers (CVHUB_ACCEL=0) on the same big files.

    python -m bench.mappings [--camt-mb 200] [--pypi-entries 5000] [--pure] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ENTRY_BYTES_CAMT = 775  # size of one generated camt entry (measured)


def _entries(n: int, seed: int, ccy: str = "CNY"):  # type: ignore[no-untyped-def]
    from ledger.canonical import Party, StatementEntry

    rnd = random.Random(seed)
    day = date(2026, 1, 1)
    for i in range(n):
        cd = "CRDT" if rnd.random() < 0.5 else "DBIT"
        d = day + timedelta(days=i // 5000)
        yield StatementEntry(
            amount_minor=rnd.randint(1, 10_000_000), currency=ccy, credit_debit=cd, booking_date=d,
            value_date=d, account_servicer_ref=f"BK{seed}{i:010d}", end_to_end_id=f"E2E-{i:012d}",
            instruction_id=f"CLR-{i:012d}",
            bank_tx_code="PMNT/RCDT/BOOK" if cd == "CRDT" else "PMNT/ICDT/DMCT",
            remittance_info=f"电子债权凭证 CV{i:010d} 到期清分 invoice INV-{i:08d}",
            counterparty=Party(name=f"供应商{i % 997}有限公司", account=f"6222{i:015d}",
                               agent="102100099996"))


def _totals(n: int, seed: int) -> int:
    net = 0
    for e in _entries(n, seed):
        net += e.signed_minor
    return net


def generate_camt(path: Path, n: int, seed: int = 1) -> None:
    from ledger.canonical import Statement
    from mappings.camt import write_camt053

    opening = 1_000_000_000
    closing = opening + _totals(n, seed)
    st = Statement(source_format="camt.053.001.08", statement_id="BENCH-1", account="6222020200001234567",
                   currency="CNY", sequence=1, created_at=datetime(2026, 1, 1, tzinfo=UTC),
                   from_date=date(2026, 1, 1), to_date=date(2026, 12, 31), opening_balance_minor=opening,
                   closing_balance_minor=closing, entries=(), account_servicer="102100099996")
    with path.open("wb") as fh:
        write_camt053(fh, [st], message_id="BENCH-CAMT", created_at=datetime(2026, 1, 1, tzinfo=UTC),
                      entries=_entries(n, seed))


def generate_mt940(path: Path, n: int, seed: int = 2, per_statement: int = 1000) -> None:
    from ledger.canonical import Statement
    from mappings.mt940 import render_mt940

    balance = 1_000_000_000
    gen = _entries(n, seed, "EUR")
    seq = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        remaining = n
        while remaining > 0:
            k = min(per_statement, remaining)
            batch = tuple(next(gen) for _ in range(k))
            remaining -= k
            seq += 1
            closing = balance + sum(e.signed_minor for e in batch)
            st = Statement(source_format="mt940", statement_id=f"BENCH{seq}", account="NL91ABNA0417164300",
                           currency="EUR", sequence=seq, created_at=None, from_date=batch[0].booking_date,
                           to_date=batch[-1].booking_date, opening_balance_minor=balance,
                           closing_balance_minor=closing, entries=batch)
            fh.write(render_mt940([st]))
            balance = closing


# --- the measured passes (each runs in a fresh subprocess: python -m bench.mappings --run KIND FILE) ----

def _run_ours(path: str) -> tuple[int, int]:
    from mappings.statements import iter_statements

    n = total = 0
    with open(path, "rb") as fh:
        for reader in iter_statements(fh, source=path):
            for e in reader:
                n += 1
                total += e.amount_minor
    return n, total


def _run_bare_camt(path: str) -> tuple[int, int]:
    from decimal import Decimal

    from lxml import etree

    ns = "{urn:iso:std:iso:20022:tech:xsd:camt.053.001.08}"
    n = 0
    total = Decimal(0)
    for _, el in etree.iterparse(path, events=("end",), tag=ns + "Ntry"):
        total += Decimal(el.findtext(ns + "Amt"))
        n += 1
        el.clear()
        while el.getprevious() is not None:
            del el.getparent()[0]
    return n, int(total * 100)


def _run_bare_mt940(path: str) -> tuple[int, int]:
    import re
    from decimal import Decimal

    amt = re.compile(r"^:61:\d{6}(?:\d{4})?R?[CD][A-Z]?([\d,]+)")
    n = 0
    total = Decimal(0)
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(":61:"):
                m = amt.match(line)
                if m:
                    total += Decimal(m.group(1).replace(",", "."))
                    n += 1
    return n, int(total * 100)


def _run_pycamt(path: str) -> tuple[int, int]:
    from decimal import Decimal

    from pycamt.parser import Camt053Parser

    txs = Camt053Parser.from_file(path).get_transactions()
    return len(txs), int(sum(Decimal(str(t.get("Amount") or 0)) for t in txs) * 100)


def _run_mt940lib(path: str) -> tuple[int, int]:
    import mt940

    n = total = 0
    for tx in mt940.parse(path):
        n += 1
        total += abs(int(tx.data["amount"].amount * 100))
    return n, total


_RUNNERS = {"ours": _run_ours, "bare-camt": _run_bare_camt, "bare-mt940": _run_bare_mt940,
            "pycamt": _run_pycamt, "mt-940": _run_mt940lib}


def _peak_rss_kib() -> int:
    """This process's peak RSS. /proc VmHWM first: ru_maxrss survives exec on Linux and would
    report the (larger) parent that spawned us; getrusage is the fallback elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# What each measured pass imports, loaded before its clock starts: the ratio compares parsing,
# not how long the interpreter takes to import (and, without cached bytecode, compile) a library.
_IMPORTS = {"ours": ("mappings.statements", "mappings.camt", "mappings.mt940"), "bare-camt": ("lxml.etree",),
            "bare-mt940": ("re", "decimal"), "pycamt": ("pycamt.parser",), "mt-940": ("mt940",)}


def _child(kind: str, path: str) -> None:
    import importlib

    for module in _IMPORTS[kind]:
        importlib.import_module(module)
    t0 = time.perf_counter()
    n, total = _RUNNERS[kind](path)
    elapsed = time.perf_counter() - t0
    print(json.dumps({"n": n, "total": total, "seconds": elapsed, "peak_mib": _peak_rss_kib() / 1024}))


def measure(kind: str, path: Path, *, accel: bool = True) -> dict[str, float]:
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "CVHUB_ACCEL": "1" if accel else "0"}
    out = subprocess.run([sys.executable, "-m", "bench.mappings", "--run", kind, str(path)], cwd=repo,
                         check=True, capture_output=True, text=True, env=env)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cvhub bench mappings", description=__doc__.splitlines()[0])
    ap.add_argument("--camt-mb", type=int, default=200, help="size of the generated camt.053 (MB)")
    ap.add_argument("--pypi-entries", type=int, default=5000, help="entries in the PyPI-comparison files")
    ap.add_argument("--pure", action="store_true",
                    help="also time the pure-Python parsers (accelerators off) on the big files")
    ap.add_argument("--keep", type=Path, default=None, help="generate into DIR and keep the files")
    ap.add_argument("--run", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.run:
        _child(*args.run)
        return 0
    from mappings import accel

    on = accel.status()
    print("accelerators: " + " ".join(f"{k}={'on' if v else 'OFF (not built: run ./setup.sh)'}"
                                      for k, v in on.items()))
    with tempfile.TemporaryDirectory(prefix="cvhub-bench-") as tmp:
        d = args.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        n = args.camt_mb * 1_000_000 // ENTRY_BYTES_CAMT
        camt, mt = d / "big.camt053.xml", d / "big.mt940"
        t0 = time.perf_counter()
        generate_camt(camt, n)
        generate_mt940(mt, n)
        print(f"generated {n} entries: camt053 {camt.stat().st_size / 1e6:.0f} MB, "
              f"mt940 {mt.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.0f} s")
        small_camt, small_mt = d / "small.camt053.xml", d / "small.mt940"
        generate_camt(small_camt, args.pypi_entries)
        generate_mt940(small_mt, args.pypi_entries)
        for fmt, big, small, bare, pypi in (("camt053", camt, small_camt, "bare-camt", "pycamt"),
                                           ("mt940", mt, small_mt, "bare-mt940", "mt-940")):
            ours = measure("ours", big)
            base = measure(bare, big)
            if (ours["n"], ours["total"]) != (base["n"], base["total"]):
                print(f"{fmt}: MISMATCH ours={ours} bare={base}")
                return 1
            print(f"{fmt} entries={int(ours['n'])} entries_per_s={ours['n'] / ours['seconds']:.0f} "
                  f"ours_s={ours['seconds']:.2f} bare_s={base['seconds']:.2f} "
                  f"bare_peak_mib={base['peak_mib']:.1f}")
            print(f"{fmt} ratio={base['seconds'] / ours['seconds']:.2f} peak_mib={ours['peak_mib']:.1f}")
            if args.pure:
                pure = measure("ours", big, accel=False)
                if (pure["n"], pure["total"]) != (base["n"], base["total"]):
                    print(f"{fmt}: MISMATCH pure-Python={pure} bare={base}")
                    return 1
                print(f"{fmt} pure_python ratio={base['seconds'] / pure['seconds']:.2f} "
                      f"peak_mib={pure['peak_mib']:.1f} (CVHUB_ACCEL=0: the reference parser alone)")
            ours_s = measure("ours", small)
            try:
                other = measure(pypi, small)
            except subprocess.CalledProcessError as e:
                print(f"{fmt} {pypi}: failed: {e.stderr.strip().splitlines()[-1:]}")
                continue
            print(f"{fmt} vs {pypi} on {int(ours_s['n'])} entries: "
                  f"ratio={other['seconds'] / ours_s['seconds']:.2f} "
                  f"(their_s={other['seconds']:.2f} ours_s={ours_s['seconds']:.2f}) "
                  f"their_peak_mib={other['peak_mib']:.1f} ours_peak_mib={ours_s['peak_mib']:.1f} "
                  f"their_entries={int(other['n'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
