"""Batch write-back against the real SRM sandbox: applied, re-sent without a second effect, a bad
item refused on its own while the rest apply, unknown outcome resolved by re-POSTing the batch key,
and the flow's batching (keys, quarantine of refused items) end to end on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.archive import Archive
from connectors.errors import ClientError
from connectors.rest import RestConfig
from connectors.srm import SrmClient, WriteBackItem
from sandbox.srm import SrmSandbox


@pytest.fixture(scope="module")
def box() -> Iterator[SrmSandbox]:
    with SrmSandbox(timeout_delay=1.0) as sandbox:
        yield sandbox  # type: ignore[misc]


@pytest.fixture
def srm(box: SrmSandbox) -> Iterator[SrmSandbox]:
    box.reset()
    yield box


def make(box: SrmSandbox, tmp_path: Path) -> SrmClient:
    config = RestConfig(
        system="srm", base_url=box.url, bearer_token=box.token, read_timeout=0.5,
        backoff_initial=0.01, backoff_max=0.02,
    )
    return SrmClient(config, archive=Archive(tmp_path / "archive"))


def items_for(box: SrmSandbox, n: int) -> list[WriteBackItem]:
    box.seed(n)
    out = []
    for i in range(1, n + 1):
        rec = box.payable(f"AP-20261128-{i:06d}")
        assert rec is not None
        out.append(WriteBackItem(rec["payable_id"], f"CV{i:05d}", "ISSUED", rec["amount"], rec["currency"]))
    return out


def test_batch_applies_every_item_in_one_post(srm: SrmSandbox, tmp_path: Path) -> None:
    items = items_for(srm, 30)
    result = make(srm, tmp_path).write_back_batch(items, batch_key="b-1")
    assert not result.replayed and not result.refused
    assert [w.payable_id for w in result.written] == [i.payable_id for i in items]
    assert not any(w.replayed for w in result.written)
    assert srm.requests("write_back_vouchers_batch") == 1
    for i in items:
        assert srm.payable(i.payable_id)["voucher"]["voucher_no"] == i.voucher_no  # type: ignore[index]
        assert srm.effects(i.payable_id) == 1


def test_resent_batch_has_no_second_effect(srm: SrmSandbox, tmp_path: Path) -> None:
    items = items_for(srm, 5)
    client = make(srm, tmp_path)
    client.write_back_batch(items, batch_key="b-2")
    same_key = client.write_back_batch(items, batch_key="b-2")
    assert same_key.replayed and all(w.replayed for w in same_key.written)
    new_key = client.write_back_batch(items, batch_key="b-2-again")  # items idempotent by content too
    assert not new_key.replayed and all(w.replayed for w in new_key.written)
    assert all(srm.effects(i.payable_id) == 1 for i in items)
    with pytest.raises(ClientError) as info:  # same key, other content: refused as a whole
        client.write_back_batch(items[:4], batch_key="b-2")
    assert info.value.status == 422 and "IDEMPOTENCY_CONFLICT" in str(info.value)


def test_bad_items_are_refused_one_by_one_and_the_rest_apply(srm: SrmSandbox, tmp_path: Path) -> None:
    items = items_for(srm, 6)
    bad = [
        WriteBackItem(items[1].payable_id, "CV-X", "ISSUED", "0.01", "CNY"),  # wrong amount
        WriteBackItem("AP-NOT-THERE", "CV-Y", "ISSUED"),
        WriteBackItem(items[3].payable_id, items[3].voucher_no, "LOST"),
    ]
    sent = [items[0], bad[0], bad[1], items[2], bad[2], items[4]]
    result = make(srm, tmp_path).write_back_batch(sent, batch_key="b-3")
    assert [(r.item.payable_id, r.code) for r in result.refused] == [
        (items[1].payable_id, "AMOUNT_MISMATCH"), ("AP-NOT-THERE", "NOT_FOUND"),
        (items[3].payable_id, "BAD_STATUS"),
    ]
    assert [w.payable_id for w in result.written] == [items[0].payable_id, items[2].payable_id,
                                                       items[4].payable_id]
    assert srm.payable(items[1].payable_id)["voucher"] is None  # type: ignore[index]
    assert srm.payable(items[4].payable_id)["voucher"]["status"] == "ISSUED"  # type: ignore[index]
    # a payable already covered by another voucher is a conflict, not an overwrite
    clash = make(srm, tmp_path).write_back_batch(
        [WriteBackItem(items[0].payable_id, "CV-OTHER", "ISSUED")], batch_key="b-4")
    assert [r.code for r in clash.refused] == ["VOUCHER_CONFLICT"]
    assert srm.payable(items[0].payable_id)["voucher"]["voucher_no"] == items[0].voucher_no  # type: ignore[index]


def test_unknown_outcome_is_resolved_by_reposting_the_same_key(srm: SrmSandbox, tmp_path: Path) -> None:
    items = items_for(srm, 4)
    srm.inject("drop_after", operation="write_back_vouchers_batch", times=1)
    result = make(srm, tmp_path).write_back_batch(items, batch_key="b-5")
    assert result.replayed and len(result.written) == 4  # the SRM replayed the first answer
    assert srm.requests("write_back_vouchers_batch") == 2
    assert all(srm.effects(i.payable_id) == 1 for i in items)


def test_a_batch_holds_at_most_500_items(srm: SrmSandbox, tmp_path: Path) -> None:
    item = WriteBackItem("AP-1", "CV1", "ISSUED")
    with pytest.raises(ValueError):
        make(srm, tmp_path).write_back_batch([item] * 501, batch_key="b-6")
    assert srm.requests("write_back_vouchers_batch") == 0


def test_flow_writes_back_in_batches_and_quarantines_refused_items(
    srm: SrmSandbox, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cvhub.settings import Settings
    from ledger import quarantine
    from plugins.cvhub_flows import srm as flow
    from plugins.cvhub_flows.batches import batch_path, write_json
    from plugins.cvhub_flows.ledger_session import ledger_session

    monkeypatch.setenv("AIRFLOW_CONN_CVHUB_SRM", json.dumps(
        {"conn_type": "http", "host": srm.url, "password": srm.token, "extra": {"auth": "bearer"}}))
    settings = Settings.from_env()
    items = items_for(srm, 12)
    vouchers = [{"payable_id": i.payable_id, "voucher_no": i.voucher_no, "amount": i.amount,
                 "currency": i.currency} for i in items]
    vouchers[7]["amount"] = "0.01"  # the SRM will refuse this one item
    ref = write_json(batch_path(settings, flow.FLOW, "2026-11-30T00", "vouchers.json"), vouchers)
    at = datetime(2026, 11, 30, tzinfo=UTC)
    out = flow.write_back(settings, ref, at=at, batch_size=5, workers=2)
    assert out == {"written": 11, "quarantined": 1}
    assert srm.requests("write_back_vouchers_batch") == 3 and srm.requests("write_back_voucher") == 0
    with ledger_session(settings) as s:
        open_items = quarantine.list_items(s, status="open", flow=flow.FLOW)
    assert [(i.item_ref, i.reason_code) for i in open_items] == [(f"writeback:{items[7].payable_id}",
                                                                   "ClientError")]
    assert "AMOUNT_MISMATCH" in open_items[0].message
    again = flow.write_back(settings, ref, at=at, batch_size=5, workers=2)  # a rerun of the task
    assert again == out and srm.requests("write_back_vouchers_batch") == 6
    assert all(srm.effects(i.payable_id) == (0 if n == 7 else 1) for n, i in enumerate(items))
    assert flow.batch_key("2026-11-30T00", ["a", "b"]) == flow.batch_key("2026-11-30T00", ["a", "b"])
    assert flow.batch_key("2026-11-30T00", ["a", "b"]) != flow.batch_key("2026-12-01T00", ["a", "b"])
