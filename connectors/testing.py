"""Conformance kit: one factory that generates the standard test suite for any connector.

In the style of the Meltano Singer SDK / Airbyte acceptance tests: a connector declares itself
mostly as data (class attributes of a small *adapter*), a sandbox of the system it talks to
offers fault injection, and ``conformance_suite`` turns the pair into a pytest test class::

    # tests/connectors/test_bank_b_conformance.py
    from connectors.bank_b.conformance import BankBAdapter, bank_b_sandbox
    from connectors.testing import conformance_suite

    TestBankBConformance = conformance_suite(BankBAdapter, bank_b_sandbox)

The same kit serves REST, SOAP and SFTP connectors: nothing below knows the transport.

The protocol the kit calls
--------------------------
``adapter_factory(sandbox, workdir, **overrides) -> ConformanceAdapter``
    Builds the connector under test, configured to talk to ``sandbox``, keeping every piece of
    local state (raw archive, processed-file records, cursors, queues) under ``workdir`` — the
    kit gives each adapter a fresh directory and inspects it for leaked secrets. ``overrides``
    replace configuration values (used for the bad configurations). Usually the adapter class
    itself. Class attributes (data, read by the kit):

    - ``system: str`` — the system name every error must carry (``ConnectorError.system``);
    - ``fetch_operation: str`` — the sandbox operation name of the paginated read;
    - ``submit_operation: str | None`` — the state-changing request (``None``: read-only
      connector; the write tests are skipped, with the reason shown);
    - ``query_operation: str | None`` — the query by serial used to resolve an unknown outcome;
    - ``page_size: int`` — items per page the adapter asks for (the kit seeds more than two pages);
    - ``bad_configs: Mapping[str, Mapping[str, object]]`` — name -> overrides that must be
      refused with a ``FatalError`` (at construction or at ``check()``), e.g. a wrong secret,
      a plain-HTTP URL to a remote host, a zero timeout, an unpinned host key.

    Methods:

    - ``check() -> None`` — connect and authenticate (a cheap call);
    - ``fetch_all() -> list[Hashable]`` — read everything there is, following pagination to the
      end, and return one key per *delivered* item (payable id, notice id, file name+hash);
    - ``submit(serial: str) -> object`` — one state-changing request under ``serial``, including
      the connector's own unknown-outcome resolution (query by serial, then resend under the same
      serial). Raises a ``ConnectorError`` when it cannot complete.

``sandbox_factory() -> ContextManager[ConformanceSandbox]``
    Starts the sandbox once per generated test class. The handle it yields:

    - ``supported_faults: frozenset[str]`` — which of ``FAULT_KINDS`` it can inject; tests for
      the others are skipped with the reason shown (an SFTP server has no 429);
    - ``reset()`` — forget data, faults and the request journal (called before every test);
    - ``seed(count)`` — make exactly ``count`` fetchable items exist;
    - ``inject(kind, operation=None, times=1, **params)`` — arm a fault for the next ``times``
      requests of ``operation`` (``None``: any operation);
    - ``requests(operation=None) -> int`` — requests that reached the server;
    - ``journal() -> list[tuple[str, str | None]]`` — (operation, serial/ref) of every request,
      in arrival order;
    - ``effects(ref) -> int`` — how many times a state change under ``ref`` was *applied*;
    - ``secrets() -> list[str]`` — every credential the connector holds for this sandbox, as text
      that must never appear in logs or in ``workdir``.

What the suite checks
---------------------
connects; rejects each bad configuration with a ``FatalError`` naming the system; fetches and
paginates to the end; retries timeouts / 5xx / 429 (within a bounded number of attempts) and
nothing else (4xx and faults: exactly one attempt, fatal); duplicate delivery and duplicate
submission have no second effect; an unknown outcome (connection dropped after or before the
server applied a request) is resolved by a query by serial — never a blind resend — with exactly
one effect; every exchange is archived with a correct SHA-256; secrets stay out of logs (caplog at
DEBUG) and out of every file the connector wrote.

This module must never import a particular transport or system; it imports pytest, so only test
code and ``cvhub connector check`` import it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import traceback
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import pytest

from connectors.errors import ConnectorError, FatalError, RetriableError

#: Fault kinds a sandbox may support, and what a conforming connector does about each.
FAULT_KINDS: Mapping[str, str] = {
    "latency": "answer slower than usual but within the timeout: succeed, no retry",
    "timeout": "answer slower than the client's timeout: reads are retried",
    "server_error": "5xx or a transient server failure: retried with backoff",
    "rate_limit": "429 with Retry-After: retried after the indicated wait",
    "client_error": "4xx: fatal, exactly one attempt",
    "fault": "a protocol fault (SOAP Fault, SFTP permission denied): fatal, exactly one attempt",
    "drop_before": "connection dropped before the request was applied: outcome unknown",
    "drop_after": "request applied, then the connection dropped: outcome unknown",
    "duplicate": "the next delivery (record, notice, file) arrives twice",
}
RETRIABLE_FAULTS = ("timeout", "server_error", "rate_limit")
FATAL_FAULTS = ("client_error", "fault")


@runtime_checkable
class ConformanceSandbox(Protocol):
    supported_faults: frozenset[str]

    def reset(self) -> None: ...
    def seed(self, count: int) -> None: ...
    def inject(self, kind: str, *, operation: str | None = None, times: int = 1, **params: Any) -> None: ...
    def requests(self, operation: str | None = None) -> int: ...
    def journal(self) -> list[tuple[str, str | None]]: ...
    def effects(self, ref: str) -> int: ...
    def secrets(self) -> list[str]: ...


@runtime_checkable
class ConformanceAdapter(Protocol):
    system: ClassVar[str]
    fetch_operation: ClassVar[str]
    submit_operation: ClassVar[str | None]
    query_operation: ClassVar[str | None]
    page_size: ClassVar[int]
    bad_configs: ClassVar[Mapping[str, Mapping[str, object]]]

    def check(self) -> None: ...
    def fetch_all(self) -> list[Hashable]: ...
    def submit(self, serial: str) -> object: ...


AdapterFactory = Callable[..., ConformanceAdapter]
SandboxFactory = Callable[[], AbstractContextManager[ConformanceSandbox]]

_serials = itertools.count(1)


def _serial(prefix: str) -> str:
    return f"CONF-{prefix}-{next(_serials):06d}"


def _chain(e: BaseException | None) -> list[BaseException]:
    """``e`` and every exception it was raised from or during (cause/context), bounded."""
    out: list[BaseException] = []
    while e is not None and len(out) < 20 and e not in out:
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def _scan_for_secrets(root: Path, secrets: list[str]) -> list[str]:
    """Names of files under ``root`` that contain any secret (as UTF-8, GB18030 or raw bytes)."""
    needles = {s.encode(enc) for s in secrets if s for enc in ("utf-8", "gb18030")}
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(n in data for n in needles):
                found.append(str(path.relative_to(root)))
    return found


def conformance_suite(
    adapter_factory: AdapterFactory, sandbox_factory: SandboxFactory, *, name: str | None = None
) -> type:
    """Return a pytest test class with the standard conformance tests for one connector.

    Assign it to a ``Test*`` name in a test module so pytest collects it. ``adapter_factory``
    and ``sandbox_factory`` follow the protocol in the module docstring.
    """
    label = name or getattr(adapter_factory, "__name__", "Connector")

    class ConformanceSuite:
        # --- fixtures ---------------------------------------------------------------------
        @pytest.fixture(scope="class")
        @classmethod
        def conformance_sandbox(cls) -> Iterator[ConformanceSandbox]:
            with sandbox_factory() as sandbox:
                yield sandbox

        @pytest.fixture
        def sandbox(self, conformance_sandbox: ConformanceSandbox) -> Iterator[ConformanceSandbox]:
            conformance_sandbox.reset()
            yield conformance_sandbox
            conformance_sandbox.reset()

        @pytest.fixture
        def make_adapter(
            self, sandbox: ConformanceSandbox, tmp_path: Path
        ) -> Callable[..., ConformanceAdapter]:
            counter = itertools.count(1)

            def make(**overrides: object) -> ConformanceAdapter:
                workdir = tmp_path / f"adapter{next(counter)}"
                workdir.mkdir()
                return adapter_factory(sandbox, workdir, **overrides)

            return make

        # --- helpers ----------------------------------------------------------------------
        @staticmethod
        def _needs_fault(sandbox: ConformanceSandbox, kind: str) -> None:
            if kind not in sandbox.supported_faults:
                pytest.skip(f"sandbox does not inject {kind!r} ({FAULT_KINDS[kind]})")

        @staticmethod
        def _needs_submit(adapter: ConformanceAdapter) -> str:
            if not adapter.submit_operation:
                pytest.skip(f"{adapter.system} is read-only: no state-changing operation to test")
            return adapter.submit_operation

        # --- the standard tests -----------------------------------------------------------
        def test_connects(self, make_adapter: Callable[..., ConformanceAdapter]) -> None:
            make_adapter().check()

        def test_rejects_bad_configuration(self, make_adapter: Callable[..., ConformanceAdapter]) -> None:
            adapter = make_adapter()
            bad = dict(type(adapter).bad_configs)
            assert bad, f"{adapter.system}: declare at least one bad configuration in bad_configs"
            accepted = []
            for case, overrides in bad.items():
                try:
                    make_adapter(**overrides).check()
                except FatalError as e:
                    assert e.system == adapter.system, f"{case}: error names {e.system!r}"
                else:
                    accepted.append(case)
            assert not accepted, f"{adapter.system} accepted bad configurations: {accepted}"

        def test_fetches_and_paginates_to_the_end(
            self, sandbox: ConformanceSandbox, make_adapter: Callable[..., ConformanceAdapter]
        ) -> None:
            adapter = make_adapter()
            count = adapter.page_size * 2 + 1
            sandbox.seed(count)
            before = sandbox.requests(adapter.fetch_operation)
            keys = adapter.fetch_all()
            assert len(keys) == count, f"fetched {len(keys)} of {count} items"
            assert len(set(keys)) == count, "an item was delivered twice"
            assert sandbox.requests(adapter.fetch_operation) - before >= 3, "expected at least 3 pages"

        @pytest.mark.parametrize("kind", RETRIABLE_FAULTS)
        def test_retries_what_is_retriable(
            self, kind: str, sandbox: ConformanceSandbox, make_adapter: Callable[..., ConformanceAdapter]
        ) -> None:
            self._needs_fault(sandbox, kind)
            sandbox.seed(2)
            clean = make_adapter()
            before = sandbox.requests(clean.fetch_operation)
            expected = clean.fetch_all()
            per_run = sandbox.requests(clean.fetch_operation) - before
            times = 2
            sandbox.inject(kind, operation=clean.fetch_operation, times=times)
            adapter = make_adapter()
            before = sandbox.requests(adapter.fetch_operation)
            assert sorted(map(repr, adapter.fetch_all())) == sorted(map(repr, expected))
            assert sandbox.requests(adapter.fetch_operation) - before == per_run + times, (
                f"{kind}: expected exactly {times} retries"
            )

        @pytest.mark.parametrize("kind", FATAL_FAULTS)
        def test_does_not_retry_what_is_fatal(
            self, kind: str, sandbox: ConformanceSandbox, make_adapter: Callable[..., ConformanceAdapter]
        ) -> None:
            self._needs_fault(sandbox, kind)
            sandbox.seed(2)
            adapter = make_adapter()
            sandbox.inject(kind, operation=adapter.fetch_operation, times=1)
            before = sandbox.requests(adapter.fetch_operation)
            with pytest.raises(FatalError) as info:
                adapter.fetch_all()
            assert sandbox.requests(adapter.fetch_operation) - before == 1, f"{kind} was retried"
            assert info.value.system == adapter.system
            assert info.value.operation, "a fatal error must name its operation"

        def test_gives_up_after_bounded_retries(
            self, sandbox: ConformanceSandbox, make_adapter: Callable[..., ConformanceAdapter]
        ) -> None:
            self._needs_fault(sandbox, "server_error")
            adapter = make_adapter()
            sandbox.inject("server_error", operation=adapter.fetch_operation, times=1000)
            with pytest.raises(RetriableError) as info:
                adapter.fetch_all()
            assert info.value.system == adapter.system
            assert sandbox.requests(adapter.fetch_operation) < 20, "retries must be bounded"

        def test_duplicate_delivery_has_no_second_effect(
            self, sandbox: ConformanceSandbox, make_adapter: Callable[..., ConformanceAdapter]
        ) -> None:
            self._needs_fault(sandbox, "duplicate")
            adapter = make_adapter()
            count = adapter.page_size + 2
            sandbox.seed(count)
            sandbox.inject("duplicate", operation=adapter.fetch_operation, times=2)
            keys = adapter.fetch_all()
            assert len(keys) == len(set(keys)) == count, f"got {len(keys)} deliveries for {count} items"

        def test_duplicate_submission_has_no_second_effect(
            self, sandbox: ConformanceSandbox, make_adapter: Callable[..., ConformanceAdapter]
        ) -> None:
            adapter = make_adapter()
            self._needs_submit(adapter)
            serial = _serial("dup")
            adapter.submit(serial)
            assert sandbox.effects(serial) == 1
            make_adapter().submit(serial)  # a re-run after a crash: fresh process state, same serial
            assert sandbox.effects(serial) == 1, "the same serial took effect twice"

        @pytest.mark.parametrize("kind", ["drop_after", "drop_before"])
        def test_unknown_outcome_is_resolved_by_query(
            self, kind: str, sandbox: ConformanceSandbox, make_adapter: Callable[..., ConformanceAdapter]
        ) -> None:
            self._needs_fault(sandbox, kind)
            adapter = make_adapter()
            submit_op = self._needs_submit(adapter)
            assert adapter.query_operation, f"{adapter.system}: declare query_operation"
            serial = _serial(kind)
            sandbox.inject(kind, operation=submit_op, times=1)
            adapter.submit(serial)
            assert sandbox.effects(serial) == 1, f"{kind}: applied {sandbox.effects(serial)} times"
            ops = [op for op, ref in sandbox.journal() if ref == serial]
            assert ops[:2] == [submit_op, adapter.query_operation], (
                f"after an unknown outcome the next call must be a query, got {ops}"
            )
            expected_submits = 1 if kind == "drop_after" else 2
            assert ops.count(submit_op) == expected_submits, f"{kind}: submits seen {ops}"

        def test_archives_every_exchange_with_its_hash(
            self, sandbox: ConformanceSandbox, make_adapter: Callable[..., ConformanceAdapter], tmp_path: Path
        ) -> None:
            sandbox.seed(1)
            adapter = make_adapter()
            adapter.fetch_all()
            indexes = list(tmp_path.rglob("index.jsonl"))
            assert indexes, "no archive index written under the adapter's workdir"
            entries = [json.loads(line) for ix in indexes for line in ix.read_text().splitlines()]
            assert entries, "nothing archived"
            for ix in indexes:
                for line in ix.read_text().splitlines():
                    entry = json.loads(line)
                    digest = entry["sha256"]
                    stored = ix.parent / "sha256" / digest[:2] / digest
                    assert hashlib.sha256(stored.read_bytes()).hexdigest() == digest
                    assert entry.get("system") == adapter.system

        def test_secrets_stay_out_of_logs_and_archives(
            self,
            sandbox: ConformanceSandbox,
            make_adapter: Callable[..., ConformanceAdapter],
            tmp_path: Path,
            caplog: pytest.LogCaptureFixture,
        ) -> None:
            caplog.set_level(logging.DEBUG)
            sandbox.seed(3)
            adapter = make_adapter()
            adapter.check()
            adapter.fetch_all()
            if adapter.submit_operation:
                if "drop_after" in sandbox.supported_faults:
                    sandbox.inject("drop_after", operation=adapter.submit_operation, times=1)
                adapter.submit(_serial("secret"))
            chains: list[str] = []  # whole exception chains (``raise ... from e``), as a traceback shows them
            for overrides in type(adapter).bad_configs.values():  # the error paths log too
                try:
                    bad = make_adapter(**overrides)
                    chains.append(repr(bad))
                    bad.check()
                except ConnectorError as e:
                    logging.getLogger("cvhub.conformance").info("refused: %s", e)
                    chains.append("".join(traceback.format_exception(e)))
                    chains.extend(repr(x) for x in _chain(e))
            secrets = [s for s in sandbox.secrets() if s]
            assert secrets, "the sandbox must name the secrets to look for"
            leaked = [s[:3] + "..." for s in secrets if s in caplog.text]
            assert not leaked, f"secrets in logs: {leaked}"
            leaked = [s[:3] + "..." for s in secrets if any(s in c for c in chains)]
            assert not leaked, f"secrets in an exception chain or repr: {leaked}"
            files = _scan_for_secrets(tmp_path, secrets)
            assert not files, f"secrets written to {files}"

    ConformanceSuite.__name__ = ConformanceSuite.__qualname__ = f"Test{label}Conformance"
    ConformanceSuite.__doc__ = f"Standard conformance tests for {label} (generated by connectors.testing)."
    return ConformanceSuite
