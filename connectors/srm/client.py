"""SRM client: list confirmed payables since a cursor, write back voucher numbers and statuses.

Reads return the SRM's raw JSON records page by page (each page already archived raw with its
SHA-256 by the REST transport) plus the cursor to persist; it never maps them (``mappings`` does)
and never decides what a payable means for the ledger. Write-backs carry an idempotency key
derived from (payable, voucher, status); a lost answer is resolved by reading the payable back
before resending under the same key. Batch write-backs (``write_back_batch``, up to 500 items
per POST) carry a caller-chosen batch key; a lost answer is resolved by re-POSTing the same batch
under the same key (the SRM replays its answer or applies it now; items are idempotent by content).
It must never log a token or a record's content.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from connectors.archive import Archive
from connectors.errors import OutcomeUnknown, ValidationFailed
from connectors.rest import RestClient, RestConfig, path_segment

log = logging.getLogger("cvhub.connectors.srm")

SYSTEM = "srm"


@dataclass(frozen=True, slots=True)
class PayablePage:
    """One page of confirmed payables as the SRM sent them.

    records: raw JSON objects, each delivered once per run (a record the SRM repeats is dropped
        here by ``payable_id``); cursor: where the next run starts (persist it after the page's
        records are committed); sha256: the archived raw response.
    """

    number: int
    records: tuple[dict[str, Any], ...]
    cursor: str
    sha256: str
    last: bool


@dataclass(frozen=True, slots=True)
class WriteBack:
    payable_id: str
    voucher_no: str
    status: str
    replayed: bool  # the SRM had already applied it (idempotent replay or resolved unknown outcome)


@dataclass(frozen=True, slots=True)
class WriteBackItem:
    """One item of a batch write-back; ``amount`` is a decimal string (never a float)."""

    payable_id: str
    voucher_no: str
    status: str
    amount: str | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class BatchItemRefused:
    """An item of a batch the SRM refused (the rest applied): its machine code and message."""

    item: WriteBackItem
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The SRM's answer to one batch: items written (``WriteBack``) and items refused, in order."""

    written: tuple[WriteBack, ...]
    refused: tuple[BatchItemRefused, ...]
    replayed: bool  # the whole answer was a replay of an earlier POST of this batch key


BATCH_MAX = 500


