"""Differential tests: the compiled camt entry accelerator against the pure-Python reference.

``mappings/_camt_accel.pyx`` maps camt entries of the common shape and hands the rest back to
``mappings.camt._entry``. Every input here - the camt samples (own and ../shared), the hostile
corpus, files written by ``write_camt053``/``render_camt053`` (v2 and v8, compact, pretty-printed,
CRLF, > 65535 lines) and hypothesis-generated documents with variations and corruptions - is
parsed with ``camt._ACCEL`` set to the compiled module and to None, and the two outcomes must be
identical: every item equal field by field with the same types, or the same error (type, code,
message, line, xpath, field). ``stats()`` deltas prove the fast path really took the common-shape
entries (a fast path that refused everything would pass the equality checks alone).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from accel_cases import assert_built_in_ci, import_accel
from accel_cases import needs_accel as needs_accel_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from mapping_cases import OWN, SHARED

from ledger.canonical import Party, Statement, StatementEntry
from mappings import accel, camt
from mappings.errors import MappingError
from mappings.statements import iter_statements
from mappings.xml import STREAM_LIMITS, XmlLimits

HOSTILE = Path(__file__).resolve().parent / "hostile"
MOD = import_accel("camt")
needs_accel = needs_accel_for(MOD, "camt")


def test_compiled_accelerator_is_there_in_ci() -> None:
    """CI must never silently run the slow path: the module is built and switched on."""
    assert_built_in_ci(MOD, "camt", camt)


# --- running a document both ways -------------------------------------------------------------

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


def _items(data: bytes, mod: ModuleType | None, limits: XmlLimits) -> list[object]:
    saved = camt._ACCEL
    camt._ACCEL = mod
    out: list[object] = []
    try:
        for item in camt.iter_camt_items(data, source="doc.xml", limits=limits):
            out.append(_norm(item))
    except MappingError as e:
        out.append(_norm(e))
    finally:
        camt._ACCEL = saved
    return out


def _statements(data: bytes, mod: ModuleType | None, last: dict[str, int] | None) -> list[object]:
    saved = camt._ACCEL
    camt._ACCEL = mod
    out: list[object] = []
    try:
        for reader in iter_statements(data, source="doc.xml", last_sequences=dict(last) if last else None):
            out.append(_norm(reader.header))
            out.extend(_norm(e) for e in reader)
            out.append(_norm(reader.statement))
    except MappingError as e:
        out.append(_norm(e))
    finally:
        camt._ACCEL = saved
    return out


def _stats() -> tuple[int, int]:
    assert MOD is not None
    accepted, refused = MOD.stats()
    return int(accepted), int(refused)


def same_both_ways(data: bytes, limits: XmlLimits = STREAM_LIMITS,
                   last: dict[str, int] | None = None, full: bool = False) -> tuple[int, int, list[object]]:
    """Assert identical outcomes with the accelerator on and off; (accepted, refused, items)."""
    if MOD is None:
        pytest.fail("mappings._camt_accel is not built")
    before = _stats()
    fast = _items(data, MOD, limits)
    after = _stats()
    pure = _items(data, None, limits)
    assert len(fast) == len(pure)
    for i, (a, b) in enumerate(zip(fast, pure, strict=True)):
        assert a == b, f"item {i} differs:\n accel: {a}\n pure:  {b}"
    if full:
        assert _statements(data, MOD, last) == _statements(data, None, last)
    return after[0] - before[0], after[1] - before[1], pure


def _entries_in(items: list[object]) -> int:
    return sum(1 for it in items if isinstance(it, tuple) and it[0] == "StatementEntry")


# --- the sample files and the hostile corpus -----------------------------------------------------

def _sample_files() -> list[Path]:
    files = sorted((OWN / "camt").glob("*.xml"))
    if (SHARED / "camt").is_dir():
        files += sorted((SHARED / "camt").glob("*.xml"))
    return files


@needs_accel
@pytest.mark.parametrize("path", _sample_files(), ids=lambda p: p.name)
def test_sample_files_map_identically(path: Path) -> None:
    same_both_ways(path.read_bytes(), full=True)


@needs_accel
def test_the_samples_mostly_take_the_fast_path() -> None:
    accepted = refused = 0
    for path in _sample_files():
        a, r, _ = same_both_ways(path.read_bytes())
        accepted += a
        refused += r
    # refused: the batch bookings (several TxDtls) and the entries that raise errors
    assert accepted >= 20 and accepted > 2 * refused, (accepted, refused)
    a, r, _ = same_both_ways((OWN / "camt" / "camt053_v08_cny_full.xml").read_bytes())
    assert (a, r) == (4, 1)  # all but the two-TxDtls batch entry


def _hostile_cases() -> list[tuple[str, dict[str, Any]]]:
    manifest: dict[str, dict[str, Any]] = json.loads((HOSTILE / "MANIFEST.json").read_text("utf-8"))
    return [(name, spec) for name, spec in sorted(manifest.items())
            if spec["kind"] == "statement" and name.endswith(".xml")]


@needs_accel
@pytest.mark.timeout(120)
@pytest.mark.parametrize(("name", "spec"), _hostile_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_hostile_files_fail_identically(name: str, spec: dict[str, Any]) -> None:
    same_both_ways((HOSTILE / name).read_bytes(), last=spec.get("last_sequences"), full=True)


# --- files written by cvhub's own writer: all of them take the fast path ------------------------

def _entries(n: int, seed: int, ccy: str = "CNY") -> list[StatementEntry]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        cd = "CRDT" if rnd.random() < 0.5 else "DBIT"
        d = date(2026, 1, 1) + timedelta(days=rnd.randint(0, 40))
        full = i % 4 != 3
        out.append(StatementEntry(
            amount_minor=rnd.randint(1, 10**11), currency=ccy, credit_debit=cd, booking_date=d,
            value_date=d + timedelta(days=i % 3) if i % 5 else None, reversal=i % 7 == 0,
            status="PDNG" if i % 11 == 0 else "BOOK", entry_ref=f"R{i}" if i % 2 else None,
            account_servicer_ref=f"BK{i:08d}", end_to_end_id=f"E2E-{i}" if full else None,
            instruction_id=f"I-{i}" if full and i % 3 == 0 else None,
            bank_tx_code=("PMNT/RCDT/DMCT" if cd == "CRDT" else "PMNT/ICDT/DMCT") if i % 6 else "NTRF",
            remittance_info=f"电子债权凭证 CV{i:06d}\u3000到期清分 invoice" if full else None,
            return_reason="AC04" if i % 13 == 0 else None,
            counterparty=Party(name=f"供应商{i}有限公司" if full else None, account=f"6222{i:015d}",
                               agent="102100099996" if i % 2 else "COBADEFFXXX") if i % 9 else Party()))
    return out


def _statement(entries: list[StatementEntry], ccy: str = "CNY") -> Statement:
    net = sum(e.signed_minor for e in entries if e.status == "BOOK")
    return Statement(source_format="camt.053.001.08", statement_id="S-1", account="DE89370400440532013000",
                     currency=ccy, sequence=7, created_at=datetime(2026, 2, 1, tzinfo=UTC),
                     from_date=date(2026, 1, 1), to_date=date(2026, 2, 28), opening_balance_minor=10**9,
                     closing_balance_minor=10**9 + net, entries=tuple(entries),
                     account_servicer="COBADEFFXXX")


def _pretty(data: bytes) -> bytes:
    root = etree.fromstring(data, etree.XMLParser(remove_blank_text=True))
    out: bytes = etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")
    return out


@needs_accel
@pytest.mark.parametrize("version", ["02", "08"])
@pytest.mark.parametrize("layout", ["compact", "pretty", "pretty-crlf"])
def test_written_files_take_the_fast_path_for_every_entry(version: str, layout: str) -> None:
    entries = _entries(120, seed=int(version))
    data = camt.render_camt053(_statement(entries), version=version)  # type: ignore[arg-type]
    if layout != "compact":
        data = _pretty(data)
    if layout == "pretty-crlf":
        data = data.replace(b"\n", b"\r\n")
    accepted, refused, items = same_both_ways(data, full=True)
    assert (accepted, refused) == (120, 0)
    assert _entries_in(items) == 120
    parsed = camt.iter_camt_items(data, source="doc.xml")
    mapped = [e for e in parsed if isinstance(e, StatementEntry)]
    for want, got in zip(entries, mapped, strict=True):  # and the round trip holds
        assert dataclasses.replace(got, line=None) == want


@needs_accel
@pytest.mark.parametrize("ccy", ["JPY", "KWD", "EUR"])
def test_other_currency_exponents(ccy: str) -> None:
    entries = _entries(30, seed=3, ccy=ccy)
    accepted, refused, _ = same_both_ways(camt.render_camt053(_statement(entries, ccy)), full=True)
    assert (accepted, refused) == (30, 0)


@needs_accel
@pytest.mark.parametrize("encoding", ["UTF-16", "GB18030", "ISO-8859-1"])
def test_other_document_encodings(encoding: str) -> None:
    """libxml2 hands out UTF-8 text whatever the document's encoding."""
    entries = _entries(20, seed=4)
    if encoding == "ISO-8859-1":  # no Chinese in Latin-1: use names it can carry
        entries = [dataclasses.replace(e, remittance_info="Überweisung café",
                                       counterparty=Party(name="Müller")) for e in entries]
    root = etree.fromstring(camt.render_camt053(_statement(entries)))
    data = etree.tostring(root, encoding=encoding, xml_declaration=True)
    accepted, refused, _ = same_both_ways(data, full=True)
    assert (accepted, refused) == (20, 0)


