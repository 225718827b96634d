"""`cvhub sandbox up` and the sandboxes themselves: every system starts on loopback, serves its
OpenAPI document, switches faults over HTTP, and the endpoints JSON lets another tool connect."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import requests
from typer.testing import CliRunner

from connectors.archive import Archive
from connectors.bank_b import BankBClient
from connectors.rest import HmacSigner, RestConfig
from connectors.srm import SrmClient
from sandbox.cli import start_all


def test_start_all_wires_every_sandbox_and_they_answer(tmp_path: Path) -> None:
    with start_all(tmp_path / "sb", statement_every=None, decision_delay=0.1) as fleet:
        doc = fleet.endpoints()
        systems = doc["systems"]
        assert {"srm", "registry", "bank_b"} <= set(systems)
        for name in ("srm", "registry", "bank_b"):
            spec = requests.get(systems[name]["openapi"], timeout=5).json()
            assert spec["openapi"].startswith("3.") and spec["paths"]
            assert not any(p.startswith("/_sandbox") for p in spec["paths"])  # admin API not in the contract
        srm = SrmClient(
            RestConfig(
                system="srm",
                base_url=systems["srm"]["url"],
                bearer_token=systems["srm"]["credentials"]["token"],
            ),
            archive=Archive(tmp_path / "a"),
        )
        assert sum(len(p.records) for p in srm.iter_pages()) == 25
        creds = systems["bank_b"]["credentials"]
        bank = BankBClient(
            RestConfig(
                system="bank_b",
                base_url=systems["bank_b"]["url"],
                signer=HmacSigner(creds["key_id"], creds["secret"]),
            ),
            archive=Archive(tmp_path / "a"),
        )
        bank.check()
        if "sftp" in systems:
            assert systems["sftp"]["fingerprint"].startswith("SHA256:")
            assert Path(systems["sftp"]["private_key_file"]).stat().st_mode & 0o077 == 0
        for name in ("treasury", "bank_a"):
            if name in systems:
                assert requests.get(systems[name]["wsdl"], timeout=5).status_code == 200


def test_faults_switch_over_http(tmp_path: Path) -> None:
    from sandbox.srm import SrmSandbox

    with SrmSandbox() as box:
        r = requests.post(
            box.url + "/_sandbox/faults",
            json={"kind": "server_error", "operation": "list_payables", "times": 1},
            timeout=5,
        )
        assert r.status_code == 201
        headers = {"Authorization": f"Bearer {box.token}"}
        assert requests.get(box.url + "/api/v1/payables", headers=headers, timeout=5).status_code == 503
        assert requests.get(box.url + "/api/v1/payables", headers=headers, timeout=5).status_code == 200
        bad = requests.post(box.url + "/_sandbox/faults", json={"kind": "meteor"}, timeout=5)
        assert bad.status_code == 400
        assert requests.get(box.url + "/_sandbox/journal", timeout=5).json()[0] == ["list_payables", None]


def test_latency_fault_delays_but_answers(tmp_path: Path) -> None:
    import time

    from sandbox.registry import RegistrySandbox

    with RegistrySandbox() as box:
        box.inject("latency", operation="list_by_grantor", times=1, delay=0.3)
        started = time.monotonic()
        r = requests.get(
            box.url + "/api/v1/registrations",
            params={"grantor_uscc": "91110108100000032U"},
            headers={"X-Api-Key": box.api_key},
            timeout=5,
        )
        assert r.status_code == 200 and time.monotonic() - started >= 0.3


def test_sandbox_up_prints_and_writes_json(tmp_path: Path, data_dir: Path) -> None:
    from cvhub.cli import app

    out_file = tmp_path / "endpoints.json"
    result = CliRunner().invoke(
        app,
        [
            "sandbox",
            "up",
            "--workdir",
            str(tmp_path / "sb"),
            "--json",
            str(out_file),
            "--duration",
            "0.2",
            "--statement-every",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out_file.read_text())
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    assert doc["systems"]["srm"]["credentials"]["token"] in result.output
    assert doc["systems"]["bank_b"]["url"] in result.output
    if "sftp" in doc["systems"]:
        assert doc["systems"]["sftp"]["fingerprint"] in result.output


def test_openapi_command(tmp_path: Path) -> None:
    from cvhub.cli import app

    result = CliRunner().invoke(app, ["sandbox", "openapi", "bank_b", "-o", str(tmp_path / "b.json")])
    assert result.exit_code == 0, result.output
    spec = json.loads((tmp_path / "b.json").read_text())
    assert "/openapi/v2/financing/applications/{serial_no}" in spec["paths"]


def test_start_all_over_https_and_day_close_over_http(tmp_path: Path) -> None:
    with start_all(tmp_path / "sb", statement_every=None, decision_delay=0.05, https=True) as fleet:
        bank_b = fleet.systems["bank_b"]
        assert bank_b["url"].startswith("https://") and Path(bank_b["ca_bundle"]).exists()
        creds = bank_b["credentials"]
        client = BankBClient(
            RestConfig(
                system="bank_b",
                base_url=bank_b["url"],
                ca_bundle=bank_b["ca_bundle"],
                signer=HmacSigner(creds["key_id"], creds["secret"]),
            ),
            archive=Archive(tmp_path / "a"),
        )
        client.check()
        fleet.handles["bank_b"].book(
            "6222000000000042",
            "CRDT",
            12_345,
            reference="R1",
            end_to_end_id="E1",
            remittance="测试入账",
            remittance_ascii="TEST CREDIT",
        )
        closed = requests.post(
            bank_b["url"] + "/_sandbox/close-day", verify=bank_b["ca_bundle"], timeout=5
        ).json()
        assert len(closed["delivered"]) == 2  # MT940 + CSV
        if "sftp" in fleet.systems:
            delivered = sorted(p.name for p in (tmp_path / "sb" / "sftp" / "bank_b" / "statements").iterdir())
            assert any(n.endswith(".sta") for n in delivered) and any(
                n.endswith(".csv.done") for n in delivered
            )
