"""Reading a capital amount (大写) out of OCR text: a closed alphabet decoded under the strict grammar.

Debian's chi_sim model has no 叁, 柒, 捌 or 仟 in its character set (``combine_tessdata -u`` on
chi_sim.traineddata lists 4,023 characters without them), so Tesseract reads those as look-alikes,
and it often misreads 壹/贰 too. ``READ_AS`` maps each character the model was measured to produce
for a capital character (``python -m sandbox.contracts.calibrate``: random amounts in three Debian
CJK fonts, clean and noisy) to the capital(s) it stood for. ``decode_ocr_capitals`` tries every
reading the table allows and keeps it only if **exactly one amount** parses under the strict grammar
(``capitals.parse_capital_amount``); several amounts or none is a refusal. The figures are never
consulted: agreement between figures and capitals stays an independent check.

Pure; imports only mappings.contracts.capitals.
"""

from __future__ import annotations

import itertools

from mappings.contracts.capitals import ALLOWED, CapitalAmountError, parse_capital_amount

READ_AS: dict[str, str] = {
    "万": "万", "下": "贰", "业": "柒", "个": "佰", "于": "贰", "人": "仟", "亿": "亿", "什": "仟",
    "仁": "仟", "介": "佰", "从": "佰", "仔": "仟", "他": "仟", "件": "仟", "任": "仟", "伍": "伍",
    "会": "叁", "伯": "佰", "佐": "叁", "佑": "叁", "作": "仟", "佰": "佰", "侍": "仟肆", "侠": "叁",
    "信": "佰", "倩": "佰", "值": "佰", "做": "柒", "健": "肆", "傅": "叁", "僚": "叁", "僵": "叁",
    "元": "元", "党": "壹", "全": "佰叁", "击": "捌", "分": "分", "到": "玖", "制": "捌", "功": "贰",
    "半": "柒", "参": "叁", "吉": "壹贰", "哉": "贰", "喜": "壹", "址": "贰", "城": "贰", "堆": "零",
    "壳": "壹贰", "壹": "壹", "套": "叁", "妆": "柒", "委": "零", "娃": "肆", "娄": "柒", "媳": "肆",
    "嫂": "肆", "孜": "玖", "寺": "贰", "岩": "肆", "峙": "肆", "崎": "柒", "建": "肆", "当": "柒壹",
    "忒": "贰", "总": "壹", "所": "捌", "押": "捌", "抽": "捌", "担": "捌", "拓": "捌", "拜": "肆",
    "拥": "捌", "拾": "拾", "挫": "拾", "捡": "拾", "授": "捌", "提": "捌", "揭": "捌", "揽": "捌",
    "撞": "捌", "数": "柒", "整": "整", "晶": "捌", "机": "捌", "染": "柒", "款": "贰", "沫": "柒",
    "涂": "柒", "涛": "柒", "深": "柒", "灶": "柒", "烤": "柒", "玖": "玖", "玫": "玖", "直": "贰",
    "砷": "捌", "硅": "肆", "碌": "柒", "章": "壹", "类": "柒", "索": "壹", "而": "捌", "肆": "肆",
    "臣": "贰", "苇": "贰", "蒜": "贰", "藉": "贰", "融": "贰", "角": "角", "谷": "佰", "贰": "贰",
    "起": "贰", "趟": "贰", "过": "壹", "迪": "柒", "迷": "柒", "陆": "陆", "雪": "柒", "零": "零",
    "项": "贰",
}
READ_AS.update({c: c for c in ALLOWED})
READ_AS.update({"伯": "佰", "圆": "元", "正": "整", "萬": "万"})
MAX_READINGS = 256


def decode_ocr_capitals(read: str) -> tuple[int, bool]:
    """(minor units, exact) for an OCR'd capital run; ``exact``: every character was read as itself.

    Raises ``CapitalAmountError`` when a character has no reading or when no, or more than one,
    amount fits the grammar.
    """
    options = []
    for i, ch in enumerate(read):
        cands = READ_AS.get(ch)
        if not cands:
            raise CapitalAmountError(f"OCR capital amount {read!r}: character {i + 1} {ch!r} has no reading",
                                     field="amount_capitals")
        options.append(cands)
    exact = all(ch in ALLOWED for ch in read)
    values: set[int] = set()
    for n, combo in enumerate(itertools.product(*options)):
        if n >= MAX_READINGS:
            raise CapitalAmountError(f"OCR capital amount {read!r}: too many readings", field="amount_capitals")
        try:
            values.add(parse_capital_amount("".join(combo)))
        except CapitalAmountError:
            continue
    if len(values) != 1:
        why = "no reading fits the grammar" if not values else f"{len(values)} readings fit the grammar"
        raise CapitalAmountError(f"OCR capital amount {read!r}: {why}", field="amount_capitals")
    return values.pop(), exact
