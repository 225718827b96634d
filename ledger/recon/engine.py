"""The matching engine: expected items against the lines of one bank statement, in three passes.

Pure and in memory: dict/index joins over the lines and items handed in, no I/O, no SQL, no
clock. Pass 1 matches strong references plus amount; pass 2 amount + account + direction within
a value-date window, only when the pairing is unique both ways; pass 3 small capped groups (one
line paying a whole voucher, or one obligor's items of a day; several lines netting to one item).
Anything ambiguous becomes an exception, never a guess. Invariants (property-tested): a line is
matched at most once, an item at most once, and never across currencies.

It must never import connectors or mappings, and never touch the database: storage.py does.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ledger.canonical import StatementEntry
from ledger.recon.model import (
    EXC_AMBIGUOUS,
    EXC_AMOUNT_DIFF,
    EXC_CURRENCY,
    EXC_DUPLICATE,
    EXC_RETURN,
    EXC_UNMATCHED_EXPECTED,
    EXC_UNMATCHED_LINE,
    RULE_GROUP_LINES,
    RULE_GROUP_SUM,
    RULE_GROUP_VOUCHER,
    RULE_REF_BATCH,
    RULE_REF_E2E,
    RULE_REF_INSTR,
    RULE_REF_PIECE,
    RULE_REF_SERIAL,
    RULE_WINDOW,
    ExpectedItem,
    Match,
    MatchConfig,
    ReconException,
    normalise_account,
)

_NO_REF = frozenset({"", "NOTPROVIDED", "NONREF", "NONE"})
_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-/.]*[A-Za-z0-9]|[A-Za-z0-9]")
_RETURN_TX_CODES = ("RRTN", "RTRN", "ARET")

# Index slot holding two or more items with the same reference: a line hitting it is ambiguous.
_AMBIGUOUS_REF = ExpectedItem("<ambiguous>", "clearing", "", "", "CRDT", 0, date.min)



MatchTuple = tuple[int, ExpectedItem, str, int, int]   # Match's fields, as a plain tuple


@dataclass(slots=True)
class MatchOutcome:
    """What one run of the engine decided. Line indexes refer to the ``lines`` handed in.

    ``raw_matches`` holds plain tuples in ``Match`` field order (the hot loop builds a million of
    them, and a plain tuple is the cheapest object there is); ``matches`` gives them as ``Match``.
    """

    raw_matches: list[MatchTuple] = field(default_factory=list)
    exceptions: list[ReconException] = field(default_factory=list)
    open_items: list[ExpectedItem] = field(default_factory=list)   # still unmatched, within window

    @property
    def matches(self) -> list[Match]:
        return [Match._make(t) for t in self.raw_matches]

    @property
    def matched_line_count(self) -> int:
        return len({t[0] for t in self.raw_matches})


def _index(items: Sequence[ExpectedItem], field_no: int) -> tuple[dict[str, ExpectedItem], set[str]]:
    """Reference (ExpectedItem field ``field_no``) -> item, and the set of special references: those
    two items share (mapped to ``_AMBIGUOUS_REF``) and placeholders like NOTPROVIDED (left out).
    Two comprehensions on the common path (all references distinct)."""
    keyed = [it for it in items if it[field_no]]
    idx: dict[str, ExpectedItem] = {it[field_no]: it for it in keyed}  # type: ignore[misc]
    special: set[str] = set(_NO_REF.intersection(idx))
    for junk in special:
        del idx[junk]
    n_junk = sum(1 for it in keyed if it[field_no] in special) if special else 0
    if len(keyed) - n_junk != len(idx):   # rare: some reference is shared, mark those ambiguous
        seen: set[object] = set()
        for it in keyed:
            key: Any = it[field_no]
            if key not in _NO_REF:
                if key in seen:
                    idx[key] = _AMBIGUOUS_REF
                    special.add(key)
                seen.add(key)
    return idx, special


def is_return(e: StatementEntry) -> bool:
    """An R-transaction: a reversal, a return reason, or an ISO/SWIFT return transaction code."""
    if e.reversal or e.return_reason:
        return True
    code = e.bank_tx_code
    return bool(code) and any(c in code for c in _RETURN_TX_CODES)  # type: ignore[operator]


def _tokens(e: StatementEntry) -> list[str]:
    out = [r for r in (e.end_to_end_id, e.instruction_id, e.mandate_or_serial, e.entry_ref)
           if r and r not in _NO_REF]
    if e.remittance_info:
        out.extend(_TOKEN_RE.findall(e.remittance_info))
    return out


def _line_date(e: StatementEntry) -> date | None:
    return e.value_date or e.booking_date


def match_statement(
    account: str,
    lines: Sequence[StatementEntry],
    items: Iterable[ExpectedItem],
    *,
    config: MatchConfig | None = None,
    as_of: date | None = None,
    prior_refs: Mapping[str, str] | None = None,
    seen_lines: Mapping[int, str] | None = None,
) -> MatchOutcome:
    """Match ``lines`` (one statement of ``account``) against the open ``items``.

    items: the open expected items (items of other accounts are ignored).
    prior_refs: strong reference -> item id of items matched by earlier statements (to tell a
        duplicate payment or a return of a settled item from an unknown line).
    seen_lines: line index -> where it was reconciled before (the same bank entry in an earlier
        statement, e.g. the same day as MT940 and camt.053): a DUPLICATE, never matched again.
    as_of: business date; open items whose window ended before it become UNMATCHED_EXPECTED
        (default: the latest line date).
    """
    cfg = config or MatchConfig()
    acct = normalise_account(account)
    pool = [it for it in items if it[2] == acct or normalise_account(it[2]) == acct]   # [2]: account
    prior = prior_refs or {}
    out = MatchOutcome()
    matches: list[MatchTuple] = out.raw_matches
    excs = out.exceptions
    append_match = matches.append

    by_e2e, e2e_special = _index(pool, 7)                 # ExpectedItem.end_to_end_id
    by_id: dict[str, ExpectedItem] | None = None          # built on first need (InstrId / serial
    by_serial: dict[str, ExpectedItem] | None = None      # on a line whose EndToEndId found nothing)
    taken: set[str] = set()                               # item ids matched in this run
    ref_diff: dict[str, list[int]] = defaultdict(list)    # item id -> lines citing it, amount differs
    ref_item: dict[str, ExpectedItem] = {}
    rest: list[int] = []                                  # lines for the later passes
    # A match group is numbered by the index of its first line: unique, since a line joins one group.

    # ---- pass 1: strong reference + amount --------------------------------------------------
    # The hot loop (a million lines): locals only, one dict probe per line on the common path.
    e2e_pop = by_e2e.pop
    taken_add = taken.add
    # Items matched by EndToEndId leave ``by_e2e`` for ``done_e2e``: what stays in ``by_e2e`` is
    # open, so no per-item "taken" lookups are needed later; ``taken`` holds the other routes' items.
    done_e2e: dict[str, ExpectedItem] = {}
    rest_append = rest.append

    def is_taken(it: ExpectedItem) -> bool:
        k = it[7]
        return it[0] in taken or (k is not None and done_e2e.get(k) is it)

    # Items a return line of this statement names: their payment came back, so no line may settle
    # them in this run (a debit and its return in one statement net to nothing paid). They join
    # ``taken`` when the return line is met (out of every later pass; a line citing one is a RETURN
    # exception), and a match made before the return line is undone after this loop.
    returned: set[str] = set()
    seen = seen_lines or {}
    for i, e in enumerate(lines):
        if seen and i in seen:
            excs.append(ReconException(EXC_DUPLICATE, i, None, e.amount_minor, e.currency,
                                       f"bank entry already reconciled in statement {seen[i]}"))
            continue
        if e.reversal or e.return_reason or (e.bank_tx_code and is_return(e)):
            by_id = _index(pool, 0)[0] if by_id is None else by_id
            by_serial = _index(pool, 8)[0] if by_serial is None else by_serial
            it_ret = _resolve(e, by_e2e, by_id, by_serial) or _resolve(e, done_e2e, {}, {})
            known = it_ret is not None and it_ret is not _AMBIGUOUS_REF
            ref = it_ret.item_id if known and it_ret is not None else _prior(e, prior)
            if known and it_ret is not None:
                returned.add(it_ret.item_id)
                taken_add(it_ret.item_id)
            excs.append(ReconException(EXC_RETURN, i, ref, e.amount_minor, e.currency,
                                       f"return reason {e.return_reason or e.bank_tx_code or 'reversal'}"))
            continue
        k = e.end_to_end_id
        it = e2e_pop(k, None)            # type: ignore[arg-type]  # None is never a key
        if it is not None:
            amount = e.amount_minor
            if it[5] == amount and it[3] == e.currency and it[4] == e.credit_debit \
                    and (not taken or it[0] not in taken):
                done_e2e[k] = it         # type: ignore[index]  # a hit: k is a key, not None
                append_match((i, it, RULE_REF_E2E, i, amount))
                continue
            by_e2e[k] = it               # type: ignore[index]  # not matched: it stays open
        else:
            it = done_e2e.get(k) if k is not None else None    # already matched: a duplicate
            if it is None:
                k = e.instruction_id
                if k is not None:
                    by_id = _index(pool, 0)[0] if by_id is None else by_id
                    it = by_id.get(k)
                    rule = RULE_REF_INSTR
                if it is None:
                    k = e.mandate_or_serial
                    if k is not None:
                        by_serial = _index(pool, 8)[0] if by_serial is None else by_serial
                        it = by_serial.get(k)
                        rule = RULE_REF_SERIAL
                    if it is None:
                        rest_append(i)
                        continue
                if it[5] == e.amount_minor and it[3] == e.currency and it[4] == e.credit_debit \
                        and not is_taken(it):
                    taken_add(it[0])
                    append_match((i, it, rule, i, e.amount_minor))
                    continue
        _ref_conflict(i, e, it, is_taken=is_taken, ref_diff=ref_diff, ref_item=ref_item, excs=excs,
                      returned=returned)

    if returned and any(m[1][0] in returned for m in matches):
        for m in [m for m in matches if m[1][0] in returned]:
            e = lines[m[0]]
            excs.append(ReconException(EXC_RETURN, m[0], m[1][0], e.amount_minor, e.currency,
                                       f"item {m[1][0]} is paid and returned in this statement: not settled"))
        matches[:] = [m for m in matches if m[1][0] not in returned]

    # pass 1b: batch bookings (one entry, many payments) whose transactions name items
    if rest:
        still_b: list[int] = []
        for i in rest:
            e = lines[i]
            if len(e.transactions) < 2 or not _batch(i, e, by_e2e, done_e2e=done_e2e, taken=taken,
                                                      matches=matches, excs=excs):
                still_b.append(i)
        rest = still_b

    # pass 1c: piece number quoted in the remittance info (only the lines left over)
    by_piece = _index(pool, 10)[0] if rest else {}        # ExpectedItem.piece_no
    if by_piece and rest:
        still: list[int] = []
        for i in rest:
            e = lines[i]
            hits = {by_piece[t].item_id: by_piece[t] for t in _tokens(e) if t in by_piece}
            if len(hits) != 1:
                if len(hits) > 1:
                    excs.append(ReconException(EXC_AMBIGUOUS, i, None, e.amount_minor, e.currency,
                                               "cites pieces " + ", ".join(sorted(hits))))
                else:
                    still.append(i)
                continue
            it = next(iter(hits.values()))
            if it is _AMBIGUOUS_REF:
                excs.append(ReconException(EXC_AMBIGUOUS, i, None, e.amount_minor, e.currency,
                                           "piece number shared by several items"))
            elif it.amount_minor == e.amount_minor and it.currency == e.currency \
                    and it.direction == e.credit_debit and not is_taken(it):
                taken.add(it.item_id)
                matches.append((i, it, RULE_REF_PIECE, i, e.amount_minor))
            else:
                _ref_conflict(i, e, it, is_taken=is_taken, ref_diff=ref_diff, ref_item=ref_item, excs=excs,
                                  returned=returned)
        rest = still

    # lines without a known reference: a strong ref of an item matched earlier = duplicate
    if prior and rest:
        still = []
        for i in rest:
            e = lines[i]
            pid = _prior(e, prior)
            if pid is not None:
                excs.append(ReconException(EXC_DUPLICATE, i, pid, e.amount_minor, e.currency,
                                           f"reference of item {pid}, matched by an earlier statement"))
            else:
                still.append(i)
        rest = still

    # ---- pass 3 (many lines -> one item): lines citing one item whose amounts net to it -----
    for item_id, idxs in ref_diff.items():
        it = ref_item[item_id]
        total = sum(lines[i].signed_minor for i in idxs)
        same_ccy = all(lines[i].currency == it.currency for i in idxs)
        if len(idxs) >= 2 and len(idxs) <= cfg.max_group_lines and same_ccy \
                and total == it.signed_minor and not is_taken(it):
            taken.add(item_id)
            for i in idxs:
                matches.append((i, it, RULE_GROUP_LINES, idxs[0], lines[i].amount_minor))
        else:
            for i in idxs:
                e = lines[i]
                excs.append(ReconException(
                    EXC_AMOUNT_DIFF, i, item_id, e.amount_minor, e.currency,
                    f"expected {it.direction} {it.amount_minor} {it.currency}, "
                    f"line {e.credit_debit} {e.amount_minor} "
                    f"(difference {e.signed_minor - it.signed_minor})"))

    # open items: those still in the EndToEndId index, plus the items without a usable
    # EndToEndId; then drop what the slower routes took
    candidates = [by_e2e[k] for k in sorted(by_e2e) if by_e2e[k] is not _AMBIGUOUS_REF]
    candidates += [it for it in pool if not it[7]]
    if e2e_special:
        candidates += [it for it in pool if it[7] in e2e_special]
    open_pool = [it for it in candidates if it[0] not in taken and it[0] not in ref_diff]

    # ---- pass 2: amount + account + direction within the window, unique both ways ----------
    if rest and open_pool:
        by_amount: dict[tuple[str, str, int], list[ExpectedItem]] = defaultdict(list)
        for it in open_pool:
            by_amount[(it.direction, it.currency, it.amount_minor)].append(it)
        cands: dict[int, list[ExpectedItem]] = {}
        claims: dict[str, int] = defaultdict(int)
        before = timedelta(days=cfg.window_before_days)
        after = timedelta(days=cfg.window_after_days)
        for i in rest:
            e = lines[i]
            bucket = by_amount.get((e.credit_debit, e.currency, e.amount_minor))
            d = _line_date(e)
            if not bucket or d is None:
                continue
            # due in [d - after, d + before]  <=>  d in [due - before, due + after]
            lo_due, hi_due = d - after, d + before
            fit = [it for it in bucket if (lo_due <= it[6] <= hi_due) if it[13] is None and it[14] is None]
            fit += [it for it in bucket if (it[13] is not None or it[14] is not None)
                    and cfg.window(it)[0] <= d <= cfg.window(it)[1]]
            if fit:
                cands[i] = fit
                for it in fit:
                    claims[it.item_id] += 1
        vouchers = {it.voucher_no for it in open_pool if it.voucher_no}
        still = []
        for i in rest:
            fit = cands.get(i) or []
            e = lines[i]
            if len(fit) == 1 and vouchers and e.remittance_info:
                cited = vouchers.intersection(_tokens(e))
                if cited and fit[0].voucher_no not in cited:
                    still.append(i)   # the line names another voucher: its reference outranks the amount
                    continue
            if len(fit) == 1 and claims[fit[0].item_id] == 1:
                it = fit[0]
                taken.add(it.item_id)
                matches.append((i, it, RULE_WINDOW, i, e.amount_minor))
            elif fit:
                excs.append(ReconException(
                    EXC_AMBIGUOUS, i, None, e.amount_minor, e.currency,
                    "same amount and window as items " + ", ".join(sorted(x.item_id for x in fit)[:10])))
            else:
                still.append(i)
        rest = still
        open_pool = [it for it in open_pool if it[0] not in taken]

    # ---- pass 3 (one line -> many items): a voucher's open items, or an obligor's day ------
    if rest and open_pool:
        rest = _group_items(lines, rest, open_pool, cfg=cfg, taken=taken, matches=matches, excs=excs)
        open_pool = [it for it in open_pool if it[0] not in taken]

    for i in rest:
        e = lines[i]
        excs.append(ReconException(EXC_UNMATCHED_LINE, i, None, e.amount_minor, e.currency,
                                   "no expected item fits"))

    # ---- expected items past their window -------------------------------------------------
    if as_of is None:
        dates = [d for d in (_line_date(e) for e in lines) if d is not None]
        as_of = max(dates) if dates else None
    for it in open_pool:
        if it.item_id in ref_diff:
            continue  # already reported against its line(s)
        if as_of is not None and cfg.window(it)[1] < as_of:
            excs.append(ReconException(EXC_UNMATCHED_EXPECTED, None, it.item_id, it.amount_minor,
                                       it.currency, f"due {it.due_date.isoformat()}, window ended"))
        else:
            out.open_items.append(it)
    # returned items stay open (to be re-instructed); their RETURN exception is already reported
    out.open_items.extend(it for it in pool if it.item_id in returned and it.item_id not in ref_diff)
    return out


def _batch(i: int, e: StatementEntry, by_e2e: dict[str, ExpectedItem], *, done_e2e: dict[str, ExpectedItem],
           taken: set[str], matches: list[MatchTuple], excs: list[ReconException]) -> bool:
    """A batch entry whose every transaction's EndToEndId names a distinct open item of the same
    currency and direction, amounts agreeing (per transaction where itemised, and in total): match
    them all. Returns False (line left for the later passes) when no transaction names an item."""
    refs = [tx.end_to_end_id for tx in e.transactions]
    hits = [by_e2e.get(r) if r else None for r in refs]
    if all(h is None for h in hits):
        done = next((done_e2e[r] for r in refs if r and r in done_e2e), None)
        if done is None:
            return False
        excs.append(ReconException(EXC_DUPLICATE, i, done.item_id, e.amount_minor, e.currency,
                                   f"batch booking names item {done.item_id}, already matched"))
        return True
    found = [h for h in hits if h is not None and h is not _AMBIGUOUS_REF]
    ok = (len(found) == len(hits) and len({it.item_id for it in found}) == len(found)
          and not any(it.item_id in taken for it in found)
          and all(it.currency == e.currency and it.direction == e.credit_debit for it in found)
          and all(tx.amount_minor is None or tx.amount_minor == it.amount_minor
                  for tx, it in zip(e.transactions, found, strict=True))
          and sum(it.amount_minor for it in found) == e.amount_minor)
    if not ok:
        code = EXC_AMBIGUOUS if any(h is _AMBIGUOUS_REF for h in hits) else EXC_AMOUNT_DIFF
        excs.append(ReconException(code, i, found[0].item_id if found else None, e.amount_minor, e.currency,
                                   f"batch booking of {len(hits)} payments: {len(found)} name open items, "
                                   "amounts or references do not all agree"))
        return True
    for it in found:
        key: str = it.end_to_end_id  # type: ignore[assignment]  # found through it
        del by_e2e[key]
        done_e2e[key] = it
        matches.append((i, it, RULE_REF_BATCH, i, it.amount_minor))
    return True


def _resolve(e: StatementEntry, by_e2e: Mapping[str, ExpectedItem], by_id: Mapping[str, ExpectedItem],
             by_serial: Mapping[str, ExpectedItem]) -> ExpectedItem | None:
    for key, idx in ((e.end_to_end_id, by_e2e), (e.instruction_id, by_id), (e.mandate_or_serial, by_serial)):
        if key is not None and key in idx:
            return idx[key]
    return None


def _prior(e: StatementEntry, prior: Mapping[str, str]) -> str | None:
    for key in (e.end_to_end_id, e.instruction_id, e.mandate_or_serial):
        if key is not None and key not in _NO_REF and key in prior:
            return prior[key]
    return None


def _ref_conflict(i: int, e: StatementEntry, it: ExpectedItem, *, is_taken: Callable[[ExpectedItem], bool],
                  ref_diff: dict[str, list[int]], ref_item: dict[str, ExpectedItem],
                  excs: list[ReconException], returned: set[str] | frozenset[str] = frozenset()) -> None:
    """A line whose strong reference names an item it cannot simply match."""
    if it is _AMBIGUOUS_REF:
        excs.append(ReconException(EXC_AMBIGUOUS, i, None, e.amount_minor, e.currency,
                                   "reference shared by several expected items"))
    elif it.item_id in returned:
        excs.append(ReconException(EXC_RETURN, i, it.item_id, e.amount_minor, e.currency,
                                   f"item {it.item_id} is paid and returned in this statement: not settled"))
    elif it.currency != e.currency:
        excs.append(ReconException(EXC_CURRENCY, i, it.item_id, e.amount_minor, e.currency,
                                   f"item {it.item_id} is in {it.currency}"))
    elif is_taken(it):
        if it.amount_minor == e.amount_minor and it.direction == e.credit_debit:
            excs.append(ReconException(EXC_DUPLICATE, i, it.item_id, e.amount_minor, e.currency,
                                       f"item {it.item_id} already matched by another line"))
        else:
            excs.append(ReconException(EXC_UNMATCHED_LINE, i, it.item_id, e.amount_minor, e.currency,
                                       f"cites item {it.item_id}, already matched (charge or correction?)"))
    else:
        ref_diff[it.item_id].append(i)
        ref_item[it.item_id] = it


def _group_items(
    lines: Sequence[StatementEntry], rest: list[int], pool: list[ExpectedItem], *, cfg: MatchConfig,
    taken: set[str], matches: list[MatchTuple], excs: list[ReconException],
) -> list[int]:
    """Pass 3, one line paying several items: by a cited voucher number, else by an obligor's day."""
    by_voucher: dict[str, list[ExpectedItem]] = defaultdict(list)
    by_day: dict[tuple[str, date, str, str], list[ExpectedItem]] = defaultdict(list)
    for it in pool:
        if it.voucher_no:
            by_voucher[it.voucher_no].append(it)
        if it.obligor_uscc:
            by_day[(it.obligor_uscc, it.due_date, it.direction, it.currency)].append(it)
    day_by_sum: dict[tuple[str, str, int], list[list[ExpectedItem]]] = defaultdict(list)
    for (_, _, direction, ccy), its in by_day.items():
        if 2 <= len(its) <= cfg.max_group_items:
            day_by_sum[(direction, ccy, sum(x.amount_minor for x in its))].append(its)

    proposals: dict[int, tuple[str, list[ExpectedItem]]] = {}
    claims: dict[str, int] = defaultdict(int)
    ambiguous: dict[int, str] = {}
    for i in rest:
        e = lines[i]
        d = _line_date(e)
        found: list[tuple[str, list[ExpectedItem]]] = []
        for t in dict.fromkeys(_tokens(e)):
            its = by_voucher.get(t) or []
            if 2 <= len(its) <= cfg.max_group_items and all(
                    x.currency == e.currency and x.direction == e.credit_debit for x in its) \
                    and sum(x.amount_minor for x in its) == e.amount_minor:
                found.append((RULE_GROUP_VOUCHER, its))
        if not found and d is not None:
            for its in day_by_sum.get((e.credit_debit, e.currency, e.amount_minor), ()):
                lo, hi = cfg.window(its[0])
                if lo <= d <= hi:
                    found.append((RULE_GROUP_SUM, its))
        if len(found) == 1:
            proposals[i] = found[0]
            for x in found[0][1]:
                claims[x.item_id] += 1
        elif found:
            ambiguous[i] = f"{len(found)} groups of items sum to this amount"
    still: list[int] = []
    for i in rest:
        e = lines[i]
        prop = proposals.get(i)
        if prop is not None and all(claims[x.item_id] == 1 for x in prop[1]):
            for x in prop[1]:
                taken.add(x.item_id)
                matches.append((i, x, prop[0], i, x.amount_minor))
        elif prop is not None or i in ambiguous:
            excs.append(ReconException(EXC_AMBIGUOUS, i, None, e.amount_minor, e.currency,
                                       ambiguous.get(i, "another line claims the same items")))
        else:
            still.append(i)
    return still
