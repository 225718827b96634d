"""Differential tests: the compiled MT940 fast path against the pure-Python reference parser.

``mappings/_mt940_accel.pyx`` reads the decoded text through ``Lines`` cursors and builds runs of
common-shape ``:61:``/``:86:`` records (``EntryRun`` items); everything else goes through
``mappings.mt940``'s state machine. Every input here - the MT940/MT942 samples (own and
../shared, under every profile), the hostile corpus, files written by ``render_mt940`` and
hypothesis-generated files full of variations and corruptions (odd dates, amounts, marks and
type codes, references, Unicode text and whitespace, continuation lines, envelopes and
terminators, NUL bytes, bad UTF-8, BOM, CRLF/LF/CR mixes, tiny read chunks that cut records
anywhere) - is parsed with ``mt940._ACCEL`` set to the compiled module and to None, and the two
must agree exactly: the flat item stream (runs flattened; every field equal *with the same type*),
the checked statements, the unchecked ones, or the same error (type, code, message, line, field)
after the same items. Counting the entries that came in runs proves the fast path really takes
the common shape (one that refused everything would pass the equality checks alone).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from accel_cases import assert_built_in_ci, import_accel
from accel_cases import needs_accel as needs_accel_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mapping_cases import OWN, SHARED

from ledger.canonical import Statement, StatementEntry
from ledger.money import CURRENCY_EXPONENT
from mappings import accel, mt940
from mappings.errors import MappingError
from mappings.profiles import PROFILES
from mappings.statement_stream import EntryRun
from mappings.statements import iter_statements

HOSTILE = Path(__file__).resolve().parent / "hostile"
MT_PROFILES = [name for name, p in PROFILES.items() if p.format == "mt940"]


MOD = import_accel("mt940")
needs_accel = needs_accel_for(MOD, "mt940")


def test_compiled_accelerator_is_there_in_ci() -> None:
    """CI must never silently run the slow path: the module is built and switched on."""
    assert_built_in_ci(MOD, "mt940", mt940)


def test_switched_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CVHUB_ACCEL", "0")
    assert accel.load("mt940") is None


# --- running a file both ways ----------------------------------------------------------------

def _norm(x: object) -> object:
    """A comparable form that also pins types (True vs 1, str vs None, date vs datetime)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (type(x).__name__, tuple((f.name, _norm(getattr(x, f.name))) for f in dataclasses.fields(x)))
    if isinstance(x, MappingError):
        return ("error", type(x).__name__, tuple(sorted(x.as_dict().items())))
    if isinstance(x, BaseException):
        return ("exception", type(x).__name__, str(x))
    if isinstance(x, (tuple, list)):
        return (type(x).__name__, tuple(_norm(v) for v in x))
    return (type(x).__name__, x)


@contextlib.contextmanager
def _mode(mod: ModuleType | None, chunk: int | None = None, piece: int | None = None) -> Iterator[None]:
    saved = mt940._ACCEL, mt940._CHUNK, mt940._PIECE
    mt940._ACCEL = mod
    if chunk is not None:
        mt940._CHUNK = chunk
    if piece is not None:
        mt940._PIECE = piece
    try:
        yield
    finally:
        mt940._ACCEL, mt940._CHUNK, mt940._PIECE = saved


