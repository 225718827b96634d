"""The flows' own records checked against the ledger's journal, and the composition of every store
check that ``ledger verify`` runs (``store_checks``: the ``ledger_verify`` DAG and
``cvhub ledger verify`` call it; the ledger package itself never imports connectors or flows).

Flow records derived from journaled facts:

- **SRM write-backs** (``SrmWriteBackCheck``): each interval's ``vouchers.json`` (what the
  ``write_back`` step sends to the SRM) lists vouchers the journal issued under
  ``srm:issue:<payable id>``, with that voucher number, amount and currency; a quarantined
  write-back carries the same; a quarantined payable the journal has since issued is not still
  open, and a replayed one's resolution names the voucher the journal issued.
- **Registry cancellations** (``RegistryCursorCheck``): the ``registry_sync`` cursor
  ``cancelled:<financing>`` holds that financing's registration number as journaled.

Kept free of Airflow imports (the CLI runs it). The flows' naming conventions are repeated here
(``FLOW``, ``issue_key``, ``request_no``...); ``tests/ledger/test_verify_stores.py`` pins them to
the flow modules' own.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from cvhub.settings import Settings
from ledger.money import AmountError, to_minor
from ledger.verify import JournalView, StoreCheck, Violation

SRM_FLOW = "srm_payables"
REGISTRY_FLOW = "registry_sync"
_ISSUED = re.compile(r"^issued (\S+)")


def issue_key(payable_id: str) -> str:
    """The ledger key under which the SRM flow issues a payable's voucher."""
    return f"srm:issue:{payable_id}"


def request_no(prefix: str, financing_id: str) -> str:
    """The registry request number the registry flow files for a financing ("reg" / "cxl")."""
    return f"cvhub-{prefix}-{hashlib.sha256(financing_id.encode()).hexdigest()[:32]}"


def _minor(text: Any, currency: Any) -> int | None:
    try:
        return to_minor(str(text), str(currency))
    except AmountError:
        return None


class SrmWriteBackCheck(StoreCheck):
    """The SRM flow's write-back batches under ``data_dir`` and its quarantine items in ``engine``."""

    name = "SRM write-backs"

    def __init__(self, data_dir: Path, engine: Engine) -> None:
        self.data_dir = Path(data_dir)
        self.engine = engine
        self.files: list[tuple[Path, bytes]] = []
        self.count = 0

    @property
    def summary(self) -> str:
        return f"SRM write-backs ({self.count} in {len(self.files)} batches)"

    def read(self) -> None:
        root = self.data_dir / "flows" / SRM_FLOW
        if root.is_dir():
            self.files = [(p, p.read_bytes()) for p in sorted(root.glob("*/vouchers.json"))]

    def check(self, journal: JournalView) -> Iterator[Violation]:
        issued: dict[str, tuple[int, str, str, str]] = {}
        for f in journal.facts("issue"):
            if f.key.startswith("srm:issue:"):
                issued[f.key] = (
                    f.seq,
                    str(f.data.get("voucher_no")),
                    str(f.body.get("amount")),
                    str(f.body.get("currency")),
                )
        for path, data in self.files:
            try:
                items = json.loads(data)
            except ValueError:
                items = None
            if not isinstance(items, list):
                yield Violation(str(path), "vouchers", "not a JSON list of write-backs")
                return
            for i, item in enumerate(items):
                self.count += 1
                bad = _write_back(item, issued)
                if bad is not None:
                    yield Violation(f"{path}[{i}]", bad[0], bad[1])
                    return
        conn = journal.same_database(self.engine)
        if conn is not None:
            yield from self._items(conn, issued, journal.stable_seq)
            return
        with self.engine.connect() as own:
            yield from self._items(own, issued, journal.stable_seq)

    def _items(
        self, conn: Connection, issued: dict[str, tuple[int, str, str, str]], stable_seq: int
    ) -> Iterator[Violation]:
        ph = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        for iid, ref, status, raw, context, resolution in conn.exec_driver_sql(
            f"SELECT id, item_ref, status, raw, context, resolution FROM quarantine_items WHERE flow = {ph} "
            "ORDER BY id",
            (SRM_FLOW,),
        ):
            where = f"quarantine_items id={iid}"
            try:
                kind = json.loads(context).get("kind")
            except (ValueError, AttributeError):
                continue  # the quarantine's own check reports a context that is not an object
            if kind == "write_back":
                try:
                    item = json.loads(bytes(raw or b"{}"))
                except ValueError:
                    yield Violation(where, "raw", "not the JSON write-back the flow quarantined")
                    return
                if not isinstance(item, dict) or ref != f"writeback:{item.get('payable_id')}":
                    yield Violation(
                        where, "item_ref", f"{ref!r} is not writeback:<the raw write-back's payable>"
                    )
                    return
                bad = _write_back(item, issued)
                if bad is not None:
                    yield Violation(where, "raw", f"{bad[0]}: {bad[1]}")
                    return
            elif kind == "issue":
                journaled = issued.get(issue_key(str(ref)))
                if status == "open" and journaled is not None and journaled[0] <= stable_seq:
                    yield Violation(
                        where,
                        "status",
                        f"open, but the journal issued {journaled[1]} for {ref} "
                        f"(seq {journaled[0]}): the flow resolves an item it issues",
                    )
                    return
                m = _ISSUED.match(str(resolution or ""))
                if status == "replayed" and m is not None:
                    if journaled is None:
                        yield Violation(where, "item_ref", f"{ref!r}: the journal issued no voucher for it")
                        return
                    if m.group(1) != journaled[1]:
                        yield Violation(
                            where,
                            "resolution",
                            f"names {m.group(1)}, the journal issued {journaled[1]} for {ref}",
                        )
                        return


