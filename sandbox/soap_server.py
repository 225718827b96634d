"""A small real SOAP 1.1 server for sandboxes: serves a WSDL, validates, dispatches, injects faults.

It runs a stdlib ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive) on 127.0.0.1 in a background
thread. Every POST is parsed with a hardened parser (no DTD, no entities, no network, size limit),
its WS-Security header checked (UsernameToken digest or text, timestamp freshness, nonce replay,
optionally an X.509 signature), the Body payload validated against the service's XSD, and the
payload handed to a Python handler per operation. Invalid requests get SOAP faults; ``GET ?wsdl``
returns a self-contained WSDL (schema inlined, address rewritten to this server).

``FaultInjector`` switches on realistic failures, per operation and for the next N calls:
latency (before or after the handler ran), HTTP 5xx without a fault, SOAP faults, dropped
connections (before or *after* applying the request: the unknown-outcome case), duplicate
delivery (the handler runs twice), and a malicious answer carrying a DOCTYPE/entity.

It must never be exposed beyond loopback, and never import airflow or connectors.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lxml import etree

from canonical.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
MAX_BODY = 20 * 1024 * 1024

Handler = Callable[[etree._Element], etree._Element]
Reply = tuple[int, bytes, dict[str, str]]


def hardened_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def parse_hardened(data: bytes) -> etree._Element:
    """Parse untrusted XML: no DTD at all (a DOCTYPE is refused), no entities, no network."""
    root = etree.fromstring(data, parser=hardened_parser())
    if root.getroottree().docinfo.doctype:
        raise ValueError("DOCTYPE not allowed")
    return root


class SoapFaultError(Exception):
    """Raised by handlers (and the server) to answer with a SOAP fault.

    ``code`` is the faultcode local part, e.g. ``Client.UnknownBatch`` (SOAP 1.1 dot notation);
    ``detail_code``/``detail_text`` fill the service's ErrorDetail element."""

    def __init__(self, code: str, message: str, detail_code: str | None = None,
                 detail_text: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail_code = detail_code or code.rsplit(".", maxsplit=1)[-1].upper()
        self.detail_text = detail_text or message


# --- fault injection -----------------------------------------------------------------------

@dataclass
class _Rule:
    kind: str                       # latency | http | fault | drop | duplicate | malicious
    operation: str | None
    remaining: int | None           # None: until cleared
    params: dict[str, Any] = field(default_factory=dict)


class FaultInjector:
    """Switchable failures. Each rule applies to one operation (or all) for the next ``times`` calls."""

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()

    def _add(self, kind: str, operation: str | None, times: int | None, **params: Any) -> None:
        with self._lock:
            self._rules.append(_Rule(kind, operation, times, params))

    def latency(self, seconds: float, *, operation: str | None = None, times: int | None = 1,
                after_apply: bool = True) -> None:
        """Delay the answer; ``after_apply`` delays after the handler ran (effect happened)."""
        self._add("latency", operation, times, seconds=seconds, after_apply=after_apply)

    def http_error(self, status: int = 503, *, operation: str | None = None, times: int | None = 1,
                   retry_after: float | None = None) -> None:
        """Answer with a bare HTTP error (no SOAP fault), before the handler runs; 429 and 503
        may carry ``Retry-After``."""
        self._add("http", operation, times, status=status, retry_after=retry_after)

    def soap_fault(self, code: str = "Server.Unavailable", message: str = "injected fault", *,
                   detail_code: str = "INJECTED", operation: str | None = None,
                   times: int | None = 1) -> None:
        self._add("fault", operation, times, code=code, message=message, detail_code=detail_code)

    def drop(self, *, operation: str | None = None, after_apply: bool = True, times: int | None = 1) -> None:
        """Close the connection without an answer, after (default) or before applying the request."""
        self._add("drop", operation, times, after_apply=after_apply)

    def duplicate(self, *, operation: str | None = None, times: int | None = 1) -> None:
        """A duplicate delivery: a state-changing request reaches the handler twice; a listing
        answer carries one of its records twice (the client must deliver it once)."""
        self._add("duplicate", operation, times)

    def malicious(self, *, operation: str | None = None, times: int | None = 1) -> None:
        """Answer with an envelope carrying a DOCTYPE and an internal entity."""
        self._add("malicious", operation, times)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, operation: str) -> dict[str, dict[str, Any]]:
        """The rules that fire for this call (at most one per kind), consuming their counts."""
        fired: dict[str, dict[str, Any]] = {}
        with self._lock:
            for rule in list(self._rules):
                if rule.operation not in (None, operation) or rule.kind in fired:
                    continue
                fired[rule.kind] = rule.params
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
        return fired


