"""SOAP transport (zeep): contract-first clients with hardened XML, WS-Security and an archive.

What it does:
- loads a WSDL (normally the contract packaged next to a connector) with zeep ``Settings`` that
  forbid DTDs, entities and external fetches, strict parsing and no huge trees — all set
  explicitly, because zeep's defaults changed between versions (4.3.3 allows DTDs and external
  fetches by default);
- parses each WSDL once per process (keyed by location and, for files, content hash) and shares
  the parsed ``Document`` between clients;
- sends every call through a ``requests`` session with connect/read timeouts and TLS verification
  on (optionally a private CA bundle), under a total ``deadline`` per call (connect + send + the
  whole answer, retries included) enforced by a watchdog (``connectors.deadline``): past it a safe
  call raises ``DeadlineExceeded``, a state-changing one that was sent ``OutcomeUnknown``;
- refuses plain ``http://`` except to loopback sandboxes, and a 2xx answer whose declared content
  type is not XML (an HTML error page behind a proxy) before zeep parses it;
- adds WS-Security: UsernameToken (PasswordDigest or PasswordText) with ``wsu:Timestamp`` from an
  injectable clock, and optionally an X.509 BinarySecurityToken signature (needs ``xmlsec``);
- archives every request and response raw with its SHA-256 *before* processing, with the
  UsernameToken password, digest and nonce redacted;
- maps failures onto ``connectors.errors``: SOAP faults -> ``SoapFault(code, detail)``; HTTP 5xx,
  connect failures and read timeouts of safe calls -> retriable; a read timeout, dropped connection
  or unreadable answer after a *state-changing* request was sent -> ``OutcomeUnknown``; any other
  failure of a hostile answer (DOCTYPE, entities, depth, bad encoding, truncation, huge headers)
  -> ``ValidationFailed`` (safe call) / ``OutcomeUnknown`` (state-changing): nothing else escapes.

What it must never do: log or archive a secret, resend a state-changing request whose outcome is
unknown (callers resolve by query first), fetch anything while parsing a contract, or import
airflow.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.helpers import serialize_object
from zeep.wsdl import Document
from zeep.wsse import utils as wsse_utils

from canonical.clock import SYSTEM_CLOCK, Clock
from connectors.archive import Archive
from connectors.deadline import Deadline, HttpCallGuard, guard_session, http_call
from connectors.errors import (
    ClientError,
    ConfigurationError,
    ConnectionDropped,
    ConnectorError,
    ConnectorTimeout,
    DeadlineExceeded,
    FatalError,
    OutcomeUnknown,
    RateLimited,
    RetriableError,
    ServerError,
    SoapFault,
    ValidationFailed,
)
from connectors.rest import header_problem, is_loopback_host

log = logging.getLogger(__name__)

NonceSource = Callable[[], bytes]
_Applied = tuple[etree._Element, dict[str, str]]

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
UT_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
SOAP_MSG_SECURITY = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"


#: Media types a SOAP answer may declare (SOAP 1.1, 1.2, plain XML, MTOM/XOP).
XML_MEDIA_TYPES = frozenset({"text/xml", "application/xml", "application/soap+xml", "multipart/related"})


def secure_settings() -> zeep.Settings:
    """zeep settings for every cvhub client and contract load; each flag set explicitly."""
    return zeep.Settings(
        strict=True,
        raw_response=False,
        force_https=True,
        xml_huge_tree=False,
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )


# --- configuration ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class UsernameTokenConfig:
    """WS-Security UsernameToken. ``digest`` selects PasswordDigest (SHA-1 over nonce, created and
    password; the password never travels) instead of PasswordText (only over TLS).
    ``timestamp_ttl`` adds a wsu:Timestamp valid for that many seconds (None: no timestamp)."""

    username: str
    password: str = field(repr=False)
    digest: bool = True
    timestamp_ttl: int | None = 300


@dataclass(frozen=True, slots=True)
class SignatureConfig:
    """X.509 signature of Body and Timestamp (BinarySecurityToken profile; needs ``xmlsec``).
    ``server_cert_file``: when given, every response must carry a valid signature by that cert."""

    key_file: Path
    cert_file: Path
    key_password: str | None = field(default=None, repr=False)
    server_cert_file: Path | None = None
    algorithm: str = "rsa-sha256"           # or "rsa-sha1" for a bank that still wants it


@dataclass(frozen=True, slots=True)
class SoapConfig:
    """Everything a SOAP client needs; validated by ``validate()`` when a client is built."""

    system: str
    wsdl: str                               # packaged contract path (normal) or URL
    endpoint: str | None = None             # overrides the WSDL's soap:address
    binding: str | None = None              # "{ns}Name" of the binding, needed with ``endpoint``
    username_token: UsernameTokenConfig | None = None
    signature: SignatureConfig | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    wsdl_timeout: float = 30.0
    verify_tls: bool = True
    ca_bundle: Path | None = None
    retries: int = 2                        # extra attempts for retriable failures of safe calls
    backoff: float = 0.2                    # seconds, doubled per attempt
    max_retry_after: float = 60.0           # cap on a server's Retry-After we are willing to wait
    max_response_bytes: int = 32 * 1024 * 1024  # larger answers (and WSDL/XSD downloads) are refused
    deadline: float = 120.0                 # seconds one call may take in all (attempts + backoff)

    def validate(self) -> None:
        def bad(msg: str) -> ConfigurationError:
            return ConfigurationError(msg, system=self.system or "?", operation="configure")

        if not self.system:
            raise bad("system name is required")
        if not self.wsdl:
            raise bad("wsdl location is required")
        if self.endpoint is not None:
            if not re.match(r"^https?://", self.endpoint):
                raise bad(f"endpoint must be an http(s) URL, got {self.endpoint!r}")
            host = urlsplit(self.endpoint).hostname or ""
            if self.endpoint.startswith("http://") and not is_loopback_host(host):
                raise bad(f"plain http to {host!r}: use https (plain http is for loopback sandboxes only)")
            if not self.binding:
                raise bad("binding is required when endpoint overrides the WSDL address")
        if re.match(r"^http://", self.wsdl) and not is_loopback_host(urlsplit(self.wsdl).hostname or ""):
            raise bad("WSDL over plain http from a remote host: use the packaged contract or https")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise bad("timeouts must be positive")
        if not self.deadline > 0:
            raise bad("deadline must be positive (every call has a total deadline)")
        if not self.verify_tls and self.ca_bundle is not None:
            raise bad("ca_bundle given but verify_tls is off")
        if not self.verify_tls:
            # never silently: only a loopback sandbox (self-signed certificate) may do without
            hosts = [urlsplit(self.endpoint).hostname or ""] if self.endpoint else []
            if re.match(r"^https?://", self.wsdl):
                hosts.append(urlsplit(self.wsdl).hostname or "")
            if not hosts or any(not is_loopback_host(h) for h in hosts):
                raise bad("verify_tls=False is only allowed for loopback sandboxes; give ca_bundle for a "
                          "private CA")
        if self.max_response_bytes <= 0:
            raise bad("max_response_bytes must be positive")
        if self.ca_bundle is not None and not Path(self.ca_bundle).is_file():
            raise bad(f"ca_bundle {self.ca_bundle} does not exist")
        if self.username_token and not self.username_token.username:
            raise bad("username_token.username is empty")
        if self.signature:
            for p in (self.signature.key_file, self.signature.cert_file):
                if not Path(p).is_file():
                    raise bad(f"signature file {p} does not exist")
        if self.retries < 0:
            raise bad("retries must be >= 0")


# --- redaction -------------------------------------------------------------------------------

_SECRET_ELEMENTS = re.compile(
    rb"(<(?:[A-Za-z_][\w.-]*:)?(Password|Nonce)\b[^>]*>)(.*?)(</(?:[A-Za-z_][\w.-]*:)?\2\s*>)", re.S
)
REDACTED = b"***REDACTED***"


def redact_wsse(data: bytes) -> bytes:
    """Blank the text of every Password and Nonce element (UsernameToken secrets) in raw XML."""
    return _SECRET_ELEMENTS.sub(lambda m: m.group(1) + REDACTED + m.group(4), data)


# --- WSDL cache -------------------------------------------------------------------------------

@dataclass(slots=True)
class WsdlCacheStats:
    loads: int = 0
    hits: int = 0
    last_load_seconds: float = 0.0


_WSDL_CACHE: dict[tuple[str, str], Document] = {}
_WSDL_LOCK = threading.Lock()
WSDL_STATS = WsdlCacheStats()


def _cache_key(location: str) -> tuple[str, str]:
    if re.match(r"^https?://", location):
        return (location, "")
    path = Path(location).resolve()
    # a changed contract file (new deployment) is a new key, not a stale hit
    return (str(path), hashlib.sha256(path.read_bytes()).hexdigest())


def load_wsdl(location: str, transport: zeep.Transport, *, system: str = "soap") -> Document:
    """The parsed WSDL ``Document`` for ``location``, parsed at most once per process."""
    try:
        key = _cache_key(location)
    except OSError as e:
        raise ConfigurationError(f"WSDL {location} unreadable: {e}", system=system,
                                 operation="load_wsdl") from e
    with _WSDL_LOCK:
        doc = _WSDL_CACHE.get(key)
        if doc is not None:
            WSDL_STATS.hits += 1
            return doc
        started = time.perf_counter()
        try:
            doc = Document(location, transport, settings=secure_settings())
        except (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden,
                zeep.exceptions.ExternalReferenceForbidden, zeep.exceptions.XMLSyntaxError) as e:
            raise ValidationFailed(f"WSDL {location} refused: {type(e).__name__}: {e}",
                                   system=system, operation="load_wsdl") from e
        except requests.RequestException as e:
            raise ConnectionDropped(f"WSDL {location} could not be fetched: {type(e).__name__}",
                                    system=system, operation="load_wsdl") from e
        WSDL_STATS.loads += 1
        WSDL_STATS.last_load_seconds = time.perf_counter() - started
        _WSDL_CACHE[key] = doc
        return doc


def clear_wsdl_cache() -> None:
    """Forget parsed WSDLs (benchmarks measure a cold load with it; production never needs it)."""
    with _WSDL_LOCK:
        _WSDL_CACHE.clear()
        WSDL_STATS.loads = WSDL_STATS.hits = 0


# --- WS-Security ---------------------------------------------------------------------------

def _utc_text(t: datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("WS-Security clock must return timezone-aware datetimes")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class UsernameTokenProfile:
    """Adds wsu:Timestamp and wsse:UsernameToken to each envelope, timed by ``clock``."""

    def __init__(self, cfg: UsernameTokenConfig, clock: Clock, nonce: NonceSource) -> None:
        self.cfg = cfg
        self.clock = clock
        self.nonce = nonce

    def apply(self, envelope: etree._Element, headers: dict[str, str]) -> _Applied:
        security = wsse_utils.get_security_header(envelope)
        now = self.clock()
        created = _utc_text(now)
        if self.cfg.timestamp_ttl is not None:
            ts = wsse_utils.WSU.Timestamp(
                wsse_utils.WSU.Created(created),
                wsse_utils.WSU.Expires(_utc_text(now + timedelta(seconds=self.cfg.timestamp_ttl))),
            )
            ts.set(f"{{{WSU_NS}}}Id", f"TS-{uuid.uuid4().hex}")
            security.insert(0, ts)
        token = wsse_utils.WSSE.UsernameToken(wsse_utils.WSSE.Username(self.cfg.username))
        if self.cfg.digest:
            nonce = self.nonce()
            digest = base64.b64encode(
                hashlib.sha1(nonce + created.encode() + self.cfg.password.encode()).digest()  # noqa: S324 - WSS UsernameToken profile mandates SHA-1
            ).decode()
            token.append(wsse_utils.WSSE.Password(digest, Type=f"{UT_PROFILE}#PasswordDigest"))
            token.append(wsse_utils.WSSE.Nonce(base64.b64encode(nonce).decode(),
                                               EncodingType=f"{SOAP_MSG_SECURITY}#Base64Binary"))
            token.append(wsse_utils.WSU.Created(created))
        else:
            token.append(wsse_utils.WSSE.Password(self.cfg.password, Type=f"{UT_PROFILE}#PasswordText"))
        security.append(token)
        return envelope, headers

    def verify(self, envelope: etree._Element) -> etree._Element:
        return envelope


class SignatureProfile:
    """BinarySecurityToken signature of Body and Timestamp (zeep + xmlsec); verifies responses
    against the pinned server certificate when one is configured."""

    def __init__(self, cfg: SignatureConfig) -> None:
        import xmlsec
        from zeep.wsse.signature import BinarySignature, _make_verify_key

        methods = {"rsa-sha256": (xmlsec.Transform.RSA_SHA256, xmlsec.Transform.SHA256),
                   "rsa-sha1": (xmlsec.Transform.RSA_SHA1, xmlsec.Transform.SHA1)}
        if cfg.algorithm not in methods:
            raise ValueError(f"signature algorithm {cfg.algorithm!r} not supported ({sorted(methods)})")
        sig_method, digest_method = methods[cfg.algorithm]
        self._signer = BinarySignature(str(cfg.key_file), str(cfg.cert_file), cfg.key_password,
                                       signature_method=sig_method, digest_method=digest_method)
        self._server_key = (
            _make_verify_key(Path(cfg.server_cert_file).read_bytes()) if cfg.server_cert_file else None
        )

    def apply(self, envelope: etree._Element, headers: dict[str, str]) -> _Applied:
        return self._signer.apply(envelope, headers)  # type: ignore[no-any-return]

    def verify(self, envelope: etree._Element) -> etree._Element:
        if self._server_key is not None:
            from zeep.wsse.signature import _verify_envelope_with_key

            _verify_envelope_with_key(envelope, self._server_key)
        return envelope


class _ComposedSecurity:
    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts

    def apply(self, envelope: etree._Element, headers: dict[str, str]) -> _Applied:
        for p in self.parts:
            envelope, headers = p.apply(envelope, headers)
        return envelope, headers

    def verify(self, envelope: etree._Element) -> etree._Element:
        for p in self.parts:
            p.verify(envelope)
        return envelope


# --- transport ---------------------------------------------------------------------------

@dataclass(slots=True)
class _CallContext:
    operation: str
    ref: str | None
    sent: bool = False
    state_changing: bool = False
    request_sha256: str | None = None
    response_sha256: str | None = None
    http_status: int | None = None
    retry_after: str | None = None
    deadline: Deadline | None = None
    posted: bool = False  # the transport got the envelope (it was built and is about to leave)


_CALL: contextvars.ContextVar[_CallContext | None] = contextvars.ContextVar("cvhub_soap_call", default=None)


class ArchivingTransport(zeep.Transport):
    """zeep transport: timeouts on every POST, TLS verify, raw archive of both directions, and
    logging of sizes and hashes only (zeep's own transport logs whole envelopes at DEBUG)."""

    def __init__(self, *, system: str, archive: Archive | None, session: requests.Session,
                 connect_timeout: float, read_timeout: float, wsdl_timeout: float,
                 max_response_bytes: int = 32 * 1024 * 1024, secrets: tuple[str, ...] = (),
                 deadline: float = 120.0) -> None:
        super().__init__(cache=None, timeout=wsdl_timeout, operation_timeout=read_timeout, session=session)
        self.system = system
        self.archive = archive
        self.timeouts = (connect_timeout, read_timeout)
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self._secrets = tuple(x.encode() for x in secrets if x)

    def _redact(self, data: bytes) -> bytes:
        """WS-Security elements, plus every configured secret wherever it appears: a server that
        quotes our envelope in a fault quotes it escaped, out of reach of ``redact_wsse``."""
        data = redact_wsse(data)
        for secret in self._secrets:
            data = data.replace(secret, REDACTED)
        return data

    def _load_remote_data(self, url: str) -> bytes:
        """WSDL/XSD download: timeout, deadline, size limit, no redirects (zeep's own follows them)."""
        deadline = Deadline(max(self.load_timeout or self.deadline, 0.001))
        with http_call(deadline) as guard:
            with self.session.get(url, timeout=deadline.cap(self.load_timeout or self.deadline), stream=True,
                                  allow_redirects=False) as r:
                r.raise_for_status()
                if r.status_code != 200:
                    raise ValidationFailed(f"WSDL {url}: HTTP {r.status_code} (redirects are not followed)",
                                           system=self.system, operation="load_wsdl")
                data = _read_capped(r, self.max_response_bytes)
            if guard.fired.is_set():
                raise DeadlineExceeded(f"WSDL {url} not loaded within {deadline.seconds:g}s",
                                       deadline=deadline.seconds, system=self.system, operation="load_wsdl")
        if data is None:
            raise ValidationFailed(f"WSDL {url} larger than {self.max_response_bytes} bytes",
                                   system=self.system, operation="load_wsdl")
        return data

    def post(self, address: str, message: bytes | str, headers: dict[str, str]) -> requests.Response:
        body = message.encode("utf-8") if isinstance(message, str) else message
        ctx = _CALL.get() or _CallContext(operation=headers.get("SOAPAction", "?").strip('"'), ref=None)
        ctx.posted = True
        if self.archive is not None:
            item = self.archive.store(body, system=self.system, operation=ctx.operation,
                                      direction="request", ref=ctx.ref, redact=self._redact)
            ctx.request_sha256 = item.sha256
        log.debug("%s.%s [%s] POST %d bytes sha256=%s", self.system, ctx.operation, ctx.ref,
                  len(body), ctx.request_sha256)
        ctx.sent = False
        deadline = ctx.deadline or Deadline(self.deadline)
        with http_call(deadline) as guard:
            try:
                response = self._send(address, body, headers, ctx, deadline)
                ctx.http_status = response.status_code
                ctx.retry_after = response.headers.get("Retry-After")
                content = self._receive(response, ctx)
            except Exception as e:
                ctx.sent = ctx.sent or guard.sent
                if guard.fired.is_set():
                    raise self._past_deadline(ctx, guard) from e
                raise
            if guard.fired.is_set():  # cut off at the deadline: what arrived may look complete
                ctx.sent = True
                raise self._past_deadline(ctx, guard)
        if self.archive is not None:
            item = self.archive.store(content, system=self.system, operation=ctx.operation,
                                      direction="response", ref=ctx.ref, redact=self._redact,
                                      meta={"http_status": str(response.status_code)})
            ctx.response_sha256 = item.sha256
        log.debug("%s.%s [%s] HTTP %d, %d bytes sha256=%s", self.system, ctx.operation, ctx.ref,
                  response.status_code, len(content), ctx.response_sha256)
        ctype = response.headers.get("Content-Type")
        media = (ctype or "").split(";", 1)[0].strip().lower()
        if 200 <= response.status_code < 300 and ctype is not None and media not in XML_MEDIA_TYPES:
            msg = (f"HTTP {response.status_code} answer with content type {media[:60]!r} is not XML "
                   f"(sha256 {ctx.response_sha256})")
            where: dict[str, Any] = {"system": self.system, "operation": ctx.operation, "ref": ctx.ref}
            if ctx.state_changing:
                raise OutcomeUnknown(msg + "; query by serial before any resend", **where)
            raise ValidationFailed(msg, **where)
        return response

    def _past_deadline(self, ctx: _CallContext, guard: HttpCallGuard) -> ConnectorError:
        seconds = guard.deadline.seconds
        where: dict[str, Any] = {"system": self.system, "operation": ctx.operation, "ref": ctx.ref}
        if ctx.state_changing and guard.sent:
            return OutcomeUnknown(f"sent, no complete answer within the deadline of {seconds:g}s; "
                                  "query by serial before any resend", deadline=seconds, **where)
        state = "nothing sent" if not guard.sent else "no complete answer"
        return DeadlineExceeded(f"call did not finish within its deadline of {seconds:g}s ({state})",
                                deadline=seconds, **where)

    def _receive(self, response: requests.Response, ctx: _CallContext) -> bytes:
        """Read the body, at most ``max_response_bytes`` (a hostile or broken server must not
        exhaust memory); the request was sent, so a failure here leaves the outcome unknown."""
        try:
            content = _read_capped(response, self.max_response_bytes)
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as e:
            ctx.sent = True
            raise requests.ConnectionError(f"answer broken off: {type(e).__name__}") from e
        except requests.ConnectionError:
            ctx.sent = True
            raise
        finally:
            response.close()
        if content is None:
            where: dict[str, Any] = {"system": self.system, "operation": ctx.operation, "ref": ctx.ref}
            msg = (f"response larger than {self.max_response_bytes} bytes refused "
                   f"(HTTP {response.status_code})")
            log.warning("%s.%s [%s] %s", self.system, ctx.operation, ctx.ref, msg)
            if ctx.state_changing:
                raise OutcomeUnknown(msg + "; query by serial before any resend", **where)
            raise ValidationFailed(msg, **where)
        response._content = content  # what zeep parses: exactly the bytes archived below
        response._content_consumed = True
        return content

    def _send(self, address: str, body: bytes, headers: dict[str, str],
              ctx: _CallContext, deadline: Deadline) -> requests.Response:
        timeouts = (deadline.cap(self.timeouts[0]), deadline.cap(self.timeouts[1]))
        try:
            # no redirects: a 307/308 would resend the body (WS-Security password, the payment)
            # to whatever host the Location names; stream so that the size limit holds
            return self.session.post(address, data=body, headers=headers, timeout=timeouts,
                                     allow_redirects=False, stream=True)
        except requests.ConnectTimeout:
            raise  # never connected: nothing was sent
        except requests.ConnectionError as e:
            ctx.sent = not _never_connected(e)
            raise
        except requests.Timeout:
            ctx.sent = True
            raise


def _read_capped(response: requests.Response, limit: int) -> bytes | None:
    """The body of a streamed response, or None as soon as it exceeds ``limit`` bytes."""
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    total = 0
    for chunk in response.iter_content(64 * 1024):
        total += len(chunk)
        if total > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _never_connected(e: BaseException) -> bool:
    """True when the error proves the request never left (refused / DNS / connect failure)."""
    import urllib3.exceptions

    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (urllib3.exceptions.NewConnectionError, ConnectionRefusedError,
                            urllib3.exceptions.NameResolutionError)):
            return True
        if isinstance(cur, urllib3.exceptions.MaxRetryError):
            cur = cur.reason
            continue
        nxt = cur.args[0] if cur.args and isinstance(cur.args[0], BaseException) else None
        cur = cur.__cause__ or cur.__context__ or nxt
    return False


