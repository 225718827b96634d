"""The element rules: label-driven patterns over the whole document's text, with evidence.

The document's lines are joined into one text (``\\n`` between lines) normalised one character for
one character (full-width ASCII to half-width, CJK brackets to ASCII), so a match maps back to the
lines it came from: their page, the union of their boxes, their text, and the lowest confidence of
the characters matched. Rule certainty lowers confidence further: a USCC that only validates after
a one-character OCR correction, a capital amount read through the confusion table with an
ambiguous character. Labels cover the usual ways contracts name the parties (甲方/乙方, 买方/卖方,
需方/供方, 买受人/出卖人, 采购方/供应方) and the usual date and amount notations.

Pure: imports canonical types, ledger.money (the one text -> amount conversion) and stdnum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from stdnum.cn import uscc as stdnum_uscc

from canonical.contract import ContractElements, DeliveryTerms, Element, Evidence, VoucherClause
from canonical.documents import DocumentText, TextLine
from ledger.money import AmountError, to_minor
from mappings.contracts.capitals import ALLOWED as CAPITAL_CHARS
from mappings.contracts.capitals import CapitalAmountError, parse_capital_amount
from mappings.contracts.ocr_capitals import TRA_READ_AS, decode_readings

_HALF = {c: chr(ord(c) - 0xFEE0) for c in map(chr, range(0xFF01, 0xFF5F))}
_HALF.update(
    {
        "\u3000": " ",
        "〈": "(",
        "《": "(",
        "【": "(",
        "〉": ")",
        "》": ")",
        "】": ")",
        "；": ";",
        "，": ",",
        "￥": "¥",
    }
)
_HALF["，"] = ","

BUYER = r"(?:甲方\s*\(\s*买方\s*\)|需方\s*\(\s*买方\s*\)|买受人|采购方|买方|甲方|需方)"
SELLER = r"(?:乙方\s*\(\s*卖方\s*\)|供方\s*\(\s*卖方\s*\)|出卖人|供应方|卖方|乙方|供方)"
NAME = (
    r"([\u4e00-\u9fff][\u4e00-\u9fff()A-Za-z0-9]{1,58}?"
    r"(?:有限责任公司|股份有限公司|有限公司|公司|厂|研究院|中心))"
)
DATE = r"(\d{4})\s*[年\-/.]\s*(\d{1,2})\s*[月\-/.]\s*(\d{1,2})\s*日?"
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_FIX = {"O": "0", "I": "1", "Z": "2", "S": "5", "V": "U"}
_USCC_CONFUSE = {
    "0": "DQ",
    "D": "0Q",
    "Q": "0D",
    "8": "B",
    "B": "8",
    "1": "7T",
    "7": "1T",
    "T": "17",
    "5": "6",
    "6": "5G",
    "G": "6",
    "2": "Z",
    "U": "W",
    "W": "U",
    "M": "N",
    "N": "M",
    "H": "N",
    "3": "8",
    "9": "8",
    "4": "A",
    "A": "4",
    "X": "Y",
    "Y": "X",
}
NEGATION = ("不得", "不接受", "不同意", "不可", "不能", "禁止", "不以", "不采用", "不允许", "拒绝")
# OCR reads 凭 as 赁 often enough to matter; the words around it keep the match specific
VOUCHER_WORDS = r"(电子债权[凭赁]证|应收账款电子[凭赁]证|债权凭证|电子凭证)"


@dataclass(frozen=True, slots=True)
class _Line:
    page: int
    start: int
    line: TextLine


class _Text:
    """The document as one normalised string, with the way back to lines and confidences."""

    def __init__(self, doc: DocumentText) -> None:
        parts: list[str] = []
        self.lines: list[_Line] = []
        self.conf: list[float] = []
        pos = 0
        for page in doc.pages:
            right = max((ln.bbox.x1 for ln in page.lines), default=0.0)
            for i, ln in enumerate(page.lines):
                t = "".join(_HALF.get(c, c) for c in ln.text)
                self.lines.append(_Line(page.number, pos, ln))
                # a line that runs to the right margin wraps into the next one: no break between
                # them, so a number or a name split by the wrap (1|0日内) reads whole
                wraps = i + 1 < len(page.lines) and ln.bbox.x1 >= right - 0.04 * page.width
                sep = "" if wraps else "\n"
                parts.append(t + sep)
                cc = list(ln.char_conf) if len(ln.char_conf) == len(t) else [ln.confidence] * len(t)
                self.conf.extend(cc + [1.0] * len(sep))
                pos += len(t) + len(sep)
        self.text = "".join(parts)
        self.ocr = doc.kind != "text_pdf"

    def alternatives(self, start: int, end: int) -> list[str]:
        """Capital runs in the second readings of the lines under [start, end)."""
        runs = []
        for ln in self.lines:
            if not (ln.start < end and ln.start + len(ln.line.text) + 1 > start):
                continue
            for _lang, text in ln.line.alternatives:
                alt = "".join(_HALF.get(c, c) for c in text)
                for m in re.finditer(r"(?:人民[币幣市]|大[写寫与])\s*\)?\s*[:]?\s*(?:人民[币幣市])?", alt):
                    e = m.end()
                    while e < len(alt) and e - m.end() < 40 and "\u4e00" <= alt[e] <= "\u9fff":
                        e += 1
                    run = alt[m.end() : e]
                    if len(run) >= 2 and any(c in TRA_READ_AS for c in run):
                        runs.append(run)
        return runs

    def confidence(self, start: int, end: int) -> float:
        return min(self.conf[start:end], default=1.0)

    def evidence(self, start: int, end: int, factor: float = 1.0) -> Evidence:
        hit = [ln for ln in self.lines if ln.start < end and ln.start + len(ln.line.text) + 1 > start]
        first = hit[0] if hit else self.lines[0]
        same = [ln for ln in hit if ln.page == first.page] or [first]
        box = same[0].line.bbox
        for ln in same[1:]:
            box = box.union(ln.line.bbox)
        conf = min(self.conf[start:end], default=1.0)
        return Evidence(first.page, box, "\n".join(ln.line.text for ln in same), round(conf * factor, 4))


def _date(m: re.Match[str], first_group: int) -> date | None:
    try:
        return date(int(m.group(first_group)), int(m.group(first_group + 1)), int(m.group(first_group + 2)))
    except ValueError:
        return None


def _uscc(raw: str) -> tuple[str, float] | None:
    """(code, certainty) for an 18-character candidate; a unique one-character repair gives 0.75."""
    code = "".join(_USCC_FIX.get(c, c) for c in raw.upper())
    if len(code) != 18 or any(c not in USCC_CHARS for c in code):
        return None
    if stdnum_uscc.is_valid(code):
        return code, 1.0 if code == raw else 0.9
    repairs = {code[:i] + alt + code[i + 1 :] for i, c in enumerate(code) for alt in _USCC_CONFUSE.get(c, "")}
    valid = [r for r in repairs if stdnum_uscc.is_valid(r)]
    return (valid[0], 0.75) if len(valid) == 1 else None


def _figures(raw: str) -> int | None:
    s = raw.replace(" ", "")
    if "," in s and not re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?", s):
        return None
    try:
        return to_minor(s.replace(",", ""), "CNY")
    except AmountError:
        return None


def extract_elements(doc: DocumentText) -> ContractElements:
    t = _Text(doc)
    s = t.text
    out: dict[str, object] = {}
    fig_at = 0

    m = re.search(r"(?:合同编号|合同号|合同编码)\s*[:]?\s*([A-Za-z0-9][A-Za-z0-9\-_/]{3,40})", s)
    if m:
        out["contract_no"] = Element(m.group(1), t.evidence(*m.span(1)))

    # Parties: the first labelled name per role; codes go to the role named in their own label
    # (需方统一社会信用代码) or to the nearest party named before them.
    parties: list[tuple[int, str]] = []
    for party_role, pattern in (("buyer", BUYER), ("seller", SELLER)):
        for m in re.finditer(pattern + r"\s*[:]?\s*" + NAME, s):
            parties.append((m.start(), party_role))
            if f"{party_role}_name" not in out:
                out[f"{party_role}_name"] = Element(m.group(1), t.evidence(*m.span(1)))
    parties.sort()
    for m in re.finditer(
        r"((?:需方|供方|甲方|乙方|买方|卖方)?)\s*(?:统一社会信用代码|[信言]用代码)\s*[:]?\s*([0-9A-Za-z]{18})"
        r"(?![0-9A-Za-z])",
        s,
    ):
        label = m.group(1)
        role: str | None = ("buyer" if label in ("需方", "甲方", "买方") else "seller") if label else None
        if role is None:
            before = [r for p, r in parties if p < m.start()]
            role = before[-1] if before else None
        if role is None or f"{role}_uscc" in out:
            continue
        fixed = _uscc(m.group(2))
        if fixed:
            ev = t.evidence(*m.span(2), factor=fixed[1])
            if t.ocr and fixed[1] == 1.0:
                # 18 characters that pass the check digit unrepaired: the check digit, not the
                # engine's per-glyph score, is what makes the reading certain (1 in 31 by chance)
                ev = Evidence(ev.page, ev.bbox, ev.text, max(ev.confidence, 0.95))
            out[f"{role}_uscc"] = Element(fixed[0], ev)

    # one stray character may stand where OCR lost the currency sign (羊19,544,270.00, f13,558,430.00)
    for m in re.finditer(
        r"(?:小[写与]\s*\)?\s*[:]?|(?:合同总金额|合同金额|总金额|总价款|金额)\s*[:]?)\s*"
        r"(人民币|CNY|RMB|USD|美元)?\s*[^\d\s]?\s*([0-9][0-9, ]*(?:\.[0-9]{1,2})?)(?!\d)",
        s,
    ):
        value = _figures(m.group(2))
        if value is None:
            continue
        out["amount_figures"] = Element(value, t.evidence(*m.span(2)))
        fig_at = m.start(2)
        break
    if "amount_figures" not in out:
        # the label misread (小与, 小写 wrapped onto the next line): a grouped figure with two
        # decimals right after the capital amount is the same figure
        m = re.search(
            r"(?:大写|人民币)[^0-9]{2,60}?(?<![0-9.,])(\d{1,3}(?:,\d{3})+\.\d{2})(?![0-9])", s, re.S
        )
        if m and (value := _figures(m.group(1))) is not None:
            out["amount_figures"] = Element(value, t.evidence(*m.span(1)))
            fig_at = m.start(1)
    if (fig := out.get("amount_figures")) is not None:
        around = s[max(0, fig_at - 80) : fig_at + 40]
        ccy = (
            "USD"
            if re.search(r"USD|美元|\$", around)
            else "CNY"
            if re.search(r"人民币|CNY|RMB|¥", around)
            else None
        )
        if ccy:
            out["currency"] = Element(ccy, fig.evidence)  # type: ignore[attr-defined]

    for m in re.finditer(
        r"(?:大[写与]\s*\)?\s*[:]?\s*(?:人民币)?|人民币\s*\(?\s*大[写与]\s*\)?\s*|人民币)\s*", s
    ):
        end = m.end()
        if t.ocr:
            # an OCR run goes to the next delimiter: characters without a reading may still be
            # read by the second model
            while end < len(s) and end - m.end() < 40 and "\u4e00" <= s[end] <= "\u9fff":
                end += 1
        else:
            while end < len(s) and s[end] in CAPITAL_CHARS:
                end += 1
        run = s[m.end() : end]
        if len(run) < 2 or (end < len(s) and "\u4e00" <= s[end] <= "\u9fff"):
            continue  # a run cut short by an unreadable character is not an amount
        try:
            if t.ocr:
                value, exact = decode_readings(run, t.alternatives(m.end(), end))
            else:
                value, exact = parse_capital_amount(run), True
        except CapitalAmountError:
            continue
        # a run decoded through the measured confusion tables is as sure as the tables and the
        # grammar make it, not as sure as Tesseract was of the look-alike it printed
        ev = t.evidence(m.end(), end)
        if t.ocr and not exact:
            ev = Evidence(ev.page, ev.bbox, ev.text, 0.9)
        out["amount_capitals"] = Element(value, ev)
        break

    m = re.search(r"(?:签订[日月]期|签约日期|签订时间|签署日期|签约时间)\s*[:]?\s*" + DATE, s)
    if m and (d := _date(m, 1)):
        out["signing_date"] = Element(d, t.evidence(m.start(1), m.end()))

    deliver = re.search(r"(?:应于|不晚于|交货日期\s*[:]?|交货期限\s*[:]?)\s*" + DATE + r"\s*(?:前|之前)?", s)
    accept = re.search(r"(?:收货|到货|交付|送达)后\s*(\d{1,3})\s*(?:个工作)?日内\s*(?:完成|组织)?验收", s)
    if deliver or accept:
        by = _date(deliver, 1) if deliver else None
        days = int(accept.group(1)) if accept else None
        spans = [x.span() for x in (deliver, accept) if x]
        start, end = min(a for a, _ in spans), max(b for _, b in spans)
        ev = t.evidence(start, end) if (end - start) < 200 else t.evidence(*spans[0])
        out["delivery"] = Element(DeliveryTerms(s[start:end].replace("\n", ""), by, days), ev)

    m = re.search(
        r"(?:验收合格|收货|到货|收到发票|开具发票)[^。\n]{0,12}?(\d{1,3})\s*(?:个自然)?(?:日|天)内\s*"
        r"(?:支付|付款|付清)",
        s,
    )
    if m:
        out["payment_term_days"] = Element(int(m.group(1)), t.evidence(m.start(1), m.end(1)))

    clause: Element[VoucherClause] | None = None
    for m in re.finditer(VOUCHER_WORDS, s):
        a = max(s.rfind("。", 0, m.start()), s.rfind(":", 0, m.start()), s.rfind(";", 0, m.start())) + 1
        b = s.find("。", m.end())
        sentence = s[a : b if b >= 0 else len(s)]
        said: VoucherClause = "no" if any(w in sentence for w in NEGATION) else "yes"
        # the whole sentence's confidence: a misread negation (不得) would turn "no" into "yes"
        ev = t.evidence(m.start(), m.end())
        ev = Evidence(ev.page, ev.bbox, ev.text, min(ev.confidence, t.confidence(a, a + len(sentence))))
        if clause is None or (said == "no" and clause.value == "yes"):
            clause = Element(said, ev)
    if clause:
        out["voucher_clause"] = clause
    return ContractElements(**out)  # type: ignore[arg-type]
