"""``cvhub bench review``: contract review on the project's own corpus.

Generates (or reuses) the deterministic corpus (``sandbox.contracts``), reads every document
(text layer or OCR), extracts the key elements, scores them field by field against the ground
truth (precision and recall; a field's score is the lower of the two), runs the review checks
against each contract's payable and vouchers, and counts planted disagreements that came out
clean (must be 0) and clean contracts that were flagged (reviewer load). ``--ablation N`` reruns
the first N scans with each clean-up step off to show what each one buys. Ends with
``review text_min=... scan_min=... planted_passed=... pages_per_s=...``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

FIELDS = (
    "contract_no",
    "buyer_name",
    "buyer_uscc",
    "seller_name",
    "seller_uscc",
    "amount_figures",
    "amount_capitals",
    "currency",
    "signing_date",
    "deliver_by",
    "acceptance_days",
    "payment_term_days",
    "voucher_clause",
)


def _facts(d: dict[str, object], cls: type) -> object:
    kw = {}
    for k, raw in d.items():
        v = raw
        if k in ("payable_date", "delivery_date", "issue_date", "maturity") and isinstance(v, str):
            v = date.fromisoformat(v)
        if k == "payable_ids":
            v = tuple(v)  # type: ignore[arg-type]
        kw[k] = v
    return cls(**kw)


def predicted(elements: object) -> dict[str, object]:
    e = elements
    delivery = e.delivery.value if e.delivery else None  # type: ignore[attr-defined]
    out = {}
    for f in FIELDS:
        if f == "deliver_by":
            out[f] = delivery.deliver_by.isoformat() if delivery and delivery.deliver_by else None
        elif f == "acceptance_days":
            out[f] = delivery.acceptance_days if delivery else None
        elif f == "voucher_clause":
            out[f] = e.voucher_clause_status  # type: ignore[attr-defined]
        else:
            el = getattr(e, f)
            v = el.value if el is not None else None
            out[f] = v.isoformat() if isinstance(v, date) else v
    return out


def expected(truth: dict[str, object]) -> dict[str, object]:
    t = dict(truth)
    t["amount_figures"] = t["amount_capitals"] = t["amount_minor"]
    return {f: t[f] for f in FIELDS}


def process(args: tuple[str, dict[str, object], dict[str, bool]]) -> dict[str, object]:
    from canonical.contract import PayableFacts, VoucherFacts
    from canonical.documents import DocumentRefused
    from connectors.ocr import read_document
    from connectors.ocr.preprocess import Preprocess
    from ledger.review.checks import review_contract
    from mappings.contracts import extract_elements

    path, item, steps = args
    data = Path(path).read_bytes()
    t0 = time.perf_counter()
    try:
        doc = read_document(data, source=item["file"], preprocess=Preprocess(**steps))  # type: ignore[arg-type]
    except DocumentRefused as e:
        return {"file": item["file"], "error": str(e), "seconds": time.perf_counter() - t0}
    elements = extract_elements(doc)
    seconds = time.perf_counter() - t0
    payable = _facts(item["payable"], PayableFacts)  # type: ignore[arg-type]
    others = [_facts(p, PayableFacts) for p in item["earlier_payables"]]  # type: ignore[attr-defined]
    vouchers = [_facts(v, VoucherFacts) for v in item["vouchers"]]  # type: ignore[attr-defined]
    result = review_contract(elements, payable, other_payables=others, vouchers=vouchers)  # type: ignore[arg-type]
    return {
        "file": item["file"],
        "pages": doc.page_count,
        "seconds": seconds,
        "got": predicted(elements),
        "codes": result.codes(),
        "clean": result.clean,
        "low": [d.field for d in result.disagreements if d.code in ("low_confidence", "element_missing")],
    }


def score(rows: list[tuple[dict[str, object], dict[str, object]]]) -> dict[str, tuple[float, float]]:
    out = {}
    for f in FIELDS:
        tp = fp = fn = 0
        for want, got in rows:
            w, g = want[f], (got or {}).get(f)
            if g is not None and g == w:
                tp += 1
            else:
                if g is not None:
                    fp += 1
                if w is not None:
                    fn += 1
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        out[f] = (p, r)
    return out


def ensure_corpus(out: Path, count: int, seed: int) -> list[dict[str, object]]:
    meta = out / "meta.json"
    want = {"count": count, "seed": seed, "version": 1}
    if not (meta.exists() and json.loads(meta.read_text()) == want and (out / "truth.jsonl").exists()):
        from sandbox.contracts.generator import generate_corpus

        t = time.perf_counter()
        generate_corpus(out, count=count, seed=seed)
        meta.write_text(json.dumps(want))
        print(
            f"corpus: {count} contracts generated in {time.perf_counter() - t:.0f} s -> {out}",
            file=sys.stderr,
        )
    return [json.loads(line) for line in (out / "truth.jsonl").read_text(encoding="utf-8").splitlines()]


def run(
    items: list[dict[str, object]], out: Path, jobs: int, steps: dict[str, bool]
) -> tuple[list[dict[str, object]], float]:
    work = [(str(out / str(it["file"])), it, steps) for it in items]
    t = time.perf_counter()
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(process, work))
    else:
        results = [process(w) for w in work]
    return results, time.perf_counter() - t


def report(title: str, items: list[dict[str, object]], results: list[dict[str, object]]) -> float:
    rows = [(expected(it["truth"]), r.get("got")) for it, r in zip(items, results, strict=True)]  # type: ignore[arg-type]
    sc = score(rows)
    print(f"\n{title}: {len(items)} documents")
    print(f"  {'field':<18} {'precision':>9} {'recall':>7}")
    for f, (p, r) in sc.items():
        print(f"  {f:<18} {p:9.3f} {r:7.3f}")
    return min(min(p, r) for p, r in sc.values()) if sc else 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cvhub bench review", description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--dir", type=Path, default=Path("data/review-corpus"))
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument(
        "--ablation", type=int, default=0, metavar="N", help="rerun N scans with each clean-up step off"
    )
    ap.add_argument("--errors", action="store_true", help="print every wrong field")
    a = ap.parse_args(argv)

    items = ensure_corpus(a.dir, a.count, a.seed)
    on = {"remove_seal": True, "deskew": True, "binarise": False}  # the reader's defaults
    results, wall = run(items, a.dir, a.jobs, on)
    refused = [r for r in results if "error" in r]
    for r in refused:
        print(f"refused: {r['error']}", file=sys.stderr)
    text = [(it, r) for it, r in zip(items, results, strict=True) if it["fmt"] == "text_pdf"]
    scans = [(it, r) for it, r in zip(items, results, strict=True) if it["fmt"] != "text_pdf"]
    text_min = report("text PDFs", [i for i, _ in text], [r for _, r in text])
    scan_min = report("scans (scanned PDF, TIFF, PNG, JPEG)", [i for i, _ in scans], [r for _, r in scans])
    if a.errors:
        for it, r in zip(items, results, strict=True):
            want, got = expected(it["truth"]), r.get("got") or {}  # type: ignore[arg-type]
            for f in FIELDS:
                if got.get(f) != want[f]:
                    print(f"  wrong {it['file']} {it['fmt']} {f}: got {got.get(f)!r} want {want[f]!r}")

    planted = [(it, r) for it, r in zip(items, results, strict=True) if it["planted"]]
    passed = [it["file"] for it, r in planted if r.get("clean")]
    by_kind: Counter[str] = Counter(str(it["planted"]) for it, _ in planted)
    caught_by: dict[str, Counter[str]] = defaultdict(Counter)
    for it, r in planted:
        for c in set(r.get("codes", [])):  # type: ignore[arg-type]
            caught_by[str(it["planted"])][c] += 1
    print(
        f"\nplanted disagreements: {len(planted)} ({dict(by_kind)}), passed as clean: {len(passed)} {passed}"
    )
    for kind, codes in sorted(caught_by.items()):
        print(f"  {kind:<7} flagged with: {dict(codes.most_common(4))}")
    for label, group in (("text", text), ("scan", scans)):
        clean = [(it, r) for it, r in group if not it["planted"]]
        flagged = [r for _, r in clean if not r.get("clean")]
        reasons: Counter[str] = Counter(c for r in flagged for c in set(r.get("codes", [])))  # type: ignore[arg-type]
        print(
            f"  unplanted {label} contracts flagged for review: {len(flagged)}/{len(clean)} "
            f"{dict(reasons.most_common(5))}"
        )
        unsure: Counter[str] = Counter(f for r in flagged for f in r.get("low", []))  # type: ignore[attr-defined]
        if unsure:
            print(f"    unsure or missing elements behind them: {dict(unsure.most_common(8))}")

    pages = sum(int(r.get("pages", 0)) for r in results)
    t_text = sum(float(r["seconds"]) for _, r in text)
    t_scan = sum(float(r["seconds"]) for _, r in scans)
    p_text = sum(int(r.get("pages", 0)) for _, r in text)
    p_scan = sum(int(r.get("pages", 0)) for _, r in scans)
    print(
        f"\nthroughput ({a.jobs} worker(s), wall {wall:.1f} s): {pages / wall:.2f} pages/s overall; "
        f"text layer {p_text / max(t_text, 1e-9):.1f} pages/s per worker, "
        f"OCR {p_scan / max(t_scan, 1e-9):.2f} pages/s per worker "
        f"(text is {(p_text / max(t_text, 1e-9)) / max(p_scan / max(t_scan, 1e-9), 1e-9):.0f}x OCR)"
    )

    if a.ablation:
        sample = [it for it in items if it["fmt"] != "text_pdf"][: a.ablation]
        print(f"\nablation on {len(sample)} scans (lowest field score / mean field score / seconds):")
        for label, steps in (
            ("seal + deskew (default)", on),
            ("nothing", {"remove_seal": False, "deskew": False, "binarise": False}),
            ("seal only", {**on, "deskew": False}),
            ("seal + binarise", {**on, "deskew": False, "binarise": True}),
            ("seal + deskew + binarise", {**on, "binarise": True}),
        ):
            res, w = run(sample, a.dir, a.jobs, steps)
            sc = score([(expected(it["truth"]), r.get("got")) for it, r in zip(sample, res, strict=True)])  # type: ignore[arg-type]
            vals = [min(p, r) for p, r in sc.values()]
            print(f"  {label:<26} min {min(vals):.3f} mean {sum(vals) / len(vals):.3f} {w:.0f} s")

    print(
        f"review text_min={text_min:.3f} scan_min={scan_min:.3f} planted_passed={len(passed)} "
        f"pages_per_s={pages / wall:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