@needs_accel
def test_date_cache_limit_and_beyond() -> None:
    """Past 4096 distinct dates the per-file cache stops growing; entries are still mapped alike."""
    entries = [dataclasses.replace(e, booking_date=date(2000, 1, 1) + timedelta(days=i),
                                   value_date=date(2000, 1, 1) + timedelta(days=i + 5000))
               for i, e in enumerate(_entries(2200, seed=6))]
    data = camt.render_camt053(_statement(entries))
    accepted, refused, _ = same_both_ways(data)
    assert (accepted, refused) == (2200, 0)


@needs_accel
@pytest.mark.parametrize("max_text", [10**30, 0, -1])
def test_extreme_text_limits(max_text: int) -> None:
    data = camt.render_camt053(_statement(_entries(10, seed=8)))
    same_both_ways(data, limits=dataclasses.replace(STREAM_LIMITS, max_text=max_text))


@needs_accel
@pytest.mark.timeout(300)
def test_line_numbers_beyond_65535() -> None:
    """libxml2 keeps 16 bits of line in the node; the entry's line must still be lxml's sourceline."""
    buf = io.BytesIO()
    entries = _entries(2600, seed=5)
    camt.write_camt053(buf, [_statement(entries)], version="08", message_id="M",
                       created_at=datetime(2026, 2, 1, tzinfo=UTC))
    data = _pretty(buf.getvalue())
    assert data.count(b"\n") > 70000
    accepted, refused, items = same_both_ways(data)
    assert (accepted, refused) == (2600, 0)
    lines = [dict(it[1])["line"][1] for it in items  # type: ignore[index]
             if isinstance(it, tuple) and it[0] == "StatementEntry"]
    assert max(lines) > 65535 and lines == sorted(lines)


