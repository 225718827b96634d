"""The whole chain through Airflow against the sandboxes (the main job's path), run twice.

SRM payables -> vouchers -> accept/split/transfer -> financing at two banks with registry ->
maturity -> treasury clearing -> statements over SFTP -> reconciliation -> finance package over
SFTP -> verify. Asserts ledger totals, verify, the package manifest against the ledger, and that a
second run of every DAG changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from cvhub.settings import Settings
from plugins.cvhub_flows.demo import PAYABLES, DemoResult, _first_business_date, run_scenario
from plugins.cvhub_flows.sandbox_stack import DemoClock, SandboxStack


@pytest.fixture
def stack(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxStack]:
    from sandbox.rest_parties import OBLIGOR

    d0 = _first_business_date(data_dir)
    with SandboxStack(data_dir / "sandbox", DemoClock(d0), obligor_accounts={OBLIGOR.account}) as s:
        for key, value in s.export({}).items():
            monkeypatch.setenv(key, value)
        yield s


def _files_sha(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_whole_chain_end_to_end_and_rerun_changes_nothing(stack: SandboxStack, data_dir: Path) -> None:
    from ledger.recon.package import verify_manifest

    settings = Settings.from_env()
    d0 = _first_business_date(data_dir)
    first: DemoResult = run_scenario(settings, stack, d0=d0, say=lambda _: None)
    c = first.counts
    face = sum(int(Decimal(a) * 100) for a in PAYABLES)
    assert c["vouchers"] == len(PAYABLES) and c["face_minor"] == face
    assert c["financed"] == 2                       # one piece at each bank, registered first
    assert c["instructions"] == 7 == c["cleared"]   # 6 vouchers + 1 split piece, all settled
    assert c["cleared_minor"] == face               # clearing pays out exactly the face amounts
    assert c["settled_vouchers"] == len(PAYABLES)
    assert c["matched"] >= 8 and c["exceptions"] == 0 and c["quarantined"] == 0
    assert first.verify_ok, first.verify_summary

    # the package: complete per its manifest, and its totals agree with the ledger to the fen
    assert first.manifest is not None and verify_manifest(first.manifest.parent) == []
    manifest = json.loads(first.manifest.read_bytes())
    assert manifest["totals"]["matched"]["by_kind"]["clearing"]["CNY"]["minor"] == face
    delivered = data_dir / "sandbox" / "sftp_finance" / "finance" / first.maturity.isoformat()
    assert (delivered / "manifest.json").read_bytes() == first.manifest.read_bytes()

    # the registry saw registration and, after clearing, cancellation of both financings
    regs = list(stack.registry._regs.values())  # sandbox inspection
    assert len(regs) == 2 and {r["status"] for r in regs} == {"CANCELLED"}

    # running every DAG again changes nothing: same journal, same matches, same delivered files
    before = _files_sha(delivered)
    second = run_scenario(settings, stack, d0=d0, say=lambda _: None, settle_wait=0.0)
    assert second.journal_entries == first.journal_entries
    assert second.counts == first.counts
    assert _files_sha(delivered) == before