class SrmClient:
    """One SRM endpoint. ``config.system`` should be ``"srm"`` (it names errors and archive entries)."""

    def __init__(
        self, config: RestConfig, *, archive: Archive, page_size: int = 100, rest: RestClient | None = None
    ) -> None:
        self.config = config
        self.page_size = page_size
        self.rest = rest or RestClient(config, archive=archive)

    def close(self) -> None:
        self.rest.close()

    def check(self) -> None:
        """Authenticate with the cheapest call there is (one payable listed)."""
        self.rest.get("/api/v1/payables", operation="list_payables", params={"limit": "1"})

    def iter_pages(self, since: str | None = None) -> Iterator[PayablePage]:
        """Confirmed payables after ``since`` (None: from the beginning), to the end, page by page."""
        params = {"status": "CONFIRMED", "limit": str(self.page_size)}
        if since:
            params["since"] = since
        seen: set[str] = set()
        for page in self.rest.paginate("/api/v1/payables", operation="list_payables", params=params):
            records = []
            for i, raw in enumerate(page.items):
                pid = raw.get("payable_id") if isinstance(raw, dict) else None
                if not isinstance(pid, str) or not pid:
                    raise ValidationFailed(
                        f"page {page.number} item {i}: missing payable_id",
                        system=SYSTEM,
                        operation="list_payables",
                        ref=page.response.response_sha256,
                    )
                if pid in seen:
                    log.info("srm.list_payables: %s delivered twice, kept once", pid)
                    continue
                seen.add(pid)
                records.append(raw)
            cursor = page.body.get("cursor")
            if not isinstance(cursor, str):
                raise ValidationFailed(
                    f"page {page.number}: no cursor",
                    system=SYSTEM,
                    operation="list_payables",
                    ref=page.response.response_sha256,
                )
            yield PayablePage(
                page.number, tuple(records), cursor, page.response.response_sha256, page.next_cursor is None
            )

    def get_payable(self, payable_id: str) -> dict[str, Any]:
        seg = path_segment(payable_id, system=self.rest.config.system, operation="get_payable")
        resp = self.rest.get(f"/api/v1/payables/{seg}", operation="get_payable", ref=payable_id)
        return self.rest.json_object(resp, "get_payable", payable_id)

    def write_back(
        self,
        payable_id: str,
        voucher_no: str,
        status: str,
        *,
        amount: str | None = None,
        currency: str | None = None,
    ) -> WriteBack:
        """Tell the SRM which voucher now covers ``payable_id`` and its status (idempotent).

        On an unknown outcome the payable is read back: if it already shows this voucher and
        status, done; otherwise the write-back is resent under the same idempotency key.
        """
        body: dict[str, Any] = {"voucher_no": voucher_no, "status": status}
        if amount is not None:
            body.update(amount=amount, currency=currency or "CNY")
        key = f"srm-wb:{payable_id}:{voucher_no}:{status}"
        seg = path_segment(payable_id, system=self.rest.config.system, operation="write_back_voucher")
        path = f"/api/v1/payables/{seg}/voucher"
        try:
            resp = self.rest.post(
                path, body, operation="write_back_voucher", ref=payable_id, idempotency_key=key
            )
        except OutcomeUnknown as unknown:
            log.warning("%s; reading payable %s back before any resend", unknown, payable_id)
            current = self.get_payable(payable_id).get("voucher") or {}
            if current.get("voucher_no") == voucher_no and current.get("status") == status:
                return WriteBack(payable_id, voucher_no, status, replayed=True)
            resp = self.rest.post(
                path, body, operation="write_back_voucher", ref=payable_id, idempotency_key=key
            )
        replayed = resp.headers.get("Idempotent-Replayed", "").lower() == "true"
        return WriteBack(payable_id, voucher_no, status, replayed=replayed)

    def write_back_batch(self, items: list[WriteBackItem], *, batch_key: str) -> BatchResult:
        """Write back up to 500 vouchers in one POST under ``batch_key`` (idempotent, see below).

        ``batch_key`` must be derived from the batch's content (the same items -> the same key):
        the SRM replays its first answer for a key it has seen. 5xx/429 are retried by the
        transport under the same key. An unknown outcome (answer lost) is resolved by re-POSTing
        the SAME body under the SAME key, once: if the first POST applied, the SRM replays its
        answer; if it never arrived, it applies now; each item is also idempotent by content, so
        nothing applies twice. (Reading 500 payables back one by one would cost more than the
        batch saved.) A second unknown outcome is raised. A 4xx for the whole batch raises
        ``ClientError``; per-item refusals come back in ``BatchResult.refused``.
        """
        if not 1 <= len(items) <= BATCH_MAX:
            raise ValueError(f"a write-back batch holds 1..{BATCH_MAX} items, not {len(items)}")
        body: dict[str, Any] = {"items": [_item_body(i) for i in items]}
        path = "/api/v1/voucher-writebacks:batch"
        op = "write_back_vouchers_batch"
        try:
            resp = self.rest.post(path, body, operation=op, ref=batch_key, idempotency_key=batch_key)
        except OutcomeUnknown as unknown:
            log.warning("%s; re-sending batch %s under the same key", unknown, batch_key)
            resp = self.rest.post(path, body, operation=op, ref=batch_key, idempotency_key=batch_key)
        replayed = resp.headers.get("Idempotent-Replayed", "").lower() == "true"
        doc = self.rest.json_object(resp, op, batch_key)
        answers = doc.get("items")
        if not isinstance(answers, list) or len(answers) != len(items):
            raise ValidationFailed(
                f"batch answer has {len(answers) if isinstance(answers, list) else 'no'} items for "
                f"{len(items)} sent",
                system=SYSTEM,
                operation=op,
                ref=resp.response_sha256,
            )
        written: list[WriteBack] = []
        refused: list[BatchItemRefused] = []
        for n, (item, answer) in enumerate(zip(items, answers, strict=True)):
            if not isinstance(answer, dict) or answer.get("payable_id") != item.payable_id:
                raise ValidationFailed(
                    f"batch answer item {n} is not {item.payable_id}",
                    system=SYSTEM,
                    operation=op,
                    ref=resp.response_sha256,
                )
            if answer.get("ok") is True:
                written.append(
                    WriteBack(
                        item.payable_id,
                        item.voucher_no,
                        item.status,
                        replayed=replayed or answer.get("applied") is not True,
                    )
                )
            else:
                err = answer.get("error") if isinstance(answer.get("error"), dict) else {}
                refused.append(
                    BatchItemRefused(item, str(err.get("code") or "REFUSED"), str(err.get("message") or ""))
                )
        return BatchResult(tuple(written), tuple(refused), replayed)


def _item_body(item: WriteBackItem) -> dict[str, Any]:
    out: dict[str, Any] = {
        "payable_id": item.payable_id,
        "voucher_no": item.voucher_no,
        "status": item.status,
    }
    if item.amount is not None:
        out.update(amount=item.amount, currency=item.currency or "CNY")
    return out