# --- hypothesis: variations and corruptions of the common shape ----------------------------------
# Each generated piece is of the common shape unless ``_odd`` (about one draw in eight, never
# when clean) picks a variation: odd whitespace, entity/character references, CDATA, comments,
# mixed content, bad or exotic amounts and currencies, malformed dates, other shapes of bank
# code / party / agent, repeated or reordered children, foreign namespaces, several TxDtls, and
# byte-level corruption of the whole document. Variations stay rare per field so that most
# documents still reach the entries and both outcomes of the fast path are exercised.

VERSIONS = ["02", "04", "06", "08", "10", "13"]
CLEAN_WS = ["", " ", "\n  ", "\t", "\r\n"]
ODD_WS = ["\u3000", "\xa0", "\u2028", "\x85", " \u2003 ", "&#x3000;", "&#9;"]
PLAIN = st.text(alphabet="ABCXYZabc0123456789-/.", min_size=1, max_size=20)
HAN = st.text(alphabet="电子债权凭证清分供应商有限公司甲乙 ", min_size=1, max_size=12)
ODD_TEXT = [
    "", " ", "\u3000", "A &amp; B", "&lt;x&gt;", "&#x4e2d;&#12288;", "<![CDATA[cd&ata]]>", "a<!--c-->b",
    "a<?pi x?>b", "a<Foo/>b", "<Foo/>b", "x" * 70, "中" * 30, "\u3000id\u3000", "\xa0X\xa0", "tab\tin",
    "a\r\nb", "&#x85;nel&#x85;", "\u2028ls", "&#x10000;", "\U0001f600", "e\u0301",
]
CLEAN_CCY = ["CNY", "EUR", "JPY", "KWD"]
ODD_CCY = ["", " CNY", "XXX", "cny", None, "C&#78;Y"]
ODD_AMOUNTS = [".5", "+1.00", "-1.00", "1e3", "1,00", "12.345", "1.2.3", "١٢٣", "１２", "\u300012.00",
               "", "12 .00", "1234567890123456.00", "99999999999999999999.99", "&#x31;2.00",
               "<![CDATA[5.00]]>", "1<!--c-->2.00", "0.000", "00", "12.00<X/>"]