# --- security policy -----------------------------------------------------------------------

@dataclass
class SecurityPolicy:
    """What the server demands in wsse:Security. ``digest_policy``: "digest", "text" or "any"."""

    username: str
    password: str = field(repr=False)
    digest_policy: str = "any"
    max_skew: timedelta = timedelta(minutes=5)
    require_timestamp: bool = True
    client_cert_pem: bytes | None = None        # when set, requests must be signed by this cert
    server_key_pem: bytes | None = None         # when set (with cert), responses are signed
    server_cert_pem: bytes | None = None
    _nonces: deque[tuple[datetime, str]] = field(default_factory=deque, repr=False)
    _seen: set[str] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, envelope: etree._Element, now: datetime) -> None:
        header = envelope.find(f"{{{SOAP11_NS}}}Header")
        security = header.find(f"{{{WSSE_NS}}}Security") if header is not None else None
        if security is None:
            raise _auth("no wsse:Security header")
        ts = security.find(f"{{{WSU_NS}}}Timestamp")
        if ts is not None:
            expires = _parse_time(ts.findtext(f"{{{WSU_NS}}}Expires"))
            created_ts = _parse_time(ts.findtext(f"{{{WSU_NS}}}Created"))
            if created_ts is None or created_ts - now > self.max_skew:
                raise _auth("timestamp missing or in the future")
            if expires is not None and expires < now - self.max_skew:
                raise _auth("message expired")
        elif self.require_timestamp:
            raise _auth("no wsu:Timestamp")
        token = security.find(f"{{{WSSE_NS}}}UsernameToken")
        if token is None:
            raise _auth("no UsernameToken")
        user = token.findtext(f"{{{WSSE_NS}}}Username") or ""
        pw = token.find(f"{{{WSSE_NS}}}Password")
        if pw is None or not hmac.compare_digest(user.encode(), self.username.encode()):
            raise _auth("unknown user")
        ptype = pw.get("Type", "")
        if ptype.endswith("#PasswordDigest"):
            if self.digest_policy == "text":
                raise _auth("PasswordText required")
            nonce_b64 = token.findtext(f"{{{WSSE_NS}}}Nonce") or ""
            created = token.findtext(f"{{{WSU_NS}}}Created") or ""
            created_at = _parse_time(created)
            if created_at is None or abs(created_at - now) > self.max_skew:
                raise _auth("UsernameToken Created outside the allowed skew")
            nonce = base64.b64decode(nonce_b64)
            expected = base64.b64encode(
                hashlib.sha1(nonce + created.encode() + self.password.encode()).digest()  # noqa: S324 - WSS profile
            ).decode()
            if not hmac.compare_digest(expected.encode(), (pw.text or "").strip().encode()):
                raise _auth("bad password digest")
            self._remember_nonce(nonce_b64, now)
        elif ptype.endswith("#PasswordText"):
            if self.digest_policy == "digest":
                raise _auth("PasswordDigest required")
            if not hmac.compare_digest((pw.text or "").encode(), self.password.encode()):
                raise _auth("bad password")
        else:
            raise _auth("unsupported password type")
        if self.client_cert_pem is not None:
            self._verify_signature(envelope)

    def _remember_nonce(self, nonce: str, now: datetime) -> None:
        with self._lock:
            while self._nonces and self._nonces[0][0] < now - 2 * self.max_skew:
                self._seen.discard(self._nonces.popleft()[1])
            if nonce in self._seen:
                raise _auth("nonce replayed")
            self._seen.add(nonce)
            self._nonces.append((now, nonce))

    def _verify_signature(self, envelope: etree._Element) -> None:
        import xmlsec
        from zeep.exceptions import SignatureVerificationFailed
        from zeep.wsse.signature import _verify_envelope_with_key

        assert self.client_cert_pem is not None
        key = xmlsec.Key.from_memory(self.client_cert_pem, xmlsec.KeyFormat.CERT_PEM, None)
        try:
            _verify_envelope_with_key(envelope, key)
        except (SignatureVerificationFailed, AttributeError, IndexError) as e:
            raise _auth("signature missing or invalid") from e

    def sign(self, envelope: etree._Element) -> None:
        if self.server_key_pem is None or self.server_cert_pem is None:
            return
        from zeep.wsse.signature import _make_sign_key, _sign_envelope_with_key_binary

        key = _make_sign_key(self.server_key_pem, self.server_cert_pem, None)
        header = envelope.find(f"{{{SOAP11_NS}}}Header")
        if header is None:
            header = etree.Element(f"{{{SOAP11_NS}}}Header")
            envelope.insert(0, header)
        import xmlsec

        _sign_envelope_with_key_binary(envelope, key, xmlsec.Transform.RSA_SHA256, xmlsec.Transform.SHA256)


