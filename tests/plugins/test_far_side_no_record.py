"""When the far side has no record of what the hub knows it did: handled by the hub, never a crash loop.

Each case runs the flow step against the real sandbox on loopback, after wiping the sandbox's state
(``reset``: memory and durable store) so that it has no record:
- a cancellation (or amendment) of a registration the registry does not know becomes a
  registry-reconciliation finding (quarantine flow ``registry_recon``, with its next action, in
  ``cvhub quarantine list`` and the demo summary) and the other cancellations go on;
- a payment batch the treasury does not know is resent under the SAME MsgId, never a new one;
- a financing application the bank does not know is resubmitted under the SAME serial.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from canonical.clock import SYSTEM_CLOCK, FrozenClock
from cvhub.demo import BANK, SUPPLIER, scenario
from cvhub.settings import Settings
from plugins.cvhub_flows import clearing, financing
from plugins.cvhub_flows.banks import BANKS
from plugins.cvhub_flows.ledger_session import dispose_ledgers, ledger_for, ledger_session

AT = datetime(2026, 9, 29, 12, 0, tzinfo=UTC)
MATURITY = date(2026, 9, 28)       # scenario(): clearing opens on the next business day
UNKNOWN_REGISTRATION = "ZD2026031000012345"   # what scenario() records: never filed at this registry


@pytest.fixture
def settings(data_dir: Path) -> Iterator[Settings]:
    yield Settings.from_env()
    dispose_ledgers()


def _apply(settings: Settings, cmds: list[dict[str, Any]]) -> list[Any]:
    res = ledger_for(settings).apply(cmds)
    assert all(r.ok for r in res), [(r.key, r.result, r.detail) for r in res if not r.ok]
    return res


def _settle_everything(settings: Settings) -> None:
    led = ledger_for(settings)
    follow = []
    for n, ins in enumerate(sorted(led.open_instructions(), key=lambda i: i.instruction_id), 1):
        amount = f"{ins.amount_minor // 100}.{ins.amount_minor % 100:02d}"
        follow += [{"cmd": "mark_sent", "key": f"t:sent:{n}", "on": "2026-09-28",
                    "instruction_id": ins.instruction_id, "message_id": "T-PAIN001-1"},
                   {"cmd": "settle", "key": f"t:settle:{n}", "on": "2026-09-29",
                    "instruction_id": ins.instruction_id, "statement_ref": f"T-STMT-{n:03d}",
                    "amount": amount, "currency": ins.currency}]
    _apply(settings, follow)


def _second_financing(registration_no: str, funder: str = BANK, *,
                      disburse: bool = True) -> list[dict[str, Any]]:
    """The supplier's remainder piece (CVDEMO0001-3) financed too, registered under ``registration_no``."""
    cmds: list[dict[str, Any]] = [
        {"cmd": "finance", "key": "t:finance:2", "on": "2026-03-10", "piece_no": "CVDEMO0001-3",
         "holder": SUPPLIER, "funder": funder, "rate": "0.0350", "recourse": True},
        {"cmd": "record_registration", "key": "t:finance:2:registration", "on": "2026-03-10",
         "financing_id": "t:finance:2", "registration_no": registration_no}]
    if disburse:
        cmds.append({"cmd": "disburse", "key": "t:finance:2:disburse", "on": "2026-03-10",
                     "financing_id": "t:finance:2"})
    return cmds


def _connect(monkeypatch: pytest.MonkeyPatch, conn_id: str, conn: dict[str, Any]) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from sandbox.registry import RegistrySandbox

    with RegistrySandbox(clock=FrozenClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC))) as box:
        _connect(monkeypatch, "cvhub_registry", {
            "conn_type": "http", "host": box.url, "password": box.api_key,
            "extra": {"adapter": "rest", "auth": "api_key", "api_key_header": "X-Api-Key"}})
        yield box


def _settled_with_two_registrations(settings: Settings, registry: Any) -> str:
    """Two financed pieces of one settled voucher: demo:finance:1 under a number the registry never
    saw, t:finance:2 under one it has on file. Returns the known number."""
    known = registry.add_registration(grantor_uscc=SUPPLIER, voucher_id="CVDEMO0001",
                                      request_no="EXT-KNOWN")["registration_no"]
    cmds = scenario()
    _apply(settings, cmds[:-1] + _second_financing(known) + cmds[-1:])
    _settle_everything(settings)
    return str(known)


