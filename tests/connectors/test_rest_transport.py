"""The REST transport against a real server on loopback (the SRM and Bank B sandboxes).

Retry-After (seconds and HTTP-date, and the cap), no retry on 4xx, Idempotency-Key on every POST,
pagination to the end, signing verified by the server, unknown outcome on a lost POST answer,
configuration validation, and secrets kept out of logs and the archive.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from canonical.clock import SYSTEM_CLOCK
from connectors.archive import Archive
from connectors.errors import (
    ClientError,
    ConfigurationError,
    ConnectionDropped,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    ValidationFailed,
)
from connectors.rest import HmacSigner, RestClient, RestConfig, parse_retry_after
from sandbox.bank_b import BankBSandbox
from sandbox.srm import SrmSandbox


@pytest.fixture(scope="module")
def srm_box() -> Iterator[SrmSandbox]:
    with SrmSandbox(timeout_delay=1.0) as box:
        yield box  # type: ignore[misc]


@pytest.fixture
def srm(srm_box: SrmSandbox) -> Iterator[SrmSandbox]:
    srm_box.reset()
    yield srm_box
    srm_box.reset()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(box: SrmSandbox, tmp_path: Path, sleeps: Sleeps | None = None, **kw: object) -> RestClient:
    settings: dict[str, object] = dict(
        system="srm",
        base_url=box.url,
        bearer_token=box.token,
        read_timeout=0.5,
        max_attempts=4,
        backoff_initial=0.01,
        backoff_max=0.02,
    )
    settings.update(kw)
    return RestClient(
        RestConfig(**settings),
        archive=Archive(tmp_path / "archive"),  # type: ignore[arg-type]
        sleep=sleeps if sleeps is not None else (lambda s: None),
    )


# --- Retry-After ------------------------------------------------------------------------------


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None


def test_429_waits_retry_after_seconds(srm: SrmSandbox, tmp_path: Path) -> None:
    srm.seed(1)
    sleeps = Sleeps()
    srm.inject("rate_limit", operation="list_payables", times=2, retry_after=3)
    resp = client(srm, tmp_path, sleeps).get("/api/v1/payables", operation="list_payables")
    assert resp.status == 200
    assert sleeps == [3.0, 3.0]
    assert srm.requests("list_payables") == 3


def test_429_waits_retry_after_http_date(srm: SrmSandbox, tmp_path: Path) -> None:
    sleeps = Sleeps()
    srm.inject("rate_limit", operation="list_payables", times=1, retry_after=5, http_date=True)
    client(srm, tmp_path, sleeps).get("/api/v1/payables", operation="list_payables")
    assert len(sleeps) == 1 and 3.0 <= sleeps[0] <= 5.0  # HTTP-date has one-second resolution


def test_retry_after_above_the_cap_is_raised_not_slept(srm: SrmSandbox, tmp_path: Path) -> None:
    sleeps = Sleeps()
    srm.inject("rate_limit", operation="list_payables", times=1, retry_after=3600)
    with pytest.raises(RateLimited) as info:
        client(srm, tmp_path, sleeps, retry_after_cap=60).get("/api/v1/payables", operation="list_payables")
    assert info.value.retry_after == 3600 and info.value.retriable
    assert sleeps == [] and srm.requests("list_payables") == 1


def test_5xx_retried_with_exponential_backoff_then_gives_up(srm: SrmSandbox, tmp_path: Path) -> None:
    sleeps = Sleeps()
    srm.inject("server_error", operation="list_payables", times=None, status=502)
    with pytest.raises(ServerError) as info:
        client(srm, tmp_path, sleeps, backoff_initial=1.0, backoff_max=3.0).get(
            "/api/v1/payables", operation="list_payables", ref="page-1"
        )
    assert srm.requests("list_payables") == 4
    assert info.value.status == 502 and "srm.list_payables [page-1]" in str(info.value)
    # full jitter in [ceiling/2, ceiling] with ceilings 1, 2, 3 (capped)
    assert [0.5 <= sleeps[0] <= 1.0, 1.0 <= sleeps[1] <= 2.0, 1.5 <= sleeps[2] <= 3.0] == [True] * 3


# --- fatal: no retry ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 409, 422])
def test_4xx_is_fatal_and_never_retried(status: int, srm: SrmSandbox, tmp_path: Path) -> None:
    srm.inject("client_error", operation="list_payables", times=1, status=status)
    with pytest.raises(ClientError) as info:
        client(srm, tmp_path).get("/api/v1/payables", operation="list_payables")
    assert info.value.status == status and not info.value.retriable
    assert srm.requests("list_payables") == 1


def test_wrong_token_is_a_401_client_error(srm: SrmSandbox, tmp_path: Path) -> None:
    with pytest.raises(ClientError) as info:
        client(srm, tmp_path, bearer_token="wrong").get("/api/v1/payables", operation="list_payables")
    assert info.value.status == 401 and srm.requests() == 1


def test_404_is_not_found(srm: SrmSandbox, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        client(srm, tmp_path).get("/api/v1/payables/AP-NOPE", operation="get_payable", ref="AP-NOPE")


# --- POST: idempotency key, unknown outcome -----------------------------------------------------


def test_every_post_carries_the_idempotency_key(srm: SrmSandbox, tmp_path: Path) -> None:
    srm.add_payable(payable_id="AP-1")
    c = client(srm, tmp_path)
    body = {"voucher_no": "CV1", "status": "ISSUED"}
    first = c.post("/api/v1/payables/AP-1/voucher", body, operation="wb", ref="AP-1", idempotency_key="k-1")
    again = c.post("/api/v1/payables/AP-1/voucher", body, operation="wb", ref="AP-1", idempotency_key="k-1")
    assert first.status == again.status == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert srm.effects("AP-1") == 1
    raw = [
        Archive(tmp_path / "archive").read(e["sha256"])
        for e in Archive(tmp_path / "archive").entries()
        if e["direction"] == "out"
    ]
    assert all(b"Idempotency-Key: k-1" in r for r in raw)
    with pytest.raises(ValueError, match="idempotency key"):
        c.post("/api/v1/payables/AP-1/voucher", body, operation="wb", ref="AP-1", idempotency_key="")


def test_post_retried_on_5xx_under_the_same_key(srm: SrmSandbox, tmp_path: Path) -> None:
    srm.add_payable(payable_id="AP-2")
    srm.inject("server_error", operation="write_back_voucher", times=2)
    client(srm, tmp_path).post(
        "/api/v1/payables/AP-2/voucher",
        {"voucher_no": "CV2", "status": "ISSUED"},
        operation="wb",
        ref="AP-2",
        idempotency_key="k-2",
    )
    assert srm.requests("write_back_voucher") == 3 and srm.effects("AP-2") == 1


@pytest.mark.parametrize("kind", ["drop_after", "timeout"])
def test_lost_post_answer_is_outcome_unknown_and_not_resent(
    kind: str, srm: SrmSandbox, tmp_path: Path
) -> None:
    srm.add_payable(payable_id="AP-3")
    srm.inject(kind, operation="write_back_voucher", times=1)
    with pytest.raises(OutcomeUnknown) as info:
        client(srm, tmp_path).post(
            "/api/v1/payables/AP-3/voucher",
            {"voucher_no": "CV3", "status": "ISSUED"},
            operation="write_back_voucher",
            ref="AP-3",
            idempotency_key="k-3",
        )
    assert info.value.ref == "AP-3" and not info.value.retriable
    assert srm.requests("write_back_voucher") == 1  # never blindly resent by the transport


def test_dropped_get_is_retried(srm: SrmSandbox, tmp_path: Path) -> None:
    srm.seed(1)
    srm.inject("drop_before", operation="list_payables", times=2)
    assert client(srm, tmp_path).get("/api/v1/payables", operation="list_payables").status == 200
    assert srm.requests("list_payables") == 3


def test_connection_refused_is_retriable_and_names_the_call(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = RestConfig(
        system="srm", base_url=f"http://127.0.0.1:{port}", max_attempts=2, backoff_initial=0.01
    )
    with pytest.raises(ConnectionDropped) as info:
        RestClient(config, archive=Archive(tmp_path), sleep=lambda s: None).post(
            "/x", {}, operation="write_back_voucher", ref="AP-9", idempotency_key="k"
        )
    assert "srm.write_back_voucher [AP-9]" in str(info.value)  # nothing was sent: safe to retry


# --- pagination ---------------------------------------------------------------------------------


def test_paginate_to_the_end(srm: SrmSandbox, tmp_path: Path) -> None:
    srm.seed(23)
    pages = list(
        client(srm, tmp_path).paginate("/api/v1/payables", operation="list_payables", params={"limit": "5"})
    )
    assert [len(p.items) for p in pages] == [5, 5, 5, 5, 3]
    assert pages[-1].next_cursor is None
    ids = [i["payable_id"] for p in pages for i in p.items]
    assert len(set(ids)) == 23


def test_paginate_detects_a_cursor_loop(tmp_path: Path) -> None:
    from fastapi import FastAPI

    from sandbox.rest_server import RestSandbox

    class Looping(RestSandbox):
        name = "looping"

        def build_routes(self, app: FastAPI) -> None:
            @app.get("/items", name="items")
            def items() -> dict[str, object]:
                return {"items": [1], "next_cursor": "same"}

    with Looping() as box:
        c = RestClient(RestConfig(system="x", base_url=box.url), archive=Archive(tmp_path))
        with pytest.raises(ValidationFailed, match="pagination loop"):
            list(c.paginate("/items", operation="items"))


# --- signing ------------------------------------------------------------------------------------


def test_signature_verified_by_the_server_and_a_bad_one_is_fatal(tmp_path: Path) -> None:
    with BankBSandbox() as bank:
        good = RestConfig(system="bank_b", base_url=bank.url, signer=HmacSigner(bank.key_id, bank.secret))
        assert (
            RestClient(good, archive=Archive(tmp_path))
            .get("/openapi/v2/financing/notices", operation="list_notices", params={"limit": "1"})
            .status
            == 200
        )
        bad = RestConfig(system="bank_b", base_url=bank.url, signer=HmacSigner(bank.key_id, "wrong"))
        with pytest.raises(ClientError) as info:
            RestClient(bad, archive=Archive(tmp_path)).get(
                "/openapi/v2/financing/notices", operation="list_notices"
            )
        assert info.value.status == 401 and "signature mismatch" in str(info.value)
        assert bank.requests("list_notices") == 2  # the 401 was not retried


def test_signature_covers_the_body(tmp_path: Path) -> None:
    signer = HmacSigner("k", "s3cret")
    a = signer.headers("POST", "/p?x=1", b'{"a":1}', now=1_700_000_000)
    b = signer.headers("POST", "/p?x=1", b'{"a":2}', now=1_700_000_000)
    c = signer.headers("POST", "/p?x=2", b'{"a":1}', now=1_700_000_000)
    assert len({a["X-Signature"], b["X-Signature"], c["X-Signature"]}) == 3
    assert "s3cret" not in repr(signer) and "s3cret" not in json.dumps(a)


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"base_url": "http://bank.example.com"}, "plain http"),
        ({"base_url": "ftp://127.0.0.1"}, "http"),
        ({"base_url": "https://u:p@bank.example.com"}, "credentials"),
        ({"read_timeout": 0}, "timeout"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"bearer_token": "a", "api_key": "b"}, "either"),
        ({"bearer_token": "a\r\nX-Evil: 1"}, "line break"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle"),
    ],
)
def test_bad_configuration_is_refused(kw: dict[str, object], match: str) -> None:
    settings: dict[str, object] = {"system": "srm", "base_url": "https://srm.example.com", **kw}
    with pytest.raises(ConfigurationError, match=match) as info:
        RestConfig(**settings)  # type: ignore[arg-type]
    assert info.value.system == "srm" and info.value.operation == "configure"


def test_https_to_remote_host_is_accepted_and_secrets_not_in_repr() -> None:
    config = RestConfig(
        system="srm",
        base_url="https://srm.example.com",
        bearer_token="tok-123456",
        signer=HmacSigner("k", "sec-654321"),
    )
    assert "tok-123456" not in repr(config) and "sec-654321" not in repr(config)


def test_tls_verification_failure_is_fatal(tmp_path: Path) -> None:
    """A server whose certificate is not trusted is refused (verify is always on)."""
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "untrusted")])
    now = SYSTEM_CLOCK()  # certificate validity is real time
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            pass
        finally:
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    from connectors.errors import FatalError

    with pytest.raises(FatalError, match="TLS verification failed"):
        RestClient(
            RestConfig(system="srm", base_url=f"https://127.0.0.1:{port}", max_attempts=3),
            archive=Archive(tmp_path / "a"),
        ).get("/", operation="probe")
    t.join(timeout=5)
    listener.close()


# --- archive and logs ---------------------------------------------------------------------------


def test_exchanges_archived_raw_with_secrets_redacted(
    srm: SrmSandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    srm.seed(2)
    srm.inject("server_error", operation="list_payables", times=1)
    client(srm, tmp_path).get("/api/v1/payables", operation="list_payables", ref="p1")
    archive = Archive(tmp_path / "archive")
    entries = archive.entries()
    assert [(e["direction"], e.get("status")) for e in entries] == [
        ("out", None),
        ("in", "503"),
        ("out", None),
        ("in", "200"),
    ]
    request = archive.read(entries[0]["sha256"])
    assert request.startswith(b"GET /api/v1/payables HTTP/1.1") and b"Authorization: [REDACTED]" in request
    response = archive.read(entries[-1]["sha256"])
    assert response.startswith(b"HTTP/1.1 200") and b"AP-20261128-000001" in response
    secret = srm.token.encode()
    assert all(secret not in p.read_bytes() for p in (tmp_path / "archive").rglob("*") if p.is_file())
    assert srm.token not in caplog.text and "retrying" in caplog.text


def test_signed_request_archive_redacts_signature(tmp_path: Path) -> None:
    with BankBSandbox() as bank:
        config = RestConfig(system="bank_b", base_url=bank.url, signer=HmacSigner(bank.key_id, bank.secret))
        RestClient(config, archive=Archive(tmp_path)).get("/openapi/v2/financing/notices", operation="n")
        raw = Archive(tmp_path).read(Archive(tmp_path).entries()[0]["sha256"])
        assert b"X-Signature: [REDACTED]" in raw and b"X-Key-Id: bankb-key-1" in raw
        assert bank.secret.encode() not in raw


def test_https_sandbox_verified_against_its_private_ca(tmp_path: Path) -> None:
    with SrmSandbox(https=True) as box:
        assert box.url.startswith("https://127.0.0.1:") and box.ca_bundle
        box.seed(1)
        trusted = client(box, tmp_path, ca_bundle=box.ca_bundle)
        assert trusted.get("/api/v1/payables", operation="list_payables").status == 200
        from connectors.errors import FatalError

        with pytest.raises(FatalError, match="TLS verification failed"):
            client(box, tmp_path).get("/api/v1/payables", operation="list_payables")  # system CAs only
        assert box.requests("list_payables") == 1  # the untrusted attempt never reached the API
