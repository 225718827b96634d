"""Value types of reconciliation: expected items, match configuration, matches and exceptions.

Small immutable records shared by the matching engine (pure), the storage layer and the finance
package. Amounts are integer minor units with their currency; never ``float``. This module must
never do I/O and never import connectors or mappings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, NamedTuple

from ledger.canonical import CreditDebit

ItemKind = Literal["clearing", "disbursement", "repayment"]
ITEM_KINDS: tuple[str, ...] = ("clearing", "disbursement", "repayment")

# Match rules, one per way a match can be made (recorded on every match row).
RULE_REF_E2E = "ref_end_to_end_id"          # pass 1: EndToEndId + amount
RULE_REF_INSTR = "ref_instruction_id"       # pass 1: InstrId (= clearing instruction id) + amount
RULE_REF_SERIAL = "ref_serial_no"           # pass 1: serial number + amount
RULE_REF_PIECE = "ref_piece_no"             # pass 1: piece number in the remittance info + amount
RULE_REF_BATCH = "ref_batch_end_to_end_ids"  # pass 1: a batch booking listing each item's EndToEndId
RULE_WINDOW = "amount_account_window"       # pass 2: amount + account + direction within the date window
RULE_GROUP_VOUCHER = "group_voucher"        # pass 3: one line pays a whole voucher's open items (by ref)
RULE_GROUP_SUM = "group_obligor_due_date"   # pass 3: one line = sum of one obligor's items due that day
RULE_GROUP_LINES = "group_lines_ref"        # pass 3: several lines (payment + netted fee) -> one item
RULES: tuple[str, ...] = (
    RULE_REF_E2E, RULE_REF_INSTR, RULE_REF_SERIAL, RULE_REF_PIECE, RULE_REF_BATCH, RULE_WINDOW,
    RULE_GROUP_VOUCHER, RULE_GROUP_SUM, RULE_GROUP_LINES,
)

# Exception reason codes, in order of precedence (a line gets the first that applies).
EXC_RETURN = "RETURN"
EXC_CURRENCY = "CURRENCY_MISMATCH"
EXC_DUPLICATE = "DUPLICATE"
EXC_AMBIGUOUS = "AMBIGUOUS"
EXC_AMOUNT_DIFF = "AMOUNT_DIFF"
EXC_UNMATCHED_LINE = "UNMATCHED_LINE"
EXC_UNMATCHED_EXPECTED = "UNMATCHED_EXPECTED"

NEXT_ACTION: dict[str, str] = {
    EXC_RETURN: "Payment returned or rejected: confirm the payee details with the holder, then pay "
                "again with the ledger's reinstruct (new instruction, new EndToEndId). If the item was "
                "settled by an earlier statement, reconciliation has already booked reverse_settlement "
                "(see the detail); if the detail says the ledger REFUSED, fix the cause and reverse by hand.",
    EXC_CURRENCY: "Reference matches an item in another currency: confirm with the bank which "
                  "leg is wrong; never settle across currencies.",
    EXC_DUPLICATE: "Possible double payment: confirm with the bank and request a recall or refund "
                   "of the second transfer.",
    EXC_AMBIGUOUS: "Several expected items fit this line (or several lines fit one item): choose "
                   "the right pairing manually and record it.",
    EXC_AMOUNT_DIFF: "Reference matches but the amount differs: confirm the fee or short payment "
                     "with the bank and book the difference, or chase the payer for the rest.",
    EXC_UNMATCHED_LINE: "No expected item for this line: identify the payer/payee from the "
                        "remittance info and register the expected item, then re-run.",
    EXC_UNMATCHED_EXPECTED: "Expected payment not seen by the end of its window: chase the payer "
                            "and check the payment instruction status (pain.002).",
}
EXCEPTION_CODES: tuple[str, ...] = tuple(NEXT_ACTION)


def normalise_account(account: str) -> str:
    """Accounts compare without spaces and case (IBAN-style grouping is presentation)."""
    return account.replace(" ", "").upper()


class ExpectedItem(NamedTuple):
    """One money movement cvhub expects to see on a bank statement (immutable).

    account: the account whose statement shows it (a clearing instruction appears as a debit on
        the payer's account); direction: CRDT/DBIT from that account holder's side.
    due_date: the expected value date; the match window is ``[due - before, due + after]``
        (``MatchConfig`` defaults, or the per-item override).
    end_to_end_id / serial_no / piece_no: strong references (pass 1); item_id doubles as the
        instruction id a bank echoes as InstrId. voucher_no groups items for pass 3.

    A NamedTuple rather than a frozen dataclass: a million of them are built per run and tuple
    construction is several times cheaper.
    """

    item_id: str
    kind: ItemKind
    account: str
    currency: str
    direction: CreditDebit
    amount_minor: int
    due_date: date
    end_to_end_id: str | None = None
    serial_no: str | None = None
    voucher_no: str | None = None
    piece_no: str | None = None
    obligor_uscc: str | None = None
    counterparty: str | None = None
    window_before_days: int | None = None
    window_after_days: int | None = None

    @property
    def signed_minor(self) -> int:
        return self.amount_minor if self.direction == "CRDT" else -self.amount_minor


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Tunable limits of the matching passes (validated on construction).

    window_before_days / window_after_days: pass 2/3 value-date window around the due date.
    max_group_items: largest group of items one line may pay (pass 3, one-to-many).
    max_group_lines: largest group of lines that may settle one item (pass 3, many-to-one).
    """

    window_before_days: int = 3
    window_after_days: int = 5
    max_group_items: int = 20
    max_group_lines: int = 4

    def __post_init__(self) -> None:
        if min(self.window_before_days, self.window_after_days) < 0:
            raise ValueError("MatchConfig: window days must be >= 0")
        if self.max_group_items < 2 or self.max_group_lines < 2:
            raise ValueError("MatchConfig: group caps must be >= 2")

    def window(self, item: ExpectedItem) -> tuple[date, date]:
        before = self.window_before_days if item.window_before_days is None else item.window_before_days
        after = self.window_after_days if item.window_after_days is None else item.window_after_days
        return item.due_date - timedelta(days=before), item.due_date + timedelta(days=after)


class Match(NamedTuple):
    """One line-to-item allocation. A group (one-to-many or many-to-one) shares ``group``."""

    line_index: int
    item: ExpectedItem
    rule: str
    group: int
    amount_minor: int          # the part of the line allocated to the item (positive)


class ReconException(NamedTuple):
    """Something a human must look at; ``code`` is one of ``EXCEPTION_CODES``."""

    code: str
    line_index: int | None
    item_id: str | None
    amount_minor: int
    currency: str
    detail: str

    @property
    def next_action(self) -> str:
        return NEXT_ACTION[self.code]