def _write_back(item: Any, issued: dict[str, tuple[int, str, str, str]]) -> tuple[str, str] | None:
    if not isinstance(item, dict):
        return "item", "not a JSON object"
    pid = item.get("payable_id")
    journaled = issued.get(issue_key(str(pid)))
    if journaled is None:
        return "payable_id", f"{pid!r}: the journal issued no voucher for it"
    _, voucher, amount, currency = journaled
    if item.get("voucher_no") != voucher:
        return "voucher_no", f"{item.get('voucher_no')!r}, the journal issued {voucher!r} for {pid}"
    if item.get("currency") != currency:
        return "currency", f"{item.get('currency')!r}, the journal issued {pid}'s voucher in {currency}"
    if _minor(item.get("amount"), currency) != _minor(amount, currency):
        return "amount", f"{item.get('amount')!r}, the journal issued {amount} for {pid}"
    return None


class RegistryCursorCheck(StoreCheck):
    """The registry flow's ``cancelled:<financing>`` cursors in ``engine`` against the journal."""

    name = "registry cancellations"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0

    @property
    def summary(self) -> str:
        return f"registry cancellations ({self.count})"

    def check(self, journal: JournalView) -> Iterator[Violation]:
        regs = {
            str(f.body.get("financing_id")): str(f.body.get("registration_no"))
            for f in journal.facts("record_registration")
        }
        conn = journal.same_database(self.engine)
        if conn is not None:
            yield from self._cursors(conn, regs)
            return
        with self.engine.connect() as own:
            yield from self._cursors(own, regs)

    def _cursors(self, conn: Connection, regs: dict[str, str]) -> Iterator[Violation]:
        ph = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        for name, value in conn.exec_driver_sql(
            f"SELECT name, value FROM flow_cursors WHERE flow = {ph} ORDER BY name", (REGISTRY_FLOW,)
        ):
            if not str(name).startswith("cancelled:"):
                continue
            self.count += 1
            fid = str(name).removeprefix("cancelled:")
            where = f"flow_cursors flow={REGISTRY_FLOW} name={name}"
            if fid not in regs:
                yield Violation(where, "name", f"the journal recorded no registration of financing {fid}")
                return
            if value != regs[fid]:
                yield Violation(
                    where, "value", f"stored {value!r}, the journal recorded {regs[fid]!r} for {fid}"
                )
                return


class QuarantineFlowsCheck(StoreCheck):
    """Every quarantined item belongs to a flow that can replay it (``replay.HANDLERS``)."""

    name = "quarantine flows"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def check(self, journal: JournalView) -> Iterator[Violation]:
        from plugins.cvhub_flows.replay import HANDLERS

        conn = journal.same_database(self.engine)
        if conn is not None:
            yield from self._flows(conn, HANDLERS)
            return
        with self.engine.connect() as own:
            yield from self._flows(own, HANDLERS)

    def _flows(self, conn: Connection, handlers: dict[str, str]) -> Iterator[Violation]:
        for iid, flow in conn.exec_driver_sql("SELECT id, flow FROM quarantine_items ORDER BY id"):
            if flow not in handlers:
                yield Violation(
                    f"quarantine_items id={iid}", "flow", f"{flow!r} is no flow with a replay handler"
                )
                return


def store_checks(settings: Settings, ledger_engine: Engine) -> Sequence[StoreCheck]:
    """Every store check, for the ledger at ``ledger_engine`` and the stores under ``settings``:
    recon, quarantine and the flows' records in the ledger's database; the registry queue and the
    processed-file record in ``<data_dir>/connectors.sqlite`` (skipped when absent), the latter
    against the raw archive."""
    from connectors.registry.manual import default_db_url as registry_url
    from connectors.registry.verify import PacketCheck
    from connectors.sftp_record import default_db_url as record_url
    from connectors.sftp_record_verify import ProcessedFilesCheck
    from ledger.quarantine_verify import QuarantineCheck
    from ledger.recon.verify import ReconCheck

    return [
        ReconCheck(ledger_engine),
        QuarantineCheck(ledger_engine),
        QuarantineFlowsCheck(ledger_engine),
        SrmWriteBackCheck(settings.data_dir, ledger_engine),
        RegistryCursorCheck(ledger_engine),
        PacketCheck(registry_url(settings.data_dir), request_no),
        ProcessedFilesCheck(record_url(settings.data_dir), settings.archive_dir),
    ]
