"""Reconciliation's tables checked against the ledger's journal and against themselves
(``ReconCheck``, one of ``ledger.verify``'s store checks).

What the journal says about reconciliation: every ``settle`` recon applied (its key is
``recon:`` + SHA-256 of statement key and instruction) names the statement and first line that paid
the instruction; every ``mark_returned`` / ``reverse_settlement`` recon applied names the statement
line (or pain.002 message) that returned it. So:

- each recon settle has its statement, and clearing matches of that instruction on it whose first
  line is the one cited, whose allocations add up to the settled amount and whose first line's
  value date is the settle's date; each clearing match has its recon settle;
- each recon return / reversal has its ``RETURN`` exception for that instruction (a reversal's
  detail cites its journal seq), and each exception citing a reversal's seq has that entry;
- each statement is consistent with its rows: its key is ``account|statement_id``, every line
  number 1..line_count is either matched or an unmatched line (never both), ``matched_lines`` and
  ``exception_count`` count its rows.

Columns that hold only what the bank's file said (amounts of unmatched lines, references,
counterparties, rules) are facts of the statement, not of the journal: a changed one is not found
here (the raw file is archived with its hash; see docs/ledger.md). Reads only.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine

from ledger.money import AmountError, to_minor
from ledger.recon.model import EXC_RETURN, EXC_UNMATCHED_EXPECTED, EXCEPTION_CODES, RULES
from ledger.verify import JournalView, StoreCheck, Violation

_RETURNED_ON = re.compile(r"^returned on statement (.+) line (\d+): ")
_REVERSED_SEQ = re.compile(r"REVERSED in the ledger \(seq (\d+),")


def recon_settle_key(statement_key: str, instruction_id: str) -> str:
    """The idempotency key reconciliation gives the ``settle`` of a matched instruction."""
    return "recon:" + hashlib.sha256(f"{statement_key}|{instruction_id}".encode()).hexdigest()[:40]


class ReconCheck(StoreCheck):
    """The recon tables (migration ``0002_recon``) in ``engine`` against the journal."""

    name = "recon"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.counts = (0, 0)

    @property
    def summary(self) -> str:
        return f"recon ({self.counts[0]} statements, {self.counts[1]} settles)"

    def check(self, journal: JournalView) -> Iterator[Violation]:
        conn = journal.same_database(self.engine)
        if conn is not None:
            yield from self._check(conn, journal)
            return
        with self.engine.connect() as own:
            yield from self._check(own, journal)

    def _check(self, conn: Connection, journal: JournalView) -> Iterator[Violation]:
        def q(sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
            return list(conn.exec_driver_sql(sql, params).all())

        ph = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        statements = {
            r[0]: r
            for r in q(
                "SELECT id, statement_key, account, statement_id, line_count, matched_lines, exception_count "
                "FROM recon_statements ORDER BY id"
            )
        }
        by_key = {r[1]: r[0] for r in statements.values()}
        yield from _orphans(q, statements)
        # clearing matches per (statement, item): first line, total, the first line's value date
        clearing: dict[tuple[int, str], list[Any]] = {}
        for spk, line, item, amount, cd, vdate in q(
            "SELECT statement_pk, line_no, item_id, amount_minor, credit_debit, value_date "
            "FROM recon_matches WHERE item_kind = 'clearing' ORDER BY statement_pk, item_id, line_no"
        ):
            where = f"recon_matches statement_pk={spk} line_no={line} item_id={item}"
            if type(amount) is not int:
                yield Violation(where, "amount_minor", f"unparsable value {amount!r}: not an integer")
                return
            if cd != "DBIT":  # an instruction is paid by a debit of the payer's (obligor's) account
                yield Violation(where, "credit_debit", f"stored {cd!r}: a clearing payment is a DBIT")
                return
            agg = clearing.get((spk, item))
            if agg is None:
                vd = vdate if vdate is None or type(vdate) is str else vdate.isoformat()
                clearing[(spk, item)] = [line, amount, vd]
            else:
                agg[1] += amount
        settles = 0
        cited: set[str] = set()  # statement keys the journal cites (confirmed by its hash chain)
        for f in journal.facts("settle"):
            ref, iid = f.body.get("statement_ref"), f.body.get("instruction_id")
            if not isinstance(ref, str) or "#" not in ref or not isinstance(iid, str):
                continue
            skey, _, line = ref.rpartition("#")
            if f.key != recon_settle_key(skey, iid):
                continue  # settled by someone else (an operator, the demo), not by reconciliation
            settles += 1
            cited.add(skey)
            where = f"journal seq {f.seq}"
            spk = by_key.get(skey)
            if spk is None:
                yield Violation(
                    f"recon_statements statement_key={skey}",
                    "statement_key",
                    f"missing: {where} settled {iid} from this statement",
                )
                return
            agg = clearing.pop((spk, iid), None)
            mwhere = f"recon_matches statement_pk={spk} item_id={iid}"
            if agg is None:
                found = q(f"SELECT statement_pk, item_kind FROM recon_matches WHERE item_id = {ph}", (iid,))
                if found and found[0][0] != spk:
                    yield Violation(
                        f"recon_matches statement_pk={found[0][0]} item_id={iid}",
                        "statement_pk",
                        f"{where} settled {iid} from statement {skey} (id {spk})",
                    )
                elif found:
                    yield Violation(
                        mwhere, "item_kind", f"stored {found[0][1]!r}, {where} settled it: 'clearing'"
                    )
                else:
                    yield Violation(
                        mwhere, "item_id", f"missing: {where} settled {iid} from statement {skey} line {line}"
                    )
                return
            try:
                amount = to_minor(str(f.body.get("amount")), str(f.body.get("currency")))
            except AmountError:
                continue  # the ledger accepted it, so it cannot be: the ledger's own checks say so
            if str(agg[0]) != line:
                yield Violation(mwhere, "line_no", f"first matched line {agg[0]}, {where} cites line {line}")
                return
            if agg[1] != amount:
                yield Violation(
                    mwhere, "amount_minor", f"allocations add up to {agg[1]}, {where} settled {amount}"
                )
                return
            if agg[2] is not None and agg[2] != f.body.get("on"):
                yield Violation(
                    f"{mwhere} line_no={agg[0]}",
                    "value_date",
                    f"stored {agg[2]!r}, {where} settled on {f.body.get('on')!r}",
                )
                return
        for (spk, iid), agg in sorted(clearing.items(), key=repr):
            owner = statements[spk][1] if spk in statements else None
            yield Violation(
                f"recon_matches statement_pk={spk} line_no={agg[0]} item_id={iid}",
                "item_kind",
                f"a clearing match of {iid} on statement {owner} that no recon settle in the journal has",
            )
            return
        returns = list(_return_facts(journal))
        cited.update(skey for _, skey, _ in returns if skey is not None)
        yield from _statement_rows(q, statements, cited)
        yield from _shapes(q)
        yield from _returns(q, journal, by_key, returns)
        yield from _exceptions(q, statements)
        self.counts = (len(statements), settles)


def _orphans(q: Any, statements: dict[Any, Any]) -> Iterator[Violation]:
    """Rows that refer to a statement that is not there (a changed id, or a changed reference)."""
    used: set[Any] = set()
    for table in ("recon_matches", "recon_lines", "recon_exceptions"):
        for (spk,) in q(f"SELECT DISTINCT statement_pk FROM {table} WHERE statement_pk IS NOT NULL"):
            used.add(spk)
            if spk in statements:
                continue
            empty = [k for k, r in statements.items() if k not in used and r[4]]
            others = {
                k
                for t in ("recon_matches", "recon_lines", "recon_exceptions")
                for (k,) in q(f"SELECT DISTINCT statement_pk FROM {t} WHERE statement_pk IS NOT NULL")
            }
            empty = [k for k in empty if k not in others]
            if empty:
                yield Violation(
                    f"recon_statements id={empty[0]}",
                    "id",
                    f"has no rows, while {table} rows refer to statement {spk}, which is not there "
                    "(a changed id)",
                )
            else:
                yield Violation(f"{table} statement_pk={spk}", "statement_pk", "no such statement")
            return


def _statement_rows(q: Any, statements: dict[Any, Any], cited: set[str]) -> Iterator[Violation]:
    """Each statement against its own lines, matches and exceptions."""
    matched = {
        r[0]: r[1:]
        for r in q(
            "SELECT statement_pk, COUNT(DISTINCT line_no), MIN(line_no), MAX(line_no) FROM recon_matches "
            "GROUP BY statement_pk"
        )
    }
    unmatched = {
        r[0]: r[1:]
        for r in q(
            "SELECT statement_pk, COUNT(*), MIN(line_no), MAX(line_no) FROM recon_lines GROUP BY statement_pk"
        )
    }
    both = {
        r[0]: r[1]
        for r in q(
            "SELECT l.statement_pk, MIN(l.line_no) FROM recon_lines l JOIN recon_matches m "
            "ON m.statement_pk = l.statement_pk AND m.line_no = l.line_no GROUP BY l.statement_pk"
        )
    }
    excs = dict(
        q(
            "SELECT statement_pk, COUNT(*) FROM recon_exceptions WHERE statement_pk IS NOT NULL "
            "GROUP BY statement_pk"
        )
    )
    for spk, (_, skey, account, sid, lines, nmatched, nexc) in statements.items():
        where = f"recon_statements id={spk}"
        for name, v in (("line_count", lines), ("matched_lines", nmatched), ("exception_count", nexc)):
            if type(v) is not int:
                yield Violation(where, name, f"unparsable value {v!r}: not an integer")
                return
        if skey != f"{account}|{sid}":
            # a key the journal cites is confirmed: then the account or statement id was changed
            field = "statement_key"
            if skey in cited:
                field = "account" if not str(skey).startswith(f"{account}|") else "statement_id"
            yield Violation(
                where, field, f"statement_key {skey!r} is not account|statement_id ({account!r}, {sid!r})"
            )
            return
        m = matched.get(spk, (0, None, None))
        u = unmatched.get(spk, (0, None, None))
        if spk in both:
            yield Violation(
                f"recon_lines statement_pk={spk} line_no={both[spk]}",
                "line_no",
                "listed as unmatched and matched",
            )
            return
        for table, (_, lo, hi) in (("recon_matches", m), ("recon_lines", u)):
            if lo is not None and (lo < 1 or hi > lines):
                yield Violation(
                    f"{table} statement_pk={spk}", "line_no", f"line numbers {lo}..{hi} outside 1..{lines}"
                )
                return
        if m[0] != nmatched:
            yield Violation(where, "matched_lines", f"stored {nmatched}, its matches cover {m[0]} lines")
            return
        if m[0] + u[0] != lines:
            yield Violation(
                where,
                "line_count",
                f"stored {lines}, its rows have {m[0]} matched and {u[0]} unmatched lines",
            )
            return
        if excs.get(spk, 0) != nexc:
            yield Violation(where, "exception_count", f"stored {nexc}, it has {excs.get(spk, 0)} exceptions")
            return


KINDS = ("clearing", "disbursement", "repayment")
DIRECTIONS = ("CRDT", "DBIT")


def _shapes(q: Any) -> Iterator[Violation]:
    """Values the writers only ever write from a closed set (or positive): an edit outside it."""
    checks: list[tuple[str, str, str, str, tuple[Any, ...] | None]] = [
        ("recon_matches", "id", "item_kind", "the item kinds", KINDS),
        ("recon_matches", "id", "credit_debit", "CRDT or DBIT", DIRECTIONS),
        ("recon_matches", "id", "rule", "the match rules", RULES),
        ("recon_lines", "statement_pk, line_no", "credit_debit", "CRDT or DBIT", DIRECTIONS),
        ("recon_expected", "item_id", "kind", "the item kinds", KINDS),
        ("recon_expected", "item_id", "direction", "CRDT or DBIT", DIRECTIONS),
        ("recon_exceptions", "id", "code", "the exception codes", EXCEPTION_CODES),
        ("recon_exceptions", "id", "status", "open or resolved", ("open", "resolved")),
        ("recon_expected", "item_id", "amount_minor", "positive", None),
    ]
    for table, key, col, what, allowed in checks:
        for *k, v in q(f"SELECT {key}, {col} FROM {table} ORDER BY {key}"):
            ok = (type(v) is int and v > 0) if allowed is None else v in allowed
            if not ok:
                names = [n.strip() for n in key.split(",")]
                where = f"{table} " + " ".join(f"{n}={x}" for n, x in zip(names, k, strict=True))
                yield Violation(where, col, f"{v!r} is not {what}")
                return


def _exceptions(q: Any, statements: dict[Any, Any]) -> Iterator[Violation]:
    """Each exception against its statement, its line and the ledger's instructions."""
    st_dates = {
        r[0]: (r[1] if r[1] is None or type(r[1]) is str else r[1].isoformat())
        for r in q("SELECT id, business_date FROM recon_statements")
    }
    lines = {
        (r[0], r[1]): r[2:]
        for r in q("SELECT statement_pk, line_no, amount_minor, currency FROM recon_lines")
    }
    obligors = dict(q("SELECT instruction_id, obligor_uscc FROM ledger_instructions"))
    matched = {r[0] for r in q("SELECT item_id FROM recon_matches")}
    rows = q(
        "SELECT id, exc_key, code, statement_pk, line_no, item_id, account, amount_minor, currency, "
        "business_date, obligor_uscc, status, resolved_on FROM recon_exceptions ORDER BY id"
    )
    # a statement date every one of its exceptions disagrees with is the statement's, not theirs
    by_statement: dict[Any, list[Any]] = defaultdict(list)
    for r in rows:
        if r[3] is not None:
            by_statement[r[3]].append(r[9] if r[9] is None or type(r[9]) is str else r[9].isoformat())
    for spk, dates in by_statement.items():
        if spk in st_dates and dates and all(d != st_dates[spk] for d in dates) and len(set(dates)) == 1:
            yield Violation(
                f"recon_statements id={spk}",
                "business_date",
                f"stored {st_dates[spk]!r}, its exceptions were raised on {dates[0]!r}",
            )
            return
    for eid, ekey, code, spk, line, item, account, amount, cur, bdate, obligor, status, resolved in rows:
        where = f"recon_exceptions id={eid}"
        if spk is not None and spk in statements:
            skey, acct = statements[spk][1], statements[spk][2]
            want = f"{code}|{skey}#{line}" if line is not None else f"{code}|item:{item}"
            if ekey != want:
                yield Violation(
                    where,
                    _key_part(ekey, want, code, line, item),
                    f"exc_key {ekey!r}, its row gives {want!r}",
                )
                return
            if account != acct:
                yield Violation(where, "account", f"stored {account!r}, its statement's account is {acct!r}")
                return
            day = bdate if bdate is None or type(bdate) is str else bdate.isoformat()
            if day != st_dates.get(spk):
                yield Violation(
                    where, "business_date", f"stored {day!r}, its statement's is {st_dates.get(spk)!r}"
                )
                return
            if line is not None and (spk, line) in lines and lines[(spk, line)] != (amount, cur):
                got = lines[(spk, line)]
                fld = "amount_minor" if got[0] != amount else "currency"
                yield Violation(where, fld, f"{amount} {cur}, its unmatched line {line} is {got[0]} {got[1]}")
                return
        if obligor is not None and item in obligors and obligors[item] != obligor:
            yield Violation(
                where,
                "obligor_uscc",
                f"stored {obligor!r}, instruction {item}'s obligor is {obligors[item]!r}",
            )
            return
        if (status == "resolved") != (resolved is not None):
            yield Violation(
                where,
                "resolved_on" if status == "resolved" or resolved is not None else "status",
                f"status {status!r} with resolved_on {resolved!r}",
            )
            return
        if (
            code == EXC_UNMATCHED_EXPECTED
            and item is not None
            and (status == "resolved") != (item in matched)
        ):
            yield Violation(
                where,
                "status",
                f"{status!r}, but item {item} is " + ("matched" if item in matched else "not matched"),
            )
            return