# --- client -------------------------------------------------------------------------------

def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def _seconds(value: str | None) -> float | None:
    """A Retry-After wait in seconds (a duration, never money)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff


def _local(qname: object) -> str:
    text = str(qname or "")
    if text.startswith("{"):
        text = text.split("}", 1)[1]
    return text.split(":", 1)[1] if ":" in text else text


def _fault_detail(detail: object) -> str | None:
    if not isinstance(detail, etree._Element):
        return None
    parts = [t.strip() for t in detail.itertext() if t.strip()]
    return ": ".join(parts) if parts else None


@dataclass(frozen=True, slots=True)
class SoapResult:
    """The answer of one call: the response as plain Python data plus the archive hashes."""

    data: dict[str, Any]
    request_sha256: str | None
    response_sha256: str | None


class SoapClient:
    """One configured SOAP endpoint. Thread-safe for calls (one requests session, pooled)."""

    def __init__(self, config: SoapConfig, *, archive: Archive | None,
                 clock: Clock | None = None, nonce: NonceSource | None = None,
                 session: requests.Session | None = None) -> None:
        config.validate()
        self.config = config
        self.system = config.system
        # WS-Security Created/Expires are security timestamps: real time unless a test pins it
        self.clock: Clock = clock or SYSTEM_CLOCK
        self._secrets = [x for x in (config.username_token and config.username_token.password,
                                     config.signature and config.signature.key_password) if x]
        sess = guard_session(session or requests.Session())  # sockets watched per call deadline
        # Configuration comes from SoapConfig only: with trust_env on, REQUESTS_CA_BUNDLE /
        # CURL_CA_BUNDLE would silently replace the pinned CA bundle and *_PROXY would reroute.
        sess.trust_env = False
        sess.verify = str(config.ca_bundle) if config.ca_bundle else config.verify_tls
        if not config.verify_tls:
            log.warning("%s: TLS verification is OFF (loopback sandbox only)", config.system)
        sess.headers["User-Agent"] = "cvhub-soap/1"
        self.transport = ArchivingTransport(
            system=config.system, archive=archive, session=sess,
            connect_timeout=config.connect_timeout, read_timeout=config.read_timeout,
            wsdl_timeout=config.wsdl_timeout, max_response_bytes=config.max_response_bytes,
            secrets=tuple(self._secrets), deadline=config.deadline,
        )
        wsse_parts: list[Any] = []
        if config.username_token:
            wsse_parts.append(UsernameTokenProfile(config.username_token, self.clock,
                                                   nonce or (lambda: os.urandom(16))))
        if config.signature:
            try:
                wsse_parts.append(SignatureProfile(config.signature))
            except ImportError as e:
                raise ConfigurationError("signature profile needs the xmlsec package",
                                         system=config.system, operation="configure") from e
            except ValueError as e:
                raise ConfigurationError(str(e), system=config.system, operation="configure") from e
        document = load_wsdl(config.wsdl, self.transport, system=config.system)
        self.zeep = zeep.Client(document, wsse=_ComposedSecurity(wsse_parts) if wsse_parts else None,
                                transport=self.transport, settings=secure_settings())
        if config.endpoint:
            self.service = self.zeep.create_service(config.binding, config.endpoint)
        else:
            self.service = self.zeep.service

    def close(self) -> None:
        self.transport.session.close()

    def __enter__(self) -> SoapClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_message(self, operation: str, **params: Any) -> bytes:
        """The envelope this client would send for ``operation`` (WS-Security applied)."""
        node = self.zeep.create_message(self.service, operation, **params)
        return etree.tostring(node, xml_declaration=True, encoding="utf-8")  # type: ignore[no-any-return]

    def call(self, operation: str, *, ref: str | None, state_changing: bool, **params: Any) -> SoapResult:
        """Call ``operation``. Safe calls are retried on retriable failures; a state-changing call
        is retried only when the failure proves nothing was sent. The whole call, attempts and
        backoff included, ends by ``config.deadline``."""
        attempt = 0
        deadline = Deadline(self.config.deadline)
        while True:
            ctx = _CallContext(operation=operation, ref=ref, state_changing=state_changing,
                               deadline=deadline)
            try:
                return self._call_once(ctx, operation, params, state_changing)
            except DeadlineExceeded:
                raise
            except RetriableError as e:
                # a 429 was refused before any effect; a 5xx after a state change may not have been
                retry_ok = (not state_changing) or isinstance(e, RateLimited) or (
                    not ctx.sent and not isinstance(e, ServerError))
                if not retry_ok or attempt >= self.config.retries:
                    raise
                delay = self.config.backoff * (2 ** attempt)
                if isinstance(e, RateLimited) and e.retry_after is not None:
                    delay = max(delay, min(e.retry_after, self.config.max_retry_after))
                if delay >= deadline.remaining():
                    raise  # no time left for another attempt: the last failure is the answer
                log.info("%s.%s [%s] retriable failure (%s), retry in %.2fs", self.system, operation,
                         ref, type(e).__name__, delay)
                time.sleep(delay)
                attempt += 1

    def _call_once(self, ctx: _CallContext, operation: str, params: dict[str, Any],
                   state_changing: bool) -> SoapResult:
        where: dict[str, Any] = {"system": self.system, "operation": operation, "ref": ctx.ref}
        token = _CALL.set(ctx)
        try:
            result = getattr(self.service, operation)(**params)
        except zeep.exceptions.Fault as e:
            if not e.code:  # zeep's "Unknown fault": a well-formed body that is no SOAP fault
                return self._http_error(ctx.http_status or 0, ctx, e, state_changing, where)
            code = _local(e.code)
            fault = SoapFault(f"SOAP fault {code}: {self._scrub(str(e.message))}", code=code,
                              detail=self._scrub(_fault_detail(e.detail)), **where)
            if self._echoes_secret(e):  # a server that quotes our envelope: keep it out of the chain
                raise fault from None
            raise fault from e
        except requests.ConnectTimeout as e:
            raise ConnectorTimeout("connect timeout, request not sent", **where) from e
        except requests.exceptions.SSLError as e:  # handshake refused: nothing was sent; a person must act
            raise FatalError(f"TLS verification failed: {_first_line(e)}", **where) from e
        except requests.Timeout as e:
            if state_changing:
                raise OutcomeUnknown("no answer in time after the request was sent; "
                                     "query by serial before any resend", **where) from e
            raise ConnectorTimeout("read timeout", **where) from e
        except requests.ConnectionError as e:
            problem = header_problem(e)
            if problem:  # 64 KiB header lines, more than 100 headers: a hostile or broken answer
                msg = f"response headers refused: {problem}"
                if state_changing and ctx.sent:
                    raise OutcomeUnknown(msg + "; query by serial before any resend", **where) from e
                raise ValidationFailed(msg, **where) from e
            if state_changing and ctx.sent:
                raise OutcomeUnknown("connection dropped after the request was sent; "
                                     "query by serial before any resend", **where) from e
            raise ConnectionDropped(f"connection failed: {type(e).__name__}", **where) from e
        except zeep.exceptions.TransportError as e:
            return self._http_error(int(e.status_code or 0), ctx, e, state_changing, where)
        except zeep.exceptions.ValidationError as e:
            if not ctx.posted:  # our own request does not match the contract: nothing was sent
                raise ValidationFailed(f"request refused by the contract: {_first_line(e)}", **where) from e
            return self._unreadable(e, state_changing, where)
        except (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden,
                zeep.exceptions.ExternalReferenceForbidden, zeep.exceptions.XMLSyntaxError,
                zeep.exceptions.SignatureVerificationFailed, zeep.exceptions.XMLParseError) as e:
            return self._unreadable(e, state_changing, where)
        except (requests.RequestException, zeep.exceptions.Error, etree.LxmlError, ValueError, LookupError,
                TypeError, AttributeError, RecursionError, OSError) as e:
            if not ctx.posted:
                raise  # failed while building the request (a caller's or our bug): nothing was sent
            # whatever else a hostile answer makes zeep or lxml raise is an unreadable answer
            return self._unreadable(e, state_changing, where)
        finally:
            _CALL.reset(token)
        try:
            data = serialize_object(result, dict)
        except (ValueError, TypeError, AttributeError, RecursionError) as e:
            return self._unreadable(e, state_changing, where)
        if not isinstance(data, dict):
            data = {"value": data}
        return SoapResult(data=data, request_sha256=ctx.request_sha256, response_sha256=ctx.response_sha256)

    def _http_error(self, status: int, ctx: _CallContext, e: Exception, state_changing: bool,
                    where: dict[str, Any]) -> SoapResult:
        """An HTTP error status without a SOAP fault: 5xx and 429 retriable, other 4xx fatal."""
        if status >= 500:
            raise ServerError(f"HTTP {status} without a SOAP fault", status=status, **where) from e
        if status == 429:
            raise RateLimited("HTTP 429", retry_after=_seconds(ctx.retry_after), **where) from e
        if 400 <= status < 500:
            raise ClientError(f"HTTP {status}", status=status, **where) from e
        return self._unreadable(e, state_changing, where)

    def _unreadable(self, e: Exception, state_changing: bool, where: dict[str, Any]) -> SoapResult:
        msg = self._scrub(f"response refused: {type(e).__name__}: {e}"[:300]) or ""
        err: FatalError | OutcomeUnknown = (
            OutcomeUnknown(msg + "; query by serial before any resend", **where) if state_changing
            else ValidationFailed(msg, **where))
        if self._echoes_secret(e):  # zeep quotes the response body; it may quote our envelope
            raise err from None
        raise err from e

    def _scrub(self, text: str | None) -> str | None:
        """``text`` with every configured secret blanked (servers sometimes quote the request)."""
        if text is None:
            return None
        for secret in self._secrets:
            text = text.replace(secret, REDACTED.decode())
        return text

    def _echoes_secret(self, e: BaseException) -> bool:
        blobs = [str(e), repr(e.args)]
        detail = getattr(e, "detail", None)
        if isinstance(detail, etree._Element):
            blobs.append(etree.tostring(detail, encoding="unicode"))
        content = getattr(e, "content", None)
        if isinstance(content, bytes):
            blobs.append(content.decode("utf-8", "replace"))
        return any(secret in blob for secret in self._secrets for blob in blobs)


__all__ = [
    "REDACTED",
    "WSDL_STATS",
    "ArchivingTransport",
    "SignatureConfig",
    "SoapClient",
    "SoapConfig",
    "SoapResult",
    "UsernameTokenConfig",
    "clear_wsdl_cache",
    "load_wsdl",
    "redact_wsse",
    "secure_settings",
]


class SoapServiceClient:
    """Base of a system's SOAP client (treasury, bank A, ...): builds the ``SoapConfig`` and
    ``SoapClient`` from keyword settings. Subclasses declare ``system``, ``default_wsdl`` (the
    packaged contract) and ``binding`` and add the system's operations on ``self.soap``."""

    system: str
    default_wsdl: Path
    binding: str

    def __init__(self, *, endpoint: str, username_token: UsernameTokenConfig | None,
                 archive: Archive | None, signature: SignatureConfig | None = None,
                 connect_timeout: float = 5.0, read_timeout: float = 30.0, verify_tls: bool = True,
                 ca_bundle: Path | None = None, retries: int = 2, backoff: float = 0.2,
                 wsdl: str | None = None, deadline: float = 120.0,
                 clock: Clock | None = None, nonce: NonceSource | None = None,
                 session: requests.Session | None = None) -> None:
        self.config = SoapConfig(
            system=self.system, wsdl=wsdl or str(self.default_wsdl), endpoint=endpoint,
            binding=self.binding, username_token=username_token, signature=signature,
            connect_timeout=connect_timeout, read_timeout=read_timeout, verify_tls=verify_tls,
            ca_bundle=ca_bundle, retries=retries, backoff=backoff, deadline=deadline,
        )
        self.soap = SoapClient(self.config, archive=archive, clock=clock, nonce=nonce, session=session)

    def close(self) -> None:
        self.soap.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