def _items(data: bytes, dialect: mt940.Mt940Dialect, mod: ModuleType | None,
           chunk: int | None, piece: int | None) -> tuple[list[object], int]:
    """The flat item stream (runs flattened, their totals checked) and how many entries came in runs."""
    out: list[object] = []
    in_runs = 0
    with _mode(mod, chunk, piece):
        try:
            for item in mt940.iter_mt940_items(data, source="t.sta", dialect=dialect):
                if isinstance(item, EntryRun):
                    assert mod is not None, "a run without the accelerator"
                    es = item.entries
                    assert es and item.line == es[0].line and all(e.currency == item.currency for e in es)
                    cr = [e.amount_minor for e in es if e.credit_debit == "CRDT"]
                    dr = [e.amount_minor for e in es if e.credit_debit == "DBIT"]
                    assert (item.credit_count, item.credit_minor, item.debit_count, item.debit_minor) == (
                        len(cr), sum(cr), len(dr), sum(dr))
                    assert item.booked_net == sum(e.signed_minor for e in es if e.status == "BOOK")
                    in_runs += len(es)
                    out.extend(_norm(e) for e in es)
                else:
                    out.append(_norm(item))
        except MappingError as e:
            out.append(_norm(e))
    return out, in_runs


def _statements(data: bytes, mod: ModuleType | None, profile: str | None, verify: bool,
                last: dict[str, int] | None, chunk: int | None, piece: int | None) -> list[object]:
    out: list[object] = []
    with _mode(mod, chunk, piece):
        try:
            for reader in iter_statements(data, source="t.sta", profile=profile, verify=verify,
                                          last_sequences=dict(last) if last is not None else None):
                out.append(_norm(reader.header))
                out.extend(_norm(e) for e in reader)
                out.append(_norm(reader.statement))
        except MappingError as e:
            out.append(_norm(e))
    return out


def same_both_ways(data: bytes, profile: str | None = None, last: dict[str, int] | None = None,
                   chunk: int | None = None, piece: int | None = None) -> tuple[int, list[object]]:
    """Assert identical outcomes with the accelerator on and off; (entries taken in runs, pure items)."""
    if MOD is None:
        pytest.fail("mappings._mt940_accel is not built")
    prof = PROFILES[profile] if profile is not None else None
    dialect = prof.mt940 if prof is not None and prof.mt940 is not None else mt940.DEFAULT_DIALECT
    fast, in_runs = _items(data, dialect, MOD, chunk, piece)
    pure, none = _items(data, dialect, None, chunk, piece)
    assert none == 0
    assert len(fast) == len(pure), f"{len(fast)} items with the accelerator, {len(pure)} without"
    for i, (a, b) in enumerate(zip(fast, pure, strict=True)):
        assert a == b, f"item {i} differs:\n accel: {a}\n pure:  {b}"
    for verify in (True, False):
        assert _statements(data, MOD, profile, verify, last, chunk, piece) == \
            _statements(data, None, profile, verify, last, chunk, piece)
    return in_runs, pure


def _entries_in(items: list[object]) -> int:
    return sum(1 for it in items if isinstance(it, tuple) and it[0] == "StatementEntry")


# --- the sample files and the hostile corpus -------------------------------------------------

def _sample_files() -> list[Path]:
    files = sorted(p for p in OWN.glob("mt940*/*") if not p.name.endswith(".json"))
    if (SHARED / "mt940").is_dir():
        files += sorted((SHARED / "mt940").glob("*.sta"))
    return files