def _open_findings(settings: Settings) -> list[Any]:
    from ledger import quarantine

    with ledger_session(settings) as s:
        return [i for i in quarantine.list_items(s, status="open") if i.flow == financing.RECON_FLOW]


def test_cancel_of_an_unknown_registration_is_a_finding_and_the_rest_goes_on(
        settings: Settings, registry: Any) -> None:
    from ledger.quarantine_cli import app as quarantine_cli
    from plugins.cvhub_flows.demo import DemoResult, collect_counts
    from plugins.cvhub_flows.replay import replay_items

    known = _settled_with_two_registrations(settings, registry)
    assert financing.cancel_settled(settings, at=AT) == {"cancelled": 1, "findings": 1}
    assert registry.registration(known)["status"] == "CANCELLED"      # the other one went on

    [item] = _open_findings(settings)
    assert (item.item_ref, item.reason_code) == ("demo:finance:1", "registry_no_record")
    assert UNKNOWN_REGISTRATION in item.message and "404" in item.message
    ctx = item.context_dict
    assert ctx["step"] == "cancel" and ctx["registration_no"] == UNKNOWN_REGISTRATION
    assert UNKNOWN_REGISTRATION in ctx["next_action"] and "discard" in ctx["next_action"]

    # the operator sees it: `cvhub quarantine list` and the demo summary, with the next action
    listed = CliRunner().invoke(quarantine_cli, ["list", "--flow", financing.RECON_FLOW])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(x) for x in listed.output.splitlines() if x.strip().startswith("{")]
    assert [r["reason_code"] for r in rows] == ["registry_no_record"]
    assert rows[0]["next_action"] == ctx["next_action"]
    counts = collect_counts(settings)
    assert counts["quarantined"] == 1
    lines = DemoResult(MATURITY, MATURITY, counts=counts).summary()
    assert any(line.startswith(f"  quarantined #{item.id} registry_recon demo:finance:1: registry_no_record")
               and ctx["next_action"] in line for line in lines), lines

    # parked: the next runs do not ask the registry again (no crash loop, no repeated 404s)
    cancels = registry.requests("cancel")
    assert financing.cancel_settled(settings, at=AT) == {"cancelled": 0, "findings": 0}
    assert registry.requests("cancel") == cancels
    # a replay asks once more; still no record, so the item stays open with the new occurrence
    out = replay_items(settings, item_ids=[item.id], flow=None, at=AT)
    assert out["failed"] == 1 and "still has no registration" in out["errors"][str(item.id)]
    [again] = _open_findings(settings)
    assert again.id == item.id and again.occurrences == 2


def test_a_refused_cancellation_is_a_finding_that_a_replay_clears(settings: Settings, registry: Any) -> None:
    from plugins.cvhub_flows.replay import replay_items

    known = _settled_with_two_registrations(settings, registry)
    registry.inject("client_error", operation="cancel", times=2, status=409)   # refuses both
    assert financing.cancel_settled(settings, at=AT) == {"cancelled": 0, "findings": 2}
    findings = {i.item_ref: i for i in _open_findings(settings)}
    assert {i.reason_code for i in findings.values()} == {"registry_refused"}
    refused = findings["t:finance:2"]
    assert "replay" in refused.context_dict["next_action"]
    assert replay_items(settings, item_ids=[refused.id], flow=None, at=AT)["replayed"] == 1
    assert registry.registration(known)["status"] == "CANCELLED"
    assert registry.effects(financing._request_no("cxl", "t:finance:2")) == 1
    assert financing.cancel_settled(settings, at=AT) == {"cancelled": 0, "findings": 0}  # done, parked


def test_amend_of_an_unknown_registration_is_a_finding_too(settings: Settings, registry: Any) -> None:
    _apply(settings, scenario()[:-1])
    with ledger_session(settings) as s:
        [f] = financing._financings(s, state="disbursed", registered=True)
    from connectors.archive import Archive
    from plugins.cvhub_flows.hooks import RegistryHook

    client = RegistryHook().get_registry(Archive(settings.archive_dir), data_dir=settings.data_dir)
    try:
        assert financing.registry_change(settings, client, f, op="amend", at=AT,
                                         changes={"term_months": 12}) is None
    finally:
        client.close()
    [item] = _open_findings(settings)
    assert item.context_dict["step"] == "amend" and item.reason_code == "registry_no_record"
    assert "nothing to amend" in item.context_dict["next_action"]
    assert registry.requests("amend") == 1


