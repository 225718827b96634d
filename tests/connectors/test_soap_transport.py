"""connectors.soap against the real sandbox SOAP server on loopback (treasury contract).

Covers: hardened zeep settings (DOCTYPE/entity refused in WSDLs and responses), WSDL parsed once,
WS-Security UsernameToken (pinned clock, canonical XML comparison), secrets kept out of archive and
logs, SOAP faults -> typed SoapFault, 5xx retriable, server-side XSD validation, unknown outcome.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import logging
import socket
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests
from lxml import etree

from connectors.archive import Archive
from connectors.errors import (
    ClientError,
    ConfigurationError,
    ConnectionDropped,
    FatalError,
    NotFound,
    OutcomeUnknown,
    ServerError,
    SoapFault,
    ValidationFailed,
)
from connectors.soap import (
    REDACTED,
    WSDL_STATS,
    SoapClient,
    SoapConfig,
    UsernameTokenConfig,
    clear_wsdl_cache,
    redact_wsse,
    secure_settings,
)
from connectors.treasury import TreasuryClient
from connectors.treasury.client import BINDING, WSDL
from ledger.canonical import Party, PaymentInstruction
from mappings.pain001 import render_pain001
from sandbox.treasury import start_treasury_sandbox

T0 = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
NONCE = bytes(range(16))
PASSWORD = "s3cr3t-Treasury-pw"


class ManualClock:
    def __init__(self, at: datetime) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def pain001(n: int = 2, tag: str = "A") -> bytes:
    debtor = Party(name="Obligor Co", account="6222000011112222", agent="102100099996")
    items = [
        PaymentInstruction(
            f"I{tag}{k}",
            f"E2E{tag}{k}",
            100_00 * (k + 1),
            "CNY",
            date(2026, 12, 1),
            debtor,
            Party(name=f"Supplier {k}", account=f"62220000333300{k:02d}", agent="103100000026"),
            f"clearing {tag}{k}",
        )
        for k in range(n)
    ]
    return render_pain001(items, version="09", initiating_party=Party(name="Obligor Co"), created_at=T0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def treasury(clock: ManualClock):  # type: ignore[no-untyped-def]
    sb = start_treasury_sandbox(
        password=PASSWORD, clock=clock, execution_delay=timedelta(minutes=5), tick=None
    )
    yield sb
    sb.stop()


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return Archive(tmp_path / "archive")


def counter_nonce() -> Callable[[], bytes]:
    """Deterministic but never repeating nonces (the server refuses replays)."""
    n = itertools.count(1)
    return lambda: next(n).to_bytes(16, "big")


def client(
    sb,
    archive: Archive,
    clock: ManualClock,
    *,
    digest: bool = True,
    password: str = PASSWORD,  # type: ignore[no-untyped-def]
    read_timeout: float = 5.0,
    retries: int = 2,
    nonce: Callable[[], bytes] | None = None,
) -> TreasuryClient:
    return TreasuryClient(
        endpoint=sb.url,
        username_token=UsernameTokenConfig("cvhub", password, digest=digest),
        archive=archive,
        clock=clock,
        nonce=nonce or counter_nonce(),
        read_timeout=read_timeout,
        retries=retries,
    )


def c14n(xml: bytes | etree._Element) -> bytes:
    el = etree.fromstring(xml) if isinstance(xml, bytes) else xml
    return etree.tostring(el, method="c14n", exclusive=True)


# --- hardened XML ----------------------------------------------------------------------------


def test_secure_settings_are_explicit() -> None:
    s = secure_settings()
    assert (s.strict, s.forbid_dtd, s.forbid_entities, s.forbid_external, s.xml_huge_tree) == (
        True,
        True,
        True,
        True,
        False,
    )


def test_wsdl_with_doctype_or_entity_is_refused(tmp_path: Path, archive: Archive) -> None:
    text = WSDL.read_text(encoding="utf-8")
    evil = text.replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
        1,
    )
    (tmp_path / "evil.wsdl").write_text(evil, encoding="utf-8")
    (tmp_path / "treasury.xsd").write_bytes(WSDL.with_name("treasury.xsd").read_bytes())
    with pytest.raises(ValidationFailed, match="DTDForbidden"):
        SoapClient(SoapConfig(system="evil", wsdl=str(tmp_path / "evil.wsdl")), archive=archive)


def test_wsdl_importing_remote_schema_is_refused(tmp_path: Path, archive: Archive) -> None:
    text = WSDL.read_text(encoding="utf-8").replace(
        'schemaLocation="treasury.xsd"', 'schemaLocation="http://127.0.0.1:9/evil.xsd"'
    )
    (tmp_path / "remote.wsdl").write_text(text, encoding="utf-8")
    with pytest.raises(ValidationFailed, match="ExternalReferenceForbidden"):
        SoapClient(SoapConfig(system="evil", wsdl=str(tmp_path / "remote.wsdl")), archive=archive)


def test_response_with_doctype_is_refused(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    c = client(treasury, archive, clock)
    c.submit_batch("B-EVIL", pain001())
    treasury.faults.malicious(operation="QueryBatchStatus", times=None)
    with pytest.raises(ValidationFailed, match="DTDForbidden"):
        c.query_batch("B-EVIL")
    treasury.faults.clear()
    treasury.faults.malicious(operation="SubmitPaymentBatch")
    with pytest.raises(OutcomeUnknown):  # a state-changing call with an unreadable answer
        c.submit_batch("B-EVIL2", pain001(tag="E"), resolve_unknown=False)


# --- WSDL cache --------------------------------------------------------------------------------


def test_wsdl_parsed_once_per_process(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    clear_wsdl_cache()
    client(treasury, archive, clock)
    client(treasury, archive, clock)
    assert (WSDL_STATS.loads, WSDL_STATS.hits) == (1, 1)


def test_wsdl_from_server_fetched_once(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    cfg = SoapConfig(
        system="treasury", wsdl=treasury.wsdl_url, username_token=UsernameTokenConfig("cvhub", PASSWORD)
    )
    first = SoapClient(cfg, archive=archive, clock=clock)
    SoapClient(cfg, archive=archive, clock=clock)
    assert treasury.service.wsdl_requests == 1
    # the served WSDL is self-contained and points at the server: usable without the local contract
    with pytest.raises(SoapFault) as e:
        first.call("QueryBatchStatus", ref="nope", state_changing=False, BatchSerial="nope")
    assert e.value.code == "Client.UnknownBatch"


# --- WS-Security --------------------------------------------------------------------------------


def test_username_token_digest_pinned(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    c = client(treasury, archive, clock, nonce=lambda: NONCE)
    env = etree.fromstring(c.soap.create_message("QueryBatchStatus", BatchSerial="B1"))
    sec = env.find(".//{*}Security")
    assert sec is not None
    ts = sec.find("{*}Timestamp")
    assert ts is not None
    for attr in list(ts.attrib):  # wsu:Id is a random reference target
        del ts.attrib[attr]
    created = "2026-11-28T09:30:00Z"
    digest = base64.b64encode(hashlib.sha1(NONCE + created.encode() + PASSWORD.encode()).digest()).decode()
    expected = f"""
    <wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
                   xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">
      <wsu:Timestamp><wsu:Created>{created}</wsu:Created><wsu:Expires>2026-11-28T09:35:00Z</wsu:Expires></wsu:Timestamp>
      <wsse:UsernameToken>
        <wsse:Username>cvhub</wsse:Username>
        <wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{digest}</wsse:Password>
        <wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">{base64.b64encode(NONCE).decode()}</wsse:Nonce>
        <wsu:Created>{created}</wsu:Created>
      </wsse:UsernameToken>
    </wsse:Security>"""
    parser = etree.XMLParser(remove_blank_text=True)
    assert c14n(sec) == c14n(etree.fromstring(expected.encode(), parser))


def test_server_checks_username_token(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SoapFault) as e:
        client(treasury, archive, clock, password="wrong").query_batch("B1")
    assert e.value.code == "Client.Authentication" and "AUTHENTICATION" in (e.value.detail or "")
    # PasswordText is accepted by this endpoint too: authenticated, then "unknown batch"
    with pytest.raises(NotFound) as e2:
        client(treasury, archive, clock, digest=False).query_batch("B1")
    assert isinstance(e2.value.__cause__, SoapFault) and e2.value.__cause__.code == "Client.UnknownBatch"
    # a stale timestamp is refused (the server shares the pinned clock)
    stale = TreasuryClient(
        endpoint=treasury.url,
        username_token=UsernameTokenConfig("cvhub", PASSWORD),
        archive=archive,
        clock=lambda: T0 - timedelta(hours=1),
    )
    with pytest.raises(SoapFault, match="Authentication"):
        stale.query_batch("B1")


def test_replayed_nonce_is_refused(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    c = client(treasury, archive, clock, nonce=lambda: NONCE)  # the second message is a replay
    with pytest.raises(NotFound):
        c.query_batch("B1")
    with pytest.raises(SoapFault) as e:
        c.query_batch("B1")
    assert "nonce replayed" in e.value.message


@pytest.mark.parametrize("digest", [True, False])
def test_secret_never_in_archive_or_logs(
    treasury,
    archive: Archive,
    clock: ManualClock,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
    digest: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    c = TreasuryClient(
        endpoint=treasury.url,
        username_token=UsernameTokenConfig("cvhub", PASSWORD, digest=digest),
        archive=archive,
        clock=clock,
    )
    c.submit_batch("B-SECRET", pain001())
    c.query_batch("B-SECRET")
    entries = archive.entries()
    assert {(e["operation"], e["direction"]) for e in entries} == {
        ("SubmitPaymentBatch", "request"),
        ("SubmitPaymentBatch", "response"),
        ("QueryBatchStatus", "request"),
        ("QueryBatchStatus", "response"),
    }
    stored = b"".join(archive.read(str(e["sha256"])) for e in entries)
    assert PASSWORD.encode() not in stored
    assert stored.count(REDACTED) >= (4 if digest else 2)
    assert b"<wsse:Username>cvhub</wsse:Username>" in stored  # the rest is raw
    # the archived hash is the hash of what is stored
    for e in entries:
        assert hashlib.sha256(archive.read(str(e["sha256"]))).hexdigest() == e["sha256"]
    assert PASSWORD not in caplog.text
    assert "Nonce>" not in caplog.text and "PasswordDigest" not in caplog.text
    assert "B-SECRET" in caplog.text  # the logging did happen


def test_redact_wsse_keeps_everything_else() -> None:
    raw = (
        b'<e><wsse:Password Type="x#PasswordDigest">abc=</wsse:Password><Nonce>n0</Nonce>'
        b"<PasswordPolicy>keep</PasswordPolicy></e>"
    )
    assert redact_wsse(raw) == (
        b'<e><wsse:Password Type="x#PasswordDigest">***REDACTED***</wsse:Password>'
        b"<Nonce>***REDACTED***</Nonce><PasswordPolicy>keep</PasswordPolicy></e>"
    )


# --- faults and retries -----------------------------------------------------------------------


def test_soap_fault_is_typed(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    c = client(treasury, archive, clock)
    treasury.faults.soap_fault(
        "Server.Maintenance", "closed for end of day", detail_code="EOD", operation="QueryBatchStatus"
    )
    with pytest.raises(SoapFault) as e:
        c.query_batch("B1")
    err = e.value
    assert (err.code, err.detail, err.retriable) == (
        "Server.Maintenance",
        "EOD: closed for end of day",
        False,
    )
    assert (err.system, err.operation, err.ref) == ("treasury", "QueryBatchStatus", "B1")
    assert treasury.service.calls["QueryBatchStatus"] == 1  # faults are not retried


def test_5xx_is_retried_for_queries(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    c = client(treasury, archive, clock)
    c.submit_batch("B-5XX", pain001())
    treasury.faults.http_error(503, operation="QueryBatchStatus", times=2)
    assert c.query_batch("B-5XX").status == "PDNG"
    assert treasury.service.calls["QueryBatchStatus"] == 3
    treasury.faults.http_error(502, operation="QueryBatchStatus", times=None)
    with pytest.raises(ServerError) as e:
        c.query_batch("B-5XX")
    assert e.value.retriable and e.value.status == 502


def test_5xx_on_submit_is_not_resent_blindly(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    c = client(treasury, archive, clock)
    treasury.faults.http_error(503, operation="SubmitPaymentBatch")
    with pytest.raises(OutcomeUnknown):
        c.submit_batch("B-503", pain001(), resolve_unknown=False)
    assert treasury.service.calls["SubmitPaymentBatch"] == 1


def test_connection_refused_is_retriable(archive: Archive, clock: ManualClock) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = TreasuryClient(
        endpoint=f"http://127.0.0.1:{port}/soap/treasury",
        username_token=UsernameTokenConfig("cvhub", PASSWORD),
        archive=archive,
        clock=clock,
        retries=0,
        connect_timeout=1,
    )
    with pytest.raises(ConnectionDropped) as e:
        c.query_batch("B1")
    assert e.value.retriable


def test_server_validates_requests_against_xsd(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    c = client(treasury, archive, clock)
    with pytest.raises(SoapFault) as e:  # a space is not allowed by the BatchSerial pattern
        c.query_batch("bad serial")
    assert e.value.code == "Client.SchemaValidation" and "SCHEMA_VALIDATION" in (e.value.detail or "")
    # and a raw envelope with an element the contract does not know
    env = c.soap.create_message("QueryBatchStatus", BatchSerial="B1").replace(
        b"</ns0:BatchSerial>", b"</ns0:BatchSerial><ns0:Extra>1</ns0:Extra>"
    )
    r = requests.post(treasury.url, data=env, headers={"Content-Type": "text/xml"}, timeout=5)
    assert r.status_code == 500 and b"Client.SchemaValidation" in r.content


def test_server_refuses_doctype_in_requests(treasury) -> None:  # type: ignore[no-untyped-def]
    body = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>'
    r = requests.post(treasury.url, data=body, headers={"Content-Type": "text/xml"}, timeout=5)
    assert r.status_code == 500 and b"Client.MalformedXML" in r.content and b"boom" not in r.content


def test_configuration_is_validated(archive: Archive) -> None:
    with pytest.raises(ConfigurationError, match="binding"):
        SoapClient(SoapConfig(system="t", wsdl=str(WSDL), endpoint="http://127.0.0.1:1/x"), archive=archive)
    with pytest.raises(ConfigurationError, match="http"):
        SoapClient(
            SoapConfig(system="t", wsdl=str(WSDL), endpoint="ftp://x", binding=BINDING), archive=archive
        )
    with pytest.raises(ConfigurationError, match="ca_bundle"):
        SoapClient(
            SoapConfig(system="t", wsdl=str(WSDL), ca_bundle=Path("/nonexistent.pem")), archive=archive
        )


def test_tls_verification_on_by_default(archive: Archive, tmp_path: Path) -> None:
    c = SoapClient(SoapConfig(system="t", wsdl=str(WSDL)), archive=archive)
    assert c.transport.session.verify is True
    assert c.transport.session.trust_env is False  # no CA bundle or proxy from the environment
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="ascii")
    c2 = SoapClient(SoapConfig(system="t", wsdl=str(WSDL), ca_bundle=ca), archive=archive)
    assert c2.transport.session.verify == str(ca)
    assert c.transport.timeouts == (5.0, 30.0)


# --- unknown outcome --------------------------------------------------------------------------


def test_timeout_after_submit_is_outcome_unknown_then_resolved(
    treasury,
    archive: Archive,  # type: ignore[no-untyped-def]
    clock: ManualClock,
) -> None:
    c = client(treasury, archive, clock, read_timeout=0.3)
    doc = pain001()
    treasury.faults.latency(1.0, operation="SubmitPaymentBatch", after_apply=True)
    with pytest.raises(OutcomeUnknown) as e:
        c.submit_batch("B-TO", doc, resolve_unknown=False)
    assert not e.value.retriable and e.value.ref == "B-TO"
    assert treasury.service.calls["SubmitPaymentBatch"] == 1  # never resent by the transport
    ack = c.resolve_submit("B-TO", doc)
    assert ack.resolved_by_query and ack.duplicate
    assert treasury.service.calls["SubmitPaymentBatch"] == 1  # resolved by query, not by resend
    assert list(treasury.engine.batches) == ["B-TO"]


def test_drop_after_apply_resolved_by_query(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    c = client(treasury, archive, clock)
    treasury.faults.drop(operation="SubmitPaymentBatch", after_apply=True)
    ack = c.submit_batch("B-DROP", pain001())
    assert ack.resolved_by_query
    assert treasury.service.calls == {"SubmitPaymentBatch": 1, "QueryBatchStatus": 1}
    clock.advance(minutes=10)
    assert len(treasury.engine.executed()) == 2  # two transactions, paid once


def test_drop_before_apply_resent_under_same_serial(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    c = client(treasury, archive, clock)
    treasury.faults.drop(operation="SubmitPaymentBatch", after_apply=False)
    ack = c.submit_batch("B-LOST", pain001())
    assert not ack.resolved_by_query and not ack.duplicate
    assert treasury.service.calls == {"SubmitPaymentBatch": 2, "QueryBatchStatus": 1}
    assert list(treasury.engine.batches) == ["B-LOST"]


def test_duplicate_delivery_has_no_second_effect(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    c = client(treasury, archive, clock)
    doc = pain001()
    treasury.faults.duplicate(operation="SubmitPaymentBatch")
    first = c.submit_batch("B-DUP", doc)
    again = c.submit_batch("B-DUP", doc)
    assert not first.duplicate and again.duplicate
    assert again.received_at == first.received_at
    clock.advance(minutes=10)
    assert len(treasury.engine.batches) == 1 and len(treasury.engine.executed()) == 2
    with pytest.raises(SoapFault) as e:
        c.submit_batch("B-DUP", pain001(tag="X"))
    assert e.value.code == "Client.SerialConflict"


def test_submit_to_closed_port_is_retriable_not_unknown(archive: Archive, clock: ManualClock) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = TreasuryClient(
        endpoint=f"http://127.0.0.1:{port}/soap/treasury",
        username_token=UsernameTokenConfig("cvhub", PASSWORD),
        archive=archive,
        clock=clock,
        retries=1,
        backoff=0.01,
    )
    with pytest.raises(ConnectionDropped):  # nothing left the machine: safe to retry, not "unknown"
        c.submit_batch("B-CLOSED", pain001(), resolve_unknown=False)


def test_429_honours_retry_after(treasury, archive: Archive, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    c = client(treasury, archive, clock)
    treasury.faults.http_error(429, operation="QueryBatchStatus", times=1, retry_after=0.3)
    started = time.monotonic()
    with pytest.raises(NotFound):
        c.query_batch("B-429")
    assert time.monotonic() - started >= 0.3
    assert treasury.service.calls["QueryBatchStatus"] == 2
    treasury.faults.http_error(400, operation="QueryBatchStatus", times=1)
    with pytest.raises(ClientError):  # other 4xx: fatal, one attempt
        c.query_batch("B-400")
    assert treasury.service.calls["QueryBatchStatus"] == 3


def test_plain_http_only_to_loopback(archive: Archive) -> None:
    with pytest.raises(ConfigurationError, match="plain http"):
        TreasuryClient(endpoint="http://treasury.example.com/soap", username_token=None, archive=archive)
    with pytest.raises(ConfigurationError, match="WSDL over plain http"):
        SoapClient(SoapConfig(system="t", wsdl="http://treasury.example.com/x?wsdl"), archive=archive)


def test_tls_verified_against_pinned_ca(
    tmp_path: Path, archive: Archive, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox.rest_tls import make_sandbox_tls

    # the environment must not replace the configured CA bundle (requests' trust_env would)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "elsewhere.pem"))

    tls = make_sandbox_tls(tmp_path / "tls")
    with start_treasury_sandbox(
        password=PASSWORD, clock=clock, tick=None, tls=(tls.cert_file, tls.key_file)
    ) as sb:
        assert sb.url.startswith("https://127.0.0.1:")
        token = UsernameTokenConfig("cvhub", PASSWORD)
        untrusting = TreasuryClient(endpoint=sb.url, username_token=token, archive=archive, clock=clock)
        with pytest.raises(FatalError, match="TLS verification failed") as e:
            untrusting.query_batch("B-TLS")
        assert not e.value.retriable
        assert sb.service.calls == {}  # refused in the handshake: nothing reached the service
        trusting = TreasuryClient(
            endpoint=sb.url, username_token=token, archive=archive, clock=clock, ca_bundle=tls.ca_file
        )
        with pytest.raises(NotFound):  # TLS verified against the pinned CA, then answered
            trusting.query_batch("B-TLS")