def _key_part(ekey: str, want: str, code: str, line: Any, line_ok: bool) -> str:
    """Which column of an exception disagrees with its natural key (``line_ok``: its line number
    points at an unmatched line of its amount, so the number is right)."""
    if not ekey.startswith(f"{code}|") and ekey.split("|", 1)[-1] == want.split("|", 1)[-1]:
        return "code"
    if line is not None and ekey.rpartition("#")[0] == want.rpartition("#")[0] and not line_ok:
        return "line_no"
    if line is None and ekey.startswith(f"{code}|item:"):
        return "item_id"
    return "exc_key"


def _return_facts(journal: JournalView) -> Iterator[tuple[Any, str | None, int | None]]:
    """Recon's mark_returned / reverse_settlement entries with the statement key and line they cite."""
    for f in journal.facts("mark_returned", "reverse_settlement"):
        if f.cmd == "mark_returned" and f.key.startswith("recon:ret:"):
            m = _RETURNED_ON.match(str(f.body.get("reason", "")))
            yield f, (m.group(1) if m else None), (int(m.group(2)) if m else None)
        elif f.cmd == "reverse_settlement" and f.key.startswith("recon:rev:"):
            ref = str(f.body.get("statement_ref", ""))
            skey, _, line = ref.rpartition("#")
            yield f, (skey or None), (int(line) if line.isdigit() and skey else None)


