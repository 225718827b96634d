"""WS-Security X.509 signature profile (BinarySecurityToken, xmlsec) against the sandbox server.

The sandbox treasury is configured to demand requests signed by the pinned client certificate and
to sign its responses; the client verifies them against the pinned server certificate.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from canonical.clock import SYSTEM_CLOCK
from connectors.archive import Archive
from connectors.errors import NotFound, OutcomeUnknown, SoapFault, ValidationFailed
from connectors.soap import SignatureConfig, UsernameTokenConfig
from connectors.treasury import TreasuryClient
from sandbox.soap_server import SecurityPolicy
from sandbox.treasury import start_treasury_sandbox

pytest.importorskip("xmlsec")

PASSWORD = "sig-test-pw"


def make_cert(dir_: Path, name: str) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = SYSTEM_CLOCK()  # certificate validity is real time
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = dir_ / f"{name}.key", dir_ / f"{name}.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    d = tmp_path_factory.mktemp("certs")
    return {n: make_cert(d, n) for n in ("client", "server", "intruder")}


@pytest.fixture
def signed_treasury(certs: dict[str, tuple[Path, Path]]):  # type: ignore[no-untyped-def]
    policy = SecurityPolicy(
        username="cvhub",
        password=PASSWORD,
        client_cert_pem=certs["client"][1].read_bytes(),
        server_key_pem=certs["server"][0].read_bytes(),
        server_cert_pem=certs["server"][1].read_bytes(),
    )
    sb = start_treasury_sandbox(security=policy, tick=None)
    yield sb
    sb.stop()


def make_client(sb, archive: Archive, key: Path, cert: Path, server_cert: Path | None) -> TreasuryClient:  # type: ignore[no-untyped-def]
    n = itertools.count(1)
    return TreasuryClient(
        endpoint=sb.url,
        username_token=UsernameTokenConfig("cvhub", PASSWORD),
        signature=SignatureConfig(key, cert, server_cert_file=server_cert),
        archive=archive,
        nonce=lambda: next(n).to_bytes(16, "big"),
    )


def test_signed_request_and_verified_response(signed_treasury, certs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    archive = Archive(tmp_path / "a")
    c = make_client(signed_treasury, archive, *certs["client"], certs["server"][1])
    with pytest.raises(NotFound):  # authenticated + signature verified both ways, then "unknown batch"
        c.query_batch("B1")
    request = archive.read(str(archive.entries()[0]["sha256"]))
    assert b"BinarySecurityToken" in request and b"SignatureValue" in request
    assert b"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" in request
    assert PASSWORD.encode() not in request


def test_unsigned_or_wrongly_signed_request_refused(signed_treasury, certs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    archive = Archive(tmp_path / "a")
    intruder = make_client(signed_treasury, archive, *certs["intruder"], None)
    with pytest.raises(SoapFault) as e:
        intruder.query_batch("B1")
    assert e.value.code == "Client.Authentication" and "signature" in e.value.message
    unsigned = TreasuryClient(
        endpoint=signed_treasury.url, username_token=UsernameTokenConfig("cvhub", PASSWORD), archive=archive
    )
    with pytest.raises(SoapFault, match="signature"):
        unsigned.query_batch("B1")


def test_response_signed_by_another_key_refused(certs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    policy = SecurityPolicy(
        username="cvhub",
        password=PASSWORD,
        client_cert_pem=certs["client"][1].read_bytes(),
        server_key_pem=certs["intruder"][0].read_bytes(),
        server_cert_pem=certs["intruder"][1].read_bytes(),
    )
    with start_treasury_sandbox(security=policy, tick=None) as sb:
        c = make_client(sb, Archive(tmp_path / "a"), *certs["client"], certs["server"][1])
        with pytest.raises(ValidationFailed, match="SignatureVerificationFailed"):
            c.query_batch("B1")
        with pytest.raises(OutcomeUnknown):  # for a state-changing call, an unverifiable answer
            c.soap.call("QueryBatchStatus", ref="B1", state_changing=True, BatchSerial="B1")
