"""Hooks against the real sandboxes on loopback, connections given as AIRFLOW_CONN_<ID> JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.archive import Archive
from connectors.errors import ConfigurationError, HostKeyRefused, NotFound, SoapFault
from plugins.cvhub_flows.hooks import ErpHook, RestServiceHook, SftpEndpointHook, SrmHook, TreasuryHook


def _set_conn(mp: pytest.MonkeyPatch, conn_id: str, value: dict[str, object]) -> None:
    mp.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))


@pytest.fixture
def srm() -> Iterator[object]:
    from sandbox.srm import SrmSandbox

    with SrmSandbox() as sb:
        sb.seed(5)
        yield sb


def test_srm_hook_reads_payables_from_the_sandbox(srm: object, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    host, port = srm.url.split("//", 1)[1].split(":")  # type: ignore[attr-defined]
    _set_conn(monkeypatch, "cvhub_srm", {"conn_type": "http", "schema": "http", "host": host,
                                         "port": int(port.strip("/")),
                                         "password": srm.token, "extra": {"auth": "bearer"}})  # type: ignore[attr-defined]
    hook = SrmHook()
    config = hook.get_config()
    assert srm.token not in repr(config)  # type: ignore[attr-defined]
    client = hook.get_client(Archive(tmp_path / "archive"), page_size=2)
    try:
        client.check()
        pages = list(client.iter_pages())
    finally:
        client.close()
    assert sum(len(p.records) for p in pages) == 5 and pages[-1].last
    archived = (tmp_path / "archive" / "index.jsonl").read_text()
    assert srm.token not in archived  # type: ignore[attr-defined]


def test_rest_hook_wrong_token_is_fatal_and_insecure_options_refused(
        srm: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.errors import FatalError

    _set_conn(monkeypatch, "cvhub_srm", {"conn_type": "http", "host": srm.url,  # type: ignore[attr-defined]
                                         "password": "wrong", "extra": {"auth": "bearer"}})
    client = SrmHook().get_client(Archive(tmp_path / "a"))
    with pytest.raises(FatalError):
        client.check()
    client.close()
    _set_conn(monkeypatch, "x_rest", {"conn_type": "http", "host": srm.url,  # type: ignore[attr-defined]
                                      "extra": {"verify": False}})
    with pytest.raises(ConfigurationError, match="verify=false is refused"):
        RestServiceHook("x_rest", system="x").get_config()
    _set_conn(monkeypatch, "x_rest", {"conn_type": "http", "host": srm.url,  # type: ignore[attr-defined]
                                      "login": "k1", "password": "s3cret", "extra": {"auth": "hmac"}})
    cfg = RestServiceHook("x_rest", system="x").get_config()
    assert cfg.signer is not None and cfg.signer.key_id == "k1" and "s3cret" not in repr(cfg)


def test_missing_connection_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_CVHUB_NOPE", raising=False)
    with pytest.raises(ConfigurationError, match="AIRFLOW_CONN_CVHUB_NOPE"):
        RestServiceHook("cvhub_nope", system="nope").get_config()


def test_treasury_hook_talks_ws_security_to_the_sandbox(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.treasury import start_treasury_sandbox

    with start_treasury_sandbox() as sb:
        _set_conn(monkeypatch, "cvhub_treasury", {"conn_type": "http", "host": sb.url,
                                                  "login": sb.username, "password": sb.password,
                                                  "extra": {"password_digest": True}})
        endpoint = TreasuryHook().get_endpoint()
        assert sb.password not in repr(endpoint)
        # authenticated, and the treasury answers for real
        with TreasuryHook().get_client(Archive(tmp_path / "archive")) as client, pytest.raises(NotFound):
            client.query_batch("NO-SUCH-BATCH")
        archived = b"".join(p.read_bytes() for p in (tmp_path / "archive").rglob("*") if p.is_file())
        assert sb.password.encode() not in archived
        _set_conn(monkeypatch, "cvhub_treasury", {"conn_type": "http", "host": sb.url,
                                                  "login": sb.username, "password": "wrong"})
        with TreasuryHook().get_client(Archive(tmp_path / "archive2")) as client, \
                pytest.raises(SoapFault):
            client.query_batch("NO-SUCH-BATCH")


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[object]:
    from sandbox.sshd import Sshd, SshdUnavailable

    try:
        with Sshd(tmp_path / "sshd") as server:
            yield server
    except SshdUnavailable as e:
        pytest.skip(str(e))


def _sftp_conn(server: object, **extra: object) -> dict[str, object]:
    return {"conn_type": "sftp", "host": server.host, "port": server.port,  # type: ignore[attr-defined]
            "login": server.username,  # type: ignore[attr-defined]
            "extra": {"private_key": server.client_key.read_text(),  # type: ignore[attr-defined]
                      "host_key": server.host_key_line,  # type: ignore[attr-defined]
                      "inbox": str(server.root), "outbox": str(server.root), **extra}}  # type: ignore[attr-defined]


@pytest.mark.sshd
def test_sftp_hook_connects_with_pinned_key_and_refuses_others(
        sshd: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.sftp import SftpClient

    _set_conn(monkeypatch, "cvhub_erp", _sftp_conn(sshd))
    settings = ErpHook().get_settings()
    assert settings.system == "erp" and "PRIVATE KEY" not in repr(settings)
    with SftpClient(settings, archive=Archive(tmp_path / "archive")) as c:
        c.deliver(b"hello", "gl_20270301.csv")
    assert (sshd.root / "gl_20270301.csv").read_bytes() == b"hello"  # type: ignore[attr-defined]

    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    _set_conn(monkeypatch, "cvhub_erp", _sftp_conn(sshd, host_key=other))
    with pytest.raises(HostKeyRefused), SftpClient(ErpHook().get_settings()) as c:
        c.list_complete()

    _set_conn(monkeypatch, "cvhub_erp", _sftp_conn(sshd, no_host_key_check=True))
    with pytest.raises(ConfigurationError, match="no_host_key_check=true is refused"):
        ErpHook().get_settings()
    conn = _sftp_conn(sshd)
    del conn["extra"]["host_key"]  # type: ignore[attr-defined]
    _set_conn(monkeypatch, "x_sftp", conn)
    with pytest.raises(ConfigurationError, match="host_key is required"):
        SftpEndpointHook("x_sftp", system="x").get_settings()


def test_example_connections_cover_every_connection_the_flows_use() -> None:
    from plugins.cvhub_flows.airflow_env import REPO_ROOT
    from plugins.cvhub_flows.banks import BANKS

    example = json.loads((REPO_ROOT / "examples" / "connections.json").read_text())
    used = {"cvhub_srm", "cvhub_registry", "cvhub_treasury", "cvhub_finance_sftp", "cvhub_erp",
            *(b.financing_conn_id for b in BANKS), *(b.sftp_conn_id for b in BANKS)}
    assert set(example) == used
    for conn_id, conn in example.items():
        assert conn["conn_type"] in ("http", "sftp"), conn_id
        if conn["conn_type"] == "sftp":
            assert conn["extra"]["host_key"].startswith("ssh-"), conn_id  # always pinned
    doc = (REPO_ROOT / "docs" / "operations.md").read_text()
    assert all(f"`{c}`" in doc for c in used)
