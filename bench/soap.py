"""``cvhub bench soap``: SOAP calls through the connector vs the same envelopes POSTed raw.

Against the treasury sandbox on loopback, in one run:
- baseline: N ``QueryBatchStatus`` envelopes (built by the connector beforehand, each with its own
  WS-Security nonce, since the server refuses replays) POSTed with a bare keep-alive
  ``requests.Session``: no zeep, no archive;
- connector: N ``TreasuryClient.query_batch`` calls (zeep serialisation, WS-Security, raw archive
  with fsync of request and response, response parsing, error mapping);
- the same connector calls without an archive, to show what the archive costs;
- WSDL load: a cold parse of the packaged contract vs a cached lookup.

Prints ``soap ratio=<raw time / connector time>`` (1.0 = no overhead) and the WSDL figures.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests

from connectors.archive import Archive
from connectors.soap import UsernameTokenConfig, clear_wsdl_cache, load_wsdl
from connectors.treasury import TreasuryClient
from connectors.treasury.client import WSDL
from sandbox.treasury import start_treasury_sandbox


def _pain001() -> bytes:
    from datetime import UTC, date, datetime

    from ledger.canonical import Party, PaymentInstruction
    from mappings.pain001 import render_pain001

    debtor = Party(name="Obligor Co", account="6222000011112222", agent="102100099996")
    items = [PaymentInstruction(f"I{k}", f"E2E{k}", 1_000_00 + k, "CNY", date(2026, 12, 1), debtor,
                                Party(name=f"Supplier {k}", account=f"62220000333{k:05d}",
                                      agent="103100000026"))
             for k in range(20)]
    return render_pain001(items, version="09", initiating_party=Party(name="Obligor Co"),
                          created_at=datetime(2026, 11, 28, tzinfo=UTC))


def _wsdl_times(repeats: int) -> tuple[float, float]:
    client = TreasuryClient(endpoint="http://127.0.0.1:9/none", username_token=None, archive=None)
    transport = client.soap.transport
    cold: list[float] = []
    for _ in range(3):
        clear_wsdl_cache()
        t = time.perf_counter()
        load_wsdl(str(WSDL), transport, system="bench")
        cold.append(time.perf_counter() - t)
    hot: list[float] = []
    for _ in range(repeats):
        t = time.perf_counter()
        load_wsdl(str(WSDL), transport, system="bench")
        hot.append(time.perf_counter() - t)
    return statistics.median(cold), statistics.median(hot)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cvhub bench soap", description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1000, help="calls per variant (default 1000)")
    args = ap.parse_args(argv)
    n = args.calls

    cold, cached = _wsdl_times(200)
    with tempfile.TemporaryDirectory(prefix="cvhub-bench-soap-") as tmp, \
            start_treasury_sandbox(password="bench-pw", tick=None) as sb:
        token = UsernameTokenConfig("cvhub", "bench-pw")
        archived = TreasuryClient(endpoint=sb.url, username_token=token,
                                  archive=Archive(Path(tmp) / "archive"))
        bare = TreasuryClient(endpoint=sb.url, username_token=token, archive=None)
        archived.submit_batch("BENCH-1", _pain001())
        sb.engine.advance()

        envelopes = [archived.soap.create_message("QueryBatchStatus", BatchSerial="BENCH-1")
                     for _ in range(n)]
        headers = {"Content-Type": "text/xml; charset=utf-8",
                   "SOAPAction": '"urn:cvhub:treasury:1#QueryBatchStatus"'}
        session = requests.Session()
        for _ in range(20):  # warm-up: connections, caches, server threads
            archived.query_batch("BENCH-1")
            bare.query_batch("BENCH-1")
        warm = [archived.soap.create_message("QueryBatchStatus", BatchSerial="BENCH-1") for _ in range(20)]
        for env in warm:
            session.post(sb.url, data=env, headers=headers, timeout=(5, 30)).raise_for_status()

        # interleave the three variants in rounds so machine noise hits them alike
        rounds = 4
        per = [n // rounds + (1 if r < n % rounds else 0) for r in range(rounds)]
        raw = conn = conn_bare = 0.0
        it = iter(envelopes)
        for k in per:
            t = time.perf_counter()
            for _ in range(k):
                r = session.post(sb.url, data=next(it), headers=headers, timeout=(5, 30))
                r.raise_for_status()
                _ = r.content
            raw += time.perf_counter() - t

            t = time.perf_counter()
            for _ in range(k):
                archived.query_batch("BENCH-1")
            conn += time.perf_counter() - t

            t = time.perf_counter()
            for _ in range(k):
                bare.query_batch("BENCH-1")
            conn_bare += time.perf_counter() - t

    print(f"soap calls={n} raw={raw:.3f}s connector={conn:.3f}s connector_no_archive={conn_bare:.3f}s")
    print(f"soap per_call raw={raw / n * 1e3:.2f}ms connector={conn / n * 1e3:.2f}ms "
          f"connector_no_archive={conn_bare / n * 1e3:.2f}ms")
    print(f"soap ratio={raw / conn:.2f}")
    print(f"soap ratio_no_archive={raw / conn_bare:.2f}")
    print(f"soap wsdl_load cold={cold * 1e3:.2f}ms cached={cached * 1e6:.1f}us "
          f"cold/cached={cold / cached:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