@needs_accel
@pytest.mark.parametrize("profile", [None, *MT_PROFILES])
@pytest.mark.parametrize("path", _sample_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_files_map_identically(path: Path, profile: str | None) -> None:
    same_both_ways(path.read_bytes(), profile)


@needs_accel
def test_the_samples_take_the_fast_path() -> None:
    in_runs, items = same_both_ways((OWN / "mt940" / "mt940_generic_two_statements.sta").read_bytes())
    assert in_runs == _entries_in(items) == 5
    in_runs, items = same_both_ways((OWN / "mt940-abnamro" / "abnamro_balanced.sta").read_bytes(),
                                    "mt940-abnamro")
    assert in_runs == _entries_in(items) > 0
    # the ING and Rabobank dialects read :86:/references their own way: always the reference code
    in_runs, items = same_both_ways((OWN / "mt940-ing" / "ing_slash_codes.sta").read_bytes(), "mt940-ing")
    assert in_runs == 0 and _entries_in(items) > 0


_HOSTILE = {name: spec for name, spec in json.loads((HOSTILE / "MANIFEST.json").read_text("utf-8")).items()
            if name.startswith("mt940")}


@needs_accel
@pytest.mark.parametrize("name", sorted(_HOSTILE))
def test_hostile_files_fail_identically(name: str) -> None:
    spec: dict[str, Any] = _HOSTILE[name]
    data = (HOSTILE / name).read_bytes()
    for chunk in (None, 64):
        _, items = same_both_ways(data, spec.get("profile"), spec.get("last_sequences"), chunk=chunk)
    assert items[-1][0] == "error" or spec["code"] in ("balance_mismatch", "sequence_gap")


# --- files written by render_mt940 ---------------------------------------------------------------

def _statement(n: int, seed: int, ccy: str = "EUR", seq: int = 1, info: str = "电子债权凭证 CV{i} 到期清分",
               mandate: bool = False) -> Statement:
    day = date(2026, 12, 28)
    entries = []
    for i in range(n):
        cd = "CRDT" if (i * 7 + seed) % 3 else "DBIT"
        d = day + timedelta(days=i % 7)
        entries.append(StatementEntry(
            amount_minor=(i * 7919 + seed) % 10_000_000 + 1, currency=ccy, credit_debit=cd,  # type: ignore[arg-type]
            booking_date=d, value_date=d - timedelta(days=i % 2), entry_ref=None if i % 4 == 0 else f"REF{i}",
            account_servicer_ref=None if i % 5 == 0 else f"BK{seed}{i:08d}", reversal=i % 11 == 3,
            mandate_or_serial=f"SERIAL {i}" if mandate and i % 3 == 0 else None,
            remittance_info=None if i % 9 == 8 else info.format(i=i) * (1 + i % 4), bank_tx_code="NTRF"))
    net = sum(e.signed_minor for e in entries)
    return Statement(source_format="mt940", statement_id=f"ST{seed}", account="NL91ABNA0417164300",
                     currency=ccy, sequence=seq, created_at=None, from_date=day, to_date=day,
                     opening_balance_minor=1_000_000, closing_balance_minor=1_000_000 + net,
                     entries=tuple(entries))


@needs_accel
@pytest.mark.parametrize("ccy", ["EUR", "JPY", "BHD", "CNY"])
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_written_files_take_the_fast_path_for_every_entry(ccy: str, newline: str) -> None:
    text = mt940.render_mt940([_statement(40, 1, ccy, 1, mandate=True), _statement(25, 2, ccy, 2)])
    data = text.replace("\r\n", newline).encode("utf-8")
    in_runs, items = same_both_ways(data, last={"NL91ABNA0417164300": 0})
    assert items[-1][0] == "Tail"
    assert in_runs == _entries_in(items) == 65


@needs_accel
def test_a_large_file_is_nearly_all_fast_and_seams_agree() -> None:
    """Several read chunks and decode pieces: only records cut by a seam go to the reference code."""
    info = "payment {i} 电子债权凭证 清分 invoice 😀 INV-{i}"
    sts = [_statement(700, s, seq=s + 1, info=info) for s in range(4)]
    data = mt940.render_mt940(sts).encode("utf-8")
    in_runs, items = same_both_ways(data, chunk=1 << 16, piece=1 << 13)
    assert _entries_in(items) == 2800 and in_runs > 2800 * 0.95  # (two records lost per seam at most)
    for chunk, piece in ((4096, 700), (999, 999), (333, 64)):
        same_both_ways(data[:60_000], chunk=chunk, piece=piece)


@needs_accel
@pytest.mark.parametrize(("debits", "credits"), [("1EUR30,50", "2EUR100,01"), ("1EUR30,51", "2EUR100,01"),
                                                 ("2EUR30,50", "2EUR100,01"), ("1EUR30,50", "1EUR100,01")])
def test_mt942_declared_totals_are_checked_against_runs(debits: str, credits: str) -> None:
    text = (":20:INTRA1\r\n:25:NL91ABNA0417164300\r\n:28C:5/1\r\n:34F:EUR0,\r\n:13D:2612011200+0100\r\n"
            ":61:2612011201C100,00NTRFNONREF//B1\r\n:86:credit one\r\n"
            ":61:2612011201D30,50NTRFREF2//B2\r\n:86:debit one\r\n"
            ":61:2612011201C0,01NTRFREF3//B3\r\n"
            f":90D:{debits}\r\n:90C:{credits}\r\n-}}\r\n")
    in_runs, items = same_both_ways(text.encode())
    assert in_runs == _entries_in(items) == 3
    checked = _statements(text.encode(), MOD, None, True, None, None, None)
    assert (checked[-1][0] == "error") == ((debits, credits) != ("1EUR30,50", "2EUR100,01"))


def _read_partly(data: bytes, mod: ModuleType | None, take: int, resume: bool) -> list[object]:
    """Read ``take`` entries of each statement, then resume reading it or move on (which drains it)."""
    out: list[object] = []
    with _mode(mod):
        try:
            for reader in iter_statements(data, source="t.sta", last_sequences={}):
                it = iter(reader)
                out.extend(_norm(e) for _, e in zip(range(take), it, strict=False))
                if resume:
                    out.extend(_norm(e) for e in reader)  # the same iteration, continued
                out.append(_norm(reader.statement))
            out.append(_norm(reader.statement))
        except MappingError as e:
            out.append(_norm(e))
    return out


@needs_accel
@pytest.mark.parametrize("take", [0, 1, 7, 39, 40, 41])
@pytest.mark.parametrize("resume", [False, True])
def test_a_reader_left_half_read_is_resumed_not_restarted(take: int, resume: bool) -> None:
    """Stopping in the middle of a run and going on must not lose the run's entries or totals."""
    data = mt940.render_mt940([_statement(40, 1, seq=1), _statement(9, 2, seq=2)]).encode()
    fast = _read_partly(data, MOD, take, resume)
    assert fast == _read_partly(data, None, take, resume)
    assert fast[-1][0] == "Statement", "a good file must pass its checks however it is read"
    if resume:
        assert _entries_in(fast) == 49


# A statement whose currency changes after its first entry (a second :60F:): the reader's
# per-entry currency check fails on the first USD entry, which sits in the middle of what the
# fast path hands over as one run.
_CCY_SWITCH = (b":20:R1\n:25:ACC\n:28C:1\n:60F:C240228EUR0,\n:61:240229C1,NTRF\n:86:a\n"
               b":60F:C240228USD0,\n:61:240229C2,NTRF\n:86:b\n:61:240229D2,NTRF\n:86:c\n"
               b":61:240229D1,NTRF\n:86:d\n:62F:C240229EUR0,\n-}\n")


def _read_on_after_errors(data: bytes, mod: ModuleType | None, verify: bool) -> list[object]:
    """A caller that catches a statement's error and goes on (the reader is drained by the next step)."""
    out: list[object] = []
    with _mode(mod):
        try:
            for reader in iter_statements(data, source="t.sta", last_sequences={}, verify=verify):
                try:
                    out.extend(_norm(e) for e in reader)
                except MappingError as e:
                    out.append(("caught", _norm(e)))
                out.append(_norm(reader.statement))
        except MappingError as e:
            out.append(_norm(e))
    return out


@needs_accel
@pytest.mark.parametrize("verify", [True, False])
def test_an_error_inside_a_run_leaves_the_rest_of_the_run_to_be_checked(verify: bool) -> None:
    """After the currency check fails on a run's first entry, the run's other entries are still
    there, each checked again, as entry by entry: draining must not skip them (and accept the
    statement)."""
    fast = _read_on_after_errors(_CCY_SWITCH, MOD, verify)
    assert fast == _read_on_after_errors(_CCY_SWITCH, None, verify)
    assert fast[-1][0] == ("error" if verify else "Statement")


def _close_midway(data: bytes, mod: ModuleType | None, take: int, verify: bool) -> list[object]:
    """Read ``take`` entries, close that iteration explicitly, then read the rest."""
    out: list[object] = []
    with _mode(mod):
        try:
            for reader in iter_statements(data, source="t.sta", verify=verify):
                it = iter(reader)
                out.extend(_norm(e) for _, e in zip(range(take), it, strict=False))
                it.close()  # type: ignore[attr-defined]
                out.extend(_norm(e) for e in reader)
                out.append(_norm(reader.statement))
        except MappingError as e:
            out.append(_norm(e))
    return out


@needs_accel
@pytest.mark.parametrize("take", [1, 7, 39])
@pytest.mark.parametrize("verify", [True, False])
def test_closing_an_iteration_inside_a_run_loses_no_entries(take: int, verify: bool) -> None:
    data = mt940.render_mt940([_statement(40, 1, seq=1), _statement(9, 2, seq=2)]).encode()
    fast = _close_midway(data, MOD, take, verify)
    assert fast == _close_midway(data, None, take, verify)
    if not verify:
        assert _entries_in(fast) == 49


@needs_accel
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
@pytest.mark.parametrize(("chunk", "piece"), [(None, None), (7, 4), (33, 7), (17, 5), (64, 16)])
def test_a_bom_after_the_codec_s_own_is_removed_as_by_the_reference(
        encoding: str, chunk: int | None, piece: int | None) -> None:
    """Codecs that consume their own BOM may decode a first piece to nothing: the text's first
    character (a second BOM here) is still the one ``_lines`` strips, whatever the piece size."""
    text = mt940.render_mt940([_statement(3, 1)])
    data = ("\ufeff" + text[text.index(":20:"):]).encode(encoding)  # without the {1:..} envelope line
    dialect = mt940.Mt940Dialect(name="x", encoding=encoding)
    fast, in_runs = _items(data, dialect, MOD, chunk, piece)
    assert fast == _items(data, dialect, None, chunk, piece)[0]
    if chunk is None or chunk > 8:  # (a first chunk that decodes to nothing keeps it, both ways)
        assert fast[-1][0] == "Tail"
    if chunk is None:
        assert in_runs == 3


# --- the Lines cursor ------------------------------------------------------------------------------

def _reference_lines(text: str) -> list[str]:
    parts = text.split("\n")
    last = parts.pop()
    return [p.rstrip("\r") for p in parts] + ([last.rstrip("\r")] if last else [])


@needs_accel
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(["a", "\n", "\r", " ", "é", "电", "😀", "\x00", ":", "\x85"]),
               max_size=60), st.data())