def _auth(msg: str) -> SoapFaultError:
    return SoapFaultError("Client.Authentication", f"authentication failed: {msg}", "AUTHENTICATION")


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


# --- the service -----------------------------------------------------------------------------

class SoapService:
    """A WSDL + XSD contract and the Python handlers implementing its operations.

    ``handlers`` maps the local name of the request element (== operation name, document/literal
    wrapped) to a function returning the response element. ``error_element`` is the QName of the
    contract's fault detail element (with ``Code`` and ``Text`` children)."""

    def __init__(self, *, name: str, wsdl_path: Path, xsd_path: Path, namespace: str,
                 handlers: Mapping[str, Handler], security: SecurityPolicy | None,
                 clock: Clock | None = None, ref_tags: tuple[str, ...] = (),
                 record_tags: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.wsdl_path = Path(wsdl_path)
        self.xsd_path = Path(xsd_path)
        self.namespace = namespace
        self.handlers = dict(handlers)
        self.security = security
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.schema = etree.XMLSchema(etree.parse(str(self.xsd_path), parser=hardened_parser()))
        self.ref_tags = ref_tags              # payload children naming the request's serial
        self.record_tags = dict(record_tags or {})  # listing operation -> its record element
        self.faults = FaultInjector()
        self.wsdl_requests = 0
        self.calls: dict[str, int] = {}
        self.journal: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget faults, counters and the request journal (not the handlers' own state)."""
        self.faults.clear()
        with self._lock:
            self.wsdl_requests = 0
            self.calls.clear()
            self.journal.clear()

    def requests(self, operation: str | None = None) -> int:
        with self._lock:
            return sum(1 for op, _ in self.journal if operation in (None, op))

    def _ref(self, payload: etree._Element | None) -> str | None:
        if payload is None:
            return None
        for tag in self.ref_tags:
            text = payload.findtext(f"{{{self.namespace}}}{tag}")
            if text:
                return text.strip()
        return None

    def wsdl_for(self, address: str) -> bytes:
        """The WSDL with the XSD inlined (clients need no second fetch) and soap:address set."""
        with self._lock:
            self.wsdl_requests += 1
        doc = etree.parse(str(self.wsdl_path), parser=hardened_parser())
        root = doc.getroot()
        types = root.find(f"{{{WSDL_NS}}}types")
        if types is not None:
            for child in list(types):
                types.remove(child)
            types.append(etree.parse(str(self.xsd_path), parser=hardened_parser()).getroot())
        for addr in root.iter(f"{{{WSDL_SOAP_NS}}}address"):
            addr.set("location", address)
        return etree.tostring(root, xml_declaration=True, encoding="utf-8")  # type: ignore[no-any-return]

    def process(self, body: bytes, conn_close: Callable[[], None]) -> Reply | None:
        """Handle one POST body; ``None`` means the connection was dropped without an answer."""
        try:
            envelope = parse_hardened(body)
        except (etree.XMLSyntaxError, ValueError) as e:
            return 500, self.fault_envelope(SoapFaultError("Client.MalformedXML", f"request refused: {e}",
                                                           "MALFORMED_XML")), {}
        payload = self._payload(envelope)
        operation = etree.QName(payload).localname if payload is not None else "?"
        with self._lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1
            self.journal.append((operation, self._ref(payload)))
        fired = self.faults.take(operation)
        lat = fired.get("latency")
        if lat and not lat["after_apply"]:
            time.sleep(lat["seconds"])
        if "http" in fired:
            h = fired["http"]
            extra = {"Retry-After": str(h["retry_after"])} if h.get("retry_after") is not None else {}
            return int(h["status"]), b"<html><body>injected HTTP error</body></html>", extra
        if "drop" in fired and not fired["drop"]["after_apply"]:
            conn_close()
            return None
        try:
            if self.security is not None:
                self.security.check(envelope, self.clock())
            if payload is None:
                raise SoapFaultError("Client.NoBody", "SOAP Body is empty", "NO_BODY")
            if payload.tag.split("}")[0].lstrip("{") != self.namespace or operation not in self.handlers:
                raise SoapFaultError("Client.UnknownOperation", f"unknown operation {payload.tag}",
                                     "UNKNOWN_OPERATION")
            standalone = copy.deepcopy(payload)
            if not self.schema.validate(standalone):
                err = self.schema.error_log.last_error
                raise SoapFaultError("Client.SchemaValidation", "request does not match the contract",
                                     "SCHEMA_VALIDATION", f"line {err.line}: {err.message}" if err else None)
            if "fault" in fired:
                f = fired["fault"]
                raise SoapFaultError(f["code"], f["message"], f["detail_code"])
            handler = self.handlers[operation]
            response = handler(standalone)
            if "duplicate" in fired:
                record_tag = self.record_tags.get(operation)
                if record_tag is None:
                    handler(copy.deepcopy(payload))  # the second delivery; its answer is lost
                else:
                    first = response.find(f"{{{self.namespace}}}{record_tag}")
                    if first is not None:
                        first.addnext(copy.deepcopy(first))  # the same record delivered twice
        except SoapFaultError as e:
            return 500, self.fault_envelope(e), {}
        except Exception as e:  # a bug in a handler: answer like a real server, with a Server fault
            log.exception("%s.%s: handler failed", self.name, operation)
            internal = SoapFaultError("Server.Internal", f"internal error: {type(e).__name__}", "INTERNAL")
            return 500, self.fault_envelope(internal), {}
        if "drop" in fired:
            conn_close()
            return None
        if lat and lat["after_apply"]:
            time.sleep(lat["seconds"])
        if "malicious" in fired:
            return 200, self._malicious(response), {}
        return 200, self.envelope(response), {}

    @staticmethod
    def _payload(envelope: etree._Element) -> etree._Element | None:
        if envelope.tag != f"{{{SOAP11_NS}}}Envelope":
            return None
        body = envelope.find(f"{{{SOAP11_NS}}}Body")
        if body is None:
            return None
        return next((c for c in body if isinstance(c.tag, str)), None)

    def envelope(self, payload: etree._Element) -> bytes:
        env = etree.Element(f"{{{SOAP11_NS}}}Envelope", nsmap={"soap": SOAP11_NS})
        etree.SubElement(env, f"{{{SOAP11_NS}}}Header")
        body = etree.SubElement(env, f"{{{SOAP11_NS}}}Body")
        body.append(payload)
        if self.security is not None and self.security.server_key_pem is not None:
            self.security.sign(env)
        return etree.tostring(env, xml_declaration=True, encoding="utf-8")  # type: ignore[no-any-return]

    def fault_envelope(self, e: SoapFaultError) -> bytes:
        env = etree.Element(f"{{{SOAP11_NS}}}Envelope", nsmap={"soap": SOAP11_NS})
        etree.SubElement(env, f"{{{SOAP11_NS}}}Header")
        body = etree.SubElement(env, f"{{{SOAP11_NS}}}Body")
        fault = etree.SubElement(body, f"{{{SOAP11_NS}}}Fault")
        etree.SubElement(fault, "faultcode").text = f"soap:{e.code}"
        etree.SubElement(fault, "faultstring").text = e.message
        detail = etree.SubElement(fault, "detail")
        err = etree.SubElement(detail, f"{{{self.namespace}}}ErrorDetail", nsmap={"t": self.namespace})
        etree.SubElement(err, f"{{{self.namespace}}}Code").text = e.detail_code
        etree.SubElement(err, f"{{{self.namespace}}}Text").text = e.detail_text
        if self.security is not None and self.security.server_key_pem is not None:
            self.security.sign(env)
        return etree.tostring(env, xml_declaration=True, encoding="utf-8")  # type: ignore[no-any-return]

    def _malicious(self, payload: etree._Element) -> bytes:
        inner = self.envelope(payload).split(b"?>", 1)[1]
        return (b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY boom "boom">]>' + inner)


# --- the HTTP server ---------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body leave in two writes: with Nagle on, the client's delayed ACK adds ~40 ms
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None,
               ctype: str = "text/xml; charset=utf-8") -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        service = self.server.services.get(path)
        if service is None or query.lower() != "wsdl":
            self._reply(404, b"not found", ctype="text/plain")
            return
        self._reply(200, service.wsdl_for(f"{self.server.base_url}{path}"), ctype="text/xml; charset=utf-8")

    def do_POST(self) -> None:
        service = self.server.services.get(self.path.partition("?")[0])
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._reply(413, b"too large", ctype="text/plain")
            return
        body = self.rfile.read(length)
        if service is None:
            self._reply(404, b"not found", ctype="text/plain")
            return

        def close() -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        result = service.process(body, close)
        if result is None:
            return
        self._reply(*result)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, host: str, port: int, services: dict[str, SoapService],
                 tls: tuple[Path, Path] | None = None) -> None:
        super().__init__((host, port), _Handler)
        self.services = services
        scheme = "http"
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.socket = ctx.wrap_socket(self.socket, server_side=True)
            scheme = "https"
        self.base_url = f"{scheme}://{host}:{self.server_address[1]}"


class SoapServer:
    """Serve ``{path: SoapService}`` on 127.0.0.1:<port> (0 = ephemeral) in a daemon thread."""

    def __init__(self, services: dict[str, SoapService], *, host: str = "127.0.0.1", port: int = 0,
                 tls: tuple[Path, Path] | None = None) -> None:
        """``tls``: (certificate, private key) files to serve https (e.g. ``sandbox.rest_tls``)."""
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("sandbox SOAP servers listen on loopback only")
        self._server = _Server(host, port, services, tls)
        self._thread = threading.Thread(target=self._server.serve_forever, name="soap-sandbox",
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return self._server.base_url

    def url(self, path: str) -> str:
        return f"{self._server.base_url}{path}"

    def start(self) -> SoapServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SoapServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
