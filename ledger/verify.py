"""``ledger.verify``: checks the hash chain and every invariant of SPEC §1, reports the first violation.

Reads only; recomputes everything from the stored rows (journal, postings, state tables) and never
trusts a stored total. The same chain check runs on an exported journal file offline
(``verify_journal_file``), which can also replay the journal into a scratch ledger and compare.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ledger.chain import GENESIS_HASH, entry_hash
from ledger.command_text import loads_strict

LIVE = ("live", "locked")


@dataclass(frozen=True, slots=True)
class Violation:
    """Where an invariant fails: ``entry`` (journal seq or the state row), ``field``, what is wrong."""

    entry: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.entry}: {self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    summary: str
    first_violation: Violation | None = None
    entries: int = 0
    head_hash: str | None = None  # the last entry's full hash: keep it outside the database (anchor)


class _Found(Exception):
    def __init__(self, v: Violation) -> None:
        super().__init__(str(v))
        self.violation = v


def _fail(entry: str, fld: str, message: str) -> None:
    raise _Found(Violation(entry, fld, message))


# --- hash chain ---------------------------------------------------------------------------------


def check_chain(entries: Iterable[tuple[Any, ...]], postings: Iterator[tuple[Any, ...]]) -> tuple[int, str]:
    """Walk entries (seq, key, cmd, body, business_date, result_data, prev_hash, hash) in seq order
    with postings (entry_seq, idx, account, currency, amount) in (entry_seq, idx) order.

    Returns (last seq, last hash); raises on the first break.
    """
    prev, expected_seq = GENESIS_HASH, 1
    nxt = next(postings, None)
    for seq, key, cmd, body, bdate, rdata, prev_hash, stored in entries:
        where = f"journal seq {seq}"
        if seq != expected_seq:
            _fail(where, "seq", f"expected seq {expected_seq} (entries missing or reordered)")
        if prev_hash != prev:
            _fail(where, "prev_hash", "does not equal the previous entry's hash")
        legs: list[tuple[str, str, int]] = []
        while nxt is not None and nxt[0] < seq:
            _fail(f"journal seq {nxt[0]}", "postings", "posting without a journal entry")
        while nxt is not None and nxt[0] == seq:
            if nxt[1] != len(legs):
                _fail(where, "postings.idx", f"posting idx {nxt[1]} out of order")
            legs.append((str(nxt[2]), str(nxt[3]), int(nxt[4])))
            nxt = next(postings, None)
        bd = bdate if isinstance(bdate, str) else bdate.isoformat()
        h = entry_hash(prev, seq, key, cmd, body, bd, rdata, legs)
        if h != stored:
            _fail(
                where,
                "hash",
                "does not match the entry's content (key, cmd, body, business_date, "
                "result_data or postings were changed)",
            )
        totals: dict[str, int] = defaultdict(int)
        for _, cur, amt in legs:
            totals[cur] += amt
        for cur, t in totals.items():
            if t:
                _fail(where, "postings", f"{cur} postings do not balance (sum {t})")
        prev, expected_seq = stored, seq + 1
    if nxt is not None:
        _fail(f"journal seq {nxt[0]}", "postings", "posting without a journal entry")
    return expected_seq - 1, prev


# --- database -----------------------------------------------------------------------------------


def verify_database(engine: Engine) -> VerifyReport:
    with engine.connect() as conn:

        def q(sql: str) -> list[Any]:
            return list(conn.exec_driver_sql(sql).all())

        try:
            entries = conn.exec_driver_sql(
                "SELECT seq, key, cmd, body, business_date, result_data, prev_hash, hash "
                "FROM ledger_journal ORDER BY seq"
            )
            postings = conn.execution_options(stream_results=True)
            prows = iter(
                q(
                    "SELECT entry_seq, idx, account, currency, amount_minor FROM ledger_postings "
                    "ORDER BY entry_seq, idx"
                )
            )
            del postings
            last_seq, last_hash = check_chain(entries, prows)
            head = q("SELECT seq, hash FROM ledger_chain_head WHERE id = 1")
            if not head or (int(head[0][0]), str(head[0][1])) != (last_seq, last_hash):
                _fail("ledger_chain_head", "hash", f"head does not point at the last entry (seq {last_seq})")
            _check_state(q)
            _check_journal_facts(q)
        except _Found as f:
            v = f.violation
            return VerifyReport(False, f"FAILED {v}", v)
        n = last_seq
    return VerifyReport(
        True,
        f"ok: {n} entries, hash chain intact, every invariant holds (head {last_hash})",
        None,
        n,
        last_hash,
    )


def _check_state(q: Any) -> None:
    bal: dict[tuple[str, str], int] = {}
    for acct, cur, total in q(
        "SELECT account, currency, SUM(amount_minor) FROM ledger_postings GROUP BY account, currency"
    ):
        bal[(str(acct), str(cur))] = int(total)
    expect: dict[tuple[str, str], int] = defaultdict(int)

    vouchers = {
        r[0]: r
        for r in q(
            "SELECT voucher_no, obligor_uscc, supplier_uscc, face_minor, currency, "
            "state, settled_minor FROM ledger_vouchers ORDER BY voucher_no"
        )
    }
    pieces = {
        r[0]: r
        for r in q(
            "SELECT piece_no, voucher_no, parent_no, holder_uscc, amount_minor, state "
            "FROM ledger_pieces ORDER BY piece_no"
        )
    }
    children: dict[str, list[Any]] = defaultdict(list)
    by_voucher: dict[str, list[Any]] = defaultdict(list)
    for p in pieces.values():
        by_voucher[p[1]].append(p)
        if p[2] is not None:
            children[p[2]].append(p)
    transfers = q(
        "SELECT transfer_id, piece_no, from_uscc, to_uscc, amount_minor, state FROM ledger_transfers"
    )
    accepted_per_piece: dict[str, list[Any]] = defaultdict(list)
    for t in transfers:
        if t[5] == "accepted":
            accepted_per_piece[t[1]].append(t)
    # conservation, single holder, no piece consumed twice
    for vno, v in vouchers.items():
        _, obligor, _supplier, face, cur, state, settled = v
        ps = by_voucher.get(vno, [])
        where = f"voucher {vno}"
        if state in ("rejected", "revoked"):
            if any(p[5] != "void" for p in ps):
                _fail(where, "ledger_pieces.state", f"{state} voucher has a piece that is not void")
            continue
        standing = sum(p[4] for p in ps if p[5] not in ("consumed", "void"))
        if standing != face:
            _fail(
                where, "ledger_pieces.amount_minor", f"live pieces + cleared = {standing}, face amount {face}"
            )
        cleared = sum(p[4] for p in ps if p[5] == "settled")
        if cleared != settled:
            _fail(
                where, "ledger_vouchers.settled_minor", f"settled pieces {cleared} != settled_minor {settled}"
            )
        if state == "settled" and settled != face:
            _fail(where, "ledger_vouchers.state", "settled while pieces remain unsettled")
        expect[(f"obligation:{obligor}", cur)] -= face - settled
        for p in ps:
            pno, _, parent, holder, amount, pstate = p
            if amount <= 0:
                _fail(f"piece {pno}", "amount_minor", "not positive")
            if pstate in LIVE:
                expect[(f"held:{holder}", cur)] += amount
            elif pstate == "clearing":
                expect[(f"clearing:{holder}", cur)] += amount
            elif pstate == "offered":
                expect[(f"offered:{holder}", cur)] += amount
            if pstate == "consumed":
                kids = children.get(pno, [])
                if sum(k[4] for k in kids) != amount:
                    _fail(f"piece {pno}", "ledger_pieces.amount_minor", "children do not add up to the piece")
                acc = accepted_per_piece.get(pno, [])
                if len(acc) != 1:
                    _fail(
                        f"piece {pno}",
                        "ledger_transfers.state",
                        f"consumed by {len(acc)} accepted transfers (must be exactly one)",
                    )
                if not any(k[4] == acc[0][4] for k in kids):
                    _fail(
                        f"piece {pno}",
                        "ledger_pieces.amount_minor",
                        "no child carries the transferred amount",
                    )
            elif pno in accepted_per_piece:
                _fail(f"piece {pno}", "ledger_pieces.state", "transferred but not consumed")
            if parent is not None and pieces.get(parent, (None,) * 6)[5] != "consumed":
                _fail(f"piece {pno}", "ledger_pieces.parent_no", "parent piece is not consumed")
    for t in transfers:
        if t[5] == "pending":
            cur = vouchers[pieces[t[1]][1]][4]
            expect[(f"transfer_pending:{t[3]}", cur)] += t[4]
            expect[(f"transfer_offered:{t[2]}", cur)] -= t[4]
            if pieces[t[1]][5] != "locked":
                _fail(
                    f"transfer {t[0]}",
                    "ledger_pieces.state",
                    "pending transfer on a piece that is not locked",
                )
    # payables: backing never exceeded
    backed: dict[str, int] = defaultdict(int)
    for vno, pid, amt in q("SELECT voucher_no, payable_id, amount_minor FROM ledger_backings"):
        if vouchers[vno][5] not in ("rejected", "revoked"):
            backed[pid] += amt
    for pid, amount, backed_minor in q(
        "SELECT payable_id, amount_minor, backed_minor FROM ledger_payables ORDER BY payable_id"
    ):
        if backed.get(pid, 0) != backed_minor:
            _fail(
                f"payable {pid}",
                "ledger_payables.backed_minor",
                f"{backed_minor} != backings {backed.get(pid, 0)}",
            )
        if backed_minor > amount:
            _fail(f"payable {pid}", "ledger_payables.backed_minor", f"backs {backed_minor} > amount {amount}")
    # quota never exceeded, reservations = outstanding vouchers
    outstanding: dict[str, int] = defaultdict(int)
    for v in vouchers.values():
        if v[5] not in ("rejected", "revoked"):
            outstanding[v[1]] += v[3] - v[6]
    for obligor, cur, limit, reserved in q(
        "SELECT obligor_uscc, currency, limit_minor, reserved_minor FROM ledger_quotas"
    ):
        where = f"quota {obligor}"
        if reserved != outstanding.get(obligor, 0):
            _fail(
                where,
                "ledger_quotas.reserved_minor",
                f"{reserved} != outstanding vouchers {outstanding.get(obligor, 0)}",
            )
        if reserved > limit:
            _fail(where, "ledger_quotas.reserved_minor", f"reserved {reserved} exceeds limit {limit}")
        expect[(f"quota_reserved:{obligor}", cur)] += reserved
        expect[(f"quota_free:{obligor}", cur)] += limit - reserved
        expect[(f"quota_line:{obligor}", cur)] -= limit
    # financing: at most one per piece, none disbursed without a registration
    live_fin: dict[str, str] = {}
    for fid, pno, seller, funder, amt, state, reg in q(
        "SELECT financing_id, piece_no, seller_uscc, funder_uscc, amount_minor, state, registration_no "
        "FROM ledger_financings ORDER BY financing_id"
    ):
        if state != "rejected":
            if pno in live_fin:
                _fail(f"financing {fid}", "piece_no", f"piece {pno} already financed by {live_fin[pno]}")
            live_fin[pno] = fid
        if state in ("disbursed", "repurchased") and not reg:
            _fail(f"financing {fid}", "registration_no", "disbursed without a registry registration")
        if state == "pending":
            cur = vouchers[pieces[pno][1]][4]
            expect[(f"financing_pending:{funder}", cur)] += amt
            expect[(f"financing_offered:{seller}", cur)] -= amt
    # settled vouchers: every instruction matched to a statement line; one payable instruction per
    # piece in clearing, paying its holder its amount
    unsettled_per_piece: dict[str, str] = {}
    for iid, vno, pno, status, ref, amt, payee in q(
        "SELECT instruction_id, voucher_no, piece_no, status, statement_ref, "
        "amount_minor, payee_uscc FROM ledger_instructions ORDER BY instruction_id"
    ):
        if status in ("open", "sent", "returned"):
            if pno in unsettled_per_piece:
                _fail(f"instruction {iid}", "piece_no", f"piece {pno} also in {unsettled_per_piece[pno]}")
            unsettled_per_piece[pno] = iid
            if pieces[pno][5] != "clearing":
                _fail(f"instruction {iid}", "status", f"{status}, but piece {pno} is {pieces[pno][5]}")
            if payee != pieces[pno][3]:
                _fail(f"instruction {iid}", "payee_uscc", f"does not pay piece {pno}'s holder")
            if amt != pieces[pno][4]:
                _fail(f"instruction {iid}", "amount_minor", f"is not piece {pno}'s amount")
        if status == "settled" and not ref:
            _fail(f"instruction {iid}", "statement_ref", "settled without a statement reference")
        if vouchers[vno][5] == "settled" and status not in ("settled", "superseded"):
            _fail(f"instruction {iid}", "status", f"voucher {vno} settled but instruction is {status}")
        if status == "settled" and pieces[pno][5] != "settled":
            _fail(f"instruction {iid}", "ledger_pieces.state", "instruction settled, piece not")
    for pno, p in pieces.items():
        if p[5] == "clearing" and pno not in unsettled_per_piece:
            _fail(f"piece {pno}", "ledger_pieces.state", "in clearing without an instruction")
    # holder balances = sum of live pieces (and every other tracked account)
    for k in sorted(set(expect) | {k for k in bal if k[0].split(":", 1)[0] in _TRACKED}):
        if k[0].split(":", 1)[0] not in _TRACKED:
            continue
        if bal.get(k, 0) != expect.get(k, 0):
            _fail(
                f"account {k[0]} {k[1]}",
                "ledger_postings.amount_minor",
                f"balance {bal.get(k, 0)} != state {expect.get(k, 0)}",
            )


def _check_journal_facts(q: Any) -> None:
    """State columns no posting covers must equal what the (hash-chained) journal says.

    Parties (roles), accounts, payables (amount, parties), vouchers (parties, dates), backings,
    financings (terms, registration) and the accounts a clearing instruction pays from and to are
    not reflected in any balance, so an edit there (e.g. a payee account redirected, a payable's
    amount raised or a backing lowered to allow over-backing, a due date moved, a fake registration
    number) would pass every balance check. Each is compared with the command that
    created it; the journal bodies are trusted because the chain was verified first.
    """
    from ledger.money import to_minor

    parties: dict[str, tuple[str, str]] = {}
    accounts: dict[str, tuple[str, str, str, str | None, str]] = {}
    payables: dict[str, tuple[str, str, int, str]] = {}
    fins: dict[str, tuple[str, str, str, int, int, int, bool, str]] = {}
    regs: dict[str, str] = {}
    issued: dict[str, tuple[str, str, int, str, str, str, str]] = {}
    backings: set[tuple[str, str, int]] = set()
    for cmd, body_text, data_text in q(
        "SELECT cmd, body, result_data FROM ledger_journal WHERE cmd IN ('register_party', 'add_account', "
        "'register_payable', 'finance', 'record_registration', 'issue') ORDER BY seq"
    ):
        b, d = json.loads(body_text), json.loads(data_text)
        if cmd == "issue":
            cur, vno = b["currency"], d["voucher_no"]
            issued[vno] = (
                b["obligor"],
                b["supplier"],
                to_minor(b["amount"], cur),
                cur,
                b["on"],
                b["maturity"],
                d["due_date"],
            )
            backings.update((vno, x["payable_id"], to_minor(x["amount"], cur)) for x in b["backing"])
        elif cmd == "register_party":
            parties[b["uscc"]] = (b["name"], ",".join(sorted(set(b["roles"]))))
        elif cmd == "add_account":
            number = b.get("account_no") or b.get("wallet_id")
            kind = "bank" if b.get("account_no") else "ecny"
            accounts[d["account_id"]] = (b["uscc"], kind, number, b.get("cnaps") or None, b["currency"])
        elif cmd == "register_payable":
            amount = to_minor(b["amount"], b["currency"])
            payables[b["payable_id"]] = (b["obligor"], b["supplier"], amount, b["currency"])
        elif cmd == "finance":
            fins[d["financing_id"]] = (
                d["piece_no"],
                b["holder"],
                b["funder"],
                d["proceeds_minor"] + d["interest_minor"],
                d["interest_minor"],
                d["days"],
                b.get("recourse", True),
                b["rate"],
            )
        else:
            regs[b["financing_id"]] = b["registration_no"]

    def same(kind: str, ident: str, stored: dict[str, Any], journal: dict[str, Any]) -> None:
        for name, value in stored.items():
            if value != journal[name]:
                _fail(f"{kind} {ident}", name, f"{value!r} != {journal[name]!r} in the journal")

    seen: set[str] = set()
    for uscc, name, roles in q("SELECT uscc, name, roles FROM ledger_parties ORDER BY uscc"):
        seen.add(uscc)
        if uscc not in parties:
            _fail(f"party {uscc}", "uscc", "no register_party entry in the journal")
        same(
            "party",
            uscc,
            {"name": name, "roles": roles},
            dict(zip(("name", "roles"), parties[uscc], strict=True)),
        )
    for uscc in sorted(set(parties) - seen):
        _fail(f"party {uscc}", "uscc", "registered in the journal, missing from ledger_parties")
    by_party: dict[tuple[str, str], set[tuple[str, str | None]]] = defaultdict(set)
    seen = set()
    acols = ("party_uscc", "kind", "account_no", "cnaps", "currency")
    for aid, *cols in q(
        "SELECT account_id, party_uscc, kind, account_no, cnaps, currency FROM ledger_accounts "
        "ORDER BY account_id"
    ):
        seen.add(aid)
        if aid not in accounts:
            _fail(f"account {aid}", "account_id", "no add_account entry in the journal")
        same(
            "account", aid, dict(zip(acols, cols, strict=True)), dict(zip(acols, accounts[aid], strict=True))
        )
        by_party[(cols[0], cols[4])].add((cols[2], cols[3]))
    for aid in sorted(set(accounts) - seen):
        _fail(f"account {aid}", "account_id", "added in the journal, missing from ledger_accounts")
    pcols = ("obligor_uscc", "supplier_uscc", "amount_minor", "currency")
    seen = set()
    for pid, *cols in q(
        "SELECT payable_id, obligor_uscc, supplier_uscc, amount_minor, currency FROM ledger_payables "
        "ORDER BY payable_id"
    ):
        seen.add(pid)
        if pid not in payables:
            _fail(f"payable {pid}", "payable_id", "no register_payable entry in the journal")
        same(
            "payable", pid, dict(zip(pcols, cols, strict=True)), dict(zip(pcols, payables[pid], strict=True))
        )
    for pid in sorted(set(payables) - seen):
        _fail(f"payable {pid}", "payable_id", "registered in the journal, missing from ledger_payables")
    fcols = (
        "piece_no",
        "seller_uscc",
        "funder_uscc",
        "amount_minor",
        "interest_minor",
        "days",
        "recourse",
        "rate",
    )
    seen = set()
    for fid, *cols, reg in q(
        "SELECT financing_id, piece_no, seller_uscc, funder_uscc, amount_minor, interest_minor, days, "
        "recourse, rate, registration_no FROM ledger_financings ORDER BY financing_id"
    ):
        seen.add(fid)
        if fid not in fins:
            _fail(f"financing {fid}", "financing_id", "no finance entry in the journal")
        cols[6] = bool(cols[6])
        same("financing", fid, dict(zip(fcols, cols, strict=True)), dict(zip(fcols, fins[fid], strict=True)))
        if reg != regs.get(fid):
            _fail(f"financing {fid}", "registration_no", f"{reg!r} != {regs.get(fid)!r} in the journal")
    for fid in sorted(set(fins) - seen):
        _fail(f"financing {fid}", "financing_id", "financed in the journal, missing from ledger_financings")
    vcols = (
        "obligor_uscc",
        "supplier_uscc",
        "face_minor",
        "currency",
        "issue_date",
        "maturity_date",
        "due_date",
    )
    seen = set()
    for vno, *cols in q(
        "SELECT voucher_no, obligor_uscc, supplier_uscc, face_minor, currency, issue_date, maturity_date, "
        "due_date FROM ledger_vouchers ORDER BY voucher_no"
    ):
        seen.add(vno)
        if vno not in issued:
            _fail(f"voucher {vno}", "voucher_no", "no issue entry in the journal")
        cols[4:] = [x if isinstance(x, str) else x.isoformat() for x in cols[4:]]
        same("voucher", vno, dict(zip(vcols, cols, strict=True)), dict(zip(vcols, issued[vno], strict=True)))
    for vno in sorted(set(issued) - seen):
        _fail(f"voucher {vno}", "voucher_no", "issued in the journal, missing from ledger_vouchers")
    stored_backings = {
        (str(r[0]), str(r[1]), int(r[2]))
        for r in q("SELECT voucher_no, payable_id, amount_minor FROM ledger_backings")
    }
    for vno, pid, _amt in sorted(stored_backings ^ backings):
        _fail(
            f"voucher {vno}", "ledger_backings.amount_minor", f"backing by {pid} differs from the issue entry"
        )
    vouchers = {
        r[0]: (r[1], r[2]) for r in q("SELECT voucher_no, obligor_uscc, currency FROM ledger_vouchers")
    }
    piece_voucher = {r[0]: r[1] for r in q("SELECT piece_no, voucher_no FROM ledger_pieces")}
    for iid, vno, pno, obligor, payee, pacct, pagent, racct, ragent, cur in q(
        "SELECT instruction_id, voucher_no, piece_no, obligor_uscc, payee_uscc, payee_account, payee_agent, "
        "payer_account, payer_agent, currency FROM ledger_instructions ORDER BY instruction_id"
    ):
        where = f"instruction {iid}"
        if piece_voucher.get(pno) != vno:
            _fail(where, "voucher_no", f"piece {pno} is not a piece of voucher {vno}")
        if vouchers[vno] != (obligor, cur):
            _fail(where, "obligor_uscc", f"obligor or currency differ from voucher {vno}")
        if (pacct, pagent) not in by_party.get((payee, cur), set()):
            _fail(where, "payee_account", f"{pacct} is not a {cur} account of the payee {payee}")
        if (racct, ragent) not in by_party.get((obligor, cur), set()):
            _fail(where, "payer_account", f"{racct} is not a {cur} account of the obligor {obligor}")


_TRACKED = {
    "held",
    "clearing",
    "offered",
    "obligation",
    "quota_reserved",
    "quota_free",
    "quota_line",
    "transfer_pending",
    "transfer_offered",
    "financing_pending",
    "financing_offered",
}


# --- exported journal (offline) -------------------------------------------------------------------


def verify_journal_file(path: Path, *, replay: bool = False) -> VerifyReport:
    """Check an exported JSON-lines journal on its own: chain, seq order and balanced postings.

    With ``replay``, also re-apply every entry's command to a scratch SQLite ledger and require the
    very same entries (results, postings, hashes): a journal whose chain was recomputed after an
    edit, or whose postings do not follow from its commands, fails at the first differing entry.
    """
    entries: list[tuple[Any, ...]] = []
    posts: list[tuple[Any, ...]] = []
    try:
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    e = loads_strict(line)
                    entries.append(
                        (
                            e["seq"],
                            e["key"],
                            e["cmd"],
                            e["body"],
                            e["business_date"],
                            e["result_data"],
                            e["prev_hash"],
                            e["hash"],
                        )
                    )
                    posts.extend((e["seq"], i, p[0], p[1], p[2]) for i, p in enumerate(e["postings"]))
                except (ValueError, KeyError, TypeError, IndexError) as err:
                    _fail(f"{path}:{lineno}", "json", f"not a journal entry: {err}")
        last_seq, last_hash = check_chain(entries, iter(posts))
        if replay:
            _replay(entries)
    except _Found as f:
        return VerifyReport(False, f"FAILED {f.violation}", f.violation)
    if replay:
        return VerifyReport(
            True,
            f"ok: {last_seq} entries, hash chain intact, replay reproduces every entry "
            f"(head {last_hash[:16]})",
            None,
            last_seq,
        )
    return VerifyReport(
        True, f"ok: {last_seq} entries, hash chain intact (head {last_hash[:16]})", None, last_seq
    )


def _replay(entries: list[tuple[Any, ...]]) -> None:
    import tempfile

    from ledger.api import Ledger

    with tempfile.TemporaryDirectory(prefix="cvhub-replay-") as tmp:
        led = Ledger.open(f"sqlite:///{Path(tmp) / 'replay.sqlite'}")
        try:
            for start in range(0, len(entries), 1000):
                chunk = entries[start : start + 1000]
                cmds = []
                for e in chunk:
                    try:
                        cmds.append({**loads_strict(e[3]), "key": e[1]})
                    except (ValueError, TypeError) as err:
                        _fail(f"journal seq {e[0]}", "body", f"not a JSON command object: {err}")
                for e, r in zip(chunk, led.apply(cmds), strict=True):
                    if r.result != "ok" or r.seq != e[0]:
                        _fail(
                            f"journal seq {e[0]}",
                            "body",
                            f"replaying the command gives {r.result} (seq {r.seq}): {r.detail or ''}".strip(),
                        )
            with led.engine.connect() as conn:
                hashes: dict[int, str] = {
                    int(r[0]): str(r[1]) for r in conn.exec_driver_sql("SELECT seq, hash FROM ledger_journal")
                }
            for e in entries:
                if hashes.get(e[0]) != e[7]:
                    _fail(
                        f"journal seq {e[0]}",
                        "result_data",
                        "replaying the command gives a different entry (result data or postings)",
                    )
        finally:
            led.close()