def test_lines_cursor_splits_like_the_reference(text: str, data: st.DataObject) -> None:
    assert MOD is not None
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    piece = text[start:end]
    cur = MOD.Lines(text, start, end)
    assert list(cur) == _reference_lines(piece)
    assert cur.count == len(_reference_lines(piece))
    with pytest.raises(ValueError, match="outside"):
        MOD.Lines(text, 0, len(text) + 1)


@needs_accel
def test_entries_refuses_without_a_current_line_or_a_known_currency() -> None:
    assert MOD is not None
    text = ":61:2612011201C1,00NTRFNONREF\n:86:x\n:62F:C261201EUR1,00\n-}\n"
    cur = MOD.Lines(text, 0, len(text))
    head = MOD.Lines(text, 0, len(text) - 3)
    next(head)
    assert head.entries(1, "EUR", 2, mt940._NO_PARTY) is None  # :62F: not seen complete: Python
    assert cur.entries(1, "EUR", 2, mt940._NO_PARTY) is None  # nothing handed out yet
    assert next(cur).startswith(":61:")
    assert cur.entries(1, "XXX", -1, mt940._NO_PARTY) is None  # unknown currency: Python decides
    run = cur.entries(1, "EUR", 2, mt940._NO_PARTY)
    assert run is not None and run[1:] == (2, 1, 100, 0, 0)
    assert cur.entries(1, "EUR", 2, mt940._NO_PARTY) is None  # taken already
    assert next(cur).startswith(":62F:") and cur.count == 3