def _odd(draw: st.DrawFn, clean: bool) -> bool:
    return not clean and draw(st.integers(0, 7)) == 0


@st.composite
def texts(draw: st.DrawFn, clean: bool) -> str:
    if _odd(draw, clean):
        if draw(st.booleans()):
            return draw(st.sampled_from(ODD_TEXT))
        ws = st.sampled_from(CLEAN_WS + ODD_WS)
        return draw(ws) + draw(st.one_of(PLAIN, HAN)) + draw(ws)
    base = draw(st.one_of(PLAIN, HAN)).strip() or "X"
    return draw(st.sampled_from(CLEAN_WS)) + base + draw(st.sampled_from(CLEAN_WS))


def _leaf(tag: str, text: str | None) -> str:
    return f"<{tag}/>" if text is None else f"<{tag}>{text}</{tag}>"


@st.composite
def amounts(draw: st.DrawFn, clean: bool, tag: str = "Amt") -> str:
    ccy: str | None = draw(st.sampled_from(CLEAN_CCY))
    if _odd(draw, clean):
        ccy = draw(st.sampled_from(ODD_CCY))
    exp = {"JPY": 0, "KWD": 3}.get(ccy or "", 2)
    if _odd(draw, clean):
        text = draw(st.sampled_from(ODD_AMOUNTS))
    else:
        whole = draw(st.integers(0, 10**12))
        frac = "".join(draw(st.lists(st.sampled_from("0123456789"), max_size=exp)))
        text = f"{whole:0{draw(st.integers(1, 3))}d}"
        text = f"{text}.{frac}" if frac or draw(st.booleans()) else text
        text = draw(st.sampled_from(CLEAN_WS)) + text + draw(st.sampled_from(CLEAN_WS))
    attr = "" if ccy is None else f' Ccy="{ccy}"'
    return f"<{tag}{attr}>{text}</{tag}>"


def _dates(draw: st.DrawFn, clean: bool, tag: str) -> str:
    day = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))).isoformat()
    inner = draw(st.sampled_from([_leaf("Dt", day), _leaf("DtTm", day + "T10:00:00+08:00"),
                                  _leaf("Dt", " " + day + "\n")]))
    if _odd(draw, clean):
        inner = draw(st.sampled_from([
            _leaf("Dt", "2026-13-01"), _leaf("Dt", ""), _leaf("Dt", "\u3000"), "",
            _leaf("Dt", "") + _leaf("DtTm", day + "T00:00:00"), _leaf("Dt", "20260102"),
            _leaf("Dt", "２０２６-01-01"), _leaf("Dt", day + "\u3000"), _leaf("Dt", "x" * 40),
            "<Dt><Sub>" + day + "</Sub></Dt>", _leaf("Dt", day + "<!--c-->"), _leaf("Dt", "2026-W01-1"),
        ]))
    return f"<{tag}>{inner}</{tag}>"


