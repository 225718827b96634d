"""The manual registry queue (``registry_packets``) checked against the ledger's journal
(``PacketCheck``, one of ``ledger verify``'s store checks, composed at the edge).

A packet is filed for a financing the journal holds (``finance``) and completed by an operator; the
registration number then reaches the journal (``record_registration``). So, per packet: its id is
derived from its request number, its payload hash is the hash of its payload; a registration
packet's request number is the one cvhub derives from a journaled financing, and its grantor,
grantee, voucher, piece, amount and currency are that financing's; a cancellation names that
financing's registration; once the journal records a registration (before the queue was read),
the financing's packet is ``CONFIRMED`` with that number; a pending packet carries no completion.
Who completed a packet, when, and the operator's note are not in the journal (not checked).
Reads only; never creates the queue's database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from connectors.registry.manual import REGISTRATION_NO, _packet_id, packets
from ledger.money import AmountError, to_decimal_text
from ledger.verify import JournalView, StoreCheck, Violation, canonical_value, read_store_table

RequestNo = Callable[[str, str], str]
"""(operation prefix "reg" | "cxl", financing id) -> the request number the registry flow files."""


class PacketCheck(StoreCheck):
    """``registry_packets`` at ``url`` (the manual registry's database) against the journal."""

    name = "registry packets"

    def __init__(self, url: str, request_no: RequestNo) -> None:
        self.url = url
        self.request_no = request_no
        self.rows: list[tuple[Any, ...]] | None = None

    @property
    def summary(self) -> str:
        return f"registry packets ({len(self.rows or [])})"

    def read(self) -> None:
        self.rows = read_store_table(self.url, packets)

    def check(self, journal: JournalView) -> Iterator[Violation]:
        if not self.rows:
            return
        cols = [c.name for c in packets.columns]
        currency: dict[str, str] = {}
        fins: dict[str, dict[str, Any]] = {}
        regs: dict[str, tuple[str, int]] = {}
        for f in journal.facts("issue", "finance", "record_registration"):
            if f.cmd == "issue":
                currency[str(f.data.get("voucher_no"))] = str(f.body.get("currency"))
            elif f.cmd == "finance":
                piece = str(f.data.get("piece_no"))
                voucher = piece.rsplit("-", 1)[0]
                fins[str(f.data.get("financing_id"))] = {
                    "piece": piece,
                    "voucher": voucher,
                    "seller": f.body.get("holder"),
                    "funder": f.body.get("funder"),
                    "amount": int(f.data.get("proceeds_minor", 0)) + int(f.data.get("interest_minor", 0)),
                    "currency": currency.get(voucher),
                }
            else:
                regs[str(f.body.get("financing_id"))] = (str(f.body.get("registration_no")), f.seq)
        requests = {self.request_no(op, fid): (op, fid) for fid in fins for op in ("reg", "cxl")}
        for raw in self.rows:
            row = dict(zip(cols, raw, strict=True))
            where = f"registry_packets packet_id={row['packet_id']}"
            for c, v in zip(packets.columns, raw, strict=True):
                try:
                    canonical_value(c, v)
                except ValueError as e:
                    yield Violation(where, c.name, f"unparsable value {v!r}: {e}")
                    return
            bad = _packet(row, requests, fins, regs, journal.stable_seq)
            if bad is not None:
                yield Violation(where, bad[0], bad[1])
                return


def _packet(
    row: dict[str, Any],
    requests: dict[str, tuple[str, str]],
    fins: dict[str, dict[str, Any]],
    regs: dict[str, tuple[str, int]],
    stable_seq: int,
) -> tuple[str, str] | None:
    """The first column of one packet that disagrees with the journal or with itself."""
    known = requests.get(str(row["request_no"]))
    if row["packet_id"] != _packet_id(str(row["request_no"])):
        if known is not None:
            return (
                "packet_id",
                f"is not the id of request {row['request_no']} ({_packet_id(row['request_no'])})",
            )
        return "request_no", f"{row['request_no']!r}: no packet id derives from it and no financing files it"
    if known is None:
        return "request_no", f"{row['request_no']!r}: no financing in the journal files this request"
    op, fid = known
    fin = fins[fid]
    try:
        payload = json.loads(row["payload"])
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return "payload", "not a JSON object"
    want = _payload_facts(op, fin, regs.get(fid))
    got = _facts_of(op, payload)
    wrong = [k for k in want if want[k] is not None and got.get(k) != want[k]]
    if hashlib.sha256(str(row["payload"]).encode()).hexdigest() != row["payload_sha256"]:
        if wrong:
            return (
                "payload",
                f"{wrong[0]}: {got.get(wrong[0])!r}, financing {fid} in the journal: {want[wrong[0]]!r}",
            )
        return "payload_sha256", "is not the SHA-256 of the payload"
    if wrong:
        return (
            "payload",
            f"{wrong[0]}: {got.get(wrong[0])!r}, financing {fid} in the journal: {want[wrong[0]]!r}",
        )
    operation = "register" if op == "reg" else "cancel"
    if row["operation"] != operation:
        return "operation", f"stored {row['operation']!r}, request {row['request_no']} is a {operation}"
    if row["grantor_uscc"] != fin["seller"]:
        return (
            "grantor_uscc",
            f"stored {row['grantor_uscc']!r}, financing {fid}'s seller is {fin['seller']!r}",
        )
    if row["voucher_id"] != fin["voucher"]:
        return "voucher_id", f"stored {row['voucher_id']!r}, financing {fid} is of voucher {fin['voucher']!r}"
    recorded = regs.get(fid)
    target = recorded[0] if recorded is not None else None
    if op == "reg" and row["target_registration_no"] is not None:
        return "target_registration_no", "a registration packet names no target"
    if op == "cxl" and target is not None and row["target_registration_no"] != target:
        return (
            "target_registration_no",
            f"stored {row['target_registration_no']!r}, financing {fid} has {target!r}",
        )
    status = row["status"]
    if status not in ("PENDING", "CONFIRMED", "REJECTED"):
        return "status", f"{status!r} is not PENDING, CONFIRMED or REJECTED"
    if status == "PENDING":
        for name in ("registration_no", "completed_at", "completed_by"):
            if row[name] is not None:
                return name, "set on a packet still pending"
    elif row["completed_at"] is None:
        return "completed_at", f"missing on a {status} packet"
    if op == "reg" and recorded is not None and recorded[1] <= stable_seq:
        if status != "CONFIRMED":
            return (
                "status",
                f"stored {status!r}, the journal recorded registration {target} (seq {recorded[1]})",
            )
        if row["registration_no"] != target:
            return "registration_no", f"stored {row['registration_no']!r}, the journal recorded {target!r}"
    if op == "reg" and status == "CONFIRMED" and not REGISTRATION_NO.match(str(row["registration_no"])):
        return "registration_no", f"{row['registration_no']!r} is not a registration number"
    if row["completed_at"] is not None and str(row["completed_at"]) < str(row["created_at"]):
        return "completed_at", "before created_at"
    return None


def _facts_of(op: str, payload: dict[str, Any]) -> dict[str, Any]:
    if op == "cxl":
        return {"registration_no": payload.get("登记证明编号 registration_no")}
    grantor = payload.get("出让人 grantor") or {}
    grantee = payload.get("受让人 grantee") or {}
    prop = payload.get("标的 property") or {}
    return {
        "grantor": grantor.get("uscc") if isinstance(grantor, dict) else None,
        "grantee": grantee.get("uscc") if isinstance(grantee, dict) else None,
        "voucher": prop.get("voucher_id") if isinstance(prop, dict) else None,
        "piece": prop.get("piece_id") if isinstance(prop, dict) else None,
        "amount": prop.get("amount") if isinstance(prop, dict) else None,
        "currency": prop.get("currency") if isinstance(prop, dict) else None,
    }


def _payload_facts(op: str, fin: dict[str, Any], recorded: tuple[str, int] | None) -> dict[str, Any]:
    if op == "cxl":
        return {"registration_no": recorded[0] if recorded else None}
    try:
        amount = to_decimal_text(fin["amount"], fin["currency"]) if fin["currency"] else None
    except AmountError:
        amount = None
    return {
        "grantor": fin["seller"],
        "grantee": fin["funder"],
        "voucher": fin["voucher"],
        "piece": fin["piece"],
        "amount": amount,
        "currency": fin["currency"],
    }