def test_a_batch_the_treasury_does_not_know_is_resent_under_the_same_msg_id(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.treasury import start_treasury_sandbox

    _apply(settings, scenario())                     # ends with clearing opened: open instructions
    clock = FrozenClock(datetime(2026, 9, 28, 9, 0, tzinfo=UTC))
    with start_treasury_sandbox(clock=clock, security_clock=SYSTEM_CLOCK, tick=None) as treasury:
        _connect(monkeypatch, "cvhub_treasury", {"conn_type": "http", "host": treasury.url,
                                                 "login": treasury.username, "password": treasury.password,
                                                 "extra": {"password_digest": True}})
        [ref] = clearing.plan_batches(settings, on=MATURITY, interval="20260928T0000")
        msg_id = ref["message_id"]
        clearing.send_batch(settings, ref, on=MATURITY)
        planned = clearing._sent_document(settings, msg_id)
        treasury.engine.reset()                      # the treasury loses every record of it
        journal_before = len(treasury.service.journal)

        counts = clearing.check_status(settings, on=MATURITY, interval="20260928T0000")
        assert counts["resent"] == 1 and counts["pending"] == 1
        assert list(treasury.engine.batches) == [msg_id] and treasury.engine.applied[msg_id] == 1
        assert treasury.engine.batches[msg_id].document == planned          # the same pain.001
        calls = treasury.service.journal[journal_before:]
        assert [op for op, _ in calls] == ["QueryBatchStatus", "QueryBatchStatus", "SubmitPaymentBatch"]
        assert {serial for _, serial in calls} == {msg_id}                  # never a new serial

        clock.advance(treasury.engine.execution_delay * 2)
        counts = clearing.check_status(settings, on=MATURITY, interval="20260928T0000")
        assert counts["resent"] == 0 and counts["accepted"] == 2            # both payments, once
        assert treasury.engine.applied[msg_id] == 1


@pytest.mark.parametrize("bank_name", [b.name for b in BANKS])
def test_an_application_the_bank_does_not_know_is_resubmitted_under_the_same_serial(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bank_name: str) -> None:
    cfg = next(b for b in BANKS if b.name == bank_name)
    clock = FrozenClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC))   # decisions never come: stays pending
    cmds = scenario()
    funder = {"cmd": "register_party", "key": f"t:party:{cfg.name}", "on": "2026-03-02",
              "uscc": cfg.funder_uscc, "name": cfg.funder_name, "roles": ["funder"]}
    _apply(settings, [*cmds[:-1], funder, *_second_financing("20260310000000000042", cfg.funder_uscc,
                                                             disburse=False)])
    serial = financing.serial_for("t:finance:2")
    if bank_name == "bank_a":
        from sandbox.bank_a import start_bank_a_sandbox

        box = start_bank_a_sandbox(sftp_root=tmp_path / "sftp", clock=clock, security_clock=SYSTEM_CLOCK,
                                   tick=None)
        conn = {"conn_type": "http", "host": box.url, "login": box.username, "password": box.password,
                "extra": {"password_digest": True}}

        def wipe() -> None:
            box.desk.reset()

        def received() -> list[str]:
            return [ref for op, ref in box.service.journal if op == "SubmitFinancing"]

        def known() -> dict[str, int]:
            return dict(box.desk.applied)
    else:
        from sandbox.bank_b import BankBSandbox

        box = BankBSandbox(clock=clock).start()
        conn = {"conn_type": "http", "host": box.url, "login": box.key_id, "password": box.secret,
                "extra": {"auth": "hmac"}}

        def wipe() -> None:
            box.reset()   # also forgets its request journal: the one below starts empty

        def received() -> list[str]:
            return [ref for op, ref in box.journal() if op == "submit_application"]

        def known() -> dict[str, int]:
            return {s: box.effects(s) for s in box._apps}
    try:
        _connect(monkeypatch, cfg.financing_conn_id, conn)
        assert financing.submit_applications(settings, bank_name, on=date(2026, 3, 10), at=AT) == \
            {"submitted": 1, "quarantined": 0}
        wipe()                                       # the bank loses every record of it
        counts = financing.collect_decisions(settings, bank_name, on=date(2026, 3, 10), at=AT)
        assert counts["resubmitted"] == 1 and counts["pending"] == 1
        assert known() == {serial: 1}                # one application, under the original serial
        assert set(received()) == {serial}
        again = financing.collect_decisions(settings, bank_name, on=date(2026, 3, 10), at=AT)
        assert again["resubmitted"] == 0 and again["pending"] == 1    # known now: asked, not resent
        assert known() == {serial: 1}
    finally:
        box.stop()