@st.composite
def agents(draw: st.DrawFn, clean: bool, role: str) -> str:
    bic = draw(st.sampled_from(["COBADEFFXXX", "ICBKCNBJ"]))
    choices = [f"<BICFI>{bic}</BICFI>", f"<BIC>{bic}</BIC>", "<Othr><Id>102100099996</Id></Othr>",
               "<ClrSysMmbId><ClrSysId><Cd>CNAPS</Cd></ClrSysId><MmbId>103100000026</MmbId></ClrSysMmbId>",
               f"<BICFI>{draw(texts(clean))}</BICFI>"]
    if _odd(draw, clean):
        choices = ["", "<Othr/>", "<Nm>Bank</Nm><BIC>X</BIC>",
                   "<Othr><Id/></Othr><ClrSysMmbId><MmbId>1</MmbId></ClrSysMmbId>",
                   "<Nm>N</Nm><Othr><Id>O</Id></Othr>", "<Othr><Id/><Issr>I</Issr></Othr>"]
    return f"<{role}><FinInstnId>{draw(st.sampled_from(choices))}</FinInstnId></{role}>"


@st.composite
def tx_details(draw: st.DrawFn, clean: bool, v8: bool, cd: str) -> str:
    parts: list[str] = []
    refs = [_leaf(t, draw(texts(clean)))
            for t in ("InstrId", "EndToEndId", "PmtInfId", "AcctSvcrRef", "TxId") if draw(st.booleans())]
    if refs:
        parts.append("<Refs>" + "".join(refs) + "</Refs>")
    if draw(st.booleans()):
        parts.append(draw(amounts(clean)))
        if draw(st.booleans()):
            parts.append("<AmtDtls><TxAmt>" + draw(amounts(clean)) + "</TxAmt></AmtDtls>")
    elif _odd(draw, clean):
        parts.append("<AmtDtls><TxAmt>" + draw(amounts(clean)) + "</TxAmt></AmtDtls>")
    if draw(st.booleans()):
        parts.append(_leaf("CdtDbtInd", draw(st.sampled_from(["CRDT", "DBIT", "X", ""])) if _odd(draw, clean)
                           else cd))
    pties = []
    for role in ("Dbtr", "Cdtr"):
        if draw(st.booleans()):
            name = _leaf("Nm", draw(texts(clean)))
            if v8 or draw(st.booleans()):
                name = "<Pty>" + name + "</Pty>"
            if _odd(draw, clean):
                name = draw(st.sampled_from(
                    ["", "<Pty/>", "<PstlAdr/><Nm>Late</Nm>", "<Pty><Id/><Nm>N</Nm></Pty>",
                     "<Pty><Nm/></Pty>"]))
            pties.append(f"<{role}>{name}</{role}>")
        if draw(st.booleans()):
            acct = draw(st.sampled_from(["<IBAN>DE89370400440532013000</IBAN>",
                                         "<Othr><Id>6222020200009876543</Id></Othr>"]))
            if _odd(draw, clean):
                acct = draw(st.sampled_from(["", "<Othr/>", "<IBAN/>", "<Othr><SchmeNm/><Id>X</Id></Othr>"]))
            pties.append(f"<{role}Acct><Id>{acct}</Id></{role}Acct>")
    if _odd(draw, clean) and pties:  # a party element in the other container (camt maps by tag)
        parts.append("<RltdAgts>" + pties.pop() + "</RltdAgts>")
    if pties:
        parts.append("<RltdPties>" + "".join(pties) + "</RltdPties>")
    agts = [draw(agents(clean, role)) for role in ("DbtrAgt", "CdtrAgt") if draw(st.booleans())]
    if agts:
        parts.append("<RltdAgts>" + "".join(agts) + "</RltdAgts>")
    if draw(st.booleans()):
        if draw(st.booleans()):
            n = draw(st.integers(1, 10 if _odd(draw, clean) else 3))
            ustrd = [_leaf("Ustrd", draw(texts(clean))) for _ in range(n)]
            parts.append("<RmtInf>" + "".join(ustrd) + "</RmtInf>")
        else:
            parts.append("<RmtInf><Strd><CdtrRefInf><Tp/><Ref>" + draw(texts(clean))
                         + "</Ref></CdtrRefInf></Strd></RmtInf>")
    if draw(st.booleans()):
        rsn = draw(st.sampled_from(["<Cd>AC04</Cd>", "<Prtry>X1</Prtry>", "<Cd/><Prtry>P</Prtry>"]))
        parts.append(f"<RtrInf><Rsn>{rsn}</Rsn></RtrInf>")
    if _odd(draw, clean):
        parts = list(draw(st.permutations(parts)))
    return "<TxDtls>" + "".join(parts) + "</TxDtls>"


