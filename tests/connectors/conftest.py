"""Fixtures for the SFTP connector tests: a real OpenSSH sshd and the paramiko sandbox server.

``sshd`` (session): OpenSSH's own daemon on a free loopback port with a generated ed25519 host key
and client key (``sandbox.sshd``). Without /usr/sbin/sshd the tests skip locally with the reason,
and FAIL when ``CI=true`` (CI must never pass by skipping them).
``sftp_sandbox`` (per test): ``sandbox.sftp_server.SftpSandbox`` over a tmp directory, with its
client key pair; ``sftp_settings_for`` builds ``SftpSettings`` for either server.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.sftp import SftpSettings
from sandbox.sftp_server import SftpSandbox, generate_ed25519_key
from sandbox.sshd import SSHD_PATH, Sshd

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    if not SSHD_PATH.exists():
        msg = f"{SSHD_PATH} not installed (apt-get install openssh-server)"
        if IN_CI:
            pytest.fail(f"CI=true requires OpenSSH sshd: {msg}")
        pytest.skip(msg)
    server = Sshd(tmp_path_factory.mktemp("sshd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class SandboxHandle:
    box: SftpSandbox
    private_key: str  # the client's private key (PEM text)
    public_key: str

    @property
    def root(self) -> Path:
        return self.box.root


@pytest.fixture
def sftp_sandbox(tmp_path: Path) -> Iterator[SandboxHandle]:
    pem, pub = generate_ed25519_key()
    box = SftpSandbox(tmp_path / "sftp-root", authorized_key=pub)
    box.start()
    try:
        yield SandboxHandle(box, pem, pub)
    finally:
        box.stop()


SettingsFactory = Callable[..., SftpSettings]


@pytest.fixture
def sandbox_settings(sftp_sandbox: SandboxHandle) -> SettingsFactory:
    """``SftpSettings`` for the sandbox; keyword arguments override fields."""

    def make(**kw: Any) -> SftpSettings:
        info = sftp_sandbox.box.info
        base: dict[str, Any] = dict(
            system="test", host=info.host, port=info.port, username=info.username,
            private_key=sftp_sandbox.private_key, host_keys=(info.host_key_line,),
            inbox="/in", outbox="/out", connect_timeout=5, auth_timeout=5, op_timeout=5,
            stable_seconds=0.3)
        base.update(kw)
        return SftpSettings(**base)

    (sftp_sandbox.root / "in").mkdir(parents=True, exist_ok=True)
    (sftp_sandbox.root / "out").mkdir(parents=True, exist_ok=True)
    return make


@pytest.fixture
def sshd_settings(sshd: Sshd, tmp_path: Path) -> SettingsFactory:
    """``SftpSettings`` for the OpenSSH server, with fresh per-test in/out directories."""
    inbox = sshd.root / f"{tmp_path.name}-in"
    outbox = sshd.root / f"{tmp_path.name}-out"
    inbox.mkdir()
    outbox.mkdir()

    def make(**kw: Any) -> SftpSettings:
        base: dict[str, Any] = dict(
            system="test", host=sshd.host, port=sshd.port, username=sshd.username,
            private_key=str(sshd.client_key), host_keys=(sshd.host_key_line,),
            inbox=str(inbox), outbox=str(outbox), connect_timeout=5, auth_timeout=5, op_timeout=5,
            stable_seconds=0.3)
        base.update(kw)
        return SftpSettings(**base)

    return make
