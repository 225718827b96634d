"""The hostile-answer corpus: every misbehaving server ends in one specific connector error, in time.

Each case is a real server on loopback (``tests/connectors/hostile.py``: a few lines of
``http.server``, a raw TCP drip, or the SFTP sandbox's latency fault) driven through the public
clients. Each asserts the exact error class, that the message names the call (system, operation,
ref) and that the call ended within its bound (the call's deadline plus scheduling slack for the
deadline cases; at once for the others). No ``RecursionError``, ``UnicodeDecodeError`` or
``ValueError`` may escape. The corpus and its outcomes are listed in docs/connectors.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.archive import Archive
from connectors.errors import (
    ConnectionDropped,
    ConnectorError,
    DeadlineExceeded,
    OutcomeUnknown,
    PaginationLimit,
    ServerError,
    ValidationFailed,
)
from connectors.rest import HmacSigner, RestClient, RestConfig
from connectors.soap import SoapClient, SoapConfig
from connectors.treasury.client import BINDING, WSDL
from tests.connectors import hostile

DEADLINE = 1.0
SLACK = 1.5  # scheduling on a shared 2-core machine; the deadline itself is what is asserted
INSTANT = 3.0  # bound for answers refused on sight (no deadline involved)


@pytest.fixture
def serve() -> Iterator[Callable[[hostile.Answer], hostile.HostileHttp]]:
    servers: list[hostile.HostileHttp] = []

    def start(answer: hostile.Answer) -> hostile.HostileHttp:
        srv = hostile.HostileHttp(answer)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.close()


def rest_client(url: str, tmp_path: Path, **kw: Any) -> RestClient:
    settings: dict[str, Any] = dict(system="hostile", base_url=url, connect_timeout=2, read_timeout=5,
                                    max_attempts=1, deadline=DEADLINE, max_response_bytes=1 << 20)
    settings.update(kw)
    return RestClient(RestConfig(**settings), archive=Archive(tmp_path / "archive"))


def timed(call: Callable[[], object]) -> tuple[BaseException, float]:
    started = time.monotonic()
    try:
        call()
    except BaseException as e:
        return e, time.monotonic() - started
    raise AssertionError("the hostile server's answer was accepted")


@dataclass(frozen=True)
class Case:
    name: str
    answer: Callable[[], hostile.Answer]
    get: type[ConnectorError]
    post: type[ConnectorError]
    words: str                 # in the message
    deadline: bool = False     # ended by the deadline (bound = deadline + slack) or refused at once


REST_CASES = [
    Case("drip body", hostile.drip_body, DeadlineExceeded, OutcomeUnknown, "deadline", deadline=True),
    Case("drip headers", hostile.drip_headers, DeadlineExceeded, OutcomeUnknown, "deadline", deadline=True),
    Case("deep JSON", hostile.deep_json, ValidationFailed, OutcomeUnknown, "nested deeper than 64"),
    Case("huge JSON", hostile.huge_json, ValidationFailed, OutcomeUnknown, "larger than"),
    Case("huge header", hostile.huge_header, ValidationFailed, OutcomeUnknown, "headers refused"),
    Case("too many headers", hostile.many_headers, ValidationFailed, OutcomeUnknown, "headers refused"),
    Case("wrong content type", hostile.wrong_content_type, ValidationFailed, OutcomeUnknown,
         "'application/xml' is not JSON"),
    Case("200 HTML error page", hostile.html_error_page, ValidationFailed, OutcomeUnknown,
         "'text/html' is not JSON"),
    Case("truncated body", hostile.truncated, ConnectionDropped, OutcomeUnknown, "cut off|dropped"),
    Case("invalid UTF-8", hostile.invalid_utf8, ValidationFailed, OutcomeUnknown, "not valid utf-8 at byte"),
    Case("duplicate keys", hostile.duplicate_keys, ValidationFailed, OutcomeUnknown,
         "duplicate key 'amount'"),
    Case("NaN", hostile.nan_number, ValidationFailed, OutcomeUnknown, "NaN is not a JSON number"),
    Case("deep JSON error body", hostile.deep_error_body, ServerError, ServerError, "HTTP 500"),
]


def _check(err: BaseException, elapsed: float, expected: type[ConnectorError], words: str,
           deadline: bool, ref: str) -> None:
    import re

    assert type(err) is expected, f"{type(err).__name__}: {err}"
    assert isinstance(err, ConnectorError)
    assert f"hostile.{err.operation} [{ref}]" in str(err)
    assert re.search(words, str(err)), str(err)
    bound = DEADLINE + SLACK if deadline else INSTANT
    assert elapsed < bound, f"took {elapsed:.2f}s, bound {bound}s"
    if deadline:
        assert elapsed >= DEADLINE * 0.9  # it was the deadline, not something earlier
        assert getattr(err, "deadline", None) == DEADLINE


@pytest.mark.parametrize("case", REST_CASES, ids=[c.name for c in REST_CASES])
def test_rest_get_ends_in_a_specific_error(case: Case, serve: Any, tmp_path: Path) -> None:
    srv = serve(case.answer())
    client = rest_client(srv.url, tmp_path)
    err, elapsed = timed(lambda: client.get("/api/things", operation="list_things", ref="S-1"))
    _check(err, elapsed, case.get, case.words, case.deadline, "S-1")
    if isinstance(err, DeadlineExceeded | ValidationFailed):
        assert err.retriable is isinstance(err, DeadlineExceeded)


@pytest.mark.parametrize("case", REST_CASES, ids=[c.name for c in REST_CASES])
def test_rest_post_ends_in_unknown_outcome_or_a_specific_error(case: Case, serve: Any,
                                                               tmp_path: Path) -> None:
    srv = serve(case.answer())
    client = rest_client(srv.url, tmp_path)
    err, elapsed = timed(lambda: client.post("/api/things", {"serial": "S-2"}, operation="submit_thing",
                                             ref="S-2", idempotency_key="S-2"))
    _check(err, elapsed, case.post, case.words if case.post is not OutcomeUnknown or case.deadline
           else "query by serial", case.deadline, "S-2")
    assert srv.requests == 1  # never resent blindly


def test_deadline_bounds_the_retries_too(serve: Any, tmp_path: Path) -> None:
    """Retries and backoff count against the same deadline: 5 attempts of a drip end at 1 s."""
    srv = serve(hostile.drip_body())
    client = rest_client(srv.url, tmp_path, max_attempts=5, backoff_initial=0.01, backoff_max=0.02)
    err, elapsed = timed(lambda: client.get("/x", operation="list_things", ref="S-3"))
    _check(err, elapsed, DeadlineExceeded, "deadline", True, "S-3")
    assert srv.requests == 1


def test_endless_cursor_stops_at_the_page_bound_and_keeps_the_cursor(serve: Any, tmp_path: Path) -> None:
    from connectors.srm.client import SrmClient

    srv = serve(hostile.endless_cursor(per_page=2))
    srm = SrmClient(RestConfig(system="srm", base_url=srv.url, max_pages=5, deadline=DEADLINE),
                    archive=Archive(tmp_path / "a"))
    pages = []
    started = time.monotonic()
    with pytest.raises(PaginationLimit) as info:
        for page in srm.iter_pages():
            pages.append(page)
    assert time.monotonic() - started < INSTANT
    assert [p.cursor for p in pages] == ["c1", "c2", "c3", "c4", "c5"]  # every page delivered is kept
    assert info.value.pages == 5 and info.value.records == 10 and info.value.cursor == "c5"
    assert info.value.retriable and "max_pages=5" in str(info.value)
    assert srv.requests == 5


def test_endless_cursor_stops_at_the_record_bound(serve: Any, tmp_path: Path) -> None:
    from connectors.srm.client import SrmClient

    srv = serve(hostile.endless_cursor(per_page=3))
    srm = SrmClient(RestConfig(system="srm", base_url=srv.url, max_records=7),
                    archive=Archive(tmp_path / "a"))
    pages = []
    with pytest.raises(PaginationLimit) as info:
        pages.extend(srm.iter_pages())
    assert len(pages) == 3 and info.value.records == 9  # stops at the first page boundary past 7


def test_a_cursor_that_is_not_a_string_is_refused(serve: Any, tmp_path: Path) -> None:
    srv = serve(hostile.bad_cursor())
    err, _ = timed(lambda: list(rest_client(srv.url, tmp_path).paginate("/x", operation="list_things")))
    assert type(err) is ValidationFailed and "not a usable cursor" in str(err)


def test_srm_listing_with_deep_json_is_a_validation_error(serve: Any, tmp_path: Path) -> None:
    from connectors.srm.client import SrmClient

    srv = serve(hostile.deep_json())
    srm = SrmClient(RestConfig(system="srm", base_url=srv.url, max_attempts=1),
                    archive=Archive(tmp_path / "a"))
    with pytest.raises(ValidationFailed, match="nested deeper"):
        list(srm.iter_pages())


def test_bank_b_submit_through_a_drip_queries_before_any_resend(serve: Any, tmp_path: Path) -> None:
    """The POST's deadline passes (outcome unknown), the client queries by serial (that GET's deadline
    passes too): a retriable DeadlineExceeded on the query, and the financing was never resent."""
    from datetime import date

    from connectors.bank_b.client import BankBClient, FinancingApplication

    srv = serve(hostile.drip_body())
    bank = BankBClient(RestConfig(system="bank_b", base_url=srv.url, max_attempts=1, deadline=DEADLINE,
                                  signer=HmacSigner("k1", "s3cret")), archive=Archive(tmp_path / "a"))
    app = FinancingApplication("CVF-1", "V1", "P1", "91110000000000000X", "x", "6222", "102100099996",
                               100_00, "CNY", date(2027, 3, 1), "R1")
    err, elapsed = timed(lambda: bank.submit_financing(app))
    assert type(err) is DeadlineExceeded and err.operation == "query_application" and err.ref == "CVF-1"
    assert elapsed < 2 * DEADLINE + SLACK
    assert srv.requests == 2  # the POST once, then the query; no resend


# --- SOAP -----------------------------------------------------------------------------------------

ENV = b'<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
END = b"</s:Body></s:Envelope>"

SOAP_CASES = [
    Case("drip", hostile.drip_xml, DeadlineExceeded, OutcomeUnknown, "deadline", deadline=True),
    Case("drip headers", hostile.drip_headers, DeadlineExceeded, OutcomeUnknown, "deadline", deadline=True),
    Case("DOCTYPE", lambda: hostile.xml(b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x "y">]>' + ENV[21:]
                                         + b"&x;" + END),
         ValidationFailed, OutcomeUnknown, "DTD|Entit|DOCTYPE"),
    Case("200 HTML error page", hostile.html_error_page, ValidationFailed, OutcomeUnknown,
         "'text/html' is not XML"),
    Case("deep XML", lambda: hostile.xml(ENV + b"<a>" * 5000 + b"</a>" * 5000 + END),
         ValidationFailed, OutcomeUnknown, "refused"),
    Case("invalid UTF-8", lambda: hostile.xml(ENV + b"<a>\xff\xfe</a>" + END), ValidationFailed,
         OutcomeUnknown, "refused"),
    Case("truncated", lambda: hostile.truncated(actual=ENV), ConnectionDropped, OutcomeUnknown,
         "connection|dropped"),
    Case("huge header", hostile.huge_header, ValidationFailed, OutcomeUnknown, "headers refused"),
    Case("not a SOAP envelope", lambda: hostile.xml(b"<html><body>maintenance</body></html>"),
         ValidationFailed, OutcomeUnknown, "refused"),
]


def soap_client(url: str, tmp_path: Path) -> SoapClient:
    config = SoapConfig(system="hostile", wsdl=str(WSDL), endpoint=url + "/soap", binding=BINDING,
                        read_timeout=5, retries=0, deadline=DEADLINE)
    return SoapClient(config, archive=Archive(tmp_path / "a"))


@pytest.mark.parametrize("case", SOAP_CASES, ids=[c.name for c in SOAP_CASES])
@pytest.mark.parametrize("state_changing", [False, True], ids=["query", "state-changing"])
def test_soap_call_ends_in_a_specific_error(case: Case, state_changing: bool, serve: Any,
                                            tmp_path: Path) -> None:
    srv = serve(case.answer())
    client = soap_client(srv.url, tmp_path)
    err, elapsed = timed(lambda: client.call("QueryBatchStatus", ref="B-1", state_changing=state_changing,
                                             BatchSerial="B-1"))
    expected = case.post if state_changing else case.get
    words = case.words if expected is not OutcomeUnknown or case.deadline else "query by serial"
    _check(err, elapsed, expected, words, case.deadline, "B-1")
    assert srv.requests == 1


# --- SFTP -----------------------------------------------------------------------------------------


def test_sftp_banner_drip_ends_at_the_connect_deadline(tmp_path: Path) -> None:
    """A server that sends its SSH banner a byte at a time (each read in time, the banner never done)."""
    from connectors.sftp import SftpClient, SftpSettings
    from sandbox.sftp_server import generate_ed25519_key

    pem, pub = generate_ed25519_key()
    drip = hostile.DripTcp(b"SSH-2.0-", every=0.05)
    try:
        settings = SftpSettings(system="hostile", host="127.0.0.1", port=drip.port, username="u",
                                private_key=pem, host_keys=(pub,), connect_timeout=5, auth_timeout=5,
                                op_timeout=5, deadline=DEADLINE)
        err, elapsed = timed(lambda: SftpClient(settings).connect())
    finally:
        drip.close()
    assert type(err) is DeadlineExceeded and err.retriable, f"{type(err).__name__}: {err}"
    assert "hostile.connect [127.0.0.1:" in str(err) and "deadline of 1s" in str(err)
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + SLACK


def test_sftp_slowloris_reads_end_at_the_operation_deadline(sftp_sandbox: Any, sandbox_settings: Any,
                                                            tmp_path: Path) -> None:
    """The sandbox answers every read request in 0.2 s (well within op_timeout) and 1 KiB at a
    time: the 64 KiB download would take 13 s; its deadline ends it, the claim is released without
    using up an attempt, and the next run (server healthy again) fetches the file."""
    from connectors.sftp import SftpClient
    from connectors.sftp_record import ProcessedFiles

    sftp_sandbox.box.put_file("in", "slow.csv", b"x" * 65536)
    record = ProcessedFiles(f"sqlite:///{tmp_path / 'record.sqlite'}")
    archive = Archive(tmp_path / "archive")
    with SftpClient(sandbox_settings(deadline=DEADLINE), archive=archive, record=record) as c:
        files = c.list_complete()
        sftp_sandbox.box.faults.latency = 0.2
        sftp_sandbox.box.faults.max_read_length = 1024
        err, elapsed = timed(lambda: c.fetch_new(tmp_path / "local", lambda f: None))
    assert [f.name for f in files] == ["slow.csv"]
    assert type(err) is DeadlineExceeded and err.operation == "download" and "slow.csv" in str(err)
    assert DEADLINE * 0.9 <= elapsed < DEADLINE + SLACK + 0.4  # + the listing under latency
    assert not list((tmp_path / "local").iterdir())  # no partial file left
    sftp_sandbox.box.faults.latency = 0.0
    sftp_sandbox.box.faults.max_read_length = None
    with SftpClient(sandbox_settings(deadline=30), archive=archive, record=record) as c:
        report = c.fetch_new(tmp_path / "local", lambda f: None)
    assert [f.name for f in report.processed] == ["slow.csv"] and report.processed[0].attempt == 1
