"""SRM connector against the SRM sandbox: cursor runs, duplicates, write-back and unknown outcome."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.archive import Archive
from connectors.errors import ClientError
from connectors.rest import RestConfig
from connectors.srm import SrmClient
from sandbox.srm import SrmSandbox


@pytest.fixture(scope="module")
def box() -> Iterator[SrmSandbox]:
    with SrmSandbox(timeout_delay=1.0) as sandbox:
        yield sandbox  # type: ignore[misc]


@pytest.fixture
def srm(box: SrmSandbox) -> Iterator[SrmSandbox]:
    box.reset()
    yield box


def make(box: SrmSandbox, tmp_path: Path, page_size: int = 10) -> SrmClient:
    config = RestConfig(
        system="srm",
        base_url=box.url,
        bearer_token=box.token,
        read_timeout=0.5,
        backoff_initial=0.01,
        backoff_max=0.02,
    )
    return SrmClient(config, archive=Archive(tmp_path / "archive"), page_size=page_size)


def test_cursor_runs_pick_up_only_new_payables(srm: SrmSandbox, tmp_path: Path) -> None:
    srm.seed(12)
    client = make(srm, tmp_path, page_size=5)
    pages = list(client.iter_pages())
    assert [len(p.records) for p in pages] == [5, 5, 2] and pages[-1].last
    cursor = pages[-1].cursor
    assert next(iter(client.iter_pages(cursor))).records == ()  # nothing new since
    srm.add_payable()
    srm.add_payable()
    new = [r for p in client.iter_pages(cursor) for r in p.records]
    assert [r["payable_id"] for r in new] == ["AP-20261128-000013", "AP-20261128-000014"]


def test_records_are_raw_srm_json_with_decimal_string_amounts(srm: SrmSandbox, tmp_path: Path) -> None:
    srm.seed(1)
    record = next(make(srm, tmp_path).iter_pages()).records[0]
    assert isinstance(record["amount"], str) and "." in record["amount"]
    assert len(record["obligor"]["uscc"]) == 18 and record["status"] == "CONFIRMED"
    assert "_seq" not in record


def test_duplicate_delivery_is_yielded_once(srm: SrmSandbox, tmp_path: Path) -> None:
    srm.seed(3)
    srm.inject("duplicate", operation="list_payables", times=1)
    ids = [r["payable_id"] for p in make(srm, tmp_path).iter_pages() for r in p.records]
    assert ids == sorted(set(ids)) and len(ids) == 3


def test_write_back_is_idempotent_and_replays(srm: SrmSandbox, tmp_path: Path) -> None:
    srm.add_payable(payable_id="AP-X")
    client = make(srm, tmp_path)
    first = client.write_back("AP-X", "CV0001", "ISSUED", amount="100.00")
    again = client.write_back("AP-X", "CV0001", "ISSUED", amount="100.00")
    assert not first.replayed and again.replayed
    assert srm.effects("AP-X") == 1
    client.write_back("AP-X", "CV0001", "ACCEPTED")
    assert srm.payable("AP-X")["voucher"]["status"] == "ACCEPTED" and srm.effects("AP-X") == 2


def test_write_back_unknown_outcome_resolved_by_reading_back(srm: SrmSandbox, tmp_path: Path) -> None:
    srm.add_payable(payable_id="AP-Y")
    srm.inject("drop_after", operation="write_back_voucher", times=1)
    result = make(srm, tmp_path).write_back("AP-Y", "CV0002", "ISSUED")
    assert result.replayed and srm.effects("AP-Y") == 1
    assert [op for op, ref in srm.journal() if ref == "AP-Y"] == ["write_back_voucher", "get_payable"]


def test_write_back_with_a_status_the_srm_refuses_is_fatal(srm: SrmSandbox, tmp_path: Path) -> None:
    srm.add_payable(payable_id="AP-Z")
    with pytest.raises(ClientError) as info:
        make(srm, tmp_path).write_back("AP-Z", "CV0003", "LOST")
    assert info.value.status == 422 and "BAD_STATUS" in str(info.value)
