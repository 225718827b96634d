"""SOAP second-read findings: response size limit, no redirects for POSTs, TLS verify never off silently.

Each uses a tiny raw HTTP server on loopback that misbehaves in one specific way, and the real
treasury contract.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors.archive import Archive
from connectors.errors import ConfigurationError, FatalError, OutcomeUnknown, ValidationFailed
from connectors.soap import SoapClient, SoapConfig, UsernameTokenConfig
from connectors.treasury.client import BINDING, WSDL

PASSWORD = "pw-Redirect-Target-9931"

Handler = Callable[[http.server.BaseHTTPRequestHandler, bytes], None]


class _Server:
    def __init__(self, on_post: Handler) -> None:
        self.bodies: list[bytes] = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.bodies.append(body)
                on_post(self, body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/soap"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[list[_Server]]:
    made: list[_Server] = []
    yield made
    for s in made:
        s.stop()


def _client(url: str, archive: Archive, **kw: object) -> SoapClient:
    cfg = SoapConfig(system="t", wsdl=str(WSDL), endpoint=url, binding=BINDING,
                     username_token=UsernameTokenConfig("cvhub", PASSWORD, digest=False),
                     read_timeout=5, retries=0, **kw)  # type: ignore[arg-type]
    return SoapClient(cfg, archive=archive)


def test_oversized_response_refused_without_reading_it_all(servers: list[_Server], tmp_path: Path) -> None:
    sent: list[int] = []

    def huge(h: http.server.BaseHTTPRequestHandler, _body: bytes) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/xml")
        h.end_headers()
        chunk = b"<a>" + b"x" * 65530 + b"</a>"
        try:
            for _ in range(64 * 16):  # 64 MiB if the client keeps reading
                h.wfile.write(chunk)
                sent.append(len(chunk))
        except OSError:
            pass  # the client hung up: what we want

    srv = _Server(huge)
    servers.append(srv)
    c = _client(srv.url, Archive(tmp_path / "a"), max_response_bytes=1 << 20)
    with pytest.raises(ValidationFailed, match="larger than"):
        c.call("QueryBatchStatus", ref="B1", state_changing=False, BatchSerial="B1")
    with pytest.raises(OutcomeUnknown):  # the request may have been applied: resolve by query
        c.call("QueryBatchStatus", ref="B1", state_changing=True, BatchSerial="B1")
    assert sum(sent) < 48 << 20  # the client stopped reading long before the end


def test_redirect_of_a_post_is_not_followed(servers: list[_Server], tmp_path: Path) -> None:
    """A 307 keeps the method and body: following it would hand the WS-Security password (and
    the payment) to whatever host the Location names."""
    target = _Server(lambda h, b: (h.send_response(200), h.end_headers()))
    servers.append(target)

    def redirect(h: http.server.BaseHTTPRequestHandler, _body: bytes) -> None:
        h.send_response(307)
        h.send_header("Location", target.url)
        h.send_header("Content-Length", "0")
        h.end_headers()

    origin = _Server(redirect)
    servers.append(origin)
    c = _client(origin.url, Archive(tmp_path / "a"))
    with pytest.raises((FatalError, OutcomeUnknown)):
        c.call("QueryBatchStatus", ref="B1", state_changing=False, BatchSerial="B1")
    assert len(origin.bodies) == 1
    assert target.bodies == []  # never followed


def test_tls_verification_cannot_be_turned_off_for_a_remote_host(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="verify_tls"):
        SoapClient(SoapConfig(system="t", wsdl=str(WSDL), endpoint="https://treasury.example.com/soap",
                              binding=BINDING, verify_tls=False), archive=Archive(tmp_path / "a"))
    with pytest.raises(ConfigurationError, match="verify_tls"):  # the WSDL's own address is remote
        SoapClient(SoapConfig(system="t", wsdl=str(WSDL), verify_tls=False), archive=Archive(tmp_path / "a"))
    # loopback sandboxes with self-signed certificates may switch it off, and it is logged
    c = SoapClient(SoapConfig(system="t", wsdl=str(WSDL), endpoint="https://127.0.0.1:1/soap",
                              binding=BINDING, verify_tls=False), archive=Archive(tmp_path / "a"))
    assert c.transport.session.verify is False


def test_server_quoting_the_password_in_a_fault_never_leaks(servers: list[_Server], tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """Some servers quote the offending request in a fault (or answer with garbage that zeep quotes
    in its error): with PasswordText the password would reach the SoapFault, its exception chain
    and every log line that prints it."""
    import logging
    import traceback

    from connectors.errors import SoapFault

    def quoting_fault(h: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        quoted = body.decode("utf-8").replace("<", "&lt;")
        fault = (f'<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
                 f"<s:Body><s:Fault><faultcode>s:Client</faultcode>"
                 f"<faultstring>bad request: {quoted}</faultstring>"
                 f"<detail><echo>{quoted}</echo></detail></s:Fault></s:Body></s:Envelope>").encode()
        h.send_response(500)
        h.send_header("Content-Type", "text/xml")
        h.send_header("Content-Length", str(len(fault)))
        h.end_headers()
        h.wfile.write(fault)

    def quoting_garbage(h: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        junk = b"not xml: " + body
        h.send_response(200)
        h.send_header("Content-Type", "text/xml")
        h.send_header("Content-Length", str(len(junk)))
        h.end_headers()
        h.wfile.write(junk)

    caplog.set_level(logging.DEBUG)
    for handler, expected in ((quoting_fault, SoapFault), (quoting_garbage, ValidationFailed)):
        srv = _Server(handler)
        servers.append(srv)
        c = _client(srv.url, Archive(tmp_path / "a"))
        with pytest.raises(expected) as ei:
            c.call("QueryBatchStatus", ref="B1", state_changing=False, BatchSerial="B1")
        assert PASSWORD in srv.bodies[0].decode()  # PasswordText really travelled (the premise)
        err = ei.value
        logging.getLogger("cvhub.test").exception("call failed", exc_info=err)
        texts = ["".join(traceback.format_exception(err)), repr(err), str(getattr(err, "detail", ""))]
        assert not any(PASSWORD in t for t in texts), expected.__name__
    assert PASSWORD not in caplog.text
    stored = [f.read_bytes() for f in (tmp_path / "a").rglob("*") if f.is_file()]
    assert stored and not any(PASSWORD.encode() in b for b in stored)  # the archive neither