@st.composite
def entry_xml(draw: st.DrawFn, clean: bool, v8: bool) -> str:
    cd = draw(st.sampled_from(["CRDT", "DBIT"]))
    parts: list[str] = []
    if draw(st.booleans()):
        parts.append(_leaf("NtryRef", draw(texts(clean))))
    parts.append(draw(amounts(clean)))
    cdt: str | None = cd
    if _odd(draw, clean):
        cdt = draw(st.sampled_from([" DBIT\n", "crdt", "", "DEBIT", None, "CRDT<!--c-->"]))
    if cdt is not None:
        parts.append(_leaf("CdtDbtInd", cdt))
    if draw(st.booleans()):
        parts.append(_leaf("RvslInd", draw(st.sampled_from(["true", "false", "1", "0", " true "]))))
    sts = draw(st.sampled_from(["BOOK", "PDNG", "INFO"]))
    if v8:
        pretty_sts = draw(st.booleans())
        parts.append(f"<Sts>\n  <Cd>{sts}</Cd>\n</Sts>" if pretty_sts else f"<Sts><Cd>{sts}</Cd></Sts>")
    else:
        parts.append(_leaf("Sts", sts))
    if _odd(draw, clean):
        parts.append(draw(st.sampled_from(["<Sts/>", "<Sts><Cd/></Sts>", "<Sts> </Sts>",
                                           "<Sts>X<Cd>Y</Cd></Sts>", "<Sts><Prtry>P</Prtry></Sts>"])))
    if draw(st.booleans()):
        parts.append(_dates(draw, clean, "BookgDt"))
    if draw(st.booleans()):
        parts.append(_dates(draw, clean, "ValDt"))
    if draw(st.booleans()):
        parts.append(_leaf("AcctSvcrRef", draw(texts(clean))))
    btc = ["<Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn>",
           "<Prtry><Cd>NTRF</Cd></Prtry>",
           "<Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn>"
           "<Prtry><Cd>Z24</Cd><Issr>X</Issr></Prtry>"]
    if _odd(draw, clean):
        btc = ["", "<Domn><Cd>PMNT</Cd></Domn>",
               "<Domn><Cd/><Fmly><Cd>A</Cd><SubFmlyCd>B</SubFmlyCd></Fmly></Domn>",
               "<Prtry/>", "<Prtry><Issr>I</Issr></Prtry><Prtry><Cd>SECOND</Cd></Prtry>",
               "<Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd></Fmly></Domn>",
               "<Domn><Cd> PMNT </Cd><Fmly><Cd>\u3000R</Cd><SubFmlyCd>S</SubFmlyCd></Fmly></Domn>"]
    if draw(st.booleans()):
        parts.append("<BkTxCd>" + draw(st.sampled_from(btc)) + "</BkTxCd>")
    n_tx = draw(st.integers(0, 2 if _odd(draw, clean) else 1))
    if n_tx or _odd(draw, clean):
        txs = "".join(draw(tx_details(clean, v8, cd)) for _ in range(n_tx))
        btch = "<Btch><NbOfTxs>2</NbOfTxs></Btch>" if draw(st.booleans()) else ""
        parts.append("<NtryDtls>" + btch + txs + "</NtryDtls>")
    if draw(st.booleans()):
        parts.append(_leaf("AddtlNtryInf", draw(texts(clean))))
    if _odd(draw, clean):
        extra = draw(st.integers(0, 4))
        if extra == 0:  # an element of another namespace with a known name: ignored by both
            parts.insert(draw(st.integers(0, len(parts))), '<Amt xmlns="urn:other" Ccy="CNY">1.00</Amt>')
        elif extra == 1:  # a duplicate child: the last one wins in both
            parts.append(draw(st.sampled_from(parts)))
        elif extra == 2:
            parts.insert(draw(st.integers(0, len(parts))), "<Unknown><X>1</X></Unknown>")
        elif extra == 3:
            parts = list(draw(st.permutations(parts)))
        else:  # mixed content / a comment between the children
            junk = draw(st.sampled_from(["text", "<!--c-->", "&#x3000;"]))
            parts.insert(draw(st.integers(0, len(parts))), junk)
    return "<Ntry>" + "".join(parts) + "</Ntry>"


