"""The streaming statement model shared by the camt, MT940 and CSV parsers, and its acceptance checks.

A format parser produces a flat stream of items: ``Head`` (a statement's header, as a canonical
``Statement`` without entries), then its ``StatementEntry`` items (or ``EntryRun``s: several
entries with their totals, from a compiled fast path), then ``Tail`` (closing balance if it comes
after the entries, declared totals). ``assemble`` turns that flat stream into
``StatementReader`` objects whose entries are yielded lazily, so a 1 GB file is read in constant
memory; when a reader's entries are exhausted it runs the checks: currency, opening + entries =
closing, declared totals, and sequence continuity against the caller's last known sequence per
account. Nothing here knows a file format; nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Generator, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import date
from itertools import chain
from typing import Any

from ledger.canonical import CreditDebit, Party, RejectedRecord, Statement, StatementEntry, TransactionDetail
from ledger.money import to_decimal_text
from mappings.errors import (
    BalanceMismatch,
    FieldError,
    MappingError,
    SequenceGap,
    SequenceRepeat,
    SummaryMismatch,
)

# --- fast construction of canonical entries (the parsers' hot path) ---------------------------
# A frozen slotted dataclass's generated __init__ sets each of StatementEntry's 18 fields through
# object.__setattr__ (~2.6 us per entry, measured); setting the slots through their descriptors
# on object.__new__ builds the identical, equal object in about half that. The field list is
# checked at import: if ledger.canonical ever adds or reorders a field, the plain constructor
# is used instead (correct, just slower).

_ENTRY_FIELDS = ("amount_minor", "currency", "credit_debit", "booking_date", "value_date", "reversal",
                 "status", "entry_ref", "account_servicer_ref", "end_to_end_id", "instruction_id",
                 "mandate_or_serial", "remittance_info", "bank_tx_code", "return_reason", "counterparty",
                 "line", "transactions")
_new = object.__new__
_S: Any = StatementEntry
(_s_amount, _s_ccy, _s_cd, _s_booking, _s_value, _s_reversal, _s_status, _s_entry_ref, _s_acct_ref,
 _s_e2e, _s_instr, _s_mandate, _s_remit, _s_btc, _s_rtr, _s_party, _s_line, _s_txs) = (
    [getattr(_S, name).__set__ for name in _ENTRY_FIELDS])
_FAST_ENTRY = tuple(f.name for f in dataclasses.fields(StatementEntry)) == _ENTRY_FIELDS and not hasattr(
    StatementEntry, "__post_init__")


def _make_entry_fast(  # noqa: PLR0917 - positional on purpose: the hot path, mirrors the dataclass
        amount_minor: int, currency: str, credit_debit: CreditDebit, booking_date: date | None,
        value_date: date | None, reversal: bool, status: str, entry_ref: str | None,
        account_servicer_ref: str | None, end_to_end_id: str | None, instruction_id: str | None,
        mandate_or_serial: str | None, remittance_info: str | None, bank_tx_code: str | None,
        return_reason: str | None, counterparty: Party, line: int | None,
        transactions: tuple[TransactionDetail, ...]) -> StatementEntry:
    e: StatementEntry = _new(_S)
    _s_amount(e, amount_minor)
    _s_ccy(e, currency)
    _s_cd(e, credit_debit)
    _s_booking(e, booking_date)
    _s_value(e, value_date)
    _s_reversal(e, reversal)
    _s_status(e, status)
    _s_entry_ref(e, entry_ref)
    _s_acct_ref(e, account_servicer_ref)
    _s_e2e(e, end_to_end_id)
    _s_instr(e, instruction_id)
    _s_mandate(e, mandate_or_serial)
    _s_remit(e, remittance_info)
    _s_btc(e, bank_tx_code)
    _s_rtr(e, return_reason)
    _s_party(e, counterparty)
    _s_line(e, line)
    _s_txs(e, transactions)
    return e


_P: Any = Party
_s_name, _s_account, _s_agent, _s_uscc = [
    getattr(_P, name).__set__ for name in ("name", "account", "agent", "uscc")]
_FAST_PARTY = tuple(f.name for f in dataclasses.fields(Party)) == ("name", "account", "agent", "uscc") \
    and not hasattr(Party, "__post_init__")


def _make_party_fast(name: str | None, account: str | None, agent: str | None) -> Party:
    p: Party = _new(_P)
    _s_name(p, name)
    _s_account(p, account)
    _s_agent(p, agent)
    _s_uscc(p, None)
    return p


def _make_party_slow(name: str | None, account: str | None, agent: str | None) -> Party:
    return Party(name=name, account=account, agent=agent)


#: ``make_party(name, account, agent)`` -> an equal ``Party(name=, account=, agent=)`` (uscc None).
make_party: Callable[[str | None, str | None, str | None], Party] = (
    _make_party_fast if _FAST_PARTY else _make_party_slow)

#: ``make_entry(all 18 fields positionally, in StatementEntry's order)`` -> an equal StatementEntry.
make_entry: Callable[[int, str, CreditDebit, date | None, date | None, bool, str, str | None, str | None,
                      str | None, str | None, str | None, str | None, str | None, str | None, Party,
                      int | None, tuple[TransactionDetail, ...]], StatementEntry] = (
    _make_entry_fast if _FAST_ENTRY else StatementEntry)


@dataclass(frozen=True, slots=True)
class Summary:
    """Totals a statement declares about itself (camt TxsSummry, MT942 :90D:/:90C:). None = not given."""

    count: int | None = None
    total_minor: int | None = None        # sum of absolute amounts
    net_minor: int | None = None          # signed, credits - debits
    credit_count: int | None = None
    credit_minor: int | None = None
    debit_count: int | None = None
    debit_minor: int | None = None


@dataclass(frozen=True, slots=True)
class Head:
    statement: Statement                  # entries=(); closing may be None until the Tail
    line: int | None
    declared: Summary | None = None
    requires_balances: bool = True        # camt.053 / MT940 must carry both balances
    sequenced: bool = True                # the format carries a sequence number (CSV does not)
    deferred: MappingError | None = None  # a header problem, raised when checks are on


@dataclass(frozen=True, slots=True)
class Tail:
    line: int | None
    closing_balance_minor: int | None = None
    closing_currency: str | None = None
    declared: Summary | None = None
    to_date: date | None = None


class EntryRun:
    """Consecutive entries of one statement handed over as one item, with their totals precomputed.

    A compiled fast path (``mappings/_mt940_accel.pyx``) builds runs of entries; the reader yields
    them one by one and adds the run's totals instead of each entry's, with the same checks: every
    entry of a run has ``currency`` (the reader compares it with the statement's, as it does per
    entry, and reports a mismatch at the first entry's ``line``), and the totals are the sums
    ``StatementReader`` would have formed entry by entry (``booked_net``: BOOK entries only).
    A plain slotted class, not a dataclass: it is made once per run and costs nothing at import.
    """

    __slots__ = ("booked_net", "credit_count", "credit_minor", "currency", "debit_count", "debit_minor",
                 "entries", "line")

    def __init__(self, entries: list[StatementEntry], currency: str, line: int | None,  # noqa: PLR0917
                 credit_count: int, credit_minor: int, debit_count: int, debit_minor: int,
                 booked_net: int) -> None:
        self.entries = entries
        self.currency = currency
        self.line = line              # the first entry's line
        self.credit_count = credit_count
        self.credit_minor = credit_minor
        self.debit_count = debit_count
        self.debit_minor = debit_minor
        self.booked_net = booked_net

    def __repr__(self) -> str:
        return (f"EntryRun({len(self.entries)} entries from line {self.line}, {self.currency}, credit "
                f"{self.credit_count}/{self.credit_minor}, debit {self.debit_count}/{self.debit_minor})")


Item = Head | StatementEntry | Tail | RejectedRecord | EntryRun


@dataclass(frozen=True, slots=True)
class _Totals:
    count: int
    credit_count: int
    credit: int
    debit_count: int
    debit: int


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """Which acceptance checks run. Everything is on by default; ``verify=False`` turns all off."""

    verify: bool = True
    last_sequences: MutableMapping[str, int] | None = None  # account -> last accepted sequence


class StatementReader:
    """One statement being read: ``header`` now, ``entries()`` lazily, ``statement`` after the end.

    Iterate the entries once (``for e in reader``); after the last one the checks have passed (or
    raised) and ``statement`` holds the final header (closing balance filled, entries=()).
    ``collect()`` returns the whole ``Statement`` with its entries (small files).
    """

    __slots__ = ("_done", "_gen", "_items", "_options", "_source", "head", "header", "rejected", "statement")

    def __init__(self, head: Head, items: Iterator[Item], options: CheckOptions, source: str) -> None:
        self.head = head
        self.header = head.statement
        self.statement: Statement | None = None
        self._items = items
        self._options = options
        self._source = source
        self._done = False
        self._gen: Generator[StatementEntry, None, None] | None = None
        self.rejected: list[RejectedRecord] = []  # batch formats (CSV): bad rows, reported as data

    def __iter__(self) -> Iterator[StatementEntry]:
        # An iteration left unfinished (the caller stopped reading, then asks again or moves to
        # the next statement, which drains this one) is resumed, not restarted: its running
        # totals, and the rest of an EntryRun it was in, live in that generator. A finished one
        # (exhausted, or it raised) is replaced by a new one, as before.
        gen = self._gen
        if gen is None or inspect.getgeneratorstate(gen) == inspect.GEN_CLOSED:
            gen = self._gen = self._entries()
        return gen

    def _entries(self) -> Generator[StatementEntry, None, None]:
        if self._done:
            return
        if self._options.verify and self.head.deferred is not None:
            raise self.head.deferred
        hdr = self.header
        ccy = hdr.currency
        verify = self._options.verify
        n = credit_n = debit_n = 0
        credit = debit = booked_net = 0
        for item in self._items:
            if type(item) is StatementEntry:
                if verify:
                    if item.currency != ccy:
                        raise FieldError(
                            f"entry currency {item.currency} differs from statement currency {ccy}",
                            source=self._source, line=item.line, field="currency", code="currency_mismatch")
                    n += 1
                    if item.credit_debit == "CRDT":
                        credit_n += 1
                        credit += item.amount_minor
                        if item.status == "BOOK":
                            booked_net += item.amount_minor
                    else:
                        debit_n += 1
                        debit += item.amount_minor
                        if item.status == "BOOK":
                            booked_net -= item.amount_minor
                yield item
            elif type(item) is EntryRun:
                run = iter(item.entries)
                if verify:
                    if item.currency != ccy:
                        # as entry by entry: the first entry fails, the others stay unread (a
                        # caller going on after the error has each of them checked again)
                        next(run, None)
                        self._items = chain(run, self._items)
                        raise FieldError(
                            f"entry currency {item.currency} differs from statement currency {ccy}",
                            source=self._source, line=item.line, field="currency", code="currency_mismatch")
                    n += item.credit_count + item.debit_count
                    credit_n += item.credit_count
                    credit += item.credit_minor
                    debit_n += item.debit_count
                    debit += item.debit_minor
                    booked_net += item.booked_net
                try:
                    yield from run
                except BaseException:
                    # this iteration was closed (or had an exception thrown in) while it stood
                    # inside the run: the entries not yet yielded go back to the item stream,
                    # so the next iteration reads (and counts) them one by one, as it would
                    # have without the run
                    self._items = chain(run, self._items)
                    raise
            elif type(item) is RejectedRecord:
                self.rejected.append(item)
            elif isinstance(item, Tail):
                self._finish(item, _Totals(n, credit_n, credit, debit_n, debit), booked_net)
                return
            else:
                raise MappingError("statement header inside a statement", source=self._source,
                                   line=item.line, code="malformed_statement")
        raise MappingError("statement ends without its trailer (truncated?)", source=self._source,
                           line=self.head.line, code="truncated")

    def _finish(self, tail: Tail, totals: _Totals, booked_net: int) -> None:
        hdr = self.header
        if tail.closing_balance_minor is not None:
            hdr = dataclasses.replace(hdr, closing_balance_minor=tail.closing_balance_minor)
        if tail.to_date is not None and hdr.to_date is None:
            hdr = dataclasses.replace(hdr, to_date=tail.to_date)
        self.statement = hdr
        self._done = True
        if not self._options.verify:
            return
        src, line = self._source, self.head.line
        if tail.closing_currency is not None and tail.closing_currency != hdr.currency:
            raise FieldError(f"closing balance currency {tail.closing_currency} differs from {hdr.currency}",
                             source=src, line=tail.line, field="closing_balance", code="currency_mismatch")
        if self.head.requires_balances:
            for name, value in (("opening_balance", hdr.opening_balance_minor),
                                ("closing_balance", hdr.closing_balance_minor)):
                if value is None:
                    raise FieldError(f"statement {hdr.statement_id} has no {name}", source=src, line=line,
                                     field=name, code="missing_field")
        if hdr.opening_balance_minor is not None and hdr.closing_balance_minor is not None:
            expected = hdr.opening_balance_minor + booked_net
            if expected != hdr.closing_balance_minor:
                c = hdr.currency
                raise BalanceMismatch(
                    f"statement {hdr.statement_id}: opening {to_decimal_text(hdr.opening_balance_minor, c)} "
                    f"+ entries {to_decimal_text(booked_net, c)} = {to_decimal_text(expected, c)}, "
                    f"but closing is {to_decimal_text(hdr.closing_balance_minor, c)} {c}",
                    source=src, line=tail.line or line, field="closing_balance")
        for declared in (self.head.declared, tail.declared):
            if declared is not None:
                self._check_summary(declared, totals)
        self._check_sequence(hdr)

    def _check_summary(self, d: Summary, t: _Totals) -> None:
        actual = {"count": t.count, "total_minor": t.credit + t.debit, "net_minor": t.credit - t.debit,
                  "credit_count": t.credit_count, "credit_minor": t.credit, "debit_count": t.debit_count,
                  "debit_minor": t.debit}
        for name, value in actual.items():
            declared = getattr(d, name)
            if declared is not None and declared != value:
                raise SummaryMismatch(
                    f"statement {self.header.statement_id}: declared {name} {declared} "
                    f"but entries give {value}",
                    source=self._source, line=self.head.line, field=f"summary.{name}")

    def _check_sequence(self, hdr: Statement) -> None:
        last_map = self._options.last_sequences
        if last_map is None or not self.head.sequenced:
            return
        last = last_map.get(hdr.account)
        seq = hdr.sequence
        if last is not None:
            if seq is None:
                raise FieldError(f"statement {hdr.statement_id} has no sequence number but account "
                                 f"{hdr.account} has one ({last})", source=self._source,
                                 line=self.head.line, field="sequence", code="missing_field")
            continuation = seq == last and (hdr.page or 1) > 1
            if seq <= last and not continuation:
                raise SequenceRepeat(
                    f"account {hdr.account}: sequence {seq} repeats (last accepted {last})",
                    source=self._source, line=self.head.line, field="sequence")
            if seq > last + 1:
                raise SequenceGap(
                    f"account {hdr.account}: sequence {seq} after {last}, missing {last + 1}..{seq - 1}",
                    source=self._source, line=self.head.line, field="sequence")
        if seq is not None:
            last_map[hdr.account] = seq

    def drain(self) -> None:
        """Read (and check) the rest of the entries without keeping them."""
        for _ in self:
            pass

    def collect(self) -> Statement:
        """The whole statement with its entries (small files only: keeps every entry).

        Only on a reader whose entries have not been read: after a loop over some of them, the
        result would silently lack those (a statement whose entries don't add up to it).
        """
        if self._gen is not None or self._done:
            raise RuntimeError("collect() on a statement reader whose entries were already read")
        entries = tuple(self)
        assert self.statement is not None
        return dataclasses.replace(self.statement, entries=entries)


def assemble(items: Iterator[Item], *, source: str, options: CheckOptions) -> Iterator[StatementReader]:
    """Group a flat item stream into statement readers (each drained before the next is read)."""
    found = False
    for item in items:
        if not isinstance(item, Head):
            line = getattr(item, "line", None)
            raise MappingError("entry or trailer outside a statement", source=source, line=line,
                               code="malformed_statement")
        found = True
        reader = StatementReader(item, items, options, source)
        yield reader
        reader.drain()
    if not found:
        raise MappingError("no statement in the document", source=source, code="no_statement")
