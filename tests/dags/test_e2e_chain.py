"""The whole chain through Airflow against the sandboxes (the main job's path), on every weekday.

SRM payables -> vouchers -> accept/split/transfer -> financing at two banks with registry ->
maturity -> treasury clearing -> statements over SFTP -> reconciliation -> finance package over
SFTP -> verify. The chain starts from a fake "today" on each of the seven days of one week (the one
business clock, ``canonical.clock``: nothing in the hub or the sandboxes may read the wall clock, so
the result must not depend on the weekday nor on the real date); each run asserts the ledger totals,
every statement line matched and no exception. One of them also checks the package manifest
against the ledger and that a second run of every DAG changes nothing.

The expensive set-up is shared: one Airflow home and DagBag for the whole session (tests/dags
conftest); each day gets its own data directory, ledger and sandboxes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from canonical.clock import SettableClock
from cvhub.settings import Settings
from plugins.cvhub_flows.demo import PAYABLES, DemoResult, first_business_date, run_scenario
from plugins.cvhub_flows.sandbox_stack import SandboxStack

# A week far from any real date a test runs on (so a wall-clock read cannot pass unnoticed) and with
# no holiday on the ledger's calendar: Monday 2027-03-08 .. Sunday 2027-03-14.
WEEK = [date(2027, 3, 8) + timedelta(days=i) for i in range(7)]
FACE = sum(int(Decimal(a) * 100) for a in PAYABLES)
# 6 clearing payments + 1 for the split piece (bank A's camt.053 of the obligor's account), and bank B's
# financing proceeds on the seller's account (its MT940/CSV). Bank A publishes only the obligor's
# account, so its proceeds stay an open expected item (not an exception).
EXPECTED_MATCHED = 8


def _files_sha(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_clean_run(run: DemoResult) -> None:
    c = run.counts
    assert c["vouchers"] == len(PAYABLES) and c["face_minor"] == FACE
    assert c["financed"] == 2                       # one piece at each bank, registered first
    assert c["instructions"] == 7 == c["cleared"]   # 6 vouchers + 1 split piece, all settled
    assert c["cleared_minor"] == FACE               # clearing pays out exactly the face amounts
    assert c["settled_vouchers"] == len(PAYABLES)
    assert (c["matched"], c["exceptions"], c["quarantined"]) == (EXPECTED_MATCHED, 0, 0), \
        c["exception_list"]
    assert run.verify_ok, run.verify_summary


@pytest.mark.slow
@pytest.mark.parametrize("fake_today", WEEK, ids=[d.strftime("%a") for d in WEEK])
def test_whole_chain_on_every_weekday(fake_today: date, data_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    d0 = first_business_date(data_dir, SettableClock.on_day(fake_today))
    assert d0 == fake_today or (fake_today.weekday() >= 5 and d0 == WEEK[0] + timedelta(days=7))
    from sandbox.rest_parties import OBLIGOR

    clock = SettableClock.on_day(d0)
    with SandboxStack(data_dir / "sandbox", clock, obligor_accounts={OBLIGOR.account}) as stack:
        for key, value in stack.export({}).items():
            monkeypatch.setenv(key, value)
        settings = Settings.from_env()
        first = run_scenario(settings, stack, d0=d0, say=lambda _: None, settle_wait=0.5)
        assert first.business_date == d0
        _assert_clean_run(first)
        if fake_today != WEEK[2]:
            return
        # Wednesday: the package and a rerun of every DAG, in full
        from ledger.recon.package import verify_manifest

        # the package: complete per its manifest, and its totals agree with the ledger to the fen
        assert first.manifest is not None and verify_manifest(first.manifest.parent) == []
        manifest = json.loads(first.manifest.read_bytes())
        assert manifest["totals"]["matched"]["by_kind"]["clearing"]["CNY"]["minor"] == FACE
        delivered = data_dir / "sandbox" / "sftp_finance" / "finance" / first.maturity.isoformat()
        assert (delivered / "manifest.json").read_bytes() == first.manifest.read_bytes()

        # the registry saw registration and, after clearing, cancellation of both financings
        regs = list(stack.registry._regs.values())  # sandbox inspection
        assert len(regs) == 2 and {r["status"] for r in regs} == {"CANCELLED"}

        # running every DAG again changes nothing: same journal, same matches, same delivered files
        before = _files_sha(delivered)
        second = run_scenario(settings, stack, d0=d0, say=lambda _: None, settle_wait=0.0)
        assert second.journal_entries == first.journal_entries
        assert second.head_hash == first.head_hash and first.head_hash
        assert second.counts == first.counts
        assert _files_sha(delivered) == before