def _returns(q: Any, journal: JournalView, by_key: dict[str, Any], returns: list[Any]) -> Iterator[Violation]:
    """Recon's returns and reversals in the journal against the RETURN exceptions."""
    excs: dict[str, tuple[Any, ...]] = {}
    by_item: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in q(
        "SELECT id, exc_key, code, statement_pk, line_no, item_id, detail FROM recon_exceptions ORDER BY id"
    ):
        excs[str(row[1])] = row
        by_item[str(row[5])].append(row)
    reversals: dict[int, str] = {}
    for f, skey, line in returns:
        iid = f.body.get("instruction_id")
        if not isinstance(iid, str):
            continue
        where = f"journal seq {f.seq}"
        if f.cmd == "reverse_settlement":
            reversals[f.seq] = iid
        if f.seq > journal.stable_seq:
            continue
        if f.cmd == "mark_returned" and skey is not None:
            ekey = f"{EXC_RETURN}|{skey}#{line}"
            row = excs.get(ekey)
            if row is None:
                yield Violation(
                    f"recon_exceptions exc_key={ekey}",
                    "exc_key",
                    f"missing: {where} marked {iid} returned for this line",
                )
                return
            for name, got, want in (
                ("code", row[2], EXC_RETURN),
                ("item_id", row[5], iid),
                ("statement_pk", row[3], by_key.get(skey)),
                ("line_no", row[4], line),
            ):
                if got != want:
                    yield Violation(
                        f"recon_exceptions id={row[0]}", name, f"stored {got!r}, {where} gives {want!r}"
                    )
                    return
        elif f.cmd == "reverse_settlement" and not any(
            _cited(r[6]) == f.seq and r[5] == iid and r[2] == EXC_RETURN for r in by_item.get(iid, [])
        ):
            mine = [r for r in excs.values() if _cited(r[6]) == f.seq]
            if mine:
                name = "item_id" if mine[0][5] != iid else "code"
                yield Violation(
                    f"recon_exceptions id={mine[0][0]}",
                    name,
                    f"records the reversal {where} of {iid}, but as {mine[0][2]!r} of {mine[0][5]!r}",
                )
            else:
                yield Violation(
                    f"recon_exceptions item_id={iid}",
                    "detail",
                    f"no RETURN exception of {iid} records the reversal {where}",
                )
            return
    for row in excs.values():
        seq = _cited(row[6])
        if seq is not None and reversals.get(seq) != row[5]:
            yield Violation(
                f"recon_exceptions id={row[0]}",
                "detail",
                f"cites the reversal journal seq {seq}, which "
                + (f"reversed {reversals[seq]}" if seq in reversals else "is not a recon reversal"),
            )
            return


def _cited(detail: Any) -> int | None:
    m = _REVERSED_SEQ.search(str(detail or ""))
    return int(m.group(1)) if m else None
