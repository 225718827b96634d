"""The REST sandboxes' OpenAPI documents tell the truth: every request the connectors send and every
response the sandboxes answer, as archived raw, validates against the documented models (which
forbid undocumented fields), and every API route documents its bodies and error answers."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from canonical.clock import today
from connectors.archive import Archive
from connectors.bank_b import BankBClient, FinancingApplication
from connectors.errors import ClientError
from connectors.registry import RegistrationRequest
from connectors.registry.rest_adapter import RestRegistry
from connectors.rest import HmacSigner, RestConfig
from connectors.srm import SrmClient
from sandbox import bank_b, registry, srm
from sandbox.rest_parties import OBLIGOR, enterprise
from sandbox.rest_server import ApiError, RestSandbox


def check_archive(root: Path, contract: dict[tuple[str, str], type[BaseModel]]) -> int:
    """Validate each archived body against the model for (operation, direction); errors vs ApiError."""
    archive = Archive(root)
    checked = 0
    for entry in archive.entries():
        raw = archive.read(str(entry["sha256"]))
        body = raw.split(b"\r\n\r\n", 1)[1]
        status = int(str(entry.get("status", "200")))
        if entry["direction"] == "in" and status >= 400:
            ApiError.model_validate_json(body)
        elif (str(entry["operation"]), str(entry["direction"])) in contract:
            contract[(str(entry["operation"]), str(entry["direction"]))].model_validate_json(body)
        elif body:
            pytest.fail(f"no contract for {entry['operation']} {entry['direction']}")
        checked += 1
    return checked


def test_srm_exchanges_match_the_contract(tmp_path: Path) -> None:
    with srm.SrmSandbox() as box:
        box.seed(7)
        client = SrmClient(
            RestConfig(system="srm", base_url=box.url, bearer_token=box.token),
            archive=Archive(tmp_path),
            page_size=3,
        )
        ids = [r["payable_id"] for p in client.iter_pages() for r in p.records]
        client.write_back(ids[0], "CV-1", "ISSUED", amount="10.00", currency="CNY")
        client.get_payable(ids[0])
        with pytest.raises(ClientError):
            client.write_back(ids[1], "CV-2", "NOT-A-STATUS")
    n = check_archive(
        tmp_path,
        {
            ("list_payables", "in"): srm.PayablePage,
            ("get_payable", "in"): srm.PayableRecord,
            ("write_back_voucher", "out"): srm.WriteBackRequest,
            ("write_back_voucher", "in"): srm.WriteBackResult,
        },
    )
    assert n == 12  # 3 pages, write-back, read-back, refused write-back: request + response each


def test_registry_exchanges_match_the_contract(tmp_path: Path) -> None:
    sup, funder = enterprise(2), enterprise(900)
    with registry.RegistrySandbox() as box:
        box.add_registration(grantor_uscc=sup.uscc, voucher_id="CV-5")
        client = RestRegistry(
            RestConfig(system="registry", base_url=box.url, api_key=box.api_key), archive=Archive(tmp_path)
        )
        reg = client.register(
            RegistrationRequest(
                request_no="R-1",
                kind="PLEDGE",
                grantor_uscc=sup.uscc,
                grantor_name=sup.name,
                grantee_uscc=funder.uscc,
                grantee_name=funder.name,
                voucher_id="CV-5",
                amount_minor=100,
                currency="CNY",
                term_months=6,
            )
        )
        assert reg.conflicts
        client.query_by_grantor(sup.uscc)
        client.amend(reg.registration_no or "", request_no="R-1-A", changes={"term_months": 9})
        client.cancel(reg.registration_no or "", request_no="R-1-C", reason="settled")
        client.status("R-1")
        client.query_by_grantor(OBLIGOR.uscc)
    n = check_archive(
        tmp_path,
        {
            ("register", "out"): registry.RegistrationBody,
            ("register", "in"): registry.RegistrationRecord,
            ("list_by_grantor", "in"): registry.RegistrationPage,
            ("get_by_request", "in"): registry.RegistrationRecord,
            ("amend", "out"): registry.AmendmentBody,
            ("amend", "in"): registry.RegistrationRecord,
            ("cancel", "out"): registry.CancellationBody,
            ("cancel", "in"): registry.RegistrationRecord,
        },
    )
    assert n == 12


def test_bank_b_exchanges_match_the_contract(tmp_path: Path) -> None:
    sup = enterprise(4)
    with bank_b.BankBSandbox(decision_delay=0.05, disbursement_delay=0.05) as box:
        client = BankBClient(
            RestConfig(system="bank_b", base_url=box.url, signer=HmacSigner(box.key_id, box.secret)),
            archive=Archive(tmp_path),
        )
        for serial, reg_no in (("S-1", "20261128000000000001"), ("S-2", None)):
            client.submit_financing(
                FinancingApplication(
                    serial_no=serial,
                    voucher_id="CV-9",
                    piece_id="CV-9-1",
                    applicant_uscc=sup.uscc,
                    applicant_name=sup.name,
                    applicant_account=sup.account,
                    applicant_cnaps=sup.cnaps,
                    amount_minor=1_000_000,
                    currency="CNY",
                    maturity_date=today(box.clock) + timedelta(days=60),
                    registration_no=reg_no,
                )
            )
        deadline = time.monotonic() + 5
        while client.query("S-1").status != "DISBURSED":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        notices = [n for p in client.iter_notices() for n in p.notices]
        assert {n.type for n in notices} == {"DECISION", "DISBURSEMENT"}
    n = check_archive(
        tmp_path,
        {
            ("submit_application", "out"): bank_b.ApplicationBody,
            ("submit_application", "in"): bank_b.ApplicationView,
            ("query_application", "in"): bank_b.ApplicationView,
            ("list_notices", "in"): bank_b.NoticePage,
        },
    )
    assert n >= 8


@pytest.mark.parametrize("cls", [srm.SrmSandbox, registry.RegistrySandbox, bank_b.BankBSandbox])
def test_every_route_documents_bodies_and_errors(cls: type[RestSandbox]) -> None:
    spec = cls().app.openapi()
    assert "Faults" in spec["info"]["description"] or "fault" in spec["info"]["description"].lower()
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            codes = set(op["responses"])
            assert codes & {"200", "201", "202"}, f"{method} {path}: no success schema"
            assert "401" in codes, f"{method} {path}: authentication failure undocumented"
            ok = next(op["responses"][c] for c in ("200", "201", "202") if c in op["responses"])
            assert ok["content"]["application/json"]["schema"].get("$ref"), f"{method} {path}: untyped answer"
            if method == "post":
                assert op["requestBody"]["content"]["application/json"]["schema"]["properties"], path
    json.dumps(spec)  # serialisable as served
