"""REST transport: one careful HTTP client that every REST system connector builds on.

What it guarantees, per call:
- a total ``deadline`` (connect + send + the whole answer, retries and backoff included), enforced
  by a watchdog that shuts the socket (``connectors.deadline``): a server that drips its answer or
  its headers cannot hold a worker. Past it a read raises ``DeadlineExceeded`` (retriable) naming
  the call's ref, and a POST that may have been applied raises ``OutcomeUnknown``;
- a (connect, read) timeout on every request; TLS verification always on (a private CA bundle may
  be given, ``verify=False`` is not offered); plain ``http://`` only to loopback hosts;
- retries with exponential backoff and jitter, bounded, ONLY where repeating is safe:
  timeouts and dropped connections of reads, connection failures before anything was sent,
  5xx and 429 (``Retry-After`` honoured in seconds or HTTP-date; a wait above the cap is not
  slept but raised as ``RateLimited`` for the scheduler). 4xx are fatal at the first attempt;
- an ``Idempotency-Key`` header on every POST (``post()`` requires one: derive it from the
  business serial so that a resend under the same serial is recognised by the server);
- a POST whose answer is lost after it was sent (read timeout, connection dropped) raises
  ``OutcomeUnknown`` and is NOT retried here: the system connector queries by the original
  serial and resends under the same serial/key only if the server never saw it;
- every 2xx answer decoded strictly as JSON by the transport (``connectors.strict_json``): a JSON
  media type, size and nesting depth checked before parsing, duplicate keys refused, numbers
  exact (``int``/``Decimal``, never ``float``); an unreadable answer is ``ValidationFailed`` for a
  read and ``OutcomeUnknown`` for a POST (it may have been applied). Nothing but connector
  errors leaves a call: no ``RecursionError``, ``UnicodeDecodeError`` or ``ValueError``;
- cursor pagination bounded per run (``max_pages``, ``max_records``): hitting a bound raises
  ``PaginationLimit`` after the last whole page, whose cursor the caller keeps to resume;
- HMAC-SHA256 request signing where a system requires it (``HmacSigner``: method, path+query,
  timestamp and body hash, sent with the key id);
- every request and response archived raw (with SHA-256) via ``connectors.archive.Archive``
  before it is processed, with Authorization, signature, API-key and other secret headers
  redacted and every configured secret value scrubbed from the bytes;
- errors from ``connectors.errors``, each naming system, operation and id.

It must never log or archive a secret, follow a redirect, or retry a state-changing request
whose outcome is unknown.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from canonical.clock import SYSTEM_CLOCK
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
    NotFound,
    OutcomeUnknown,
    PaginationLimit,
    RateLimited,
    RetriableError,
    ServerError,
    ValidationFailed,
)
from connectors.strict_json import JsonRefused, charset_of, decode_json, is_json_media_type

log = logging.getLogger("cvhub.connectors.rest")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SECRET_HEADER_NAMES = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-signature",
        "x-auth-token",
    }
)
_SECRET_HEADER_WORDS = ("secret", "token", "password", "signature", "api-key", "apikey")
REDACTED = "[REDACTED]"


def is_secret_header(name: str) -> bool:
    n = name.lower()
    return n in _SECRET_HEADER_NAMES or any(w in n for w in _SECRET_HEADER_WORDS)


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): where plain http is tolerated."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_is_loopback_host = is_loopback_host
MAX_CURSOR_CHARS = 2048


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)  # a wait in seconds, not money
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or SYSTEM_CLOCK())).total_seconds())  # an HTTP-date is real time


def path_segment(value: str, *, system: str, operation: str) -> str:
    """``value`` (an id: serial, payable id, registration number) made safe as ONE URL path segment.

    Ids often come from the remote system itself (a payable id from the SRM's listing) or from an
    operator. Interpolated raw, ``../../x`` would climb out of the resource (urllib3 resolves dot
    segments), ``?``/``#`` would cut the path, and the request (signed, state-changing) would go
    elsewhere. Every character outside the unreserved set is percent-encoded; empty, ``.`` and
    ``..`` are refused (``ValidationFailed``).
    """
    if value in ("", ".", "..") or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValidationFailed(f"id {value[:40]!r} cannot be used in a URL path", system=system,
                               operation=operation, ref=value[:40] or None)
    return quote(value, safe="")


# --- signing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HmacSigner:
    """HMAC-SHA256 request signing.

    String to sign (UTF-8, ``\\n``-joined): ``METHOD``, path with query exactly as sent,
    timestamp (Unix seconds), hex SHA-256 of the body bytes. Sent as headers ``X-Key-Id``,
    ``X-Timestamp``, ``X-Content-SHA256`` and ``X-Signature`` (base64 of the MAC). The secret is
    kept out of ``repr`` and never logged; the signature header is redacted in the archive.
    """

    key_id: str
    secret: str = field(repr=False)

    def string_to_sign(self, method: str, path: str, timestamp: str, body: bytes) -> bytes:
        return "\n".join([method.upper(), path, timestamp, hashlib.sha256(body).hexdigest()]).encode()

    def headers(self, method: str, path: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
        # the signature window is real time (the server checks it against its own clock)
        timestamp = str(int(SYSTEM_CLOCK().timestamp() if now is None else now))
        mac = hmac.new(
            self.secret.encode(), self.string_to_sign(method, path, timestamp, body), hashlib.sha256
        )
        return {
            "X-Key-Id": self.key_id,
            "X-Timestamp": timestamp,
            "X-Content-SHA256": hashlib.sha256(body).hexdigest(),
            "X-Signature": base64.b64encode(mac.digest()).decode(),
        }


# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestConfig:
    """Validated settings of one REST endpoint. Secrets are excluded from ``repr``.

    system: name used in errors, logs and the archive (``srm``, ``registry``, ``bank_b``).
    base_url: ``https://...``; ``http://`` is accepted only for loopback hosts (sandboxes).
    ca_bundle: path of a CA bundle to verify the server against (TLS verification is always on).
    bearer_token / api_key: at most one; sent as ``Authorization: Bearer`` / ``api_key_header``.
    signer: HMAC signing for systems that require it.
    max_attempts: total attempts for retriable failures (>= 1).
    backoff_initial / backoff_max: exponential backoff bounds in seconds (full jitter on top).
    retry_after_cap: longest ``Retry-After`` slept in-process; above it ``RateLimited`` is raised.
    deadline: seconds one call may take in all (connect + send + whole answer, every attempt and
        backoff included); enforced by a watchdog, not per read.
    max_pages / max_records: per-run bounds of one ``paginate`` (``PaginationLimit`` when hit).
    max_json_depth: deepest JSON nesting accepted in an answer.
    """

    system: str
    base_url: str
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    retry_after_cap: float = 60.0
    ca_bundle: str | None = None
    bearer_token: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    api_key_header: str = "X-Api-Key"
    signer: HmacSigner | None = field(default=None, repr=False)
    user_agent: str = "cvhub-connector/0.1"
    max_response_bytes: int = 32 * 1024 * 1024
    deadline: float = 120.0
    max_pages: int = 1000
    max_records: int = 250_000
    max_json_depth: int = 64

    def __post_init__(self) -> None:
        def bad(msg: str) -> ConfigurationError:
            return ConfigurationError(msg, system=self.system or "rest", operation="configure")

        if not self.system:
            raise bad("system name is required")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad(f"base_url must be an http(s) URL, got scheme {parts.scheme!r}")
        if parts.scheme == "http" and not _is_loopback_host(parts.hostname):
            raise bad(f"plain http is only allowed to loopback hosts, not {parts.hostname!r}; use https")
        if parts.username or parts.password:
            raise bad("credentials in base_url are not allowed; use bearer_token/api_key/signer")
        if not (self.connect_timeout > 0 and self.read_timeout > 0):
            raise bad("connect_timeout and read_timeout must be positive (every call has a timeout)")
        if self.max_attempts < 1:
            raise bad("max_attempts must be at least 1")
        if self.backoff_initial < 0 or self.backoff_max < self.backoff_initial or self.retry_after_cap < 0:
            raise bad("backoff_initial <= backoff_max and retry_after_cap >= 0 are required")
        if self.bearer_token is not None and self.api_key is not None:
            raise bad("give either bearer_token or api_key, not both")
        for name in ("bearer_token", "api_key"):
            value = getattr(self, name)
            if value is not None and (not value.strip() or "\n" in value or "\r" in value):
                raise bad(f"{name} is empty or contains a line break")
        if self.signer is not None and not (self.signer.key_id and self.signer.secret):
            raise bad("signer needs a key id and a secret")
        if self.ca_bundle is not None and not Path(self.ca_bundle).is_file():
            raise bad(f"ca_bundle {self.ca_bundle!r} is not a file")
        if self.max_response_bytes <= 0:
            raise bad("max_response_bytes must be positive")
        if not self.deadline > 0:
            raise bad("deadline must be positive (every call has a total deadline)")
        if self.max_pages < 1 or self.max_records < 1:
            raise bad("max_pages and max_records must be at least 1")
        if not 1 <= self.max_json_depth <= 512:
            raise bad("max_json_depth must be within 1..512")

    def secret_values(self) -> list[str]:
        values = [self.bearer_token, self.api_key, self.signer.secret if self.signer else None]
        return [v for v in values if v]


# --- responses ----------------------------------------------------------------------------------

_NOT_DECODED: Any = object()


def decode_answer(headers: Mapping[str, str], body: bytes, *, max_depth: int, max_bytes: int) -> Any:
    """A response body as strict JSON: a declared ``Content-Type`` must be a JSON media type (a
    missing one is tolerated, the bytes must still be JSON), its charset UTF-8 or the GB family;
    then ``connectors.strict_json.decode_json``. ``JsonRefused`` with the reason otherwise."""
    ctype = headers.get("Content-Type")
    if ctype is not None and not is_json_media_type(ctype):
        raise JsonRefused(f"content type {ctype.split(';', 1)[0].strip()[:60]!r} is not JSON")
    return decode_json(body, charset=charset_of(ctype), max_depth=max_depth, max_bytes=max_bytes)


@dataclass(frozen=True, slots=True)
class RestResponse:
    """A response as received (already archived): status, headers, raw body and archive hashes.

    ``json()`` is the body as decoded by the transport (strict: see ``decode_answer``), or
    ``ValidationFailed`` naming the archived hash when there is nothing acceptable to decode.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    request_sha256: str
    response_sha256: str
    system: str = "rest"
    operation: str = "?"
    ref: str | None = None
    decoded: Any = field(default=_NOT_DECODED, repr=False, compare=False)
    max_json_depth: int = 64

    def json(self) -> Any:
        if self.decoded is not _NOT_DECODED:
            return self.decoded
        try:
            return decode_answer(self.headers, self.body, max_depth=self.max_json_depth,
                                 max_bytes=max(len(self.body), 1))
        except JsonRefused as e:
            raise ValidationFailed(f"response refused: {e.reason} (sha256 {self.response_sha256})",
                                   system=self.system, operation=self.operation, ref=self.ref) from None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a cursor-paginated listing: the parsed body, its items, and the cursor after it."""

    number: int
    items: list[Any]
    body: dict[str, Any]
    next_cursor: str | None
    response: RestResponse


# --- the client ---------------------------------------------------------------------------------


class RestClient:
    """HTTP client for one system; thread-compatible (use one per thread), close() when done."""

    def __init__(
        self,
        config: RestConfig,
        *,
        archive: Archive,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.archive = archive
        self._sleep = sleep
        self._session = guard_session(session or requests.Session())  # sockets watched per call deadline
        self._session.trust_env = False  # no proxies or netrc credentials picked up from the environment
        self._secrets = [s.encode() for s in config.secret_values()]

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public calls --
    def get(
        self, path: str, *, operation: str, ref: str | None = None, params: Mapping[str, str] | None = None
    ) -> RestResponse:
        return self._call("GET", path, operation=operation, ref=ref, params=params)

    def post(
        self, path: str, body: Mapping[str, Any], *, operation: str, ref: str, idempotency_key: str
    ) -> RestResponse:
        """POST JSON with an ``Idempotency-Key``. 5xx/429 are retried under the same key; a lost
        answer raises ``OutcomeUnknown`` (resolve it by querying ``ref``, then resend with the same key)."""
        if not idempotency_key:
            raise ValueError("every POST needs an idempotency key")
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
        return self._call(
            "POST",
            path,
            operation=operation,
            ref=ref,
            body=payload,
            extra_headers={
                "Idempotency-Key": idempotency_key,
                "Content-Type": "application/json; charset=utf-8",
            },
        )

    def paginate(
        self,
        path: str,
        *,
        operation: str,
        params: Mapping[str, str] | None = None,
        cursor_param: str = "cursor",
        items_field: str = "items",
        next_cursor_field: str = "next_cursor",
        max_pages: int | None = None,
        max_records: int | None = None,
    ) -> Iterator[Page]:
        """Follow a cursor to the end: yield each page until the server returns no next cursor.

        Bounded per run by ``max_pages`` and ``max_records`` (default: the config's): once a
        page brings the run to a bound and the server still has a next cursor, ``PaginationLimit``
        is raised after that page was yielded (``.cursor`` is the next cursor): everything
        yielded is good, persist the last page's position and resume from it on the next run.
        A cursor that repeats is a server bug that would loop forever: ``ValidationFailed``; so is
        a next cursor that is not a non-empty string of at most 2,048 printable characters.
        """
        cfg = self.config
        page_bound = cfg.max_pages if max_pages is None else max_pages
        record_bound = cfg.max_records if max_records is None else max_records
        seen: set[str] = set()
        query = dict(params or {})
        records = 0
        number = 0
        while True:
            number += 1
            resp = self.get(path, operation=operation, ref=query.get(cursor_param), params=query)
            body = self._json_object(resp, operation, query.get(cursor_param))
            items = body.get(items_field)
            if not isinstance(items, list):
                raise ValidationFailed(
                    f"page {number}: field {items_field!r} is not a list",
                    system=cfg.system,
                    operation=operation,
                    ref=query.get(cursor_param),
                )
            nxt = body.get(next_cursor_field)
            if nxt is not None and nxt != "" and not _good_cursor(nxt):
                raise ValidationFailed(
                    f"page {number}: {next_cursor_field!r} is not a usable cursor "
                    f"(a string of 1..{MAX_CURSOR_CHARS} printable characters)",
                    system=cfg.system,
                    operation=operation,
                    ref=resp.response_sha256,
                )
            records += len(items)
            yield Page(number, items, body, nxt or None, resp)
            if not nxt:
                return
            if nxt in seen:
                raise ValidationFailed(
                    f"cursor {nxt[:80]!r} repeated at page {number}: pagination loop",
                    system=cfg.system,
                    operation=operation,
                    ref=nxt[:80],
                )
            seen.add(nxt)
            query[cursor_param] = nxt
            if number >= page_bound or records >= record_bound:
                raise PaginationLimit(
                    f"stopped after {number} pages and {records} records in this run "
                    f"(bounds: max_pages={page_bound}, max_records={record_bound}); the server has more: "
                    "keep the last page's cursor and resume from it on the next run",
                    pages=number,
                    records=records,
                    cursor=nxt,
                    system=cfg.system,
                    operation=operation,
                    ref=nxt[:80],
                )

    def _json_object(self, resp: RestResponse, operation: str, ref: str | None = None) -> dict[str, Any]:
        body = resp.json()
        if not isinstance(body, dict):
            raise ValidationFailed(
                f"expected a JSON object (sha256 {resp.response_sha256})",
                system=self.config.system,
                operation=operation,
                ref=ref,
            )
        return body

    def json_object(self, resp: RestResponse, operation: str, ref: str | None = None) -> dict[str, Any]:
        """The response body as a JSON object, or ``ValidationFailed`` naming the archived hash."""
        return self._json_object(resp, operation, ref)

    # -- machinery --
    def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        ref: str | None,
        params: Mapping[str, str] | None = None,
        body: bytes = b"",
        extra_headers: Mapping[str, str] | None = None,
    ) -> RestResponse:
        cfg = self.config
        deadline = Deadline(cfg.deadline)
        attempts = 0

        def attempt() -> RestResponse:
            nonlocal attempts
            attempts += 1
            return self._attempt(
                method,
                path,
                operation=operation,
                ref=ref,
                params=params,
                body=body,
                extra_headers=extra_headers or {},
                attempt=attempts,
                deadline=deadline,
            )

        def should_retry(exc: BaseException) -> bool:
            if (
                isinstance(exc, RateLimited)
                and exc.retry_after is not None
                and exc.retry_after > cfg.retry_after_cap
            ):
                return False  # too long to hold a worker: let the scheduler come back later
            if isinstance(exc, DeadlineExceeded):
                return False  # the call's time is spent
            return isinstance(exc, RetriableError)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RateLimited) and exc.retry_after is not None:
                return exc.retry_after
            ceiling = min(cfg.backoff_max, cfg.backoff_initial * 2 ** (state.attempt_number - 1))
            return ceiling * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not cryptography

        def out_of_time(state: RetryCallState) -> bool:
            # a wait that would end past the deadline is not slept: the last error is raised now
            return state.upcoming_sleep >= deadline.remaining()

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info(
                "%s.%s [%s] attempt %d failed (%s); retrying in %.2fs",
                cfg.system,
                operation,
                ref or "-",
                state.attempt_number,
                type(exc).__name__,
                state.upcoming_sleep,
            )

        retrying = Retrying(
            stop=stop_after_attempt(cfg.max_attempts) | out_of_time,
            wait=wait,
            retry=retry_if_exception(should_retry),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(attempt)

    def _redact_bytes(self, data: bytes) -> bytes:
        for secret in self._secrets:
            data = data.replace(secret, REDACTED.encode())
        return data

    def _archive(
        self,
        head: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        operation: str,
        direction: str,
        ref: str | None,
        meta: dict[str, str],
    ) -> str:
        lines = [head] + [f"{k}: {REDACTED if is_secret_header(k) else v}" for k, v in headers.items()]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace") + body
        item = self.archive.store(
            raw,
            system=self.config.system,
            operation=operation,
            direction=direction,
            ref=ref,
            redact=self._redact_bytes,
            meta=meta,
        )
        return item.sha256

    def _attempt(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        ref: str | None,
        params: Mapping[str, str] | None,
        body: bytes,
        extra_headers: Mapping[str, str],
        attempt: int,
        deadline: Deadline,
    ) -> RestResponse:
        cfg = self.config
        headers = {"Accept": "application/json", "User-Agent": cfg.user_agent, **extra_headers}
        if cfg.bearer_token:
            headers["Authorization"] = f"Bearer {cfg.bearer_token}"
        if cfg.api_key:
            headers[cfg.api_key_header] = cfg.api_key
        url = cfg.base_url.rstrip("/") + "/" + path.lstrip("/")
        where: dict[str, Any] = dict(system=cfg.system, operation=operation, ref=ref)
        safe = method in SAFE_METHODS
        if deadline.expired:
            raise DeadlineExceeded(
                f"deadline of {cfg.deadline:g}s spent before attempt {attempt} (nothing sent)",
                deadline=cfg.deadline, **where)
        prepared = self._session.prepare_request(
            requests.Request(method, url, headers=headers, params=dict(params or {}), data=body or None)
        )
        if cfg.signer is not None:
            prepared.headers.update(cfg.signer.headers(method, prepared.path_url, body))
        meta = {"method": method, "path": urlsplit(prepared.url or "").path, "attempt": str(attempt)}
        req_sha = self._archive(
            f"{method} {prepared.path_url} HTTP/1.1",
            {k: str(v) for k, v in prepared.headers.items()},
            body,
            operation=operation,
            direction="out",
            ref=ref,
            meta=meta,
        )
        log.debug(
            "%s %s %s.%s [%s] attempt %d", method, meta["path"], cfg.system, operation, ref or "-", attempt
        )
        opened: requests.Response | None = None
        with http_call(deadline) as guard:
            try:
                resp = opened = self._session.send(
                    prepared,
                    timeout=(deadline.cap(cfg.connect_timeout), deadline.cap(cfg.read_timeout)),
                    verify=cfg.ca_bundle or True,
                    allow_redirects=False,
                    stream=True,
                )
                content = _read_capped(resp, cfg.max_response_bytes)
            except (requests.exceptions.RequestException, OSError, ValueError,
                    http.client.HTTPException, urllib3.exceptions.HTTPError) as e:
                raise self._transport_error(e, method, guard, **where) from e
            finally:
                if opened is not None:
                    opened.close()  # streamed: give the connection back (or drop an oversized one)
            if guard.fired.is_set():  # the answer may look complete but was cut off at the deadline
                raise self._past_deadline(method, guard, **where)
        resp_headers = CaseInsensitiveDict(resp.headers)
        if content is None:
            msg = f"response larger than {cfg.max_response_bytes} bytes refused (HTTP {resp.status_code})"
            log.warning("%s.%s [%s] %s", cfg.system, operation, ref or "-", msg)
            if safe:
                raise ValidationFailed(msg, **where)
            raise OutcomeUnknown(f"{method} sent, {msg}: query by serial before any resend", **where)
        resp_sha = self._archive(
            f"HTTP/1.1 {resp.status_code} {resp.reason}",
            resp_headers,
            content,
            operation=operation,
            direction="in",
            ref=ref,
            meta={**meta, "status": str(resp.status_code), "request_sha256": req_sha},
        )
        result = RestResponse(resp.status_code, resp_headers, content, req_sha, resp_sha,
                              system=cfg.system, operation=operation, ref=ref,
                              max_json_depth=cfg.max_json_depth)
        self._raise_for_status(result, **where)
        if not content:
            return result  # nothing to decode (204, or a POST acknowledged without a body)
        try:
            decoded = decode_answer(resp_headers, content, max_depth=cfg.max_json_depth,
                                    max_bytes=cfg.max_response_bytes)
        except JsonRefused as e:
            msg = f"HTTP {resp.status_code} answer refused: {e.reason} (sha256 {resp_sha})"
            log.warning("%s.%s [%s] %s", cfg.system, operation, ref or "-", msg)
            if safe:
                raise ValidationFailed(msg, **where) from None
            raise OutcomeUnknown(f"{method} sent, {msg}: query by serial before any resend",
                                 **where) from None
        return RestResponse(resp.status_code, resp_headers, content, req_sha, resp_sha,
                            system=cfg.system, operation=operation, ref=ref, decoded=decoded,
                            max_json_depth=cfg.max_json_depth)

    def _past_deadline(self, method: str, guard: HttpCallGuard, *, system: str, operation: str,
                       ref: str | None) -> ConnectorError:
        seconds = guard.deadline.seconds
        where: dict[str, Any] = dict(system=system, operation=operation, ref=ref)
        if method in SAFE_METHODS or not guard.sent:
            state = "nothing sent" if not guard.sent else "no complete answer"
            return DeadlineExceeded(f"{method} did not finish within its deadline of {seconds:g}s ({state})",
                                    deadline=seconds, **where)
        return OutcomeUnknown(f"{method} sent, no complete answer within the deadline of {seconds:g}s: "
                              "query by serial before any resend", deadline=seconds, **where)

    def _transport_error(self, e: BaseException, method: str, guard: HttpCallGuard, *, system: str,
                         operation: str, ref: str | None) -> ConnectorError:
        """Map a failure of sending or receiving onto the connector error tree."""
        cfg = self.config
        where: dict[str, Any] = dict(system=system, operation=operation, ref=ref)
        safe = method in SAFE_METHODS
        if guard.fired.is_set():
            return self._past_deadline(method, guard, **where)
        if isinstance(e, requests.exceptions.SSLError):
            return FatalError(f"TLS verification failed: {type(e).__name__}", **where)
        if isinstance(e, requests.exceptions.ConnectTimeout):
            return ConnectorTimeout(f"no connection within {cfg.connect_timeout}s (nothing sent)", **where)
        headers_problem = header_problem(e)
        if headers_problem:
            msg = f"response headers refused: {headers_problem}"
            if safe or not guard.sent:
                return ValidationFailed(msg, **where)
            return OutcomeUnknown(f"{method} sent, {msg}: query by serial before any resend", **where)
        if isinstance(e, requests.exceptions.ReadTimeout):
            if safe:
                return ConnectorTimeout(f"no answer within {cfg.read_timeout}s", **where)
            return OutcomeUnknown(
                f"{method} sent, no answer within {cfg.read_timeout}s: query by serial before any resend",
                **where,
            )
        if isinstance(e, requests.exceptions.InvalidURL):
            return ConfigurationError(f"invalid URL: {_short(e)}", **where)
        if isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                          requests.exceptions.ContentDecodingError, OSError, http.client.HTTPException,
                          urllib3.exceptions.HTTPError)):
            if safe or not guard.sent or _nothing_sent(e):
                return ConnectionDropped(f"connection failed or answer cut off: {_short(e)}", **where)
            return OutcomeUnknown(
                f"{method} sent, connection dropped before the whole answer: query by serial "
                "before any resend",
                **where,
            )
        if safe or not guard.sent:
            return FatalError(f"request failed: {type(e).__name__}", **where)
        return OutcomeUnknown(f"{method} sent, request failed ({type(e).__name__}): query by serial "
                              "before any resend", **where)

    def _raise_for_status(self, resp: RestResponse, *, system: str, operation: str, ref: str | None) -> None:
        status = resp.status
        if 200 <= status < 300:
            return
        detail = _error_detail(resp)
        where: dict[str, Any] = dict(system=system, operation=operation, ref=ref)
        if status == 429:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise RateLimited(
                f"HTTP 429 rate limited (Retry-After {retry_after}){detail}", retry_after=retry_after, **where
            )
        if status >= 500:
            raise ServerError(f"HTTP {status}{detail}", status=status, **where)
        if status == 404:
            raise NotFound(f"HTTP 404{detail}", **where)
        if 300 <= status < 400:
            raise FatalError(f"HTTP {status}: redirects are not followed{detail}", **where)
        raise ClientError(f"HTTP {status}{detail}", status=status, **where)


def _read_capped(resp: requests.Response, limit: int) -> bytes | None:
    """The body of a streamed response, or None as soon as it exceeds ``limit`` bytes."""
    declared = resp.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    parts: list[bytes] = []
    total = 0
    for chunk in resp.iter_content(64 * 1024):
        total += len(chunk)
        if total > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def header_problem(exc: BaseException) -> str | None:
    """What was wrong with the answer's header block, when that is what ended the call: a line
    over http.client's 64 KiB or more than its 100 header lines."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, http.client.LineTooLong):
            return "a header or status line is too long"
        if isinstance(current, http.client.HTTPException) and "headers" in str(current):
            return str(current)[:80]
        nxt = next((a for a in current.args if isinstance(a, BaseException)), None)
        current = nxt or current.__cause__ or current.__context__
    return None


def _good_cursor(value: object) -> bool:
    return (isinstance(value, str) and 0 < len(value) <= MAX_CURSOR_CHARS
            and value.isprintable())


def _nothing_sent(exc: BaseException) -> bool:
    """True when the request certainly never left: the connection itself could not be made."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (urllib3.exceptions.NewConnectionError, ConnectionRefusedError)):
            return True
        if isinstance(current, urllib3.exceptions.MaxRetryError) and current.reason is not None:
            current = current.reason
            continue
        nxt = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = nxt or current.__cause__ or current.__context__
    return False


def _short(exc: BaseException) -> str:
    return type(exc).__name__


def _error_detail(resp: RestResponse) -> str:
    """``: code message`` from a JSON error body (truncated), or empty; never raises."""
    try:
        body = decode_json(resp.body, max_depth=16, max_bytes=64 * 1024)
    except JsonRefused:
        return ""
    if not isinstance(body, dict):
        return ""
    detail = body.get("detail", body)
    if isinstance(detail, dict):
        text = " ".join(str(detail.get(k)) for k in ("code", "message") if detail.get(k))
    else:
        text = str(detail)
    return f": {text[:200]}" if text else ""


__all__ = [
    "ConnectorError",
    "HmacSigner",
    "Page",
    "RestClient",
    "RestConfig",
    "RestResponse",
    "decode_answer",
    "is_loopback_host",
    "is_secret_header",
    "parse_retry_after",
    "path_segment",
]