def _document(entries: list[str], version: str, pretty: bool, crlf: bool, prefixed: bool) -> bytes:
    ns = f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"
    head = ("<GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-01-01T00:00:00</CreDtTm></GrpHdr>"
            "<Stmt><Id>S1</Id><ElctrncSeqNb>1</ElctrncSeqNb><Acct><Id><Othr><Id>ACC1</Id></Othr></Id>"
            "<Ccy>CNY</Ccy></Acct><Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>"
            '<Amt Ccy="CNY">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Bal>')
    body = head + "".join(entries) + "</Stmt>"
    xml = f'<Document xmlns="{ns}"><BkToCstmrStmt>{body}</BkToCstmrStmt></Document>'
    data = ('<?xml version="1.0" encoding="UTF-8"?>\n' + xml).encode()
    if pretty:
        with contextlib.suppress(etree.XMLSyntaxError):  # a broken variation stays as it is
            data = _pretty(data)
    if prefixed:  # the same namespace through a prefix: the same Clark tags
        data = data.replace(f'xmlns="{ns}"'.encode(), f'xmlns:c="{ns}"'.encode(), 1)
        data = data.replace(b"<", b"<c:").replace(b"<c:/", b"</c:").replace(b"<c:?", b"<?") \
            .replace(b"<c:!", b"<!")
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    return data


@st.composite
def documents(draw: st.DrawFn, clean: bool) -> tuple[bytes, int]:
    version = draw(st.sampled_from(VERSIONS))
    v8 = version >= "08"
    entries = draw(st.lists(entry_xml(clean, v8), min_size=1, max_size=4))
    data = _document(entries, version, pretty=draw(st.booleans()), crlf=draw(st.booleans()),
                     prefixed=_odd(draw, clean) and "urn:other" not in "".join(entries))
    if _odd(draw, clean):  # a random corruption somewhere in the bytes
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "truncate"]))
        if op == "insert":
            junk = draw(st.sampled_from(["<", "&", ">", " ", "\u3000", "x", "\x00", "é", "]]>", "<!--"]))
            data = data[:pos] + junk.encode() + data[pos:]
        elif op == "delete":
            data = data[:pos] + data[pos + 1:]
        else:
            data = data[:pos]
    return data, len(entries)


@needs_accel
@settings(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(documents(clean=False), st.sampled_from([65536, 65536, 65536, 24, 8]))
def test_generated_variations_map_identically(doc: tuple[bytes, int], max_text: int) -> None:
    data, _ = doc
    same_both_ways(data, limits=dataclasses.replace(STREAM_LIMITS, max_text=max_text))


@needs_accel
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(clean=True))
def test_generated_common_shape_takes_the_fast_path(doc: tuple[bytes, int]) -> None:
    data, n = doc
    accepted, refused, items = same_both_ways(data)
    assert _entries_in(items) == n
    assert (accepted, refused) == (n, 0), data.decode()


# --- the module's own contract -------------------------------------------------------------------

def _one_entry() -> tuple[Any, etree._Element, str]:
    assert MOD is not None
    data = camt.render_camt053(_statement(_entries(3, seed=9)), version="08")
    root = etree.fromstring(data)
    ns = etree.QName(root).namespace or ""
    ntry = next(root.iter(f"{{{ns}}}Ntry"))
    return MOD.EntryMapper(ns, 65536, {}, camt._NO_PARTY), ntry, ns


@needs_accel
def test_entry_refuses_what_is_not_a_camt_entry_element() -> None:
    mapper, ntry, ns = _one_entry()
    for thing in (None, 1, "Ntry", b"<Ntry/>", etree.Comment("x"), etree.Element("Ntry"),
                  etree.Element("{urn:other}Ntry"), etree.Element(f"{{{ns}}}Ntry")):
        assert mapper.entry(thing) is None
    assert isinstance(mapper.entry(ntry), StatementEntry)


