"""Registry: REST adapter against the provider sandbox; manual queue + `cvhub registry` CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.archive import Archive
from connectors.errors import ClientError, NotFound, ValidationFailed
from connectors.registry import Registration, RegistrationRequest, Registry, conflicting
from connectors.registry.manual import ManualRegistry, PacketConflict
from connectors.registry.rest_adapter import RestRegistry
from connectors.rest import RestConfig
from sandbox.registry import RegistrySandbox
from sandbox.rest_parties import OBLIGOR, enterprise

SUPPLIER = enterprise(3)
FUNDER = enterprise(900)


def request(no: str, voucher: str = "CV-1", **kw: object) -> RegistrationRequest:
    fields: dict[str, object] = dict(
        request_no=no,
        kind="TRANSFER",
        grantor_uscc=SUPPLIER.uscc,
        grantor_name=SUPPLIER.name,
        grantee_uscc=FUNDER.uscc,
        grantee_name=FUNDER.name,
        voucher_id=voucher,
        amount_minor=10_000_000,
        currency="CNY",
        term_months=12,
    )
    fields.update(kw)
    return RegistrationRequest(**fields)  # type: ignore[arg-type]


# --- REST adapter ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def box() -> Iterator[RegistrySandbox]:
    with RegistrySandbox() as sandbox:
        yield sandbox  # type: ignore[misc]


@pytest.fixture
def rest(box: RegistrySandbox, tmp_path: Path) -> Iterator[RestRegistry]:
    box.reset()
    config = RestConfig(
        system="registry",
        base_url=box.url,
        api_key=box.api_key,
        read_timeout=0.5,
        backoff_initial=0.01,
        backoff_max=0.02,
    )
    yield RestRegistry(config, archive=Archive(tmp_path / "archive"), page_size=3)


def test_both_adapters_implement_the_interface(rest: RestRegistry, tmp_path: Path) -> None:
    assert isinstance(rest, Registry)
    assert isinstance(ManualRegistry(f"sqlite:///{tmp_path / 'q.sqlite'}"), Registry)


def test_register_query_amend_cancel(rest: RestRegistry, box: RegistrySandbox) -> None:
    reg = rest.register(request("R-1"))
    assert reg.status == "REGISTERED" and reg.registration_no and len(reg.registration_no) == 20
    assert reg.conflicts == ()
    assert rest.register(request("R-1")).registration_no == reg.registration_no  # idempotent
    assert box.effects("R-1") == 1
    with pytest.raises(ClientError) as info:
        rest.register(request("R-1", amount_minor=1))
    assert info.value.status == 409
    with pytest.raises(ClientError, match="BAD_USCC"):
        rest.register(request("R-bad-uscc", grantor_uscc="91110108100000032X"))
    amended = rest.amend(reg.registration_no, request_no="R-1-A", changes={"term_months": 24})
    assert amended.status == "AMENDED"
    assert box.registration(reg.registration_no)["term_months"] == 24
    cancelled = rest.cancel(reg.registration_no, request_no="R-1-C", reason="voucher settled")
    assert cancelled.status == "CANCELLED" and not cancelled.live
    assert rest.status("R-1").status == "CANCELLED"
    with pytest.raises(NotFound):
        rest.status("R-never")


def test_conflicting_registration_is_detected(rest: RestRegistry, box: RegistrySandbox) -> None:
    other = box.add_registration(grantor_uscc=SUPPLIER.uscc, voucher_id="CV-9", grantee_no=901)
    for i in range(4):  # and unrelated ones, across pages
        box.add_registration(grantor_uscc=SUPPLIER.uscc, voucher_id=f"CV-{100 + i}")
    ours = rest.register(request("R-2", voucher="CV-9"))
    assert ours.conflicts == (other["registration_no"],)
    everything = rest.query_by_grantor(SUPPLIER.uscc)
    assert len(everything) == 6
    found = conflicting(everything, "CV-9", own_registration_no=ours.registration_no)
    assert [r.registration_no for r in found] == [other["registration_no"]]
    assert rest.query_by_grantor(OBLIGOR.uscc) == []


@pytest.mark.parametrize("kind", ["drop_after", "drop_before"])
def test_register_unknown_outcome_resolved_by_query(
    kind: str, rest: RestRegistry, box: RegistrySandbox
) -> None:
    box.inject(kind, operation="register", times=1)
    reg = rest.register(request(f"R-{kind}"))
    assert reg.status == "REGISTERED" and box.effects(f"R-{kind}") == 1
    ops = [op for op, ref in box.journal() if ref == f"R-{kind}"]
    assert ops[:2] == ["register", "get_by_request"]


def test_cancel_unknown_outcome_resolved_by_query(rest: RestRegistry, box: RegistrySandbox) -> None:
    reg = rest.register(request("R-3"))
    box.inject("drop_after", operation="cancel", times=1)
    assert rest.cancel(reg.registration_no or "", request_no="R-3-C", reason="x").status == "CANCELLED"
    assert box.effects("R-3-C") == 1


# --- manual queue ---------------------------------------------------------------------------


@pytest.fixture
def manual(data_dir: Path) -> ManualRegistry:
    return ManualRegistry(data_dir=data_dir)


def test_manual_register_files_a_packet_and_waits(manual: ManualRegistry, data_dir: Path) -> None:
    reg = manual.register(request("M-1"))
    assert reg.status == "PENDING_MANUAL" and reg.pending and reg.packet_id and reg.registration_no is None
    assert (data_dir / "connectors.sqlite").exists()
    assert manual.status(reg.packet_id).pending  # financing must wait
    again = manual.register(request("M-1"))
    assert again.packet_id == reg.packet_id and len(manual.list_packets()) == 1
    with pytest.raises(PacketConflict, match="grantee"):
        manual.register(request("M-1", grantee_uscc=enterprise(901).uscc))
    done = manual.confirm(reg.packet_id, "20261128000000000042", operator="alice")
    assert done.status == "REGISTERED" and done.registration_no == "20261128000000000042"
    assert manual.status(reg.packet_id).live
    assert manual.confirm(reg.packet_id, "20261128000000000042").status == "REGISTERED"  # idempotent
    with pytest.raises(PacketConflict):
        manual.confirm(reg.packet_id, "20261128000000000043")
    with pytest.raises(ValidationFailed):
        manual.confirm(manual.register(request("M-2")).ref, "bad no!")


def test_manual_queue_survives_a_restart_and_answers_by_grantor(data_dir: Path) -> None:
    first = ManualRegistry(data_dir=data_dir)
    reg = first.register(request("M-3", voucher="CV-3"))
    first.confirm(reg.ref, "20261128000000000003")
    second = ManualRegistry(data_dir=data_dir)  # created idempotently, same file
    regs = second.query_by_grantor(SUPPLIER.uscc)
    assert [(r.registration_no, r.voucher_id, r.status) for r in regs] == [
        ("20261128000000000003", "CV-3", "REGISTERED")
    ]
    cancel = second.cancel("20261128000000000003", request_no="M-3-C", reason="settled")
    assert cancel.pending
    second.confirm(cancel.ref, "20261128000000000003")
    assert second.query_by_grantor(SUPPLIER.uscc)[0].status == "CANCELLED"
    rejected = second.register(request("M-4"))
    assert second.reject(rejected.ref, "registry refused: wrong grantor name").status == "REJECTED"


@pytest.mark.postgres
def test_manual_queue_on_postgresql(pg_url: str) -> None:
    queue, other = ManualRegistry(pg_url), ManualRegistry(pg_url)
    try:
        reg = queue.register(request("PG-1"))
        other.confirm(reg.ref, "20261128000000000777")
        assert queue.status(reg.ref).registration_no == "20261128000000000777"
    finally:
        queue.close()
        other.close()


def test_cli_list_show_confirm(manual: ManualRegistry) -> None:
    from cvhub.cli import app

    reg: Registration = manual.register(request("C-1"))
    runner = CliRunner()
    out = runner.invoke(app, ["registry", "list", "--status", "pending"])
    assert out.exit_code == 0, out.output
    assert reg.packet_id in out.output
    shown = runner.invoke(app, ["registry", "show", reg.ref])
    assert shown.exit_code == 0 and SUPPLIER.name in shown.output and "100000.00" in shown.output
    ok = runner.invoke(app, ["registry", "confirm", reg.ref, "20261128000000000100", "--operator", "bob"])
    assert ok.exit_code == 0, ok.output
    assert "REGISTERED 20261128000000000100" in ok.output
    assert manual.status(reg.ref).registration_no == "20261128000000000100"
    clash = runner.invoke(app, ["registry", "confirm", reg.ref, "20261128000000000101"])
    assert clash.exit_code == 1 and "already CONFIRMED" in clash.output
    missing = runner.invoke(app, ["registry", "show", "RP-NOPE"])
    assert missing.exit_code == 1 and "no packet" in missing.output
