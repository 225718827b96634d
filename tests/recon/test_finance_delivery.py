"""Finance package delivery over SFTP to a real OpenSSH server on loopback."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from connectors.archive import Archive
from connectors.errors import IntegrityError
from connectors.finance_delivery import deliver_package, deliver_packages
from connectors.sftp import SftpClient, SftpSettings
from ledger.recon.package import PackageData, PackageOptions, write_package
from sandbox.sshd import SSHD_PATH, Sshd

DAY = date(2026, 12, 16)
pytestmark = pytest.mark.sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not SSHD_PATH.exists():
        msg = f"{SSHD_PATH} not installed (apt-get install openssh-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true requires OpenSSH sshd: {msg}")
        pytest.skip(msg)
    server = Sshd(tmp_path_factory.mktemp("recon-sshd")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(sshd: Sshd, tmp_path: Path) -> Iterator[SftpClient]:
    outbox = sshd.root / f"{tmp_path.name}-finance"
    outbox.mkdir()
    settings = SftpSettings(system="finance", host=sshd.host, port=sshd.port, username=sshd.username,
                            private_key=str(sshd.client_key), host_keys=(sshd.host_key_line,),
                            outbox=str(outbox), connect_timeout=5, auth_timeout=5, op_timeout=5)
    with SftpClient(settings, archive=Archive(tmp_path / "archive")) as c:
        yield c


def _package(tmp_path: Path, *, exceptions: int = 0, partition: str | None = None) -> Path:
    from ledger.recon.package import ExceptionRecord

    data = PackageData(DAY, "account" if partition else "all", partition)
    data.exceptions = [ExceptionRecord("UNMATCHED_LINE", "6222000000000001", "S1", i + 1, None, 100 + i,
                                       "CNY", None, "open", "no expected item fits", DAY)
                       for i in range(exceptions)]
    data.open_exceptions = list(data.exceptions)
    out = tmp_path / f"pkg-{exceptions}" / (partition or "")
    write_package(data, out, PackageOptions())
    return out


def _remote(client: SftpClient) -> Path:
    return Path(client.settings.outbox) / DAY.isoformat()


def test_deliver_then_redeliver_same_bytes_is_a_noop(client: SftpClient, tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    first = deliver_package(client, pkg)
    assert first.changed and {f.status for f in first.files} == {"uploaded"}
    remote = _remote(client)
    for f in json.loads((pkg / "manifest.json").read_text())["files"]:
        assert hashlib.sha256((remote / f["name"]).read_bytes()).hexdigest() == f["sha256"]
    assert not [p for p in remote.iterdir() if p.name.endswith(".part")]
    again = deliver_package(client, pkg)
    assert not again.changed and {f.status for f in again.files} == {"unchanged"}


def test_different_bytes_are_versioned_never_overwritten(client: SftpClient, tmp_path: Path) -> None:
    deliver_package(client, _package(tmp_path, exceptions=0))
    remote = _remote(client)
    original = (remote / f"recon_{DAY}.csv").read_bytes()
    rep = deliver_package(client, _package(tmp_path, exceptions=2))
    statuses = {f.local_name: (f.remote_name, f.status) for f in rep.files}
    assert statuses[f"recon_{DAY}.csv"] == (f"recon_{DAY}.v2.csv", "versioned")
    assert statuses["manifest.json"] == ("manifest.v2.json", "versioned")
    assert (remote / f"recon_{DAY}.csv").read_bytes() == original          # untouched
    m2 = json.loads((remote / "manifest.v2.json").read_text())
    for f in m2["files"]:                                                  # the v2 manifest is consistent
        assert hashlib.sha256((remote / f["name"]).read_bytes()).hexdigest() == f["sha256"]
    assert m2["redelivery"]["renamed"][f"recon_{DAY}.csv"] == f"recon_{DAY}.v2.csv"


def test_broken_package_never_leaves(client: SftpClient, tmp_path: Path) -> None:
    pkg = _package(tmp_path)
    (pkg / f"recon_{DAY}.csv").write_bytes(b"tampered")
    with pytest.raises(IntegrityError):
        deliver_package(client, pkg)
    assert not _remote(client).exists()


def test_partitions_go_to_their_own_directories(client: SftpClient, tmp_path: Path) -> None:
    root = tmp_path / "parts"
    for acct in ("ACC1", "ACC2"):
        data = PackageData(DAY, "account", acct)
        write_package(data, root / acct, PackageOptions())
    reps = deliver_packages(client, root)
    assert [Path(r.remote_dir).name for r in reps] == ["ACC1", "ACC2"]
    assert (_remote(client) / "ACC2" / "manifest.json").exists()
