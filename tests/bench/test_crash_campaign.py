"""The crash campaign's own parts (``bench/crash.py``): the duplicate audit finds duplicates, the point
picker covers every DAG. The campaign itself is ``cvhub bench crash``; a few of its points run in
``tests/dags/test_crash_resume.py``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.crash import audit, pick_points
from canonical.clock import FrozenClock
from sandbox.rest_parties import OBLIGOR
from sandbox.state import SandboxStore

T0 = datetime(2027, 3, 8, 9, 0, tzinfo=UTC)


def _pain001(instruction_id: str) -> bytes:
    from datetime import date

    from ledger.canonical import Party, PaymentInstruction
    from mappings.pain001 import render_pain001

    debtor = Party(name="华北建设集团有限公司", account="110000000000000001", agent="105100000017",
                   uscc=OBLIGOR.uscc)
    item = PaymentInstruction(instruction_id=instruction_id, end_to_end_id="E2E1", amount_minor=1000,
                              currency="CNY", requested_execution_date=date(2027, 3, 8), debtor=debtor,
                              creditor=Party(name="供应商", account="6222000000000001", agent="102100099996"))
    return render_pain001([item], version="09", created_at=T0,
                          initiating_party=Party(name="cvhub", uscc=OBLIGOR.uscc))


def test_audit_finds_what_was_applied_twice(tmp_path: Path) -> None:
    from sandbox.registry import RegistrySandbox
    from sandbox.treasury import PaymentEngine

    clean, dirty = tmp_path / "clean", tmp_path / "dirty"
    for state, extra in ((clean, False), (dirty, True)):
        engine = PaymentEngine(clock=FrozenClock(T0), store=SandboxStore.open(state, "treasury"))
        engine.accept("B1", _pain001("I1"), "09")
        registry = RegistrySandbox(clock=FrozenClock(T0), state_dir=state)
        registry.add_registration(grantor_uscc=OBLIGOR.uscc, voucher_id="CV1", request_no="R1")
        with registry._lock, registry.store.transaction():
            registry.applied("R1")
        if extra:
            # the same payment (EndToEndId) in a second batch, the same registration filed twice,
            # a request applied twice
            engine.accept("B2", _pain001("I1-again"), "09")
            registry.add_registration(grantor_uscc=OBLIGOR.uscc, voucher_id="CV1", request_no="R2")
            with registry._lock, registry.store.transaction():
                registry.applied("R1")
        engine.store.close()
        registry.close()
    a_clean = audit(clean)
    assert a_clean.duplicates(a_clean) == []
    assert a_clean.submissions["treasury batches"] == 1 and a_clean.submissions["registrations"] == 1
    found = audit(dirty).duplicates(a_clean)
    assert any(d.startswith("treasury B2: applied 1x (clean run: 0x)") for d in found), found
    assert "registry R1: applied 2x (clean run: 1x)" in found
    assert "treasury: EndToEndId E2E1 in 2 batches" in found
    assert any(d.startswith("registry: CV1 registered 2x") for d in found), found


def test_points_cover_every_dag_and_prefer_sandbox_commits() -> None:
    events = [{"label": "commit:srm", "step": "demo"}] * 3
    for dag, n in (("srm_payables", 6), ("registry_sync", 9), ("ledger_verify", 2)):
        for i in range(n):
            label = "commit:registry" if dag == "registry_sync" and i in (4, 6) else f"archive:{dag}.{i}"
            events.append({"label": label, "step": f"{dag}.step"})
    points = pick_points(events, 8)
    assert len(points) == len(set(points)) == 8
    steps = {e["step"].split(".")[0] for e, seen in _located(events, points)}
    assert steps == {"demo", "srm_payables", "registry_sync", "ledger_verify"}
    assert ("commit:registry", 2) in points or ("commit:registry", 1) in points


def _located(events: list[dict[str, str]], points: list[tuple[str, int]]) -> list[tuple[dict[str, str], int]]:
    out = []
    seen: dict[str, int] = {}
    for e in events:
        seen[e["label"]] = seen.get(e["label"], 0) + 1
        if (e["label"], seen[e["label"]]) in points:
            out.append((e, seen[e["label"]]))
    return out
