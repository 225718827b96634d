"""ledger.inert: the one rule for outside text in cvhub's output files (issue #19)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.inert import (
    csv_cell,
    csv_row,
    formula_like,
    has_unsafe_chars,
    html_text,
    json_text,
    restore_csv_cell,
    visible_text,
    xlsx_text,
)


@pytest.mark.parametrize("text", [
    "=1+1", "+1", "-1", "@SUM(1)", "\t1", "\r1", "\n1", "  =1", "\u3000=1", "\u00a0+1", "\u200b=1",
    "\ufeff=1", "\u200e=1", "\u202e=1", "\x1b=1",
    "＝1", "＋1", "－1", "＠1", "﹦1", "﹢1", "﹣1", "﹫1", "⁼1", "⁺1", "₌1", "₊1", "−1", "˗1", "➕1", "➖1",
    "‐1", "‑1", "–1", "—1", "―1", "🟰1",
])
def test_formula_like(text: str) -> None:
    assert formula_like(text)
    assert not formula_like(csv_cell(text))       # apostrophe, or controls now visible in front


@pytest.mark.parametrize("text", [
    "", " ", "abc", "123", "二级供应商", "货款 =1", "a=1", "(=1)", "'=1", "#1", "%1", "/=1", "中\n=1",
])
def test_not_formula_like(text: str) -> None:
    assert not formula_like(text)


def test_csv_cell_rules() -> None:
    assert csv_cell("=cmd|' /C calc'!A0") == "'=cmd|' /C calc'!A0"
    assert csv_cell("'already") == "''already"          # so that dropping one apostrophe is exact
    assert csv_cell("plain text") == "plain text"
    assert csv_cell("a\u202eb") == "a[U+202E]b"
    assert csv_cell("\x1b=1") == "[U+001B]=1"             # visible now, and no longer formula-like
    assert restore_csv_cell("''already") == "'already" and restore_csv_cell("x") == "x"


@given(st.text())
def test_csv_cell_is_inert_and_reversible(text: str) -> None:
    cell = csv_cell(text)
    assert not formula_like(cell) and not has_unsafe_chars(cell)
    if not has_unsafe_chars(text):
        assert restore_csv_cell(cell) == text


def test_csv_row_numbers_stay_numbers() -> None:
    row = csv_row(["=1", Decimal("-12.50"), -3, None, date(2026, 12, 16), "-5"])
    assert row == ["'=1", Decimal("-12.50"), -3, "", "2026-12-16", "'-5"]
    with pytest.raises(TypeError):
        csv_row([True])


def test_xlsx_html_json() -> None:
    assert xlsx_text("=1+1") == ("=1+1", True)
    assert xlsx_text("abc") == ("abc", False)
    assert xlsx_text("a\x00") == ("a[U+0000]", False)
    assert html_text('<a href="x">&</a>\x07') == "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;[U+0007]"
    doc = {"name": "ACME\u202etxt.exe\x85", "cn": "二级"}
    text = json_text(json.dumps(doc, ensure_ascii=False))
    assert "\u202e" not in text and "\x85" not in text and "二级" in text
    assert json.loads(text) == doc
    assert visible_text("\ud800") == "[U+D800]"