# --- hypothesis: generated files with variations and corruptions -----------------------------------

DIGITS_AR = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
TEXT_ATOMS = ["payment", "INV-0042", "电子债权凭证", "清分", "😀", " ", "  ", "\u3000", "\xa0", "\x85",
              "\u2028", "-", "//", "/EREF/", "NONREF", ":", "{", "}", "\t", "é", "ß", "x" * 70, "\x1c"]
ODD_LINES = ["-", " - ", "-}", "-}{5:}", "{4:", "{1:F01X}{2:O940}{4::20:INNER", ":61A:2612011201C1,NTRF",
             ":86A:odd", ":6١:x", ":٦١:2612011201C1,NTRF", ":1:", ":12", "", "\r", " ", "\u3000", ":61:",
             ":86:", ":86:  ", ":20:AGAIN", ":62F:C261231EUR0,", ":64:C261231EUR1,00", ":28C:7/2", ":99:what",
             "plain continuation", ":hello:", "\x00", "a\x00b", ":61:\x00", "-\u3000", ":90D:1EUR1,00",
             ":34F:EUR0,", ":13D:2612011200+0100", ":60F:C261201JPY5,", ":60F:C261201XXX5,00",
             ":61:2612011201C1,NTRF" + "X" * 40]
AMOUNTS = ["1,00", "0,", "0,01", "1,5", "1,500", "1,2,3", "12345678901234,5", "123456789012345,67",
           "1234567890123456", "12345678901234567", "00012,30", ",5", "1.5", "1", "١٢,٣", "99999999999999,99",
           "9,", "5,0"]