@needs_accel
def test_pure_path_when_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(camt, "_ACCEL", None)
    before = _stats()
    data = camt.render_camt053(_statement(_entries(5, seed=1)))
    assert len([e for e in camt.iter_camt_items(data, source="x") if isinstance(e, StatementEntry)]) == 5
    assert _stats() == before


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@needs_accel
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_no_reference_leaks() -> None:
    mapper, ntry, _ = _one_entry()
    first = mapper.entry(ntry)
    assert first is not None
    watched = [camt._NO_PARTY, first.currency, first.booking_date, first.credit_debit, "BOOK"]
    counts = [sys.getrefcount(o) for o in watched]

    def run(n: int) -> Iterator[None]:
        for _ in range(n):
            assert mapper.entry(ntry) == first
        yield None

    list(run(1000))
    base = _rss_kib()
    list(run(200_000))
    assert [sys.getrefcount(o) for o in watched] == counts
    assert _rss_kib() - base < 4096, "RSS grew: a leak per call"


# --- robustness of the module's own API (second-read review) -------------------------------------

def _run_isolated(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter: a crash there fails the test instead of killing pytest."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=root, env=env, check=False)


@needs_accel
def test_an_uninitialised_mapper_refuses_instead_of_crashing() -> None:
    """``EntryMapper.__new__`` without ``__init__`` has no namespace: it must refuse, not segfault;
    nor may an ``__init__`` that failed half way leave a mapper that raises mid-mapping."""
    code = (
        "from lxml import etree\n"
        "from mappings import _camt_accel as m\n"
        "ns = 'urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'\n"
        "el = etree.fromstring(f'<Ntry xmlns=\"{ns}\"><Amt Ccy=\"CNY\">1.00</Amt>"
        "<CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2026-01-01</Dt></BookgDt></Ntry>')\n"
        "print(m.EntryMapper.__new__(m.EntryMapper).entry(el))\n"
        "half = m.EntryMapper.__new__(m.EntryMapper)\n"
        "try:\n"
        "    half.__init__(ns, 'not a number', {}, None)\n"
        "except ValueError:\n"
        "    pass\n"
        "print(half.entry(el))\n"
    )
    done = _run_isolated(code)
    assert (done.returncode, done.stdout.split()) == (0, ["None", "None"]), done.stderr[-2000:]


@needs_accel
def test_mapper_arguments_are_checked_up_front() -> None:
    """No dates dict, or a namespace C strings would truncate: refused at construction, not mid-parse
    (Python matches no tag against ``{a\\0b}``; strcmp would have matched the namespace ``a``)."""
    assert MOD is not None
    ns = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
    with pytest.raises(TypeError):
        MOD.EntryMapper(ns, 100, None, camt._NO_PARTY)
    with pytest.raises(ValueError, match="NUL"):
        MOD.EntryMapper(ns + "\0junk", 100, {}, camt._NO_PARTY)


@needs_accel
def test_version_check_refuses_another_lxml(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MOD is not None
    MOD._check_versions()
    monkeypatch.setattr(etree, "__version__", "0.0.0")
    with pytest.raises(ImportError, match="rebuild"):
        MOD._check_versions()
    monkeypatch.undo()
    monkeypatch.setattr(etree, "LIBXML_VERSION", (2, 0, 0))
    with pytest.raises(ImportError, match="rebuild"):
        MOD._check_versions()


def test_a_binary_incompatible_accelerator_falls_back_to_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cython's own import of lxml's extension types runs before any module code (so before
    ``_check_versions``) and raises ValueError ("lxml.etree._Element size changed ..."); lxml's
    C-API import raises TypeError on a changed signature. Either must mean "not available"."""
    def incompatible(name: str) -> ModuleType:
        raise ValueError("lxml.etree._Element size changed, may indicate binary incompatibility")

    monkeypatch.setattr(accel, "_loaded", {})
    monkeypatch.setattr(accel.importlib, "import_module", incompatible)
    monkeypatch.setenv("CVHUB_ACCEL", "1")
    assert accel.load("camt") is None