MARKS = ["C", "D", "RC", "RD", "R", "X", "c", "CR", "DA"]
TTYPES = ["NTRF", "NMSC", "FCHK", "S123", "XTRF", "ntrf", "N1", "NTR", "N٢٣٤"]


@st.composite
def _text(draw: st.DrawFn, max_atoms: int = 5) -> str:
    return "".join(draw(st.lists(st.sampled_from(TEXT_ATOMS), max_size=max_atoms)))


def _rare(draw: st.DrawFn, one_in: int = 80) -> bool:
    """True about once in ``one_in`` draws (hypothesis favours 0 and the bounds: avoid them)."""
    return draw(st.integers(0, 100_000)) % one_in == one_in // 2


def _minor(amount: str, ccy: str) -> int | None:
    try:
        return mt940._amount(amount, ccy, "x", 0, "amount")
    except MappingError:
        return None


@st.composite
def _line_61(draw: st.DrawFn, ccy: str) -> tuple[str, int]:
    """A :61: line (mostly valid, in all its variants; now and then odd) and its signed amount."""
    exp = CURRENCY_EXPONENT.get(ccy, 2)
    d = draw(st.dates(date(1979, 1, 1), date(2080, 12, 31)))
    vdate = d.strftime("%y%m%d")
    if _rare(draw):
        vdate = draw(st.sampled_from(["261301", "260230", "260229", "240229", "2602a1", "26010", "000000",
                                      vdate.translate(DIGITS_AR), "991231", "791231", "800101", "000229"]))
    edate = draw(st.sampled_from(["", d.strftime("%m%d"), d.strftime("%m%d"),
                                  "0101" if d.month == 12 else "1231" if d.month == 1 else ""]))
    if _rare(draw):
        edate = draw(st.sampled_from(["1332", "0230", "0000", "12", "٠١٠١", "0229", "1231", "0101"]))
    mark = draw(st.sampled_from(MARKS[:4] if not _rare(draw) else MARKS))
    funds = draw(st.sampled_from(["", "", "", "R", "Z"] if not _rare(draw) else ["1", "é"]))
    whole = draw(st.integers(0, 10**draw(st.sampled_from([1, 3, 6, 9, 12]))))
    frac = draw(st.integers(0, 10**exp - 1)) if exp else 0
    amount = draw(st.sampled_from([f"{whole},{frac:0{exp}d}" if exp else f"{whole},", f"{whole},",
                                   f"{whole:03d},{frac:0{exp}d}"[:17] if exp else f"0{whole},",
                                   f"{whole},{frac:0{exp}d}".rstrip("0") if exp else f"{whole},"]))
    if _rare(draw):
        amount = draw(st.sampled_from(AMOUNTS))
    ttype = draw(st.sampled_from(TTYPES[:4] if not _rare(draw) else TTYPES))
    ref = draw(st.sampled_from(["NONREF", " NONREF ", "REF123", "", "A" * 16, "B" * 23, "REF//BANK", "//BANK",
                                "REF//", "REF// BANK ", "电子//银行", "REF\u3000//X", "a//b//c", "NONREF//",
                                "x/y", "/", "  //  ", "NONREF//BK0001", "CLR-CV0001-P1//ICBC000001",
                                "😀REF//😀", "\xa0NONREF\xa0"]))
    if _rare(draw, 6):
        ref += draw(_text(2))
    minor = _minor(amount, ccy) or 0
    return f":61:{vdate}{edate}{mark}{funds}{amount}{ttype}{ref}", minor if mark in ("C", "RD") else -minor


@st.composite
def mt940_files(draw: st.DrawFn) -> bytes:
    ccy = draw(st.sampled_from(["EUR", "EUR", "CNY", "JPY", "BHD"] if not _rare(draw, 20) else ["XXX"]))
    exp = CURRENCY_EXPONENT.get(ccy, 2)
    lines: list[str] = []
    if _rare(draw, 4):
        lines.append("bank preamble")
    for s in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            lines.append("{1:F01CVHUBSANDBOX0000000000}{2:O940}{4:")
        lines += [f":20:REF{s}", ":25:NL91ABNA0417164300", f":28C:{s + 1:05d}",
                  f":60F:C261201{ccy}1000," + "0" * exp]
        net = 0
        for _ in range(draw(st.integers(0, 8))):
            line, signed = draw(_line_61(ccy))
            lines.append(line)
            net += signed
            for _ in range(draw(st.sampled_from([0, 0, 0, 0, 1, 2]))):  # supplementary details
                lines.append(draw(_text(3)))
            for _ in range(draw(st.sampled_from([0, 1, 1, 1, 1, 2]))):  # :86: fields
                lines.append(":86:" + draw(_text()))
                for _ in range(draw(st.sampled_from([0, 0, 0, 1, 3]))):
                    lines.append(draw(_text()))
        closing = 1000 * 10**exp + net
        lines.append(f":62F:{'C' if closing >= 0 else 'D'}261231{ccy}{abs(closing) // 10**exp},"
                     + (f"{abs(closing) % 10**exp:0{exp}d}" if exp else ""))
        if _rare(draw, 4):
            lines.append(":86:statement information")
        lines.append(draw(st.sampled_from(["-}", "-", "", "-}"])))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2]))):  # corruptions
        at = draw(st.integers(0, len(lines)))
        what = draw(st.integers(0, 2))
        if what == 0:
            lines.insert(at, draw(st.sampled_from(ODD_LINES)))
        elif what == 1 and at < len(lines):
            del lines[at]
        else:
            lines.insert(at, "\n".join([draw(_text())] * draw(st.sampled_from([1, 2, 199, 201, 203]))))
    newline = draw(st.sampled_from(["\r\n", "\n", "mixed"]))
    if newline == "mixed":
        text = "".join(line + draw(st.sampled_from(["\n", "\r\n", "\r\r\n", "\r\n"])) for line in lines)
    else:
        text = newline.join(lines) + draw(st.sampled_from([newline, ""]))
    data = ("\ufeff" if _rare(draw, 10) else "").encode() + text.encode("utf-8")
    if _rare(draw, 12):  # bad UTF-8 somewhere
        at = draw(st.integers(0, len(data)))
        bad = draw(st.sampled_from([b"\xff", b"\xe4\xb8", b"\xc0\xaf", b"\xed\xa0\x80"]))
        data = data[:at] + bad + data[at:]
    return data


SEAMS = st.sampled_from([(None, None), (None, None), (64, 16), (100, 7), (37, 37), (4096, 300)])


@needs_accel
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mt940_files(), SEAMS)
def test_generated_variations_map_identically(data: bytes, seams: tuple[int | None, int | None]) -> None:
    same_both_ways(data, chunk=seams[0], piece=seams[1])


@needs_accel
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mt940_files())
def test_generated_variations_map_identically_in_latin1(data: bytes) -> None:
    """ABN AMRO's profile is the plain dialect in latin-1: one-byte text with characters >= 0x80."""
    same_both_ways(data.decode("utf-8", "replace").encode("latin-1", "replace"), "mt940-abnamro")


@st.composite
def _plain_statements(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 30))
    ccy = draw(st.sampled_from(["EUR", "JPY", "BHD", "CNY"]))
    info = draw(st.text(alphabet=st.sampled_from(["a", "Z", "0", " ", "电", "😀", "é", "/", "-", "\u3000"]),
                        min_size=1, max_size=150).map(str.strip).filter(bool))
    st_ = _statement(n, draw(st.integers(0, 99)), ccy, info=info.replace("{", "(").replace("}", ")") + "{i}",
                     mandate=draw(st.booleans()))
    return mt940.render_mt940([st_]).encode("utf-8")


@needs_accel
@settings(max_examples=60, deadline=None)
@given(_plain_statements())
def test_generated_common_shape_takes_the_fast_path(data: bytes) -> None:
    in_runs, items = same_both_ways(data)
    assert items[-1][0] == "Tail"
    assert in_runs == _entries_in(items) > 0


# --- switching and memory ---------------------------------------------------------------------------

def test_pure_path_when_switched_off() -> None:
    data = mt940.render_mt940([_statement(5, 1)]).encode()
    with _mode(None):
        items = list(mt940.iter_mt940_items(data, source="x"))
    assert not any(isinstance(i, EntryRun) for i in items)
    assert len([i for i in items if isinstance(i, StatementEntry)]) == 5


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@needs_accel
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_no_reference_leaks() -> None:
    assert MOD is not None
    text = mt940.render_mt940([_statement(50, 3, mandate=True)])
    start = text.index(":61:")
    first_run = None

    def run(n: int) -> None:
        nonlocal first_run
        for _ in range(n):
            cur = MOD.Lines(text, start, len(text))
            next(cur)
            got = cur.entries(7, "EUR", 2, mt940._NO_PARTY)
            assert got is not None
            if first_run is None:
                first_run = got
            else:
                assert got == first_run

    run(10)
    party = mt940._NO_PARTY
    watched: list[object] = [party, "EUR", "CRDT", "DBIT", "BOOK", (), True, False]
    gc.collect()
    counts = [sys.getrefcount(o) for o in watched]
    base = _rss_kib()
    run(3000)  # 150,000 entries
    gc.collect()
    # (the interpreter itself uses (), True and False all the time: a leak would be +150,000)
    after = [sys.getrefcount(o) for o in watched]
    assert after[:5] == counts[:5]
    assert all(abs(a - n) < 100 for a, n in zip(after, counts, strict=True))
    assert _rss_kib() - base < 8192, "RSS grew: a leak per entry"
